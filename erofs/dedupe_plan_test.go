package erofs

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
)

// planFiles is a first file ending in noiseSize bytes of noise, 2.5 MiB
// of text, and a last file holding the noise again in pieces of piece
// bytes between 3-byte headers, as xz stores incompressible data.
func planFiles(noiseSize, piece int) []ddFile {
	noise := ddNoise(noiseSize, 5)
	files := []ddFile{{"changelog.gz", append(ddText(20<<10, 1), noise...)}}
	for i := range 10 {
		files = append(files, ddFile{fmt.Sprintf("filler%02d", i), ddText(256<<10, uint64(100+i))})
	}
	deb := ddNoise(2048, 77)
	for off := 0; off < len(noise); off += piece {
		deb = append(append(deb, ddNoise(3, uint64(off))...), noise[off:min(off+piece, len(noise))]...)
	}
	return append(files, ddFile{"pkg.deb", append(deb, ddNoise(5000, 78)...)})
}

// TestDedupePlanRecurrence: the packed inode's noise, recurring in pieces
// 2.5 MiB later, is stored about once with dedupe, whatever the number of
// workers, for pieces of whole blocks and of odd sizes. Each header
// costs up to 3 blocks around it, and the packed inode full indexes.
func TestDedupePlanRecurrence(t *testing.T) {
	const noiseSize = 320 << 10
	for _, tc := range []struct {
		alg   string
		pcl   int
		piece int
	}{{"lzma", 1 << 20, 64 << 10}, {"zstd", 64 << 10, 60627}, {"lz4", 16 << 10, 60001}} {
		t.Run(fmt.Sprintf("%s/C%d/piece%d", tc.alg, tc.pcl, tc.piece), func(t *testing.T) {
			files := planFiles(noiseSize, tc.piece)
			build := func(dedupe bool, workers int) []byte {
				c := ddCompression(t, tc.alg, tc.pcl, true, dedupe)
				c.AllFragments, c.Workers = true, workers
				img := ddBuild(t, c, 4096, files)
				ddCheck(t, img, files)
				return img
			}
			plain := build(false, 0)
			deduped := build(true, 1)
			saved := len(plain) - len(deduped)
			t.Logf("%d bytes without dedupe, %d with: saves %d of %d", len(plain), len(deduped), saved, noiseSize)
			if saved < noiseSize*7/10 {
				t.Errorf("dedupe saves %d bytes, less than 70%% of %d", saved, noiseSize)
			}
			if again := build(true, 4); !bytes.Equal(again, deduped) {
				t.Error("1 and 4 workers give different images")
			}
		})
	}
}

// TestDedupePlanSkips: no plan for small packed clusters, for data that
// compresses well (cutting it would cost more than sharing saves), or
// for recurrences too close to need one.
func TestDedupePlanSkips(t *testing.T) {
	text := ddText(200<<10, 3)
	far := slices.Concat(text, ddNoise(3<<20, 4), text)
	noise := ddNoise(200<<10, 5)
	near := slices.Concat(noise, ddText(100<<10, 6), noise)
	farNoise := slices.Concat(noise, ddNoise(3<<20, 4), noise)
	for _, tc := range []struct {
		name string
		data []byte
		pcl  int
		want bool
	}{
		{"far noise", farNoise, 1 << 20, true},
		{"far noise, small clusters", farNoise, 3 * 4096, false},
		{"far text", far, 1 << 20, false},
		{"near noise", near, 1 << 20, false},
	} {
		cuts, err := planPackedCuts(bytes.NewReader(tc.data), int64(len(tc.data)), 4096, tc.pcl)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(cuts) > 0; got != tc.want {
			t.Errorf("%s: cuts %v, want a plan: %v", tc.name, cuts, tc.want)
		}
	}
}

// TestDedupePlanRunCuts checks where a recurrence's end is cut: rounded
// down to whole blocks from its start, then moved back by blocks until
// the data up to the next cut can take pclusters of its own.
func TestDedupePlanRunCuts(t *testing.T) {
	const bs = 4096
	got := runCuts([]chunkRun{
		{from: 10000, at: 1 << 20, length: 65536},              // the next run starts 3 bytes after its end
		{from: 10000 + 65536, at: 1<<20 + 65539, length: 9000}, // far from anything after it
	}, bs)
	// The first end: 1<<20+65536 is 3 bytes before the next cut. One
	// block back, 4099 bytes with 1<<20+61440 at offset 0 of its block:
	// a partial raw block of 3 bytes would share a logical cluster with
	// the next cut. Two blocks back, 8195 bytes, fit (3 blocks).
	want := []int64{10000, 10000 + 65536, 1 << 20, 1<<20 + 65536 - 2*bs, 1<<20 + 65539, 1<<20 + 65539 + 2*bs}
	if !slices.Equal(got, want) {
		t.Errorf("cuts %v, want %v", got, want)
	}
	for _, tc := range []struct {
		e, n int64
		want bool
	}{
		{0, 4096, true}, {0, 4099, false}, {4095, 4099 + 4095, true}, {0, 8195, true}, {100, 100 + 4095, false},
	} {
		if got := gapFits(tc.e, tc.n, bs); got != tc.want {
			t.Errorf("gapFits(%d, %d) = %v, want %v", tc.e, tc.n, got, tc.want)
		}
	}
}

// TestRawTo checks that data stored to end at a cut takes pclusters that
// each start in a logical cluster of their own, with room for the next
// one at the cut, and decode to the data.
func TestRawTo(t *testing.T) {
	const bs = 4096
	for _, alg := range []string{"lz4", "lzma", "zstd", "deflate"} {
		c := ddCompression(t, alg, 64<<10, false, false)
		coder, err := newZcoder(c, 64<<10)
		if err != nil {
			t.Fatal(err)
		}
		z := &zworker{files: coder, conf: c, bs: bs, bufs: &bufPool{}}
		for _, at := range []int{0, 100, 2051, 4093, 4095} {
			for _, n := range []int{3, 4096, 4099, 8195, 12290, 61443, 65536} {
				b := ddNoise(n, uint64(at+n))
				var r zresult
				got, err := z.rawTo(&r, coder, b, at)
				if err != nil {
					t.Fatal(err)
				}
				if got == 0 {
					if f := n % bs; f == 0 || at%bs+f >= bs || n >= 2*bs+f {
						t.Errorf("%s at %d, %d bytes: not stored, though it fits", alg, at, n)
					}
					continue
				}
				pos, off := at, 0
				var out []byte
				for i, p := range r.pclusters {
					end := pos + int(p.length)
					need := pos/bs + 1
					if !p.raw && p.blocks > 1 {
						need++
					}
					if end/bs < need {
						t.Fatalf("%s at %d, %d bytes: pcluster %d [%d,%d) of %d blocks does not reach logical cluster %d", alg, at, n, i, pos, end, p.blocks, need)
					}
					blk := r.out[off : off+int(p.blocks)*bs]
					if p.raw {
						out = append(out, blk[:p.length]...)
					} else {
						d, err := decodeCluster(c, 64<<10, blk, int(p.length))
						if err != nil {
							t.Fatalf("%s at %d, %d bytes: pcluster %d: %v", alg, at, n, i, err)
						}
						out = append(out, d...)
					}
					pos, off = end, off+len(blk)
				}
				if !bytes.Equal(out, b) {
					t.Errorf("%s at %d, %d bytes: pclusters decode to other data", alg, at, n)
				}
			}
		}
	}
}

// decodeCluster decodes a compressed pcluster's blocks, zero padding
// first, into n bytes.
func decodeCluster(c *Compression, pcl int, blk []byte, n int) ([]byte, error) {
	alg := algorithms[c.Algorithm].id
	f := &FS{}
	f.sb.FeatureIncompat = FeatureIncompatZeroPadding
	f.zcfg.lzmaDictSize = uint32(lzmaDictSize(pcl))
	k := 0
	for k < len(blk) && blk[k] == 0 {
		k++
	}
	dst := make([]byte, n)
	return dst, f.decompress(alg, dst, blk[k:], false)
}
