package erofs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Tests against the zs-*.erofs golden images: mkfs.erofs 1.9.3 images of
// the zshare tree with fragments, fragment dedupe and compressed data
// dedupe (testdata/mkgolden.py). TestGoldenCompressed, TestCompressedKernel
// and TestCompressedWalkAll cover them too (zGoldens lists them).

// zshareTree is mkgolden.py's zshare tree.
func zshareTree() zTree {
	t := zTree{files: map[string][]byte{}, symlinks: map[string]string{"sym": "dupA"}}
	for k := range 5 {
		t.files[fmt.Sprintf("same/s%d", k)] = goldenText(20, 1500)
	}
	tail := goldenText(21, 3072)
	t.files["tail/a"] = concat(goldenText(22, 1000), tail)
	for k := range 2 {
		t.files[fmt.Sprintf("tail/t%d", k)] = concat(goldenRnd(uint32(30+k), 4096), tail)
	}
	t.files["tail/u"] = concat(goldenRnd(33, 1000), goldenText(34, 3000), tail)
	var a []byte
	for k := range 8 {
		a = append(a, goldenText(uint32(40+k), 2560)...)
		a = append(a, goldenRnd(uint32(60+k), 256)...)
	}
	t.files["dupA"] = a
	t.files["dupB"] = concat(a[:len(a)/2], goldenContent(9, 100), a[len(a)/2:])
	a = goldenText(80, 16000)
	t.files["textA"] = a
	t.files["textB"] = concat(a[:8000], goldenContent(10, 100), a[8000:])
	r := goldenRnd(70, 6144)
	t.files["rep"] = concat(r, r, r, r)
	t.files["small"] = []byte("tiny\n")
	t.files["empty"] = nil
	return t
}

// zseedShareTree is mkgolden.py's zseedshare tree.
func zseedShareTree() zTree {
	t := zTree{files: map[string][]byte{}, symlinks: map[string]string{}}
	for k := range 3 {
		t.files[fmt.Sprintf("s%d", k)] = goldenText(90, 300)
	}
	tail := goldenText(91, 700)
	t.files["ta"] = concat(goldenText(92, 200), tail)
	t.files["tb"] = concat(goldenRnd(93, 512), tail)
	a := concat(goldenText(94, 1200), goldenRnd(95, 100), goldenText(96, 1200))
	t.files["dupA"] = a
	t.files["dupB"] = concat(a[:1250], goldenContent(11, 100), a[1250:])
	r := goldenRnd(97, 700)
	t.files["rep"] = concat(r, r, r)
	return t
}

// zseedShareGoldens lists the zseed-*-share.erofs fuzz seeds (-b512
// -Ededupe,fragments) and zseed-lzma-dedupe.erofs (-b512 -C1024
// -Ededupe).
func zseedShareGoldens() []zshareGolden {
	var list []zshareGolden
	for _, a := range []struct {
		name string
		id   uint8
	}{{"lz4", AlgLZ4}, {"lzma", AlgLZMA}, {"deflate", AlgDeflate}, {"zstd", AlgZstd}} {
		list = append(list, zshareGolden{name: "zseed-" + a.name + "-share.erofs", alg: a.id, fragments: true, fragDedupe: "full", dedupe: true})
	}
	return append(list, zshareGolden{name: "zseed-lzma-dedupe.erofs", alg: AlgLZMA, dedupe: true, pcluster: 1024})
}

// TestSeedShareFeatures: the small fuzz seeds have what the zs-*.erofs
// images have, so that fuzzing starts from them.
func TestSeedShareFeatures(t *testing.T) {
	for _, g := range zseedShareGoldens() {
		f := openGolden(t, g.name)
		z := zImageFeatures(t, f)
		t.Logf("%s: %v", g.name, z)
		if g.fragments && (!z.packed || z.wholeFrag == 0 || z.tailFrag == 0 || z.sharedFrag == 0) {
			t.Errorf("%s: fragments missing: %v", g.name, z)
		}
		if z.crossFile == 0 || z.partial[g.alg] == 0 {
			t.Errorf("%s: no shared or no partially referenced %s pcluster: %v", g.name, algName(g.alg), z)
		}
		if g.pcluster > 0 && z.bigPcluster == 0 {
			t.Errorf("%s: no big pcluster: %v", g.name, z)
		}
	}
}

// zshareGolden is one zs-*.erofs image and the mkfs.erofs options it was
// made with.
type zshareGolden struct {
	name       string
	alg        uint8
	fragments  bool   // -Efragments or -Eall-fragments
	all        bool   // -Eall-fragments
	fragDedupe string // -Efragdedupe=: "full" (the default), "inode" or "off"
	dedupe     bool   // -Ededupe
	ztail      bool   // -Eztailpacking
	pcluster   int64  // -C; 0: one block
}

// zshareGoldens lists the zs-*.erofs images, as mkgolden.py makes them.
func zshareGoldens() []zshareGolden {
	type variant struct {
		sfx string
		g   zshareGolden
	}
	full := []variant{
		{"frag", zshareGolden{fragments: true, fragDedupe: "full"}},
		{"frag-zt", zshareGolden{fragments: true, fragDedupe: "full", ztail: true}},
		{"frag-nofd", zshareGolden{fragments: true, fragDedupe: "off"}},
		{"allfrag", zshareGolden{fragments: true, all: true, fragDedupe: "full"}},
		{"allfrag-fdi", zshareGolden{fragments: true, all: true, fragDedupe: "inode"}},
		{"dedupe", zshareGolden{dedupe: true}},
		{"dedupe-frag", zshareGolden{dedupe: true, fragments: true, fragDedupe: "full"}},
		{"dedupe-zt", zshareGolden{dedupe: true, ztail: true}},
		{"64k-dedupe", zshareGolden{dedupe: true, pcluster: 65536}},
		{"1m-dedupe", zshareGolden{dedupe: true, pcluster: 1 << 20}},
		{"1m-allfrag-dedupe-zt", zshareGolden{dedupe: true, fragments: true, all: true, fragDedupe: "full", ztail: true, pcluster: 1 << 20}},
	}
	var list []zshareGolden
	add := func(alg string, id uint8, vs []variant) {
		for _, v := range vs {
			g := v.g
			g.name, g.alg = "zs-"+alg+"-"+v.sfx+".erofs", id
			list = append(list, g)
		}
	}
	for _, a := range []struct {
		name string
		id   uint8
	}{{"lz4", AlgLZ4}, {"lzma", AlgLZMA}, {"deflate", AlgDeflate}, {"zstd", AlgZstd}} {
		add(a.name, a.id, full)
	}
	var hc []variant
	for _, v := range full {
		switch v.sfx {
		case "frag", "allfrag", "dedupe", "dedupe-frag":
			hc = append(hc, v)
		}
	}
	add("lz4hc", AlgLZ4, hc)
	return list
}

// zFeatures summarizes what a compressed image uses, found through the
// reader's extent mapper.
type zFeatures struct {
	packed       bool          // the superblock names a packed inode
	packedPlen   int64         // the packed inode's largest pcluster
	wholeFrag    int           // files stored whole in the packed inode
	tailFrag     int           // files with a tail fragment
	sharedFrag   int           // files whose fragment overlaps another file's
	inline       int           // inline (ztailpacking) pclusters
	shared       int           // pclusters referenced by more than one extent
	sharedRaw    int           // of those, uncompressed ones
	crossFile    int           // pclusters referenced by more than one file
	partial      map[uint8]int // partially referenced extents, by algorithm
	full         int           // files with full (8-byte) indexes
	compact      int           // files with compact indexes
	bigPcluster  int           // pclusters larger than a block
	fragOf       map[string][2]uint64
	partialExtns []fsExtent // the partially referenced extents
}

func (z zFeatures) String() string {
	var algs []string
	for a, n := range z.partial {
		algs = append(algs, fmt.Sprintf("%s:%d", algName(a), n))
	}
	sort.Strings(algs)
	return fmt.Sprintf("packed=%v (pcluster %d) whole=%d tail=%d sharedfrag=%d inline=%d shared=%d (raw %d, across files %d) partial=[%s] full=%d compact=%d big=%d",
		z.packed, z.packedPlen, z.wholeFrag, z.tailFrag, z.sharedFrag, z.inline, z.shared, z.sharedRaw, z.crossFile,
		strings.Join(algs, " "), z.full, z.compact, z.bigPcluster)
}

// zImageFeatures maps the extents of every regular file of f (and of the
// packed inode).
func zImageFeatures(t *testing.T, f *FS) zFeatures {
	t.Helper()
	z := zFeatures{packed: f.sb.PackedNid != 0, partial: map[uint8]int{}, fragOf: map[string][2]uint64{}}
	type pcl struct {
		dev any
		pos int64
	}
	refs := map[pcl]int{}
	files := map[pcl]map[string]bool{}
	raw := map[pcl]bool{}
	seen := map[uint64]bool{}
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		ino := statNid(t, f, p)
		if seen[ino.nid] || ino.size == 0 {
			return nil
		}
		seen[ino.nid] = true
		switch ino.layout {
		case LayoutCompressedFull:
			z.full++
		case LayoutCompressedCompact:
			z.compact++
		default:
			return nil
		}
		m, err := f.newZMapper(ino)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if m.wholeFrag {
			z.wholeFrag++
		} else if m.fragment {
			z.tailFrag++
		}
		for _, e := range extents(t, f, p) {
			if e.z.kind == zFragment {
				z.fragOf[p] = [2]uint64{e.z.fragOff, e.z.fragOff + uint64(e.n)}
				continue
			}
			if e.z.inline {
				z.inline++
				continue
			}
			if e.z.plen > f.blkSize {
				z.bigPcluster++
			}
			k := pcl{e.z.dev, e.z.pos}
			refs[k]++
			if files[k] == nil {
				files[k] = map[string]bool{}
			}
			files[k][p] = true
			raw[k] = e.z.kind != zCompressed
			if e.z.partial {
				a := e.z.alg
				if e.z.kind != zCompressed {
					a = 0xFF
				}
				z.partial[a]++
				z.partialExtns = append(z.partialExtns, e)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range refs {
		if n > 1 {
			z.shared++
			if raw[k] {
				z.sharedRaw++
			}
		}
		if len(files[k]) > 1 {
			z.crossFile++
		}
	}
	for a, ra := range z.fragOf {
		for b, rb := range z.fragOf {
			if a != b && ra[0] < rb[1] && rb[0] < ra[1] {
				z.sharedFrag++
				break
			}
		}
	}
	if z.packed {
		pi, err := f.inode(f.sb.PackedNid)
		if err != nil {
			t.Fatal(err)
		}
		d, err := f.data(pi)
		if err != nil {
			t.Fatal(err)
		}
		for off := int64(0); off < pi.size; {
			e, err := d.m.mapExtent(off)
			if err != nil {
				t.Fatalf("packed inode: mapExtent(%d): %v", off, err)
			}
			z.packedPlen = max(z.packedPlen, e.z.plen)
			off = e.off + e.n
		}
	}
	return z
}

// TestSharedFeatures proves that each zs-*.erofs image uses what its
// options ask for: a packed inode with whole-file and tail fragments,
// fragments shared (or not) as -Efragdedupe says, pclusters shared between
// files and partially referenced ones of the image's algorithm.
func TestSharedFeatures(t *testing.T) {
	for _, g := range zshareGoldens() {
		t.Run(g.name, func(t *testing.T) {
			f := openGolden(t, g.name)
			z := zImageFeatures(t, f)
			t.Log(z)
			incompat := f.sb.FeatureIncompat
			if g.fragments {
				if !z.packed || incompat&FeatureIncompatFragments == 0 {
					t.Errorf("no packed inode (incompat %#x)", incompat)
				}
				if z.wholeFrag == 0 {
					t.Error("no whole-file fragment")
				}
			} else if z.packed || z.wholeFrag+z.tailFrag > 0 {
				t.Error("fragments without -Efragments")
			}
			if g.fragments && !g.all && g.pcluster == 0 && z.tailFrag == 0 {
				t.Error("no tail fragment")
			}
			frag := func(p string) [2]uint64 {
				r, ok := z.fragOf[p]
				if !ok {
					t.Fatalf("%s has no fragment", p)
				}
				return r
			}
			switch {
			case !g.fragments:
			case g.fragDedupe == "off":
				if z.sharedFrag != 0 {
					t.Errorf("%d files share fragments with fragment dedupe off", z.sharedFrag)
				}
			default:
				// Identical files: one fragment.
				for k := 1; k < 5; k++ {
					if a, b := frag("same/s0"), frag(fmt.Sprintf("same/s%d", k)); a != b {
						t.Errorf("same/s0 and same/s%d: fragments %v and %v", k, a, b)
					}
				}
				if g.fragDedupe == "inode" {
					// Only whole inodes are shared.
					if z.tailFrag != 0 {
						t.Errorf("%d tail fragments with -Eall-fragments,fragdedupe=inode", z.tailFrag)
					}
					for _, p := range []string{"tail/t0", "tail/t1", "tail/u"} {
						ra, rb := frag("tail/a"), frag(p)
						if ra[0] < rb[1] && rb[0] < ra[1] {
							t.Errorf("tail/a and %s: fragments %v and %v overlap", p, ra, rb)
						}
					}
				} else if g.pcluster == 0 {
					// The same 3 KiB tail: one fragment, the end of
					// tail/a's whole-file fragment.
					a, t0, t1 := frag("tail/a"), frag("tail/t0"), frag("tail/t1")
					if t0 != t1 || t0[1]-t0[0] != 3072 || t0[0] < a[0] || t0[1] > a[1] {
						t.Errorf("tail fragments: tail/a %v, tail/t0 %v, tail/t1 %v", a, t0, t1)
					}
				}
			}
			if g.dedupe && !g.all {
				if incompat&FeatureIncompatDedupe == 0 {
					t.Errorf("incompat %#x lacks DEDUPE", incompat)
				}
				if z.crossFile == 0 {
					t.Error("no pcluster shared between files")
				}
				if z.partial[g.alg] == 0 {
					t.Errorf("no partially referenced %s pcluster", algName(g.alg))
				}
				if g.pcluster == 0 && z.sharedRaw == 0 {
					t.Error("no shared uncompressed pcluster")
				}
			} else if len(z.partialExtns) > 0 {
				t.Errorf("%d partially referenced extents without -Ededupe", len(z.partialExtns))
			}
			if g.ztail && !g.fragments && z.inline == 0 {
				t.Error("no inline pcluster")
			}
			if g.pcluster > 0 && !g.all && z.bigPcluster == 0 {
				t.Error("no big pcluster")
			}
			if g.all && g.pcluster > 0 && z.packedPlen <= f.blkSize {
				t.Errorf("the packed inode's pclusters are at most %d bytes", z.packedPlen)
			}
			// A partially referenced LZ4 or LZMA pcluster decodes to more
			// than its extent: decoding the whole stream into the extent
			// fails, decoding the prefix works.
			for _, e := range z.partialExtns {
				if e.z.alg != AlgLZ4 && e.z.alg != AlgLZMA {
					continue
				}
				dst := make([]byte, e.n)
				if err := f.decodeExtent(0, e, dst); err != nil {
					t.Errorf("partial %s extent: %v", algName(e.z.alg), err)
				}
				whole := *e.z
				whole.partial = false
				if err := f.decodeExtent(0, fsExtent{off: e.off, n: e.n, z: &whole}, dst); err == nil {
					t.Errorf("a partial %s extent (%d bytes at %d) decodes exactly", algName(e.z.alg), e.n, e.off)
				} else if !errors.Is(err, ErrCorrupt) {
					t.Errorf("partial %s extent decoded whole: %v", algName(e.z.alg), err)
				}
			}
		})
	}
}

// TestSharedMetadata: every entry of the zs-*.erofs images has the owner,
// mode and mtime mkgolden.py gave it, and nothing else is in the tree.
func TestSharedMetadata(t *testing.T) {
	tree := zshareTree()
	for _, g := range zshareGoldens() {
		f := openGolden(t, g.name)
		n := 0
		err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			n++
			fi, err := d.Info()
			if err != nil {
				return err
			}
			st := fi.Sys().(*Stat)
			var perm fs.FileMode
			switch {
			case d.IsDir():
				perm = 0o755
			case d.Type() == fs.ModeSymlink:
				perm = 0o777
				if _, ok := tree.symlinks[p]; !ok {
					t.Errorf("%s: unexpected symlink %s", g.name, p)
				}
			case d.Type().IsRegular():
				perm = 0o644
				if _, ok := tree.files[p]; !ok {
					t.Errorf("%s: unexpected file %s", g.name, p)
				}
			default:
				t.Errorf("%s: %s has mode %v", g.name, p, fi.Mode())
			}
			if fi.Mode().Perm() != perm || st.UID != 0 || st.GID != 0 || st.Mtime != 1700000000 || st.MtimeNsec != 0 || st.Nlink == 0 {
				t.Errorf("%s: %s: mode %v uid %d gid %d mtime %d.%09d nlink %d", g.name, p, fi.Mode(), st.UID, st.GID, st.Mtime, st.MtimeNsec, st.Nlink)
			}
			if len(st.Xattrs) != 0 {
				t.Errorf("%s: %s: xattrs %v", g.name, p, st.Xattrs)
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", g.name, err)
		}
		// ".", same, tail, the files and the symlink.
		if want := 3 + len(tree.files) + len(tree.symlinks); n != want {
			t.Errorf("%s: %d entries, want %d", g.name, n, want)
		}
	}
}

// TestSharedReadOrder reads the files that share pclusters and fragments
// one after another, twice: the packed inode's extent cache, which all
// files use, must give each file its own bytes.
func TestSharedReadOrder(t *testing.T) {
	tree := zshareTree()
	order := []string{"dupB", "dupA", "textB", "textA", "tail/t1", "tail/a", "tail/t0", "tail/u", "same/s3", "same/s0", "rep"}
	for _, g := range zshareGoldens() {
		f := openGolden(t, g.name)
		for pass := range 2 {
			for _, p := range order {
				b, err := f.ReadFile(p)
				if err != nil || !bytes.Equal(b, tree.files[p]) {
					t.Errorf("%s: pass %d: ReadFile(%s): %d bytes, %v", g.name, pass, p, len(b), err)
				}
			}
		}
	}
}

// fsckErofs returns the fsck.erofs to check images with: $RAFS_FSCK_EROFS,
// or one on $PATH from erofs-utils 1.9 or later, or "" for none.
func fsckErofs() string {
	if p := os.Getenv("RAFS_FSCK_EROFS"); p != "" {
		return p
	}
	p, err := exec.LookPath("fsck.erofs")
	if err != nil {
		return ""
	}
	out, _ := exec.Command(p, "-V").CombinedOutput()
	var major, minor int
	if _, v, ok := strings.Cut(string(out), "(erofs-utils) "); ok {
		fmt.Sscanf(v, "%d.%d", &major, &minor)
	}
	if major > 1 || major == 1 && minor >= 9 {
		return p
	}
	return ""
}

// TestSharedFsck checks every zs-*.erofs image with fsck.erofs, decoding
// all data, and extracts those without a packed inode to compare the files
// with the tree: a second opinion next to the kernel's
// (TestCompressedKernel). fsck.erofs 1.9.3 fails to --extract=DIR images
// with a packed inode (it tries to write the packed inode to DIR itself),
// so those are only decoded. It skips without fsck.erofs 1.9+.
func TestSharedFsck(t *testing.T) {
	fsck := fsckErofs()
	if fsck == "" {
		t.Skip("no fsck.erofs 1.9+ ($RAFS_FSCK_EROFS or $PATH)")
	}
	tree := zshareTree()
	dir := t.TempDir()
	extracted := 0
	for _, g := range zshareGoldens() {
		img := filepath.Join(dir, g.name)
		if err := os.WriteFile(img, loadGolden(t, g.name), 0o600); err != nil {
			t.Fatal(err)
		}
		if b, err := exec.Command(fsck, "--extract", img).CombinedOutput(); err != nil {
			t.Errorf("%s: fsck.erofs --extract: %v\n%s", g.name, err, b)
			continue
		}
		if g.fragments {
			continue
		}
		out := filepath.Join(dir, "x-"+g.name)
		if b, err := exec.Command(fsck, "--extract="+out, img).CombinedOutput(); err != nil {
			t.Errorf("%s: fsck.erofs: %v\n%s", g.name, err, b)
			continue
		}
		extracted++
		for p, want := range tree.files {
			if got, err := os.ReadFile(filepath.Join(out, p)); err != nil || !bytes.Equal(got, want) {
				t.Errorf("%s: %s extracted by fsck.erofs: %d bytes, %v", g.name, p, len(got), err)
			}
		}
	}
	if extracted == 0 {
		t.Error("no image extracted")
	}
}
