package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/rafs"
)

// TestBuildTarfs builds the tarfs bootstrap of the sample layer from its
// .tar.gz (the uncompressed tar written with --blob) and from that plain
// tar (its own blob), merges it and unpacks both with the tar.
func TestBuildTarfs(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	tarPath, data := sampleTar(t, dir)
	id := fileSHA256(t, tarPath)

	line, _ := mustRun(t, "build", "--type", "nydus", "--tarfs", "-o", p("gz.boot"), "--blob", p("gz.tar"), sample)
	if line != id {
		t.Errorf("printed %q, want the tar's SHA-256 %s", line, id)
	}
	if got, _ := os.ReadFile(p("gz.tar")); !bytes.Equal(got, data) {
		t.Error("--blob is not the uncompressed tar")
	}
	mustRun(t, "build", "--type", "nydus", "--tarfs", "-o", p("tar.boot"), tarPath)
	a, _ := os.ReadFile(p("gz.boot"))
	b, _ := os.ReadFile(p("tar.boot"))
	if !bytes.Equal(a, b) {
		t.Error("the bootstraps of the .tar.gz and of the .tar differ")
	}
	boot := readBoot(t, p("tar.boot"))
	if boot.Flags&rafs.FlagTarfsMode == 0 || boot.BlockSize() != 512 || len(boot.Blobs) != 1 || boot.Blobs[0].ID != id {
		t.Errorf("flags %#x, block size %d, blobs %+v", boot.Flags, boot.BlockSize(), boot.Blobs)
	}
	if boot.Lookup("var/cache/.wh.apt") == nil {
		t.Error("the layer bootstrap lost its whiteout")
	}

	// --blob-id names the blob (nydus-snapshotter passes the layer
	// digest); unpack then finds the tar by its name.
	other := strings.Repeat("0123456789abcdef", 4)
	mustRun(t, "build", "--type", "nydus", "--tarfs", "--blob-id", other, "--chunk-size", "0x10000", "-o", p("id.boot"), tarPath)
	if b := readBoot(t, p("id.boot")); b.Blobs[0].ID != other || b.ChunkSize != 0x10000 {
		t.Errorf("--blob-id, --chunk-size: blob %s, chunk size %#x", b.Blobs[0].ID, b.ChunkSize)
	}
	os.MkdirAll(p("cache"), 0o755)
	os.WriteFile(filepath.Join(dir, "cache", other), data, 0o644)
	if code := run([]string{"unpack", "-q", "-o", p("id.tar"), "--bootstrap", p("id.boot"), "--blob-dir", p("cache")}); code != 0 {
		t.Fatalf("unpack by name: exit code %d", code)
	}

	// Merge applies the whiteout and keeps the tar as the device.
	out, _ := mustRun(t, "merge", "-o", p("m.boot"), p("tar.boot"))
	if out != id {
		t.Errorf("merge printed %q, want the device %s", out, id)
	}
	merged := readBoot(t, p("m.boot"))
	if merged.Flags&rafs.FlagTarfsMode == 0 || merged.Lookup("var/cache/.wh.apt") != nil {
		t.Errorf("merged: flags %#x, whiteout kept: %v", merged.Flags, merged.Lookup("var/cache/.wh.apt") != nil)
	}
	for _, c := range []struct{ boot, out string }{{"tar.boot", "l.tar"}, {"m.boot", "m.tar"}, {"id.boot", "id.tar"}} {
		if c.boot != "id.boot" {
			if code := run([]string{"unpack", "-q", "-o", p(c.out), "--bootstrap", p(c.boot), "--blob", tarPath}); code != 0 {
				t.Fatalf("unpack %s: exit code %d", c.boot, code)
			}
		}
		files := tarFiles(t, p(c.out))
		if files["etc/hostname"] != "rafs-sample\n" || len(files["usr/lib/libsample.so.1"]) != 20000 {
			t.Errorf("unpacked %s: hostname %q, libsample %d bytes", c.boot, files["etc/hostname"], len(files["usr/lib/libsample.so.1"]))
		}
	}
	// A Nydus layer does not merge with a tarfs one.
	mustRun(t, "build", "--type", "nydus", "-o", p("n.blob"), sample)
	if code := run([]string{"merge", "-q", "-o", p("x.boot"), p("tar.boot"), p("n.blob")}); code != 1 {
		t.Errorf("merge of a tarfs and a Nydus layer: exit code %d, want 1", code)
	}
}

// TestBuildTarfsErrors checks the usage errors of --tarfs and that a
// failed build leaves no file.
func TestBuildTarfsErrors(t *testing.T) {
	dir := t.TempDir()
	tarPath, _ := sampleTar(t, dir)
	out := filepath.Join(dir, "out")
	for _, args := range [][]string{
		{"--bootstrap", out + ".boot"},
		{"--compressor", "zstd"},
		{"--digester", "blake3"},
		{"--chunk-dict", tarPath},
		{"--workers", "2"},
		{"--blob-id", "abc"},
		{"--blob", out},
		{"--chunk-size", "0x800"},
	} {
		args = append(append([]string{"build", "--type", "nydus", "--tarfs", "-q", "-o", out}, args...), tarPath)
		if code := run(args); code != 2 {
			t.Errorf("%s: exit code %d, want 2", strings.Join(args, " "), code)
		}
	}
	if code := run([]string{"build", "--type", "nydus", "--tarfs", "-q", "-o", out, "-"}); code != 2 {
		t.Errorf("standard input without --blob: exit code %d, want 2", code)
	}
	if code := run([]string{"build", "--type", "nydus", "-q", "--blob", out + ".tar", "-o", out, tarPath}); code != 2 {
		t.Errorf("--blob without --tarfs: exit code %d, want 2", code)
	}
	// Explicit values that are the tarfs ones are fine.
	if code := run([]string{"build", "--type", "nydus", "--tarfs", "-q", "--compressor", "none", "--digester", "sha256", "-o", out, tarPath}); code != 0 {
		t.Errorf("--compressor none --digester sha256: exit code %d", code)
	}
	os.Remove(out)
	// A compressed layer without --blob fails, and leaves nothing.
	if code := run([]string{"build", "--type", "nydus", "--tarfs", "-q", "-o", out, sample}); code != 1 {
		t.Errorf(".tar.gz without --blob: exit code %d, want 1", code)
	}
	// A tarfs bootstrap's blobs have no cache files.
	good := filepath.Join(t.TempDir(), "good.boot")
	mustRun(t, "build", "--type", "nydus", "--tarfs", "-o", good, tarPath)
	if code := run([]string{"unpack", "-q", "--cache-dir", filepath.Join(dir, "c"), "--bootstrap", good, "--blob", tarPath}); code != 1 {
		t.Errorf("unpack --cache-dir of a tarfs bootstrap: exit code %d, want 1", code)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("failed commands left files: %v", entries)
	}
}
