package gunzip

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"unsafe"
)

// Parallel decoding of one gzip member.
//
// The member's DEFLATE stream is cut into chunks of chunkSize compressed
// bytes. Chunk k is decoded by a worker from a block boundary to the first
// block header at or after the start of chunk k+1: chunk 0 from its known
// start, later chunks from a guessed boundary (speculative.go), with the
// window before them unknown. A worker decodes bytes with the ordinary
// inflater, behind a placeholder window, and notes which output bytes
// are copies of the unknown window (inflater.orig); on text that is the
// first megabyte or so of a chunk's output, after which it is plain
// bytes. In order, the consumer fills in those bytes from the previous
// 32 KiB of output and checks that the chunks chain: the header where
// chunk k stopped must be the one chunk k+1 started at. Where they do not
// chain, or a worker failed, the consumer decodes that chunk's part of the
// stream itself, with the window known.
//
// A goroutine of its own reads the stream (readChunks), so that reading
// and the first touch of the chunk buffers are off the consumer's path;
// the consumer starts the workers' goroutines, one per chunk scheduled.
// The consumer too runs in a goroutine of its own (produce): it hands
// its output to Read in the buffers it was decoded into (piece), up to
// piecesAhead of them ahead, so that Read copies the output once, and
// decoding goes on while the caller works on what it read.
//
// Memory: the stream is read in chunk buffers of one huge page (2 MiB:
// the chunk, the start of the next chunk and padding), from the oldest
// chunk in flight to queueDepth*workers+3 chunks ahead of the consumer
// (two being the reading goroutine's); a worker decodes a chunk in
// place. A worker's chunk holds its output in a buffer of two chunk
// buffers (4 MiB: maxOut), plus two bytes per byte of its marked region,
// capped at maxMarked (2 MiB); a chunk over either cap stops there, for
// the consumer to fill in its window and finish it, going on in fresh
// output buffers. The consumer decodes the chunks no worker took into
// output buffers of the same kind, each starting with the window; up to
// piecesAhead+2 output buffers are between it and Read. Up to
// queueDepth*workers+piecesAhead+4 buffers of each kind are kept for
// reuse, and buffers are allocated on huge-page boundaries (alloc):
// first use of fresh memory costs a page fault per page, which in a
// virtual machine was most of the parallel path's overhead. The bound is
// thus about (queueDepth*workers+piecesAhead+2)*8 MiB plus the reused
// buffers and garbage not yet collected; TestLayerStats measures the
// peak RSS (on two cores: 63-65 MB on the Debian layer and on one of 470
// MB; with 8 MiB output buffers and four chunks scheduled per worker it
// was 85 MB, for no more speed).

// queueDepth*workers chunks are scheduled ahead of the consumer: a
// worker takes the oldest that is at least three chunks ahead of the
// consumer's (decoding speculatively costs about twice what decoding in
// order does, so a worker needs the time the consumer takes for two
// chunks to decode one), and the consumer decodes the chunks no worker
// took itself, so that speculative decoding (with its overhead) happens
// only as far ahead as workers are free and pays.
const queueDepth = 3

// workerLead is how many chunks after the consumer's a worker's chunk
// starts at least.
const workerLead = 3

const (
	// A chunk's buffer, holding the start of the next chunk after it
	// (overlap) and padding, is one huge page (alloc).
	defaultChunkSize = 2<<20 - overlap - inputPad
	// maxValidateOut bounds the output counted while validating a
	// guessed boundary (validation writes none).
	maxValidateOut = 32 << 20
	// overlap is how much of chunk k+1 is given with chunk k: decoding
	// goes on into chunk k+1 up to its first header, and the part given
	// is enough for any block real encoders write.
	overlap  = 256 << 10
	inputPad = 16
)

// config tunes a Reader's choice of decoder.
type config struct {
	workers    int  // cores: the consumer and workers-1 decoding goroutines (at least one); 0: runtime.GOMAXPROCS(0)
	chunkSize  int  // compressed bytes per chunk; 0: defaultChunkSize
	force      bool // parallel even for one worker or a small input
	sequential bool // never parallel
	noSteal    bool // the consumer waits for workers, never decoding a chunk they have not started
	maxMarked  int  // see inflater.maxMarked; 0: maxMarked
	maxOut     int  // a chunk's output cap; 0: its buffer is two chunk buffers
}

// job is one chunk being decoded by a worker.
type job struct {
	k        int
	buf      []byte // chunk k, the start of chunk k+1 and padding: the stream's buffer of chunk k
	base     int64  // absolute bit of buf[0]
	stop     int64  // bit in buf where decoding stops at a header; -1: none
	known    bool   // start at bit 0 with an empty window (chunk 0)
	maxOut   int
	marked   int           // the inflater's maxMarked
	done     chan struct{} // closed once a worker ran the job
	taken    bool          // a worker or the consumer took the job; under parallel.mu
	start    key           // where decoding started
	startBit int64         // absolute bit of that header
	end      key           // header where it stopped, unless final
	endBit   int64         // absolute bit of that header, or after the final block
	final    bool          // the final block ended the chunk
	out      []byte        // buffer holding data
	data     []byte        // output; the bytes orig marks are still to be filled
	orig     []uint16      // orig[i] = 1+j: data[i] is a copy of byte j of the unknown window
	clean    int           // data[clean:] holds no copy of the window
	crc      uint32        // CRC-32 of data[clean:]
	// susp is the inflater of a chunk whose output copied the unknown
	// window for too long (errTooMarked) or outgrew maxOut (errChunkLong):
	// it stopped there, for the consumer to fill in the window and go on
	// decoding the chunk with it; suspBase is the absolute bit of its
	// first input byte.
	susp     *inflater
	suspBase int64
	err      error
	pools    *pools
}

// pools hold buffers of finished jobs for later ones: output bytes, input
// copies, orig, stream chunks.
type pools struct {
	out   chan []byte
	orig  chan []uint16
	chunk chan []byte // the stream's chunks, once released
}

func newPools(n int) *pools {
	return &pools{out: make(chan []byte, n), orig: make(chan []uint16, n), chunk: make(chan []byte, n)}
}

func get[T byte | uint16](c chan []T, n int) []T {
	select {
	case b := <-c:
		if cap(b) >= n {
			return b[:n]
		}
	default:
	}
	return alloc[T](n)
}

// alloc returns a new buffer of n elements. One of a megabyte or more
// starts on a 2 MiB boundary and has the 2 MiB pages it spans backed by
// huge pages where the system gives them (adviseHugePages): the parallel
// decoder's buffers are megabytes, touched from end to end, and sized
// to whole huge pages.
func alloc[T byte | uint16](n int) []T {
	size := n * int(unsafe.Sizeof(T(0)))
	if size < 1<<20 {
		return make([]T, n)
	}
	const huge = 2 << 20
	span := (size + huge - 1) &^ (huge - 1)
	raw := make([]byte, span+huge)
	off := -int(uintptr(unsafe.Pointer(unsafe.SliceData(raw)))) & (huge - 1)
	raw = raw[off : off+span]
	adviseHugePages(raw)
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(raw))), n)
}

// maxPooled is the largest buffer kept for reuse, in elements: the rare
// chunk that needs more allocates its own.
const maxPooled = 16 << 20

func put[T byte | uint16](c chan []T, b []T) {
	if b != nil && cap(b) <= maxPooled {
		select {
		case c <- b:
		default:
		}
	}
}

// run decodes the job; it is the worker's side.
func (j *job) run() {
	defer close(j.done)
	end := int64(len(j.buf)-inputPad) * 8
	if j.known {
		j.start = keyAt(j.buf, 0, j.base)
		j.inflate(0, false, nil)
		return
	}
	d := newSpecDecoder(j.buf, end, maxValidateOut)
	searchEnd := j.stop
	if j.stop < 0 {
		searchEnd = end
	}
	// Try guessed boundaries until one decodes the chunk, giving up after
	// maxAttempts that fail past validation.
	attempts := 0
	doomed := map[int64]struct{}{}
	for b := int64(0); attempts < maxAttempts; b++ {
		if b = nextCandidate(j.buf, b, searchEnd); b >= searchEnd {
			break
		}
		if storedFinalShadow(j.buf, b) || storedShifted(j.buf, b) || !d.validate(b, j.stop, doomed) {
			continue
		}
		j.start, j.startBit = keyAt(j.buf, b, j.base), j.base+b
		seen := j.inflate(b, true, doomed)
		if j.err == nil || j.susp != nil {
			return // done, or to be finished by the consumer
		}
		for _, p := range seen {
			doomed[p] = struct{}{}
		}
		j.recycle()
		attempts++
	}
	j.err = errNoBoundary
}

// maxAttempts is how many validated guesses a chunk tries in full.
const maxAttempts = 8

// recycle forgets a failed attempt's output, keeping its buffer.
func (j *job) recycle() {
	put(j.pools.out, j.out)
	put(j.pools.orig, j.orig)
	j.final, j.data, j.out, j.crc, j.orig, j.clean = false, nil, nil, 0, nil, 0
}

// inflate decodes bytes from bit b of buf into j.out, setting data, orig,
// clean, crc, the end and err. With marked, the window before b is
// unknown: j.out starts with a placeholder for it, and orig says which
// output bytes are copies of it.
//
// With doomed, decoding fails at a block header in it, and inflate
// returns the positions in buf of the headers it reached.
func (j *job) inflate(b int64, marked bool, doomed map[int64]struct{}) []int64 {
	j.err = nil
	out := get(j.pools.out, outSize(j.maxOut))
	f := newInflaterBuf(j.buf[b>>3:len(j.buf)-inputPad], out)
	f.noSlide = true
	f.doomed, f.bitBase = doomed, b&^7
	n := 0
	if marked {
		f.maxMarked = j.marked
		f.markWindow(get(j.pools.orig, j.marked))
		n = windowSize
	}
	f.limit = min(f.limit, n+j.maxOut)
	if j.stop >= 0 {
		f.stopAt = j.stop - b&^7
	}
	if !f.skipBits(uint(b & 7)) {
		j.err = errOutOfInput
		return f.seen
	}
	for !f.done {
		if f.op >= f.limit {
			if marked {
				// Stop here too, for the consumer to finish.
				j.err = errChunkLong
				j.susp, j.suspBase, j.out = f, j.base+b&^7, f.out
				return nil
			}
			j.err = errOutOfInput
			return f.seen
		}
		if err := f.step(); err != nil {
			j.err = err
			return f.seen
		}
		if f.tooMany {
			j.err = errTooMarked
			j.susp, j.suspBase, j.out = f, j.base+b&^7, f.out
			return nil
		}
	}
	j.out = f.out
	j.data = f.out[n:f.op]
	if marked {
		j.orig = f.orig
		j.clean = max(f.lastMarker-n, 0)
	}
	j.crc = crc32.ChecksumIEEE(j.data[j.clean:])
	endBit := b&^7 + f.bitPos()
	j.endBit = j.base + endBit
	if f.stopped {
		j.end = keyAt(j.buf, endBit, j.base)
	} else {
		j.final = true
	}
	return nil
}

// parallel is a Reader's state while it decodes a member in parallel.
type parallel struct {
	src    io.Reader
	srcErr error // read error other than EOF
	// reads delivers the chunks the reading goroutine reads
	// (readChunks) until stopRead; abandon ends it at once, when the
	// Reader is closed or dropped.
	reads     chan chunkRead
	stopRead  *stopper
	abandon   *stopper
	eof       bool // src is exhausted
	chunkSize int
	workers   int
	sem       chan struct{}
	pools     *pools

	noSteal   bool
	maxMarked int
	maxOut    int
	mu        sync.Mutex
	cur       int    // the chunk the consumer is at
	pending   []*job // jobs no worker or the consumer has taken, oldest first

	chunks [][]byte // chunks[i-base] is chunk i of the stream
	base   int
	next   int // next chunk to make a job of
	queue  []*job

	posBit int64 // where decoding of the stream continues
	posKey key
	win    []byte // the last (up to) 32 KiB of output
	total  int64  // bytes of output so far
	fb     *inflater
	// waiting is a chunk that started after posBit, while the fallback
	// decodes up to its start.
	waiting *job
	fbBase  int64 // absolute bit of fb's first input byte
	done    bool  // the final block was decoded
	endBit  int64
	err     error

	// The consumer runs in a goroutine of its own (produce), which sends
	// the output on pieces, in order, for Read (read) to copy out: Read
	// takes output from the buffers it was decoded into, and decoding
	// goes on while the caller works on what it read.
	pieces chan piece
	rd     []byte // read's side: the unread part of the piece being read
	rel    []byte // the buffer to give back once rd is read
	rerr   error  // the error that ended the pieces
	crc    uint32 // CRC-32 of the output read
	sum    int    // bytes at the start of rd still to hash
	wcrc   uint32 // the CRC-32 of the piece's bytes after those
	wlen   int64  // how many bytes that covers; 0 once added to crc

	// Chunks whose speculative output was used, decoded by the consumer,
	// already covered by the consumer's decoding, used after the
	// consumer decoded a gap before them, taken by the consumer before a
	// worker started them, and finished by the consumer after a worker
	// stopped (errTooMarked, errChunkLong): for tests.
	accepted, fallbacks, skipped, bridged, stolen, resumed int
}

func newParallel(src io.Reader, c config, workers int) *parallel {
	cs := c.chunkSize
	if cs <= 0 {
		cs = defaultChunkSize
	}
	return &parallel{
		pieces:    make(chan piece, piecesAhead),
		src:       src,
		chunkSize: cs,
		workers:   workers,
		noSteal:   c.noSteal,
		maxMarked: cmp.Or(c.maxMarked, maxMarked),
		maxOut:    cmp.Or(c.maxOut, 2*(cs+overlap+inputPad)-windowSize-maxMatch-outSlack),
		sem:       make(chan struct{}, workers),
		pools:     newPools(queueDepth*workers + piecesAhead + 4),
		win:       make([]byte, 0, windowSize),
		abandon:   &stopper{c: make(chan struct{})},
	}
}

// chunkRead is a chunk the reading goroutine read, or the error that
// ended its reading (io.EOF at the end of the input).
type chunkRead struct {
	buf []byte
	err error
}

// stopper is a channel closed once.
type stopper struct {
	once sync.Once
	c    chan struct{}
}

func (s *stopper) stop() { s.once.Do(func() { close(s.c) }) }

// readChunks reads src in chunks of size bytes and sends them on ch, in
// order. Each goes into a buffer from pool (alloc) with room after it for
// the first overlap bytes of the next chunk and inputPad bytes of
// padding, filled in before it is sent, so that a worker decodes the
// chunk in place. After the last chunk it sends the error that ended the
// input (io.EOF at its end). It stops early, sending every chunk it read,
// once stop is closed, and at once when abandon is; it closes ch when
// it ends. Reading in a goroutine of its own takes the read and the
// first touch of its buffers off the consumer.
func readChunks(src io.Reader, size int, pool chan []byte, ch chan<- chunkRead, stop, abandon <-chan struct{}) {
	defer close(ch)
	send := func(r chunkRead) bool {
		select {
		case ch <- r:
			return true
		case <-abandon:
			return false
		}
	}
	var prev []byte
	for {
		select {
		case <-stop:
			if prev != nil {
				send(chunkRead{buf: prev})
			}
			return
		default:
		}
		c := get(pool, size+overlap+inputPad)
		n, err := io.ReadFull(src, c[:size])
		if n > 0 {
			clear(c[n : n+inputPad])
			if prev != nil {
				// prev is full: give it the start of this chunk.
				m := copy(prev[len(prev):len(prev)+overlap], c[:n])
				clear(prev[len(prev)+m : len(prev)+m+inputPad])
				if !send(chunkRead{buf: prev}) {
					return
				}
			}
			prev = c[:n]
		}
		if err != nil {
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			if prev != nil && !send(chunkRead{buf: prev}) {
				return
			}
			send(chunkRead{err: err})
			return
		}
	}
}

// startReading starts the goroutine that reads the stream (readChunks).
func (p *parallel) startReading() {
	reads := make(chan chunkRead, 1)
	p.reads = reads
	p.stopRead = &stopper{c: make(chan struct{})}
	go readChunks(p.src, p.chunkSize, p.pools.chunk, reads, p.stopRead.c, p.abandon.c)
}

// stopReading stops the reading goroutine and takes in what it read.
func (p *parallel) stopReading() {
	if p.reads == nil {
		return
	}
	p.stopRead.stop()
	for r := range p.reads {
		p.take(r)
	}
	p.reads = nil
	p.eof = true
}

// take adds a chunk read, or notes the end of the input.
func (p *parallel) take(r chunkRead) {
	if r.buf != nil {
		p.chunks = append(p.chunks, r.buf)
	}
	if r.err != nil {
		p.eof = true
		if r.err != io.EOF {
			p.srcErr = r.err
		}
	}
}

// chunk returns chunk i, waiting for the reading goroutine if need be;
// nil past the end.
func (p *parallel) chunk(i int) []byte {
	for p.base+len(p.chunks) <= i && !p.eof {
		r, ok := <-p.reads
		if !ok {
			p.eof = true
			break
		}
		p.take(r)
	}
	if i-p.base < len(p.chunks) {
		return p.chunks[i-p.base]
	}
	return nil
}

// release drops the chunks before chunk i.
func (p *parallel) release(i int) {
	for p.base < i && len(p.chunks) > 0 {
		put(p.pools.chunk, p.chunks[0][:cap(p.chunks[0])])
		p.chunks[0] = nil
		p.chunks = p.chunks[1:]
		p.base++
	}
}

// schedule starts a job for the next chunk; false when there is none.
func (p *parallel) schedule() bool {
	k := p.next
	c := p.chunk(k)
	if c == nil {
		return false
	}
	c1 := p.chunk(k + 1)
	last := c1 == nil
	j := &job{
		k:      k,
		buf:    c[:len(c)+min(len(c1), overlap)+inputPad],
		base:   int64(k) * int64(p.chunkSize) * 8,
		stop:   int64(len(c)) * 8,
		known:  k == 0,
		maxOut: p.maxOut,
		marked: p.maxMarked,
		done:   make(chan struct{}),
		pools:  p.pools,
	}
	if last {
		j.stop = -1
	}
	p.next++
	p.queue = append(p.queue, j)
	p.mu.Lock()
	p.pending = append(p.pending, j)
	p.mu.Unlock()
	// One goroutine per job, each running at most one job: the oldest
	// pending one workerLead chunks or more after the consumer's, so
	// that the consumer decodes the chunks before it (with no overhead,
	// the window known) while a worker decodes it, and the worker's
	// output is not held longer than need be. The consumer decodes the
	// jobs it reaches that no worker took itself.
	go func() {
		p.sem <- struct{}{}
		defer func() { <-p.sem }()
		p.mu.Lock()
		i := 0
		for i < len(p.pending) && p.pending[i].k < p.cur+workerLead && !p.noSteal {
			i++
		}
		if i == len(p.pending) {
			// Left to the consumer, which needs them next.
			p.mu.Unlock()
			return
		}
		j := p.pending[i]
		p.pending = append(p.pending[:i], p.pending[i+1:]...)
		j.taken = true
		p.mu.Unlock()
		j.run()
	}()
	return true
}

// steal takes job j from the workers if none took it yet.
func (p *parallel) steal(j *job) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cur = j.k
	if j.taken {
		return false
	}
	j.taken = true
	for i, q := range p.pending {
		if q == j {
			p.pending = append(p.pending[:i], p.pending[i+1:]...)
			break
		}
	}
	return true
}

// stopBit is where the part of the stream chunk k stands for ends: the
// start of chunk k+1, or -1 for the last chunk.
func (p *parallel) stopBit(k int) int64 {
	if p.chunk(k+1) == nil {
		return -1
	}
	return int64(k+1) * int64(p.chunkSize) * 8
}

// readAt copies stream bytes from absolute byte offset off into b,
// returning how many it could.
func (p *parallel) readAt(b []byte, off int64) int {
	n := 0
	for n < len(b) {
		i := int((off + int64(n)) / int64(p.chunkSize))
		c := p.chunk(i)
		if c == nil {
			break
		}
		o := int((off + int64(n)) % int64(p.chunkSize))
		if o >= len(c) {
			break
		}
		n += copy(b[n:], c[o:])
	}
	return n
}

// keyAt is the key of the block header at absolute bit b.
func (p *parallel) keyAt(b int64) key {
	var buf [inputPad]byte
	p.readAt(buf[:8], b>>3)
	return keyAt(buf[:], b&7, b&^7)
}

// streamReader reads the stream from a byte offset through p's chunks.
type streamReader struct {
	p   *parallel
	off int64
}

func (s *streamReader) Read(b []byte) (int, error) {
	n := s.p.readAt(b, s.off)
	s.off += int64(n)
	if n == 0 && len(b) > 0 {
		if s.p.srcErr != nil {
			return 0, s.p.srcErr
		}
		return 0, io.EOF
	}
	return n, nil
}

// piece is output the consumer hands to Read: b, after which release,
// unless nil, is the output buffer b was in, to be given back to the pool
// once b is read; or the error that ends the output (io.EOF after the
// final block). Read hashes b[:sum] as it copies it out, then adds crc,
// the CRC-32 of the rest (a worker's): the member's CRC is computed on
// the reader's side, off the consumer's.
type piece struct {
	b, release []byte
	sum        int
	crc        uint32
	err        error
}

// piecesAhead is how many pieces the consumer sends ahead of Read: with
// the piece Read copies from and the one being decoded, up to four
// output buffers (16 MiB) are in flight between them.
const piecesAhead = 2

// send hands a piece to Read; false once the Reader is closed or
// dropped.
func (p *parallel) send(pc piece) bool {
	select {
	case p.pieces <- pc:
		return true
	case <-p.abandon.c:
		return false
	}
}

// produce is the consumer's goroutine: it decodes the member in order,
// sending its output on pieces, and ends with the error that ends it
// (io.EOF after the final block).
func (p *parallel) produce() {
	defer close(p.pieces)
	for !p.done && p.err == nil {
		p.advance()
	}
	err := p.err
	if err == nil {
		err = io.EOF
	}
	p.send(piece{err: err})
}

// emit hands output pc.b to Read, keeping the window.
func (p *parallel) emit(pc piece) {
	if len(pc.b) > 0 {
		p.total += int64(len(pc.b))
		p.keep(pc.b)
	}
	if (len(pc.b) > 0 || pc.release != nil) && !p.send(pc) {
		p.err = errClosed
	}
}

// keep keeps the last 32 KiB of output in win, b being the newest.
func (p *parallel) keep(b []byte) {
	if len(b) >= windowSize {
		p.win = append(p.win[:0], b[len(b)-windowSize:]...)
	} else {
		if over := len(p.win) + len(b) - windowSize; over > 0 {
			p.win = p.win[:copy(p.win, p.win[over:])]
		}
		p.win = append(p.win, b...)
	}
}

// accept emits a job's output, resolving its copies of the window.
func (p *parallel) accept(j *job) error {
	data := j.data
	if j.clean > 0 {
		if err := resolve(data[:j.clean], j.orig[windowSize:windowSize+j.clean], p.win); err != nil {
			return fmt.Errorf("%w at output byte %d", err, p.total)
		}
	}
	put(p.pools.orig, j.orig)
	if j.final {
		p.done, p.endBit = true, j.endBit
	} else {
		p.posBit, p.posKey = j.endBit, j.end
	}
	p.emit(piece{b: data, release: j.out, sum: j.clean, crc: j.crc})
	return nil
}

// resolve fills in the bytes of data that orig marks as copies of the
// window before them, win being its last (up to) 32 KiB. Most of orig is
// zero (bytes decoded, not copied from the window): it is skipped 16
// entries at a time; where it is not, with a whole window (no mark can
// then be before it), bytes are filled in without branches.
func resolve(data []byte, orig []uint16, win []byte) error {
	data = data[:len(orig)]
	if len(win) < windowSize {
		return resolveShort(data, orig, win)
	}
	w := (*[windowSize]byte)(win)
	i := 0
	for ; i+16 <= len(orig); i += 16 {
		o := (*[16]uint16)(orig[i:])
		b := (*[32]byte)(unsafe.Pointer(o))
		if binary.LittleEndian.Uint64(b[:8])|binary.LittleEndian.Uint64(b[8:16])|
			binary.LittleEndian.Uint64(b[16:24])|binary.LittleEndian.Uint64(b[24:]) == 0 {
			continue
		}
		d := (*[16]byte)(data[i:])
		for k, v := range o {
			// v is 1+j for byte j of the window, or 0 for none: the
			// mask keeps d[k] where v is 0.
			m := byte(0) - byte(min(v, 1))
			d[k] = d[k]&^m | w[(v-1)&(windowSize-1)]&m
		}
	}
	return resolveShort(data[i:], orig[i:], win)
}

// resolveShort is resolve one byte at a time, for a window shorter than
// 32 KiB (a mark before it is an error) and the last few bytes.
func resolveShort(data []byte, orig []uint16, win []byte) error {
	skip := windowSize + 1 - len(win) // orig value of win[0]
	for i, v := range orig {
		if v == 0 {
			continue
		}
		w := int(v) - skip
		if w < 0 {
			return fmt.Errorf("%w: distance beyond the window", errCorrupt)
		}
		data[i] = win[w]
	}
	return nil
}

// startFallback decodes the stream from posBit, with the window known,
// up to the first header at or after stop.
func (p *parallel) startFallback(stop int64) {
	by := p.posBit >> 3
	out := get(p.pools.out, outSize(p.maxOut))
	var f *inflater
	if in := p.inPlace(by); in != nil {
		f = newInflaterBorrow(in, &streamReader{p: p, off: by + int64(len(in))}, out)
	} else {
		f = newInflaterOut(&streamReader{p: p, off: by}, out)
	}
	n := copy(out, p.win)
	f.op, f.rp = n, n
	f.noSlide = true
	if stop >= 0 {
		f.stopAt = stop - by*8
	}
	if !f.skipBits(uint(p.posBit & 7)) {
		p.err = io.ErrUnexpectedEOF
		return
	}
	p.fb, p.fbBase = f, by*8
}

// inPlace is the stream from byte offset off to the end of the part of
// it in off's chunk buffer (the chunk and the start of the next one), for
// a fallback to read in place; nil if off is not in a chunk at hand.
// Chunks are released only between fallbacks, so it stays valid while
// the fallback runs.
func (p *parallel) inPlace(off int64) []byte {
	i := int(off / int64(p.chunkSize))
	if i < p.base {
		return nil
	}
	c := p.chunk(i)
	o := int(off - int64(i)*int64(p.chunkSize))
	if o >= len(c) {
		return nil
	}
	m := 0
	if c1 := p.chunk(i + 1); c1 != nil {
		m = min(len(c1), overlap)
	}
	return c[o : len(c)+m]
}

// stepFallback decodes some output with the fallback inflater.
func (p *parallel) stepFallback() {
	f := p.fb
	if f.done {
		b := p.fbBase + f.bitPos()
		if f.stopped {
			p.posBit, p.posKey = b, p.keyAt(b)
		} else {
			p.done, p.endBit = true, b
		}
		p.fb = nil
		return
	}
	if err := f.step(); err != nil {
		if err == io.ErrUnexpectedEOF && f.err != nil {
			err = f.err
		}
		p.err = err
		return
	}
	// Output stays in its buffer until Read is done with it: a full
	// buffer is handed on, and decoding goes on in a fresh one that
	// starts with the window.
	out, b := f.out, f.out[f.rp:f.op]
	var release []byte
	switch {
	case f.done:
		release = out
	case f.op >= f.limit:
		f.moveWindow(get(p.pools.out, len(out)))
		release = out
	}
	f.rp = f.op
	p.emit(piece{b: b, release: release, sum: len(b)})
}

// outSize is the size of an output buffer, a worker's or the consumer's:
// a window, a chunk's output at most (maxOut), and slack; at least two
// windows, so that a full buffer holds a window of output to go on from.
func outSize(maxOut int) int {
	return max(windowSize+maxOut, 2*windowSize) + maxMatch + outSlack
}

// advance takes the consumer's next step: it decodes some output, takes
// a chunk's, or sets done or err.
func (p *parallel) advance() {
	// Keep the workers busy, also while decoding a chunk here.
	for len(p.queue) < queueDepth*p.workers && p.schedule() {
	}
	if p.fb != nil {
		p.stepFallback()
		return
	}
	if j := p.waiting; j != nil {
		// The gap before j's start is decoded: chain j, or decode
		// its part here.
		p.waiting = nil
		if !p.done && j.start == p.posKey {
			p.accepted++
			if err := p.accept(j); err != nil {
				p.err = err
			}
			return
		}
		p.recycle(j)
		p.fallbacks++
		if stop := p.stopBit(j.k); !p.done && (stop < 0 || p.posBit < stop) {
			p.startFallback(stop)
		}
		return
	}
	if len(p.queue) == 0 {
		p.startFallback(-1)
		return
	}
	j := p.queue[0]
	p.queue = p.queue[1:]
	if !p.noSteal && p.steal(j) {
		// Decode this chunk's part here, with the window known.
		p.release(j.k)
		p.recycle(j)
		p.stolen++
		if stop := p.stopBit(j.k); stop < 0 || p.posBit < stop {
			p.startFallback(stop)
		}
		return
	}
	<-j.done
	p.release(j.k)
	stop := p.stopBit(j.k)
	if stop >= 0 && p.posBit >= stop {
		p.recycle(j)
		p.skipped++
		return // a fallback decoded this chunk's part already
	}
	if j.err == nil && j.start == p.posKey {
		p.accepted++
		if err := p.accept(j); err != nil {
			p.err = err
		}
		return
	}
	if j.susp != nil && j.start == p.posKey {
		p.resumed++
		p.resume(j)
		return
	}
	if j.err == nil && j.startBit > p.posBit {
		// The worker started at a later header than where the
		// stream is (it missed one, or started at a later one of a
		// stored block's possible headers): decode up to it here.
		p.bridged++
		p.waiting = j
		p.startFallback(j.startBit)
		return
	}
	p.recycle(j)
	p.fallbacks++
	p.startFallback(stop)
}

// resume goes on decoding suspended job j with the window known, as a
// fallback, its output so far filled in and emitted.
func (p *parallel) resume(j *job) {
	f := j.susp
	orig := f.orig
	if err := f.resume(p.win); err != nil {
		p.err = fmt.Errorf("%w at output byte %d", err, p.total)
		return
	}
	put(p.pools.orig, orig)
	p.fb, p.fbBase = f, j.suspBase
}

// recycle keeps the buffers of a job whose output is not used.
func (p *parallel) recycle(j *job) {
	put(p.pools.out, j.out)
	put(p.pools.orig, j.orig)
}

// read returns output; io.EOF once the final block's output is read,
// when the consumer's goroutine has ended.
func (p *parallel) read(b []byte) (int, error) {
	for len(p.rd) == 0 {
		if p.rel != nil {
			put(p.pools.out, p.rel)
			p.rel = nil
		}
		if p.rerr != nil {
			return 0, p.rerr
		}
		pc, ok := <-p.pieces
		switch {
		case !ok:
			p.rerr = errClosed
		case pc.err != nil:
			// The last piece: produce has ended, and what it set
			// (crc aside, Read's) is Read's to see.
			p.rerr = pc.err
		default:
			p.rd, p.rel = pc.b, pc.release
			p.sum, p.wcrc, p.wlen = pc.sum, pc.crc, int64(len(pc.b)-pc.sum)
			p.settle()
		}
	}
	n := copy(b, p.rd)
	p.rd = p.rd[n:]
	if h := min(n, p.sum); h > 0 {
		p.crc = crc32.Update(p.crc, crc32.IEEETable, b[:h])
		p.sum -= h
		p.settle()
	}
	return n, nil
}

// settle adds the CRC-32 of the piece's bytes that a worker hashed, once
// those before them are hashed.
func (p *parallel) settle() {
	if p.sum == 0 && p.wlen > 0 {
		p.crc = crc32Combine(p.crc, p.wcrc, p.wlen)
		p.wlen = 0
	}
}

// rest is the input after the final block, from its byte boundary: the
// trailer and whatever follows.
func (p *parallel) rest() io.Reader {
	p.stopReading()
	by := (p.endBit + 7) >> 3
	var head []byte
	for i := max(p.base, int(by/int64(p.chunkSize))); i < p.base+len(p.chunks); i++ {
		c := p.chunks[i-p.base]
		if o := by - int64(i)*int64(p.chunkSize); o > 0 {
			if o >= int64(len(c)) {
				continue
			}
			c = c[o:]
		}
		head = append(head, c...)
	}
	if p.srcErr != nil {
		return io.MultiReader(bytes.NewReader(head), errReader{p.srcErr})
	}
	return io.MultiReader(bytes.NewReader(head), p.src)
}

// rest0 is all of the input, for a member too small to split.
func (p *parallel) rest0() io.Reader {
	p.stopReading()
	var head []byte
	for _, c := range p.chunks {
		head = append(head, c...)
	}
	if p.srcErr != nil {
		return io.MultiReader(bytes.NewReader(head), errReader{p.srcErr})
	}
	return io.MultiReader(bytes.NewReader(head), p.src)
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// crc32Combine returns the CRC-32 of A followed by B from crc1 of A, crc2
// of B and B's length, by applying len2 zero bytes to crc1 as a linear
// map over GF(2): the map for one zero bit, squared for each further power
// of two.
func crc32Combine(crc1, crc2 uint32, len2 int64) uint32 {
	if len2 <= 0 {
		return crc1
	}
	// op is the map for 2^k zero bits: 32 columns, column i the image of
	// bit i. Start from one zero bit.
	var op, sq [32]uint32
	op[0] = 0xedb88320
	for i := 1; i < 32; i++ {
		op[i] = 1 << (i - 1)
	}
	// Square three times: one zero byte.
	for i := 0; i < 3; i++ {
		gf2Square(&sq, &op)
		op = sq
	}
	for len2 > 0 {
		if len2&1 != 0 {
			crc1 = gf2Times(&op, crc1)
		}
		len2 >>= 1
		if len2 > 0 {
			gf2Square(&sq, &op)
			op = sq
		}
	}
	return crc1 ^ crc2
}

func gf2Times(m *[32]uint32, v uint32) uint32 {
	var r uint32
	for i := 0; v != 0; i, v = i+1, v>>1 {
		if v&1 != 0 {
			r ^= m[i]
		}
	}
	return r
}

func gf2Square(dst, m *[32]uint32) {
	for i := range m {
		dst[i] = gf2Times(m, m[i])
	}
}
