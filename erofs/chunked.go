package erofs

// Chunk-based files (LayoutChunkBased; EROFS_INODE_CHUNK_BASED and struct
// erofs_inode_chunk_index in fs/erofs/erofs_fs.h). A chunk-based file's
// data is a run of equal-sized chunks, each a run of blocks on the primary
// device or on an extra device of the device table, or a hole. The inode
// record ends with one entry per chunk: a 4-byte block map (primary
// device only) or 8-byte chunk indexes, which also name the device.
//
// The Writer takes the chunks as references (AddChunks): data already on
// a device, such as a layer image's blocks or a tar's, or blocks the
// caller wrote to the image itself. The entries wait in the spool until
// Close writes the inode records.

import (
	"errors"
	"fmt"
	"math"
)

// Chunk is where one chunk of a chunk-based file lies: from block Block
// of device Device (0 the image itself, k the k-th entry of
// WriterOptions.Devices), or nowhere when Hole is set (it reads as
// zeros).
type Chunk struct {
	Device uint16
	Block  uint64
	Hole   bool
}

// ChunkedFile is the data of a chunk-based file, for Writer.AddChunks.
type ChunkedFile struct {
	// ChunkSize is the size of every chunk but the last, in bytes: a
	// power of two, at least the block size, at most the block size
	// shifted left by 31.
	ChunkSize int64

	// Chunks are the file's chunks in order: exactly
	// ceil(Entry.Size / ChunkSize) of them.
	Chunks []Chunk

	// Indexes writes 8-byte chunk indexes even when a 4-byte block map
	// would do (mkfs.erofs writes indexes for files on extra devices and
	// with -Eforce-chunk-indexes).
	Indexes bool
}

// smallChunkEntries is the most bytes of chunk entries a chunk-based
// file keeps in memory rather than in the spool.
const smallChunkEntries = 64

// chunkFile is a chunk-based file's layout, which its inode's data
// indexes in Writer.chunkFiles.
type chunkFile struct {
	off     int64  // spool offset of the entries, in their on-disk form
	small   []byte // the entries themselves instead, when few
	n       int64  // number of chunks
	format  uint16
	entries int // size of an entry: chunkIndexSize or chunkBlockMapSize
}

// AddChunks adds a regular file whose data is given as chunks (see
// ChunkedFile) instead of bytes: nothing is written to the data area. e is
// as for Add and must be a regular file. A chunk on an extra device must
// lie within the device's Blocks when that is set.
func (w *Writer) AddChunks(e *Entry, f ChunkedFile) error {
	if err := w.usable("AddChunks"); err != nil {
		return err
	}
	if e.Mode&ModeTypeMask != ModeRegular {
		return fmt.Errorf("erofs: %s: AddChunks needs a regular file", e.Path)
	}
	cf, entries, err := w.planChunks(e.Size, f)
	if err != nil {
		return fmt.Errorf("erofs: %s: %w", e.Path, err)
	}
	id, err := w.add(e)
	if err != nil {
		return w.treeError(err)
	}
	if id == noID {
		return nil
	}
	if err := w.setChunks(id, cf, entries); err != nil {
		w.err = fmt.Errorf("erofs: %s: %w", e.Path, err)
		return w.err
	}
	return nil
}

// setChunks makes inode id chunk-based, with the layout and entries
// planChunks made.
func (w *Writer) setChunks(id uint32, cf chunkFile, entries []byte) error {
	if len(entries) <= smallChunkEntries {
		// Kept in memory: a spool write and read back per file cost
		// more than the bytes (a tar index has one entry per file).
		cf.small = entries
	} else {
		var err error
		if cf.off, err = w.spool.write(entries); err != nil {
			return err
		}
	}
	n := w.inodes.at(id)
	n.flags |= flagChunk
	n.data = int64(len(w.chunkFiles))
	w.chunkFiles = append(w.chunkFiles, cf)
	return nil
}

// planChunks checks a chunked file's chunks and encodes their entries.
func (w *Writer) planChunks(size int64, f ChunkedFile) (chunkFile, []byte, error) {
	bs := int64(w.bs)
	cs := f.ChunkSize
	if cs < bs || cs&(cs-1) != 0 || cs/bs > 1<<ChunkFormatBlkBits {
		return chunkFile{}, nil, fmt.Errorf("chunk size %d: want a power of two from the block size %d", cs, bs)
	}
	if want := (size + cs - 1) / cs; int64(len(f.Chunks)) != want {
		return chunkFile{}, nil, fmt.Errorf("%d chunks for %d bytes in chunks of %d: want %d", len(f.Chunks), size, cs, want)
	}
	bits := uint16(0)
	for bs<<bits < cs {
		bits++
	}
	indexes, wide := f.Indexes, false
	for i, c := range f.Chunks {
		if c.Hole {
			continue
		}
		if int(c.Device) > len(w.opts.Devices) {
			return chunkFile{}, nil, fmt.Errorf("chunk %d: device %d of %d", i, c.Device, len(w.opts.Devices))
		}
		if c.Device > 0 {
			indexes = true
			if d := w.opts.Devices[c.Device-1]; d.Blocks > 0 && c.Block+uint64(cs/bs) > d.Blocks && int64(i) < int64(len(f.Chunks))-1 {
				return chunkFile{}, nil, fmt.Errorf("chunk %d: blocks %d+%d past device %d's %d", i, c.Block, cs/bs, c.Device, d.Blocks)
			}
		}
		if c.Block >= 1<<48 {
			return chunkFile{}, nil, fmt.Errorf("chunk %d: block %d past 48 bits", i, c.Block)
		}
		if uint32(c.Block) == nullAddr {
			// Low 32 bits NullAddr: a hole, in 32- and 48-bit indexes.
			return chunkFile{}, nil, fmt.Errorf("chunk %d: block %#x, whose low 32 bits mark a hole", i, c.Block)
		}
		if c.Block > uint64(nullAddr) {
			// Past 32 bits: 48-bit chunk indexes, which block maps
			// have no form of.
			wide, indexes = true, true
		}
	}
	cf := chunkFile{n: int64(len(f.Chunks)), format: bits, entries: chunkBlockMapSize}
	if indexes {
		cf.format |= chunkFormatIndexes
		cf.entries = chunkIndexSize
	}
	if wide {
		cf.format |= chunkFormat48Bit
		w.wide = true
	}
	b := make([]byte, 0, len(f.Chunks)*cf.entries)
	for i, c := range f.Chunks {
		if indexes {
			var x [chunkIndexSize]byte
			ci := NewChunkIndex(c.Device, c.Block)
			if c.Hole {
				// mkfs.erofs writes all 48 bits set for a hole.
				ci = NewChunkIndex(0, uint64(nullAddr))
				if wide {
					ci.Advise = 0xFFFF
				}
			}
			if err := ci.Encode(x[:]); err != nil {
				return chunkFile{}, nil, fmt.Errorf("internal error: chunk %d: %w", i, err)
			}
			b = append(b, x[:]...)
		} else {
			addr := uint32(c.Block)
			if c.Hole {
				addr = nullAddr
			}
			b = le.AppendUint32(b, addr)
		}
	}
	if int64(len(b)) > math.MaxInt32 {
		return chunkFile{}, nil, errors.New("too many chunks")
	}
	return cf, b, nil
}

// chunkBased is the rule of a chunk-based file: i_u holds the chunk
// format, and the record ends with the entries, chunk indexes 8-byte
// aligned.
type chunkBased struct{}

func (chunkBased) format(l *layout, n *inode) (uint16, uint32) {
	return LayoutChunkBased, uint32(l.w.chunkFiles[n.data].format)
}

func (chunkBased) recordSize(l *layout, n *inode) int64 {
	w := l.w
	cf := w.chunkFiles[n.data]
	return int64(roundUp(w.coreSize(n)+w.ibody(n), cf.entries)) + cf.n*int64(cf.entries)
}

func (chunkBased) reservedBlock(*layout, *inode) int64 { return -1 }

func (chunkBased) writeReserved(*layout, uint32, *inode) error { return nil }

func (chunkBased) appendInline(l *layout, b []byte, _ uint32, n *inode) ([]byte, error) {
	w := l.w
	cf := w.chunkFiles[n.data]
	start := len(b) - w.coreSize(n) - w.ibody(n)
	for (len(b)-start)%cf.entries != 0 {
		b = append(b, 0)
	}
	k := len(b)
	b = appendZeros(b, int(cf.n)*cf.entries)
	if cf.small != nil {
		copy(b[k:], cf.small)
		return b, nil
	}
	if err := w.spool.readAt(b[k:], cf.off); err != nil {
		return nil, err
	}
	return b, nil
}

// zconfigMax is the most the compression configuration records take.
const zconfigMax = 32

// devtSlotOff is where the device table starts, in 128-byte slots: after
// the superblock and the compression configuration records (of at most
// zconfigMax bytes), as mkfs.erofs places it.
func devtSlotOff(compressed bool) int {
	end := SuperblockOffset + superblockSize
	if compressed {
		end += zconfigMax
	}
	return roundUp(end, deviceSlotSize) / deviceSlotSize
}

// headerEnd is the end of the superblock, the compression configuration
// records and the device table of devices slots.
func headerEnd(compressed bool, devices int) int {
	if devices == 0 {
		return SuperblockOffset + superblockSize
	}
	return (devtSlotOff(compressed) + devices) * deviceSlotSize
}
