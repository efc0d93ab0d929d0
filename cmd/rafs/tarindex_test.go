package main

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/erofs"
)

// sampleTar writes the sample layer uncompressed to dir and returns its
// path and bytes.
func sampleTar(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	f, err := os.Open(sample)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "sample.tar")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p, data
}

func TestBuildTarIndex(t *testing.T) {
	dir := t.TempDir()
	tarPath, data := sampleTar(t, dir)
	check := func(what string, fsys *erofs.FS) {
		t.Helper()
		if b, err := fs.ReadFile(fsys, "etc/hostname"); err != nil || string(b) != "rafs-sample\n" {
			t.Errorf("%s: etc/hostname = %q, %v", what, b, err)
		}
		if fi, err := fsys.Lstat("etc/hostname"); err != nil || fi.Sys().(*erofs.Stat).Layout != erofs.LayoutChunkBased {
			t.Errorf("%s: etc/hostname not chunk-based: %v", what, err)
		}
		if sb := fsys.Superblock(); sb.BlockSize != 512 || len(sb.Devices) != 1 {
			t.Errorf("%s: block size %d, %d devices", what, sb.BlockSize, len(sb.Devices))
		}
	}

	index := filepath.Join(dir, "index.erofs")
	if code := run([]string{"build", "-q", "--tar-index", "-o", index, tarPath}); code != 0 {
		t.Fatalf("--tar-index: exit code %d", code)
	}
	img, _ := os.ReadFile(index)
	fsys, err := erofs.Open(bytes.NewReader(img), erofs.WithDevices(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	check("--tar-index", fsys)
	// -b 512 is the block size anyway.
	index2 := filepath.Join(dir, "index2.erofs")
	if code := run([]string{"build", "-q", "--tar-index", "-b", "512", "-o", index2, tarPath}); code != 0 {
		t.Fatalf("--tar-index -b 512: exit code %d", code)
	}
	if img2, _ := os.ReadFile(index2); !bytes.Equal(img, img2) {
		t.Error("-b 512 changed the image")
	}

	// The appended form, from the tar.gz: the index, then the tar.
	appended := filepath.Join(dir, "appended.erofs")
	if code := run([]string{"build", "-q", "--append-tar", "-o", appended, sample}); code != 0 {
		t.Fatalf("--append-tar: exit code %d", code)
	}
	whole, _ := os.ReadFile(appended)
	if !bytes.Equal(whole, append(bytes.Clone(img), data...)) {
		t.Errorf("--append-tar of the tar.gz (%d bytes) is not the index of the tar followed by the tar (%d+%d)", len(whole), len(img), len(data))
	}
	fsys, err = erofs.Open(bytes.NewReader(whole))
	if err != nil {
		t.Fatal(err)
	}
	check("--append-tar", fsys)
}

func TestBuildTarIndexErrors(t *testing.T) {
	dir := t.TempDir()
	tarPath, _ := sampleTar(t, dir)
	out := filepath.Join(dir, "out.erofs")
	for _, args := range [][]string{
		{"build", "--tar-index", "-b", "4096", "-o", out, tarPath},
		{"build", "--append-tar", "-b", "1024", "-o", out, tarPath},
		{"build", "--tar-index", "-z", "lz4", "-o", out, tarPath},
		{"build", "--tar-index", "-E", "noinline_data", "-o", out, tarPath},
	} {
		if code := run(args); code != 2 {
			t.Errorf("%s: exit code %d, want 2", strings.Join(args, " "), code)
		}
	}
	for _, args := range [][]string{
		{"build", "-q", "--tar-index", "-o", out, sample}, // compressed: the index needs the plain tar
		{"build", "-q", "--tar-index", "-o", out, dir},    // a directory
	} {
		if code := run(args); code != 1 {
			t.Errorf("%s: exit code %d, want 1", strings.Join(args, " "), code)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("failed builds left files: %v", entries)
	}
}

func TestConvertTarIndex(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	mustRun(t, "convert", "--type", "erofs", "--tar-index", "--progress", "none", sampleSrc, "oci:"+out+":ti")
	img := layoutImage(t, out, "ti")
	layers, err := img.Layers()
	if err != nil || len(layers) == 0 {
		t.Fatalf("%d layers, %v", len(layers), err)
	}
	for i, l := range layers {
		mt, _ := l.MediaType()
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		fsys, err := erofs.Open(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("layer %d (%s): %v", i, mt, err)
		}
		if sb := fsys.Superblock(); sb.BlockSize != 512 || len(sb.Devices) != 1 || sb.Devices[0].UniAddr*512 >= uint64(len(b)) {
			t.Errorf("layer %d: block size %d, devices %+v: want a tar index with its tar appended", i, sb.BlockSize, sb.Devices)
		}
	}
	for _, args := range [][]string{
		{"convert", "--tar-index", sampleSrc, "oci:" + out}, // Nydus
		{"convert", "--type", "erofs", "--tar-index", "-z", "lz4", sampleSrc, "oci:" + out},
	} {
		if code, _, _ := rafsCmd(t, args...); code != 2 {
			t.Errorf("%s: exit code %d, want 2", strings.Join(args, " "), code)
		}
	}
}
