package erofs

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// chunkedImage writes an image whose files point into dev, 4 KiB blocks:
// "a" at blocks 0-2 of dev in 8 KiB chunks, "b" a hole then block 1 of
// dev in 4 KiB chunks, "c" empty.
func chunkedImage(t *testing.T, dev []byte) ([]byte, map[string][]byte) {
	t.Helper()
	img := &ddImage{}
	w, err := NewWriter(img, &WriterOptions{Devices: []SuperblockDevice{{Tag: "layer", Blocks: uint64(len(dev) / 4096)}}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{
		"a": dev[:3*4096-100],
		"b": append(make([]byte, 4096), dev[4096:4096+50]...),
		"c": {},
	}
	add := func(name string, f ChunkedFile) {
		if err := w.AddChunks(&Entry{Path: name, Mode: ModeRegular | 0o644, Size: int64(len(want[name]))}, f); err != nil {
			t.Fatal(err)
		}
	}
	add("a", ChunkedFile{ChunkSize: 8192, Chunks: []Chunk{{Device: 1, Block: 0}, {Device: 1, Block: 2}}})
	add("b", ChunkedFile{ChunkSize: 4096, Chunks: []Chunk{{Hole: true}, {Device: 1, Block: 1}}})
	add("c", ChunkedFile{ChunkSize: 4096})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return img.b, want
}

func TestChunkedDevice(t *testing.T) {
	dev := ddNoise(4*4096, 3)
	img, want := chunkedImage(t, dev)
	f, err := Open(bytes.NewReader(img), WithDevices(bytes.NewReader(dev)))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range want {
		got, err := fs.ReadFile(f, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: content differs", name)
		}
	}
	if d := os.Getenv("RAFS_CHUNKED_OUT"); d != "" {
		os.WriteFile(filepath.Join(d, "img"), img, 0o644)
		os.WriteFile(filepath.Join(d, "dev"), dev, 0o644)
	}
}

func TestChunkedErrors(t *testing.T) {
	w, err := NewWriter(&ddImage{}, &WriterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []ChunkedFile{
		{ChunkSize: 1000, Chunks: []Chunk{{}}},
		{ChunkSize: 4096},
		{ChunkSize: 4096, Chunks: []Chunk{{Device: 1}}},
	} {
		if err := w.AddChunks(&Entry{Path: "x", Mode: ModeRegular | 0o644, Size: 10}, f); err == nil {
			t.Errorf("%+v: no error", f)
		}
	}
}
