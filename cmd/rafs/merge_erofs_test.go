package main

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTar writes a layer tar of entries (name, content; a name ending in
// "/" is a directory) to path.
func writeTar(t *testing.T, path string, entries ...[2]string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e[0], Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e[1]))}
		if strings.HasSuffix(e[0], "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMergeEROFSCommand: rafs merge --type erofs merges noinline layers
// into an image whose tree (unpacked with the layers as devices) is the
// applied stack, prints one device tag per layer, and refuses a layer
// with inline tails.
func TestMergeEROFSCommand(t *testing.T) {
	dir := t.TempDir()
	big := strings.Repeat("0123456789", 1000)
	writeTar(t, filepath.Join(dir, "l1.tar"), [2]string{"etc/", ""}, [2]string{"etc/a", "lower a"},
		[2]string{"etc/b", big}, [2]string{"etc/gone", "gone"})
	writeTar(t, filepath.Join(dir, "l2.tar"), [2]string{"etc/", ""}, [2]string{"etc/a", "upper a"},
		[2]string{"etc/.wh.gone", ""})
	var layers []string
	for _, l := range []string{"l1", "l2"} {
		img := filepath.Join(dir, l+".erofs")
		mustRun(t, "build", "-q", "-inline-data=false", "-o", img, filepath.Join(dir, l+".tar"))
		layers = append(layers, img)
	}
	meta := filepath.Join(dir, "meta.erofs")
	code, stdout, stderr := rafsCmd(t, append([]string{"merge", "--type", "erofs", "-o", meta}, layers...)...)
	if code != 0 {
		t.Fatalf("merge: exit %d: %s", code, stderr)
	}
	if tags := strings.Fields(stdout); len(tags) != 2 || len(tags[0]) != 32 || tags[0] == tags[1] {
		t.Errorf("printed tags %q, want two layer UUIDs in hex", tags)
	}
	out := filepath.Join(dir, "out.tar")
	mustRun(t, "unpack", "--type", "erofs", "-q", "-o", out, "--device", layers[0], "--device", layers[1], meta)
	got := map[string]string{}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[strings.TrimPrefix(h.Name, "./")] = string(b)
	}
	for name, want := range map[string]string{"etc/a": "upper a", "etc/b": big} {
		if got[name] != want {
			t.Errorf("%s: %.20q, want %.20q", name, got[name], want)
		}
	}
	if _, ok := got["etc/gone"]; ok {
		t.Error("etc/gone: in the merged tree, want whited out")
	}

	inline := filepath.Join(dir, "inline.erofs")
	mustRun(t, "build", "-q", "-o", inline, filepath.Join(dir, "l2.tar"))
	if code, _, stderr := rafsCmd(t, "merge", "--type", "erofs", "-o", filepath.Join(dir, "x.erofs"), layers[0], inline); code != 1 || !strings.Contains(stderr, "inline.erofs") || !strings.Contains(stderr, "etc/a") {
		t.Errorf("inline layer: exit %d, %q; want 1 and an error naming the layer and the file", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.erofs")); !os.IsNotExist(err) {
		t.Errorf("failed merge left its output: %v", err)
	}
	if code, _, _ := rafsCmd(t, "merge", "--type", "erofs", layers[0]); code != 2 {
		t.Errorf("without -o: exit %d, want 2", code)
	}
}
