package lz4

import (
	"math/rand/v2"
	"os"
	"sync"
	"testing"
)

// Benchmarks run on a sample of the files below LZ4_BENCH_DIR (every 8th
// regular file in walk order, up to 24 MiB: binaries, libraries, text),
// or on a synthetic mix of text, runs and random data if it is unset.
//
//	LZ4_BENCH_DIR=$HOME/.cache/rafs-bench/rootfs go test -run - -bench . ./erofs/lz4/

var benchData = sync.OnceValue(func() [][]byte {
	dir := os.Getenv("LZ4_BENCH_DIR")
	if dir == "" {
		r := rand.New(rand.NewPCG(11, 12))
		var files [][]byte
		for i := 0; i < 64; i++ {
			switch i % 4 {
			case 0, 1:
				files = append(files, textLike(r, 200000))
			case 2:
				b := textLike(r, 150000)
				copy(b[r.IntN(50000):], randBytes(r, 50000))
				files = append(files, b)
			default:
				b := make([]byte, 100000)
				copy(b[50000:], randBytes(r, 20000))
				files = append(files, b)
			}
		}
		return files
	}
	all := corpusFiles(&testing.T{}, dir, 0)
	var files [][]byte
	total := 0
	for i := 0; i < len(all) && total < 24<<20; i += 8 {
		files = append(files, all[i])
		total += len(all[i])
	}
	return files
})

func benchTotal(files [][]byte) int64 {
	var n int64
	for _, f := range files {
		n += int64(len(f))
	}
	return n
}

func benchChunks(b *testing.B, level, chunk int) {
	files := benchData()
	c := mustCompressor(b, level)
	dst := make([]byte, CompressBound(chunk))
	b.SetBytes(benchTotal(files))
	b.ReportAllocs()
	var out int64
	defer cpuMetric(b, benchTotal(files))()
	for b.Loop() {
		out = 0
		for _, f := range files {
			for off := 0; off < len(f); off += chunk {
				out += int64(c.Compress(dst, f[off:min(off+chunk, len(f))]))
			}
		}
	}
	b.ReportMetric(float64(out)/float64(benchTotal(files)), "ratio")
}

func benchDestSize(b *testing.B, level, budget int) {
	files := benchData()
	c := mustCompressor(b, level)
	dst := make([]byte, budget)
	b.SetBytes(benchTotal(files))
	b.ReportAllocs()
	var blocks int
	defer cpuMetric(b, benchTotal(files))()
	for b.Loop() {
		blocks = 0
		for _, f := range files {
			for off := 0; off < len(f); {
				_, k := c.CompressDestSize(dst, f[off:])
				off += k
				blocks++
			}
		}
	}
	b.ReportMetric(float64(blocks), "blocks")
}

func BenchmarkCompressFast4K(b *testing.B)  { benchChunks(b, 0, 4096) }
func BenchmarkCompressFast64K(b *testing.B) { benchChunks(b, 0, 65536) }
func BenchmarkCompressHC9_64K(b *testing.B) { benchChunks(b, 9, 65536) }
func BenchmarkDestSizeFast4K(b *testing.B)  { benchDestSize(b, 0, 4096) }
func BenchmarkDestSizeFast64K(b *testing.B) { benchDestSize(b, 0, 65536) }
func BenchmarkDestSizeHC9_4K(b *testing.B)  { benchDestSize(b, 9, 4096) }
func BenchmarkDestSizeHC9_64K(b *testing.B) { benchDestSize(b, 9, 65536) }
func BenchmarkDestSizeHC12_4K(b *testing.B) { benchDestSize(b, 12, 4096) }

func BenchmarkDecompress64K(b *testing.B) {
	files := benchData()
	c := mustCompressor(b, 9)
	var blocks [][]byte
	for _, f := range files {
		for off := 0; off < len(f); off += 65536 {
			dst := make([]byte, CompressBound(65536))
			n := c.Compress(dst, f[off:min(off+65536, len(f))])
			blocks = append(blocks, dst[:n])
		}
	}
	out := make([]byte, 65536)
	b.SetBytes(benchTotal(files))
	b.ReportAllocs()
	defer cpuMetric(b, benchTotal(files))()
	for b.Loop() {
		for _, blk := range blocks {
			if _, err := Decompress(out, blk); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// cpuMetric starts measuring the thread's CPU time; the returned function
// reports throughput per CPU second ("MB/cpu-s"), which unlike MB/s does not
// depend on other load on the machine.
func cpuMetric(b *testing.B, bytesPerOp int64) func() {
	lockThread()
	start, ok := threadCPU()
	return func() {
		end, _ := threadCPU()
		unlockThread()
		if ok && end > start && b.N > 0 {
			b.ReportMetric(float64(bytesPerOp)*float64(b.N)/(end-start).Seconds()/1e6, "MB/cpu-s")
		}
	}
}
