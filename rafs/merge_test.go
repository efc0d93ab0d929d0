package rafs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/zeebo/blake3"
)

// layerSet is a set of per-layer bootstraps plus their blob data by id.
type layerSet struct {
	layers []*Bootstrap
	data   map[string][]byte // blob id → uncompressed data
}

func (s *layerSet) add(f *testFS, root ...*Node) {
	f.b.Root.Children = root
	b := f.finish()
	for i := range b.Blobs {
		b.Blobs[i].Features |= blob.FeatureInlinedFSMeta | blob.FeatureInlinedChunkDigest
	}
	b.Flags |= FlagInlinedChunkDigest
	if s.data == nil {
		s.data = map[string][]byte{}
	}
	for i, bi := range b.Blobs {
		s.data[bi.ID] = f.data[i]
	}
	s.layers = append(s.layers, b)
}

func reg(f *testFS, name, content string) *Node {
	return f.file(name, 0o644, []byte(content), func(int) int { return 0 })
}

// expectedMerge applies the layers with a simple path-based model of OCI
// layer application and returns "path description" lines, sorted.
func expectedMerge(layers []*Bootstrap) []string {
	want := map[string]string{} // path → description
	isDir := map[string]bool{}
	removeTree := func(p string) {
		for q := range want {
			if q == p || strings.HasPrefix(q, p+"/") {
				delete(want, q)
				delete(isDir, q)
			}
		}
	}
	for li, l := range layers {
		type ent struct {
			p string
			n *Node
		}
		var ents []ent
		l.Walk(func(p string, n *Node) error {
			ents = append(ents, ent{p, n})
			return nil
		})
		// Whiteouts act on the lower layers only.
		for _, e := range ents {
			dir, base := path.Split(e.p)
			dir = strings.TrimSuffix(dir, "/")
			switch {
			case base == WhiteoutOpaque:
				for q := range want {
					if strings.HasPrefix(q, dir+"/") {
						delete(want, q)
						delete(isDir, q)
					}
				}
			case strings.HasPrefix(base, ".wh..wh."):
			case strings.HasPrefix(base, ".wh."):
				removeTree(dir + "/" + base[4:])
			}
		}
		for _, e := range ents {
			if strings.Contains(e.p, "/.wh.") {
				continue
			}
			in := e.n.inode()
			p := e.p
			if p == "/" {
				p = ""
			}
			if !in.IsDir() || !isDir[p] {
				removeTree(p)
			}
			want[p] = describeInode(in, l.Blobs)
			isDir[p] = in.IsDir()
		}
		_ = li
	}
	var lines []string
	for p, d := range want {
		if p == "" {
			p = "/"
		}
		lines = append(lines, p+" "+d)
	}
	slices.Sort(lines)
	return lines
}

// pathLines is describe without the hard-link lines.
func pathLines(b *Bootstrap) []string {
	var out []string
	for _, l := range strings.Split(describe(b), "\n") {
		if !strings.HasPrefix(l, "link ") {
			out = append(out, l)
		}
	}
	return out
}

func mergeLayers() *layerSet {
	s := &layerSet{}
	// Layer 0.
	f := newTestFS(4096, 1)
	hl := reg(f, "hl1", "linked in layer 0")
	s.add(f,
		dir("a", 0o755, reg(f, "x", "a/x"), reg(f, "y", "a/y")),
		dir("b", 0o755, reg(f, "z", "b/z")),
		reg(f, "c", "c"),
		dir("d", 0o755, dir("e", 0o755, reg(f, "f", "d/e/f"))),
		reg(f, "keep", "keep"),
		reg(f, ".wh.bogus", ""), // a whiteout in the lowest layer
		hl, &Node{Name: "hl2", Link: hl}, &Node{Name: "hl3", Link: hl},
		dir("o", 0o755, reg(f, "p", "o/p"), dir("q", 0o755, reg(f, "r", "o/q/r"))),
		dir("gone", 0o755, reg(f, "all", strings.Repeat("only here ", 1000))),
	)
	// Layer 1: whiteouts, opaque dir, replacements.
	f = newTestFS(4096, 1)
	bdir := dir("b", 0o700, reg(f, "z2", "b/z2"))
	bdir.UID, bdir.Xattrs = 33, map[string][]byte{"user.b": []byte("1")}
	s.add(f,
		reg(f, ".wh.c", ""),
		dir("a", 0o755, reg(f, ".wh.x", ""), reg(f, "new", "a/new")),
		bdir,
		reg(f, "d", "d is a file now"),
		dir("o", 0o711, reg(f, WhiteoutOpaque, ""), reg(f, "s", "o/s")),
		reg(f, "hl1", "hl1 replaced"),
		reg(f, "c2", "same-layer entry survives its whiteout"), reg(f, ".wh.c2", ""),
		dir("e", 0o755, reg(f, ".wh.ghost", ""), dir("sub", 0o755, reg(f, WhiteoutOpaque, ""))),
		reg(f, ".wh.gone", ""),
		reg(f, ".wh..wh.meta", ""),
	)
	// Layer 2: metadata only (no chunks), re-adds a/x as a directory.
	f = newTestFS(4096, 0)
	s.add(f,
		dir("a", 0o755, dir("x", 0o755, symlink("l", "../y"))),
		&Node{Name: "keep", Mode: erofs.ModeFIFO | 0o600},
		&Node{Name: "e", Mode: erofs.ModeCharDevice},
	)
	return s
}

func TestMerge(t *testing.T) {
	s := mergeLayers()
	before := make([]string, len(s.layers))
	for i, l := range s.layers {
		before[i] = describe(l)
	}
	m, err := Merge(s.layers, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range s.layers {
		if describe(l) != before[i] {
			t.Errorf("Merge modified layer %d", i)
		}
	}
	want := expectedMerge(s.layers)
	got := pathLines(m)
	if d := firstDiff(strings.Join(want, "\n"), strings.Join(got, "\n")); d != "" {
		t.Errorf("merged tree differs from the layers applied in order:\n%s", d)
	}
	// Spot checks.
	for _, p := range []string{"/a/y", "/a/new", "/a/x/l", "/b/z", "/b/z2", "/o/s", "/c2", "/keep", "/hl2", "/e"} {
		if m.Lookup(p) == nil {
			t.Errorf("%s missing", p)
		}
	}
	for _, p := range []string{"/c", "/.wh.bogus", "/o/p", "/o/q", "/d/e", "/gone", "/e/sub", "/.wh..wh.meta"} {
		if m.Lookup(p) != nil {
			t.Errorf("%s should not exist", p)
		}
	}
	if n := m.Lookup("/a/x"); n == nil || !n.IsDir() {
		t.Error("/a/x should be a directory")
	}
	if n := m.Lookup("/b"); n.Mode != erofs.ModeDir|0o700 || n.UID != 33 || string(n.Xattrs["user.b"]) != "1" {
		t.Errorf("/b attributes not replaced: %+v", n)
	}
	if n := m.Lookup("/d"); n == nil || !n.IsRegular() {
		t.Error("/d should be a file")
	}
	for _, n := range m.Root.Children {
		if strings.HasPrefix(n.Name, ".wh.") {
			t.Errorf("whiteout %s survived", n.Name)
		}
	}
	// Hard links: hl1 was replaced; hl2 and hl3 still share layer 0's inode.
	h2, h3 := m.Lookup("/hl2"), m.Lookup("/hl3")
	if h2.inode() != h3.inode() || h2.inode() == m.Lookup("/hl1").inode() {
		t.Error("hard-link group broken")
	}
	// Blobs: layer 0's and layer 1's (layer 2 has none), features fixed.
	if len(m.Blobs) != 2 || m.Blobs[0].ID != s.layers[0].Blobs[0].ID || m.Blobs[1].ID != s.layers[1].Blobs[0].ID {
		t.Fatalf("blobs %+v", m.Blobs)
	}
	for _, bi := range m.Blobs {
		if bi.Features&blob.FeatureInlinedFSMeta != 0 {
			t.Errorf("blob %s keeps INLINED_FS_META", bi.ID)
		}
	}
	if m.Flags&FlagHasXattr == 0 || m.Flags&FlagInlinedChunkDigest == 0 {
		t.Errorf("flags %#x", m.Flags)
	}

	// The merged bootstrap encodes, reads back and (on Linux as root)
	// mounts with the layers' blobs.
	img, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Read(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if d := compareBootstraps(m, back); d != "" {
		t.Fatal(d)
	}
	if nl := expectedNlinks(back)[back.Lookup("/hl2").inode()]; nl != 2 {
		t.Errorf("hl2 nlink %d, want 2", nl)
	}
	checkMergedMount(t, m, img, s.data)
}

// mergedContents returns each regular file's contents, rebuilt from the
// blobs' data, checking every chunk's digest.
func mergedContents(t *testing.T, b *Bootstrap, data map[string][]byte) map[*Node][]byte {
	t.Helper()
	out := map[*Node][]byte{}
	b.Walk(func(p string, n *Node) error {
		in := n.inode()
		if !in.IsRegular() {
			return nil
		}
		var buf []byte
		for _, c := range in.Chunks {
			bi := b.Blobs[c.BlobIndex]
			d := data[bi.ID][c.UncompressedOffset:][:c.UncompressedSize]
			sum := sha256.Sum256(d)
			if bi.Digester == blob.DigesterBlake3 {
				sum = blake3.Sum256(d)
			}
			if sum != c.Digest {
				t.Errorf("%s: chunk data does not match its digest", p)
			}
			buf = append(buf, d...)
		}
		out[in] = buf
		return nil
	})
	return out
}

func TestMergeErrors(t *testing.T) {
	s := mergeLayers()
	if _, err := Merge(nil, nil); err == nil {
		t.Error("no layers: no error")
	}
	odd := *s.layers[1]
	odd.ChunkSize = 8192
	if _, err := Merge([]*Bootstrap{s.layers[0], &odd}, nil); err == nil || !strings.Contains(err.Error(), "chunk size") {
		t.Errorf("chunk size mismatch: %v", err)
	}
	odd = *s.layers[1]
	odd.Flags &^= FlagExplicitUIDGID
	if _, err := Merge([]*Bootstrap{s.layers[0], &odd}, nil); err == nil {
		t.Error("uid/gid flag mismatch: no error")
	}
	// More than MaxBlobs blobs.
	var many []*Bootstrap
	for i := range MaxBlobs + 1 {
		f := newTestFS(4096, 1)
		f.b.Root.Children = []*Node{reg(f, fmt.Sprint("f", i), strings.Repeat("x", i+1))}
		many = append(many, f.finish())
	}
	if _, err := Merge(many, nil); err == nil || !strings.Contains(err.Error(), "blobs") {
		t.Errorf("too many blobs: %v", err)
	}
	if m, err := Merge(many[:MaxBlobs], nil); err != nil || len(m.Blobs) != MaxBlobs {
		t.Errorf("%d blobs: %v", MaxBlobs, err)
	} else if img, err := m.MarshalBinary(); err != nil {
		t.Errorf("encoding %d blobs: %v", MaxBlobs, err)
	} else if back, err := Read(bytes.NewReader(img), int64(len(img))); err != nil {
		t.Errorf("reading %d blobs: %v", MaxBlobs, err)
	} else if d := compareBootstraps(m, back); d != "" {
		t.Errorf("%d blobs: %s", MaxBlobs, d)
	} else if off := binary.LittleEndian.Uint64(img[1160:]); off != 36864 {
		t.Errorf("blob table of %d blobs at %d, want 36864", MaxBlobs, off)
	}
	// A dictionary blob listed by two layers appears once.
	l0, l1 := s.layers[0], *s.layers[1]
	l1.Blobs = append([]BlobInfo{l0.Blobs[0]}, l1.Blobs...)
	l1.Root = cloneShifted(l1.Root, 1)
	m, err := Merge([]*Bootstrap{l0, &l1}, &MergeOptions{Flags: DefaultFlags})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Blobs) != 2 || m.Flags != DefaultFlags {
		t.Errorf("%d blobs, flags %#x", len(m.Blobs), m.Flags)
	}
	if got, want := pathLines(m), expectedMerge([]*Bootstrap{l0, &l1}); !slices.Equal(got, want) {
		t.Errorf("shared blob merge: %s", firstDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
	}
}

// cloneShifted copies a tree adding delta to every chunk's BlobIndex.
func cloneShifted(n *Node, delta uint32) *Node {
	links := map[*Node]*Node{}
	var cp func(n *Node) *Node
	cp = func(n *Node) *Node {
		if n.Link != nil {
			return &Node{Name: n.Name, Link: cp(n.Link)}
		}
		if c, ok := links[n]; ok {
			return c
		}
		c := *n
		c.Xattrs = maps.Clone(n.Xattrs)
		c.Chunks = slices.Clone(n.Chunks)
		for i := range c.Chunks {
			c.Chunks[i].BlobIndex += delta
		}
		c.Children = nil
		for _, k := range n.Children {
			c.Children = append(c.Children, cp(k))
		}
		links[n] = &c
		return &c
	}
	return cp(n)
}

// TestMergeFixtures merges the two nydus-made bootstraps (the 2.2 fixture
// and the one inside the older inline-meta blob) and checks the result
// through Read and, on Linux as root, the kernel, with both blobs'
// decompressed data as devices.
func TestMergeFixtures(t *testing.T) {
	img0 := readFixture(t, "bootstrap/rafs-v6-2.2.boot")
	blob0 := readFixture(t, "blobs/"+fixtureBlobID)
	blob1 := readFixture(t, "toc/2fa78cad554b75ac91a4a125ed148d0ddeb25efa4aaa8bd80e5dc292690a4dca")
	img1 := inlineBootstrap(t, blob1)
	var layers []*Bootstrap
	data := map[string][]byte{}
	zr, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for i, img := range [][]byte{img0, img1} {
		b, err := Read(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatal(err)
		}
		raw := [][]byte{blob0, blob1}[i]
		u := make([]byte, b.Blobs[0].UncompressedSize)
		for _, n := range b.Root.Children {
			for _, c := range n.Chunks {
				d, err := zr.DecodeAll(raw[c.CompressedOffset:c.CompressedOffset+uint64(c.CompressedSize)], nil)
				if err != nil {
					t.Fatal(err)
				}
				copy(u[c.UncompressedOffset:], d)
			}
		}
		data[b.Blobs[0].ID] = u
		layers = append(layers, b)
	}
	m, err := Merge(layers, nil)
	if err != nil {
		t.Fatal(err)
	}
	// lib.rs of the upper layer replaces the lower one.
	if len(m.Blobs) != 2 || len(m.Root.Children) != 4 || m.Lookup("/lib.rs").Size != 678 || m.Lookup("/sync_io.rs").Size != 13400 {
		t.Fatalf("merged: %d blobs\n%s", len(m.Blobs), describe(m))
	}
	// The older blob lacks INLINED_CHUNK_DIGEST, so the merged flags drop it.
	if want := (0x194 | FlagHasXattr) &^ FlagInlinedChunkDigest; m.Flags != want {
		t.Errorf("flags %#x, want %#x", m.Flags, want)
	}
	img, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Read(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	if d := compareBootstraps(m, back); d != "" {
		t.Fatal(d)
	}
	checkMergedMount(t, m, img, data)
}
