package rebuild_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/erofs/rebuild"
)

// memImage is an in-memory io.WriterAt.
type memImage struct{ b []byte }

func (m *memImage) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}

// entry is one path of a tree as the reader shows it.
type entry struct {
	mode, uid, gid, nlink uint32
	size, mtime           int64
	nsec                  uint32
	dev                   [2]uint32
	xattrs                map[string]string
	link                  string
	data                  string
}

func (e entry) String() string {
	return fmt.Sprintf("mode %#o owner %d:%d nlink %d size %d mtime %d.%09d dev %v xattrs %v link %q data %q",
		e.mode, e.uid, e.gid, e.nlink, e.size, e.mtime, e.nsec, e.dev, e.xattrs, e.link, e.data)
}

// readTree reads every entry of an image with our reader.
func readTree(t *testing.T, img []byte, devs ...[]byte) map[string]entry {
	t.Helper()
	var rs []io.ReaderAt
	for _, d := range devs {
		rs = append(rs, bytes.NewReader(d))
	}
	fsys, err := erofs.Open(bytes.NewReader(img), erofs.WithDevices(rs...))
	if err != nil {
		t.Fatal(err)
	}
	tree := map[string]entry{}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*erofs.Stat)
		e := entry{mode: st.Mode, uid: st.UID, gid: st.GID, nlink: st.Nlink, size: st.Size,
			mtime: st.Mtime, nsec: st.MtimeNsec, dev: [2]uint32{st.Devmajor, st.Devminor}, xattrs: st.Xattrs}
		switch st.Mode & erofs.ModeTypeMask {
		case erofs.ModeSymlink:
			if e.link, err = fsys.ReadLink(p); err != nil {
				return err
			}
		case erofs.ModeRegular:
			b, err := fsys.ReadFile(p)
			if err != nil {
				return err
			}
			e.data = string(b)
		case erofs.ModeDir:
			e.size = 0 // directory sizes depend on the layout
		}
		tree[p] = e
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// compareTrees reports every path whose entries differ.
func compareTrees(t *testing.T, want, got map[string]entry) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing", p)
			continue
		}
		if w.String() != g.String() {
			t.Errorf("%s:\n got %v\nwant %v", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected", p)
		}
	}
}

// merge runs rebuild.Merge over in-memory layers.
func merge(t *testing.T, layers ...[]byte) ([]byte, *rebuild.Result) {
	t.Helper()
	var ls []rebuild.Layer
	for i, l := range layers {
		ls = append(ls, rebuild.Layer{Name: fmt.Sprintf("layer%d", i+1), Image: bytes.NewReader(l), Size: int64(len(l))})
	}
	out := &memImage{}
	res, err := rebuild.Merge(out, ls, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Size != int64(len(out.b)) {
		t.Errorf("Result.Size %d, wrote %d bytes", res.Size, len(out.b))
	}
	return out.b, res
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestGoldenMkfsRebuild reads the merged metadata mkfs.erofs 1.9.3's
// rebuild mode made of two layers (testdata/gen.sh) with our reader, and
// compares it with ours of the same layers: the same tree but for the
// root's metadata (mkfs gives the root mode 0777 and the build time), the
// same device tags and sizes.
func TestGoldenMkfsRebuild(t *testing.T) {
	l1, l2 := readFile(t, "layer1.erofs"), readFile(t, "layer2.erofs")
	golden := readTree(t, readFile(t, "merged.erofs"), l1, l2)
	img, res := merge(t, l1, l2)
	ours := readTree(t, img, l1, l2)
	root := golden["."]
	root.mode, root.mtime = ours["."].mode, ours["."].mtime
	golden["."] = root
	compareTrees(t, golden, ours)

	// What the stack must show, whoever merged it.
	for p, want := range map[string]string{
		"etc/hostname":  "top\n",
		"opq/new":       "new",
		"data/big.link": "replaced",
		"data/big":      strings.Repeat("x", 5000),
	} {
		if got := ours[p].data; got != want {
			t.Errorf("%s: %.20q, want %.20q", p, got, want)
		}
	}
	for _, p := range []string{"gone", "gone/deep", "opq/a", "opq/sub"} {
		if _, ok := ours[p]; ok {
			t.Errorf("%s: shown, want hidden", p)
		}
	}
	if n := ours["data/big"].nlink; n != 1 {
		t.Errorf("data/big: nlink %d, want 1 (its hard link replaced)", n)
	}
	if x := ours["data"].xattrs; !maps.Equal(x, map[string]string{"user.tag": "upper"}) {
		t.Errorf("data: xattrs %v, want the upper layer's", x)
	}
	if x := ours["opq"].xattrs; len(x) != 0 {
		t.Errorf("opq: xattrs %v, want none (overlayfs xattrs dropped)", x)
	}

	mk, err := erofs.Open(bytes.NewReader(readFile(t, "merged.erofs")), erofs.WithDevices(bytes.NewReader(l1), bytes.NewReader(l2)))
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range mk.Superblock().Devices {
		if got := res.Devices[i]; got.Tag != d.Tag || got.Blocks != d.Blocks {
			t.Errorf("device %d: tag %q, %d blocks; mkfs.erofs: %q, %d", i+1, got.Tag, got.Blocks, d.Tag, d.Blocks)
		}
	}
}

// build makes a layer image with the Writer: add adds its entries.
func build(t *testing.T, opts erofs.WriterOptions, add func(w *erofs.Writer) error) []byte {
	t.Helper()
	out := &memImage{}
	opts.BuildTime = 1600000000
	w, err := erofs.NewWriter(out, &opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := add(w); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.b
}

var mtime = time.Unix(1650000000, 5)

func file(p string, size int) *erofs.Entry {
	return &erofs.Entry{Path: p, Mode: erofs.ModeRegular | 0o644, ModTime: mtime, Size: int64(size)}
}

// TestMergeTarIndexLayer merges a tar-index layer (512-byte blocks, its
// files chunks on device 1, its tar) under a plain layer: the merged
// image has 512-byte blocks, the tar as device 1 with the layer's tag,
// the plain layer as device 2, and reads back through them.
func TestMergeTarIndexLayer(t *testing.T) {
	rnd := rand.New(rand.NewSource(1))
	tar := make([]byte, 64*512)
	rnd.Read(tar)
	idx := build(t, erofs.WriterOptions{BlockSize: 512, NoInlineData: true,
		Devices: []erofs.SuperblockDevice{{Tag: "sha256-of-the-tar", Blocks: 64}}}, func(w *erofs.Writer) error {
		// a: 700 bytes at block 1; b: 1024-byte chunks at blocks 4,
		// 10, a hole and 20; gone: removed by the upper layer.
		if err := w.AddChunks(file("a", 700), erofs.ChunkedFile{ChunkSize: 1024,
			Chunks: []erofs.Chunk{{Device: 1, Block: 1}}}); err != nil {
			return err
		}
		if err := w.AddChunks(file("dir/b", 3500), erofs.ChunkedFile{ChunkSize: 1024,
			Chunks: []erofs.Chunk{{Device: 1, Block: 4}, {Device: 1, Block: 10}, {Hole: true}, {Device: 1, Block: 20}}}); err != nil {
			return err
		}
		return w.AddChunks(file("dir/gone", 100), erofs.ChunkedFile{ChunkSize: 512, Chunks: []erofs.Chunk{{Device: 1, Block: 30}}})
	})
	cData := make([]byte, 9000)
	rnd.Read(cData)
	upper := build(t, erofs.WriterOptions{NoInlineData: true}, func(w *erofs.Writer) error {
		if err := w.Add(&erofs.Entry{Path: "dir/gone", Mode: erofs.ModeCharDevice, ModTime: mtime}, nil); err != nil {
			return err
		}
		return w.Add(file("dir/c", len(cData)), bytes.NewReader(cData))
	})
	img, res := merge(t, idx, upper)
	if res.BlockSize != 512 {
		t.Errorf("block size %d, want 512", res.BlockSize)
	}
	up, err := erofs.Open(bytes.NewReader(upper))
	if err != nil {
		t.Fatal(err)
	}
	uuid := up.Superblock().UUID
	wantDevs := []erofs.SuperblockDevice{{Tag: "sha256-of-the-tar", Blocks: 64}, {Tag: fmt.Sprintf("%x", uuid[:]), Blocks: uint64(len(upper) / 512)}}
	if fmt.Sprint(res.Devices) != fmt.Sprint(wantDevs) {
		t.Errorf("devices %v, want %v", res.Devices, wantDevs)
	}

	tree := readTree(t, img, tar, upper)
	b := string(tar[4*512:][:1024]) + string(tar[10*512:][:1024]) + strings.Repeat("\x00", 1024) + string(tar[20*512:][:3500-3072])
	for p, want := range map[string]string{"a": string(tar[512:][:700]), "dir/b": b, "dir/c": string(cData)} {
		if got := tree[p].data; got != want {
			t.Errorf("%s: %d bytes differ from the %d wanted", p, len(got), len(want))
		}
	}
	if _, ok := tree["dir/gone"]; ok {
		t.Error("dir/gone: shown, want whited out")
	}

	// The chunks keep the layer's chunk size and point at the tar; the
	// upper layer's 4096-byte blocks are 8 of the merged image's.
	meta, err := erofs.Open(bytes.NewReader(img), erofs.WithDevices(bytes.NewReader(tar), bytes.NewReader(upper)))
	if err != nil {
		t.Fatal(err)
	}
	ext := extents(t, meta, "dir/b")
	want := []erofs.DataExtent{{Off: 0, Len: 1024, Device: 1, Block: 4}, {Off: 1024, Len: 1024, Device: 1, Block: 10},
		{Off: 2048, Len: 1024, Hole: true}, {Off: 3072, Len: 428, Device: 1, Block: 20}}
	if fmt.Sprint(ext) != fmt.Sprint(want) {
		t.Errorf("dir/b: extents %v, want %v", ext, want)
	}
	cUp := extents(t, up, "dir/c")
	if ext := extents(t, meta, "dir/c"); len(ext) != 1 || ext[0].Device != 2 || ext[0].Block != cUp[0].Block*8 || ext[0].Len != 9000 {
		t.Errorf("dir/c: extents %v, want one of 9000 bytes on device 2 at block %d", ext, cUp[0].Block*8)
	}
}

// extents returns the data extents of the file p.
func extents(t *testing.T, fsys *erofs.FS, p string) []erofs.DataExtent {
	t.Helper()
	fi, err := fsys.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	ext, err := fsys.DataExtents(fi.Sys().(*erofs.Stat).Nid)
	if err != nil {
		t.Fatal(err)
	}
	return ext
}

// TestMergeErrors: layers whose data cannot be referenced in place are
// refused with an error naming the layer and the file.
func TestMergeErrors(t *testing.T) {
	plain := build(t, erofs.WriterOptions{NoInlineData: true}, func(w *erofs.Writer) error {
		return w.Add(file("ok", 5000), bytes.NewReader(make([]byte, 5000)))
	})
	inline := build(t, erofs.WriterOptions{}, func(w *erofs.Writer) error {
		return w.Add(file("etc/tail", 5000), bytes.NewReader(make([]byte, 5000)))
	})
	compressed := build(t, erofs.WriterOptions{NoInlineData: true, Compression: &erofs.Compression{Algorithm: "lz4"}}, func(w *erofs.Writer) error {
		return w.Add(file("z", 20000), bytes.NewReader(bytes.Repeat([]byte("abc"), 20000/3+1)[:20000]))
	})
	onPrimary := build(t, erofs.WriterOptions{NoInlineData: true, Devices: []erofs.SuperblockDevice{{Blocks: 10}}}, func(w *erofs.Writer) error {
		if err := w.AddChunks(file("tar", 100), erofs.ChunkedFile{ChunkSize: 4096, Chunks: []erofs.Chunk{{Device: 1, Block: 2}}}); err != nil {
			return err
		}
		return w.AddChunks(file("here", 100), erofs.ChunkedFile{ChunkSize: 4096, Chunks: []erofs.Chunk{{Device: 0, Block: 0}}})
	})
	twoDevs := build(t, erofs.WriterOptions{Devices: []erofs.SuperblockDevice{{Blocks: 1}, {Blocks: 1}}}, func(*erofs.Writer) error { return nil })
	for _, c := range []struct {
		name   string
		layers [][]byte
		want   []string
		is     error
	}{
		{"inline", [][]byte{plain, inline}, []string{"layer2", "etc/tail", "inline tail"}, erofs.ErrNotBlockAddressed},
		{"compressed", [][]byte{compressed, plain}, []string{"layer1", "file z", "compressed"}, erofs.ErrNotBlockAddressed},
		{"primary", [][]byte{onPrimary}, []string{"layer1", "file here", "device 0"}, nil},
		{"devices", [][]byte{plain, twoDevs}, []string{"layer2", "2 extra devices"}, nil},
		{"not erofs", [][]byte{plain, make([]byte, 8192)}, []string{"layer2"}, erofs.ErrNotEROFS},
	} {
		t.Run(c.name, func(t *testing.T) {
			var ls []rebuild.Layer
			for i, l := range c.layers {
				ls = append(ls, rebuild.Layer{Name: fmt.Sprintf("layer%d", i+1), Image: bytes.NewReader(l)})
			}
			_, err := rebuild.Merge(&memImage{}, ls, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if c.is != nil && !errors.Is(err, c.is) {
				t.Errorf("error %q does not match %v", err, c.is)
			}
		})
	}
	if _, err := rebuild.Merge(&memImage{}, nil, nil); err == nil {
		t.Error("no layers: no error")
	}
}

// TestGoldenMkfsTarIndex merges the tar-index layers mkfs.erofs --tar=i
// made (testdata/gen.sh): the tar-index form (the tars are the devices)
// and the appended form (each tar appended to its index, which is then
// the device) give the tree of mkfs.erofs's rebuild mode over the same
// layers, and the same device tags and sizes for the tars.
func TestGoldenMkfsTarIndex(t *testing.T) {
	ai, bi := readFile(t, "a.erofs"), readFile(t, "b.erofs")
	at, bt := readFile(t, "a.tar"), readFile(t, "b.tar")
	golden := readTree(t, readFile(t, "merged-tarindex.erofs"), at, bt)
	if golden["etc/x"].data != "upper\n" || golden["etc/new"].data != "new file\n" {
		t.Fatalf("golden tree: %v", golden)
	}
	img, res := merge(t, ai, bi)
	ours := readTree(t, img, at, bt)
	root := golden["."]
	root.mode, root.mtime = ours["."].mode, ours["."].mtime
	golden["."] = root
	compareTrees(t, golden, ours)
	mk, err := erofs.Open(bytes.NewReader(readFile(t, "merged-tarindex.erofs")), erofs.WithDevices(bytes.NewReader(at), bytes.NewReader(bt)))
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range mk.Superblock().Devices {
		if got := res.Devices[i]; got.Tag != d.Tag || got.Blocks != d.Blocks {
			t.Errorf("device %d: tag %q, %d blocks; mkfs.erofs: %q, %d", i+1, got.Tag, got.Blocks, d.Tag, d.Blocks)
		}
	}

	// Each tar appended to its index, which holds the tar at the
	// device's unified address: the layers are their own devices.
	aa, ba := append(slices.Clone(ai), at...), append(slices.Clone(bi), bt...)
	img, res = merge(t, aa, ba)
	compareTrees(t, golden, readTree(t, img, aa, ba))
	for i, l := range [][]byte{aa, ba} {
		if d := res.Devices[i]; d.Blocks != uint64(len(l)/512) {
			t.Errorf("appended layer %d: device of %d blocks, want %d", i+1, d.Blocks, len(l)/512)
		}
	}
}

func dir(p string, mode uint32, uid uint32, x map[string]string) *erofs.Entry {
	return &erofs.Entry{Path: p, Mode: erofs.ModeDir | mode, UID: uid, ModTime: mtime, Xattrs: x}
}

// addFile adds a regular file holding data.
func addFile(w *erofs.Writer, p, data string) error {
	return w.Add(file(p, len(data)), strings.NewReader(data))
}

// TestMergeMiddleLayers: what a middle layer does to the layers below a
// path an upper directory has too: a non-directory or a whiteout there
// hides the lower directory's entries, as does an opaque directory; a
// directory an upper layer only implies keeps the metadata of the
// directory below it.
func TestMergeMiddleLayers(t *testing.T) {
	noinline := erofs.WriterOptions{NoInlineData: true}
	l1 := build(t, noinline, func(w *erofs.Writer) error {
		for _, p := range []string{"d", "e", "o", "n"} {
			if err := w.Add(dir(p, 0o755, 0, nil), nil); err != nil {
				return err
			}
			if err := addFile(w, p+"/a", "a in "+p); err != nil {
				return err
			}
		}
		if err := w.Add(dir("p", 0o700, 5, map[string]string{"user.x": "1"}), nil); err != nil {
			return err
		}
		return addFile(w, "p/a", "pa")
	})
	l2 := build(t, noinline, func(w *erofs.Writer) error {
		if err := addFile(w, "d", "now a file"); err != nil {
			return err
		}
		if err := w.Add(&erofs.Entry{Path: "e", Mode: erofs.ModeCharDevice, ModTime: mtime}, nil); err != nil {
			return err
		}
		if err := w.Add(dir("o", 0o755, 0, map[string]string{"trusted.overlay.opaque": "y"}), nil); err != nil {
			return err
		}
		if err := addFile(w, "o/b", "ob"); err != nil {
			return err
		}
		if err := addFile(w, "n/b", "nb"); err != nil { // n implied
			return err
		}
		return addFile(w, "p/b", "pb") // p implied
	})
	l3 := build(t, noinline, func(w *erofs.Writer) error {
		for _, p := range []string{"d", "e", "o", "n"} {
			if err := w.Add(dir(p, 0o750, 7, nil), nil); err != nil {
				return err
			}
			if err := addFile(w, p+"/c", "c in "+p); err != nil {
				return err
			}
		}
		return addFile(w, "p/c", "pc") // p implied again
	})
	img, _ := merge(t, l1, l2, l3)
	tree := readTree(t, img, l1, l2, l3)
	var got []string
	for p := range tree {
		got = append(got, p)
	}
	slices.Sort(got)
	want := []string{".", "d", "d/c", "e", "e/c", "n", "n/a", "n/b", "n/c", "o", "o/b", "o/c", "p", "p/a", "p/b", "p/c"}
	if !slices.Equal(got, want) {
		t.Errorf("paths %q, want %q", got, want)
	}
	if p := tree["p"]; p.mode != erofs.ModeDir|0o700 || p.uid != 5 || p.xattrs["user.x"] != "1" {
		t.Errorf("p: %v, want the lowest layer's metadata (the upper ones only imply it)", p)
	}
	if o := tree["o"]; o.mode != erofs.ModeDir|0o750 || o.uid != 7 || len(o.xattrs) != 0 {
		t.Errorf("o: %v, want the top layer's metadata and no overlayfs xattrs", o)
	}
	if c := tree["o/c"].data; c != "c in o" {
		t.Errorf("o/c: %q", c)
	}
}

// TestMerge48BitAddresses: a layer's chunks past 2^32 blocks of its tar
// (48-bit chunk addresses) keep their addresses in the merged image.
func TestMerge48BitAddresses(t *testing.T) {
	const far = 1<<33 + 5
	idx := build(t, erofs.WriterOptions{BlockSize: 512, Devices: []erofs.SuperblockDevice{{Tag: "big", Blocks: 1 << 34}}}, func(w *erofs.Writer) error {
		return w.AddChunks(file("far", 1000), erofs.ChunkedFile{ChunkSize: 1024, Chunks: []erofs.Chunk{{Device: 1, Block: far}}})
	})
	img, _ := merge(t, idx)
	meta, err := erofs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	want := []erofs.DataExtent{{Len: 1000, Device: 1, Block: far}}
	if ext := extents(t, meta, "far"); fmt.Sprint(ext) != fmt.Sprint(want) {
		t.Errorf("far: extents %v, want %v", ext, want)
	}
}
