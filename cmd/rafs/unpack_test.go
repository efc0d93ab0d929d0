package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/erofs"
)

// TestUnpackEROFSCommand: rafs unpack --type erofs writes the sample
// image's tree as a tar with the sample's files, and reads a
// multi-device image's data from its --device files.
func TestUnpackEROFSCommand(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "sample.erofs")
	mustRun(t, "build", "-q", "-o", img, sample)
	out := filepath.Join(dir, "out.tar")
	mustRun(t, "unpack", "--type", "erofs", "-o", out, img)
	names := tarNames(t, out)
	if len(names) < 3 {
		t.Errorf("unpacked %d entries: %v", len(names), names)
	}

	// A file whose only chunk is block 1 of an extra device.
	dev := bytes.Repeat([]byte("device data "), 1000)
	devPath := filepath.Join(dir, "dev")
	if err := os.WriteFile(devPath, dev, 0o644); err != nil {
		t.Fatal(err)
	}
	multi := filepath.Join(dir, "multi.erofs")
	f, err := os.Create(multi)
	if err != nil {
		t.Fatal(err)
	}
	w, err := erofs.NewWriter(f, &erofs.WriterOptions{Devices: []erofs.SuperblockDevice{{Tag: "dev", Blocks: 2}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddChunks(&erofs.Entry{Path: "f", Mode: erofs.ModeRegular | 0o644, Size: 100},
		erofs.ChunkedFile{ChunkSize: 4096, Chunks: []erofs.Chunk{{Device: 1, Block: 1}}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if code, _, stderr := rafsCmd(t, "unpack", "--type", "erofs", "-o", out, multi); code == 0 || !strings.Contains(stderr, "--device") {
		t.Errorf("without its device: exit %d, %q; want a failure naming --device", code, stderr)
	}
	mustRun(t, "unpack", "--type", "erofs", "-o", out, "--device", devPath, multi)
	r, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no f in the tar: %v", err)
		}
		if h.Name == "f" {
			data, _ := io.ReadAll(tr)
			if !bytes.Equal(data, dev[4096:4196]) {
				t.Errorf("f holds %q, want block 1 of the device", data)
			}
			break
		}
	}
}

func tarNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}
