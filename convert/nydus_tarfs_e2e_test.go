package convert_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/rafs"
)

// writeTarfs writes a tarfs layer's bootstrap and tar to dir and returns
// their paths (the tar's "" when the bootstrap has no blob).
func writeTarfs(t testing.TB, dir, name string, l *tarfsLayer) (boot, tar string) {
	t.Helper()
	boot = writeFile(t, dir, name+".boot", l.boot)
	if l.res.Chunks > 0 {
		tar = writeFile(t, dir, name+".tar", l.tar)
	}
	return boot, tar
}

// TestNydusTarfsEndToEndGolden builds the tarfs bootstrap of every golden
// tar and mounts it with the tar as its device (the way nydus-snapshotter
// mounts tarfs layers): the kernel, our EROFS reader, go-erofs and
// fsck.erofs --device must all show the tar's tree, whiteouts kept as
// plain files.
func TestNydusTarfsEndToEndGolden(t *testing.T) {
	mounttest.Require(t)
	noteFsck(t)
	for _, c := range tartest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			l := toTarfs(t, c.Tar, nil)
			boot, tar := writeTarfs(t, t.TempDir(), "layer", l)
			var devs []string
			if tar != "" {
				devs = append(devs, tar)
			}
			checkMerged(t, boot, devs, oracle(t, c.Tar, fstree.WhiteoutKeep))
		})
	}
}

// TestNydusTarfsEndToEndMerged merges the tarfs layers of the three-layer
// stack (whiteouts, opaque directories, replaced files, hard links,
// xattrs) and mounts the merged bootstrap with the tars as its devices,
// in the order of its blob table, as nydus-snapshotter does after
// nydus-image merge: the layers applied.
func TestNydusTarfsEndToEndMerged(t *testing.T) {
	mounttest.Require(t)
	tars := tartest.Stack()
	dir := t.TempDir()
	var boots []*rafs.Bootstrap
	var devs []string
	for i, data := range tars {
		l := toTarfs(t, data, nil)
		boots = append(boots, l.read(t))
		_, tar := writeTarfs(t, dir, "layer"+string(rune('1'+i)), l)
		devs = append(devs, tar)
	}
	m, err := convert.MergeNydus(boots, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	checkMerged(t, writeFile(t, dir, "merged.boot", raw), devs, applyStack(t, tars...))
}

// TestNydusTarfsEndToEndDebian builds the tarfs bootstrap of the Debian
// layer from its .tar.gz, the uncompressed tar written out once, and
// mounts it with that tar as device: it must show the layer's tree.
func TestNydusTarfsEndToEndDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("the Debian layer takes a while; skipped with -short")
	}
	mounttest.Require(t)
	gz, err := os.ReadFile(tartest.DebianLayer(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "layer.tar")
	tarOut, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer tarOut.Close()
	var boot bytes.Buffer
	start := time.Now()
	res, err := convert.TarToNydusTarfs(bytes.NewReader(gz), &boot, tarOut, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d entries, %d files, %d bytes of tar (%s) -> tarfs bootstrap of %d bytes, %d chunks, in %v",
		res.Entries, res.Files, res.TarSize, res.Encoding, boot.Len(), res.Chunks, time.Since(start).Round(time.Millisecond))
	bootPath := writeFile(t, dir, "layer.boot", boot.Bytes())
	checkMerged(t, bootPath, []string{tarPath}, oracle(t, gz, fstree.WhiteoutKeep))
}
