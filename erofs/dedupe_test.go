package erofs

import (
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"testing"
)

// ddImage is an in-memory image.
type ddImage struct{ b []byte }

func (m *ddImage) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}

// ddText returns n bytes of compressible text that does not repeat
// itself over distances of more than a few words.
func ddText(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, 0, n+32)
	for len(b) < n {
		b = fmt.Appendf(b, "%s %d %x\n", []string{"erofs", "block", "inode", "cluster", "extent"}[r.IntN(5)], r.IntN(1000), r.Uint32()&0xfff)
	}
	return b[:n]
}

func ddNoise(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 9))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

type ddFile struct {
	name string
	data []byte
}

// ddBuild writes files into an image with the given compression.
func ddBuild(t *testing.T, c *Compression, bs int, files []ddFile) []byte {
	t.Helper()
	img := &ddImage{}
	w, err := NewWriter(img, &WriterOptions{BlockSize: bs, Compression: c})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := w.Add(&Entry{Path: f.name, Mode: ModeRegular | 0o644, Size: int64(len(f.data))}, bytes.NewReader(f.data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return img.b
}

func ddCompression(t *testing.T, alg string, pcl int, ztail, dedupe bool) *Compression {
	t.Helper()
	c, err := DefaultCompression(alg)
	if err != nil {
		t.Fatal(err)
	}
	c.PclusterSize, c.Ztailpacking, c.Dedupe = pcl, ztail, dedupe
	return c
}

// ddBlocks returns the distinct physical clusters (byte offsets) the
// extents of a file point at, and whether one is partially referenced.
func ddBlocks(t *testing.T, f *FS, name string) (map[int64]bool, bool) {
	t.Helper()
	pos := map[int64]bool{}
	partial := false
	for _, e := range extents(t, f, name) {
		if e.z == nil || e.z.inline {
			continue
		}
		pos[e.z.pos] = true
		partial = partial || e.z.partial
	}
	return pos, partial
}

// ddCheck reads every file back and compares it.
func ddCheck(t *testing.T, img []byte, files []ddFile) *FS {
	t.Helper()
	f, err := Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		got, err := fs.ReadFile(f, file.name)
		if err != nil {
			t.Fatalf("%s: %v", file.name, err)
		}
		if !bytes.Equal(got, file.data) {
			t.Fatalf("%s: content differs", file.name)
		}
	}
	return f
}

// TestDedupeIdentical checks that a file equal to another one shares all
// its clusters, and that an image without sharing has no dedupe bit.
func TestDedupeIdentical(t *testing.T) {
	a := ddText(300_000, 1)
	files := []ddFile{{"a", a}, {"b", bytes.Clone(a)}}
	img := ddBuild(t, ddCompression(t, "lz4", 0, false, true), 4096, files)
	f := ddCheck(t, img, files)
	pa, _ := ddBlocks(t, f, "a")
	pb, _ := ddBlocks(t, f, "b")
	if len(pa) < 10 {
		t.Fatalf("a has %d clusters; want many", len(pa))
	}
	for p := range pb {
		if !pa[p] {
			t.Errorf("b has a cluster of its own at %d", p)
		}
	}
	if f.sb.FeatureIncompat&FeatureIncompatDedupe == 0 {
		t.Error("no dedupe feature bit")
	}
	if l := statNid(t, f, "b").layout; l != LayoutCompressedFull {
		t.Errorf("b has layout %d, want full indexes", l)
	}
	if l := statNid(t, f, "a").layout; l != LayoutCompressedCompact {
		t.Errorf("a has layout %d, want compact indexes", l)
	}
	plain := ddBuild(t, ddCompression(t, "lz4", 0, false, false), 4096, files)
	if len(img) > len(plain)*6/10 {
		t.Errorf("image with dedupe %d bytes, without %d: want about half", len(img), len(plain))
	}

	// Different files share nothing and set no feature bit.
	files = []ddFile{{"a", a}, {"b", ddText(300_000, 2)}}
	img = ddBuild(t, ddCompression(t, "lz4", 0, false, true), 4096, files)
	f = ddCheck(t, img, files)
	if f.sb.FeatureIncompat&FeatureIncompatDedupe != 0 {
		t.Error("dedupe feature bit without sharing")
	}
	if !bytes.Equal(img, ddBuild(t, ddCompression(t, "lz4", 0, false, false), 4096, files)) {
		t.Error("dedupe changed an image with nothing to share")
	}
}

// TestDedupeInsert checks a file equal to another with 100 bytes inserted
// in the middle: it shares most of its clusters, one partially.
func TestDedupeInsert(t *testing.T) {
	for _, pcl := range []int{4096, 65536} {
		t.Run(fmt.Sprint(pcl), func(t *testing.T) {
			a := ddText(1<<20, 3)
			m := len(a)/2 + 12345
			b := append(append(bytes.Clone(a[:m]), ddNoise(100, 4)...), a[m:]...)
			files := []ddFile{{"a", a}, {"b", b}}
			img := ddBuild(t, ddCompression(t, "lz4hc", pcl, false, true), 4096, files)
			f := ddCheck(t, img, files)
			pa, _ := ddBlocks(t, f, "a")
			pb, partial := ddBlocks(t, f, "b")
			own := 0
			for p := range pb {
				if !pa[p] {
					own++
				}
			}
			ua := compressedBlocks(t, f, "a")
			ub := compressedBlocks(t, f, "b")
			t.Logf("a: %d clusters, %d blocks; b: %d clusters, %d of its own, %d blocks", len(pa), ua, len(pb), own, ub)
			if ub*5 > ua {
				t.Errorf("b stores %d blocks of its own, a %d: want at most a fifth", ub, ua)
			}
			if !partial {
				t.Error("no partially referenced cluster")
			}
		})
	}
}

// compressedBlocks is a compressed file's i_u: the blocks it stores.
func compressedBlocks(t *testing.T, f *FS, name string) int {
	ino := statNid(t, f, name)
	if ino.layout != LayoutCompressedFull && ino.layout != LayoutCompressedCompact {
		t.Fatalf("%s: layout %d is not compressed", name, ino.layout)
	}
	return int(ino.u)
}

// TestDedupeRepeat checks that a file repeating a 1 MiB random block 8
// times stores about one copy.
func TestDedupeRepeat(t *testing.T) {
	blk := ddNoise(1<<20, 5)
	data := bytes.Repeat(blk, 8)
	files := []ddFile{{"r", data}}
	for _, pcl := range []int{4096, 1 << 20} {
		img := ddBuild(t, ddCompression(t, "lz4", pcl, true, true), 4096, files)
		f := ddCheck(t, img, files)
		n := compressedBlocks(t, f, "r")
		if n > (1<<20)/4096+8 {
			t.Errorf("-C %d: the file stores %d blocks, want about %d", pcl, n, (1<<20)/4096)
		}
		if len(img) > 2<<20 {
			t.Errorf("-C %d: image of %d bytes, want about 1 MiB", pcl, len(img))
		}
	}
}

// TestDedupeRoundTrip writes files with shared and partially shared data
// with every algorithm, pcluster size and tail packing, and reads them
// back.
func TestDedupeRoundTrip(t *testing.T) {
	a := ddText(700_000, 6)
	noise := ddNoise(200_000, 7)
	m := 333_333
	files := []ddFile{
		{"a", a},
		{"a-copy", bytes.Clone(a)},
		{"a-insert", append(append(bytes.Clone(a[:m]), ddNoise(100, 8)...), a[m:]...)},
		{"a-tail", bytes.Clone(a[123_457:])},
		{"a-head", bytes.Clone(a[:400_001])},
		{"noise", noise},
		{"noise-twice", append(bytes.Clone(noise), noise...)},
		{"mixed", append(append(bytes.Clone(a[5000:90_000]), noise[:50_000]...), a[200_000:300_000]...)},
		{"big", bytes.Repeat(a[:500_000], 11)[:5<<20+77]},
		{"small", bytes.Clone(a[:5000])},
		{"small-copy", bytes.Clone(a[:5000])},
	}
	for _, alg := range []string{"lz4", "lz4hc", "lzma", "deflate", "zstd"} {
		for _, pcl := range []int{4096, 65536, 1 << 20} {
			for _, ztail := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/C%d/ztail=%v", alg, pcl, ztail), func(t *testing.T) {
					if testing.Short() && (alg == "lzma" || alg == "lz4hc") && pcl != 65536 {
						t.Skip("-short")
					}
					img := ddBuild(t, ddCompression(t, alg, pcl, ztail, true), 4096, files)
					f := ddCheck(t, img, files)
					if f.sb.FeatureIncompat&FeatureIncompatDedupe == 0 {
						t.Error("no dedupe feature bit")
					}
					plain := ddBuild(t, ddCompression(t, alg, pcl, ztail, false), 4096, files)
					if len(img) >= len(plain) {
						t.Errorf("image with dedupe %d bytes, without %d", len(img), len(plain))
					}
				})
			}
		}
	}
}

// TestDedupeWorkers checks that the image does not depend on the number
// of workers.
func TestDedupeWorkers(t *testing.T) {
	a := ddText(3<<20, 10)
	files := []ddFile{
		{"a", a},
		{"b", append(append(bytes.Clone(a[:1<<20]), ddNoise(5000, 11)...), a[1<<20:]...)},
		{"c", bytes.Clone(a[77_777 : 2<<20])},
		{"d", bytes.Repeat(ddNoise(300_000, 12), 3)},
	}
	for _, pcl := range []int{4096, 65536} {
		var first []byte
		for _, workers := range []int{1, 4} {
			c := ddCompression(t, "lz4hc", pcl, true, true)
			c.Workers = workers
			img := ddBuild(t, c, 4096, files)
			ddCheck(t, img, files)
			if first == nil {
				first = img
			} else if !bytes.Equal(first, img) {
				t.Errorf("-C %d: %d workers give another image than 1", pcl, workers)
			}
		}
	}
}

// TestDedupeRing checks the ring of indexed data across its wrap.
func TestDedupeRing(t *testing.T) {
	r := dedupeRing{dir: t.TempDir(), size: 1000}
	defer r.close()
	var offs []int64
	var datas [][]byte
	for i := range 30 {
		b := ddNoise(97+i, uint64(i))
		off, err := r.append(b)
		if err != nil {
			t.Fatal(err)
		}
		offs, datas = append(offs, off), append(datas, b)
		if i%4 == 3 {
			if err := r.flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	held := 0
	for i, off := range offs {
		if !r.holds(off) {
			if off >= r.end-r.size {
				t.Errorf("piece %d at %d not held, ring end %d", i, off, r.end)
			}
			continue
		}
		held++
		got := make([]byte, len(datas[i]))
		if err := r.readAt(got, off); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, datas[i]) {
			t.Errorf("piece %d at %d differs", i, off)
		}
	}
	if held < 5 || held == len(offs) {
		t.Errorf("%d of %d pieces held", held, len(offs))
	}

	// A rewind forgets what came after the mark, also once flushed past
	// it, and what the flush overwrote.
	last := len(offs) - 1
	mark := r.mark()
	for i := range 12 {
		if _, err := r.append(ddNoise(90, uint64(100+i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	r.rewind(mark)
	if r.holds(offs[last-6]) {
		t.Errorf("piece %d still held after a flush overwrote it", last-6)
	}
	off, err := r.append(datas[last][:50])
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 50)
	if err := r.readAt(got, off); err != nil || !bytes.Equal(got, datas[last][:50]) {
		t.Errorf("after a rewind: %v, content equal %v", err, bytes.Equal(got, datas[last][:50]))
	}
}

// TestDedupeFragments combines dedupe with fragments and all-fragments:
// file ends go to the packed inode, whose content is deduped as well; the
// image is never larger than without dedupe.
func TestDedupeFragments(t *testing.T) {
	a := ddText(900_000, 13)
	files := []ddFile{
		{"a", a},
		{"a-copy", bytes.Clone(a)},
		{"a-insert", append(append(bytes.Clone(a[:450_000]), ddNoise(100, 14)...), a[450_000:]...)},
		{"small", bytes.Clone(a[:3000])},
		{"noise", ddNoise(50_000, 15)},
	}
	for _, all := range []bool{false, true} {
		for _, pcl := range []int{4096, 65536} {
			for _, ztail := range []bool{false, true} {
				t.Run(fmt.Sprintf("all=%v/C%d/ztail=%v", all, pcl, ztail), func(t *testing.T) {
					c := ddCompression(t, "lz4hc", pcl, ztail, true)
					c.Fragments, c.AllFragments = true, all
					img := ddBuild(t, c, 4096, files)
					f := ddCheck(t, img, files)
					if f.sb.FeatureIncompat&FeatureIncompatFragments == 0 {
						t.Error("no fragments feature bit")
					}
					c.Dedupe = false
					plain := ddBuild(t, c, 4096, files)
					// With all-fragments, fragment dedupe already shares
					// these files' ends and copies.
					if len(img) > len(plain) || !all && len(img) == len(plain) {
						t.Errorf("image with dedupe %d bytes, without %d", len(img), len(plain))
					}
				})
			}
		}
	}
}
