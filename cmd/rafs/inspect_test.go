package main

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// inspectJSON runs rafs inspect --json and decodes its output.
func inspectJSON(t *testing.T, path string) *inspectReport {
	t.Helper()
	stdout := mustRunAll(t, "inspect", "--json", path)
	var r inspectReport
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, stdout)
	}
	return &r
}

// tarTypeCounts counts the entries of the tar rafs unpack writes for an
// image, by inspect's type names ("link" for hard links).
func tarTypeCounts(t *testing.T, img string, devices ...string) map[string]int {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out.tar")
	args := []string{"unpack", "--type", "erofs", "-o", out}
	for _, d := range devices {
		args = append(args, "--device", d)
	}
	mustRun(t, append(args, img)...)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	counts := map[string]int{"dir": 1} // the root, written or implied
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return counts
		}
		if err != nil {
			t.Fatal(err)
		}
		name := map[byte]string{tar.TypeReg: "reg", tar.TypeDir: "dir", tar.TypeSymlink: "symlink", tar.TypeChar: "chr",
			tar.TypeBlock: "blk", tar.TypeFifo: "fifo", tar.TypeLink: "link"}[h.Typeflag]
		if h.Name != "./" {
			counts[name]++
		}
	}
}

// TestInspectGoldens checks rafs inspect --json field by field on
// mkfs.erofs golden images whose command lines erofs/testdata/README.md
// gives, and the text form's main lines.
func TestInspectGoldens(t *testing.T) {
	dir := t.TempDir()
	const uuid = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"

	plain := goldenImage(t, dir, "plain.erofs")
	r := inspectJSON(t, plain)
	sb := r.EROFS.Superblock
	if r.Kind != "erofs" || sb.Magic != "0xe0f5e1e2" || sb.BlockSize != 4096 || sb.UUID != uuid ||
		sb.VolumeName != "golden" || sb.Epoch != 1700000000 || sb.ExtraDevices != 0 || len(r.EROFS.Devices) != 0 {
		t.Errorf("plain: superblock %+v", sb)
	}
	if !reflect.DeepEqual(sb.Features, []string{"sb_chksum", "mtime", "xattr_filter"}) {
		t.Errorf("plain: features %v", sb.Features)
	}
	if fi, err := os.Stat(plain); err != nil || r.FileSize != fi.Size() || sb.PrimaryDeviceBytes != uint64(fi.Size()) {
		t.Errorf("plain: file size %d, primary device %d bytes", r.FileSize, sb.PrimaryDeviceBytes)
	}
	want := tarTypeCounts(t, plain)
	tree := r.Tree
	if tree.HardLinks != want["link"] || tree.HardLinks == 0 || tree.Entries != tree.Inodes+tree.HardLinks {
		t.Errorf("plain: %d entries, %d inodes, %d hard links; the tar has %d links", tree.Entries, tree.Inodes, tree.HardLinks, want["link"])
	}
	delete(want, "link")
	want["sock"] = tree.ByType["sock"] // a tar cannot hold sockets
	if tree.ByType["sock"] != 1 || !reflect.DeepEqual(tree.ByType, want) {
		t.Errorf("plain: inodes by type %v, the tar has %v (and the tree one socket)", tree.ByType, want)
	}
	if uint64(tree.Inodes) != sb.Inodes {
		t.Errorf("plain: %d inodes in the tree, the superblock says %d", tree.Inodes, sb.Inodes)
	}
	if tree.ByLayout["flat_plain"] == 0 || tree.ByLayout["flat_inline"] == 0 || tree.Xattrs == 0 || tree.ExtendedInodes == 0 {
		t.Errorf("plain: layouts %v, %d xattrs, %d extended inodes", tree.ByLayout, tree.Xattrs, tree.ExtendedInodes)
	}
	if s := r.Sizes; s["data_device_0"]+s["data_inline"] != tree.FileBytes || s["metadata"]+s["data_device_0"] != sb.PrimaryDeviceBytes {
		t.Errorf("plain: sizes %v, file bytes %d", s, tree.FileBytes)
	}

	blobdev := goldenImage(t, dir, "blobdev.erofs")
	r = inspectJSON(t, blobdev)
	sb = r.EROFS.Superblock
	if !reflect.DeepEqual(sb.Features, []string{"sb_chksum", "mtime", "xattr_filter", "chunked_file", "device_table|compr_head2"}) {
		t.Errorf("blobdev: features %v", sb.Features)
	}
	if sb.ExtraDevices != 1 || len(r.EROFS.Devices) != 1 || r.EROFS.Devices[0].UniAddr != 1 || r.EROFS.Devices[0].ID != 1 {
		t.Errorf("blobdev: devices %+v", r.EROFS.Devices)
	}
	blobImg := goldenImage(t, dir, "blob.img")
	if fi, err := os.Stat(blobImg); err != nil || r.EROFS.Devices[0].Bytes != uint64(fi.Size()) {
		t.Errorf("blobdev: device of %d bytes, blob.img has %d", r.EROFS.Devices[0].Bytes, fi.Size())
	}
	if r.Tree.ByLayout["chunk_based"] == 0 || r.Sizes["data_device_1"] == 0 || r.Sizes["data_holes"] != 4096 ||
		r.Sizes["data_device_1"]+r.Sizes["data_holes"]+r.Sizes["data_device_0"]+r.Sizes["data_inline"] != r.Tree.FileBytes {
		t.Errorf("blobdev: layouts %v, sizes %v, file bytes %d", r.Tree.ByLayout, r.Sizes, r.Tree.FileBytes)
	}

	z := goldenImage(t, dir, "z-zstd-allfrag.erofs")
	r = inspectJSON(t, z)
	sb = r.EROFS.Superblock
	if !reflect.DeepEqual(sb.ComprAlgs, []string{"zstd"}) || sb.PackedNid == 0 ||
		!reflect.DeepEqual(sb.Features, []string{"sb_chksum", "mtime", "zero_padding", "compr_cfgs|big_pcluster", "fragments|dedupe"}) {
		t.Errorf("z-zstd-allfrag: superblock %+v", sb)
	}
	if r.Tree.ByLayout["compressed_full"]+r.Tree.ByLayout["compressed_compact"] == 0 || r.Sizes["data_compressed"] == 0 {
		t.Errorf("z-zstd-allfrag: layouts %v, sizes %v", r.Tree.ByLayout, r.Sizes)
	}
	// The packed inode is counted by the superblock, not in the tree.
	if uint64(r.Tree.Inodes)+1 != sb.Inodes {
		t.Errorf("z-zstd-allfrag: %d inodes in the tree, the superblock says %d", r.Tree.Inodes, sb.Inodes)
	}

	stdout := mustRunAll(t, "inspect", blobdev)
	for _, w := range []string{"blobdev.erofs: erofs, 4096 bytes", "uuid: " + uuid, "device 1: tag \"\", 10 blocks (40960 bytes), uniaddr 1", "chunked_file device_table|compr_head2"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("text form lacks %q:\n%s", w, stdout)
		}
	}
}

// TestInspectNydus checks rafs inspect on a Nydus blob and its
// bootstrap: the blob table, the chunk counts, the sections.
func TestInspectNydus(t *testing.T) {
	dir := t.TempDir()
	layer, text := checkLayer(t, dir)
	nblob, nboot := filepath.Join(dir, "l.blob"), filepath.Join(dir, "l.boot")
	stdout, _ := mustRun(t, "build", "--type", "nydus", "--chunk-size", "0x10000", "-o", nblob, "--bootstrap", nboot, layer)
	id := strings.TrimSpace(stdout)
	wantChunks := (len(text)+0xFFFF)/0x10000 + 1 // a/text and small

	rb := inspectJSON(t, nboot)
	if rb.Kind != "nydus-bootstrap" || rb.Bootstrap == nil || len(rb.Bootstrap.Blobs) != 1 {
		t.Fatalf("bootstrap: %+v", rb)
	}
	b := rb.Bootstrap
	if b.ChunkSize != 0x10000 || b.Chunks != wantChunks || b.DistinctChunks != wantChunks || b.ChunksPerBlob[0] != wantChunks {
		t.Errorf("bootstrap: chunk size %#x, chunks %d (%d distinct, %v), want %d", b.ChunkSize, b.Chunks, b.DistinctChunks, b.ChunksPerBlob, wantChunks)
	}
	e := b.Blobs[0]
	if e.ID != id || int(e.ChunkCount) != wantChunks || e.Compressor != "zstd" || e.Digester != "blake3" {
		t.Errorf("bootstrap: blob entry %+v, want id %s", e, id)
	}
	if !reflect.DeepEqual(b.FlagNames, []string{"HASH_BLAKE3", "EXPLICIT_UID_GID", "COMPRESSION_ZSTD", "INLINED_CHUNK_DIGEST", "ENCRYPTION_NONE"}) {
		t.Errorf("bootstrap: flags %s %v", b.Flags, b.FlagNames)
	}
	if sb := rb.EROFS.Superblock; !reflect.DeepEqual(sb.Features, []string{"chunked_file", "device_table|compr_head2", "rafs_v6"}) ||
		len(rb.EROFS.Devices) != 1 || rb.EROFS.Devices[0].Tag != id {
		t.Errorf("bootstrap: features %v, devices %+v", sb.Features, rb.EROFS.Devices)
	}
	if tr := rb.Tree; tr.ByType["dir"] != 2 || tr.ByType["reg"] != 2 || tr.FileBytes != uint64(len(text)+5) {
		t.Errorf("bootstrap: tree %+v", tr)
	}

	rl := inspectJSON(t, nblob)
	if rl.Kind != "nydus-blob" || rl.Blob == nil || rl.Blob.Chunks != wantChunks || rl.Bootstrap == nil || rl.Bootstrap.EROFS == nil {
		t.Fatalf("blob: %+v", rl)
	}
	var names []string
	for _, s := range rl.Blob.Sections {
		names = append(names, s.Name)
	}
	if !reflect.DeepEqual(names, []string{"image.blob", "blob.meta", "blob.meta.header", "blob.digest", "image.boot"}) {
		t.Errorf("blob: sections %v", names)
	}
	if !reflect.DeepEqual(rl.Tree, rb.Tree) || rl.Bootstrap.Chunks != wantChunks {
		t.Errorf("blob: tree %+v, the bootstrap's %+v", rl.Tree, rb.Tree)
	}
	if fi, err := os.Stat(nblob); err != nil || rl.Sizes["data"]+rl.Sizes["metadata"] != uint64(fi.Size()) {
		t.Errorf("blob: sizes %v", rl.Sizes)
	}
}

// mustRunAll runs the CLI, fails the test unless it exits 0, and returns
// its standard output.
func mustRunAll(t *testing.T, args ...string) string {
	t.Helper()
	code, stdout, stderr := rafsCmd(t, args...)
	if code != 0 {
		t.Fatalf("rafs %s: exit code %d\n%s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}
