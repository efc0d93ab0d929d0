package erofs

// Compressed file data (spec §7): the extent mapper of the COMPRESSED_FULL
// and COMPRESSED_COMPACT layouts and the decoding of extents.
//
// A compressed file is cut into logical clusters (lclusters) of L bytes,
// each with an index entry. An extent is the output of one physical
// cluster (pcluster); the lcluster holding its first byte has a HEAD entry
// (start offset within the lcluster, pcluster address), the others it
// covers have NONHEAD entries (distances back to the head, forward to the
// next head). Mapping an offset therefore means: load the entry of its
// lcluster, walk back to the extent's HEAD, walk forward to the next HEAD
// (the extent's end), then work out where and how the pcluster is stored.

import (
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
)

// How a compressed-layout extent is stored.
const (
	zShifted    = iota // PLAIN pcluster: extent byte 0 at pcluster byte 0
	zInterlaced        // PLAIN pcluster, rotated by the extent's block offset
	zCompressed        // compressed stream, right-aligned in the pcluster
	zFragment          // stored in the packed inode
)

// zExtent tells how the bytes of a compressed-layout extent are produced.
type zExtent struct {
	kind    uint8
	alg     uint8 // zCompressed: algorithm id
	partial bool  // the extent is a prefix of the pcluster's output
	inline  bool  // ztailpacking: the pcluster is stored after the indexes
	dev     io.ReaderAt
	pos     int64  // byte offset of the pcluster on dev
	plen    int64  // pcluster size in bytes
	fragOff uint64 // zFragment: offset of the extent's byte 0 in the packed inode
}

// zEntry is a decoded lcluster index entry.
type zEntry struct {
	typ        uint8  // lclusterPlain, lclusterHead1, lclusterNonhead, lclusterHead2
	partial    bool   // HEAD: PARTIAL_REF (full indexes only)
	clusterofs int64  // HEAD: offset of the extent start in this lcluster
	blk        uint64 // HEAD: first block of the pcluster
	delta0     int64  // NONHEAD: lclusters back to the HEAD
	delta1     int64  // NONHEAD: lclusters forward to the next HEAD
	cblk       int64  // NONHEAD with CBLKCNT: pcluster size in blocks, else 0
	hasCblk    bool
}

// zMapper maps the extents of a compressed inode.
type zMapper struct {
	fsys    *FS
	ino     *fsInode
	compact bool
	lbits   uint // log2 of the lcluster size
	advise  uint16
	algs    [2]uint8 // HEAD1 and HEAD2 algorithms
	count   int64    // number of lclusters
	ebase   int64    // full: position of entry 0; compact: of the first pack
	idxEnd  int64    // end of the index area

	// Compact layout (spec §7.6).
	totalIdx   int64 // ceil(i_size / blksz)
	init4, c2b int64
	lobits     uint

	// The tail extent, if it is stored specially.
	tailHead   int64 // HEAD lcluster of the tail extent, -1 if not special
	inlinePos  int64 // ztailpacking: position of the inline pcluster
	inlineSize int64 // ztailpacking: its size (0: no inline pcluster)
	fragment   bool  // the tail extent lives in the packed inode
	fragOff    uint64
	wholeFrag  bool // the whole file lives in the packed inode

	mu    sync.Mutex
	cpos  int64    // image position of cache[0]
	cache []byte   // cached index bytes
	last  fsExtent // the last extent mapped (last.z == nil: none)
}

// zIndexCacheBytes is how many index bytes a zMapper reads at once.
const zIndexCacheBytes = 512

// newZMapper decodes the map header of a compressed inode (spec §7.3).
func (f *FS) newZMapper(i *fsInode) (*zMapper, error) {
	m := &zMapper{fsys: f, ino: i, compact: i.layout == LayoutCompressedCompact, tailHead: -1}
	if i.size == 0 {
		return m, nil // nothing is ever mapped
	}
	hpos := roundUp64(i.metaEnd(), 8)
	var h [mapHeaderSize]byte
	if err := readFull(f.r, h[:], hpos); err != nil {
		return nil, ioErrorf(err, "inode %d: compression map header", i.nid)
	}
	isPacked := f.sb.PackedNid != 0 && i.nid == f.sb.PackedNid
	mh := decodeZMapHeader(h[:])
	if mh.clusterBits&mhClusterBitsFragment != 0 {
		if isPacked {
			return nil, inodeCorruptf(i.nid, "the packed inode is itself a fragment")
		}
		m.wholeFrag = true
		m.fragment = true
		m.fragOff = mh.wholeFragOff
		m.tailHead = 0
		return m, nil
	}
	m.advise = mh.advise
	m.algs = [2]uint8{mh.algorithmType & 15, mh.algorithmType >> 4}
	m.lbits = f.blkBits + uint(mh.clusterBits&15)
	if mh.clusterBits&0x70 != 0 {
		return nil, inodeCorruptf(i.nid, "reserved h_clusterbits bits set (%#x)", mh.clusterBits)
	}
	if m.lbits > 30 {
		return nil, unsupportedf("inode %d: lcluster size 2^%d", i.nid, m.lbits)
	}
	big := m.advise & (adviseBigPcluster1 | adviseBigPcluster2)
	if big != 0 && f.sb.FeatureIncompat&FeatureIncompatBigPcluster == 0 {
		return nil, inodeCorruptf(i.nid, "big pclusters without the superblock feature")
	}
	if m.advise&adviseInlinePcluster != 0 {
		m.inlineSize = int64(mh.idataSize)
	}
	if m.advise&adviseFragmentPcluster != 0 {
		if isPacked {
			return nil, inodeCorruptf(i.nid, "the packed inode has a fragment")
		}
		if m.inlineSize != 0 {
			return nil, inodeCorruptf(i.nid, "both an inline pcluster and a fragment")
		}
		m.fragment = true
		m.fragOff = uint64(mh.fragmentOff)
	}
	m.count = (i.size-1)>>m.lbits + 1
	if m.compact {
		if big != 0 && big != adviseBigPcluster1|adviseBigPcluster2 {
			return nil, inodeCorruptf(i.nid, "compact indexes with inconsistent big pcluster flags (advise %#x)", m.advise)
		}
		m.lobits = max(m.lbits, 12)
		m.totalIdx = (i.size-1)>>f.blkBits + 1
		m.ebase = hpos + mapHeaderSize
		m.init4 = ((32 - m.ebase%32) / 4) & 7
		if m.advise&adviseCompacted2B != 0 && m.init4 < m.totalIdx {
			m.c2b = (m.totalIdx - m.init4) / 16 * 16
		}
		if m.lbits > 14 || (m.c2b > 0 && m.lbits > 12) {
			return nil, unsupportedf("inode %d: compact indexes with lcluster size 2^%d", i.nid, m.lbits)
		}
		pack, size, _, _ := m.compactPos(m.totalIdx - 1)
		m.idxEnd = pack + size
	} else {
		if m.advise&adviseCompacted2B != 0 {
			return nil, unsupportedf("inode %d: encoded extents (48-bit layout)", i.nid)
		}
		m.ebase = hpos + mapHeaderSize + fullIndexReserved
		m.idxEnd = m.ebase + m.count*fullIndexSize
	}
	if f.size >= 0 && m.idxEnd > f.size {
		return nil, inodeCorruptf(i.nid, "compression indexes (%d lclusters) beyond end of image", m.count)
	}
	if m.inlineSize == 0 && !m.fragment {
		return m, nil
	}
	// Find the tail extent's HEAD (and, for ztailpacking, the end of the
	// index entry or pack holding the last lcluster: the inline pcluster
	// follows it).
	last := m.count - 1
	head, he, err := m.headOf(i.size - 1)
	if err != nil {
		return nil, err
	}
	m.tailHead = head
	if m.fragment && !m.compact {
		m.fragOff |= he.blk << 32 // 64-bit fragment offsets keep their high half here
	}
	if m.inlineSize > 0 {
		if m.compact {
			pack, size, _, _ := m.compactPos(last)
			m.inlinePos = pack + size
		} else {
			m.inlinePos = m.ebase + (last+1)*fullIndexSize
		}
		if m.inlinePos&(f.blkSize-1)+m.inlineSize > f.blkSize {
			return nil, inodeCorruptf(i.nid, "inline pcluster (%d bytes at %d) crosses a block boundary", m.inlineSize, m.inlinePos)
		}
	}
	return m, nil
}

// compactPos returns the position and size of the pack holding compact
// index entry lcn, its entry count and lcn's index in it.
func (m *zMapper) compactPos(lcn int64) (pack, size int64, vcnt, idx int) {
	pos := m.ebase
	unit := int64(4)
	if lcn >= m.init4 {
		pos += m.init4 * 4
		lcn -= m.init4
		if lcn < m.c2b {
			unit = 2
		} else {
			pos += m.c2b * 2
			lcn -= m.c2b
		}
	}
	pos += lcn * unit
	vcnt = 2
	if unit == 2 {
		vcnt = 16
	}
	size = int64(vcnt) * unit
	pack = pos - pos%size
	return pack, size, vcnt, int((pos - pack) / unit)
}

// idx returns n index bytes at pos (valid until the next call).
func (m *zMapper) idx(pos, n int64) ([]byte, error) {
	if pos >= m.cpos && pos+n <= m.cpos+int64(len(m.cache)) {
		return m.cache[pos-m.cpos:][:n], nil
	}
	// Lookups walk both ways: read a window around pos.
	start := max(m.ebase, pos-zIndexCacheBytes/4)
	k := max(min(zIndexCacheBytes, m.idxEnd-start), pos+n-start)
	if cap(m.cache) < int(k) {
		m.cache = make([]byte, k)
	}
	m.cache = m.cache[:k]
	if err := readFull(m.fsys.r, m.cache, start); err != nil {
		m.cache = m.cache[:0]
		return nil, ioErrorf(err, "inode %d: reading compression indexes at %d", m.ino.nid, pos)
	}
	m.cpos = start
	return m.cache[pos-start:][:n], nil
}

// entry loads the index entry of lcluster lcn.
func (m *zMapper) entry(lcn int64) (zEntry, error) {
	if lcn < 0 || lcn >= m.count {
		return zEntry{}, inodeCorruptf(m.ino.nid, "lcluster %d out of range (%d lclusters)", lcn, m.count)
	}
	var e zEntry
	var err error
	if m.compact {
		e, err = m.compactEntry(lcn)
	} else {
		e, err = m.fullEntry(lcn)
	}
	if err != nil {
		return zEntry{}, err
	}
	if e.typ != lclusterNonhead && e.clusterofs >= 1<<m.lbits {
		return zEntry{}, inodeCorruptf(m.ino.nid, "lcluster %d: clusterofs %d beyond the lcluster size", lcn, e.clusterofs)
	}
	return e, nil
}

// fullEntry decodes a full (8-byte) index entry (spec §7.5).
func (m *zMapper) fullEntry(lcn int64) (zEntry, error) {
	b, err := m.idx(m.ebase+lcn*fullIndexSize, fullIndexSize)
	if err != nil {
		return zEntry{}, err
	}
	x := decodeZFullIndex(b)
	e := zEntry{typ: x.typ(), partial: x.advise&fullIndexPartialRef != 0}
	if e.typ != lclusterNonhead {
		e.clusterofs = int64(x.clusterofs)
		e.blk = uint64(x.blkaddr)
		return e, nil
	}
	d0 := x.delta[0]
	if d0&deltaCblkcnt != 0 {
		if m.advise&(adviseBigPcluster1|adviseBigPcluster2) == 0 {
			return zEntry{}, inodeCorruptf(m.ino.nid, "lcluster %d: CBLKCNT without big pclusters", lcn)
		}
		e.hasCblk = true
		e.cblk = int64(d0 &^ deltaCblkcnt)
		d0 = 1
	}
	e.delta0 = int64(d0)
	e.delta1 = int64(x.delta[1])
	return e, nil
}

// compactEntry decodes a compact index entry (spec §7.6): the entry's
// type and value, and what is implicit in compact packs: delta[0] of a
// pack's last entry, delta[1] of every entry and the block address of a
// HEAD.
func (m *zMapper) compactEntry(lcn int64) (zEntry, error) {
	pack, size, vcnt, i := m.compactPos(lcn)
	in, err := m.idx(pack, size)
	if err != nil {
		return zEntry{}, err
	}
	p := zCompactPack{b: in[:size], vcnt: vcnt, bits: (int(size)*8 - 32) / vcnt, lobits: m.lobits}
	big := m.advise&adviseBigPcluster1 != 0
	typ, lo := p.entry(i)
	if typ == lclusterNonhead {
		e := zEntry{typ: typ}
		// delta[1]: the distance to the next HEAD in this pack, or past
		// the pack using the last entry's stored delta[1].
		j := i
		var t uint8
		var l uint32
		for ; j < vcnt; j++ {
			if t, l = p.entry(j); t != lclusterNonhead {
				break
			}
		}
		e.delta1 = int64(j - i)
		if j == vcnt && l&deltaCblkcnt == 0 {
			e.delta1 += int64(l) - 1
		}
		switch {
		case lo&deltaCblkcnt != 0:
			if !big {
				return zEntry{}, inodeCorruptf(m.ino.nid, "lcluster %d: CBLKCNT without big pclusters", lcn)
			}
			e.hasCblk = true
			e.cblk = int64(lo &^ deltaCblkcnt)
			e.delta0 = 1
		case i+1 != vcnt:
			e.delta0 = int64(lo)
		default:
			// The last entry stores delta[1]; delta[0] follows from
			// its predecessor.
			t, l := p.entry(i - 1)
			if t != lclusterNonhead {
				l = 0
			} else if l&deltaCblkcnt != 0 {
				l = 1
			}
			e.delta0 = int64(l) + 1
		}
		return e, nil
	}
	e := zEntry{typ: typ, clusterofs: int64(lo)}
	// The block address: the pack's base plus the blocks of the
	// pclusters that start before this entry in the pack.
	var nblk uint64
	if !big {
		nblk = 1
		for j := i; j > 0; {
			j--
			if t, l := p.entry(j); t == lclusterNonhead {
				j -= int(l)
			}
			if j >= 0 {
				nblk++
			}
		}
	} else {
		for j := i; j > 0; {
			j--
			t, l := p.entry(j)
			if t != lclusterNonhead {
				nblk++
				continue
			}
			if l&deltaCblkcnt != 0 {
				j--
				nblk += uint64(l &^ deltaCblkcnt)
				continue
			}
			if l <= 1 {
				return zEntry{}, inodeCorruptf(m.ino.nid, "lcluster %d: bad delta %d in a big-pcluster pack", lcn, l)
			}
			j -= int(l) - 2
		}
	}
	e.blk = uint64(p.blkaddr()) + nblk
	return e, nil
}

// headOf returns the HEAD lcluster of the extent holding offset off, and
// its entry.
func (m *zMapper) headOf(off int64) (int64, zEntry, error) {
	lcn := off >> m.lbits
	e, err := m.entry(lcn)
	if err != nil {
		return 0, zEntry{}, err
	}
	if e.typ != lclusterNonhead {
		if off-lcn<<m.lbits >= e.clusterofs {
			return lcn, e, nil
		}
		// The extent began in an earlier lcluster.
		if lcn == 0 {
			return 0, zEntry{}, inodeCorruptf(m.ino.nid, "no extent holds offset %d", off)
		}
		lcn--
		if e, err = m.entry(lcn); err != nil {
			return 0, zEntry{}, err
		}
	}
	for e.typ == lclusterNonhead {
		if e.delta0 <= 0 || e.delta0 > lcn {
			return 0, zEntry{}, inodeCorruptf(m.ino.nid, "lcluster %d: bad delta[0] %d", lcn, e.delta0)
		}
		lcn -= e.delta0
		if e, err = m.entry(lcn); err != nil {
			return 0, zEntry{}, err
		}
	}
	return lcn, e, nil
}

// extentEnd returns the end of the extent whose HEAD is lcluster head:
// where the next HEAD starts, or the file size.
func (m *zMapper) extentEnd(head int64) (int64, error) {
	lcn := head + 1
	for lcn < m.count {
		e, err := m.entry(lcn)
		if err != nil {
			return 0, err
		}
		if e.typ != lclusterNonhead {
			return min(lcn<<m.lbits+e.clusterofs, m.ino.size), nil
		}
		lcn += max(e.delta1, 1) // delta[1] 0 was written by pre-1.0 mkfs
	}
	return m.ino.size, nil
}

// pclusterBlocks returns the size in blocks of the pcluster of the HEAD
// at lcluster head, from the CBLKCNT of the entry after it.
func (m *zMapper) pclusterBlocks(head int64, typ uint8) (int64, error) {
	bit := uint16(adviseBigPcluster2)
	if typ == lclusterHead1 {
		bit = adviseBigPcluster1
	}
	if m.advise&bit == 0 || head+1 >= m.count {
		return 1, nil
	}
	e, err := m.entry(head + 1)
	if err != nil {
		return 0, err
	}
	if e.typ != lclusterNonhead {
		return 1, nil
	}
	if !e.hasCblk || e.cblk == 0 {
		return 0, inodeCorruptf(m.ino.nid, "lcluster %d: missing CBLKCNT", head+1)
	}
	return e.cblk, nil
}

func (m *zMapper) mapExtent(off int64) (fsExtent, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, i := m.fsys, m.ino
	if m.last.z != nil && off >= m.last.off && off-m.last.off < m.last.n {
		return m.last, nil
	}
	if m.wholeFrag || (m.fragment && m.tailHead == 0) {
		return fsExtent{off: 0, n: i.size, z: &zExtent{kind: zFragment, fragOff: m.fragOff}}, nil
	}
	head, he, err := m.headOf(off)
	if err != nil {
		return fsExtent{}, err
	}
	start := head<<m.lbits + he.clusterofs
	end, err := m.extentEnd(head)
	if err != nil {
		return fsExtent{}, err
	}
	if off < start || off >= end {
		return fsExtent{}, inodeCorruptf(i.nid, "offset %d outside its extent [%d, %d)", off, start, end)
	}
	if end-start > maxExtentSize {
		return fsExtent{}, inodeCorruptf(i.nid, "extent at %d is %d bytes long (max %d)", start, end-start, maxExtentSize)
	}
	ext := fsExtent{off: start, n: end - start}
	if head == m.tailHead && m.fragment {
		ext.z = &zExtent{kind: zFragment, fragOff: m.fragOff}
		m.last = ext
		return ext, nil
	}
	z := &zExtent{partial: he.partial}
	switch he.typ {
	case lclusterPlain:
		z.kind = zShifted
		if m.advise&adviseInterlacedPcluster != 0 {
			z.kind = zInterlaced
		}
	case lclusterHead1:
		z.kind, z.alg = zCompressed, m.algs[0]
	default:
		z.kind, z.alg = zCompressed, m.algs[1]
	}
	if z.kind == zCompressed {
		if z.alg > algMax {
			return fsExtent{}, unsupportedf("inode %d: unknown compression algorithm %d", i.nid, z.alg)
		}
		if f.zcfg.algs&(1<<z.alg) == 0 {
			return fsExtent{}, inodeCorruptf(i.nid, "extent at %d uses %s, which the superblock does not declare", start, algName(z.alg))
		}
	}
	if head == m.tailHead && m.inlineSize > 0 {
		z.inline = true
		z.dev, z.pos, z.plen = f.r, m.inlinePos, m.inlineSize
	} else {
		nb, err := m.pclusterBlocks(head, he.typ)
		if err != nil {
			return fsExtent{}, err
		}
		if nb > maxPclusterSize>>f.blkBits {
			return fsExtent{}, inodeCorruptf(i.nid, "pcluster of %d blocks at lcluster %d (max %d bytes)", nb, head, maxPclusterSize)
		}
		z.plen = nb << f.blkBits
		if z.dev, z.pos, err = f.mapDevice(i.nid, 0, he.blk); err != nil {
			return fsExtent{}, err
		}
	}
	if z.kind != zCompressed && ext.n > z.plen {
		return fsExtent{}, inodeCorruptf(i.nid, "uncompressed extent at %d (%d bytes) larger than its pcluster (%d bytes)", start, ext.n, z.plen)
	}
	ext.z = z
	m.last = ext
	return ext, nil
}

// zCache holds the most recently decoded extents of one file, so that
// sequential reads decode each pcluster once.
type zCache struct {
	mu   sync.Mutex
	max  int
	ents []zCached // most recently used first
}

type zCached struct {
	off  int64
	data []byte
}

// get returns the cached data of the extent at off with n bytes, or
// decodes it with fill. c.mu must be held.
func (c *zCache) get(off, n int64, fill func([]byte) error) ([]byte, error) {
	for k, e := range c.ents {
		if e.off == off && int64(len(e.data)) == n {
			copy(c.ents[1:k+1], c.ents[:k])
			c.ents[0] = e
			return e.data, nil
		}
	}
	var buf []byte
	if len(c.ents) >= c.max {
		// Reuse the least recently used buffer.
		last := c.ents[len(c.ents)-1]
		c.ents = c.ents[:len(c.ents)-1]
		if int64(cap(last.data)) >= n {
			buf = last.data[:n]
		}
	}
	if buf == nil {
		buf = make([]byte, n)
	}
	if err := fill(buf); err != nil {
		return nil, err
	}
	c.ents = append(c.ents, zCached{})
	copy(c.ents[1:], c.ents)
	c.ents[0] = zCached{off: off, data: buf}
	return buf, nil
}

// readCompressed fills p with the bytes at file offset off, which lie in
// the compressed-layout extent e.
func (d *fsData) readCompressed(p []byte, off int64, e fsExtent) error {
	f, z := d.fsys, e.z
	rel := off - e.off
	switch z.kind {
	case zFragment:
		pd, err := f.packedData()
		if err != nil {
			if ce, ok := err.(*corruptError); ok {
				return inodeCorruptf(d.nid, "fragment: %s", ce.msg)
			}
			return fmt.Errorf("erofs: inode %d: fragment: %w", d.nid, err)
		}
		if z.fragOff > math.MaxInt64-uint64(e.n) || int64(z.fragOff)+e.n > pd.size {
			return inodeCorruptf(d.nid, "fragment (%d bytes at %d) beyond the packed inode (%d bytes)", e.n, z.fragOff, pd.size)
		}
		if _, err := pd.ReadAt(p, int64(z.fragOff)+rel); err != nil && err != io.EOF {
			return err
		}
		return nil
	case zShifted:
		if err := readFull(z.dev, p, z.pos+rel); err != nil {
			return ioErrorf(err, "inode %d: reading data at offset %d", d.nid, off)
		}
		return nil
	case zInterlaced:
		// The bytes up to the extent's first block boundary (head of
		// them) sit at the end of the pcluster, the rest at its start.
		head := f.blkSize - e.off&(f.blkSize-1)
		if head > z.plen {
			return inodeCorruptf(d.nid, "interlaced extent at %d: pcluster of %d bytes too small", e.off, z.plen)
		}
		cur := min(head, e.n)
		for len(p) > 0 {
			var src, k int64
			if rel < cur {
				src, k = z.plen-head+rel, cur-rel
			} else {
				src, k = rel-cur, e.n-rel
			}
			k = min(k, int64(len(p)))
			if err := readFull(z.dev, p[:k], z.pos+src); err != nil {
				return ioErrorf(err, "inode %d: reading data at offset %d", d.nid, off)
			}
			p, rel = p[k:], rel+k
		}
		return nil
	}
	d.zc.mu.Lock()
	defer d.zc.mu.Unlock()
	buf, err := d.zc.get(e.off, e.n, func(dst []byte) error { return f.decodeExtent(d.nid, e, dst) })
	if err != nil {
		return err
	}
	copy(p, buf[rel:])
	return nil
}

// srcBufs recycles pcluster read buffers.
var srcBufs = sync.Pool{New: func() any { return new([]byte) }}

// decodeExtent decompresses the compressed extent e into dst (e.n bytes).
func (f *FS) decodeExtent(nid uint64, e fsExtent, dst []byte) error {
	z := e.z
	bp := srcBufs.Get().(*[]byte)
	defer srcBufs.Put(bp)
	if int64(cap(*bp)) < z.plen {
		*bp = make([]byte, z.plen)
	}
	src := (*bp)[:z.plen]
	if err := readFull(z.dev, src, z.pos); err != nil {
		return ioErrorf(err, "inode %d: reading pcluster at %d", nid, z.pos)
	}
	// Skip the zero padding, which lies within the first block.
	first := min(z.plen, f.blkSize-z.pos&(f.blkSize-1))
	k := 0
	for k < int(first) && src[k] == 0 {
		k++
	}
	if k == int(first) {
		return inodeCorruptf(nid, "extent at %d: %s pcluster at %d holds no data", e.off, algName(z.alg), z.pos)
	}
	if err := f.decompress(z.alg, dst, src[k:], z.partial); err != nil {
		if errors.Is(err, errors.ErrUnsupported) {
			return err
		}
		return inodeCorruptf(nid, "extent at %d (%d bytes): %s pcluster at %d (%d bytes): %v", e.off, e.n, algName(z.alg), z.pos, z.plen, err)
	}
	return nil
}

// packedCacheExtents is how many decoded extents of the packed inode are
// kept: consecutive small files often share a pcluster of fragments.
const packedCacheExtents = 4

// packedData returns the reader of the packed inode (fragments, spec
// §7.11), shared by all files of the file system.
func (f *FS) packedData() (*fsData, error) {
	f.packedOnce.Do(func() {
		if f.sb.PackedNid == 0 {
			f.packedErr = corruptf("a file has a fragment but the superblock names no packed inode")
			return
		}
		pi, err := f.inode(f.sb.PackedNid)
		if err != nil {
			f.packedErr = err
			return
		}
		if !pi.isReg() {
			f.packedErr = inodeCorruptf(pi.nid, "packed inode is not a regular file")
			return
		}
		d, err := f.data(pi)
		if err != nil {
			f.packedErr = err
			return
		}
		if d.zc != nil {
			d.zc.max = packedCacheExtents
		}
		f.packed = d
	})
	return f.packed, f.packedErr
}
