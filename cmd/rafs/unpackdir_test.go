package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnpackDetectAndDir: rafs unpack tells an EROFS image from a Nydus
// blob without --type; --dir writes the tree into a new directory, refuses
// a non-empty one unless --force (which replaces it), and leaves nothing
// behind when the image is damaged.
func TestUnpackDetectAndDir(t *testing.T) {
	dir := t.TempDir()
	layer, text := checkLayer(t, dir)
	img := filepath.Join(dir, "l.erofs")
	mustRun(t, "build", "-q", "-z", "lz4", "-o", img, layer)
	nblob := filepath.Join(dir, "l.blob")
	mustRun(t, "build", "--type", "nydus", "-q", "-o", nblob, layer)

	for _, src := range []string{img, nblob} {
		tarOut := filepath.Join(dir, "out.tar")
		mustRun(t, "unpack", "-q", "-o", tarOut, src)
		if files := tarFiles(t, tarOut); files["a/text"] != string(text) || files["small"] != "hello" {
			t.Errorf("%s: tar without --type lacks the files", src)
		}
		out := filepath.Join(dir, "out-"+filepath.Base(src))
		mustRun(t, "unpack", "-q", "--dir", out, src)
		if b, err := os.ReadFile(filepath.Join(out, "a", "text")); err != nil || string(b) != string(text) {
			t.Errorf("%s: --dir: a/text: %v", src, err)
		}
		if code, _, stderr := rafsCmd(t, "unpack", "--dir", out, src); code != 2 || !strings.Contains(stderr, "--force") {
			t.Errorf("%s: into a non-empty directory: exit %d, %q", src, code, stderr)
		}
		if err := os.WriteFile(filepath.Join(out, "old"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		mustRun(t, "unpack", "-q", "--force", "--dir", out, src)
		if _, err := os.Lstat(filepath.Join(out, "old")); err == nil {
			t.Errorf("%s: --force kept the old tree", src)
		}
		if _, err := os.Stat(filepath.Join(out, "small")); err != nil {
			t.Errorf("%s: --force: %v", src, err)
		}
	}
	if code, _, stderr := rafsCmd(t, "unpack", "--type", "nydus", "-o", filepath.Join(dir, "x.tar"), img); code == 0 {
		t.Errorf("--type nydus on an EROFS image: exit 0, %q", stderr)
	}

	// A damaged image: nothing at DIR, no temporary directory left.
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.erofs")
	for i := len(b) - 8192; i < len(b)-4096; i++ {
		b[i] = 0xFF
	}
	if err := os.WriteFile(bad, b, 0o644); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := rafsCmd(t, "unpack", "--dir", filepath.Join(sub, "out"), bad); code != 1 {
		t.Errorf("damaged image: exit %d, %q", code, stderr)
	}
	if ents, _ := os.ReadDir(sub); len(ents) != 0 {
		t.Errorf("a failed unpack left %v", ents)
	}
}
