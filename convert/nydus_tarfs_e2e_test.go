package convert_test

import (
	"bytes"
	"encoding/binary"
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
// nydus-image merge: the layers applied. The same bootstrap with the tars
// laid out after it at their mapped_blkaddr, as one block image, mounts
// alone.
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
	want := applyStack(t, tars...)
	checkMerged(t, writeFile(t, dir, "merged.boot", raw), devs, want)

	// The form nydus-image export --block makes (nydus-snapshotter's
	// tarfs export): one image, the bootstrap followed by each tar at
	// its device slot's mapped_blkaddr, mounted alone.
	flat := bytes.Clone(raw)
	for i, d := range devs {
		slot := raw[1408+128*i:]
		if blocks := binary.LittleEndian.Uint32(slot[64:]); int(blocks)*512 != len(tars[i]) {
			t.Fatalf("device slot %d: %d blocks for a tar of %d bytes", i, blocks, len(tars[i]))
		}
		at := int(binary.LittleEndian.Uint32(slot[68:])) * 512
		if at < len(flat) || at%(512<<10) != 0 {
			t.Fatalf("device slot %d: mapped at %d, inside the image so far (%d bytes) or not 512 KiB-aligned", i, at, len(flat))
		}
		data, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		flat = append(append(flat, make([]byte, at-len(flat))...), data...)
	}
	checkMount(t, mounttest.Mount(t, writeFile(t, dir, "flat.img", flat)), want)
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
