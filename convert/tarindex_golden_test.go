package convert_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/erofs"
)

// readGunzip reads a gzip-compressed file of testdata/tarindex.
func readGunzip(t *testing.T, name string) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "tarindex", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTarIndexGolden reads mkfs.erofs 1.9.3's tar index of a small tar
// (testdata/tarindex, made by mkgolden.py there) with this module's
// reader: with the tar as its device, and with the tar appended (the
// containerd form). Both match the tar, and so does this module's index
// of the same tar, at most a block larger (mkfs.erofs starts its inodes in
// the superblock's block; a larger tree's index is smaller than its).
func TestTarIndexGolden(t *testing.T) {
	data := readGunzip(t, "layer.tar.gz")
	golden := readGunzip(t, "index.erofs.gz")
	// mkfs.erofs keeps whiteouts as files without --aufs; this tar has none.
	want, err := fstree.FromTar(bytes.NewReader(data), fstree.TarOptions{Whiteouts: fstree.WhiteoutKeep})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	compareIndex(t, write("golden.erofs", golden), data, want)
	compareIndex(t, write("golden-appended.erofs", append(bytes.Clone(golden), data...)), nil, want)

	fsys, err := erofs.Open(bytes.NewReader(golden), erofs.WithDevices(bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	sb := fsys.Superblock()
	if sb.BlockSize != 512 || len(sb.Devices) != 1 || sb.Devices[0].UniAddr != uint64(len(golden))/512 {
		t.Errorf("golden: block size %d, devices %+v", sb.BlockSize, sb.Devices)
	}

	ours, res := buildTarIndex(t, data, &convert.TarIndexOptions{EROFS: convert.EROFSOptions{Whiteouts: convert.WhiteoutKeep}})
	compareIndex(t, ours, data, want)
	t.Logf("index of %d bytes of tar: ours %d bytes, mkfs.erofs's %d", len(data), res.ImageSize, len(golden))
	if res.ImageSize > int64(len(golden))+512 {
		t.Errorf("our index: %d bytes, mkfs.erofs's %d", res.ImageSize, len(golden))
	}
	if d := (sb.Devices[0]); d.Blocks != uint64(len(data))/512 {
		t.Logf("golden device: %d blocks of %d in the tar (mkfs.erofs counts to the end of the archive)", d.Blocks, len(data)/512)
	}
}
