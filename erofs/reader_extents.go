package erofs

// Where a regular file's data lies, as device blocks: what a builder of
// merged metadata (an image whose files point into other images) needs
// to reference the data in place instead of copying it.

import (
	"errors"
	"fmt"
)

// ErrNotBlockAddressed is matched (with errors.Is) by the error of
// FS.DataExtents for a file whose data is not all in whole blocks of a
// device: an inline tail (FLAT_INLINE) or compressed data.
var ErrNotBlockAddressed = errors.New("erofs: file data not in whole device blocks")

// DataExtent is a run of a regular file's bytes stored contiguously on one
// device, or a hole.
type DataExtent struct {
	// Off and Len are the file's bytes [Off, Off+Len) the extent holds.
	Off, Len int64

	// Device is the device holding them: 0 the image itself, k the k-th
	// entry of its device table.
	Device uint16

	// Block is the first block holding them on Device, in the image's
	// block size. It is 0 for a hole.
	Block uint64

	// Hole reports a hole: the bytes read as zeros and are stored nowhere.
	Hole bool
}

// DataExtents returns where the data of the regular file whose inode is
// nid (Stat.Nid, from a FileInfo's Sys) lies: extents in file order,
// covering the file exactly, none for an empty file. A FLAT_PLAIN file is
// one extent; a chunk-based file one extent per chunk (each the chunk
// size, but the last, which ends at the file's end). A file with an
// inline tail or compressed data gives an error matching
// ErrNotBlockAddressed, naming the layout.
func (f *FS) DataExtents(nid uint64) ([]DataExtent, error) {
	i, err := f.inode(nid)
	if err != nil {
		return nil, err
	}
	if !i.isReg() {
		return nil, fmt.Errorf("erofs: inode %d: not a regular file (mode %#o)", nid, i.mode)
	}
	return f.extents(i)
}

// extents lists a regular file inode's data extents.
func (f *FS) extents(i *fsInode) ([]DataExtent, error) {
	if i.size == 0 {
		return nil, nil
	}
	switch i.layout {
	case LayoutFlatPlain:
		if i.u == nullAddr {
			return nil, inodeCorruptf(i.nid, "%d bytes of FLAT_PLAIN data without a block address", i.size)
		}
		return []DataExtent{{Len: i.size, Block: uint64(i.u)}}, nil
	case LayoutFlatInline:
		return nil, fmt.Errorf("inode %d: inline tail of %d bytes (FLAT_INLINE): %w", i.nid, i.size-(i.size-1)>>f.blkBits<<f.blkBits, ErrNotBlockAddressed)
	case LayoutChunkBased:
		m := newChunkMapper(f, i)
		ext := make([]DataExtent, 0, m.count)
		for c := range m.count {
			start := c << m.chunkBits
			e := DataExtent{Off: start, Len: min(int64(1)<<m.chunkBits, i.size-start)}
			b, err := m.entry(c)
			if err != nil {
				return nil, err
			}
			if m.indexes {
				ci := DecodeChunkIndex(b)
				e.Device, e.Hole = ci.DeviceID, ci.BlkAddr == nullAddr
				e.Block = ci.StartBlock(m.wide)
				if f.devMask != 0 {
					e.Device &= f.devMask
				}
			} else {
				blk := decodeChunkBlockMap(b)
				e.Hole, e.Block = blk == nullAddr, uint64(blk)
			}
			if e.Hole {
				e.Device, e.Block = 0, 0
			}
			if int(e.Device) > len(f.devs) {
				return nil, inodeCorruptf(i.nid, "chunk %d: device id %d out of range (%d extra devices)", c, e.Device, len(f.devs))
			}
			ext = append(ext, e)
		}
		return ext, nil
	case LayoutCompressedFull, LayoutCompressedCompact:
		return nil, fmt.Errorf("inode %d: compressed data (layout %d): %w", i.nid, i.layout, ErrNotBlockAddressed)
	}
	return nil, inodeCorruptf(i.nid, "unknown data layout %d", i.layout)
}
