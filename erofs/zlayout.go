package erofs

// Close's part for compressed files: the map header, the logical cluster
// indexes (full or compact), inline clusters and the superblock's
// compression configuration.

// lcluster is one logical cluster index entry before encoding.
type lcluster struct {
	typ        uint8
	set        bool
	clusterofs uint16
	blkaddr    uint32
	delta      [2]uint16 // NONHEAD; delta[0] carries CBLKCNT when cblk
	cblk       bool
}

// firstBlock is the block of the file's first physical cluster, or where
// it would be for a file whose only cluster is inline.
func (z *zfile) firstBlock(n *inode) int64 {
	if b := n.startBlk(); b >= 0 {
		return b
	}
	if z.homeless && len(z.extents) == 1 {
		return z.homeBlk
	}
	return z.hint
}

// zadvise returns the map header's h_advise for a file.
func (l *layout) zadvise(z *zfile) uint16 {
	w := l.w
	var a uint16
	big := w.zp.pcl > w.bs
	if z.full {
		if big {
			a |= adviseBigPcluster1
		}
	} else {
		if w.bits <= 12 {
			a |= adviseCompacted2B
		}
		if big {
			a |= adviseBigPcluster1 | adviseBigPcluster2
		}
	}
	if z.idata > 0 && !z.homeless {
		a |= adviseInlinePcluster
	}
	return a
}

// zlclusters builds a file's index entries from its extents.
func (l *layout) zlclusters(n *inode, advise uint16) []lcluster {
	w := l.w
	bs := int64(w.bs)
	z := w.zf(n)
	count := lclusterCount(n.size, w.bs)
	idx := make([]lcluster, count)
	blk := z.firstBlock(n)
	var s int64
	for _, e := range z.extents {
		end := s + int64(e.length)
		h := s / bs
		typ := uint8(lclusterHead1)
		big := advise&adviseBigPcluster1 != 0
		if e.raw {
			typ = lclusterPlain
			big = advise&adviseBigPcluster2 != 0
		}
		addr := blk
		if e.inline && z.homeless {
			addr = z.homeBlk
		}
		idx[h] = lcluster{typ: typ, set: true, clusterofs: uint16(s % bs), blkaddr: uint32(addr)}
		nh := end / bs
		for k := h + 1; k < min(nh, count); k++ {
			c := lcluster{typ: lclusterNonhead, set: true}
			c.delta[0] = uint16(min(k-h, deltaMax))
			c.delta[1] = uint16(min(nh-k, deltaMax))
			if k == h+1 && big {
				c.cblk = true
				c.delta[0] = deltaCblkcnt | uint16(e.blocks)
			}
			idx[k] = c
		}
		if !e.inline {
			blk += int64(e.blocks)
		}
		s = end
	}
	if last := &idx[count-1]; n.size%bs != 0 && !last.set {
		*last = lcluster{typ: lclusterPlain, set: true, clusterofs: uint16(n.size % bs)}
	}
	return idx
}

// zmetaSize is the size of a compressed inode's map header, indexes and
// inline cluster, from the end of its xattrs rounded up to 8 bytes.
func (l *layout) zmetaSize(n *inode) int {
	z := l.w.zf(n)
	count := int(lclusterCount(n.size, l.w.bs))
	size := mapHeaderSize
	if z.full {
		size += fullIndexReserved + fullIndexSize*count
	} else {
		ebase := roundUp(l.w.coreSize(n)+l.w.ibody(n), 8) + mapHeaderSize
		init4, c2b, rest := compactSplit(ebase, count, l.w.bits <= 12)
		size += compactBytes(init4, c2b, rest)
	}
	if z.idata > 0 && !z.homeless {
		size += z.idata
	}
	return size
}

// compactSplit returns how many entries go in the leading 4-byte packs,
// the 2-byte packs and the trailing 4-byte packs of a compact index that
// starts at byte ebase of its inode (inodes start 32-byte aligned).
func compactSplit(ebase, count int, use2B bool) (init4, c2b, rest int) {
	init4 = ((32 - ebase%32) / 4) & 7
	if init4 > count {
		init4 = count
	}
	if use2B && init4 < count {
		c2b = (count - init4) / 16 * 16
	}
	return init4, c2b, count - init4 - c2b
}

func compactBytes(init4, c2b, rest int) int {
	return 4*roundUp(init4, 2) + 2*c2b + 4*roundUp(rest, 2)
}

// zplan fixes a compressed inode's index format and decides whether its
// inline cluster fits its block; one that does not gets a block of its
// own, at the given block, and the file switches to full indexes.
func (l *layout) zplan(id uint32, n *inode, next int64) int64 {
	w := l.w
	z := w.zf(n)
	if w.opts.Compression.FullIndexes || w.bits > 14 {
		z.full = true
	}
	if z.idata > 0 && roundUp(w.coreSize(n)+w.ibody(n), 8)+l.zmetaSize(n) > w.bs {
		z.homeless, z.full = true, true
		z.homeBlk = next
		l.reserved = append(l.reserved, id)
		next++
	}
	return next
}

// appendZmeta appends a compressed inode's map header, indexes and inline
// cluster to b, which holds the inode and its xattrs from byte start.
func (l *layout) appendZmeta(b []byte, start int, n *inode) ([]byte, error) {
	w := l.w
	z := w.zf(n)
	for (len(b)-start)%8 != 0 {
		b = append(b, 0)
	}
	advise := l.zadvise(z)
	var h [mapHeaderSize]byte
	if advise&adviseInlinePcluster != 0 {
		le.PutUint16(h[mhIdataSize:], uint16(z.idata))
	}
	le.PutUint16(h[mhAdvise:], advise)
	h[mhAlgorithmType] = w.opts.Compression.algID()
	b = append(b, h[:]...)
	idx := l.zlclusters(n, advise)
	if z.full {
		b = append(b, make([]byte, fullIndexReserved)...)
		for _, c := range idx {
			var e [fullIndexSize]byte
			le.PutUint16(e[0:], uint16(c.typ))
			if c.typ == lclusterNonhead {
				le.PutUint16(e[4:], c.delta[0])
				le.PutUint16(e[6:], c.delta[1])
			} else {
				le.PutUint16(e[2:], c.clusterofs)
				le.PutUint32(e[4:], c.blkaddr)
			}
			b = append(b, e[:]...)
		}
	} else {
		b = l.appendCompact(b, len(b)-start, idx, advise, n)
	}
	if advise&adviseInlinePcluster != 0 {
		at := len(b)
		b = append(b, make([]byte, z.idata)...)
		if err := w.spool.readAt(b[at:], z.idataOff); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// appendCompact encodes compact indexes (§7.6 of the format notes): packs
// of two 16-bit or sixteen 14-bit entries, each ending in a base block
// address from which the reader counts the clusters of the pack.
func (l *layout) appendCompact(b []byte, ebase int, idx []lcluster, advise uint16, n *inode) []byte {
	w := l.w
	init4, c2b, rest := compactSplit(ebase, len(idx), advise&adviseCompacted2B != 0)
	lobits := max(int(w.bits), 12)
	big := advise&adviseBigPcluster1 != 0

	blkaddr := w.zf(n).firstBlock(n)
	dummy := false
	if !big {
		blkaddr--
		dummy = true
	}
	pack := func(entries []lcluster, vcnt, encodebits int) {
		size := vcnt * encodebits / 8
		p := make([]byte, size+4)
		base := blkaddr
		upd := big
		for i := 0; i < vcnt; i++ {
			var c lcluster // zero padding: a PLAIN entry with value 0
			if i < len(entries) {
				c = entries[i]
			}
			var lo uint16
			switch {
			case c.typ == lclusterNonhead && c.cblk:
				lo = c.delta[0]
				blkaddr += int64(c.delta[0] &^ deltaCblkcnt)
				dummy = false
			case c.typ == lclusterNonhead:
				lo = c.delta[0]
				if i == vcnt-1 {
					lo = c.delta[1]
				}
			default:
				lo = c.clusterofs
				if dummy {
					blkaddr++
					if upd {
						base = blkaddr
					}
				}
				dummy, upd = true, false
			}
			v := uint32(c.typ)<<lobits | uint32(lo)
			for bit := 0; bit < encodebits; bit++ {
				if v>>bit&1 != 0 {
					pos := i*encodebits + bit
					p[pos/8] |= 1 << (pos % 8)
				}
			}
		}
		le.PutUint32(p[size:], uint32(base))
		b = append(b, p...)
	}
	packs := func(entries []lcluster, vcnt, encodebits int) {
		for len(entries) > 0 {
			k := min(vcnt, len(entries))
			pack(entries[:k], vcnt, encodebits)
			entries = entries[k:]
		}
	}
	packs(idx[:init4], 2, 16)
	packs(idx[init4:init4+c2b], 16, 14)
	packs(idx[init4+c2b:init4+c2b+rest], 2, 16)
	return b
}

// writeHomeless writes an inline cluster that did not fit its inode's
// block into a block of its own.
func (l *layout) writeHomeless(n *inode) error {
	w := l.w
	z := w.zf(n)
	blk := make([]byte, w.bs)
	data := blk[:z.idata]
	if !z.extents[len(z.extents)-1].raw {
		data = blk[w.bs-z.idata:] // right-aligned, after zero padding
	}
	if err := w.spool.readAt(data, z.idataOff); err != nil {
		return err
	}
	return l.write(blk)
}

// zconfig returns the superblock's compression fields: the incompat bits,
// the u1 field and the configuration records that follow the superblock.
func (l *layout) zconfig() (incompat uint32, u1 uint16, records []byte) {
	w := l.w
	if w.zp == nil {
		return 0, 0, nil
	}
	any, inline := false, false
	for _, id := range l.order {
		if z := w.zf(w.inodes.at(id)); z != nil {
			any = true
			if z.idata > 0 && !z.homeless {
				inline = true
			}
		}
	}
	if !any {
		return 0, 0, nil
	}
	incompat = FeatureIncompatZeroPadding
	if inline {
		incompat |= FeatureIncompatZtailpacking
	}
	c := w.opts.Compression
	pcl := w.zp.pcl
	alg := c.algID()
	if alg == AlgLZ4 && pcl == w.bs {
		return incompat, lz4MaxDistance, nil
	}
	incompat |= FeatureIncompatComprCfgs
	u1 = 1 << alg
	var rec []byte
	switch alg {
	case AlgLZ4:
		rec = make([]byte, 2+lz4CfgSize)
		le.PutUint16(rec[2:], lz4MaxDistance)
		le.PutUint16(rec[4:], uint16(pcl/w.bs))
	case AlgLZMA:
		rec = make([]byte, 2+lzmaCfgSize)
		le.PutUint32(rec[2:], uint32(lzmaDictSize(pcl)))
	case AlgDeflate:
		rec = make([]byte, 2+deflateCfgSize)
		rec[2] = 15
	case AlgZstd:
		rec = make([]byte, 2+zstdCfgSize)
		rec[3] = uint8(zstdWindowLog(pcl) - 10)
	}
	le.PutUint16(rec, uint16(len(rec)-2))
	for len(rec)%4 != 0 {
		rec = append(rec, 0)
	}
	return incompat, u1, rec
}
