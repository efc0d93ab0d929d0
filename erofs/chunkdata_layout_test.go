package erofs

import (
	"io/fs"
	"testing"
)

// chunkLayout is how a chunk-based file is laid out, as the reader sees
// it: its chunk size, whether it has chunk indexes, and its chunks.
type chunkLayout struct {
	chunkSize int64
	indexes   bool
	chunks    []Chunk
}

// chunkLayouts returns the layout of every chunk-based regular file of f,
// by path.
func chunkLayouts(t *testing.T, f *FS) map[string]chunkLayout {
	t.Helper()
	out := map[string]chunkLayout{}
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		r, err := f.resolve(p, false)
		if err != nil {
			return err
		}
		if r.ino.layout != LayoutChunkBased {
			return nil
		}
		m := newChunkMapper(f, r.ino)
		l := chunkLayout{chunkSize: 1 << m.chunkBits, indexes: m.indexes}
		for c := int64(0); c < m.count; c++ {
			b, err := m.entry(c)
			if err != nil {
				return err
			}
			var ch Chunk
			var blk uint32
			if m.indexes {
				ci := DecodeChunkIndex(b)
				ch.Device, blk = ci.DeviceID, ci.BlkAddr
			} else {
				blk = decodeChunkBlockMap(b)
			}
			ch.Block, ch.Hole = uint64(blk), blk == nullAddr
			if ch.Hole {
				ch.Device, ch.Block = 0, 0
			}
			l.chunks = append(l.chunks, ch)
		}
		out[p] = l
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
