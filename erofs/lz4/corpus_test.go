package lz4

import (
	"fmt"
	"os"
	"testing"
	"time"
)

// TestCorpusTotals prints total compressed sizes for all files below
// LZ4_RATIO_DIR in the modes used to compare with liblz4: plain compression
// of fixed-size input chunks, and destsize compression of whole files into
// fixed-size output blocks. Every block is decoded and checked. Without
// LZ4_RATIO_DIR it runs on this repository's own files.
//
//	LZ4_RATIO_DIR=$HOME/.cache/rafs-bench/rootfs go test -run CorpusTotals -v ./erofs/lz4/
func TestCorpusTotals(t *testing.T) {
	dir := os.Getenv("LZ4_RATIO_DIR")
	if dir == "" {
		dir = "../.."
	}
	files := corpusFiles(t, dir, 0)
	modes := []struct {
		name  string
		level int
		ds    bool
	}{{"fast", 0, false}, {"dsfast", 0, true}, {"hc9", 9, false}, {"dshc9", 9, true}}
	for _, m := range modes {
		for _, budget := range []int{4096, 65536} {
			c := mustCompressor(t, m.level)
			type blk struct {
				data []byte
				src  []byte
			}
			var blks []blk
			var tin, tout int
			total := 0
			for _, f := range files {
				total += len(f)
			}
			arena := make([]byte, 0, 2*total+2*CompressBound(budget))
			lockThread()
			cpu0, _ := threadCPU()
			start := time.Now()
			for _, f := range files {
				tin += len(f)
				for off := 0; off < len(f); {
					var n, k int
					dst := arena[len(arena) : len(arena)+CompressBound(budget)]
					if m.ds {
						n, k = c.CompressDestSize(dst[:budget], f[off:])
					} else {
						k = min(budget, len(f)-off)
						n = c.Compress(dst, f[off:off+k])
					}
					if n == 0 || k == 0 {
						t.Fatalf("%s %d: failed at offset %d", m.name, budget, off)
					}
					blks = append(blks, blk{dst[:n], f[off : off+k]})
					arena = arena[:len(arena)+n]
					tout += n
					off += k
				}
			}
			wall := time.Since(start)
			cpu1, _ := threadCPU()
			unlockThread()
			secs := (cpu1 - cpu0).Seconds()
			if secs == 0 {
				secs = wall.Seconds()
			}
			out := make([]byte, 256*budget+64)
			for _, b := range blks {
				k := len(b.src)
				if got, err := Decompress(out[:k], b.data); err != nil || got != k || string(out[:k]) != string(b.src) {
					t.Fatalf("%s %d: bad block: %v", m.name, budget, err)
				}
			}
			blocks := len(blks)
			fmt.Printf("%s %d in=%d out=%d blocks=%d secs=%.2f MB/s=%.1f\n", m.name, budget, tin, tout, blocks,
				secs, float64(tin)/secs/1e6)
		}
	}
}
