package convert_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
			recountLinks(want)
			checkMount(t, mountNydus(t, m, l), want)
		})
	}
}

// applyLayer is the oracle for applying upper onto lower in order, as
// containerd extracts layers: fstree.Apply, except that a directory the
// upper tar only implies leaves the lower directory's attributes alone.
func applyLayer(lower, upper *fstree.Tree) *fstree.Tree {
	res := fstree.Apply(lower, upper)
	for p, u := range upper.Nodes {
		l, r := lower.Nodes[p], res.Nodes[p]
		if !u.Implicit || !u.IsDir() || l == nil || !l.IsDir() || r == nil || !r.IsDir() {
			continue
		}
		r.Mode, r.UID, r.GID, r.Mtime, r.MtimeNsec = l.Mode, l.UID, l.GID, l.Mtime, l.MtimeNsec
		r.Xattrs = nil
		for k, v := range l.Xattrs {
			if !strings.HasPrefix(k, "trusted.overlay.") {
				if r.Xattrs == nil {
					r.Xattrs = map[string]string{}
				}
				r.Xattrs[k] = v
			}
		}
	}
	return res
}

// applyStack is the oracle for layers applied in order (tars[0] the
// lowest): the tree a container sees.
func applyStack(t testing.TB, tars ...[]byte) *fstree.Tree {
	t.Helper()
	var want *fstree.Tree
	for i, data := range tars {
		up := oracle(t, data, fstree.WhiteoutOverlay)
		if i == 0 {
			// Whiteouts in the lowest layer hide nothing and are not shown.
			want = fstree.Apply(&fstree.Tree{Nodes: map[string]*fstree.Node{".": up.Nodes["."].Clone()}}, up)
		} else {
			want = applyLayer(want, up)
		}
	}
	recountLinks(want)
	return want
}

// recountLinks sets the link count of non-directories to the number of
// names the inode has in the tree: what extracting the layers in order
// gives (overlayfs would report the count of the inode's own layer).
func recountLinks(t *fstree.Tree) {
	groups := map[int]uint32{}
	for _, n := range t.Nodes {
		if !n.IsDir() && n.Link != 0 {
			groups[n.Link]++
		}
	}
	for _, n := range t.Nodes {
		if !n.IsDir() {
			n.Nlink = 1
			if n.Link != 0 {
				n.Nlink = groups[n.Link]
			}
		}
	}
}

// stackLayers returns the three layers of the end-to-end stack.
func stackLayers(t testing.TB) [][]byte {
	mt := time.Unix(1650000000, 123456789)
	dir := func(name string, mode int64, uid int, x map[string]string) tarEntry {
		return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode, Uid: uid, Gid: uid, ModTime: mt, PAXRecords: xattrs(x), Format: tar.FormatPAX}}
	}
	file := func(name string, mode int64, data []byte, x map[string]string) tarEntry {
		return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, ModTime: mt, PAXRecords: xattrs(x), Format: tar.FormatPAX}, data: string(data)}
	}
	link := func(name, target string) tarEntry {
		return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target}}
	}
	sym := func(name, target string) tarEntry {
		return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}}
	}
	content := func(seed string, n int) []byte { return tartest.Content(seed, n) }
	l1 := makeTar(t,
		dir("./", 0o755, 0, nil),
		dir("etc/", 0o755, 0, nil),
		file("etc/hostname", 0o644, []byte("base\n"), nil),
		file("etc/passwd", 0o644, tartest.Text("passwd", 3000), nil),
		file("etc/empty", 0o600, nil, nil),
		file("etc/.wh.ghost", 0o644, nil, nil), // a whiteout in the lowest layer
		dir("usr/", 0o755, 0, nil),
		dir("usr/bin/", 0o755, 0, nil),
		file("usr/bin/bash", 0o755, content("bash", 1<<20+1), map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}),
		link("usr/bin/rbash", "usr/bin/bash"),
		sym("usr/bin/sh", "bash"),
		sym("usr/bin/dangling", "/nonexistent"),
		dir("usr/lib/", 0o755, 0, nil),
		file("usr/lib/big.so", 0o644, content("big", 3<<20+5), nil),
		file("usr/lib/exact", 0o644, content("exact", 1<<20), nil),
		file("usr/lib/less", 0o644, content("less", 1<<20-1), nil),
		file("usr/lib/small", 0o644, content("small", 4097), nil),
		link("usr/lib/small.1", "usr/lib/small"),
		dir("data/", 0o700, 1000, map[string]string{"user.tag": "lower", "trusted.t": "x"}),
		file("data/f", 0o640, content("f", 4095), map[string]string{"user.a": "1", "user.b": ""}),
		dir("opq/", 0o755, 0, nil),
		file("opq/a", 0o644, []byte("a"), nil),
		dir("opq/sub/", 0o755, 0, nil),
		file("opq/sub/b", 0o644, []byte("b"), nil),
		dir("dir2file/", 0o755, 0, nil),
		file("dir2file/child", 0o644, []byte("child"), nil),
		file("file2dir", 0o644, []byte("file"), nil),
		dir("var/", 0o755, 0, nil),
		dir("var/log/", 0o750, 4, map[string]string{"user.log": "1"}),
		file("impl/deep/file", 0o644, []byte("implicit parents"), nil),
		tarEntry{hdr: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}},
		tarEntry{hdr: tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Devminor: 0, Mode: 0o660, Gid: 6}},
		tarEntry{hdr: tar.Header{Name: "dev/fifo", Typeflag: tar.TypeFifo, Mode: 0o600}},
	)
	l2 := makeTar(t,
		dir("etc/", 0o755, 0, nil),
		file("etc/.wh.hostname", 0o644, nil, nil),
		file("etc/passwd", 0o644, tartest.Text("passwd2", 3100), nil),
		file("usr/.wh.lib", 0o644, nil, nil),                                   // a whole directory, with hard links
		file("usr/bin/rbash", 0o755, []byte("#!/bin/sh\nexec bash -r\n"), nil), // replaces one name of a hard link
		dir("opq/", 0o711, 0, nil),
		file("opq/.wh..wh..opq", 0o644, nil, nil),
		file("opq/new", 0o644, []byte("new"), nil),
		file("var/log/new.log", 0o644, content("log", 10000), nil), // var and var/log implicit
		file("data/f", 0o600, content("f2", 2<<20), map[string]string{"user.a": "2"}),
		link("data/f.hard", "data/f"),
		file("usr/bin/bash2", 0o755, content("bash", 1<<20+1), nil), // same chunks as a lower file
	)
	l3 := makeTar(t,
		file("dir2file", 0o644, []byte("was a directory"), nil),
		dir("file2dir/", 0o700, 0, nil),
		file("file2dir/inside", 0o644, []byte("inside"), nil),
		file("opq/.wh.new", 0o644, nil, nil),
		file("etc/hostname", 0o644, []byte("top\n"), nil), // etc implicit: keeps layer 2's
		file("impl/.wh.deep", 0o644, nil, nil),
		dir("data/", 0o750, 1000, map[string]string{"user.tag": "upper"}),
		sym("data/f", "f.hard"),
		dir("var/log/", 0o700, 0, nil),
		file("usr/lib/again", 0o644, []byte("lib is back"), nil),
	)
	return [][]byte{l1, l2, l3}
}

func xattrs(x map[string]string) map[string]string {
	if len(x) == 0 {
		return nil
	}
	recs := map[string]string{}
	for k, v := range x {
		recs["SCHILY.xattr."+k] = v
	}
	return recs
}

// TestNydusEndToEndLayers builds a three-layer stack, merges the layer
// bootstraps, mounts the merged bootstrap with one cache file per blob and
// compares it with the layers applied in order. Each layer is also
// mounted on its own.
func TestNydusEndToEndLayers(t *testing.T) {
	mounttest.Require(t)
	tars := stackLayers(t)
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
	tars := stackLayers(t)
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
	data, err := os.ReadFile(debianLayer(t))
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
