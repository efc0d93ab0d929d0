package erofs_test

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/erofs"
)

// heapPerEntry makes a Writer, calls add to add entries to it and returns
// the live heap the Writer then holds, per entry, and the bytes Close
// allocates, per entry. The Writer writes to a sink that keeps nothing.
func heapPerEntry(t testing.TB, opts *erofs.WriterOptions, add func(*erofs.Writer) int) (held, closing float64) {
	t.Helper()
	var before, added, closed runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	w, err := erofs.NewWriter(&benchSink{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	entries := add(w)
	runtime.GC()
	runtime.ReadMemStats(&added)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&closed)
	runtime.KeepAlive(w)
	held = (float64(added.HeapAlloc) - float64(before.HeapAlloc)) / float64(entries)
	closing = float64(closed.TotalAlloc-added.TotalAlloc) / float64(entries)
	return held, closing
}

// addEmptyFiles adds files empty files spread over dirs directories, the
// way a layer of many small files looks to the Writer.
func addEmptyFiles(t testing.TB, files, dirs int) func(*erofs.Writer) int {
	return func(w *erofs.Writer) int {
		mtime := time.Unix(1700000000, 0)
		for d := 0; d < dirs; d++ {
			dir := fmt.Sprintf("d%04d", d)
			if err := w.Add(&erofs.Entry{Path: dir, Mode: erofs.ModeDir | 0o755, ModTime: mtime}, nil); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < files/dirs; i++ {
				e := &erofs.Entry{Path: fmt.Sprintf("%s/f%07d", dir, i), Mode: erofs.ModeRegular | 0o644, ModTime: mtime}
				if err := w.Add(e, nil); err != nil {
					t.Fatal(err)
				}
			}
		}
		return files + dirs
	}
}

// addLongPaths adds files and symlinks in a directory 1000 levels deep.
// Every entry's path (2 KB) is a string of its own, and its xattr value
// and symlink target are substrings of a larger string, as archive/tar
// returns them from a PAX header; none of it may stay in memory.
func addLongPaths(t testing.TB, entries int) func(*erofs.Writer) int {
	return func(w *erofs.Writer) int {
		dir := strings.Repeat("d/", 1000)
		for i := 0; i < entries; i++ {
			pax := fmt.Sprintf("%s%08d %s", dir, i, strings.Repeat("v", 1000))
			e := &erofs.Entry{Path: pax[:len(dir)+8], Mode: erofs.ModeRegular | 0o644,
				Xattrs: map[string]string{"user.v": pax[len(pax)-10:]}}
			if i%2 == 1 {
				e.Mode, e.Linkname, e.Xattrs = erofs.ModeSymlink|0o777, pax[len(pax)-20:], nil
			}
			if err := w.Add(e, nil); err != nil {
				t.Fatal(err)
			}
		}
		return entries + 1000
	}
}

// TestWriterMemoryPerEntry checks that the Writer's memory grows with the
// entries and their names only, not with their paths: a compact tree of
// about 95 bytes for an empty file (it used to take 390) and no copy of a
// path, a PAX header or a larger string a value came from.
func TestWriterMemoryPerEntry(t *testing.T) {
	for _, c := range []struct {
		name  string
		add   func(*erofs.Writer) int
		limit float64
	}{
		{"200k-empty-files", addEmptyFiles(t, 200000, 200), 200},
		{"deep-paths", addLongPaths(t, 5000), 300},
	} {
		t.Run(c.name, func(t *testing.T) {
			held, closing := heapPerEntry(t, nil, c.add)
			t.Logf("%.1f bytes per entry held after Add, %.1f allocated by Close", held, closing)
			if held > c.limit {
				t.Errorf("the Writer holds %.1f bytes per entry, want at most %.0f", held, c.limit)
			}
		})
	}
}

// heapProbe is an io.WriterAt that keeps nothing and, at the first write
// that reaches past offset at, records the live heap.
type heapProbe struct {
	at   int64
	heap uint64
	done bool
}

func (p *heapProbe) WriteAt(b []byte, off int64) (int, error) {
	if !p.done && off+int64(len(b)) > p.at {
		p.done = true
		runtime.GC()
		runtime.GC() // the second one empties the sync.Pools of recycled buffers
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		p.heap = m.HeapAlloc
	}
	return len(b), nil
}

// TestCompressedMemoryPerData checks that what a compressed file leaves
// for Close (its extents, one per 512-byte block of incompressible data
// here) waits in the spool, not in memory: the live heap when the
// metadata is written must not grow with the data.
func TestCompressedMemoryPerData(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 96 MiB")
	}
	const size = 96 << 20
	c, err := erofs.DefaultCompression("lz4")
	if err != nil {
		t.Fatal(err)
	}
	c.Workers = 1
	probe := &heapProbe{at: size + 4096} // past the data, in the metadata
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	w, err := erofs.NewWriter(probe, &erofs.WriterOptions{BlockSize: 512, Compression: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Add(&erofs.Entry{Path: "noise", Mode: erofs.ModeRegular | 0o644, Size: size}, io.LimitReader(newBenchPattern(), size)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !probe.done {
		t.Fatal("nothing was written past the data")
	}
	held := int64(probe.heap) - int64(before.HeapAlloc)
	t.Logf("%.2f MiB held when the metadata is written, for %d MiB of data in %d blocks", float64(held)/(1<<20), size>>20, size/512)
	if held > 3<<19 {
		t.Errorf("%.2f MiB held when the metadata is written, want at most 1.5", float64(held)/(1<<20))
	}
}
