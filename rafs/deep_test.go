package rafs

import (
	"bytes"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/erofs"
)

// deepDepth is deep enough that paths kept or formatted per inode cost
// hundreds of MB (depth² bytes), while the tree itself takes a few.
const deepDepth = 20000

// deepFS returns a bootstrap whose only file sits deepDepth directories
// down (/d/d/.../d/file), with its chunk, and the path of that file.
func deepFS() (*testFS, string) {
	f := newTestFS(4096, 1)
	leaf := f.file("file", 0o644, []byte("deep\n"), func(int) int { return 0 })
	leaf.UID = 0x5a5a5a5a
	d := f.b.Root
	for range deepDepth {
		c := dir("d", 0o755)
		d.Children = []*Node{c}
		d = c
	}
	d.Children = []*Node{leaf}
	f.finish()
	return f, strings.Repeat("/d", deepDepth) + "/file"
}

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestDeepTreeMemory: encoding, reading and merging a tree 20,000
// directories deep allocates memory linear in its entries. Keeping or
// formatting a path per inode would allocate about depth²: 400 MB and
// more.
func TestDeepTreeMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	f, _ := deepFS()
	b := f.b
	const limit = 40 << 20 // about 2 KB per directory
	check := func(what string, n uint64) {
		t.Helper()
		t.Logf("%s: %.1f MB allocated", what, float64(n)/(1<<20))
		if n > limit {
			t.Errorf("%s allocated %d MB for %d directories; want at most %d MB", what, n>>20, deepDepth, limit>>20)
		}
	}
	var img []byte
	var err error
	check("MarshalBinary", allocated(func() { img, err = b.MarshalBinary() }))
	if err != nil {
		t.Fatal(err)
	}
	check("WriteTo", allocated(func() { _, err = b.WriteTo(io.Discard) }))
	if err != nil {
		t.Fatal(err)
	}
	var rb *Bootstrap
	check("Read", allocated(func() { rb, err = Read(bytes.NewReader(img), int64(len(img))) }))
	if err != nil {
		t.Fatal(err)
	}
	check("Merge", allocated(func() { _, err = Merge([]*Bootstrap{rb, b}, nil) }))
	if err != nil {
		t.Fatal(err)
	}
	check("NewChunkDict", allocated(func() { _, err = NewChunkDict(rb) }))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	check("Visit", allocated(func() {
		err = rb.Visit(func(dirs []*Node, _ *Node) error {
			n++
			return nil
		})
	}))
	if err != nil || n != deepDepth+2 {
		t.Fatalf("Visit: %d nodes, %v", n, err)
	}
}

// TestDeepTreeErrors: errors about an entry deep down name its full path,
// though no path is kept while all goes well.
func TestDeepTreeErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	f, path := deepFS()
	b := f.b
	leafOf := func(b *Bootstrap) *Node {
		d := b.Root
		for d.IsDir() {
			d = d.Children[0]
		}
		return d
	}
	wantPath := func(what string, err error, tail string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), path+tail) {
			msg := "no error"
			if err != nil {
				msg = err.Error()
				msg = msg[:min(len(msg), 200)] + "..."
			}
			t.Errorf("%s: %s; want the full path %s/d/.../d/file%s", what, msg, path[:4], tail)
		}
	}

	// Encoding: an attribute and a name error at the bottom.
	leaf := leafOf(b)
	leaf.MtimeNsec = 1e9
	_, err := b.MarshalBinary()
	wantPath("WriteTo, bad attribute", err, ": mtime nanoseconds")
	leaf.MtimeNsec = 0
	leaf.Name = "a/b"
	_, err = b.WriteTo(io.Discard)
	if !strings.Contains(err.Error(), strings.Repeat("/d", deepDepth)+"/a/b: name") {
		t.Errorf("WriteTo, bad name: %.200s...", err)
	}
	leaf.Name = "file"

	// Reading: the leaf's inode, found by its uid, gets an invalid time.
	img, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for p := 0; p+erofs.ExtendedInodeSize <= len(img); p += inodeSlot {
		if rec := erofs.DecodeInode(img[p:]); rec.Extended() && rec.UID == leaf.UID && rec.Mode == uint16(erofs.ModeRegular|0o644) {
			rec.MtimeNsec = 1e9
			if err := rec.Encode(img[p:]); err != nil {
				t.Fatal(err)
			}
			found = true
		}
	}
	if !found {
		t.Fatal("leaf inode not found")
	}
	_, err = Read(bytes.NewReader(img), int64(len(img)))
	wantPath("Read", err, ": inode nid")

	// Merging: a hard link to a directory at the bottom.
	leafOf(b) // the tree is intact again
	d := b.Root
	for d.Children[0].IsDir() {
		d = d.Children[0]
	}
	d.Children = append(d.Children, &Node{Name: "link", Link: d})
	_, err = Merge([]*Bootstrap{b}, nil)
	if err == nil || !strings.Contains(err.Error(), strings.Repeat("/d", deepDepth)+"/link: hard link to a directory") {
		t.Errorf("Merge: %.200v...", err)
	}
}

// TestReadLinkCount: Read keeps only inodes with i_nlink above 1 for
// later names; a bootstrap whose i_nlink undercounts still reads as the
// same tree, hard links included.
func TestReadLinkCount(t *testing.T) {
	f := newTestFS(4096, 1)
	a := f.file("a", 0o644, []byte("linked\n"), func(int) int { return 0 })
	a.UID = 0x5a5a5a5a
	f.b.Root.Children = []*Node{a, &Node{Name: "b", Link: a}, dir("d", 0o755, &Node{Name: "c", Link: a})}
	f.finish()
	img, err := f.b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	want, err := Read(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	patched := false
	for p := 0; p+erofs.ExtendedInodeSize <= len(img); p += inodeSlot {
		if rec := erofs.DecodeInode(img[p:]); rec.Extended() && rec.UID == a.UID && rec.Nlink == 3 {
			rec.Nlink = 1
			if err := rec.Encode(img[p:]); err != nil {
				t.Fatal(err)
			}
			patched = true
		}
	}
	if !patched {
		t.Fatal("inode of a not found")
	}
	got, err := Read(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if g, w := walkText(got), walkText(want); g != w || got.Root.Children[1].Link != got.Root.Children[0] {
		t.Errorf("with i_nlink 1:\n%s\nwant\n%s", g, w)
	}
}

// TestWideTreeMemory: encoding, reading and merging a tree of 100,000
// empty files in 100 directories allocates a few tens of bytes per entry
// beyond the nodes themselves and the image: no second copy of the tree,
// no path or map entry per inode.
func TestWideTreeMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	const dirs, files = 100, 1000
	const entries = dirs * (files + 1)
	b := &Bootstrap{ChunkSize: 1 << 20, Flags: FlagCompressionNone | FlagHashSHA256 | FlagExplicitUIDGID | FlagEncryptionNone,
		Root: &Node{Mode: erofs.ModeDir | 0o755}}
	for i := range dirs {
		d := dir(fmt.Sprintf("d%04d", i), 0o755)
		for j := range files {
			d.Children = append(d.Children, &Node{Name: fmt.Sprintf("f%07d", j), Mode: erofs.ModeRegular | 0o644, Mtime: 1700000000})
		}
		b.Root.Children = append(b.Root.Children, d)
	}
	perEntry := func(what string, n uint64, extra int, limit float64) {
		t.Helper()
		got := (float64(n) - float64(extra)) / entries
		t.Logf("%s: %.0f bytes per entry besides %d bytes", what, got, extra)
		if got > limit {
			t.Errorf("%s allocated %.0f bytes per entry besides %d; want at most %.0f", what, got, extra, limit)
		}
	}
	var img []byte
	var err error
	n := allocated(func() { img, err = b.MarshalBinary() })
	if err != nil {
		t.Fatal(err)
	}
	perEntry("MarshalBinary", n, len(img), 80)
	perEntry("WriteTo", allocated(func() { _, err = b.WriteTo(io.Discard) }), 0, 80)
	if err != nil {
		t.Fatal(err)
	}
	// A node and its name are about 160 bytes.
	var rb *Bootstrap
	perEntry("Read", allocated(func() { rb, err = Read(bytes.NewReader(img), int64(len(img))) }), 0, 230)
	if err != nil {
		t.Fatal(err)
	}
	perEntry("Merge", allocated(func() { _, err = Merge([]*Bootstrap{rb}, nil) }), 0, 230)
	if err != nil {
		t.Fatal(err)
	}
}
