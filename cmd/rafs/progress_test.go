package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestProgressSeeks checks that the progress bar keeps a file source
// seekable (a tar index skips file data by seeking) and counts what a
// seek skips, and that it refuses to seek a stream.
func TestProgressSeeks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 10000), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := newProgress(io.Discard, f, 10000)
	defer p.stop()
	buf := make([]byte, 100)
	if _, err := io.ReadFull(p, buf); err != nil {
		t.Fatal(err)
	}
	pos, err := p.Seek(4000, io.SeekCurrent)
	if err != nil || pos != 4100 {
		t.Fatalf("Seek = %d, %v; want 4100", pos, err)
	}
	if got := p.n.Load(); got != 4100 {
		t.Errorf("counted %d bytes, want 4100", got)
	}

	s := newProgress(io.Discard, bytes.NewBufferString("stream"), 0)
	defer s.stop()
	if _, err := s.Seek(0, io.SeekCurrent); err == nil {
		t.Error("Seek of a stream through the bar did not fail")
	}
}

// TestIsTTYNotDevNull checks that /dev/null, a character device, is not
// taken for a terminal (no progress bar, no summary line drawn to it).
func TestIsTTYNotDevNull(t *testing.T) {
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTTY(f) {
		t.Error("isTTY(/dev/null) = true")
	}
}

// TestStdinSourceSeeks checks that standard input redirected from a file
// stays seekable as a source (a tar index then skips file data), that
// closing the source leaves standard input open, and that the index made
// from it is the index made from the file's path.
func TestStdinSourceSeeks(t *testing.T) {
	dir := t.TempDir()
	tarPath, _ := sampleTar(t, dir)
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stdin := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = stdin }()

	src, size, err := openSource("-")
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	if size != fi.Size() {
		t.Errorf("size %d, want %d", size, fi.Size())
	}
	s, ok := src.(io.Seeker)
	if !ok {
		t.Fatal("standard input from a file is not an io.Seeker")
	}
	if pos, err := s.Seek(0, io.SeekCurrent); err != nil || pos != 0 {
		t.Fatalf("Seek = %d, %v", pos, err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Stat(); err != nil {
		t.Fatalf("closing the source closed standard input: %v", err)
	}

	fromStdin, fromPath := filepath.Join(dir, "stdin.erofs"), filepath.Join(dir, "path.erofs")
	if code := run([]string{"build", "-q", "--tar-index", "-o", fromStdin, "-"}); code != 0 {
		t.Fatalf("--tar-index from standard input: exit code %d", code)
	}
	if code := run([]string{"build", "-q", "--tar-index", "-o", fromPath, tarPath}); code != 0 {
		t.Fatalf("--tar-index: exit code %d", code)
	}
	a, _ := os.ReadFile(fromStdin)
	b, _ := os.ReadFile(fromPath)
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Errorf("index from standard input (%d bytes) differs from the index of the path (%d bytes)", len(a), len(b))
	}
}
