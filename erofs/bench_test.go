package erofs_test

import (
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/erofs"
)

// benchSink is an io.WriterAt that drops what is written, so the writer
// benchmarks measure the writer and not the file system.
type benchSink struct{ size int64 }

func (s *benchSink) WriteAt(p []byte, off int64) (int, error) {
	s.size = max(s.size, off+int64(len(p)))
	return len(p), nil
}

// benchPattern is an endless reader of a fixed pattern; it costs one copy.
type benchPattern struct {
	pat []byte
	off int
}

func newBenchPattern() *benchPattern {
	p := make([]byte, 64<<10)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return &benchPattern{pat: p}
}

func (r *benchPattern) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.pat[r.off:])
		n += c
		r.off = (r.off + c) % len(r.pat)
	}
	return n, nil
}

// BenchmarkWriterSmallFiles writes 10,000 files of 100 to 8,000 bytes in
// 100 directories: the metadata-heavy case.
func BenchmarkWriterSmallFiles(b *testing.B) {
	const files, dirs = 10000, 100
	rng := rand.New(rand.NewPCG(5, 6))
	sizes := make([]int64, files)
	var total int64
	for i := range sizes {
		sizes[i] = 100 + rng.Int64N(7901)
		total += sizes[i]
	}
	names := make([]string, files)
	for i := range names {
		names[i] = fmt.Sprintf("usr/share/d%02d/file-%05d", i%dirs, i)
	}
	mtime := time.Unix(1700000000, 0)
	src := newBenchPattern()
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		w, err := erofs.NewWriter(&benchSink{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		for d := 0; d < dirs; d++ {
			e := &erofs.Entry{Path: fmt.Sprintf("usr/share/d%02d", d), Mode: erofs.ModeDir | 0o755, ModTime: mtime}
			if err := w.Add(e, nil); err != nil {
				b.Fatal(err)
			}
		}
		for i, name := range names {
			e := &erofs.Entry{Path: name, Mode: erofs.ModeRegular | 0o644, ModTime: mtime, Size: sizes[i]}
			if err := w.Add(e, src); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriterLargeFile streams one 256 MiB file: the data path alone.
func BenchmarkWriterLargeFile(b *testing.B) {
	const size = 256 << 20
	src := newBenchPattern()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		w, err := erofs.NewWriter(&benchSink{}, nil)
		if err != nil {
			b.Fatal(err)
		}
		e := &erofs.Entry{Path: "large", Mode: erofs.ModeRegular | 0o644, Size: size}
		if err := w.Add(e, io.LimitReader(src, size)); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriterEmptyFiles adds 100,000 empty files, in one directory
// and in 100: the tree alone, with no data to write.
func BenchmarkWriterEmptyFiles(b *testing.B) {
	for _, dirs := range []int{1, 100} {
		b.Run(fmt.Sprintf("dirs=%d", dirs), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				w, err := erofs.NewWriter(&benchSink{}, nil)
				if err != nil {
					b.Fatal(err)
				}
				addEmptyFiles(b, 100000, dirs)(w)
				if err := w.Close(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
