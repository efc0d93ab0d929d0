package erofs

// The compressed-data pipeline of the Writer. Add cuts each regular file
// into segments of at most zSegmentSize bytes and queues them; workers
// compress segments into physical clusters on every core; one goroutine,
// the sink, takes the results in the order they were queued and writes
// them, so the image does not depend on the number of workers. A segment
// is compressed independently of the others, which bounds memory and lets
// the pieces of one large file compress in parallel.

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
)

// zSegmentSize is the most file data compressed as one unit. No extent
// crosses a segment boundary.
const zSegmentSize = 4 << 20

// zInflight bounds the bytes of file data queued or being compressed.
const zInflight = 16 << 20

// zextent is one extent of a compressed file: length bytes of file data
// stored in one physical cluster.
type zextent struct {
	length uint32
	blocks uint32 // physical blocks; 1 for an inline cluster (as mkfs records it)
	raw    bool   // stored uncompressed (a PLAIN lcluster)
	inline bool   // the file's tail cluster, stored in the inode's block
}

// zfile is the compressed form of a regular file, made by the sink; the
// sink alone appends to Writer.zfiles until the pipeline is closed. The
// extents wait in the spool, so that memory does not grow with the data.
type zfile struct {
	extOff   int64 // spool offset of the extents, zextentSize bytes each, in file order
	nExt     int64 // number of extents
	lastRaw  bool  // the last extent is stored raw
	blocks   int64 // physical blocks, not counting an inline cluster
	idata    int   // bytes of the inline cluster
	idataOff int64 // its offset in the spool
	full     bool  // use full (8-byte) lcluster indexes
	homeless bool  // the inline cluster did not fit; Close gives it a block
	homeBlk  int64 // that block
	hint     int64 // the next free block when the file was written
}

// zjob is one segment on its way through the pipeline.
type zjob struct {
	n     *inode
	ibody int // inlineIbodySize of the file's xattrs
	in    []byte
	first bool // the file's first segment
	last  bool // the file's last segment
	done  chan struct{}

	// Results.
	out     []byte    // physical clusters, whole blocks
	extents []zextent // in file order
	idata   []byte    // inline cluster, when the last extent is inline
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

// recycle returns a written job's buffers and its share of the budget.
func (p *zpipe) recycle(j *zjob) {
	p.release(len(j.in))
	p.bufs.put(j.in)
	p.bufs.put(j.out)
	j.in, j.out = nil, nil
}

// zpipe is the running pipeline.
type zpipe struct {
	w       *Writer
	cfg     *Compression
	pcl     int
	work    chan *zjob
	order   chan *zjob
	sinkErr chan error
	wg      sync.WaitGroup

	mu   sync.Mutex
	cond *sync.Cond
	used int   // bytes in flight
	err  error // first error from a worker or the sink
	bufs bufPool

	extBuf []byte // the sink's: extents on their way to the spool
}

func (w *Writer) startPipe() error {
	c := w.opts.Compression
	p := &zpipe{w: w, cfg: c, pcl: c.PclusterSize}
	if p.pcl == 0 {
		p.pcl = w.bs
	}
	p.cond = sync.NewCond(&p.mu)
	workers := c.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	comps := make([]compressor, workers)
	for i := range comps {
		var err error
		if comps[i], err = newCompressor(c, p.pcl); err != nil {
			return err
		}
	}
	p.work = make(chan *zjob, 4*workers)
	p.order = make(chan *zjob, 1024)
	p.sinkErr = make(chan error, 1)
	for _, comp := range comps {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			dst := make([]byte, p.pcl)
			for j := range p.work {
				p.compress(comp, dst, j)
				close(j.done)
			}
		}()
	}
	go func() { p.sinkErr <- p.sink() }()
	w.zp = p
	return nil
}

func (p *zpipe) fail(err error) {
	p.mu.Lock()
	if p.err == nil {
		p.err = err
	}
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *zpipe) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// acquire waits until n more bytes may be in flight.
func (p *zpipe) acquire(n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.used > 0 && p.used+n > zInflight && p.err == nil {
		p.cond.Wait()
	}
	p.used += n
	return p.err
}

func (p *zpipe) release(n int) {
	p.mu.Lock()
	p.used -= n
	p.mu.Unlock()
	p.cond.Broadcast()
}

// add reads a regular file's data and queues it. ibody is
// inlineIbodySize of the file's xattrs.
func (p *zpipe) add(n *inode, ibody int, r io.Reader) error {
	if r == nil {
		return errors.New("no data reader for a non-empty file")
	}
	for off := int64(0); off < n.size; {
		size := int(min(n.size-off, zSegmentSize))
		if err := p.acquire(size); err != nil {
			return err
		}
		j := &zjob{n: n, ibody: ibody, in: p.bufs.get(size), first: off == 0, last: off+int64(size) == n.size, done: make(chan struct{})}
		if _, err := io.ReadFull(r, j.in); err != nil {
			p.bufs.put(j.in)
			p.release(size)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("data: %w", err)
		}
		off += int64(size)
		p.order <- j
		p.work <- j
	}
	return nil
}

// close waits for every queued segment to be written.
func (p *zpipe) close() error {
	close(p.work)
	close(p.order)
	p.wg.Wait()
	err := <-p.sinkErr
	if err == nil {
		err = p.failed()
	}
	return err
}

// compress cuts a segment into extents, the way mkfs.erofs does: each
// physical cluster holds as much input as it can; a cluster whose
// compressed blocks would not be fewer than its input is stored raw, one
// block at a time; a file's final block or less is stored raw unless it
// can go inline.
func (p *zpipe) compress(c compressor, dst []byte, j *zjob) {
	bs := p.w.bs
	in := j.in
	c.reset()
	mayInline := p.cfg.Ztailpacking && j.last
	j.out = p.bufs.get(roundUp(len(in), bs) + bs)[:0]
	for pos := 0; pos < len(in); {
		rem := len(in) - pos
		if rem <= bs && !mayInline {
			pos += p.raw(j, in[pos:], rem)
			continue
		}
		n, used := c.destSize(dst, in[pos:])
		if n > len(dst) || used > rem {
			p.fail(errors.New("erofs: internal error: compressor overran its buffers"))
			return
		}
		stored := n
		inlineOK := mayInline && used == rem && n < bs
		if !inlineOK {
			stored = roundUp(n, bs)
		}
		if n == 0 || used == 0 || stored >= used {
			if mayInline && rem < bs {
				j.extents = append(j.extents, zextent{length: uint32(rem), blocks: 1, raw: true, inline: true})
				j.idata = in[pos:]
				pos = len(in)
				continue
			}
			span := rem
			if n > 0 && used > 0 {
				span = used
			}
			span = min(span, p.pcl)
			// Store span bytes raw, a block per extent; what a last,
			// partial block would hold is left for the next round.
			k := max(span/bs, 1) * bs
			pos += p.raw(j, in[pos:], min(k, rem))
			continue
		}
		if inlineOK {
			j.extents = append(j.extents, zextent{length: uint32(used), blocks: 1, inline: true})
			j.idata = append([]byte(nil), dst[:n]...)
			pos += used
			continue
		}
		if mayInline && used == rem && n%bs != 0 && n > bs {
			// The file ends here: see whether one block less holds all but
			// a tail that fits inline.
			small := make([]byte, n/bs*bs) // rare: once per file at most
			n2, used2 := c.destSize(small, in[pos:])
			if n2 > 0 && used2 > 0 && n2+(rem-used2) < stored {
				n, used, stored = n2, used2, roundUp(n2, bs)
				copy(dst, small[:n2])
			}
		}
		blocks := stored / bs
		j.out = appendZeros(j.out, stored-n) // 0padding
		j.out = append(j.out, dst[:n]...)
		j.extents = append(j.extents, zextent{length: uint32(used), blocks: uint32(blocks)})
		pos += used
	}
}

// raw stores the first count bytes of b uncompressed, one block per
// extent, and returns count.
func (p *zpipe) raw(j *zjob, b []byte, count int) int {
	bs := p.w.bs
	for done := 0; done < count; {
		k := min(bs, count-done)
		j.out = append(j.out, b[done:done+k]...)
		j.out = appendZeros(j.out, bs-k)
		j.extents = append(j.extents, zextent{length: uint32(k), blocks: 1, raw: true})
		done += k
	}
	return count
}

// sink writes the compressed segments in queue order.
func (p *zpipe) sink() error {
	w := p.w
	bs := int64(w.bs)
	var cur *zfile
	for j := range p.order {
		<-j.done
		if err := p.failed(); err != nil {
			p.recycle(j)
			continue
		}
		err := func() error {
			n := j.n
			if j.first {
				cur = &zfile{hint: w.nextBlock}
				n.setStartBlk(w.nextBlock)
			}
			// A single-segment file is kept until its end is known, so
			// it can be stored uncompressed if compression does not pay.
			if j.first && j.last && p.fallback(n, j) {
				return w.writeFlat(n, j.ibody, j.in)
			}
			blocks := int64(len(j.out)) / bs
			if w.nextBlock+blocks > math.MaxUint32 {
				return fmt.Errorf("image exceeds %d blocks", uint64(math.MaxUint32))
			}
			if _, err := w.out.Write(j.out); err != nil {
				return err
			}
			w.dataCRC = crc32.Update(w.dataCRC, castagnoli, j.out)
			w.dataLen += int64(len(j.out))
			w.nextBlock += blocks
			cur.blocks += blocks
			if len(j.extents) > 0 {
				p.extBuf = p.extBuf[:0]
				for _, e := range j.extents {
					p.extBuf = appendExtent(p.extBuf, e)
				}
				off, err := w.spool.write(p.extBuf)
				if err != nil {
					return err
				}
				if cur.nExt == 0 {
					cur.extOff = off
				} else if off != cur.extOff+cur.nExt*zextentSize {
					return errors.New("internal error: a file's extents are not together in the spool")
				}
				cur.nExt += int64(len(j.extents))
				cur.lastRaw = j.extents[len(j.extents)-1].raw
			}
			if j.idata != nil {
				off, err := w.spool.write(j.idata)
				if err != nil {
					return err
				}
				cur.idata, cur.idataOff = len(j.idata), off
			}
			if j.last {
				if cur.blocks == 0 {
					n.setStartBlk(-1)
				}
				n.data = int64(len(w.zfiles))
				n.flags |= flagZ
				w.zfiles = append(w.zfiles, cur)
			}
			return nil
		}()
		p.recycle(j)
		if err != nil {
			p.fail(fmt.Errorf("erofs: writing data: %w", err))
		}
	}
	return nil
}

// fallback reports whether a one-segment file is better stored
// uncompressed: when its clusters, inline data and full index would take
// at least the file's size, as mkfs.erofs decides.
func (p *zpipe) fallback(n *inode, j *zjob) bool {
	total := int64(len(j.out)) + int64(len(j.idata)) +
		int64(mapHeaderSize+fullIndexReserved) + fullIndexSize*lclusterCount(n.size, p.w.bs)
	return total >= n.size
}

func lclusterCount(size int64, bs int) int64 { return (size + int64(bs) - 1) / int64(bs) }

// writeFlat writes a file's data uncompressed, as writeData does.
func (w *Writer) writeFlat(n *inode, ibody int, data []byte) error {
	bs := int64(w.bs)
	full := n.size / bs
	blocks, err := w.planFlat(n, ibody)
	if err != nil {
		return err
	}
	body := data[:full*bs]
	if !n.inline() {
		body = data
	}
	if _, err := w.out.Write(body); err != nil {
		return err
	}
	if err := w.out.padTo(bs); err != nil {
		return err
	}
	w.dataCRC = crc32.Update(w.dataCRC, castagnoli, data)
	w.dataLen += n.size
	if n.inline() {
		off, err := w.spool.write(data[full*bs:])
		if err != nil {
			return err
		}
		n.data = off
	}
	w.nextBlock += blocks
	return nil
}
