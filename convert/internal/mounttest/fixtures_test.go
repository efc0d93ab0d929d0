//go:build linux

package mounttest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// The fixtures in testdata are two small layers (lower and upper, the
// upper with whiteouts and an opaque directory) and EROFS images of them
// built by the reference mkfs.erofs. They let these tests mount real images
// without a converter. Regenerate them with
//
//	go test ./convert/internal/mounttest -run TestFixtures -mkfs=/path/to/mkfs.erofs
var mkfsFlag = flag.String("mkfs", "", "regenerate testdata with this mkfs.erofs binary")

const (
	lowerTar        = "testdata/lower.tar.gz"
	upperTar        = "testdata/upper.tar.gz"
	lowerImage      = "testdata/lower.erofs.gz"       // mkfs.erofs --tar=f --aufs
	upperImage      = "testdata/upper.erofs.gz"       // mkfs.erofs --tar=f --aufs
	lowerIndexImage = "testdata/lower-index.erofs.gz" // mkfs.erofs --tar=i --aufs; device 1 is lower.tar
)

var fixtureTime = time.Unix(1700000000, 0)

type fixtureEntry struct {
	typ      byte
	name     string
	data     string
	linkname string
	mode     int64
}

func buildTar(t testing.TB, entries []fixtureEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Typeflag: e.typ, Name: e.name, Linkname: e.linkname, Mode: e.mode,
			Size: int64(len(e.data)), ModTime: fixtureTime, Format: tar.FormatPAX}
		if h.Mode == 0 {
			h.Mode = 0o644
			if e.typ == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func lowerLayer(t testing.TB) []byte {
	return buildTar(t, []fixtureEntry{
		{typ: tar.TypeDir, name: "./"},
		{typ: tar.TypeDir, name: "etc/"},
		{typ: tar.TypeReg, name: "etc/passwd", data: "root:x:0:0::/root:/bin/sh\n"},
		{typ: tar.TypeReg, name: "etc/hosts", data: "127.0.0.1 localhost\n"},
		{typ: tar.TypeDir, name: "opq/"},
		{typ: tar.TypeReg, name: "opq/old1", data: "old1"},
		{typ: tar.TypeDir, name: "opq/sub/"},
		{typ: tar.TypeReg, name: "opq/sub/old2", data: "old2"},
		{typ: tar.TypeDir, name: "merge/"},
		{typ: tar.TypeReg, name: "merge/lower-only", data: "lower only"},
		{typ: tar.TypeReg, name: "merge/both", data: "lower version"},
		{typ: tar.TypeReg, name: "gone-file", data: "gone"},
		{typ: tar.TypeDir, name: "gone-dir/"},
		{typ: tar.TypeReg, name: "gone-dir/x", data: "x"},
		{typ: tar.TypeReg, name: "replaced-by-dir", data: "file"},
		{typ: tar.TypeDir, name: "replaced-by-file/"},
		{typ: tar.TypeReg, name: "replaced-by-file/child", data: "child"},
		{typ: tar.TypeReg, name: "hl1", data: "hard", mode: 0o600},
		{typ: tar.TypeLink, name: "hl2", linkname: "hl1"},
		{typ: tar.TypeLink, name: "hl3", linkname: "hl1"},
		{typ: tar.TypeSymlink, name: "link", linkname: "etc/passwd", mode: 0o777},
		{typ: tar.TypeReg, name: "big", data: string(bytes.Repeat([]byte("0123456789abcdef"), 1000))},
	})
}

func upperLayer(t testing.TB) []byte {
	return buildTar(t, []fixtureEntry{
		{typ: tar.TypeDir, name: "./", mode: 0o751},
		{typ: tar.TypeDir, name: "opq/"},
		{typ: tar.TypeReg, name: "opq/.wh..wh..opq"},
		{typ: tar.TypeReg, name: "opq/new", data: "new"},
		{typ: tar.TypeDir, name: "merge/", mode: 0o700},
		{typ: tar.TypeReg, name: "merge/both", data: "upper version"},
		{typ: tar.TypeReg, name: "merge/upper-only", data: "upper only"},
		{typ: tar.TypeReg, name: "merge/.wh.nonexistent"},
		{typ: tar.TypeReg, name: ".wh.gone-file"},
		{typ: tar.TypeReg, name: ".wh.gone-dir"},
		{typ: tar.TypeDir, name: "replaced-by-dir/"},
		{typ: tar.TypeReg, name: "replaced-by-dir/child", data: "child"},
		{typ: tar.TypeReg, name: "replaced-by-file", data: "now a file"},
		{typ: tar.TypeDir, name: "etc/"},
		{typ: tar.TypeReg, name: "etc/hosts", data: "127.0.0.1 localhost upper\n"},
		{typ: tar.TypeReg, name: ".wh.hl2"},
	})
}

// TestFixtures checks that the committed layers are the ones the
// definitions above make, so the images built from them by mkfs.erofs
// still match; with -mkfs it rebuilds testdata with that mkfs.erofs.
func TestFixtures(t *testing.T) {
	if *mkfsFlag == "" {
		for _, l := range []struct {
			name string
			data []byte
		}{{lowerTar, lowerLayer(t)}, {upperTar, upperLayer(t)}} {
			got, err := os.ReadFile(fixture(t, l.name))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, l.data) {
				t.Errorf("%s differs from its definition here: regenerate testdata with -mkfs", l.name)
			}
		}
		return
	}
	dir := t.TempDir()
	write := func(name string, b []byte) {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(b)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mkfs := func(out string, args ...string) {
		img := filepath.Join(dir, "img")
		cmd := exec.Command(*mkfsFlag, append(append(args, "-U", "00000000-0000-0000-0000-000000000001"), img, filepath.Join(dir, "src.tar"))...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", cmd, err, b)
		}
		b, err := os.ReadFile(img)
		if err != nil {
			t.Fatal(err)
		}
		write(out, b)
	}
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range []struct {
		tar, image, index string
		data              []byte
	}{
		{lowerTar, lowerImage, lowerIndexImage, lowerLayer(t)},
		{upperTar, upperImage, "", upperLayer(t)},
	} {
		write(l.tar, l.data)
		if err := os.WriteFile(filepath.Join(dir, "src.tar"), l.data, 0o644); err != nil {
			t.Fatal(err)
		}
		mkfs(l.image, "--tar=f", "--aufs")
		if l.index != "" {
			mkfs(l.index, "--tar=i", "--aufs")
		}
	}
}

// fixture decompresses a testdata file into the test's temporary directory
// and returns its path.
func fixture(t testing.TB, name string) string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(name[:len(name)-len(".gz")]))
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return out
}
