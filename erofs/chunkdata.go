package erofs

// Chunked storage of added files (WriterOptions.ChunkSize, what
// mkfs.erofs --chunksize and --blobdev make). Add cuts a regular file's
// data, as it streams in, into chunks of ChunkSize bytes; a chunk already
// stored (same SHA-256) is referenced again, an all-zero chunk becomes a
// hole, and any other chunk is written, padded to whole blocks, at the
// end of the data area or of the blob device. Where a file's chunks then
// lie in contiguous runs, its chunk size is enlarged as mkfs.erofs does:
// to the largest power of two of blocks dividing the length of every run
// (a run being consecutive chunks back to back on their device, or
// consecutive holes), so that fewer entries are needed. The chunks are
// then recorded as for AddChunks.

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/bits"
)

// maxChunkTable bounds the table of stored chunks that deduplication looks
// chunks up in: an entry takes about 60 bytes, so the table stays under
// 64 MiB. Once it is full, chunks are still looked up in it but new ones
// are no longer added, so only chunks recurring among the first
// maxChunkTable distinct ones (4 GiB of data in 4 KiB chunks, 1 TiB in
// 1 MiB chunks) are stored once.
const maxChunkTable = 1 << 20

// chunkStore holds what Add needs to store files chunk-based.
type chunkStore struct {
	size   int64  // the base chunk size, WriterOptions.ChunkSize
	dev    uint16 // the device new chunks go to: 0 or the blob device
	blob   *bufio.Writer
	blobN  int64 // blocks written to the blob device
	seen   map[[sha256.Size]byte]uint32
	buf    []byte  // one chunk's data
	chunks []Chunk // scratch: the chunks of the file being added
}

// initChunks validates the chunk options and sets up the chunk store; it
// appends the blob device, if any, to the device table.
func (w *Writer) initChunks() error {
	o := &w.opts
	if o.ChunkSize == 0 {
		if o.BlobDev != nil {
			return errors.New("erofs: BlobDev needs ChunkSize")
		}
		return nil
	}
	cs, bs := o.ChunkSize, int64(w.bs)
	if cs < bs || cs&(cs-1) != 0 || cs/bs > 1<<ChunkFormatBlkBits || cs > math.MaxInt32+1 {
		return fmt.Errorf("erofs: chunk size %d: want a power of two from the block size %d to 2 GiB", cs, bs)
	}
	if o.Compression != nil {
		return errors.New("erofs: ChunkSize and Compression do not go together: chunk-based files are stored uncompressed")
	}
	c := &chunkStore{size: cs, seen: make(map[[sha256.Size]byte]uint32)}
	if o.BlobDev != nil {
		if len(o.Devices) >= math.MaxUint16 {
			return fmt.Errorf("erofs: %d devices and a blob device: at most %d", len(o.Devices), math.MaxUint16)
		}
		o.Devices = append(o.Devices, SuperblockDevice{})
		c.dev = uint16(len(o.Devices))
		c.blob = bufio.NewWriterSize(o.BlobDev, 1<<20)
	}
	w.chunks = c
	return nil
}

// addChunked stores the data of regular file n, read from r, chunk-based.
func (w *Writer) addChunked(id uint32, n *inode, r io.Reader) error {
	if r == nil {
		return errors.New("no data reader for a non-empty file")
	}
	c := w.chunks
	if c.buf == nil {
		c.buf = make([]byte, c.size)
	}
	bs := int64(w.bs)
	cs := c.size
	c.chunks = c.chunks[:0]
	for pos := int64(0); pos < n.size; pos += cs {
		b := c.buf[:min(cs, n.size-pos)]
		if _, err := io.ReadFull(r, b); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fmt.Errorf("data at offset %d: %w", pos, err)
		}
		w.dataCRC = crc32.Update(w.dataCRC, castagnoli, b)
		if allZero(b) {
			c.chunks = append(c.chunks, Chunk{Hole: true})
			continue
		}
		sum := sha256.Sum256(b)
		if blk, ok := c.seen[sum]; ok {
			c.chunks = append(c.chunks, Chunk{Device: c.dev, Block: uint64(blk)})
			continue
		}
		blk, err := w.storeChunk(b)
		if err != nil {
			return fmt.Errorf("data at offset %d: %w", pos, err)
		}
		if len(c.seen) < maxChunkTable {
			c.seen[sum] = blk
		}
		c.chunks = append(c.chunks, Chunk{Device: c.dev, Block: uint64(blk)})
	}
	w.dataLen += n.size
	f := ChunkedFile{ChunkSize: cs, Indexes: len(w.opts.Devices) > 0}
	f.ChunkSize, f.Chunks = mergeChunks(c.chunks, n.size, cs, bs)
	cf, entries, err := w.planChunks(n.size, f)
	if err != nil {
		return err
	}
	return w.setChunks(id, cf, entries)
}

// storeChunk writes a chunk's data, padded to whole blocks, where new
// chunks go, and returns its first block there.
func (w *Writer) storeChunk(b []byte) (uint32, error) {
	c, bs := w.chunks, int64(w.bs)
	blocks := (int64(len(b)) + bs - 1) / bs
	var at int64
	if c.blob != nil {
		at = c.blobN
		if _, err := c.blob.Write(b); err != nil {
			return 0, fmt.Errorf("blob device: %w", err)
		}
		if pad := blocks*bs - int64(len(b)); pad > 0 {
			if _, err := c.blob.Write(make([]byte, pad)); err != nil {
				return 0, fmt.Errorf("blob device: %w", err)
			}
		}
		c.blobN += blocks
	} else {
		at = w.nextBlock
		if _, err := w.out.Write(b); err != nil {
			return 0, err
		}
		if err := w.out.padTo(bs); err != nil {
			return 0, err
		}
		w.nextBlock += blocks
	}
	if at+blocks > math.MaxUint32 {
		return 0, fmt.Errorf("chunk at block %d: past 2^32 blocks", at)
	}
	return uint32(at), nil
}

// finishChunks flushes the blob device and records its size in the
// device table; Close calls it before writing the superblock.
func (w *Writer) finishChunks() error {
	c := w.chunks
	if c == nil || c.blob == nil {
		return nil
	}
	if err := c.blob.Flush(); err != nil {
		return fmt.Errorf("erofs: blob device: %w", err)
	}
	w.opts.Devices[c.dev-1].Blocks = uint64(c.blobN)
	return nil
}

// mergeChunks enlarges the chunk size of a file of size bytes whose
// chunks of cs bytes are chunks, as mkfs.erofs does, and returns the new
// size and chunks (chunks itself, shortened, when it changes). A run is a
// stretch of consecutive holes or of chunks back to back on one device;
// the new size is the largest power of two of blocks that divides the
// length in whole blocks of every run, counting the last one up to the
// file's end. A file that is all holes gets one chunk as large as it
// (within the chunk format's limit).
func mergeChunks(chunks []Chunk, size, cs, bs int64) (int64, []Chunk) {
	maxBits := bits.TrailingZeros64(uint64(bs)) + ChunkFormatBlkBits
	allHoles := true
	for _, c := range chunks {
		if !c.Hole {
			allHoles = false
			break
		}
	}
	newBits := 0
	if allHoles {
		newBits = bits.Len64(uint64(size - 1))
	} else {
		minExt := (size + bs - 1) / bs
		update := func(start, end int64) {
			if lb := lowBit((end - start) / bs); lb > 0 && lb < minExt {
				minExt = lb
			}
		}
		start := int64(0)
		for i := 1; i < len(chunks); i++ {
			p, c := chunks[i-1], chunks[i]
			if p.Hole && c.Hole || !p.Hole && !c.Hole && p.Device == c.Device && c.Block == p.Block+uint64(cs/bs) {
				continue
			}
			pos := int64(i) * cs
			update(start, pos)
			start = pos
		}
		update(start, size)
		newBits = bits.Len64(uint64(minExt)) - 1 + bits.TrailingZeros64(uint64(bs))
	}
	newBits = min(newBits, maxBits)
	if int64(1)<<newBits <= cs {
		return cs, chunks
	}
	ncs := int64(1) << newBits
	step := int(ncs / cs)
	count := int((size + ncs - 1) / ncs)
	for i := 0; i < count; i++ {
		chunks[i] = chunks[i*step]
	}
	return ncs, chunks[:count]
}

// lowBit is the lowest set bit of x, 0 for 0.
func lowBit(x int64) int64 { return x & -x }

// allZero reports whether b is all zeros.
func allZero(b []byte) bool {
	for i := 0; i+8 <= len(b); i += 8 {
		if le.Uint64(b[i:]) != 0 {
			return false
		}
	}
	for _, x := range b[len(b)&^7:] {
		if x != 0 {
			return false
		}
	}
	return true
}
