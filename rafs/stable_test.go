package rafs

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/erofs"
)

// randomFS builds a random tree from seed: every file type, names that
// sort around "." and "..", children in random order, directories of
// several blocks, xattrs, hard links (also to inodes no longer in the
// tree, and the same node under two names), deep chains, and files whose
// chunks are spread over two blobs.
func randomFS(seed uint64) *testFS {
	r := rand.New(rand.NewPCG(seed, seed*7+1))
	f := newTestFS(4096, 2)
	var files []*Node // non-directory inodes, for hard links
	name := func(i int) string {
		prefixes := []string{"", "-", "!", ".", "..", ".-", "~", "Z", "a"}
		n := prefixes[r.IntN(len(prefixes))] + fmt.Sprintf("n%d", i)
		if r.IntN(10) == 0 {
			n += strings.Repeat("x", r.IntN(240))
		}
		return n
	}
	xattrs := func() map[string][]byte {
		if r.IntN(4) != 0 {
			return nil
		}
		xs := map[string][]byte{}
		for k := range 1 + r.IntN(4) {
			ns := []string{"user.", "trusted.", "security.", "user.long"}[r.IntN(4)]
			xs[fmt.Sprintf("%s%d", ns, k)] = randBytes(r, r.IntN(300))
		}
		return xs
	}
	var fill func(d *Node, depth int)
	fill = func(d *Node, depth int) {
		n := r.IntN(10)
		if depth < 2 && r.IntN(4) == 0 {
			n = 150 + r.IntN(300) // several directory blocks
		}
		for i := range n {
			var c *Node
			switch k := r.IntN(20); {
			case k < 6:
				c = f.file(name(i), 0o644, randBytes(r, r.IntN(3*4096)), func(int) int { return r.IntN(2) })
				c.Mtime, c.MtimeNsec, c.UID = int64(r.Uint32()), uint32(r.IntN(1e9)), uint32(r.IntN(70000))
			case k < 8 && depth < 5 && (n < 20 || r.IntN(10) == 0):
				c = dir(name(i), 0o755)
				fill(c, depth+1)
			case k < 11:
				c = symlink(name(i), strings.Repeat("t", 1+r.IntN(4096)))
			case k < 13 && len(files) > 0:
				c = &Node{Name: name(i), Link: files[r.IntN(len(files))]}
			case k < 14 && len(files) > 0:
				c = files[r.IntN(len(files))] // the same node again: a hard link too
				if d.Child(c.Name) != nil {
					c = nil
				}
			case k < 15:
				c = &Node{Name: name(i), Mode: erofs.ModeCharDevice | 0o600, Devmajor: uint32(r.IntN(4096)), Devminor: uint32(r.IntN(1 << 20))}
			case k < 16:
				c = &Node{Name: name(i), Mode: erofs.ModeSocket | 0o755}
			default:
				c = &Node{Name: name(i), Mode: erofs.ModeFIFO | 0o600, GID: uint32(r.IntN(100))}
			}
			if c == nil || d.Child(c.Name) != nil {
				continue
			}
			if c.Link == nil && !c.IsDir() {
				if c.Xattrs == nil {
					c.Xattrs = xattrs()
				}
				files = append(files, c)
			}
			d.Children = append(d.Children, c)
		}
		// An inode whose first name is gone: only links to it remain.
		if r.IntN(3) == 0 {
			ghost := f.file("ghost", 0o600, randBytes(r, 100), func(int) int { return 0 })
			d.Children = append(d.Children, &Node{Name: "ghost-link", Link: ghost}, &Node{Name: "ghost-link2", Link: ghost})
		}
		d.Xattrs = xattrs()
	}
	fill(f.b.Root, 0)
	chain := f.b.Root
	for i := range 30 + r.IntN(30) {
		c := dir(fmt.Sprintf("deep%d", i), 0o700)
		chain.Children = append(chain.Children, c)
		chain = c
	}
	chain.Children = append(chain.Children, f.file("bottom", 0o644, []byte("bottom\n"), func(int) int { return 1 }))
	f.finish()
	return f
}

// walkText renders a tree in visit order: each path, whether it is a
// hard link to an earlier name, and its inode's attributes.
func walkText(b *Bootstrap) string {
	var sb strings.Builder
	b.Walk(func(path string, n *Node) error {
		fmt.Fprintf(&sb, "%s %v %s\n", path, n.Link != nil, describeInode(n.inode(), b.Blobs))
		return nil
	})
	return sb.String()
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:8])
}

// TestEncodingStable pins the bytes WriteTo and Merge produce for a range
// of trees: a change of the encoder that changes its output fails here.
func TestEncodingStable(t *testing.T) {
	got := map[string]string{}
	encode := func(name string, b *Bootstrap) []byte {
		t.Helper()
		img, err := b.MarshalBinary()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var buf bytes.Buffer
		if n, err := b.WriteTo(&buf); err != nil || n != int64(len(img)) || !bytes.Equal(buf.Bytes(), img) {
			t.Fatalf("%s: WriteTo (%d bytes, %v) differs from MarshalBinary (%d bytes)", name, n, err, len(img))
		}
		got[name] = sum(img)
		return img
	}
	rich := encode("rich", richFS().finish())
	rb, err := Read(bytes.NewReader(rich), int64(len(rich)))
	if err != nil {
		t.Fatal(err)
	}
	encode("rich-reread", rb)
	got["rich-read"] = sum([]byte(walkText(rb)))
	for seed := range uint64(6) {
		b := randomFS(seed).b
		img := encode(fmt.Sprintf("random%d", seed), b)
		rb, err := Read(bytes.NewReader(img), int64(len(img)))
		if err != nil {
			t.Fatalf("random%d: %v", seed, err)
		}
		encode(fmt.Sprintf("random%d-reread", seed), rb)
		got[fmt.Sprintf("random%d-read", seed)] = sum([]byte(walkText(rb)))
	}
	s := mergeLayers()
	m, err := Merge(s.layers, nil)
	if err != nil {
		t.Fatal(err)
	}
	encode("merge", m)
	var rl []*Bootstrap
	for seed := range uint64(3) {
		rl = append(rl, randomFS(seed+10).b)
	}
	m, err = Merge(rl, nil)
	if err != nil {
		t.Fatal(err)
	}
	encode("merge-random", m)

	want := map[string]string{
		"merge":          "ef908d43f973436e",
		"merge-random":   "b2acaa3a674d754c",
		"random0":        "1c8f6eede4bb212a",
		"random0-read":   "d2af775873b6d4b7",
		"random0-reread": "1c8f6eede4bb212a",
		"random1":        "ec18c379f242062c",
		"random1-read":   "59b0942df02b9d61",
		"random1-reread": "ec18c379f242062c",
		"random2":        "c7575f499c06d91f",
		"random2-read":   "84be5260bfad06d3",
		"random2-reread": "c7575f499c06d91f",
		"random3":        "b67ec8ccce7d3796",
		"random3-read":   "5c9c2062cbab06c0",
		"random3-reread": "b67ec8ccce7d3796",
		"random4":        "4f1ce4c09cfbcc9a",
		"random4-read":   "4e3d54dc83ef36bd",
		"random4-reread": "4f1ce4c09cfbcc9a",
		"random5":        "fe5339a24fc78e49",
		"random5-read":   "676a4778d2f70d4c",
		"random5-reread": "fe5339a24fc78e49",
		"rich":           "b26364cc90b11142",
		"rich-read":      "b2e039c0dc63ff65",
		"rich-reread":    "b26364cc90b11142",
	}
	for name, h := range want {
		if got[name] != h {
			t.Errorf("%s: sha256 %s, want %s", name, got[name], h)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d outputs, want %d", len(got), len(want))
	}
}
