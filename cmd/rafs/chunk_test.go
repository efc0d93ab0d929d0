package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/erofs"
)

// sameFiles compares the regular files and symlinks of two file systems.
func sameFiles(t *testing.T, got, want *erofs.FS) {
	t.Helper()
	n := 0
	err := fs.WalkDir(want, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		wfi, _ := want.Lstat(p)
		gfi, err := got.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			return nil
		}
		if gfi.Mode() != wfi.Mode() || gfi.Size() != wfi.Size() {
			t.Errorf("%s: %v %d bytes, want %v %d", p, gfi.Mode(), gfi.Size(), wfi.Mode(), wfi.Size())
		}
		if wfi.Mode().IsRegular() {
			a, err1 := fs.ReadFile(got, p)
			b, err2 := fs.ReadFile(want, p)
			if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
				t.Errorf("%s: content differs (%v, %v)", p, err1, err2)
			}
		}
		return nil
	})
	if err != nil || n == 0 {
		t.Fatalf("walked %d entries: %v", n, err)
	}
}

func openImage(t *testing.T, image string, devices ...string) *erofs.FS {
	t.Helper()
	img, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	var opts []erofs.OpenOption
	for _, d := range devices {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, erofs.WithDevices(bytes.NewReader(b)))
	}
	f, err := erofs.Open(bytes.NewReader(img), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestBuildChunked builds the sample layer chunk-based, in the image and
// with --blobdev, from a tar.gz, standard input and a directory, and
// compares the files with a plain build's.
func TestBuildChunked(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.erofs")
	if code := run([]string{"build", "-q", "-o", plain, sample}); code != 0 {
		t.Fatalf("plain build: exit code %d", code)
	}
	want := openImage(t, plain)

	in := filepath.Join(dir, "in.erofs")
	if code := run([]string{"build", "-q", "--chunk-size", "4096", "-o", in, sample}); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	f := openImage(t, in)
	if sb := f.Superblock(); sb.FeatureIncompat&erofs.FeatureIncompatChunkedFile == 0 || len(sb.Devices) != 0 {
		t.Errorf("--chunk-size: features %#x, %d devices", sb.FeatureIncompat, len(sb.Devices))
	}
	if fi, _ := f.Lstat("etc/hostname"); fi.Sys().(*erofs.Stat).Layout != erofs.LayoutChunkBased {
		t.Errorf("--chunk-size: layout %d", fi.Sys().(*erofs.Stat).Layout)
	}
	sameFiles(t, f, want)

	// From standard input, to a blob device.
	img, blob := filepath.Join(dir, "blob.erofs"), filepath.Join(dir, "blob.dev")
	stdin := os.Stdin
	src, err := os.Open(sample)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	os.Stdin = src
	code := run([]string{"build", "-q", "--chunk-size", "0x100000", "--blobdev", blob, "-o", img, "-"})
	os.Stdin = stdin
	if code != 0 {
		t.Fatalf("--blobdev: exit code %d", code)
	}
	f = openImage(t, img, blob)
	devs := f.Superblock().Devices
	if fi, err := os.Stat(blob); err != nil || len(devs) != 1 || int64(devs[0].Blocks)*4096 != fi.Size() {
		t.Errorf("--blobdev: device table %+v for a blob of %v (%v)", devs, fi, err)
	}
	sameFiles(t, f, want)

	// From a directory.
	tree := t.TempDir()
	os.MkdirAll(filepath.Join(tree, "a"), 0o755)
	os.WriteFile(filepath.Join(tree, "a/f"), bytes.Repeat([]byte("chunk"), 3000), 0o644)
	os.WriteFile(filepath.Join(tree, "a/zeros"), make([]byte, 20000), 0o644)
	dimg, dblob := filepath.Join(dir, "dir.erofs"), filepath.Join(dir, "dir.dev")
	if code := run([]string{"build", "-q", "--chunk-size", "4096", "--blobdev", dblob, "-o", dimg, tree}); code != 0 {
		t.Fatalf("directory: exit code %d", code)
	}
	f = openImage(t, dimg, dblob)
	if b, err := fs.ReadFile(f, "a/f"); err != nil || !bytes.Equal(b, bytes.Repeat([]byte("chunk"), 3000)) {
		t.Errorf("directory: a/f: %v", err)
	}
	if b, err := fs.ReadFile(f, "a/zeros"); err != nil || len(b) != 20000 || bytes.Count(b, []byte{0}) != 20000 {
		t.Errorf("directory: a/zeros: %d bytes, %v", len(b), err)
	}
}

func TestBuildChunkedErrors(t *testing.T) {
	dir := t.TempDir()
	out, blob := filepath.Join(dir, "out.erofs"), filepath.Join(dir, "out.blob")
	for _, args := range [][]string{
		{"--blobdev", blob},
		{"--chunk-size", "3000"},
		{"--chunk-size", "2048"},
		{"-b", "512", "--chunk-size", "1099511627776"},
		{"--chunk-size", "0x"},
		{"--chunk-size", "4096", "-z", "lz4"},
		{"--chunk-size", "4096", "--blobdev", out},
	} {
		args = append(append([]string{"build", "-q"}, args...), "-o", out, sample)
		if code := run(args); code != 2 {
			t.Errorf("%s: exit code %d, want 2", strings.Join(args, " "), code)
		}
	}
	// A failed build leaves neither output.
	bad := filepath.Join(dir, "bad.tar")
	data, _ := os.ReadFile(sample)
	os.WriteFile(bad, data[:len(data)/2], 0o644)
	if code := run([]string{"build", "-q", "--chunk-size", "4096", "--blobdev", blob, "-o", out, bad}); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a failed build left files: %v", entries)
	}
}
