package convert_test

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/convert"
)

// FuzzTarToNydus feeds arbitrary bytes to the Nydus converter: it must
// return an error or a blob whose inline bootstrap reads back, unpacks
// with every chunk verified, and holds the content of each regular file
// the tar holds last under its name. It must never panic or hang.
func FuzzTarToNydus(f *testing.F) {
	f.Add(whiteoutLayer(f))
	f.Add(makeTar(f,
		tarEntry{hdr: tar.Header{Name: "a/b/c", Typeflag: tar.TypeReg, Mode: 0o644}, data: string(bytes.Repeat([]byte("data"), 3000))},
		tarEntry{hdr: tar.Header{Name: "a/l", Typeflag: tar.TypeLink, Linkname: "a/b/c"}},
		tarEntry{hdr: tar.Header{Name: "a/s", Typeflag: tar.TypeSymlink, Linkname: "b"}},
		tarEntry{hdr: tar.Header{Name: "a", Typeflag: tar.TypeDir, Mode: 0o700, PAXRecords: map[string]string{"SCHILY.xattr.user.x": "y"}}},
		tarEntry{hdr: tar.Header{Name: "a/b/c", Typeflag: tar.TypeReg, Mode: 0o600}, data: "replaced"},
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
		// Sparse entries expand to their declared size: keep the work
		// (every byte is hashed and compressed) bounded.
		if expandedSize(data) > 16<<20 {
			return
		}
		var out bytes.Buffer
		res, err := convert.TarToNydus(bytes.NewReader(data), &out, &convert.NydusOptions{ChunkSize: 4096, Workers: 2})
		if err != nil {
			return
		}
		b, id, err := convert.ReadNydusLayer(bytes.NewReader(out.Bytes()), int64(out.Len()))
		if err != nil {
			t.Fatalf("blob of an accepted tar does not read back: %v", err)
		}
		if id != res.Blob.ID {
			t.Fatalf("blob id %s, result says %s", id, res.Blob.ID)
		}
		br, err := blob.Open(bytes.NewReader(out.Bytes()), int64(out.Len()))
		if err != nil {
			t.Fatal(err)
		}
		if err := br.Verify(); err != nil {
			t.Fatalf("blob of an accepted tar does not verify: %v", err)
		}
		var readers []*blob.Reader
		if len(b.Blobs) == 1 {
			readers = []*blob.Reader{br}
		}
		var unpacked bytes.Buffer
		if _, err := convert.UnpackNydus(b, readers, &unpacked); err != nil {
			t.Fatalf("bootstrap of an accepted tar does not unpack: %v", err)
		}
		got := map[string][]byte{}
		tr := tar.NewReader(&unpacked)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("unpacked tar: %v", err)
			}
			if h.Typeflag == tar.TypeReg {
				got[path.Clean(h.Name)], _ = io.ReadAll(tr)
			}
		}
		// Files the tar holds last under each name must come back intact
		// (hard link names are not regular entries in the unpacked tar).
		last := map[string][]byte{}
		tr = tar.NewReader(bytes.NewReader(data))
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
				last[path.Clean(h.Name)] = b
			} else {
				delete(last, path.Clean(h.Name))
			}
		}
		for name, want := range last {
			if g, ok := got[name]; ok && !bytes.Equal(g, want) {
				t.Fatalf("%s: content differs", name)
			}
		}
	})
}

// expandedSize is the sum of the sizes a tar's headers declare, as far as
// archive/tar reads them.
func expandedSize(data []byte) int64 {
	var n int64
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			return n
		}
		if h.Size > 0 {
			n += h.Size
		}
	}
}
