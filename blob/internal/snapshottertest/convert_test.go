package snapshottertest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/rafs"
)

// stackTars returns three layer tars: a base tree, then whiteouts, an
// opaque directory and replacements, then more of the same.
func stackTars(t *testing.T) [][]byte {
	t.Helper()
	mtime := time.Unix(1700000000, 0)
	build := func(add func(w *tar.Writer)) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		add(tw)
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	dir := func(w *tar.Writer, name string) {
		w.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: mtime})
	}
	file := func(w *tar.Writer, name string, data []byte) {
		w.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: mtime})
		w.Write(data)
	}
	return [][]byte{
		build(func(w *tar.Writer) {
			dir(w, "etc/")
			file(w, "etc/config", fileContent("text", 5000, 1))
			dir(w, "usr/")
			dir(w, "usr/lib/")
			file(w, "usr/lib/big", append(fileContent("text", 2<<20, 2), fileContent("random", 1<<20+17, 2)...))
			file(w, "usr/lib/small", fileContent("random", 100, 3))
			w.WriteHeader(&tar.Header{Typeflag: tar.TypeLink, Name: "usr/lib/big.link", Linkname: "usr/lib/big", ModTime: mtime})
			w.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "usr/bin", Linkname: "lib", ModTime: mtime})
			dir(w, "var/")
			file(w, "var/old", fileContent("zero", 70000, 4))
		}),
		build(func(w *tar.Writer) {
			file(w, "usr/lib/.wh.small", nil)
			dir(w, "var/")
			file(w, "var/.wh..wh..opq", nil)
			file(w, "var/new", fileContent("text", 9000, 5))
			file(w, "etc/config", fileContent("text", 6000, 6))
		}),
		build(func(w *tar.Writer) {
			file(w, ".wh.var", nil)
			file(w, "usr/lib/big", append(fileContent("random", 1<<20, 7), fileContent("text", 1<<20, 7)...))
			file(w, "usr/lib/empty", nil)
		}),
	}
}

// TestConvertedLayers runs nydus-snapshotter's UnpackEntry over blobs made
// by convert.TarToNydus: a three-layer stack and, when present, the Debian
// base layer. Every section must come back as our reader sees it, and the
// per-layer bootstraps must merge.
func TestConvertedLayers(t *testing.T) {
	type input struct {
		name string
		data []byte
	}
	var inputs []input
	for i, data := range stackTars(t) {
		inputs = append(inputs, input{fmt.Sprintf("stack%d", i+1), data})
	}
	debian := os.Getenv("RAFS_DEBIAN_LAYER")
	if debian == "" {
		dir, _ := os.UserCacheDir() // where testdata/debian-layer.sh puts it
		debian = filepath.Join(dir, "rafs-bench", "debian-minbase.tar.gz")
	}
	if data, err := os.ReadFile(debian); err == nil {
		inputs = append(inputs, input{"debian", data})
	} else {
		t.Logf("no Debian layer (%v); testing the stack only", err)
	}
	var stack []*rafs.Bootstrap
	for _, in := range inputs {
		t.Run(in.name, func(t *testing.T) {
			var out bytes.Buffer
			res, err := convert.TarToNydus(bytes.NewReader(in.data), &out, nil)
			if err != nil {
				t.Fatal(err)
			}
			b := out.Bytes()
			sum := sha256.Sum256(b)
			if id := hex.EncodeToString(sum[:]); id != res.Blob.ID {
				t.Fatalf("blob id %s, sha256 of the blob %s", res.Blob.ID, id)
			}
			r, err := blob.Open(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range r.TOC() {
				data, te := mustUnpack(t, b, e.Name)
				if te == nil {
					t.Fatalf("%s: not found through the TOC", e.Name)
				}
				compareTOCEntry(t, te, &e)
				want, err := r.Section(e.Name)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(data, want) {
					t.Errorf("%s: UnpackEntry gives %d bytes that differ from our %d", e.Name, len(data), len(want))
				}
			}
			boot, _ := mustUnpack(t, b, blob.SectionBootstrap)
			inline, err := r.Bootstrap()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(boot, inline) {
				t.Fatal("image.boot from UnpackEntry differs from the inline bootstrap")
			}
			lb, err := rafs.Read(bytes.NewReader(boot), int64(len(boot)))
			if err != nil {
				t.Fatal(err)
			}
			if len(lb.Blobs) > 0 && lb.Blobs[0].ChunkCount != uint32(r.ChunkCount()) {
				t.Errorf("bootstrap says %d chunks, blob has %d", lb.Blobs[0].ChunkCount, r.ChunkCount())
			}
			if in.name != "debian" {
				stack = append(stack, res.Bootstrap)
			}
		})
	}
	if len(stack) == 3 {
		m, err := convert.MergeNydus(stack, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Blobs) != 3 {
			t.Errorf("merged stack has %d blobs, want 3", len(m.Blobs))
		}
		for _, gone := range []string{"var", "usr/lib/small"} {
			if m.Lookup(gone) != nil {
				t.Errorf("%s survived its whiteout", gone)
			}
		}
	}
}
