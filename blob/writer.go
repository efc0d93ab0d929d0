package blob

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/rafs-dev/rafs/erofs/pipeline"
)

// DefaultZstdLevel is the klauspost zstd level used for chunks when
// WriterOptions.Level is 0. SpeedFastest (≈ libzstd level 1) is chosen for
// throughput: on a Debian base layer's file data it stores 49.5 % of the
// bytes against 47.6 % for SpeedDefault (≈ libzstd level 3, what
// nydus-image uses) at about 60 % of its CPU time (BenchmarkWriterDebian).
const DefaultZstdLevel = zstd.SpeedFastest

// WriterOptions configure a Writer. The zero value, like a nil
// *WriterOptions, gives DefaultWriterOptions(): what nydus-image (and
// rafs build --type nydus) writes by default.
type WriterOptions struct {
	// Compressor compresses chunk data: CompressorZstd or
	// CompressorLZ4Block. The zero value (whose name, CompressorNone, is
	// the on-disk id of raw data) means CompressorZstd; set Uncompressed
	// to store chunks as they are.
	Compressor Compressor

	// Uncompressed stores every chunk as it is (compressor "none" in the
	// blob, nydus-image --compressor none). Compressor and Level must
	// then be zero.
	Uncompressed bool

	// Level is the compression level: 0 is the compressor's default
	// (DefaultZstdLevel for zstd, the fast greedy compressor for lz4);
	// zstd levels follow libzstd numbering (1–2 fastest, 3–5 default,
	// 6–9 better, 10+ best); lz4 levels are those of erofs/lz4 (1–12 HC).
	Level int

	// Digester hashes chunks: DigesterBlake3 (the zero value) or
	// DigesterSHA256.
	Digester Digester

	// ChunkSize is the filesystem chunk size recorded in Info (a power of
	// two from 4 KiB to 16 MiB; 0 means 1 MiB). Chunks passed to Add may
	// not exceed it.
	ChunkSize int

	// Workers is the number of goroutines hashing and compressing chunks;
	// 0 means GOMAXPROCS. The output does not depend on it.
	Workers int

	// ChunkInfoV2 writes 24-byte V2 CI entries carrying each chunk's
	// CRC-32C (feature CHUNK_INFO_V2) instead of 16-byte V1 entries.
	// V2 cannot store an incompressible 16 MiB chunk.
	ChunkInfoV2 bool
}

// DefaultWriterOptions returns the options nydus-image uses by default:
// zstd chunks, BLAKE3 digests, 1 MiB chunks, V1 CI entries, and one
// worker per CPU.
func DefaultWriterOptions() *WriterOptions {
	return &WriterOptions{Compressor: CompressorZstd, Digester: DigesterBlake3, ChunkSize: DefaultChunkSize}
}

// StoredChunk describes where a chunk passed to Writer.Add ended up. The
// ordered stage makes it in the background; the Writer fills it in during
// later calls, and it is valid only after the next Flush returns without
// error, inside the BootstrapFunc, and after Finish returns without error.
type StoredChunk struct {
	// Index is the chunk's CI index (order of first write).
	Index uint32
	// Duplicate is true when identical data (same digest and size) was
	// added before; the chunk then shares that chunk's index and offsets.
	Duplicate bool
	// Digest is the chunk digest of the uncompressed data.
	Digest [DigestSize]byte
	// CRC32 is the CRC-32C (Castagnoli) of the uncompressed data.
	CRC32 uint32
	// UncompressedOffset is the 4 KiB-aligned offset in the blob's
	// uncompressed address space; UncompressedSize the data length.
	UncompressedOffset uint64
	UncompressedSize   uint32
	// CompressedOffset and CompressedSize locate the stored bytes in the
	// blob file.
	CompressedOffset uint64
	CompressedSize   uint32
	// Compressed is false when the chunk is stored raw (compression did
	// not make it strictly smaller).
	Compressed bool
}

// Info describes a finished blob: everything a RAFS blob table entry needs.
type Info struct {
	// ID is the hex SHA-256 of the complete blob (its OCI layer digest).
	// Empty in the Info passed to the bootstrap function.
	ID string
	// Size is the total number of bytes written (0 in the Info passed to
	// the bootstrap function).
	Size int64

	// ChunkCount is the number of unique chunks (CI entries).
	ChunkCount uint32
	// ChunkSize is the filesystem chunk size (WriterOptions.ChunkSize).
	ChunkSize uint32
	// Compressor and Digester are the chunk compressor and digester.
	Compressor Compressor
	Digester   Digester
	// Features are the BlobFeatures of the blob (as in its CI header):
	// 0x70000023 for a blob with chunks and an inline bootstrap.
	Features Features

	// DataSize is the number of chunk-data bytes (offset 0 .. DataSize).
	DataSize uint64
	// CompressedSize is the blob size before the inline bootstrap: what
	// nydus-image records in a per-layer blob table (RafsV6Blob
	// compressed_size).
	CompressedSize uint64
	// UncompressedSize is the end of the last chunk in uncompressed
	// space, 4 KiB aligned.
	UncompressedSize uint64

	// CIOffset, CICompressedSize, CIUncompressedSize and CICompressor
	// describe the stored CI array (zero without chunks).
	CIOffset           uint64
	CICompressedSize   uint64
	CIUncompressedSize uint64
	CICompressor       Compressor

	// TOCSize is 128 × entries + 512; TOCDigest the SHA-256 of the TOC
	// entries and their tar header. Zero in the Info passed to the
	// bootstrap function.
	TOCSize   uint32
	TOCDigest [DigestSize]byte
}

// BootstrapFunc returns the RAFS bootstrap to inline into the blob. It is
// called by Finish after all chunks are written and all blob-table fields
// are known (data is the blob's Info without ID, Size and TOC).
type BootstrapFunc func(data *Info) ([]byte, error)

// Writer writes a Nydus data blob to an io.Writer, append-only. Chunks are
// hashed and compressed by a pool of workers while the caller keeps adding;
// a single ordered stage deduplicates and writes them in Add order, so the
// output is the same for any number of workers.
//
// A Writer is not safe for concurrent use.
type Writer struct {
	opts     WriterOptions
	maxChunk int // largest chunk Add accepts
	pipe     *pipeline.Pipeline[*job, hashedChunk, StoredChunk]
	sink     *chunkSink     // the ordered stage's state
	free     chan *job      // recycled jobs
	waiting  []*StoredChunk // descriptors returned by Add, filled in from filled on
	filled   int
	taken    []StoredChunk // scratch: descriptors made by the ordered stage
	stopped  bool
	done     bool

	// The blob so far, the ordered stage's until the pipeline has
	// stopped: Finish takes them back.
	bw     *bufio.Writer
	out    *hashWriter
	chunks []ChunkInfo
	digs   []byte
	uoff   uint64
	coff   uint64
}

type chunkKey struct {
	digest [DigestSize]byte
	size   uint32
}

// dedupIndex knows the chunks seen so far, by digest and size. The first
// worker to hash a chunk claims it (and compresses it); the ordered stage
// records where it was written.
type dedupIndex struct {
	mu sync.Mutex
	m  map[chunkKey]*StoredChunk // nil: claimed, not written yet
}

// claim reports whether k was not claimed before, claiming it.
func (d *dedupIndex) claim(k chunkKey) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.m[k]; ok {
		return false
	}
	d.m[k] = nil
	return true
}

// written returns the chunk written for k, or nil.
func (d *dedupIndex) written(k chunkKey) *StoredChunk {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.m[k]
}

// record records that k was written as c.
func (d *dedupIndex) record(k chunkKey, c *StoredChunk) {
	d.mu.Lock()
	d.m[k] = c
	d.mu.Unlock()
}

// job is one chunk on its way through the pipeline; it is recycled with
// its buffers.
type job struct {
	data []byte
	buf  []byte // compression output buffer
}

// hashedChunk is what a worker makes of a chunk.
type hashedChunk struct {
	digest [DigestSize]byte
	crc    uint32
	comp   []byte // compressed bytes (in the job's buf), nil: store raw or not tried
	tried  bool   // compression was attempted
}

// chunkSink is the state of the ordered stage.
type chunkSink struct {
	v2     bool
	index  *dedupIndex
	comp   *chunkCompressor // for chunks whose compression a worker skipped
	free   chan *job
	bw     *bufio.Writer
	chunks []ChunkInfo
	digs   []byte
	uoff   uint64
	coff   uint64
}

// NewWriter returns a Writer writing a blob to w. Call Add for every
// chunk, then Finish.
func NewWriter(w io.Writer, opts *WriterOptions) (*Writer, error) {
	if opts == nil {
		opts = DefaultWriterOptions()
	}
	o := *opts
	if o.ChunkSize == 0 {
		o.ChunkSize = DefaultChunkSize
	}
	if o.ChunkSize < 0 || !ValidChunkSize(uint64(o.ChunkSize)) {
		return nil, fmt.Errorf("blob: chunk size %d: want a power of two from %d to %d", o.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	if o.Digester != DigesterBlake3 && o.Digester != DigesterSHA256 {
		return nil, fmt.Errorf("blob: unsupported digester %v", o.Digester)
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	switch {
	case o.Uncompressed && (o.Compressor != CompressorNone || o.Level != 0):
		return nil, fmt.Errorf("blob: Uncompressed with compressor %v level %d: leave them zero", o.Compressor, o.Level)
	case o.Level < 0:
		return nil, fmt.Errorf("blob: negative compression level %d", o.Level)
	case !o.Uncompressed && o.Compressor == CompressorNone:
		o.Compressor = CompressorZstd
	}
	if o.ChunkInfoV2 && o.Compressor == CompressorNone && o.ChunkSize == MaxChunkSize {
		return nil, errors.New("blob: V2 chunk infos cannot store raw 16 MiB chunks")
	}
	comp, err := newChunkCompressor(o.Compressor, o.Level)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	comps := make([]*chunkCompressor, o.Workers)
	for i := range comps {
		if comps[i], err = newChunkCompressor(o.Compressor, o.Level); err != nil {
			return nil, fmt.Errorf("blob: %w", err)
		}
	}
	// A few chunks per worker in flight keeps workers busy while the
	// ordered stage writes, with memory bounded by inFlight × chunk size.
	inFlight := 2*o.Workers + 2
	out := &hashWriter{w: w, h: sha256.New()}
	bw := &Writer{
		opts:     o,
		maxChunk: o.ChunkSize,
		out:      out,
		bw:       bufio.NewWriterSize(out, 256<<10),
		free:     make(chan *job, inFlight),
	}
	index := &dedupIndex{m: make(map[chunkKey]*StoredChunk)}
	bw.sink = &chunkSink{v2: o.ChunkInfoV2, index: index, comp: comp, free: bw.free, bw: bw.bw}
	digester := o.Digester
	bw.pipe = pipeline.New(pipeline.Config{Workers: o.Workers, Jobs: inFlight},
		func(i int, j *job) (hashedChunk, error) { return hashChunk(digester, index, comps[i], j), nil },
		bw.sink.write)
	return bw, nil
}

// Add queues one chunk (1 byte up to the chunk size) and returns its
// descriptor, whose fields become valid when the next Flush or Finish
// returns. data is copied; the caller may reuse it at once. Add blocks
// while the workers are a few chunks behind.
func (w *Writer) Add(data []byte) (*StoredChunk, error) {
	if w.stopped {
		return nil, fmt.Errorf("blob: Add after Finish or Close: %w", ErrClosed)
	}
	if err := w.pipe.Err(); err != nil {
		return nil, err
	}
	if len(data) == 0 || len(data) > w.maxChunk {
		return nil, fmt.Errorf("blob: chunk of %d bytes: want 1..%d", len(data), w.maxChunk)
	}
	var j *job
	select {
	case j = <-w.free:
	default:
		j = &job{}
	}
	j.data = append(j.data[:0], data...)
	if err := w.pipe.Submit(j, 0); err != nil {
		return nil, err
	}
	c := &StoredChunk{}
	w.waiting = append(w.waiting, c)
	w.deliver()
	return c, nil
}

// deliver fills in the descriptors of the chunks the ordered stage has
// written so far.
func (w *Writer) deliver() {
	w.taken = w.pipe.Take(w.taken[:0])
	for i := range w.taken {
		*w.waiting[w.filled] = w.taken[i]
		w.waiting[w.filled] = nil
		w.filled++
	}
	switch {
	case w.filled == len(w.waiting):
		w.waiting, w.filled = w.waiting[:0], 0
	case w.filled >= 64 && 2*w.filled >= len(w.waiting):
		n := copy(w.waiting, w.waiting[w.filled:])
		w.waiting, w.filled = w.waiting[:n], 0
	}
}

// Flush waits until every chunk added so far has been written (to the
// Writer's buffer) and its StoredChunk filled in, and returns the first error.
func (w *Writer) Flush() error {
	if w.done {
		return fmt.Errorf("blob: Flush after Finish or Close: %w", ErrClosed)
	}
	if w.stopped {
		return w.pipe.Err()
	}
	err := w.pipe.Flush()
	w.deliver()
	return err
}

// hashChunk hashes a chunk and, unless another job already claimed its
// digest, compresses it (it will be a duplicate unless the claimer comes
// later in order, in which case the ordered stage compresses it itself).
func hashChunk(d Digester, index *dedupIndex, c *chunkCompressor, j *job) hashedChunk {
	h := hashedChunk{digest: d.Sum(j.data), crc: crc32c(j.data)}
	h.tried = index.claim(chunkKey{h.digest, uint32(len(j.data))})
	if h.tried {
		h.comp = c.compress(&j.buf, j.data)
	}
	return h
}

// write dedupes and writes one hashed chunk, in Add order, recycles its
// job and returns its descriptor.
func (s *chunkSink) write(j *job, h hashedChunk) (StoredChunk, error) {
	c, err := s.writeChunk(j, h)
	select {
	case s.free <- j:
	default:
	}
	return c, err
}

func (s *chunkSink) writeChunk(j *job, h hashedChunk) (StoredChunk, error) {
	size := uint32(len(j.data))
	key := chunkKey{h.digest, size}
	if e := s.index.written(key); e != nil {
		c := *e
		c.Duplicate = true
		return c, nil
	}
	if !h.tried {
		h.comp = s.comp.compress(&j.buf, j.data)
	}
	if len(s.chunks) >= MaxChunks {
		return StoredChunk{}, fmt.Errorf("blob: more than %d chunks", MaxChunks)
	}
	stored := j.data
	if h.comp != nil {
		stored = h.comp
	}
	c := StoredChunk{
		Index:              uint32(len(s.chunks)),
		Digest:             h.digest,
		CRC32:              h.crc,
		UncompressedOffset: s.uoff,
		UncompressedSize:   size,
		CompressedOffset:   s.coff,
		CompressedSize:     uint32(len(stored)),
		Compressed:         h.comp != nil,
	}
	ci := ChunkInfo{
		UncompressedOffset: c.UncompressedOffset,
		UncompressedSize:   c.UncompressedSize,
		CompressedOffset:   c.CompressedOffset,
		CompressedSize:     c.CompressedSize,
	}
	if c.Compressed {
		ci.Flags |= ChunkCompressed
	}
	if s.v2 {
		ci.Flags |= ChunkHasCRC32
		ci.Data = uint64(c.CRC32)
	}
	var probe [ChunkInfoV2Size]byte
	var err error
	if s.v2 {
		err = ci.EncodeV2(probe[:])
	} else {
		err = ci.EncodeV1(probe[:])
	}
	if err != nil {
		return StoredChunk{}, fmt.Errorf("blob: chunk %d: %w", c.Index, err)
	}
	if _, err := s.bw.Write(stored); err != nil {
		return StoredChunk{}, fmt.Errorf("blob: writing chunk %d at offset %d: %w", c.Index, c.CompressedOffset, err)
	}
	s.chunks = append(s.chunks, ci)
	s.digs = append(s.digs, h.digest[:]...)
	s.uoff += alignUp(uint64(size), chunkAlign)
	s.coff += uint64(len(stored))
	cp := c
	s.index.record(key, &cp)
	return c, nil
}

// stop ends the pipeline, waits for it and takes the blob back from the
// ordered stage.
func (w *Writer) stop() {
	if w.stopped {
		return
	}
	w.stopped = true
	w.pipe.Close()
	w.deliver()
	s := w.sink
	w.chunks, w.digs, w.uoff, w.coff = s.chunks, s.digs, s.uoff, s.coff
}

// failed returns the first pipeline error.
func (w *Writer) failed() error { return w.pipe.Err() }

// ErrClosed is matched (with errors.Is) by the error Add, Flush and
// Finish return once Finish or Close has been called.
var ErrClosed = errors.New("blob: Writer closed")

// Close stops the workers without finishing the blob (for abandoning a
// Writer after an error): chunks still queued are dropped. It is a no-op
// after Finish.
func (w *Writer) Close() error {
	if !w.stopped {
		w.pipe.Fail(ErrClosed)
	}
	w.stop()
	w.done = true
	return nil
}

// Finish writes everything after the chunk data and returns the blob's
// Info. Layout (each section followed by its GNU tar header):
//
//	chunk data ‖ CI array (zstd if smaller) ‖ CI header ‖ chunk digests ‖
//	zstd(bootstrap) (raw if not smaller) ‖ TOC
//
// With no chunks only the bootstrap and the TOC are written. bootstrap may
// be nil (no inline bootstrap, no INLINED_FS_META feature); otherwise it
// is called once, after the CI header and digests are written, with the
// blob-table fields known so far. The underlying writer is not closed.
func (w *Writer) Finish(bootstrap BootstrapFunc) (*Info, error) {
	if w.done {
		return nil, fmt.Errorf("blob: Finish after Finish or Close: %w", ErrClosed)
	}
	w.stop()
	w.done = true
	if err := w.failed(); err != nil {
		return nil, err
	}
	info := &Info{
		ChunkCount: uint32(len(w.chunks)),
		ChunkSize:  uint32(w.opts.ChunkSize),
		Compressor: w.opts.Compressor,
		Digester:   w.opts.Digester,
		DataSize:   w.coff,
	}
	var toc []TOCEntry
	if len(w.chunks) > 0 {
		info.Features = defaultFeatures | FeatureInlinedChunkDigest
		if bootstrap != nil {
			info.Features |= FeatureInlinedFSMeta
		}
		if w.opts.ChunkInfoV2 {
			info.Features |= FeatureChunkInfoV2
		}
		info.UncompressedSize = w.uoff
		var err error
		if toc, err = w.writeMeta(info); err != nil {
			return nil, err
		}
	}
	info.CompressedSize = uint64(w.pos())
	if bootstrap != nil {
		e, err := w.writeBootstrap(bootstrap, info)
		if err != nil {
			return nil, err
		}
		toc = append(toc, e)
	}
	if err := w.writeTOC(toc, info); err != nil {
		return nil, err
	}
	if err := w.bw.Flush(); err != nil {
		return nil, fmt.Errorf("blob: flushing: %w", err)
	}
	info.Size = w.out.n
	info.ID = hex.EncodeToString(w.out.h.Sum(nil))
	return info, nil
}

// pos is the number of bytes written so far.
func (w *Writer) pos() int64 { return w.out.n + int64(w.bw.Buffered()) }

// write writes b as (part of) section name.
func (w *Writer) write(name string, b []byte) error {
	if _, err := w.bw.Write(b); err != nil {
		return fmt.Errorf("blob: writing %s at offset %d: %w", name, w.pos(), err)
	}
	return nil
}

// writeHeader writes the tar header of a section of size bytes.
func (w *Writer) writeHeader(name string, size uint64) error {
	var h [TarHeaderSize]byte
	if err := EncodeTarHeader(h[:], name, size); err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	return w.write(name+" tar header", h[:])
}

// sum returns the SHA-256 of everything written so far.
func (w *Writer) sum() (s [DigestSize]byte) {
	if err := w.bw.Flush(); err != nil {
		// The error is sticky; the caller's next write reports it.
		return s
	}
	copy(s[:], w.out.h.Sum(nil))
	return s
}

// writeMeta writes the image.blob header, the CI array and header, and
// the digest array, and returns their TOC entries.
func (w *Writer) writeMeta(info *Info) ([]TOCEntry, error) {
	if err := w.writeHeader(SectionData, w.coff); err != nil {
		return nil, err
	}
	// The image.blob digest covers the data and its tar header, as in
	// nydus's builder/src/core/blob.rs;
	// the data starts at 0, so it is the running hash at this point.
	toc := []TOCEntry{{
		Flags:            TOCCompressionNone,
		Name:             SectionData,
		Digest:           w.sum(),
		CompressedOffset: 0,
		CompressedSize:   w.coff,
		UncompressedSize: w.uoff,
	}}

	esize := ChunkInfoV1Size
	if w.opts.ChunkInfoV2 {
		esize = ChunkInfoV2Size
	}
	ci := make([]byte, len(w.chunks)*esize)
	for i := range w.chunks {
		var err error
		if w.opts.ChunkInfoV2 {
			err = w.chunks[i].EncodeV2(ci[i*esize:])
		} else {
			err = w.chunks[i].EncodeV1(ci[i*esize:])
		}
		if err != nil {
			return nil, fmt.Errorf("blob: chunk %d: %w", i, err)
		}
	}
	enc, err := newZstdEncoder(metaZstdLevel)
	if err != nil {
		return nil, fmt.Errorf("blob: %w", err)
	}
	defer enc.Close()
	stored, ciComp := ci, CompressorNone
	if z := enc.EncodeAll(ci, nil); len(z) < len(ci) {
		stored, ciComp = z, CompressorZstd
	}
	info.CIOffset = uint64(w.pos())
	info.CICompressedSize = uint64(len(stored))
	info.CIUncompressedSize = uint64(len(ci))
	info.CICompressor = ciComp
	hdr := CIHeader{
		Features:           info.Features,
		CICompressor:       ciComp,
		CIEntries:          info.ChunkCount,
		CIOffset:           info.CIOffset,
		CICompressedSize:   info.CICompressedSize,
		CIUncompressedSize: info.CIUncompressedSize,
	}
	var hb [CIHeaderSize]byte
	if err := hdr.Encode(hb[:]); err != nil {
		return nil, fmt.Errorf("blob: internal error: %w", err)
	}
	flags, _ := tocFlags(ciComp)
	toc = append(toc, TOCEntry{
		Flags:            flags,
		Name:             SectionMeta,
		Digest:           sha256.Sum256(ci),
		CompressedOffset: info.CIOffset,
		CompressedSize:   info.CICompressedSize,
		UncompressedSize: info.CIUncompressedSize,
	}, TOCEntry{
		Flags:            TOCCompressionNone,
		Name:             SectionMetaHeader,
		Digest:           sha256.Sum256(hb[:]),
		CompressedOffset: info.CIOffset + info.CICompressedSize,
		CompressedSize:   CIHeaderSize,
		UncompressedSize: CIHeaderSize,
	})
	if err := w.write(SectionMeta, stored); err != nil {
		return nil, err
	}
	if err := w.write(SectionMetaHeader, hb[:]); err != nil {
		return nil, err
	}
	if err := w.writeHeader(SectionMeta, info.CICompressedSize+CIHeaderSize); err != nil {
		return nil, err
	}

	doff := uint64(w.pos())
	toc = append(toc, TOCEntry{
		Flags:            TOCCompressionNone,
		Name:             SectionDigest,
		Digest:           sha256.Sum256(w.digs),
		CompressedOffset: doff,
		CompressedSize:   uint64(len(w.digs)),
		UncompressedSize: uint64(len(w.digs)),
	})
	if err := w.write(SectionDigest, w.digs); err != nil {
		return nil, err
	}
	if err := w.writeHeader(SectionDigest, uint64(len(w.digs))); err != nil {
		return nil, err
	}
	return toc, nil
}

// writeBootstrap obtains, compresses and writes the inline bootstrap.
func (w *Writer) writeBootstrap(fn BootstrapFunc, info *Info) (TOCEntry, error) {
	view := *info
	boot, err := fn(&view)
	if err != nil {
		return TOCEntry{}, fmt.Errorf("blob: bootstrap: %w", err)
	}
	if len(boot) == 0 {
		return TOCEntry{}, errors.New("blob: empty bootstrap")
	}
	enc, err := newZstdEncoder(metaZstdLevel)
	if err != nil {
		return TOCEntry{}, fmt.Errorf("blob: %w", err)
	}
	defer enc.Close()
	stored, flags := boot, TOCCompressionNone
	if z := enc.EncodeAll(boot, nil); len(z) < len(boot) {
		stored, flags = z, TOCCompressionZstd
	}
	e := TOCEntry{
		Flags:            flags,
		Name:             SectionBootstrap,
		Digest:           sha256.Sum256(boot),
		CompressedOffset: uint64(w.pos()),
		CompressedSize:   uint64(len(stored)),
		UncompressedSize: uint64(len(boot)),
	}
	if err := w.write(SectionBootstrap, stored); err != nil {
		return TOCEntry{}, err
	}
	if err := w.writeHeader(SectionBootstrap, uint64(len(stored))); err != nil {
		return TOCEntry{}, err
	}
	return e, nil
}

// writeTOC writes the TOC entries and their tar header.
func (w *Writer) writeTOC(toc []TOCEntry, info *Info) error {
	b := make([]byte, len(toc)*TOCEntrySize+TarHeaderSize)
	for i := range toc {
		if err := toc[i].Encode(b[i*TOCEntrySize:]); err != nil {
			return fmt.Errorf("blob: %w", err)
		}
	}
	if err := EncodeTarHeader(b[len(toc)*TOCEntrySize:], SectionTOC, uint64(len(toc)*TOCEntrySize)); err != nil {
		return fmt.Errorf("blob: %w", err)
	}
	info.TOCSize = uint32(len(b))
	info.TOCDigest = sha256.Sum256(b)
	return w.write(SectionTOC, b)
}

// alignUp rounds x up to a multiple of the power of two a.
func alignUp(x, a uint64) uint64 { return (x + a - 1) &^ (a - 1) }
