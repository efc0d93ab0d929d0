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
