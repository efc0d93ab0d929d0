package erofs

// The compressed-data pipeline of the Writer. Add cuts each regular file
// into segments of at most zSegmentSize bytes and submits them to a
// pipeline (erofs/pipeline): workers compress segments into physical
// clusters on every core; the sink takes the results in the order they
// were submitted and writes them, so the image does not depend on the
// number of workers. A segment is compressed independently of the others,
// which bounds memory and lets the pieces of one large file compress in
// parallel.
//
// While the pipeline runs, the sink owns the data area (the output, the
// spool, the next free block and the data checksum, in a zsink) and the
// Writer does not touch it; where each file went comes back to the Writer
// as a placedFile value, which it applies to the file's inode. Close gets
// the data area back from the sink once the pipeline has ended.

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"sync"

	"github.com/rafs-dev/rafs/erofs/pipeline"
)

// zSegmentSize is the most file data compressed as one unit. No pcluster
// crosses a segment boundary.
const zSegmentSize = 4 << 20

// zInflight bounds the bytes of file data queued or being compressed.
const zInflight = 16 << 20

// pcluster is one physical cluster of a compressed file, as the writer
// records it: length bytes of file data stored in blocks blocks. (The
// reader's zExtent, in contrast, says how to produce the bytes of an
// extent it maps.)
type pcluster struct {
	length uint32
	blocks uint32 // physical blocks; 1 for an inline cluster (as mkfs records it)
	raw    bool   // stored uncompressed (a PLAIN lcluster)
	inline bool   // the file's tail cluster, stored in the inode's block
	frag   bool   // the file's fragment, in the packed inode (never spooled)
	// shared says the pcluster is an earlier one, at block addr, that
	// this extent points at; partial that the extent is a prefix of its
	// output (PARTIAL_REF). Files with either have full indexes.
	shared  bool
	partial bool
	addr    uint32
}

// zfile is the compressed form of a regular file, made by the sink and
// handed to the Writer in the file's placedFile. The pclusters wait in the
// spool, so that memory does not grow with the data.
type zfile struct {
	pclOff   int64 // spool offset of the pclusters, pclusterRecordSize bytes each, in file order
	nPcl     int64 // number of pclusters
	lastRaw  bool  // the last pcluster is stored raw
	blocks   int64 // physical blocks, not counting an inline cluster
	idata    int   // bytes of the inline cluster
	idataOff int64 // its offset in the spool
	fragOff  int64 // offset of the fragment in the packed inode's content
	fragLen  int64 // bytes of the fragment: the file's last fragLen bytes; 0 for none
	full     bool  // use full (8-byte) lcluster indexes
	shared   bool  // some extent points at a pcluster written before it (dedupe)
	homeless bool  // the inline cluster did not fit; Close gives it a block
	homeBlk  int64 // that block
	hint     int64 // the next free block when the file was written
}

// zjob is one segment of a file on its way through the pipeline, with
// what the Writer knew of the file when it submitted the segment.
type zjob struct {
	id    uint32 // the file's inode
	size  int64  // the file's size
	meta  int    // its inode core and xattr body, in bytes, as planned at Add
	in    []byte
	first bool // the file's first segment
	last  bool // the file's last segment
	// packed marks the packed inode's content, which is compressed with
	// the packed inode's cluster size and has no fragment itself.
	packed bool
	// shared is how many bytes at the end of in an earlier fragment
	// already holds: compression stops once what is left lies within
	// them, and that is the segment's fragment.
	shared int
	// cuts are offsets in in, increasing, where a pcluster is to end
	// (dedupe's plan for the packed inode, see dedupe_plan.go); base is
	// where in starts, counted from a logical cluster boundary. A cut
	// that would put two pclusters' starts in one logical cluster is
	// ignored.
	cuts []int
	base int
	// full gives the file full lcluster indexes from its first segment.
	full bool
}

// zresult is a segment compressed by a worker.
type zresult struct {
	out       []byte        // physical clusters, whole blocks
	pclusters []pcluster    // in file order
	idata     []byte        // inline cluster, when the last pcluster is inline
	sums      []pclusterSum // with pcluster sharing: the hash of each stored pcluster, in order
	frag      []byte        // data for the packed inode: the segment's end, after the pclusters
}

// placedFile is where the sink put a file's data. It is final in the
// output of the file's last segment.
type placedFile struct {
	z      *zfile // the compressed form; nil for a file stored uncompressed
	start  int64  // first data block, -1 for none
	tail   int64  // uncompressed with an inline tail: its spool offset
	id     uint32
	inline bool // uncompressed with an inline tail
	final  bool
}

// place applies a file's placement to its inode.
func (w *Writer) place(o placedFile) {
	if !o.final {
		return
	}
	n := w.inodes.at(o.id)
	n.setStartBlk(o.start)
	if o.z == nil {
		n.setInline(o.inline)
		n.data = o.tail
		return
	}
	n.data = int64(len(w.zfiles))
	n.flags |= flagZ
	w.zfiles = append(w.zfiles, o.z)
}

// appendZeros appends n zero bytes to b.
func appendZeros(b []byte, n int) []byte {
	b = slices.Grow(b, n)
	b = b[:len(b)+n]
	clear(b[len(b)-n:])
	return b
}

// bufPool recycles the pipeline's buffers by power-of-two size class, so
// a layer's worth of data does not pass through the garbage collector.
type bufPool struct {
	classes [24]sync.Pool
}

func sizeClass(n int) int { return bits.Len(uint(max(n, 4096) - 1)) }

// get returns a buffer of length n.
func (b *bufPool) get(n int) []byte {
	c := sizeClass(n)
	if c >= len(b.classes) {
		return make([]byte, n)
	}
	if v, ok := b.classes[c].Get().(*[]byte); ok {
		return (*v)[:n]
	}
	return make([]byte, n, 1<<c)
}

// put recycles a buffer from get.
func (b *bufPool) put(p []byte) {
	c := sizeClass(cap(p))
	if c < len(b.classes) && cap(p) == 1<<c {
		p = p[:0]
		b.classes[c].Put(&p)
	}
}

// zpipe is the running pipeline, as the Writer sees it.
type zpipe struct {
	pipe   *pipeline.Pipeline[*zjob, zresult, placedFile]
	bufs   *bufPool
	sink   *zsink       // the sink's state: the Writer's again after close
	placed []placedFile // outputs taken from the pipeline, being applied
}

// zcoder is a compressor for one physical cluster size and its scratch
// buffer.
type zcoder struct {
	c   compressor
	dst []byte
	pcl int
}

func newZcoder(c *Compression, pcl int) (*zcoder, error) {
	comp, err := newCompressor(c, pcl)
	if err != nil {
		return nil, err
	}
	return &zcoder{c: comp, dst: make([]byte, pcl), pcl: pcl}, nil
}

// zworker is one worker's compressors.
type zworker struct {
	files   *zcoder // for files
	packed  *zcoder // for the packed inode; made when first needed
	conf    *Compression
	bs      int
	tail    bool // ztailpacking
	frag    bool // fragments
	allFrag bool // all-fragments
	sums    bool // hash each pcluster, for the sink to share equal ones
	bufs    *bufPool
}

// zsink is the state of the pipeline's sink: the data area, which it
// owns while the pipeline runs, and the compressed file being written.
type zsink struct {
	out         *seqWriter
	spool       *spool
	bufs        *bufPool
	bs          int
	noInline    bool
	next        int64  // next free block
	crc         uint32 // CRC-32C of the file data written
	dataLen     int64
	frags       *fragStore // the packed inode's content, with fragments
	same        *sameIndex // pclusters written, by content, to share equal ones
	head        *zworker   // compresses the heads of files whose ends are shared fragments
	cur         *zfile     // the file being written
	start       int64      // its first block
	pclBuf      []byte     // pclusters on their way to the spool
	dd          *dedupe    // nil without Compression.Dedupe
	z           zworker    // the sink's own compressors, for dedupe
	pcl         int        // the largest cluster of a file
	conf        *Compression
	coder       *zcoder // s.head's and s.z's compressor for files; made when first needed
	fullIndexes bool    // every file has full indexes
}

func (w *Writer) startPipe() error {
	c := w.opts.Compression
	bufs := &bufPool{}
	workers := make([]zworker, c.Workers)
	if c.Workers == 0 {
		workers = make([]zworker, runtime.GOMAXPROCS(0))
	}
	for i := range workers {
		coder, err := newZcoder(c, w.pclusterSize())
		if err != nil {
			return err
		}
		workers[i] = zworker{files: coder, conf: c, bs: w.bs, tail: c.Ztailpacking,
			frag: c.Fragments || c.AllFragments, allFrag: c.AllFragments,
			sums: c.sharesPclusters(), bufs: bufs}
	}
	s := &zsink{out: w.out, spool: &w.spool, bufs: bufs, bs: w.bs, noInline: w.opts.NoInlineData, next: w.nextBlock}
	if c.Fragments || c.AllFragments {
		s.frags = &fragStore{sp: spool{dir: w.opts.TempDir}, mode: c.FragDedupe}
	}
	if c.sharesPclusters() {
		s.same = &sameIndex{}
	}
	if c.AllFragments && c.FragDedupe == FragDedupeFull {
		s.head = &zworker{conf: c, bs: w.bs, frag: true, sums: c.sharesPclusters(), bufs: bufs}
	}
	s.conf, s.pcl = c, w.pclusterSize()
	if c.Dedupe {
		s.dd = newDedupe(w.bs, w.maxPclusterSize() > w.bs, w.opts.TempDir)
		s.dd.same = s.same
		s.fullIndexes = c.FullIndexes || w.bits > 14
		s.z = zworker{conf: c, bs: w.bs, tail: c.Ztailpacking, sums: c.sharesPclusters(),
			frag: c.Fragments || c.AllFragments, allFrag: c.AllFragments, bufs: bufs}
	}
	p := &zpipe{bufs: bufs, sink: s}
	p.pipe = pipeline.New(pipeline.Config{Workers: len(workers), Jobs: 1024, Budget: zInflight},
		func(i int, j *zjob) (zresult, error) { return workers[i].compress(j) },
		s.write)
	w.zp = p
	return nil
}

// pclusterSize is the largest physical cluster of a compressed file.
func (w *Writer) pclusterSize() int {
	if p := w.opts.Compression.PclusterSize; p != 0 {
		return p
	}
	return w.bs
}

// packedPclusterSize is the largest physical cluster of the packed inode.
func (w *Writer) packedPclusterSize() int {
	if p := w.opts.Compression.PackedPclusterSize; p != 0 {
		return p
	}
	return w.pclusterSize()
}

// maxPclusterSize is the largest physical cluster of the image: what the
// superblock's compression configuration and big pcluster flags allow.
func (w *Writer) maxPclusterSize() int {
	c := w.opts.Compression
	if c.Fragments || c.AllFragments {
		return max(w.pclusterSize(), w.packedPclusterSize())
	}
	return w.pclusterSize()
}

// addCompressed reads a regular file's data and submits it. meta is the size of
// the file's inode core and xattr body with every xattr inline.
func (w *Writer) addCompressed(id uint32, n *inode, meta int, r io.Reader) error {
	return w.submit(id, n, meta, r, false, nil)
}

// submit reads a regular file's data and submits it in segments; packed
// says it is the packed inode's, cuts (increasing offsets in the data)
// where its pclusters are to end, which also gives it full indexes.
func (w *Writer) submit(id uint32, n *inode, meta int, r io.Reader, packed bool, cuts []int64) error {
	p := w.zp
	if r == nil {
		return errors.New("no data reader for a non-empty file")
	}
	for off := int64(0); off < n.size; {
		size := int(min(n.size-off, zSegmentSize))
		if err := p.pipe.Acquire(size); err != nil {
			return err
		}
		j := &zjob{id: id, size: n.size, meta: meta, in: p.bufs.get(size), first: off == 0, last: off+int64(size) == n.size, packed: packed,
			full: off == 0 && len(cuts) > 0}
		for len(cuts) > 0 && cuts[0] <= off {
			cuts = cuts[1:]
		}
		for _, c := range cuts {
			if c >= off+int64(size) {
				break
			}
			j.cuts = append(j.cuts, int(c-off))
		}
		if _, err := io.ReadFull(r, j.in); err != nil {
			p.bufs.put(j.in)
			p.pipe.Release(size)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("data: %w", err)
		}
		off += int64(size)
		if err := p.pipe.Submit(j, size); err != nil {
			return err
		}
	}
	w.applyPlaced()
	return nil
}

// applyPlaced applies the placements the sink has made so far.
func (w *Writer) applyPlaced() {
	p := w.zp
	p.placed = p.pipe.Take(p.placed[:0])
	for _, o := range p.placed {
		w.place(o)
	}
	clear(p.placed)
}

// closePipe waits for every submitted segment to be written, applies the
// last placements and takes the data area back from the sink.
func (w *Writer) closePipe() error {
	err := w.zp.pipe.Close()
	w.applyPlaced()
	s := w.zp.sink
	if s.frags != nil {
		s.frags.sp.close()
	}
	if s.dd != nil {
		s.dd.close()
	}
	w.nextBlock, w.dataCRC, w.dataLen = s.next, s.crc, s.dataLen
	w.zp = nil
	return err
}

// compress cuts a segment into pclusters, the way mkfs.erofs does: each
// physical cluster holds as much input as it can; a cluster whose
// compressed blocks would not be fewer than its input is stored raw, one
// block at a time; a file's final block or less is stored raw unless it
// can go inline.
func (z *zworker) compress(j *zjob) (zresult, error) {
	r, err := z.cut(j)
	if err == nil && z.sums {
		r.sum(z.bs)
	}
	return r, err
}

// cut compresses a segment into pclusters (see compress).
func (z *zworker) cut(j *zjob) (zresult, error) {
	coder, err := z.coder(j.packed)
	if err != nil {
		return zresult{}, err
	}
	bs, c, dst, pcl := z.bs, coder.c, coder.dst, coder.pcl
	in := j.in
	if z.allFrag && !j.packed {
		return zresult{frag: in}, nil
	}
	c.reset()
	// A file's end that would fill only part of a pcluster goes to the
	// packed inode with fragments, the way mkfs.erofs -E fragments packs
	// it: what is left once it is a pcluster or less, or once it all
	// compresses into less than one.
	mayFrag := z.frag && j.last && !j.packed
	// The packed inode's index is too large for an inline tail to fit
	// its block; one that does not fit would cost it compact indexes.
	mayInline := z.tail && j.last && !mayFrag && !j.packed
	r := zresult{out: z.bufs.get(roundUp(len(in), bs) + bs)[:0]}
	cuts := j.cuts
	if mayFrag || mayInline {
		cuts = nil // a file's end is decided by what is left of it
	}
	for pos := 0; pos < len(in); {
		// The cluster ends by the next cut that starts a later logical
		// cluster than pos.
		for len(cuts) > 0 && (cuts[0] <= pos || (j.base+cuts[0])/bs == (j.base+pos)/bs) {
			cuts = cuts[1:]
		}
		lim := len(in)
		if len(cuts) > 0 {
			lim = cuts[0]
		}
		rem := lim - pos
		if left := len(in) - pos; mayFrag && left <= pcl || left <= j.shared {
			r.frag = in[pos:]
			break
		}
		if rem <= bs && !mayInline {
			pos += z.raw(&r, in[pos:], rem)
			continue
		}
		n, used := c.destSize(dst, in[pos:lim])
		if n > len(dst) || used > rem {
			return r, errors.New("erofs: internal error: compressor overran its buffers")
		}
		stored := n
		inlineOK := mayInline && used == rem && n < bs
		if !inlineOK {
			stored = roundUp(n, bs)
		}
		if n == 0 || used == 0 || stored >= used {
			if mayInline && rem < bs {
				r.pclusters = append(r.pclusters, pcluster{length: uint32(rem), blocks: 1, raw: true, inline: true})
				r.idata = in[pos:]
				pos = len(in)
				continue
			}
			span := rem
			if n > 0 && used > 0 {
				span = used
			}
			span = min(span, pcl)
			// Store span bytes raw, a block per pcluster; what a last,
			// partial block would hold is left for the next round.
			k := max(span/bs, 1) * bs
			if lim < len(in) && rem-min(k, rem) < 3*bs {
				// The rest of the window is stored raw: end it at the cut.
				if n, err := z.rawTo(&r, coder, in[pos:lim], j.base+pos); n > 0 || err != nil {
					pos += n
					if err != nil {
						return r, err
					}
					continue
				}
			}
			pos += z.raw(&r, in[pos:], min(k, rem))
			continue
		}
		if mayFrag && used == rem && n < pcl {
			r.frag = in[pos:]
			break
		}
		if inlineOK {
			r.pclusters = append(r.pclusters, pcluster{length: uint32(used), blocks: 1, inline: true})
			r.idata = append([]byte(nil), dst[:n]...)
			pos += used
			continue
		}
		if mayInline && used == rem && n%bs != 0 && n > bs {
			// The file ends here: see whether one block less holds all but
			// a tail that fits inline.
			small := make([]byte, n/bs*bs) // rare: once per file at most
			n2, used2 := c.destSize(small, in[pos:lim])
			if n2 > 0 && used2 > 0 && n2+(rem-used2) < stored {
				n, used, stored = n2, used2, roundUp(n2, bs)
				copy(dst, small[:n2])
			}
		}
		blocks := stored / bs
		r.out = appendZeros(r.out, stored-n) // 0padding
		r.out = append(r.out, dst[:n]...)
		r.pclusters = append(r.pclusters, pcluster{length: uint32(used), blocks: uint32(blocks)})
		pos += used
	}
	return r, nil
}

// coder returns the compressor for a file's data or the packed inode's.
func (z *zworker) coder(packed bool) (*zcoder, error) {
	if !packed {
		return z.files, nil
	}
	if z.packed == nil {
		p := z.conf.PackedPclusterSize
		if p == 0 || p == z.files.pcl {
			z.packed = z.files
		} else {
			c, err := newZcoder(z.conf, p)
			if err != nil {
				return nil, err
			}
			z.packed = c
		}
	}
	return z.packed, nil
}

// rawTo stores b, which starts at offset at from a logical cluster
// boundary, so that what follows b may start a pcluster: each pcluster
// must start in a logical cluster of its own. b goes into raw blocks
// where that is enough, the last of them partial; otherwise its last
// 2 blocks and what the partial one would hold go into one compressed
// pcluster of three blocks, as many as the raw blocks it replaces. Either
// way the blocks before start where b does, as dedupe's plan expects of
// the first copy of data that recurs. It returns len(b), or 0 when
// neither is possible.
func (z *zworker) rawTo(r *zresult, coder *zcoder, b []byte, at int) (int, error) {
	bs := z.bs
	f := len(b) % bs
	if f == 0 || at%bs+f >= bs {
		return z.raw(r, b, len(b)), nil
	}
	tail := 2*bs + f
	if len(b) < tail || coder.pcl < 3*bs {
		return 0, nil
	}
	dst := z.bufs.get(3 * bs)
	defer z.bufs.put(dst)
	n, used := coder.c.destSize(dst, b[len(b)-tail:])
	if used != tail {
		return 0, nil
	}
	if n > len(dst) {
		return 0, errors.New("erofs: internal error: compressor overran its buffer")
	}
	z.raw(r, b, len(b)-tail)
	stored := roundUp(n, bs)
	r.out = appendZeros(r.out, stored-n) // 0padding
	r.out = append(r.out, dst[:n]...)
	r.pclusters = append(r.pclusters, pcluster{length: uint32(tail), blocks: uint32(stored / bs)})
	return len(b), nil
}

// raw stores the first count bytes of b uncompressed, one block per
// pcluster, and returns count.
func (z *zworker) raw(r *zresult, b []byte, count int) int {
	bs := z.bs
	for done := 0; done < count; {
		k := min(bs, count-done)
		r.out = append(r.out, b[done:done+k]...)
		r.out = appendZeros(r.out, bs-k)
		r.pclusters = append(r.pclusters, pcluster{length: uint32(k), blocks: 1, raw: true})
		done += k
	}
	return count
}

// filesCoder returns the sink's own compressor for files, which dedupe and
// the heads of files whose ends are shared fragments share: it is made
// when first needed, since an LZMA coder is large, and only once.
func (s *zsink) filesCoder() (*zcoder, error) {
	if s.coder == nil {
		c, err := newZcoder(s.conf, s.pcl)
		if err != nil {
			return nil, err
		}
		s.coder = c
	}
	return s.coder, nil
}

// write writes a compressed segment, in submission order, and recycles
// its buffers.
func (s *zsink) write(j *zjob, r zresult) (placedFile, error) {
	o, err := s.place(j, r)
	s.bufs.put(j.in)
	s.bufs.put(r.out)
	if err != nil {
		return o, fmt.Errorf("erofs: writing data: %w", err)
	}
	return o, nil
}

func (s *zsink) place(j *zjob, r zresult) (placedFile, error) {
	if j.first {
		s.cur = &zfile{hint: s.next, full: j.full}
		s.start = s.next
	}
	// A single-segment file is kept until its end is known, so it can be
	// stored uncompressed if compression does not pay.
	if j.first && j.last && r.frag == nil && s.fallback(j, r) {
		return s.writeFlat(j)
	}
	cur := s.cur
	if s.dd != nil {
		var deduped bool
		var err error
		last, packed := j.last, j.packed
		// Full indexes cost the file about 6 more bytes per logical
		// cluster than compact ones, unless it has them anyway.
		cost := 0
		if !cur.full && !s.fullIndexes {
			cost = 6 * int(lclusterCount(j.size, s.bs))
		}
		r, deduped, err = s.dd.apply(j.in, j.cuts, r, s.next, cost, func(from, to int, end bool) (zresult, error) {
			if s.z.files == nil {
				var err error
				if s.z.files, err = s.filesCoder(); err != nil {
					return zresult{}, err
				}
			}
			return s.z.compress(&zjob{in: j.in[from:to], last: last && end, packed: packed,
				cuts: subCuts(j.cuts, from, to), base: j.base + from})
		})
		for _, b := range s.dd.recut {
			s.bufs.put(b)
		}
		s.dd.recut = s.dd.recut[:0]
		if err != nil {
			return placedFile{}, err
		}
		if deduped {
			cur.shared, cur.full = true, true
		}
		// Dedupe has shared equal clusters itself (it indexes the ones
		// kept at the blocks they are about to take).
		r.sums = nil
	}
	if err := s.apply(cur, r); err != nil {
		return placedFile{}, err
	}
	if r.frag != nil {
		if err := s.placeFragment(j, r); err != nil {
			return placedFile{}, err
		}
	}
	if !j.last {
		return placedFile{}, nil
	}
	o := placedFile{z: cur, start: s.start, id: j.id, final: true}
	if cur.blocks == 0 {
		o.start = -1
	}
	s.cur = nil
	return o, nil
}

// apply writes the pclusters of the file being written that r holds,
// records them in the spool, and spools its inline cluster.
func (s *zsink) apply(cur *zfile, r zresult) error {
	if s.same != nil && r.sums != nil {
		if err := s.share(cur, r); err != nil {
			return err
		}
	} else if err := s.writeOut(cur, r.out); err != nil {
		return err
	}
	if len(r.pclusters) > 0 {
		s.pclBuf = s.pclBuf[:0]
		for _, e := range r.pclusters {
			s.pclBuf = appendPcluster(s.pclBuf, e)
		}
		off, err := s.spool.write(s.pclBuf)
		if err != nil {
			return err
		}
		if cur.nPcl == 0 {
			cur.pclOff = off
		} else if off != cur.pclOff+cur.nPcl*pclusterRecordSize {
			return errors.New("internal error: a file's pclusters are not together in the spool")
		}
		cur.nPcl += int64(len(r.pclusters))
		cur.lastRaw = r.pclusters[len(r.pclusters)-1].raw
	}
	if r.idata != nil {
		off, err := s.spool.write(r.idata)
		if err != nil {
			return err
		}
		cur.idata, cur.idataOff = len(r.idata), off
	}
	return nil
}

// writeOut writes pclusters of the file being written, whole blocks.
func (s *zsink) writeOut(cur *zfile, b []byte) error {
	blocks := int64(len(b)) / int64(s.bs)
	if s.next+blocks > math.MaxUint32 {
		return fmt.Errorf("image exceeds %d blocks", uint64(math.MaxUint32))
	}
	if _, err := s.out.Write(b); err != nil {
		return err
	}
	s.crc = crc32.Update(s.crc, castagnoli, b)
	s.dataLen += int64(len(b))
	s.next += blocks
	cur.blocks += blocks
	return nil
}

// fallback reports whether a one-segment file is better stored
// uncompressed: when its clusters, inline data and full index would take
// at least the file's size, as mkfs.erofs decides.
func (s *zsink) fallback(j *zjob, r zresult) bool {
	total := int64(len(r.out)) + int64(len(r.idata)) +
		int64(mapHeaderSize+fullIndexReserved) + fullIndexSize*lclusterCount(j.size, s.bs)
	return total >= j.size
}

func lclusterCount(size int64, bs int) int64 { return (size + int64(bs) - 1) / int64(bs) }

// writeFlat writes a one-segment file's data uncompressed, as writeData
// does.
func (s *zsink) writeFlat(j *zjob) (placedFile, error) {
	bs := int64(s.bs)
	data := j.in
	fp, err := newFlatPlan(j.size, j.meta, s.bs, s.noInline, s.next)
	if err != nil {
		return placedFile{}, err
	}
	full := j.size / bs
	body := data[:full*bs]
	if !fp.inline {
		body = data
	}
	if _, err := s.out.Write(body); err != nil {
		return placedFile{}, err
	}
	if err := s.out.padTo(bs); err != nil {
		return placedFile{}, err
	}
	s.crc = crc32.Update(s.crc, castagnoli, data)
	s.dataLen += j.size
	o := placedFile{start: fp.start, id: j.id, inline: fp.inline, final: true}
	if fp.inline {
		if o.tail, err = s.spool.write(data[full*bs:]); err != nil {
			return placedFile{}, err
		}
	}
	s.next += fp.blocks
	s.cur = nil
	return o, nil
}

// subCuts returns the cuts strictly between from and to, as offsets from
// from.
func subCuts(cuts []int, from, to int) []int {
	var sub []int
	for _, c := range cuts {
		if c > from && c < to {
			sub = append(sub, c-from)
		}
	}
	return sub
}
