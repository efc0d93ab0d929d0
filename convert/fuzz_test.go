package convert_test

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
)

// FuzzTarToEROFS feeds arbitrary bytes to the converter: it must return an
// error or an image that reads back, never panic or hang. When the input
// is a valid tar, every regular file must read back with its content.
func FuzzTarToEROFS(f *testing.F) {
	f.Add(whiteoutLayer(f))
	f.Add(makeTar(f,
		tarEntry{hdr: tar.Header{Name: "a/b/c", Typeflag: tar.TypeReg, Mode: 0o644}, data: "data"},
		tarEntry{hdr: tar.Header{Name: "a/l", Typeflag: tar.TypeLink, Linkname: "a/b/c"}},
		tarEntry{hdr: tar.Header{Name: "a/s", Typeflag: tar.TypeSymlink, Linkname: "b"}},
		tarEntry{hdr: tar.Header{Name: "a", Typeflag: tar.TypeDir, Mode: 0o700, PAXRecords: map[string]string{"SCHILY.xattr.user.x": "y"}}},
	))
	for _, dir := range []string{"../testdata", "../testdata/nydus/tar"} {
		paths, _ := filepath.Glob(filepath.Join(dir, "*.tar*"))
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil && len(b) < 1<<20 {
				f.Add(b)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img := &memImage{}
		if _, err := convert.TarToEROFS(bytes.NewReader(data), img, nil); err != nil {
			return
		}
		fsys, err := erofs.Open(bytes.NewReader(img.b))
		if err != nil {
			t.Fatalf("image of an accepted tar does not open: %v", err)
		}
		err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				_, err = fs.ReadFile(fsys, p)
			}
			return err
		})
		if err != nil {
			t.Fatalf("image of an accepted tar does not read back: %v", err)
		}
		// Files the tar holds last under each name must read back intact.
		last := map[string][]byte{}
		tr := tar.NewReader(bytes.NewReader(data))
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			if _, renames := h.PAXRecords["path"]; renames && h.Typeflag == tar.TypeXGlobalHeader {
				return // a global path names every later entry, as GNU tar applies it
			}
			if h.Typeflag == tar.TypeReg {
				b, _ := io.ReadAll(tr)
				last[filepath.Clean(h.Name)] = b
			} else {
				delete(last, filepath.Clean(h.Name))
			}
		}
		for name, want := range last {
			if fi, err := fs.Stat(fsys, name); err != nil || !fi.Mode().IsRegular() {
				continue // replaced by a later entry of another kind
			}
			got, err := fs.ReadFile(fsys, name)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: content differs (%v)", name, err)
			}
		}
	})
}
