package erofs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/iotest"
)

// Tests of compressed inodes against the z-*.erofs and zbig-*.erofs golden
// images (testdata/mkgolden.py; mkgolden.py also checked every file of
// every image against the source tree through a kernel mount).

// goldenLCG is the linear congruential generator of mkgolden.py.
func goldenLCG(x uint32) uint32 { return x*1103515245 + 12345 }

// goldenRnd is mkgolden.py's rnd: incompressible bytes.
func goldenRnd(seed uint32, n int) []byte {
	b := make([]byte, n)
	x := seed
	for i := range b {
		x = goldenLCG(x)
		b[i] = byte(x >> 24)
	}
	return b
}

// goldenText is mkgolden.py's text: log-like lines.
func goldenText(seed uint32, n int) []byte {
	words := []string{"alpha", "beta", "gamma", "delta", "mount", "inode", "block", "extent"}
	var b bytes.Buffer
	x := seed
	for line := 0; b.Len() < n; line++ {
		x = goldenLCG(x)
		fmt.Fprintf(&b, "line %d: the %s %s is ok\n", line, words[(x>>16)%8], words[(x>>20)%8])
	}
	return b.Bytes()[:n]
}

func concat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// zTree is the expected content of a compressed golden tree.
type zTree struct {
	files    map[string][]byte
	symlinks map[string]string
	hardlink [][2]string // pairs of paths of one inode
}

func zsmallTree() zTree {
	t := zTree{files: map[string][]byte{}, symlinks: map[string]string{}}
	t.files["empty"] = nil
	t.files["one"] = goldenContent(1, 1)
	for _, n := range []int{4095, 4096, 4097, 65535, 65536, 65537} {
		t.files[fmt.Sprintf("f%d", n)] = goldenContent(n%251, n)
	}
	t.files["r4096"] = goldenRnd(1, 4096)
	t.files["r4097"] = goldenRnd(2, 4097)
	t.files["zeros"] = make([]byte, 100000)
	t.files["text"] = goldenText(1, 16000)
	t.files["hard"] = t.files["text"]
	t.files["mixed"] = concat(goldenText(2, 6000), goldenRnd(3, 3000), make([]byte, 20000), goldenContent(4, 10000), goldenRnd(5, 1000))
	t.files["d/small"] = goldenContent(6, 100)
	a := goldenText(7, 16000)
	t.files["d/dupA"] = a
	t.files["d/dupB"] = concat(a[:8000], goldenContent(8, 100), a[8000:])
	t.symlinks["sym"] = "text"
	t.symlinks["symlong"] = "d/" + strings.Repeat("x", 298)
	t.hardlink = [][2]string{{"text", "hard"}}
	return t
}

func zbigTree() zTree {
	t := zTree{files: map[string][]byte{}, symlinks: map[string]string{}}
	t.files["text"] = goldenText(1, 128<<10)
	var big []byte
	for k := range 48 {
		switch k % 4 {
		case 0:
			big = append(big, goldenText(uint32(100+k), 8192)...)
			big = append(big, make([]byte, 65536-8192)...)
		case 1:
			big = append(big, make([]byte, 65536)...)
		case 2:
			big = append(big, goldenContent(k, 65536)...)
		default:
			big = append(big, goldenRnd(uint32(k), 1024)...)
			big = append(big, goldenContent(k, 65536-1024)...)
		}
	}
	t.files["big"] = big
	t.files["big2"] = big
	t.files["tail"] = concat(goldenRnd(9, 100), goldenText(10, 5000))
	t.hardlink = [][2]string{{"big", "big2"}}
	return t
}

func zseedTree() zTree {
	t := zTree{files: map[string][]byte{}, symlinks: map[string]string{"sym": "text"}}
	t.files["text"] = goldenText(11, 3000)
	t.files["pat"] = goldenContent(12, 1500)
	t.files["rnd"] = concat(goldenRnd(13, 600), goldenText(14, 700))
	t.files["zeros"] = make([]byte, 5000)
	t.files["small"] = []byte("tiny\n")
	return t
}

// zGoldenImage is one compressed golden image: its name, its tree (big,
// seed, share, seedShare) and the layout of its compressed files (0:
// either compressed layout).
type zGoldenImage struct {
	name      string
	big       bool
	seed      bool
	share     bool
	seedShare bool
	layout    uint8
}

// zGoldens lists the compressed golden images.
func zGoldens() []zGoldenImage {
	var list []zGoldenImage
	for _, alg := range []string{"lz4", "lz4hc", "lzma", "deflate", "zstd"} {
		for _, pc := range []string{"", "-64k"} {
			for _, zt := range []string{"", "-zt"} {
				list = append(list, zGoldenImage{name: "z-" + alg + pc + zt + ".erofs", layout: LayoutCompressedCompact})
			}
		}
	}
	list = append(list,
		zGoldenImage{name: "z-lz4-legacy.erofs", layout: LayoutCompressedFull},
		zGoldenImage{name: "z-lzma-64k-legacy.erofs", layout: LayoutCompressedFull},
		zGoldenImage{name: "z-lz4hc-frag.erofs"},
		zGoldenImage{name: "z-zstd-allfrag.erofs", layout: LayoutCompressedFull},
		zGoldenImage{name: "z-deflate-frag-zt.erofs"},
		zGoldenImage{name: "z-lz4-dedupe.erofs"},
		zGoldenImage{name: "z-zstd-dedupe.erofs"},
		zGoldenImage{name: "z-lz4-b512.erofs", layout: LayoutCompressedCompact},
		zGoldenImage{name: "z-lzma-b1024.erofs", layout: LayoutCompressedCompact},
		zGoldenImage{name: "z-zstd-b512-zt.erofs", layout: LayoutCompressedCompact},
		zGoldenImage{name: "zseed-lz4.erofs", seed: true, layout: LayoutCompressedCompact},
		zGoldenImage{name: "zseed-lzma.erofs", seed: true},
		zGoldenImage{name: "zseed-zstd.erofs", seed: true, layout: LayoutCompressedFull},
		zGoldenImage{name: "zseed-deflate.erofs", seed: true},
		zGoldenImage{name: "zbig-lz4.erofs", big: true, layout: LayoutCompressedCompact},
		zGoldenImage{name: "zbig-lz4hc.erofs", big: true, layout: LayoutCompressedCompact},
		zGoldenImage{name: "zbig-lzma.erofs", big: true, layout: LayoutCompressedCompact},
		zGoldenImage{name: "zbig-deflate.erofs", big: true, layout: LayoutCompressedCompact},
		zGoldenImage{name: "zbig-zstd.erofs", big: true, layout: LayoutCompressedCompact},
	)
	for _, g := range zshareGoldens() {
		list = append(list, zGoldenImage{name: g.name, share: true})
	}
	for _, g := range zseedShareGoldens() {
		list = append(list, zGoldenImage{name: g.name, seedShare: true})
	}
	return list
}

func (g zGoldenImage) tree() zTree {
	if g.big {
		return zbigTree()
	}
	if g.seed {
		return zseedTree()
	}
	if g.share {
		return zshareTree()
	}
	if g.seedShare {
		return zseedShareTree()
	}
	return zsmallTree()
}

// checkZTree compares every file of f with tree.
func checkZTree(t *testing.T, f *FS, g zGoldenImage, tree zTree) {
	t.Helper()
	compressed := 0
	for name, want := range tree.files {
		fi, err := f.Stat(name)
		if err != nil {
			t.Errorf("Stat(%s): %v", name, err)
			continue
		}
		st := fi.Sys().(*Stat)
		if fi.Size() != int64(len(want)) || st.Size != int64(len(want)) {
			t.Errorf("%s: size %d, want %d", name, fi.Size(), len(want))
		}
		if st.Layout == LayoutCompressedFull || st.Layout == LayoutCompressedCompact {
			compressed++
			if g.layout != 0 && st.Layout != g.layout {
				t.Errorf("%s: layout %d, want %d", name, st.Layout, g.layout)
			}
		}
		if len(want) > 20000 {
			checkZData(t, f, name, want)
		} else {
			checkFileData(t, f, name, want)
		}
	}
	// In the dedupe images of zshare, only the files with shared data
	// are worth compressing.
	if compressed < len(tree.files)/2 && !(g.share && compressed >= 5) {
		t.Errorf("only %d of %d files are compressed", compressed, len(tree.files))
	}
	for name, target := range tree.symlinks {
		if got, err := f.ReadLink(name); err != nil || got != target {
			t.Errorf("ReadLink(%s) = %q, %v; want %q", name, got, err, target)
		}
	}
	for _, h := range tree.hardlink {
		a, b := statNid(t, f, h[0]), statNid(t, f, h[1])
		if a.nid != b.nid || a.nlink != 2 {
			t.Errorf("hard links %s, %s: nids %d, %d, nlink %d", h[0], h[1], a.nid, b.nid, a.nlink)
		}
	}
}

// checkZData checks a large file: ReadFile, sequential reads with an odd
// buffer size, and ReadAt at random offsets and around extent boundaries.
func checkZData(t *testing.T, f *FS, name string, want []byte) {
	t.Helper()
	b, err := f.ReadFile(name)
	if err != nil || !bytes.Equal(b, want) {
		t.Errorf("ReadFile(%s): %d bytes, %v: content mismatch", name, len(b), err)
		return
	}
	file, err := f.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	got, err := io.ReadAll(iotest.OneByteReader(io.LimitReader(file, 3000)))
	if err != nil || !bytes.Equal(got, want[:min(3000, len(want))]) {
		t.Errorf("%s: byte-wise reads: %v", name, err)
	}
	var buf bytes.Buffer
	if _, err := io.CopyBuffer(&buf, io.MultiReader(file), make([]byte, 7777)); err != nil || !bytes.Equal(buf.Bytes(), want[min(3000, len(want)):]) {
		t.Errorf("%s: sequential reads: %v", name, err)
	}
	ra := file.(io.ReaderAt)
	rng := rand.New(rand.NewPCG(uint64(len(want)), 7))
	offs := []int{0, len(want) - 1}
	for _, e := range extents(t, f, name) {
		offs = append(offs, int(e.off), int(e.off)-1, int(e.off+e.n)-1)
	}
	for range 50 {
		offs = append(offs, rng.IntN(len(want)))
	}
	p := make([]byte, 70000)
	for _, off := range offs {
		if off < 0 || off >= len(want) {
			continue
		}
		n := 1 + rng.IntN(len(p))
		m, err := ra.ReadAt(p[:n], int64(off))
		end := min(off+n, len(want))
		if m != end-off || !bytes.Equal(p[:m], want[off:end]) || (err != nil && err != io.EOF) {
			t.Errorf("%s: ReadAt(%d bytes at %d) = %d, %v: wrong data", name, n, off, m, err)
		}
	}
}

func TestGoldenCompressed(t *testing.T) {
	for _, g := range zGoldens() {
		t.Run(g.name, func(t *testing.T) {
			f := openGolden(t, g.name)
			tree := g.tree()
			checkZTree(t, f, g, tree)
			if err := fsTestCompressed(f, tree); err != nil {
				t.Error(err)
			}
		})
	}
}

// fsTestCompressed runs a reduced fstest-like walk: every path listed and
// opened with matching sizes.
func fsTestCompressed(f *FS, tree zTree) error {
	n := 0
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			n++
			want, ok := tree.files[p]
			if !ok {
				return fmt.Errorf("unexpected file %s", p)
			}
			info, err := d.Info()
			if err != nil || info.Size() != int64(len(want)) {
				return fmt.Errorf("%s: Info = %v, %v", p, info, err)
			}
		}
		return nil
	})
	if err == nil && n != len(tree.files) {
		err = fmt.Errorf("walk found %d files, want %d", n, len(tree.files))
	}
	return err
}

// TestCompressedFeatures checks that the golden images really exercise
// what they are meant to: superblock bits, map header advise bits and
// extent kinds.
func TestCompressedFeatures(t *testing.T) {
	type want struct {
		incompat uint32 // bits that must be set
		advise   uint16 // advise bits some inode must have
		kinds    []uint8
		partial  bool
	}
	for name, w := range map[string]want{
		"z-lz4.erofs":             {incompat: FeatureIncompatZeroPadding, advise: adviseCompacted2B, kinds: []uint8{zCompressed, zShifted}},
		"z-lz4-64k.erofs":         {incompat: FeatureIncompatBigPcluster, advise: adviseBigPcluster1 | adviseBigPcluster2},
		"z-zstd-zt.erofs":         {incompat: FeatureIncompatZtailpacking, advise: adviseInlinePcluster},
		"z-lz4hc-frag.erofs":      {incompat: FeatureIncompatFragments, advise: adviseFragmentPcluster | adviseInterlacedPcluster, kinds: []uint8{zFragment, zInterlaced}},
		"z-deflate-frag-zt.erofs": {incompat: FeatureIncompatFragments, advise: adviseFragmentPcluster, kinds: []uint8{zFragment}},
		"z-zstd-allfrag.erofs":    {incompat: FeatureIncompatFragments, kinds: []uint8{zFragment}},
		"z-lz4-dedupe.erofs":      {incompat: FeatureIncompatDedupe, partial: true},
		"z-lz4-legacy.erofs":      {kinds: []uint8{zCompressed}},
		"zbig-lzma.erofs":         {incompat: FeatureIncompatComprCfgs, advise: adviseBigPcluster1, kinds: []uint8{zCompressed}},
	} {
		t.Run(name, func(t *testing.T) {
			f := openGolden(t, name)
			if f.sb.FeatureIncompat&w.incompat != w.incompat {
				t.Errorf("incompat %#x lacks %#x", f.sb.FeatureIncompat, w.incompat)
			}
			var advise uint16
			kinds := map[uint8]bool{}
			partial := false
			fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return err
				}
				ino := statNid(t, f, p)
				if ino.layout != LayoutCompressedFull && ino.layout != LayoutCompressedCompact {
					return nil
				}
				m, err := f.newZMapper(ino)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				advise |= m.advise
				for _, e := range extents(t, f, p) {
					kinds[e.z.kind] = true
					partial = partial || e.z.partial
				}
				return nil
			})
			if advise&w.advise != w.advise {
				t.Errorf("advise bits %#x lack %#x", advise, w.advise)
			}
			for _, k := range w.kinds {
				if !kinds[k] {
					t.Errorf("no extent of kind %d (have %v)", k, kinds)
				}
			}
			if w.partial && !partial {
				t.Errorf("no partially referenced extent")
			}
		})
	}
}

// countingReaderAt counts the bytes read through it.
type countingReaderAt struct {
	r io.ReaderAt
	n atomic.Int64
}

func (c *countingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := c.r.ReadAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// TestCompressedSequentialDecodesOnce: reading a file front to back in
// small pieces reads (and so decodes) each pcluster once.
func TestCompressedSequentialDecodesOnce(t *testing.T) {
	for _, name := range []string{"zbig-lz4.erofs", "zbig-lzma.erofs", "zbig-zstd.erofs"} {
		img := loadGolden(t, name)
		cr := &countingReaderAt{r: bytes.NewReader(img)}
		f, err := Open(cr)
		if err != nil {
			t.Fatal(err)
		}
		file, err := f.Open("big")
		if err != nil {
			t.Fatal(err)
		}
		before := cr.n.Load()
		n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{file}, make([]byte, 1000))
		if err != nil || n != 48*65536 {
			t.Fatalf("%s: read %d bytes, %v", name, n, err)
		}
		// The file's pclusters plus its indexes take less than the image.
		if read := cr.n.Load() - before; read > int64(len(img)) {
			t.Errorf("%s: reading big in 1000-byte pieces read %d bytes of a %d-byte image", name, read, len(img))
		}
	}
}

// TestCompressedKernel compares the reader with the kernel's view of
// every compressed golden image. It needs root and a kernel that mounts
// EROFS image files (6.12+) with all decompressors; otherwise it skips.
func TestCompressedKernel(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount images")
	}
	dir := t.TempDir()
	for _, g := range zGoldens() {
		img := filepath.Join(dir, g.name)
		if err := os.WriteFile(img, loadGolden(t, g.name), 0o600); err != nil {
			t.Fatal(err)
		}
		mnt := filepath.Join(dir, "mnt-"+g.name)
		if err := os.Mkdir(mnt, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mount(img, mnt, "erofs", syscall.MS_RDONLY, ""); err != nil {
			t.Skipf("cannot mount %s: %v", g.name, err)
		}
		func() {
			defer syscall.Unmount(mnt, 0)
			f := openGolden(t, g.name)
			kfs := os.DirFS(mnt)
			files := 0
			err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
				if err != nil || !d.Type().IsRegular() {
					return err
				}
				files++
				ours, err := f.ReadFile(p)
				if err != nil {
					return err
				}
				theirs, err := fs.ReadFile(kfs, p)
				if err != nil {
					return err
				}
				if !bytes.Equal(ours, theirs) {
					t.Errorf("%s: %s differs from the kernel's", g.name, p)
				}
				return nil
			})
			if err != nil || files == 0 {
				t.Errorf("%s: %d files, %v", g.name, files, err)
			}
		}()
	}
}

// TestCompressedCorrupt flips bytes of compressed images' map headers,
// indexes and pclusters: every read either succeeds or fails with
// ErrCorrupt (or ErrUnsupported), without panics or hangs.
func TestCompressedCorrupt(t *testing.T) {
	names := []string{"z-lz4.erofs", "z-lz4-64k-zt.erofs", "z-lzma-64k.erofs", "z-deflate-zt.erofs", "z-zstd-64k.erofs",
		"z-lz4-legacy.erofs", "z-lz4hc-frag.erofs", "z-zstd-allfrag.erofs", "z-lz4-dedupe.erofs", "z-zstd-b512-zt.erofs",
		"zs-lzma-dedupe.erofs", "zs-deflate-dedupe-frag.erofs", "zs-lz4-frag.erofs", "zs-zstd-1m-dedupe.erofs"}
	trees := map[string]zTree{}
	for _, g := range zGoldens() {
		trees[g.name] = g.tree()
	}
	iters := 60
	if testing.Short() {
		iters = 10
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			tree, ok := trees[name]
			if !ok {
				t.Fatalf("%s is not a compressed golden image", name)
			}
			f := openGolden(t, name)
			// Targets: the metadata after each compressed file's inode
			// (map header, indexes, inline pcluster) and its pclusters.
			type target struct {
				path     string
				from, to int64
			}
			var targets []target
			for p := range tree.files {
				ino := statNid(t, f, p)
				if ino.layout != LayoutCompressedFull && ino.layout != LayoutCompressedCompact || ino.size == 0 {
					continue
				}
				meta := roundUp64(ino.metaEnd(), 8)
				targets = append(targets, target{p, meta, meta + 64})
				for _, e := range extents(t, f, p) {
					if e.z.kind != zFragment && e.z.plen > 0 {
						targets = append(targets, target{p, e.z.pos, e.z.pos + min(e.z.plen, 256)})
					}
				}
			}
			rng := rand.New(rand.NewPCG(3, uint64(len(targets))))
			withTimeout(t, corruptTimeout, func() {
				for range iters {
					tg := targets[rng.IntN(len(targets))]
					b := bytes.Clone(loadGolden(t, name))
					for range 1 + rng.IntN(3) {
						off := tg.from + rng.Int64N(tg.to-tg.from)
						b[off] ^= byte(1 + rng.IntN(255))
					}
					b = fixChecksum(b)
					g, err := Open(bytes.NewReader(b))
					if err != nil {
						wantErr(t, "open", err, ErrCorrupt)
						continue
					}
					// Compressed streams carry no checksums: a flip may
					// decode to other data, so only the error class is
					// checked (and that nothing panics or hangs).
					for p := range tree.files {
						_, err := g.ReadFile(p)
						if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, fs.ErrNotExist) {
							t.Errorf("%s: unexpected error class: %v", p, err)
						}
					}
					fuzzOpen(t, b)
				}
			})
		})
	}
}

// TestCompressedMapHeaderCorrupt sets specific bad map header values.
func TestCompressedMapHeaderCorrupt(t *testing.T) {
	const name = "z-lz4-64k.erofs"
	for _, tc := range []struct {
		what string
		fn   func(h []byte)
		want error
	}{
		{"reserved clusterbits", func(h []byte) { h[mhClusterBits] |= 0x10 }, ErrCorrupt},
		{"huge lcluster", func(h []byte) { h[mhClusterBits] = 15 }, nil},
		{"unknown algorithm", func(h []byte) { h[mhAlgorithmType] = 9 }, errors.ErrUnsupported},
		{"undeclared algorithm", func(h []byte) { h[mhAlgorithmType] = AlgZstd }, ErrCorrupt},
		{"inconsistent big pcluster", func(h []byte) { le.PutUint16(h[mhAdvise:], le.Uint16(h[mhAdvise:])&^adviseBigPcluster2) }, ErrCorrupt},
		{"fragment without packed inode", func(h []byte) { h[mhClusterBits] |= mhClusterBitsFragment }, ErrCorrupt},
		{"inline crossing a block", func(h []byte) {
			le.PutUint16(h[mhAdvise:], le.Uint16(h[mhAdvise:])|adviseInlinePcluster)
			le.PutUint16(h[mhIdataSize:], 4096)
		}, ErrCorrupt},
	} {
		b := mutate(t, name, func(img []byte, f *FS) {
			ino := statNid(t, f, "f65537")
			tc.fn(img[roundUp64(ino.metaEnd(), 8):])
		})
		f := openBytes(t, b)
		_, err := f.ReadFile("f65537")
		if tc.want == nil {
			if err == nil {
				t.Errorf("%s: no error", tc.what)
			}
			continue
		}
		wantErr(t, tc.what, err, tc.want)
		if err != nil && !strings.Contains(err.Error(), "inode ") {
			t.Errorf("%s: error %q does not name the inode", tc.what, err)
		}
	}
}

// TestCompressedPclusterCorrupt: garbage in a pcluster gives ErrCorrupt for
// every algorithm; a zeroed pcluster is reported as holding no data.
func TestCompressedPclusterCorrupt(t *testing.T) {
	for _, name := range []string{"z-lz4.erofs", "z-lzma.erofs", "z-deflate.erofs", "z-zstd.erofs"} {
		f := openGolden(t, name)
		var ext fsExtent
		for _, e := range extents(t, f, "text") {
			if e.z.kind == zCompressed && !e.z.inline {
				ext = e
				break
			}
		}
		if ext.z == nil {
			t.Fatalf("%s: no compressed extent in text", name)
		}
		for _, fill := range []byte{0x00, 0xFF} {
			b := bytes.Clone(loadGolden(t, name))
			for i := ext.z.pos; i < ext.z.pos+ext.z.plen; i++ {
				b[i] = fill
			}
			g := openBytes(t, b)
			_, err := g.ReadFile("text")
			wantErr(t, fmt.Sprintf("%s: pcluster filled with %#x", name, fill), err, ErrCorrupt)
		}
	}
}

// TestCompressedStat: Stat reports the layout and the uncompressed size.
func TestCompressedStat(t *testing.T) {
	f := openGolden(t, "z-lz4.erofs")
	for name, want := range map[string]int64{"text": 16000, "zeros": 100000, "f65537": 65537} {
		fi, err := f.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*Stat)
		if fi.Size() != want || st.Layout != LayoutCompressedCompact || !fi.Mode().IsRegular() {
			t.Errorf("%s: size %d layout %d mode %v", name, fi.Size(), st.Layout, fi.Mode())
		}
	}
}

// The compressed images open with their packed inode in path walks too.
func TestCompressedWalkAll(t *testing.T) {
	for _, g := range zGoldens() {
		f := openGolden(t, g.name)
		if n := exercise(t, f); n == 0 {
			t.Errorf("%s: nothing visited", g.name)
		}
	}
}
