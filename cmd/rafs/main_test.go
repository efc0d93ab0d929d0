package main

import (
	"bytes"
	"encoding/binary"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/erofs"
)

const sample = "../../testdata/sample-layer.tar.gz"

func TestBuildSample(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "sample.erofs")
	if code := run([]string{"build", "-o", out, sample}); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	img, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := erofs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := fs.ReadFile(fsys, "etc/hostname"); err != nil || string(b) != "rafs-sample\n" {
		t.Errorf("etc/hostname = %q, %v", b, err)
	}
	if fi, err := fsys.Lstat("var/cache/apt"); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Errorf("whiteout not converted: %v %v", fi, err)
	}
	// Flags after SOURCE work too, and the same input gives the same bytes.
	out2 := filepath.Join(dir, "again.erofs")
	if code := run([]string{"build", sample, "-o", out2}); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	img2, _ := os.ReadFile(out2)
	if !bytes.Equal(img, img2) {
		t.Error("two builds differ")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestBuildFlags(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "x.erofs")
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	args := []string{"build", "-q", "-b", "1024", "-U", "01234567-89ab-cdef-0123-456789abcdef", "-L", "label",
		"-whiteouts", "keep", "-inline-data=false", "-o", out, sample}
	if code := run(args); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	img, _ := os.ReadFile(out)
	sb := img[1024:]
	if sb[12] != 10 {
		t.Errorf("blkszbits %d, want 10", sb[12])
	}
	if got := binary.LittleEndian.Uint64(sb[0x18:]); got != 1700000000 {
		t.Errorf("epoch %d, want SOURCE_DATE_EPOCH", got)
	}
	if !bytes.Equal(sb[0x30:0x40], []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}) {
		t.Errorf("uuid %x", sb[0x30:0x40])
	}
	if !bytes.HasPrefix(sb[0x40:0x50], []byte("label")) {
		t.Errorf("label %q", sb[0x40:0x50])
	}
	fsys, err := erofs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := fsys.Lstat("var/cache/.wh.apt"); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("-whiteouts keep: %v %v", fi, err)
	}
	if fi, _ := fsys.Lstat("etc/hostname"); fi.Sys().(*erofs.Stat).Layout != erofs.LayoutFlatPlain {
		t.Errorf("-inline-data=false: layout %d", fi.Sys().(*erofs.Stat).Layout)
	}
}

func TestBuildFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.tar")
	data, _ := os.ReadFile(sample)
	os.WriteFile(bad, data[:len(data)/2], 0o644)
	out := filepath.Join(dir, "out.erofs")
	if code := run([]string{"build", "-o", out, bad}); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("a failed build left files: %v", entries)
	}
	for _, args := range [][]string{
		{"build", sample},
		{"build", "-o", out},
		{"build", "-b", "3000", "-o", out, sample},
		{"build", "-whiteouts", "maybe", "-o", out, sample},
		{"build", "-U", "xyz", "-o", out, sample},
		{"frobnicate"},
	} {
		if code := run(args); code != 2 {
			t.Errorf("%s: exit code %d, want 2", strings.Join(args, " "), code)
		}
	}
}

func TestBuildDirectory(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "a/b"), 0o755)
	os.WriteFile(filepath.Join(src, "a/b/f"), []byte("file"), 0o640)
	os.Symlink("a/b/f", filepath.Join(src, "l"))
	os.Link(filepath.Join(src, "a/b/f"), filepath.Join(src, "h"))
	out := filepath.Join(t.TempDir(), "dir.erofs")
	if code := run([]string{"build", "-q", "-o", out, src}); code != 0 {
		t.Fatalf("exit code %d", code)
	}
	img, _ := os.ReadFile(out)
	fsys, err := erofs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := fs.ReadFile(fsys, "l"); string(b) != "file" {
		t.Errorf("l -> %q", b)
	}
	fi, _ := fsys.Lstat("h")
	if fi == nil || fi.Sys().(*erofs.Stat).Nlink != 2 || fi.Mode().Perm() != 0o640 {
		t.Errorf("hard link: %v", fi)
	}
}
