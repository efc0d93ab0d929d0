package convert_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/rafs"
)

// writeBlobCache writes the uncompressed cache file of a blob (every chunk
// at its uncompressed offset, as nydusd keeps it for fscache) and returns
// its path.
func writeBlobCache(t testing.TB, dir string, data []byte) string {
	t.Helper()
	br, err := blob.Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, fmt.Sprintf("cache-%x", sha256Sum(data)))
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := convert.WriteBlobCache(f, br); err != nil {
		t.Fatal(err)
	}
	return p
}

// mountNydus writes a bootstrap and the cache files of its blobs (taken
// from layers by id) and mounts it with one device= per blob.
func mountNydus(t *testing.T, boot *rafs.Bootstrap, layers ...*nydusLayer) string {
	t.Helper()
	dir := t.TempDir()
	raw, err := boot.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	bootPath := writeFile(t, dir, "image.boot", raw)
	byID := map[string]*nydusLayer{}
	for _, l := range layers {
		byID[l.res.Blob.ID] = l
	}
	var devices []string
	for _, bi := range boot.Blobs {
		l := byID[bi.ID]
		if l == nil {
			t.Fatalf("no layer has blob %s", bi.ID)
		}
		devices = append(devices, writeBlobCache(t, dir, l.blob))
	}
	return mounttest.Mount(t, bootPath, devices...)
}

// checkMount compares a mounted bootstrap with the oracle.
func checkMount(t *testing.T, dir string, want *fstree.Tree) {
	t.Helper()
	got, err := fstree.FromDir(dir)
	if err != nil {
		t.Fatalf("mounted: %v", err)
	}
	reportDiffs(t, "kernel", fstree.Compare(want, got))
}

// TestNydusEndToEndGolden converts every golden tar to a Nydus layer and
// mounts its bootstrap with the blob's cache file: the kernel must show
// the tar's tree (whiteouts kept as plain files). The merged bootstrap of
// the single layer must show the tree with whiteouts applied.
func TestNydusEndToEndGolden(t *testing.T) {
	mounttest.Require(t)
	for _, c := range tartest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			l := toNydus(t, c.Tar, nil)
			checkMount(t, mountNydus(t, l.res.Bootstrap, l), oracle(t, c.Tar, fstree.WhiteoutKeep))
			if c.Name != "whiteouts" {
				return
			}
			m, err := convert.MergeNydus([]*rafs.Bootstrap{l.layerBootstrap(t)}, nil)
			if err != nil {
				t.Fatal(err)
			}
			// A lone layer's whiteouts have nothing to hide; Merge drops
			// the OCI ones (.wh.*), as extraction does not create them.
			// Overlayfs-form whiteouts (0:0 devices, opaque xattrs) are
			// plain files and xattrs in an OCI layer.
			want := oracle(t, c.Tar, fstree.WhiteoutKeep)
			for p := range want.Nodes {
				if strings.HasPrefix(p[strings.LastIndexByte(p, '/')+1:], ".wh.") {
					delete(want.Nodes, p)
				}
			}
			fstree.RecountLinks(want)
			checkMount(t, mountNydus(t, m, l), want)
		})
	}
}

// applyStack is the oracle for layers applied in order (tars[0] the
// lowest): the tree a container sees (fstree.FromLayers).
func applyStack(t testing.TB, tars ...[]byte) *fstree.Tree {
	t.Helper()
	want, err := fstree.FromLayers(tars...)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func xattrs(x map[string]string) map[string]string { return tartest.PAXXattrs(x) }

// TestNydusEndToEndLayers builds a three-layer stack, merges the layer
// bootstraps, mounts the merged bootstrap with one cache file per blob and
// compares it with the layers applied in order. Each layer is also
// mounted on its own.
func TestNydusEndToEndLayers(t *testing.T) {
	mounttest.Require(t)
	tars := tartest.Stack()
	var layers []*nydusLayer
	var boots []*rafs.Bootstrap
	var want *fstree.Tree
	for i, data := range tars {
		l := toNydus(t, data, nil)
		layers = append(layers, l)
		boots = append(boots, l.layerBootstrap(t))
		want = applyStack(t, tars[:i+1]...)
		t.Run("layer"+string(rune('1'+i)), func(t *testing.T) {
			checkMount(t, mountNydus(t, l.res.Bootstrap, l), oracle(t, data, fstree.WhiteoutKeep))
			got, _ := unpackTree(t, boots[i], l)
			reportDiffs(t, "unpacked", fstree.Compare(oracle(t, data, fstree.WhiteoutKeep), got))
		})
		t.Run("merged"+string(rune('1'+i)), func(t *testing.T) {
			m, err := convert.MergeNydus(boots, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Blobs) != len(boots) {
				t.Errorf("merged bootstrap has %d blobs, want %d", len(m.Blobs), len(boots))
			}
			checkMount(t, mountNydus(t, m, layers...), want)
			got, _ := unpackTree(t, m, layers...)
			reportDiffs(t, "unpacked", fstree.Compare(want, got))
		})
	}
}

// TestNydusEndToEndChunkDict mounts a merged image whose upper layer was
// built against the lower one as chunk dictionary.
func TestNydusEndToEndChunkDict(t *testing.T) {
	mounttest.Require(t)
	tars := tartest.Stack()
	a := toNydus(t, tars[0], nil)
	ab := a.layerBootstrap(t)
	dict, err := rafs.NewChunkDict(ab)
	if err != nil {
		t.Fatal(err)
	}
	b := toNydus(t, tars[1], &convert.NydusOptions{ChunkDict: dict})
	if b.res.DictChunks == 0 {
		t.Error("no chunk came from the dictionary")
	}
	plain := toNydus(t, tars[1], nil)
	if b.res.Blob.ChunkCount >= plain.res.Blob.ChunkCount {
		t.Errorf("the dictionary saved nothing: %d chunks, %d without", b.res.Blob.ChunkCount, plain.res.Blob.ChunkCount)
	}
	bb := b.layerBootstrap(t)
	checkMount(t, mountNydus(t, bb, a, b), oracle(t, tars[1], fstree.WhiteoutKeep))
	m, err := convert.MergeNydus([]*rafs.Bootstrap{ab, bb}, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkMount(t, mountNydus(t, m, a, b), applyStack(t, tars[0], tars[1]))
}

// TestNydusEndToEndDebian converts the Debian base layer (.tar.gz) and
// mounts it, unpacks it again, and builds it twice.
func TestNydusEndToEndDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("the Debian layer takes a while; skipped with -short")
	}
	mounttest.Require(t)
	data, err := os.ReadFile(tartest.DebianLayer(t))
	if err != nil {
		t.Fatal(err)
	}
	want := oracle(t, data, fstree.WhiteoutKeep)
	l := toNydus(t, data, nil)
	checkMount(t, mountNydus(t, l.res.Bootstrap, l), want)

	boot := l.layerBootstrap(t)
	got, _ := unpackTree(t, boot, l)
	reportDiffs(t, "unpacked", fstree.Compare(want, got))

	again := toNydus(t, data, &convert.NydusOptions{Workers: 1})
	if !bytes.Equal(l.blob, again.blob) {
		t.Error("two builds of the Debian layer differ")
	}
	t.Logf("%d entries, %d files, %d bytes of tar -> blob of %d bytes (%d chunks, %d unique)",
		l.res.Entries, l.res.Files, l.res.TarSize, len(l.blob), l.res.Chunks, l.res.Blob.ChunkCount)
}
