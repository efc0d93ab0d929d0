package rafs

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"testing"

	"github.com/rafs-dev/rafs/erofs"
)

func TestRoundTrip(t *testing.T) {
	f := richFS()
	b := f.finish()
	img, err := b.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	img2, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img, img2) {
		t.Fatal("two encodings differ")
	}
	if len(img)%BlockSize != 0 {
		t.Fatalf("size %d", len(img))
	}
	got, err := Read(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	want := *b
	want.Flags |= FlagHasXattr
	if diff := compareBootstraps(&want, got); diff != "" {
		t.Fatalf("round trip: %s", diff)
	}
	img3, err := got.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img, img3) {
		t.Error("re-encoding the read bootstrap changes the bytes")
	}
	// Children order must not matter.
	for i, j := 0, len(b.Root.Children)-1; i < j; i, j = i+1, j-1 {
		b.Root.Children[i], b.Root.Children[j] = b.Root.Children[j], b.Root.Children[i]
	}
	img4, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img, img4) {
		t.Error("child order changes the bytes")
	}
	checkWithEROFSReader(t, f, img)
}

// checkWithEROFSReader reads the bootstrap with package erofs's reader,
// with the blobs' uncompressed data as extra devices, and compares every
// file's contents and attributes.
func checkWithEROFSReader(t *testing.T, f *testFS, img []byte) {
	t.Helper()
	var devs []io.ReaderAt
	for _, d := range f.data {
		devs = append(devs, bytes.NewReader(d))
	}
	fsys, err := erofs.Open(bytes.NewReader(img), erofs.WithDevices(devs...))
	if err != nil {
		t.Fatalf("erofs.Open: %v", err)
	}
	nlinks := expectedNlinks(f.b)
	n := 0
	f.b.Walk(func(path string, node *Node) error {
		in := node.inode()
		name := path[1:]
		if name == "" {
			name = "."
		}
		fi, err := fsys.Lstat(name)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		st := fi.Sys().(*erofs.Stat)
		if st.Mode != in.Mode || st.UID != in.UID || st.GID != in.GID || st.Mtime != in.Mtime || st.MtimeNsec != in.MtimeNsec ||
			st.Nlink != nlinks[in] || st.Devmajor != in.Devmajor || st.Devminor != in.Devminor {
			t.Errorf("%s: erofs stat %+v, want mode %#o uid %d gid %d mtime %d.%d nlink %d rdev %d:%d", path, st,
				in.Mode, in.UID, in.GID, in.Mtime, in.MtimeNsec, nlinks[in], in.Devmajor, in.Devminor)
		}
		if len(st.Xattrs) != len(in.Xattrs) {
			t.Errorf("%s: xattrs %v, want %v", path, st.Xattrs, in.Xattrs)
		}
		for k, v := range in.Xattrs {
			if st.Xattrs[k] != string(v) {
				t.Errorf("%s: xattr %s = %q, want %q", path, k, st.Xattrs[k], v)
			}
		}
		if in.IsRegular() {
			data, err := fs.ReadFile(fsys, name)
			if err != nil || !bytes.Equal(data, f.contents[in]) {
				t.Errorf("%s: content mismatch (%d bytes, want %d): %v", path, len(data), len(f.contents[in]), err)
			}
			n++
		}
		if in.Mode&erofs.ModeTypeMask == erofs.ModeSymlink {
			if tgt, err := fsys.ReadLink(name); err != nil || tgt != in.Linkname {
				t.Errorf("%s: readlink %q, %v", path, tgt, err)
			}
		}
		return nil
	})
	if n < 100 {
		t.Errorf("checked only %d files", n)
	}
}

// expectedNlinks returns each inode's link count: the number of names of a
// non-directory, 2 + subdirectories for a directory.
func expectedNlinks(b *Bootstrap) map[*Node]uint32 {
	m := map[*Node]uint32{}
	b.Walk(func(_ string, n *Node) error {
		in := n.inode()
		if in.IsDir() {
			m[in] += 2
			for _, c := range in.Children {
				if c.Link == nil && c.IsDir() {
					m[in]++
				}
			}
		} else {
			m[in]++
		}
		return nil
	})
	return m
}

// TestNoBlobs writes a bootstrap without blobs: meta area at 0, no prefetch
// table, empty files only.
func TestNoBlobs(t *testing.T) {
	f := newTestFS(1<<20, 0)
	f.b.Flags = DefaultFlags
	f.b.Root.Children = []*Node{
		f.file("empty", 0o644, nil, nil),
		dir("d", 0o755, symlink("s", "../empty"), &Node{Name: "p", Mode: erofs.ModeFIFO | 0o644}),
	}
	b := f.finish()
	img, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(img[off:]) }
	if u32(1064) != 0 || u32(1060) != 0 || binary.LittleEndian.Uint16(img[1110:]) != 0 || u32(1200) != 0 {
		t.Errorf("meta_blkaddr %d, blocks %d, prefetch size %d", u32(1064), u32(1060), u32(1200))
	}
	got, err := Read(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if d := compareBootstraps(b, got); d != "" {
		t.Fatal(d)
	}
	checkMergedMount(t, b, img, nil)
}

// BenchmarkWrite encodes a tree of about 100,000 entries.
func BenchmarkWrite(b *testing.B) {
	bs := benchTree()
	b.ResetTimer()
	for b.Loop() {
		img, err := bs.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(img)))
	}
}

// BenchmarkRead decodes the same tree.
func BenchmarkRead(b *testing.B) {
	img, err := benchTree().MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(img)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := Read(bytes.NewReader(img), int64(len(img))); err != nil {
			b.Fatal(err)
		}
	}
}

// benchTree has 1,000 directories of 100 files with 3 chunks each (102
// distinct chunks in all).
func benchTree() *Bootstrap {
	f := newTestFS(4096, 1)
	payload := make([]byte, 3*4096)
	for d := range 1000 {
		var kids []*Node
		for i := range 100 {
			binary.LittleEndian.PutUint32(payload[8192:], uint32(i)) // 100 distinct tails
			n := f.file(fmt.Sprintf("file-%03d", i), 0o644, payload, func(int) int { return 0 })
			n.Xattrs = map[string][]byte{"user.i": []byte(n.Name)}
			kids = append(kids, n)
		}
		f.b.Root.Children = append(f.b.Root.Children, dir(fmt.Sprintf("dir-%04d", d), 0o755, kids...))
	}
	return f.finish()
}
