package erofs_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	goerofs "github.com/erofs/go-erofs"

	"github.com/rafs-dev/rafs/erofs"
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

// item is one entry of a test tree with its content.
type item struct {
	e    erofs.Entry
	data string
	link string // hard link target instead of an entry
}

func build(t testing.TB, opts *erofs.WriterOptions, items []item) []byte {
	t.Helper()
	img := &memImage{}
	w, err := erofs.NewWriter(img, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.link != "" {
			if err := w.Link(it.e.Path, it.link); err != nil {
				t.Fatal(err)
			}
			continue
		}
		e := it.e
		if e.Mode&erofs.ModeTypeMask == erofs.ModeRegular {
			e.Size = int64(len(it.data))
		}
		if err := w.Add(&e, strings.NewReader(it.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if int64(len(img.b)) != w.Size() {
		t.Fatalf("image is %d bytes, Size says %d", len(img.b), w.Size())
	}
	return img.b
}

// got is what a reader reports for one path.
type got struct {
	mode     uint32
	uid, gid uint32
	mtime    int64
	nsec     uint32
	size     int64
	data     string
	link     string
	rdev     uint32
	nlink    int
	ino      int64
	layout   uint8
	xattrs   map[string]string
}

func unixMode(m fs.FileMode) uint32 {
	u := uint32(m.Perm())
	switch {
	case m&fs.ModeDir != 0:
		u |= erofs.ModeDir
	case m&fs.ModeSymlink != 0:
		u |= erofs.ModeSymlink
	case m&fs.ModeCharDevice != 0:
		u |= erofs.ModeCharDevice
	case m&fs.ModeDevice != 0:
		u |= erofs.ModeBlockDevice
	case m&fs.ModeNamedPipe != 0:
		u |= erofs.ModeFIFO
	case m&fs.ModeSocket != 0:
		u |= erofs.ModeSocket
	default:
		u |= erofs.ModeRegular
	}
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// readGoErofs reads every entry of an image with github.com/erofs/go-erofs.
func readGoErofs(t testing.TB, img []byte) map[string]got {
	t.Helper()
	fsys, err := goerofs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("go-erofs: open: %v", err)
	}
	out := map[string]got{}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*goerofs.Stat)
		g := got{
			mode: unixMode(st.Mode), uid: st.UID, gid: st.GID, mtime: int64(st.Mtime), nsec: st.MtimeNs,
			size: st.Size, rdev: st.Rdev, nlink: st.Nlink, ino: st.Ino, layout: st.InodeLayout, xattrs: st.Xattrs,
		}
		switch {
		case d.Type().IsRegular():
			b, err := fs.ReadFile(fsys, p)
			if err != nil {
				return err
			}
			g.data = string(b)
		case d.Type()&fs.ModeSymlink != 0:
			g.link, err = fsys.(interface{ ReadLink(string) (string, error) }).ReadLink(p)
			if err != nil {
				return err
			}
		}
		out[p] = g
		return nil
	})
	if err != nil {
		t.Fatalf("go-erofs: walk: %v", err)
	}
	return out
}

func mt(sec int64, nsec int) time.Time { return time.Unix(sec, int64(nsec)) }

// sampleTree covers every object type, the inline/plain size boundaries,
// hard links, xattrs (shared, long-prefixed, binary), big and
// many-entry directories, and owners and times that need extended inodes.
func sampleTree() []item {
	reg := func(p string, mode uint32, data string) item {
		return item{e: erofs.Entry{Path: p, Mode: erofs.ModeRegular | mode, ModTime: mt(0, 0)}, data: data}
	}
	items := []item{
		{e: erofs.Entry{Path: ".", Mode: erofs.ModeDir | 0o755, UID: 1, GID: 2, ModTime: mt(1700000000, 0)}},
		reg("empty", 0o644, ""),
		reg("one", 0o600, "x"),
		reg("b4095", 0o644, strings.Repeat("a", 4095)),
		reg("b4096", 0o644, strings.Repeat("b", 4096)),
		reg("b4097", 0o644, strings.Repeat("c", 4097)),
		reg("b10000", 0o4755, strings.Repeat("0123456789", 1000)),
		{e: erofs.Entry{Path: "owner", Mode: erofs.ModeRegular | 0o640, UID: 100000, GID: 70000, ModTime: mt(-86400, 123456789)}, data: "big ids"},
		{e: erofs.Entry{Path: "dir/sub/file", Mode: erofs.ModeRegular | 0o644, ModTime: mt(1234567890, 999999999)}, data: "nested"},
		{e: erofs.Entry{Path: "dir", Mode: erofs.ModeDir | 0o1777, ModTime: mt(5, 0)}},
		{e: erofs.Entry{Path: "link", Mode: erofs.ModeSymlink | 0o777, Linkname: "dir/sub/file"}},
		{e: erofs.Entry{Path: "longlink", Mode: erofs.ModeSymlink | 0o777, Linkname: strings.Repeat("l/", 2047) + "x"}},
		{e: erofs.Entry{Path: "chr", Mode: erofs.ModeCharDevice | 0o620, Devmajor: 4, Devminor: 1}},
		{e: erofs.Entry{Path: "blk", Mode: erofs.ModeBlockDevice | 0o660, Devmajor: 259, Devminor: 1048575}},
		{e: erofs.Entry{Path: "fifo", Mode: erofs.ModeFIFO | 0o644}},
		{e: erofs.Entry{Path: "sock", Mode: erofs.ModeSocket | 0o755}},
		{e: erofs.Entry{Path: "whiteout", Mode: erofs.ModeCharDevice}},
		{e: erofs.Entry{Path: "hard1"}, link: "one"},
		{e: erofs.Entry{Path: "dir/hard2"}, link: "hard1"},
		{e: erofs.Entry{Path: "hardchr"}, link: "chr"},
		{e: erofs.Entry{Path: "hardlink2sym"}, link: "link"},
		{e: erofs.Entry{Path: "x/attrs", Mode: erofs.ModeRegular | 0o644, Xattrs: map[string]string{
			"user.a": "1", "trusted.overlay.opaque": "y", "security.capability": "\x01\x00\x00\x02\x00\x30\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
			"user.empty": "", "user.bin": "\x00\xff\x00",
		}}, data: strings.Repeat("t", 3000)},
	}
	for i := 0; i < 5; i++ {
		items = append(items, item{e: erofs.Entry{Path: fmt.Sprintf("x/shared%d", i), Mode: erofs.ModeRegular | 0o644,
			Xattrs: map[string]string{"user.shared.common": "same value", "trusted.overlay.redirect": fmt.Sprintf("/r%d", i)}}, data: "s"})
	}
	for i := 0; i < 600; i++ {
		items = append(items, reg(fmt.Sprintf("many/entry-with-a-longish-name-%04d", i), 0o644, strings.Repeat("m", i%50)))
	}
	return items
}

// expected computes what reading sampleTree back must give, for the fields
// the test checks.
func checkTree(t *testing.T, items []item, r map[string]got, opts *erofs.WriterOptions) {
	t.Helper()
	paths := map[string]item{}
	for _, it := range items {
		p := strings.TrimPrefix(it.e.Path, "./")
		if p == "" {
			p = "."
		}
		if it.link != "" {
			it = paths[it.link]
		}
		paths[p] = it
	}
	for p, it := range paths {
		g, ok := r[p]
		if !ok {
			t.Errorf("%s: missing", p)
			continue
		}
		e := it.e
		if g.mode != e.Mode {
			t.Errorf("%s: mode %#o, want %#o", p, g.mode, e.Mode)
		}
		if g.uid != e.UID || g.gid != e.GID {
			t.Errorf("%s: owner %d:%d, want %d:%d", p, g.uid, g.gid, e.UID, e.GID)
		}
		wantSec, wantNsec := opts.BuildTime, uint32(0)
		if !e.ModTime.IsZero() {
			wantSec, wantNsec = e.ModTime.Unix(), uint32(e.ModTime.Nanosecond())
		}
		if g.mtime != wantSec || g.nsec != wantNsec {
			t.Errorf("%s: mtime %d.%09d, want %d.%09d", p, g.mtime, g.nsec, wantSec, wantNsec)
		}
		switch e.Mode & erofs.ModeTypeMask {
		case erofs.ModeRegular:
			if g.data != it.data {
				t.Errorf("%s: content differs (%d bytes, want %d)", p, len(g.data), len(it.data))
			}
		case erofs.ModeSymlink:
			if g.link != e.Linkname {
				t.Errorf("%s: link %q, want %q", p, g.link, e.Linkname)
			}
		case erofs.ModeCharDevice, erofs.ModeBlockDevice:
			want := e.Devminor&0xff | e.Devmajor<<8 | (e.Devminor&^0xff)<<12
			if g.rdev != want {
				t.Errorf("%s: rdev %#x, want %#x", p, g.rdev, want)
			}
		}
		for k, v := range e.Xattrs {
			if g.xattrs[k] != v {
				t.Errorf("%s: xattr %s = %q, want %q", p, k, g.xattrs[k], v)
			}
		}
		if len(g.xattrs) != len(e.Xattrs) && e.Mode&erofs.ModeTypeMask != erofs.ModeDir {
			t.Errorf("%s: %d xattrs, want %d: %v", p, len(g.xattrs), len(e.Xattrs), g.xattrs)
		}
	}
	for p := range r {
		if _, ok := paths[p]; !ok && !strings.HasPrefix(p, "dir") && p != "x" && p != "many" {
			t.Errorf("%s: unexpected entry", p)
		}
	}
	// Hard links share an inode and count their names.
	for _, group := range [][]string{{"one", "hard1", "dir/hard2"}, {"chr", "hardchr"}, {"link", "hardlink2sym"}} {
		for _, p := range group {
			if r[p].ino != r[group[0]].ino {
				t.Errorf("%s: inode %d, want %d as %s", p, r[p].ino, r[group[0]].ino, group[0])
			}
			if r[p].nlink != len(group) {
				t.Errorf("%s: nlink %d, want %d", p, r[p].nlink, len(group))
			}
		}
	}
	if r["."].nlink != 2+3 || r["many"].nlink != 2 {
		t.Errorf("directory nlink: root %d (want 5), many %d (want 2)", r["."].nlink, r["many"].nlink)
	}
}

func TestWriterRoundTripGoErofs(t *testing.T) {
	for _, bs := range []int{512, 1024, 2048, 4096} {
		for _, inline := range []bool{true, false} {
			t.Run(fmt.Sprintf("bs%d-inline%v", bs, inline), func(t *testing.T) {
				opts := &erofs.WriterOptions{BlockSize: bs, NoInlineData: !inline}
				items := sampleTree()
				img := build(t, opts, items)
				checkSuperblock(t, img, bs)
				checkTree(t, items, readGoErofs(t, img), opts)
			})
		}
	}
}

// checkSuperblock verifies magic, block size and the checksum
// independently of the package.
func checkSuperblock(t *testing.T, img []byte, bs int) {
	t.Helper()
	sb := img[1024:]
	if binary.LittleEndian.Uint32(sb) != erofs.Magic {
		t.Fatalf("bad magic")
	}
	if 1<<sb[12] != bs {
		t.Fatalf("blkszbits %d, want block size %d", sb[12], bs)
	}
	n := bs - 1024
	if bs <= 1024 {
		n = bs
	}
	b := append([]byte(nil), img[1024:1024+n]...)
	want := binary.LittleEndian.Uint32(b[4:])
	binary.LittleEndian.PutUint32(b[4:], 0)
	if got := ^crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)); got != want {
		t.Fatalf("superblock checksum %#x, computed %#x", want, got)
	}
	if blocks := binary.LittleEndian.Uint32(sb[0x24:]); int(blocks)*bs != len(img) {
		t.Fatalf("superblock says %d blocks, image has %d bytes", blocks, len(img))
	}
}

func TestWriterDeterministic(t *testing.T) {
	a := build(t, nil, sampleTree())
	b := build(t, nil, sampleTree())
	if !bytes.Equal(a, b) {
		t.Fatal("two builds of the same tree differ")
	}
	items := sampleTree()
	items[2].data = "y" // same size, other content
	c := build(t, nil, items)
	if bytes.Equal(a[0x430:0x440], c[0x430:0x440]) {
		t.Fatal("different content gave the same derived UUID")
	}
	id := [16]byte{1, 2, 3}
	d := build(t, &erofs.WriterOptions{UUID: &id}, sampleTree())
	if !bytes.Equal(d[0x430:0x440], id[:]) {
		t.Fatal("UUID option not written")
	}
}

// TestWriterFeatureBits checks that only used features are flagged.
func TestWriterFeatureBits(t *testing.T) {
	plain := build(t, nil, []item{{e: erofs.Entry{Path: "f", Mode: erofs.ModeRegular | 0o644}, data: "hi"}})
	compat := binary.LittleEndian.Uint32(plain[1024+8:])
	incompat := binary.LittleEndian.Uint32(plain[1024+0x50:])
	if compat != 0x3 || incompat != 0 {
		t.Errorf("image without xattrs: compat %#x incompat %#x, want 0x3 and 0", compat, incompat)
	}
	x := build(t, nil, sampleTree())
	compat = binary.LittleEndian.Uint32(x[1024+8:])
	incompat = binary.LittleEndian.Uint32(x[1024+0x50:])
	if compat&0x4 == 0 {
		t.Errorf("image with xattrs lacks the xattr filter bit: compat %#x", compat)
	}
	if incompat&^0x40 != 0 {
		t.Errorf("unexpected incompat bits %#x", incompat)
	}
}

// TestWriterCompactInodes checks the inode size choice through the layout:
// entries at the build time with small ids fit 32-byte inodes.
func TestWriterCompactInodes(t *testing.T) {
	var items []item
	for i := 0; i < 1000; i++ {
		items = append(items, item{e: erofs.Entry{Path: fmt.Sprintf("f%03d", i), Mode: erofs.ModeFIFO | 0o644, ModTime: mt(42, 0)}})
	}
	compact := build(t, &erofs.WriterOptions{BuildTime: 42}, items)
	extended := build(t, &erofs.WriterOptions{BuildTime: 41}, items)
	for _, img := range [][]byte{compact, extended} {
		for p, g := range readGoErofs(t, img) {
			if p != "." && g.mtime != 42 {
				t.Errorf("%s: mtime %d, want 42", p, g.mtime)
			}
		}
	}
	// 1001 inodes of 32 bytes take 8 blocks; of 64 bytes, 16.
	if len(extended)-len(compact) < 7*4096 {
		t.Errorf("compact image %d bytes, extended %d: compact inodes not used", len(compact), len(extended))
	}
}

// TestWriterPacksMetadata checks that inode records with inline tails are
// packed largest first: in walk order, a and b (2048-byte records) would
// each take a block of their own besides the root's, and c and d
// (3072-byte records) one each, five blocks with the superblock's; largest
// first, c joins the root, a and b share a block, four in all.
func TestWriterPacksMetadata(t *testing.T) {
	items := []item{
		{e: erofs.Entry{Path: "a", Mode: erofs.ModeRegular | 0o644, ModTime: mt(42, 0)}, data: strings.Repeat("a", 2048-32)},
		{e: erofs.Entry{Path: "b", Mode: erofs.ModeRegular | 0o644, ModTime: mt(42, 0)}, data: strings.Repeat("b", 2048-32)},
		{e: erofs.Entry{Path: "c", Mode: erofs.ModeRegular | 0o644, ModTime: mt(42, 0)}, data: strings.Repeat("c", 3072-32)},
		{e: erofs.Entry{Path: "d", Mode: erofs.ModeRegular | 0o644, ModTime: mt(42, 0)}, data: strings.Repeat("d", 3072-32)},
	}
	img := build(t, &erofs.WriterOptions{BuildTime: 42}, items)
	if len(img) != 4*4096 {
		t.Errorf("image of %d blocks, want 4", len(img)/4096)
	}
	r := readGoErofs(t, img)
	for _, it := range items {
		if g := r[it.e.Path]; g.data != it.data {
			t.Errorf("%s: %d bytes read back, want %d", it.e.Path, len(g.data), len(it.data))
		}
	}
	f, err := erofs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	if nid := f.Superblock().RootNid; nid != 0 {
		t.Errorf("root NID %d, want 0: the root goes first", nid)
	}
}

func TestWriterDuplicates(t *testing.T) {
	items := []item{
		{e: erofs.Entry{Path: "a", Mode: erofs.ModeRegular | 0o644}, data: "first"},
		{e: erofs.Entry{Path: "keep"}, link: "a"},
		{e: erofs.Entry{Path: "a", Mode: erofs.ModeRegular | 0o600}, data: "second"},
		{e: erofs.Entry{Path: "d/x", Mode: erofs.ModeRegular | 0o644}, data: "x"},
		{e: erofs.Entry{Path: "d", Mode: erofs.ModeDir | 0o700, UID: 5}},
		{e: erofs.Entry{Path: "f/y", Mode: erofs.ModeRegular | 0o644}, data: "y"},
		{e: erofs.Entry{Path: "f", Mode: erofs.ModeRegular | 0o644}, data: "now a file"},
	}
	r := readGoErofs(t, build(t, nil, items))
	if r["a"].data != "second" || r["a"].mode != erofs.ModeRegular|0o600 || r["a"].nlink != 1 {
		t.Errorf("a: %+v, want the second entry", r["a"])
	}
	if r["keep"].data != "first" {
		t.Errorf("keep: %q, want the hard link to keep the first content", r["keep"].data)
	}
	if r["d/x"].data != "x" || r["d"].mode != erofs.ModeDir|0o700 || r["d"].uid != 5 {
		t.Errorf("directory merge lost children or metadata: d=%+v d/x=%+v", r["d"], r["d/x"])
	}
	if _, ok := r["f/y"]; ok || r["f"].data != "now a file" {
		t.Errorf("a file over a directory must drop the directory's subtree")
	}
}

func TestWriterErrors(t *testing.T) {
	bad := []erofs.Entry{
		{Path: "/abs", Mode: erofs.ModeRegular},
		{Path: "a/../b", Mode: erofs.ModeRegular},
		{Path: strings.Repeat("n", 256), Mode: erofs.ModeRegular},
		{Path: "x", Mode: erofs.ModeRegular, Xattrs: map[string]string{"user.big": strings.Repeat("v", 65536)}},
		{Path: "x", Mode: erofs.ModeRegular, Xattrs: map[string]string{"unknown.ns": "v"}},
		{Path: "x", Mode: erofs.ModeSymlink},
		{Path: "x", Mode: erofs.ModeCharDevice, Devmajor: 4096},
		{Path: "x", Mode: 0o644},
		{Path: ".", Mode: erofs.ModeRegular},
	}
	for _, e := range bad {
		w, _ := erofs.NewWriter(&memImage{}, nil)
		if err := w.Add(&e, strings.NewReader("")); err == nil {
			t.Errorf("Add(%q mode %#o): no error", e.Path, e.Mode)
		}
		w.Close()
	}
	w, _ := erofs.NewWriter(&memImage{}, nil)
	if err := w.Link("l", "missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("link to a missing target: %v", err)
	}
	err := w.Add(&erofs.Entry{Path: "short", Mode: erofs.ModeRegular, Size: 10}, strings.NewReader("abc"))
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("short data: %v, want unexpected EOF", err)
	}
	if err := w.Close(); err == nil {
		t.Error("Close after a failed Add: no error")
	}
	if _, err := erofs.NewWriter(&memImage{}, &erofs.WriterOptions{BlockSize: 3000}); err == nil {
		t.Error("block size 3000 accepted")
	}
}

// zeroReader yields n bytes of a cheap pattern.
type patternReader struct{ n, off int64 }

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.n {
		return 0, io.EOF
	}
	if int64(len(b)) > p.n-p.off {
		b = b[:p.n-p.off]
	}
	for i := range b {
		b[i] = byte((p.off + int64(i)) * 7 >> 3)
	}
	p.off += int64(len(b))
	return len(b), nil
}

// discardImage keeps only a hash of what is written sequentially past the
// header, so a large image needs no memory in the test either.
type discardImage struct{ max int64 }

func (d *discardImage) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > d.max {
		d.max = end
	}
	return len(p), nil
}

// TestWriterBoundedMemory streams a 256 MiB file and checks the heap does
// not grow with it.
func TestWriterBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 256 MiB")
	}
	const size = 256 << 20
	w, _ := erofs.NewWriter(&discardImage{}, nil)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if err := w.Add(&erofs.Entry{Path: "big", Mode: erofs.ModeRegular | 0o644, Size: size}, &patternReader{n: size}); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if grew := int64(after.TotalAlloc - before.TotalAlloc); grew > 8<<20 {
		t.Errorf("adding a %d MiB file allocated %d MiB", size>>20, grew>>20)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Size() < size {
		t.Errorf("image %d bytes, smaller than its file", w.Size())
	}
}

// TestWriterTreeModel applies a random sequence of Add, Link, Remove and
// MkdirAll calls to a Writer and to a plain map of paths, over a few
// thousand names in a few directories (names that sort before "." and
// 255-byte ones among them), with files replacing directories and back,
// and checks that the image read back holds exactly what the map does.
func TestWriterTreeModel(t *testing.T) {
	type node struct {
		dir  bool
		data string
		link string
	}
	rng := rand.New(rand.NewPCG(7, 8))
	names := []string{"a", "b", "-dash", "!bang", "..dots", ".hidden", strings.Repeat("L", 255)}
	for i := 0; i < 600; i++ {
		names = append(names, fmt.Sprintf("n%03d", i))
	}
	randPath := func() string {
		parts := make([]string, 1+rng.IntN(3))
		for i := range parts {
			switch {
			case i < len(parts)-1 || rng.IntN(100) == 0:
				parts[i] = names[rng.IntN(4)] // a directory, most of the time
			default:
				parts[i] = names[4+rng.IntN(len(names)-4)]
			}
		}
		return strings.Join(parts, "/")
	}
	model := map[string]*node{}
	// parentsOK reports whether every parent of p is a directory or
	// missing, and creates the missing ones.
	parentsOK := func(p string, create bool) bool {
		for i := 0; i < len(p); i++ {
			if p[i] != '/' {
				continue
			}
			if n := model[p[:i]]; n != nil && !n.dir {
				return false
			}
		}
		for i := 0; create && i < len(p); i++ {
			if p[i] == '/' && model[p[:i]] == nil {
				model[p[:i]] = &node{dir: true}
			}
		}
		return true
	}
	drop := func(p string) {
		delete(model, p)
		for q := range model {
			if strings.HasPrefix(q, p+"/") {
				delete(model, q)
			}
		}
	}
	img := &memImage{}
	w, err := erofs.NewWriter(img, nil)
	if err != nil {
		t.Fatal(err)
	}
	for op := 0; op < 6000; op++ {
		p := randPath()
		switch k := rng.IntN(10); {
		case k < 5: // a file, a symlink or a directory
			e := &erofs.Entry{Path: p, Mode: erofs.ModeRegular | 0o644}
			var n *node
			switch rng.IntN(3) {
			case 0:
				n = &node{data: fmt.Sprintf("data %d", op)}
				e.Size = int64(len(n.data))
			case 1:
				n = &node{link: fmt.Sprintf("target-%d", op)}
				e.Mode, e.Linkname = erofs.ModeSymlink|0o777, n.link
			default:
				n = &node{dir: true}
				e.Mode = erofs.ModeDir | 0o755
			}
			want := parentsOK(p, false)
			err := w.Add(e, strings.NewReader(n.data))
			if (err == nil) != want {
				t.Fatalf("op %d: Add %q: %v, want error %v", op, p, err, !want)
			}
			if want {
				parentsOK(p, true)
				if old := model[p]; !(old != nil && old.dir && n.dir) {
					drop(p)
					model[p] = n
				}
			}
		case k < 7: // a hard link to an existing non-directory
			var target string
			for try := 0; try < 20 && target == ""; try++ {
				if q := randPath(); model[q] != nil && !model[q].dir {
					target = q
				}
			}
			if target == "" || strings.HasPrefix(p, target+"/") || p == target {
				continue
			}
			want := parentsOK(p, false)
			err := w.Link(p, target)
			if (err == nil) != want {
				t.Fatalf("op %d: Link %q to %q: %v, want error %v", op, p, target, err, !want)
			}
			if want {
				parentsOK(p, true)
				n := model[target]
				drop(p)
				model[p] = n
			}
		case k < 8:
			if err := w.Remove(p); err != nil {
				t.Fatal(err)
			}
			drop(p)
		default:
			want := parentsOK(p+"/x", false)
			if n := model[p]; n != nil && !n.dir {
				want = false
			}
			err := w.MkdirAll(p)
			if (err == nil) != want {
				t.Fatalf("op %d: MkdirAll %q: %v, want error %v", op, p, err, !want)
			}
			if want {
				parentsOK(p+"/x", true)
			}
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := readGoErofs(t, img.b)
	inos := map[*node]int64{}
	links := map[*node]int{}
	for _, n := range model {
		links[n]++
	}
	for p, n := range model {
		g, ok := r[p]
		if !ok {
			t.Errorf("%s: missing", p)
			continue
		}
		switch {
		case n.dir && g.mode&erofs.ModeTypeMask != erofs.ModeDir,
			n.link != "" && g.link != n.link,
			!n.dir && n.link == "" && g.data != n.data:
			t.Errorf("%s: %+v, want %+v", p, g, *n)
		}
		if !n.dir {
			if ino, ok := inos[n]; ok && ino != g.ino {
				t.Errorf("%s: inode %d, want %d as its other names", p, g.ino, ino)
			}
			inos[n] = g.ino
			if g.nlink != links[n] {
				t.Errorf("%s: nlink %d, want %d", p, g.nlink, links[n])
			}
		}
	}
	for p := range r {
		if _, ok := model[p]; !ok && p != "." {
			t.Errorf("%s: in the image, not in the model", p)
		}
	}
	if len(model) < 1000 {
		t.Errorf("the model ended with %d entries; the test should make more", len(model))
	}
}
