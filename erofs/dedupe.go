package erofs

// Compressed data dedupe (Compression.Dedupe, mkfs.erofs -E dedupe). An
// extent whose bytes are already the start of a physical cluster written
// earlier, in any file, points at that cluster instead of being stored
// again; when it uses only a prefix of the cluster's output, its HEAD
// index entry carries PARTIAL_REF (Z_EROFS_LI_PARTIAL_REF in
// fs/erofs/erofs_fs.h). Only full lcluster indexes can say either, so a
// file with such an extent gets full indexes.
//
// Matching runs in the pipeline's sink, which sees the segments in file
// order, so the image does not depend on the number of workers: workers
// compress every segment as they would without dedupe, and the sink
// decides which of their clusters to keep. For each cluster W it first
// looks for a match at W's start; failing that, it scans the positions
// inside W with a rolling hash for the start of a match that reaches past
// W's end. W is then kept, used only up to that position (partially). A
// match is extended byte by byte and followed by further matches where it
// ends (a chain), so an identical file is stored as references only.
//
// Where a chain ends inside a worker cluster, the sink either shortens
// the chain to end where that cluster starts, or compresses the data from
// the chain's end itself, as a worker would, up to a cluster at least
// dedupeRecutSpan further or the segment's end (matching then goes on in
// what it compressed): whichever stores fewer blocks, the latter also on
// a tie, so that what several matches save adds up. The sink compresses
// at most a segment's worth of data per segment. The clusters a chain
// covers are dropped; a chain is taken only when that stores no more
// blocks than without it, and a segment's result is kept only when the
// blocks it saves outweigh what full indexes add to the file's metadata.
// A cluster kept whose stored bytes equal those of one written earlier
// points there (the sharing of equal clusters, see share). The packed
// inode's content (fragments) is deduped like a file's.
//
// Each extent starts in a logical cluster of its own (the kernel finds an
// extent's end at the next HEAD), and an extent of a cluster of several
// blocks must reach a second logical cluster after its HEAD, where the
// index records the cluster's block count (CBLKCNT); matches and cuts
// that would break either rule are not taken.
//
// Memory is bounded whatever the amount of data. The index is a
// direct-mapped table of 1<<dedupeSlotBits clusters, keyed by a Rabin-Karp hash
// of the first block of their data; a newer cluster replaces an older one
// in its slot. A bitmap filter of 1<<dedupeFilterBits bits in front of it
// keeps the per-byte scan in the processor's cache. The data of indexed
// clusters, needed to verify and extend matches, goes to a temporary file
// used as a ring of dedupeRingSize bytes: clusters whose data has been
// overwritten are no longer matched. Together that is about 9 MiB of
// memory, plus the ring's write buffer, the sink's own compressor (made
// when it first compresses) and a segment's output, and dedupeRingSize
// bytes of temporary disk at most.

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"math/bits"
	"os"
	"slices"
	"sort"
)

const (
	dedupeSlotBits   = 18 // log2 of the index's slots (32 bytes each)
	dedupeFilterBits = 22 // log2 of the filter's bits
	dedupeRingSize   = 1 << 30
	dedupeRingBuf    = 4 << 20 // ring bytes buffered before a write
	dedupeCompareBuf = 64 << 10
	// dedupeRecutSpan is the least data the sink compresses itself after
	// a chain that ends inside a cluster, unless the segment ends first.
	dedupeRecutSpan = 256 << 10
	// dedupeRecutMax is the most data the sink compresses itself at once,
	// which bounds the memory of its compressor (an LZMA encoder's grows
	// with its input).
	dedupeRecutMax = 1 << 20
	// dedupeMaxVerify bounds the candidates verified, without a match
	// that pays, while scanning one worker cluster: data with long runs
	// of one byte would otherwise verify at every position.
	dedupeMaxVerify = 8
	// dedupeBase is the rolling hash's multiplier (odd).
	dedupeBase = 0x100000001b3
)

// dedupeEntry is an indexed physical cluster.
type dedupeEntry struct {
	hash   uint64 // rolling hash of its first block of data
	ring   int64  // ring offset of its data
	length uint32 // bytes of data it decodes to; 0 for an empty slot
	addr   uint32 // its first block
	blocks uint16
	raw    bool
}

// dedupe is the sink's dedupe state.
type dedupe struct {
	bs     int
	big    bool // clusters may span several blocks
	outTab [256]uint64
	filter []uint64
	table  []dedupeEntry
	ring   dedupeRing
	cmp    []byte

	// scratch, reused from segment to segment
	cands    []dcand // clusters not settled yet
	spare    []dcand
	res      []pcluster // the segment's extents
	out      []byte     // the blocks of the clusters kept
	sums     []pclusterSum
	recut    [][]byte // outputs of the sink's own compression, to recycle
	chainBuf []dedupeMatch
	verified int   // candidates read back from the ring
	cuts     []int // the segment's planned cuts, during apply
	undo     []dedupeUndo
	same     *sameIndex    // with pcluster sharing, clusters by content
	added    []pclusterSum // what this segment added to same
}

// dedupeUndo is a slot of the index as it was before an insert.
type dedupeUndo struct {
	slot uint64
	old  dedupeEntry
}

// dedupeMatch is one extent of a chain: length bytes at start, pointing
// at the indexed cluster e.
type dedupeMatch struct {
	start, length int
	e             dedupeEntry
}

func newDedupe(bs int, big bool, dir string) *dedupe {
	d := &dedupe{
		bs:     bs,
		big:    big,
		filter: make([]uint64, 1<<dedupeFilterBits/64),
		table:  make([]dedupeEntry, 1<<dedupeSlotBits),
		ring:   dedupeRing{dir: dir, size: dedupeRingSize},
		cmp:    make([]byte, dedupeCompareBuf),
	}
	pow := uint64(1)
	for range bs - 1 {
		pow *= dedupeBase
	}
	for b := range d.outTab {
		d.outTab[b] = uint64(b) * pow
	}
	return d
}

func (d *dedupe) close() { d.ring.close() }

// hash is the rolling hash of b, a block of data.
func (d *dedupe) hash(b []byte) uint64 {
	var h uint64
	for _, c := range b {
		h = h*dedupeBase + uint64(c)
	}
	return h
}

func dedupeSlot(h uint64) uint64 { return (h * 0x9e3779b97f4a7c15) >> (64 - dedupeSlotBits) }

func dedupeBit(h uint64) uint64 { return h >> (64 - dedupeFilterBits) }

// insert indexes the cluster at block addr whose data is data.
func (d *dedupe) insert(data []byte, addr int64, blocks uint32, raw bool) error {
	h := d.hash(data[:d.bs])
	off, err := d.ring.append(data)
	if err != nil {
		return err
	}
	slot := dedupeSlot(h)
	d.undo = append(d.undo, dedupeUndo{slot, d.table[slot]})
	d.table[slot] = dedupeEntry{hash: h, ring: off, length: uint32(len(data)),
		addr: uint32(addr), blocks: uint16(blocks), raw: raw}
	b := dedupeBit(h)
	d.filter[b/64] |= 1 << (b % 64)
	return nil
}

// find looks for an indexed cluster whose data starts with in[p:p+bs],
// whose rolling hash is h, and returns it with the length of the match,
// at most limit-p.
func (d *dedupe) find(in []byte, p, limit int, h uint64) (dedupeEntry, int, error) {
	b := dedupeBit(h)
	if d.filter[b/64]&(1<<(b%64)) == 0 {
		return dedupeEntry{}, 0, nil
	}
	e := d.table[dedupeSlot(h)]
	if e.length == 0 || e.hash != h || !d.ring.holds(e.ring) {
		return dedupeEntry{}, 0, nil
	}
	d.verified++
	want := in[p:min(limit, p+int(e.length))]
	n := 0
	for n < len(want) {
		k := min(len(want)-n, len(d.cmp))
		if err := d.ring.readAt(d.cmp[:k], e.ring+int64(n)); err != nil {
			return dedupeEntry{}, 0, err
		}
		c := commonPrefix(want[n:n+k], d.cmp[:k])
		n += c
		if c < k {
			break
		}
	}
	if n < d.bs {
		return dedupeEntry{}, 0, nil
	}
	return e, n, nil
}

// commonPrefix is the length of the longest common prefix of a and b,
// which have the same length.
func commonPrefix(a, b []byte) int {
	n := 0
	for len(a)-n >= 8 {
		x := binary.LittleEndian.Uint64(a[n:]) ^ binary.LittleEndian.Uint64(b[n:])
		if x != 0 {
			return n + bits.TrailingZeros64(x)/8
		}
		n += 8
	}
	for n < len(a) && a[n] == b[n] {
		n++
	}
	return n
}

// fits reports whether an extent from start to end pointing at e keeps
// the index rules: the next extent starts in a later logical cluster,
// and a cluster of several blocks reaches the one after its HEAD's.
func (d *dedupe) fits(start, end int, blocks uint16, raw bool) bool {
	bs := d.bs
	need := start/bs + 1
	if d.big && !raw && blocks > 1 {
		need++
	}
	return end/bs >= need
}

// dcand is a cluster the sink may keep: one of a worker's, or one it
// compressed itself after a match.
type dcand struct {
	start int         // offset of its data in the segment
	p     pcluster    // as compressed
	out   []byte      // its blocks; nil for an inline cluster
	sum   pclusterSum // with pcluster sharing, the hash of its blocks
}

// setCands makes the clusters of r, whose data starts at start, the
// candidates.
func (d *dedupe) setCands(r zresult, start int) {
	d.cands = d.cands[:0]
	pos, off := start, 0
	for i, e := range r.pclusters {
		c := dcand{start: pos, p: e}
		if len(r.sums) > 0 {
			c.sum = r.sums[i]
		}
		if !e.inline {
			c.out = r.out[off : off+int(e.blocks)*d.bs]
			off += len(c.out)
		}
		d.cands = append(d.cands, c)
		pos += int(e.length)
	}
}

// boundary is the index of the last candidate starting at or before q.
func (d *dedupe) boundary(q int) int {
	c := d.cands
	return sort.Search(len(c), func(i int) bool { return c[i].start > q }) - 1
}

// end is the end of candidate k's data, or of the data for k past the
// last one.
func (d *dedupe) end(k int) int {
	if k >= len(d.cands) {
		c := d.cands[len(d.cands)-1]
		return c.start + int(c.p.length)
	}
	return d.cands[k].start
}

// blocks counts the blocks of candidates i to k-1.
func (d *dedupe) blocks(i, k int) int {
	n := 0
	for _, c := range d.cands[i:k] {
		if !c.p.inline {
			n += int(c.p.blocks)
		}
	}
	return n
}

// chain looks for a chain of matches from p, whose block hashes to h,
// within the first limit bytes of in, and leaves it in d.chainBuf.
func (d *dedupe) chain(in []byte, p, limit int, h uint64) error {
	bs := d.bs
	// A chain stops at the next planned cut (see dedupe_plan.go).
	if i, _ := slices.BinarySearch(d.cuts, p+1); i < len(d.cuts) {
		limit = min(limit, d.cuts[i])
	}
	ms := d.chainBuf[:0]
	for q := p; ; {
		e, n, err := d.find(in, q, limit, h)
		if err != nil {
			return err
		}
		if n == 0 || !d.fits(q, q+n, e.blocks, e.raw) {
			break
		}
		ms = append(ms, dedupeMatch{start: q, length: n, e: e})
		q += n
		if limit-q < bs {
			break
		}
		h = d.hash(in[q : q+bs])
	}
	d.chainBuf = ms
	return nil
}

// shorten finds how the chain in d.chainBuf, dropping candidates from
// first on, can end where a candidate starts: it returns the number of
// matches kept, the length of the last one, the candidate it ends at and
// the blocks dropped, or a gain of -1.
func (d *dedupe) shorten(first int) (n, last, k, gain int) {
	ms := d.chainBuf
	for n = len(ms); n > 0; n-- {
		m := ms[n-1]
		k = d.boundary(m.start + m.length)
		if m.start+m.length == d.end(len(d.cands)) {
			k = len(d.cands)
		}
		if s := d.end(k); s > m.start && d.fits(m.start, s, m.e.blocks, m.e.raw) {
			if k <= first {
				return 0, 0, 0, -1
			}
			return n, s - m.start, k, d.blocks(first, k)
		}
	}
	return 0, 0, 0, -1
}

// appendChain appends the first n matches of d.chainBuf to res, the last
// one last bytes long.
func (d *dedupe) appendChain(res []pcluster, n, last int) []pcluster {
	for i, m := range d.chainBuf[:n] {
		if i == n-1 {
			m.length = last
		}
		res = append(res, pcluster{length: uint32(m.length), blocks: uint32(m.e.blocks), raw: m.e.raw,
			shared: true, addr: m.e.addr, partial: !m.e.raw && m.length < int(m.e.length)})
	}
	return res
}

// recompressor compresses the segment's data from offset from to offset
// to the way a worker does; end says the data ends the segment.
type recompressor func(from, to int, end bool) (zresult, error)

// apply dedupes a segment compressed by a worker: in is the segment's
// data, cuts where a plan ends its clusters (see dedupe_plan.go), r the
// worker's result and next the block the segment's first cluster is to
// be written at; recompress compresses the segment's data from a match's
// end. Unless the blocks saved take more than cost bytes
// (what full indexes add to the file's metadata), it keeps the worker's
// result. It returns the result with the clusters kept and
// shared extents in place of those dropped, and whether any extent is
// shared or partial.
func (d *dedupe) apply(in []byte, cuts []int, r zresult, next int64, cost int, recompress recompressor) (zresult, bool, error) {
	bs := d.bs
	d.cuts = cuts
	defer func() { d.cuts = nil }()
	d.undo, d.added = d.undo[:0], d.added[:0]
	ring := d.ring.mark()
	d.setCands(r, 0)
	d.res, d.out, d.sums = d.res[:0], d.out[:0], d.sums[:0]
	idata, frag := r.idata, r.frag
	own := next
	deduped := false
	budget := zSegmentSize // bytes the sink may compress itself
	keep := func(c dcand, length int) error {
		e := c.p
		d.out = append(d.out, c.out...)
		for len(d.sums) < len(d.res) { // after shared extents
			d.sums = append(d.sums, pclusterSum{})
		}
		d.sums = append(d.sums, c.sum)
		if e.inline {
			d.res = append(d.res, e) // not indexed: it is not in the data area
			return nil
		}
		addr := own
		if d.same != nil && c.sum != (pclusterSum{}) {
			// Equal stored bytes written earlier decode the same: point
			// there instead (see share).
			if a, ok := d.same.addr[c.sum]; ok {
				d.out = d.out[:len(d.out)-len(c.out)]
				e.shared, e.addr, addr = true, a, int64(a)
				deduped = true
			} else if len(d.same.addr) < sameIndexMax {
				if d.same.addr == nil {
					d.same.addr = make(map[pclusterSum]uint32)
				}
				d.same.addr[c.sum] = uint32(own)
				d.added = append(d.added, c.sum)
			}
		}
		if int(e.length) >= bs {
			if err := d.insert(in[c.start:c.start+int(e.length)], addr, e.blocks, e.raw); err != nil {
				return err
			}
		}
		if length < int(e.length) && !e.raw {
			e.partial = true
			deduped = true
		}
		e.length = uint32(length)
		d.res = append(d.res, e)
		if !e.shared {
			own += int64(e.blocks)
		}
		return nil
	}
	// take settles the chain in d.chainBuf found at p, in candidate i: it
	// ends where a candidate starts, or the sink compresses the data
	// from its end; and returns the candidate to go on from, or -1 when
	// the chain is not worth it.
	take := func(i, p int) (int, error) {
		first := i
		if p > d.cands[i].start {
			first = i + 1
		}
		n, last, k, gain := d.shorten(first)
		ms := d.chainBuf
		q := ms[len(ms)-1].start + ms[len(ms)-1].length
		var rc zresult
		recut, whole := false, false
		j := len(d.cands)
		if n != len(ms) || last != ms[len(ms)-1].length {
			// The chain does not end at a candidate: compress from its
			// end to a candidate at least dedupeRecutSpan further, or
			// the rest of the segment.
			j = d.boundary(q) + 1
			for j < len(d.cands) && d.cands[j].start < q+dedupeRecutSpan {
				j++
			}
			// Not past a planned cut, though: only up to it, when the
			// data before it can end there (so that what starts there
			// still starts a cluster), else not at all.
			span := true
			if k, _ := slices.BinarySearch(d.cuts, q+1); k < len(d.cuts) && (j == len(d.cands) || d.cuts[k] < d.cands[j].start) {
				c := d.cuts[k]
				jc, found := slices.BinarySearchFunc(d.cands, c, func(x dcand, c int) int { return cmp.Compare(x.start, c) })
				span = found && gapFits(int64(q), int64(c), int64(bs))
				j = jc
			}
			whole = j == len(d.cands)
			b := len(in)
			if !whole {
				b = d.cands[j].start
			}
			if span && b-q <= min(budget, dedupeRecutMax) {
				var err error
				if rc, err = recompress(q, b, whole); err != nil {
					return -1, err
				}
				budget -= b - q
				nb, at := 0, q
				for _, e := range rc.pclusters {
					if !e.inline {
						nb += int(e.blocks)
					}
					if at+int(e.length) < b {
						at += int(e.length)
					}
				}
				// Unless it ends the segment, the last cluster must end
				// in a later logical cluster than it starts in.
				ok := whole || b/bs > at/bs
				if g := d.blocks(first, j) - nb; ok && g >= 0 && g >= gain {
					recut, gain = true, g
				}
			}
		}
		if !recut && gain < 1 {
			return -1, nil
		}
		if first > i {
			if err := keep(d.cands[i], p-d.cands[i].start); err != nil {
				return -1, err
			}
		}
		deduped = true
		if !recut {
			d.res = d.appendChain(d.res, n, last)
			return k, nil
		}
		d.res = d.appendChain(d.res, len(ms), ms[len(ms)-1].length)
		d.recut = append(d.recut, rc.out)
		rest := append(d.spare[:0], d.cands[j:]...)
		d.setCands(rc, q)
		d.cands = append(d.cands, rest...)
		d.spare = rest
		if whole {
			idata, frag = rc.idata, rc.frag
		}
		return 0, nil
	}
	for i := 0; i < len(d.cands); {
		c := d.cands[i]
		limit := d.end(len(d.cands))
		if last := d.cands[len(d.cands)-1]; last.p.inline {
			limit = last.start
		}
		if c.p.inline || limit-c.start < bs {
			if err := keep(c, int(c.p.length)); err != nil {
				return r, false, err
			}
			i++
			continue
		}
		h := d.hash(in[c.start : c.start+bs])
		if err := d.chain(in, c.start, limit, h); err != nil {
			return r, false, err
		}
		if len(d.chainBuf) > 0 {
			k, err := take(i, c.start)
			if err != nil {
				return r, false, err
			}
			if k >= 0 {
				i = k
				continue
			}
		}
		k, err := d.scan(in, i, limit, h, take)
		if err != nil {
			return r, false, err
		}
		if k >= 0 {
			i = k
			continue
		}
		if err := keep(c, int(c.p.length)); err != nil {
			return r, false, err
		}
		i++
	}
	if deduped && (len(r.out)-len(d.out))/bs*bs <= cost {
		// Not worth full indexes: undo, and keep the worker's clusters.
		for i := len(d.undo) - 1; i >= 0; i-- {
			d.table[d.undo[i].slot] = d.undo[i].old
		}
		for _, k := range d.added {
			delete(d.same.addr, k)
		}
		d.ring.rewind(ring)
		d.undo, d.added = d.undo[:0], d.added[:0]
		d.res, d.out, d.sums = d.res[:0], d.out[:0], d.sums[:0]
		own, deduped = next, false
		idata, frag = r.idata, r.frag
		d.setCands(r, 0)
		for _, c := range d.cands {
			if err := keep(c, int(c.p.length)); err != nil {
				return r, false, err
			}
		}
	}
	r.out, r.pclusters, r.idata, r.frag = d.out, d.res, idata, frag
	if len(r.sums) > 0 {
		for len(d.sums) < len(d.res) {
			d.sums = append(d.sums, pclusterSum{})
		}
		r.sums = d.sums
	}
	return r, deduped, nil
}

// cutFrom is the first position candidate i can be cut at: it keeps its
// own logical cluster, and the next one too when it needs a CBLKCNT.
func (d *dedupe) cutFrom(i int) int {
	bs := d.bs
	w := d.cands[i]
	first := w.start/bs + 1
	if d.big && !w.p.raw && w.p.blocks > 1 {
		first++
	}
	return max(w.start+1, first*bs)
}

// scan looks inside candidate i, whose first block hashes to h, for the
// start of a chain that take accepts, and returns what take returned, or
// -1.
func (d *dedupe) scan(in []byte, i, limit int, h uint64, take func(i, p int) (int, error)) (int, error) {
	bs := d.bs
	w := d.cands[i].p
	pos := d.cands[i].start
	end := pos + int(w.length)
	from, to := d.cutFrom(i), min(end, limit-bs+1)
	if from >= to {
		return -1, nil
	}
	for q := pos; q < from; q++ {
		h = (h-d.outTab[in[q]])*dedupeBase + uint64(in[q+bs])
	}
	base := d.verified
	filter := d.filter
	for q := from; q < to; q++ {
		b := dedupeBit(h)
		if filter[b/64]&(1<<(b%64)) != 0 {
			if err := d.chain(in, q, limit, h); err != nil {
				return -1, err
			}
			if len(d.chainBuf) > 0 {
				k, err := take(i, q)
				if err != nil || k >= 0 {
					return k, err
				}
			}
			if d.verified-base >= dedupeMaxVerify {
				break
			}
		}
		if q+1 < to {
			h = (h-d.outTab[in[q]])*dedupeBase + uint64(in[q+bs])
		}
	}
	return -1, nil
}

// dedupeRing keeps the data of indexed clusters in a temporary file used
// as a ring: offsets count every byte appended, and the file holds the
// last size of them.
type dedupeRing struct {
	dir     string
	size    int64
	file    *os.File
	end     int64  // bytes appended
	flushed int64  // bytes written to the file; the rest is in buf
	buf     []byte // bytes from flushed to end
	floor   int64  // no data below: overwritten before a rewind
}

// holds reports whether the data from off is still in the ring.
func (r *dedupeRing) holds(off int64) bool { return off >= max(r.end-r.size, r.floor) }

// mark returns the ring's end, for rewind.
func (r *dedupeRing) mark() int64 { return r.end }

// rewind forgets what was appended since mark returned end.
func (r *dedupeRing) rewind(end int64) {
	r.floor = max(r.floor, r.flushed-r.size)
	if r.flushed > end {
		r.flushed, r.buf = end, r.buf[:0]
	} else {
		r.buf = r.buf[:end-r.flushed]
	}
	r.end = end
}

// append adds p, at most the ring's size, and returns its offset.
func (r *dedupeRing) append(p []byte) (int64, error) {
	off := r.end
	if len(r.buf)+len(p) > dedupeRingBuf && len(r.buf) > 0 {
		if err := r.flush(); err != nil {
			return 0, err
		}
	}
	if r.buf == nil {
		r.buf = make([]byte, 0, dedupeRingBuf)
	}
	r.buf = append(r.buf, p...)
	r.end += int64(len(p))
	if len(r.buf) >= dedupeRingBuf {
		return off, r.flush()
	}
	return off, nil
}

func (r *dedupeRing) flush() error {
	if r.file == nil {
		f, err := os.CreateTemp(r.dir, "rafs-dedupe-*")
		if err != nil {
			return fmt.Errorf("erofs: dedupe: %w", err)
		}
		os.Remove(f.Name()) // reached only through its descriptor
		r.file = f
	}
	b := r.buf
	for len(b) > 0 {
		at := r.flushed % r.size
		k := min(int64(len(b)), r.size-at)
		if _, err := r.file.WriteAt(b[:k], at); err != nil {
			return fmt.Errorf("erofs: dedupe: %w", err)
		}
		b = b[k:]
		r.flushed += k
	}
	r.buf = r.buf[:0]
	return nil
}

// readAt reads len(p) bytes from offset off, which holds says are there.
func (r *dedupeRing) readAt(p []byte, off int64) error {
	for len(p) > 0 {
		if off >= r.flushed {
			copy(p, r.buf[off-r.flushed:])
			return nil
		}
		at := off % r.size
		k := min(int64(len(p)), r.flushed-off, r.size-at)
		if _, err := r.file.ReadAt(p[:k], at); err != nil {
			return fmt.Errorf("erofs: dedupe: %w", err)
		}
		p = p[k:]
		off += k
	}
	return nil
}

func (r *dedupeRing) close() {
	if r.file != nil {
		r.file.Close()
		r.file = nil
	}
	r.buf = nil
}
