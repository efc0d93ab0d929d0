package erofs

import (
	"bytes"
	"fmt"
	"io/fs"
	"testing"
)

// TestChunkedLikeMkfs rebuilds the files of the golden chunk-based
// images (mkfs.erofs --chunksize, and --blobdev) with
// WriterOptions.ChunkSize and compares, file by file, the chunk layouts:
// the enlarged chunk size, block map or indexes, which chunks are holes,
// on which device the others are, and which share blocks (the blocks
// themselves depend on the order files are written in). With a blob
// device, the device sizes must be equal too.
func TestChunkedLikeMkfs(t *testing.T) {
	for _, g := range []struct {
		name string
		cs   int64
		blob string
	}{
		{"chunk8k.erofs", 8192, ""},
		{"smallchunk.erofs", 1024, ""},
		{"blobdev.erofs", 4096, "blob.img"},
	} {
		t.Run(g.name, func(t *testing.T) {
			var src *FS
			if g.blob != "" {
				src = openGolden(t, g.name, WithDevices(bytes.NewReader(loadGolden(t, g.blob))))
			} else {
				src = openGolden(t, g.name)
			}
			img := &ddImage{}
			var blob bytes.Buffer
			opts := &WriterOptions{BlockSize: 1 << src.Superblock().BlkSzBits, ChunkSize: g.cs}
			if g.blob != "" {
				opts.BlobDev = &blob
			}
			w, err := NewWriter(img, opts)
			if err != nil {
				t.Fatal(err)
			}
			err = fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return err
				}
				data, err := fs.ReadFile(src, p)
				if err != nil {
					return err
				}
				return w.Add(&Entry{Path: p, Mode: ModeRegular | 0o644, Size: int64(len(data))}, bytes.NewReader(data))
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			var devs []OpenOption
			if g.blob != "" {
				devs = append(devs, WithDevices(bytes.NewReader(blob.Bytes())))
			}
			ours, err := Open(bytes.NewReader(img.b), devs...)
			if err != nil {
				t.Fatal(err)
			}
			want, got := chunkLayouts(t, src), chunkLayouts(t, ours)
			if len(want) == 0 || len(got) != len(want) {
				t.Fatalf("%d chunk-based files, mkfs.erofs has %d", len(got), len(want))
			}
			fwd, back := map[Chunk]Chunk{}, map[Chunk]Chunk{}
			for p, wl := range want {
				gl := got[p]
				if gl.chunkSize != wl.chunkSize || gl.indexes != wl.indexes || len(gl.chunks) != len(wl.chunks) {
					t.Errorf("%s: chunks of %d bytes, indexes %v, %d chunks; mkfs.erofs: %d, %v, %d",
						p, gl.chunkSize, gl.indexes, len(gl.chunks), wl.chunkSize, wl.indexes, len(wl.chunks))
					continue
				}
				for i, wc := range wl.chunks {
					gc := gl.chunks[i]
					if gc.Hole != wc.Hole || gc.Device != wc.Device {
						t.Errorf("%s: chunk %d is %+v, mkfs.erofs's %+v", p, i, gc, wc)
						continue
					}
					if m, ok := fwd[wc]; ok && m != gc || !ok && back[gc] != (Chunk{}) {
						t.Errorf("%s: chunk %d: blocks shared unlike mkfs.erofs's", p, i)
					}
					fwd[wc], back[gc] = gc, wc
				}
			}
			if g.blob != "" {
				if a, b := ours.Superblock().Devices, src.Superblock().Devices; len(a) != 1 || len(b) != 1 || a[0].Blocks != b[0].Blocks {
					t.Errorf("devices %+v, mkfs.erofs's %+v", a, b)
				}
				if int64(blob.Len()) != int64(len(loadGolden(t, g.blob))) {
					t.Errorf("blob of %d bytes, mkfs.erofs's %d", blob.Len(), len(loadGolden(t, g.blob)))
				}
			}
		})
	}
}

// TestMergeChunks checks the chunk size enlargement on runs worked out by
// hand from mkfs.erofs's rule (lib/blobchunk.c): the largest power of two
// of blocks dividing every run's length in whole blocks.
func TestMergeChunks(t *testing.T) {
	const bs, cs = 4096, 4096
	const hole64 = uint64(nullAddr)
	run := func(start uint64, n int) []Chunk {
		var c []Chunk
		for i := range n {
			c = append(c, Chunk{Block: start + uint64(i)})
		}
		return c
	}
	hole := func(n int) []Chunk {
		c := make([]Chunk, n)
		for i := range c {
			c[i].Hole = true
		}
		return c
	}
	cat := func(cs ...[]Chunk) []Chunk {
		var all []Chunk
		for _, c := range cs {
			all = append(all, c...)
		}
		return all
	}
	for _, c := range []struct {
		name   string
		chunks []Chunk
		size   int64
		want   int64 // chunk size
		blocks []uint64
	}{
		{"one run of 16", run(10, 16), 16 * bs, 64 << 10, []uint64{10}},
		{"run of 12 and a tail", run(10, 13), 12*bs + 100, 16 << 10, []uint64{10, 14, 18, 22}},
		{"odd run", run(10, 5), 5 * bs, cs, nil},
		{"8 then holes 8", cat(run(3, 8), hole(8)), 16 * bs, 32 << 10, []uint64{3, hole64}},
		{"8 then a jump", cat(run(3, 8), run(100, 4)), 12 * bs, 16 << 10, []uint64{3, 7, 100}},
		{"all holes", hole(5), 5*bs - 1, 32 << 10, []uint64{hole64}},
		{"short file", run(1, 1), 100, cs, nil},
	} {
		orig := append([]Chunk(nil), c.chunks...)
		got, chunks := mergeChunks(c.chunks, c.size, cs, bs)
		if got != c.want {
			t.Errorf("%s: chunk size %d, want %d", c.name, got, c.want)
			continue
		}
		if c.blocks == nil {
			if len(chunks) != len(orig) {
				t.Errorf("%s: %d chunks, want the %d unchanged", c.name, len(chunks), len(orig))
			}
			continue
		}
		var blocks []uint64
		for _, ch := range chunks {
			if ch.Hole {
				blocks = append(blocks, hole64)
			} else {
				blocks = append(blocks, ch.Block)
			}
		}
		if fmt.Sprint(blocks) != fmt.Sprint(c.blocks) {
			t.Errorf("%s: blocks %v, want %v", c.name, blocks, c.blocks)
		}
	}
}
