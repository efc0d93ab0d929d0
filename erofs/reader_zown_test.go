package erofs

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"
)

// Round trips of our own writer's fragment and dedupe output through the
// reader: the zshare tree of the zs-*.erofs goldens, written with every
// algorithm and the fragment options, read back file by file.

// zimg is an in-memory io.WriterAt.
type zimg struct{ b []byte }

func (m *zimg) WriteAt(p []byte, off int64) (int, error) {
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	copy(m.b[off:], p)
	return len(p), nil
}

// writeZTree writes tree with c and block size bs and returns the image.
func writeZTree(t *testing.T, tree zTree, bs int, c *Compression) []byte {
	t.Helper()
	img := &zimg{}
	w, err := NewWriter(img, &WriterOptions{BlockSize: bs, Compression: c})
	if err != nil {
		t.Fatal(err)
	}
	mtime := time.Unix(1700000000, 0)
	dirs := map[string]bool{}
	var names []string
	for p := range tree.files {
		names = append(names, p)
		if d := filepath.Dir(p); d != "." {
			dirs[d] = true
		}
	}
	sort.Strings(names)
	for d := range dirs {
		if err := w.Add(&Entry{Path: d, Mode: ModeDir | 0o755, ModTime: mtime}, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range names {
		data := tree.files[p]
		if err := w.Add(&Entry{Path: p, Mode: ModeRegular | 0o644, ModTime: mtime, Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	for p, target := range tree.symlinks {
		if err := w.Add(&Entry{Path: p, Mode: ModeSymlink | 0o777, ModTime: mtime, Linkname: target}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return img.b
}

// TestReadOwnFragments writes the zshare tree with fragments, all-fragments
// and each fragment dedupe mode for every algorithm, reads every file back
// and checks what the image shares.
func TestReadOwnFragments(t *testing.T) {
	type variant struct {
		name string
		bs   int
		set  func(c *Compression)
	}
	variants := []variant{
		{"frag", 4096, func(c *Compression) { c.Fragments = true }},
		{"frag-zt", 4096, func(c *Compression) { c.Fragments, c.Ztailpacking = true, true }},
		{"frag-nofd", 4096, func(c *Compression) { c.Fragments, c.FragDedupe = true, FragDedupeOff }},
		{"frag-legacy", 4096, func(c *Compression) { c.Fragments, c.FullIndexes = true, true }},
		{"allfrag", 4096, func(c *Compression) { c.AllFragments = true }},
		{"allfrag-fdi", 4096, func(c *Compression) { c.AllFragments, c.FragDedupe = true, FragDedupeInode }},
		{"frag-64k", 4096, func(c *Compression) { c.Fragments, c.PclusterSize = true, 65536 }},
		{"allfrag-1m-packed64k", 4096, func(c *Compression) {
			c.AllFragments, c.PclusterSize, c.PackedPclusterSize = true, 1<<20, 65536
		}},
		{"frag-b512", 512, func(c *Compression) { c.Fragments, c.PclusterSize, c.Ztailpacking = true, 2048, true }},
		// The sharing itself is checked with the dedupe writer's tests.
		{"dedupe", 4096, func(c *Compression) { c.Dedupe = true }},
		{"dedupe-frag-64k", 4096, func(c *Compression) { c.Dedupe, c.Fragments, c.PclusterSize = true, true, 65536 }},
	}
	tree := zshareTree()
	for _, alg := range []string{"lz4", "lz4hc", "lzma", "deflate", "zstd"} {
		for _, v := range variants {
			t.Run(alg+"-"+v.name, func(t *testing.T) {
				c, err := DefaultCompression(alg)
				if err != nil {
					t.Fatal(err)
				}
				v.set(c)
				b := writeZTree(t, tree, v.bs, c)
				f := openBytes(t, b)
				checkZTree(t, f, zGoldenImage{name: v.name, share: true}, tree)
				if err := fsTestCompressed(f, tree); err != nil {
					t.Error(err)
				}
				z := zImageFeatures(t, f)
				t.Logf("%d bytes: %v", len(b), z)
				frag := c.Fragments || c.AllFragments
				if !frag {
					if z.packed {
						t.Error("a packed inode without fragments")
					}
					return
				}
				if !z.packed || f.sb.FeatureIncompat&FeatureIncompatFragments == 0 || z.wholeFrag == 0 {
					t.Errorf("fragments missing (incompat %#x): %v", f.sb.FeatureIncompat, z)
				}
				if c.PackedPclusterSize > 0 && z.packedPlen > int64(c.PackedPclusterSize) {
					t.Errorf("packed inode pcluster of %d bytes, want at most %d", z.packedPlen, c.PackedPclusterSize)
				}
				same := func() bool {
					s0, ok := z.fragOf["same/s0"]
					for k := 1; k < 5; k++ {
						if r, ok2 := z.fragOf[fmt.Sprintf("same/s%d", k)]; !ok || !ok2 || r != s0 {
							return false
						}
					}
					return true
				}
				switch c.FragDedupe {
				case FragDedupeOff:
					if z.sharedFrag != 0 {
						t.Errorf("%d files share fragments with fragment dedupe off", z.sharedFrag)
					}
				default:
					if !same() {
						t.Errorf("identical files have different fragments: %v", z.fragOf)
					}
				}
				if kernelMountable() {
					checkKernelZTree(t, b, tree)
				}
			})
		}
	}
}

// kernelMountable reports whether the tests may mount images.
func kernelMountable() bool { return os.Geteuid() == 0 && !testing.Short() }

// checkKernelZTree mounts img and compares its files with tree; it skips
// the check (logging why) when the kernel cannot mount it.
func checkKernelZTree(t *testing.T, img []byte, tree zTree) {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "img")
	if err := os.WriteFile(p, img, 0o600); err != nil {
		t.Fatal(err)
	}
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount(p, mnt, "erofs", syscall.MS_RDONLY, ""); err != nil {
		t.Logf("cannot mount: %v", err)
		return
	}
	defer syscall.Unmount(mnt, 0)
	for name, want := range tree.files {
		got, err := os.ReadFile(filepath.Join(mnt, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("kernel: %s: %d bytes, %v", name, len(got), err)
		}
	}
	for name, target := range tree.symlinks {
		if got, err := os.Readlink(filepath.Join(mnt, name)); err != nil || got != target {
			t.Errorf("kernel: %s -> %q, %v", name, got, err)
		}
	}
}
