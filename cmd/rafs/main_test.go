package main

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
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

// readBoot reads a bootstrap file.
func readBoot(t *testing.T, path string) *rafs.Bootstrap {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := rafs.Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tarFiles lists a tar's entries, with the contents of regular files.
func tarFiles(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = string(b)
	}
}

func TestNydusBuildMergeUnpack(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	if code := run([]string{"build", "--type", "nydus", "-q", "-o", p("l.blob"), "--bootstrap", p("l.boot"), sample}); code != 0 {
		t.Fatalf("build: exit code %d", code)
	}
	id := fileSHA256(t, p("l.blob"))
	boot := readBoot(t, p("l.boot"))
	if len(boot.Blobs) != 1 || boot.Blobs[0].ID != id {
		t.Fatalf("bootstrap blob table %+v, want the blob's sha256 %s", boot.Blobs, id)
	}
	if boot.Lookup("var/cache/.wh.apt") == nil {
		t.Error("the layer bootstrap lost its whiteout")
	}
	// Flags after SOURCE and -type=nydus work too; the blob is the same.
	if code := run([]string{"build", "-type=nydus", sample, "-q", "-o", p("again.blob")}); code != 0 {
		t.Fatalf("build again: exit code %d", code)
	}
	if fileSHA256(t, p("again.blob")) != id {
		t.Error("two builds differ")
	}

	// Merging the blob or the bootstrap gives the same image bootstrap.
	if code := run([]string{"merge", "-q", "-o", p("m1.boot"), p("l.blob")}); code != 0 {
		t.Fatalf("merge: exit code %d", code)
	}
	if code := run([]string{"merge", "-q", "-o", p("m2.boot"), p("l.boot")}); code != 0 {
		t.Fatalf("merge: exit code %d", code)
	}
	m1, _ := os.ReadFile(p("m1.boot"))
	m2, _ := os.ReadFile(p("m2.boot"))
	if !bytes.Equal(m1, m2) {
		t.Error("merging the blob and merging its bootstrap differ")
	}
	merged := readBoot(t, p("m1.boot"))
	if merged.Lookup("var/cache/.wh.apt") != nil || merged.Lookup("var/cache") == nil || merged.Blobs[0].ID != id {
		t.Error("merge did not drop the whiteout or lost the blob")
	}

	// Unpack the layer from its blob alone, and the merged image from a
	// blob directory, with cache files.
	if code := run([]string{"unpack", "-q", "-o", p("l.tar"), p("l.blob")}); code != 0 {
		t.Fatalf("unpack: exit code %d", code)
	}
	files := tarFiles(t, p("l.tar"))
	if files["etc/hostname"] != "rafs-sample\n" || len(files["usr/lib/libsample.so.1"]) != 20000 {
		t.Errorf("unpacked layer: hostname %q, libsample %d bytes", files["etc/hostname"], len(files["usr/lib/libsample.so.1"]))
	}
	if _, ok := files["var/cache/.wh.apt"]; !ok {
		t.Error("unpacked layer lost its whiteout")
	}
	if code := run([]string{"unpack", "-o", p("m.tar"), "--bootstrap", p("m1.boot"), "--blob-dir", dir, "--cache-dir", p("cache")}); code != 0 {
		t.Fatalf("unpack merged: exit code %d", code)
	}
	files = tarFiles(t, p("m.tar"))
	if _, wh := files["var/cache/.wh.apt"]; files["etc/hostname"] != "rafs-sample\n" || wh {
		t.Errorf("unpacked image: hostname %q, whiteout kept: %v", files["etc/hostname"], wh)
	}
	fi, err := os.Stat(filepath.Join(dir, "cache", id+".blob.data"))
	if err != nil || uint64(fi.Size()) != merged.Blobs[0].UncompressedSize {
		t.Errorf("cache file: %v, want %d bytes", err, merged.Blobs[0].UncompressedSize)
	}

	// A layer built against the first as chunk dictionary stores nothing
	// and references the dictionary's blob.
	if code := run([]string{"build", "--type", "nydus", "-q", "--chunk-dict", p("l.blob"), "-o", p("d.blob"), "--bootstrap", p("d.boot"), sample}); code != 0 {
		t.Fatalf("build with a chunk dictionary: exit code %d", code)
	}
	if d := readBoot(t, p("d.boot")); len(d.Blobs) != 1 || d.Blobs[0].ID != id {
		t.Errorf("chunk dictionary layer: blob table %+v, want only the dictionary's blob", d.Blobs)
	}
	if code := run([]string{"unpack", "-q", "-o", p("d.tar"), "--bootstrap", p("d.blob"), "--blob", p("l.blob")}); code != 0 {
		t.Fatalf("unpack the chunk dictionary layer: exit code %d", code)
	}
	if files := tarFiles(t, p("d.tar")); files["usr/bin/ping"] == "" {
		t.Error("chunk dictionary layer: usr/bin/ping is empty")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestNydusBuildFlags(t *testing.T) {
	dir := t.TempDir()
	for _, cs := range []string{"0x10000", "65536"} {
		out, boot := filepath.Join(dir, "x.blob"), filepath.Join(dir, "x.boot")
		args := []string{"build", "--type", "nydus", "-q", "--compressor", "lz4_block", "--digester", "sha256", "--chunk-size", cs, "--workers", "3", "-o", out, "--bootstrap", boot, sample}
		if code := run(args); code != 0 {
			t.Fatalf("exit code %d", code)
		}
		b := readBoot(t, boot)
		if b.ChunkSize != 0x10000 || b.Blobs[0].Compressor != blob.CompressorLZ4Block || b.Blobs[0].Digester != blob.DigesterSHA256 ||
			b.Flags&(rafs.FlagCompressionLZ4|rafs.FlagHashSHA256) != rafs.FlagCompressionLZ4|rafs.FlagHashSHA256 {
			t.Errorf("chunk size %#x, blob %+v, flags %#x", b.ChunkSize, b.Blobs[0], b.Flags)
		}
	}
}

func TestNydusFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.tar.gz")
	data, _ := os.ReadFile(sample)
	os.WriteFile(bad, data[:len(data)/2], 0o644)
	out, boot := filepath.Join(dir, "out.blob"), filepath.Join(dir, "out.boot")
	if code := run([]string{"build", "--type", "nydus", "-q", "-o", out, "--bootstrap", boot, bad}); code != 1 {
		t.Fatalf("exit code %d, want 1", code)
	}
	if code := run([]string{"merge", "-q", "-o", boot, bad}); code != 1 {
		t.Errorf("merge of a bad layer: exit code %d, want 1", code)
	}
	// A blob the bootstrap needs is missing.
	good := filepath.Join(t.TempDir(), "good.blob")
	if code := run([]string{"build", "--type", "nydus", "-q", "-o", good, sample}); code != 0 {
		t.Fatal(code)
	}
	gb := filepath.Join(t.TempDir(), "good.boot")
	run([]string{"merge", "-q", "-o", gb, good})
	if code := run([]string{"unpack", "-q", "-o", filepath.Join(dir, "x.tar"), "--bootstrap", gb}); code != 1 {
		t.Errorf("unpack without the blob: exit code %d, want 1", code)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("failed commands left files: %v", entries)
	}
	for _, args := range [][]string{
		{"build", "--type", "nydus", sample},
		{"build", "--type", "nydus", "-o", out},
		{"build", "--type", "squashfs", "-o", out, sample},
		{"build", "--type"},
		{"build", "--type", "nydus", "--compressor", "gzip", "-o", out, sample},
		{"build", "--type", "nydus", "--digester", "md5", "-o", out, sample},
		{"build", "--type", "nydus", "--chunk-size", "0x1234", "-o", out, sample},
		{"build", "--type", "nydus", "--chunk-size", "32M", "-o", out, sample},
		{"merge", "-o", out},
		{"merge", good},
		{"unpack", good},
		{"unpack", "-o", out},
		{"unpack", "-o", out, good, good},
	} {
		if code := run(args); code != 2 {
			t.Errorf("%s: exit code %d, want 2", strings.Join(args, " "), code)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("usage errors left files: %v", entries)
	}
}
