package blob

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/rafs-dev/rafs/chunker"
)

// benchTar is a real Debian base layer, made by testdata/debian-layer.sh
// in rafs-bench under the user's cache directory.
var benchTar = debianLayerFile("debian-minbase.tar")

// debianLayerFile names a file testdata/debian-layer.sh makes.
func debianLayerFile(name string) string {
	dir, _ := os.UserCacheDir()
	return filepath.Join(dir, "rafs-bench", name)
}

var benchData = sync.OnceValues(func() ([][]byte, error) {
	f, err := os.Open(benchTar)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Chunk every regular file at 1 MiB, as the RAFS builder does.
	var chunks [][]byte
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return chunks, nil
		}
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg || h.Size == 0 {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, err
		}
		for len(b) > 0 {
			n := min(len(b), DefaultChunkSize)
			chunks = append(chunks, b[:n:n])
			b = b[n:]
		}
	}
})

// loadBench returns the Debian layer's file chunks, skipping if absent.
func loadBench(b *testing.B) ([][]byte, int64) {
	chunks, err := benchData()
	if errors.Is(err, os.ErrNotExist) {
		b.Skipf("%s not available", benchTar)
	}
	if err != nil {
		b.Fatal(err)
	}
	var total int64
	for _, c := range chunks {
		total += int64(len(c))
	}
	return chunks, total
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// BenchmarkWriterDebian measures the chunk pipeline (hash, CRC, compress,
// dedupe, write, blob sha256) on the file data of a Debian base layer,
// with 1 MiB chunks. MB/s is over the uncompressed file data; "ratio" is
// stored chunk bytes / file bytes. Target: well under 1 s of wall time
// for the ~211 MB layer on 2 cores.
func BenchmarkWriterDebian(b *testing.B) {
	chunks, total := loadBench(b)
	for _, bc := range []struct {
		name  string
		comp  Compressor
		level int
	}{
		{"zstd-fastest", CompressorZstd, 1},
		{"zstd-default", CompressorZstd, 3},
		{"lz4", CompressorLZ4Block, 0},
		{"none", CompressorNone, 0},
	} {
		for _, workers := range []int{1, runtime.GOMAXPROCS(0)} {
			b.Run(fmt.Sprintf("%s/workers=%d", bc.name, workers), func(b *testing.B) {
				b.SetBytes(total)
				var info *Info
				cpu0 := cpuTime()
				for b.Loop() {
					w, err := NewWriter(&countWriter{}, &WriterOptions{Compressor: bc.comp, Uncompressed: bc.comp == CompressorNone, Level: bc.level, Workers: workers})
					if err != nil {
						b.Fatal(err)
					}
					for _, c := range chunks {
						if _, err := w.Add(c); err != nil {
							b.Fatal(err)
						}
					}
					if info, err = w.Finish(nil); err != nil {
						b.Fatal(err)
					}
				}
				// CPU time is less disturbed than wall time by other load.
				b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
				b.ReportMetric(float64(info.DataSize)/float64(total), "ratio")
				b.ReportMetric(float64(info.ChunkCount), "chunks")
			})
		}
	}
}

// BenchmarkReadChunks measures decoding and verifying every chunk of a
// zstd/blake3 blob of the Debian layer.
func BenchmarkReadChunks(b *testing.B) {
	chunks, total := loadBench(b)
	var out bytes.Buffer
	w, err := NewWriter(&out, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range chunks {
		if _, err := w.Add(c); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := w.Finish(nil); err != nil {
		b.Fatal(err)
	}
	r, err := Open(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		b.Fatal(err)
	}
	var uniq int64
	for _, c := range r.ChunkInfos() {
		uniq += int64(c.UncompressedSize)
	}
	b.SetBytes(uniq)
	_ = total
	var buf []byte
	for b.Loop() {
		for i := range r.ChunkCount() {
			if buf, err = r.ReadChunk(i, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchTarGz is the same layer gzip-compressed (93 MB).
var benchTarGz = debianLayerFile("debian-minbase.tar.gz")

// BenchmarkConvertDebianTarGz measures the blob stage inside a whole
// layer conversion: gunzip (klauspost) → tar parsing → 1 MiB fixed
// chunking → Writer (zstd + blake3). "gunzip-only" is the baseline the
// conversion is measured against (target: conversion ≤ 1.5× of it).
func BenchmarkConvertDebianTarGz(b *testing.B) {
	if _, err := os.Stat(benchTarGz); err != nil {
		b.Skipf("%s not available", benchTarGz)
	}
	raw, err := os.ReadFile(benchTarGz)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("gunzip-only", func(b *testing.B) {
		b.SetBytes(int64(len(raw)))
		cpu0 := cpuTime()
		for b.Loop() {
			zr, err := gzip.NewReader(bytes.NewReader(raw))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(io.Discard, zr); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	})
	for _, level := range []int{1, 3} {
		b.Run(fmt.Sprintf("convert-zstd-level%d", level), func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			c, _ := chunker.NewFixed(nil, DefaultChunkSize)
			cpu0 := cpuTime()
			for b.Loop() {
				zr, err := gzip.NewReader(bytes.NewReader(raw))
				if err != nil {
					b.Fatal(err)
				}
				w, err := NewWriter(&countWriter{}, &WriterOptions{Compressor: CompressorZstd, Level: level})
				if err != nil {
					b.Fatal(err)
				}
				tr := tar.NewReader(zr)
				for {
					h, err := tr.Next()
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
					if h.Typeflag != tar.TypeReg {
						continue
					}
					c.Reset(tr)
					for {
						ch, err := c.Next()
						if err == io.EOF {
							break
						}
						if err != nil {
							b.Fatal(err)
						}
						if _, err := w.Add(ch.Data); err != nil {
							b.Fatal(err)
						}
					}
				}
				if _, err := w.Finish(func(*Info) ([]byte, error) { return make([]byte, 4096), nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// BenchmarkComponents measures each per-chunk step alone on one core over
// the Debian layer's 1 MiB file chunks (MB/s of file data; cpu-s/op is
// the CPU time, steadier than wall time on a loaded machine).
func BenchmarkComponents(b *testing.B) {
	chunks, total := loadBench(b)
	run := func(name string, fn func(c []byte)) {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(total)
			cpu0 := cpuTime()
			for b.Loop() {
				for _, c := range chunks {
					fn(c)
				}
			}
			b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
	run("blake3", func(c []byte) { DigesterBlake3.Sum(c) })
	run("sha256", func(c []byte) { sha256.Sum256(c) })
	run("crc32c", func(c []byte) { crc32c(c) })
	for _, l := range []int{1, 3} {
		cc, err := newChunkCompressor(CompressorZstd, l)
		if err != nil {
			b.Fatal(err)
		}
		var buf []byte
		run(fmt.Sprintf("zstd-level%d", l), func(c []byte) { cc.compress(&buf, c) })
	}
	lz, err := newChunkCompressor(CompressorLZ4Block, 0)
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	run("lz4", func(c []byte) { lz.compress(&buf, c) })
}
