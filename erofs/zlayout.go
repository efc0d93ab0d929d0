package erofs

// Close's part for compressed files: the map header, the logical cluster
// indexes (full or compact), inline clusters and the superblock's
// compression configuration.

import (
	"errors"
	"fmt"
)

// lcluster is one logical cluster index entry before encoding.
type lcluster struct {
	typ        uint8
	set        bool
	clusterofs uint16
	blkaddr    uint32
	delta      [2]uint16 // NONHEAD; delta[0] carries CBLKCNT when cblk
	cblk       bool
	partial    bool // HEAD: PARTIAL_REF, a prefix of the pcluster's output (full indexes only)
}

// firstBlock is the block of the file's first physical cluster, or where
// it would be for a file whose only cluster is inline.
func (z *zfile) firstBlock(n *inode) int64 {
	if b := n.startBlk(); b >= 0 {
		return b
	}
	if z.homeless && z.nPcl == 1 {
		return z.homeBlk
	}
	return z.hint
}

// zadvise returns the map header's h_advise for a file.
func (l *layout) zadvise(z *zfile) uint16 {
	w := l.w
	var a uint16
	big := w.maxPclusterSize() > w.bs
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
	if z.fragLen > 0 {
		a |= adviseFragmentPcluster
	}
	return a
}

// pclusterRecordSize is the size of a pcluster in the spool: its length (32
// bits), blocks (16 bits; at most 1 MiB / 512), flags (8 bits), a zero
// byte and, for a shared pcluster, its block address (32 bits).
const pclusterRecordSize = 12

// Flags of a pcluster in the spool.
const (
	pclusterRaw     = 1
	pclusterInline  = 2
	pclusterShared  = 4
	pclusterPartial = 8
)

// appendPcluster appends a pcluster's spool form to b.
func appendPcluster(b []byte, e pcluster) []byte {
	var flags uint8
	if e.raw {
		flags |= pclusterRaw
	}
	if e.inline {
		flags |= pclusterInline
	}
	if e.shared {
		flags |= pclusterShared
	}
	if e.partial {
		flags |= pclusterPartial
	}
	b = le.AppendUint32(b, e.length)
	b = le.AppendUint16(b, uint16(e.blocks))
	b = append(b, flags, 0)
	return le.AppendUint32(b, e.addr)
}

// pclusterReader reads a compressed file's pclusters back from the spool.
type pclusterReader struct {
	sp   *spool
	off  int64 // spool offset of the next unread pcluster
	left int64 // pclusters not read from the spool yet
	buf  []byte
	scr  []byte
}

func (r *pclusterReader) next() (pcluster, error) {
	if len(r.buf) == 0 {
		if r.left == 0 {
			return pcluster{}, errors.New("erofs: internal error: a compressed file has fewer pclusters than recorded")
		}
		k := min(r.left, int64(len(r.scr)/pclusterRecordSize))
		r.buf = r.scr[:k*pclusterRecordSize]
		if err := r.sp.readAt(r.buf, r.off); err != nil {
			return pcluster{}, err
		}
		r.off += k * pclusterRecordSize
		r.left -= k
	}
	b := r.buf[:pclusterRecordSize]
	r.buf = r.buf[pclusterRecordSize:]
	return pcluster{length: le.Uint32(b), blocks: uint32(le.Uint16(b[4:])),
		raw: b[6]&pclusterRaw != 0, inline: b[6]&pclusterInline != 0,
		shared: b[6]&pclusterShared != 0, partial: b[6]&pclusterPartial != 0,
		addr: le.Uint32(b[8:])}, nil
}

// zlclusters calls emit with each of a file's index entries in turn, made
// from its pclusters. An entry is final once no later pcluster can start in
// its logical cluster: a HEAD entry waits while its pcluster ends in the
// cluster it started in, since the next pcluster's HEAD replaces it.
// Clusters no pcluster starts or continues in are zero entries, but for the
// last, partial one, which is PLAIN.
func (l *layout) zlclusters(n *inode, advise uint16, emit func(lcluster) error) error {
	w := l.w
	bs := int64(w.bs)
	z := w.zf(n)
	count := lclusterCount(n.size, w.bs)
	var next int64 // index of the next entry to emit
	put := func(k int64, c lcluster) error {
		if k < next {
			return fmt.Errorf("erofs: internal error: index entry %d after entry %d", k, next-1)
		}
		for ; next < k; next++ {
			if err := emit(lcluster{}); err != nil {
				return err
			}
		}
		next++
		return emit(c)
	}
	if l.pclScratch == nil {
		l.pclScratch = make([]byte, 512*pclusterRecordSize)
	}
	r := pclusterReader{sp: &w.spool, off: z.pclOff, left: z.nPcl, scr: l.pclScratch}
	blk := z.firstBlock(n)
	var pending lcluster
	pendingAt := int64(-1)
	var s int64
	for i := range z.nPcl + min(z.fragLen, 1) {
		var e pcluster
		if i < z.nPcl {
			var err error
			if e, err = r.next(); err != nil {
				return err
			}
		} else {
			// The fragment: the tail extent, in the packed inode. Its
			// HEAD's block address holds the high half of the offset
			// (full indexes only; compact ones are for offsets below
			// 4 GiB); its cluster takes no blocks.
			e = pcluster{length: uint32(z.fragLen), frag: true}
		}
		end := s + int64(e.length)
		h := s / bs
		typ := uint8(lclusterHead1)
		big := advise&adviseBigPcluster1 != 0
		if e.raw {
			typ = lclusterPlain
			big = advise&adviseBigPcluster2 != 0
		}
		addr := blk
		switch {
		case e.inline && z.homeless:
			addr = z.homeBlk
		case e.frag && z.full:
			addr = z.fragOff >> 32
		case e.shared:
			addr = int64(e.addr)
		}
		head := lcluster{typ: typ, set: true, clusterofs: uint16(s % bs), blkaddr: uint32(addr), partial: e.partial}
		if pendingAt >= 0 && pendingAt != h {
			if err := put(pendingAt, pending); err != nil {
				return err
			}
		}
		pendingAt = -1 // a HEAD waiting at h is replaced by this one
		nh := end / bs
		if nh == h {
			pending, pendingAt = head, h
		} else {
			if err := put(h, head); err != nil {
				return err
			}
			for k := h + 1; k < min(nh, count); k++ {
				c := lcluster{typ: lclusterNonhead, set: true}
				c.delta[0] = uint16(min(k-h, deltaMax))
				c.delta[1] = uint16(min(nh-k, deltaMax))
				if k == h+1 && big {
					c.cblk = true
					c.delta[0] = deltaCblkcnt | uint16(e.blocks)
				}
				if err := put(k, c); err != nil {
					return err
				}
			}
		}
		if !e.inline && !e.frag && !e.shared {
			blk += int64(e.blocks)
		}
		s = end
	}
	if pendingAt >= 0 {
		if err := put(pendingAt, pending); err != nil {
			return err
		}
	}
	for next < count {
		var c lcluster
		if next == count-1 && n.size%bs != 0 {
			c = lcluster{typ: lclusterPlain, set: true, clusterofs: uint16(n.size % bs)}
		}
		if err := put(next, c); err != nil {
			return err
		}
	}
	return nil
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
	if w.opts.Compression.FullIndexes || w.bits > 14 || z.fragOff >= 1<<32 {
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

// recordFlush is the size past which a compressed inode's record is
// written out while its index is still being encoded, so that a large
// file's index does not have to be held whole.
const recordFlush = 64 << 10

// flushRecord writes b out if it has grown past recordFlush and returns
// what remains to fill: b emptied, or b.
func (l *layout) flushRecord(b []byte) ([]byte, error) {
	if len(b) < recordFlush {
		return b, nil
	}
	if err := l.write(b); err != nil {
		return nil, err
	}
	return b[:0], nil
}

// appendZmeta appends a compressed inode's map header, indexes and inline
// cluster to b, which holds the inode and its xattrs from byte start. For
// a large index it writes the record's leading part out itself.
func (l *layout) appendZmeta(b []byte, start int, n *inode) ([]byte, error) {
	w := l.w
	z := w.zf(n)
	for (len(b)-start)%8 != 0 {
		b = append(b, 0)
	}
	advise := l.zadvise(z)
	h := zMapHeader{advise: advise, algorithmType: w.opts.Compression.algID()}
	if advise&adviseInlinePcluster != 0 {
		h.idataSize = uint16(z.idata)
	}
	if advise&adviseFragmentPcluster != 0 {
		h.fragmentOff = uint32(z.fragOff)
	}
	b = append(b, make([]byte, mapHeaderSize)...)
	h.encode(b[len(b)-mapHeaderSize:])
	var err error
	if z.full {
		b = appendZeros(b, fullIndexReserved)
		err = l.zlclusters(n, advise, func(c lcluster) error {
			x := zFullIndex{advise: uint16(c.typ), blkaddr: c.blkaddr, delta: c.delta}
			if c.typ != lclusterNonhead {
				x.clusterofs = c.clusterofs
			}
			if c.partial {
				x.advise |= fullIndexPartialRef
			}
			b = append(b, make([]byte, fullIndexSize)...)
			x.encode(b[len(b)-fullIndexSize:])
			var err error
			b, err = l.flushRecord(b)
			return err
		})
	} else {
		b, err = l.appendCompact(b, len(b)-start, advise, n)
	}
	if err != nil {
		return nil, err
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

// appendCompact encodes compact indexes (EROFS_INODE_COMPRESSED_COMPACT;
// the reader's side is in the kernel's fs/erofs/zmap.c): packs
// of two 16-bit or sixteen 14-bit entries, each ending in a base block
// address from which the reader counts the clusters of the pack. The
// indexes start at byte ebase of the inode.
func (l *layout) appendCompact(b []byte, ebase int, advise uint16, n *inode) ([]byte, error) {
	w := l.w
	count := int(lclusterCount(n.size, w.bs))
	init4, c2b, _ := compactSplit(ebase, count, advise&adviseCompacted2B != 0)
	lobits := max(int(w.bits), 12)
	big := advise&adviseBigPcluster1 != 0

	blkaddr := w.zf(n).firstBlock(n)
	dummy := false
	if !big {
		blkaddr--
		dummy = true
	}
	pack := func(entries []lcluster, vcnt, encodebits int) {
		size := zCompactPackSize(vcnt, encodebits)
		b = appendZeros(b, size)
		p := zCompactPack{b: b[len(b)-size:], vcnt: vcnt, bits: encodebits, lobits: uint(lobits)}
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
			p.setEntry(i, c.typ, lo)
		}
		p.setBlkaddr(uint32(base))
	}
	// Entries go in packs of two 16-bit entries up to init4, of sixteen
	// 14-bit entries up to init4+c2b, then of two 16-bit entries; the
	// last pack of each run is padded.
	var group [16]lcluster
	k, i := 0, 0
	err := l.zlclusters(n, advise, func(c lcluster) error {
		group[k] = c
		k++
		i++
		vcnt, bits, runEnd := 2, 16, count
		switch {
		case i <= init4:
			runEnd = init4
		case i <= init4+c2b:
			vcnt, bits, runEnd = 16, 14, init4+c2b
		}
		if k == vcnt || i == runEnd {
			pack(group[:k], vcnt, bits)
			k = 0
		}
		var err error
		b, err = l.flushRecord(b)
		return err
	})
	if err == nil && (i != count || k != 0) {
		err = fmt.Errorf("erofs: internal error: a compressed inode has %d index entries, want %d", i, count)
	}
	return b, err
}

// writeHomeless writes an inline cluster that did not fit its inode's
// block into a block of its own.
func (l *layout) writeHomeless(n *inode) error {
	w := l.w
	z := w.zf(n)
	blk := make([]byte, w.bs)
	data := blk[:z.idata]
	if !z.lastRaw {
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
	if w.opts.Compression == nil {
		return 0, 0, nil
	}
	any, inline, shared := false, false, false
	for _, id := range l.order {
		if z := w.zf(w.inodes.at(id)); z != nil {
			any = true
			if z.idata > 0 && !z.homeless {
				inline = true
			}
			shared = shared || z.shared
		}
	}
	if !any {
		return 0, 0, nil
	}
	incompat = FeatureIncompatZeroPadding
	if inline {
		incompat |= FeatureIncompatZtailpacking
	}
	if w.packedID != noID {
		incompat |= FeatureIncompatFragments
	}
	if shared {
		incompat |= FeatureIncompatDedupe
	}
	c := w.opts.Compression
	pcl := w.maxPclusterSize()
	alg := c.algID()
	if alg == AlgLZ4 && pcl == w.bs {
		return incompat, lz4MaxDistance, nil
	}
	incompat |= FeatureIncompatComprCfgs
	u1 = 1 << alg
	var cfg zAlgConfig
	switch alg {
	case AlgLZ4:
		cfg.lz4MaxDistance, cfg.lz4MaxPclusterBlks = lz4MaxDistance, uint16(pcl/w.bs)
	case AlgLZMA:
		cfg.lzmaDictSize = uint32(lzmaDictSize(pcl))
	case AlgDeflate:
		cfg.deflateWindowBits = 15
	case AlgZstd:
		cfg.zstdWindowLog = uint8(zstdWindowLog(pcl) - 10)
	}
	rec := appendZAlgConfig(nil, alg, cfg)
	return incompat, u1, rec
}
