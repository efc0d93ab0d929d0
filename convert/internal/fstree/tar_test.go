package fstree

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert/internal/tartest"
)

func fromTar(t *testing.T, b []byte, w Whiteouts) *Tree {
	t.Helper()
	tree, err := FromTar(bytes.NewReader(b), TarOptions{Whiteouts: w})
	if err != nil {
		t.Fatalf("FromTar: %v", err)
	}
	return tree
}

func caseTree(t *testing.T, name string, w Whiteouts) *Tree {
	t.Helper()
	c, ok := tartest.Find(name)
	if !ok {
		t.Fatalf("no case %q", name)
	}
	return fromTar(t, c.Tar, w)
}

func node(t *testing.T, tree *Tree, p string) *Node {
	t.Helper()
	n := tree.Nodes[p]
	if n == nil {
		t.Fatalf("no node %q in\n%s", p, tree)
	}
	return n
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestFromTarAllCases(t *testing.T) {
	for _, c := range tartest.Cases() {
		for _, w := range []Whiteouts{WhiteoutOverlay, WhiteoutKeep, WhiteoutStrip} {
			tree, err := FromTar(bytes.NewReader(c.Tar), TarOptions{Whiteouts: w})
			if err != nil {
				t.Errorf("%s (whiteouts %d): %v", c.Name, w, err)
				continue
			}
			checkInvariants(t, c.Name, tree)
		}
	}
}

// checkInvariants checks properties every FromTar tree has.
func checkInvariants(t *testing.T, name string, tree *Tree) {
	t.Helper()
	root := tree.Nodes["."]
	if root == nil || !root.IsDir() {
		t.Errorf("%s: no root directory", name)
		return
	}
	groups := make(map[int][]*Node)
	for p, n := range tree.Nodes {
		if n.Path != p {
			t.Errorf("%s: node %q has Path %q", name, p, n.Path)
		}
		if p != "." {
			if par := tree.Nodes[parentDir(p)]; par == nil || !par.IsDir() {
				t.Errorf("%s: %q has no parent directory", name, p)
			}
		}
		if n.Link != 0 {
			groups[n.Link] = append(groups[n.Link], n)
		} else if !n.IsDir() && n.Nlink != 1 {
			t.Errorf("%s: %q: nlink %d without a link group", name, p, n.Nlink)
		}
	}
	for id, g := range groups {
		if len(g) < 2 {
			t.Errorf("%s: link group %d has one path", name, id)
		}
		for _, n := range g {
			if n.Nlink != uint32(len(g)) || n.Digest != g[0].Digest || n.Mode != g[0].Mode {
				t.Errorf("%s: link group %d: %v differs from %v", name, id, n, g[0])
			}
		}
	}
}

func TestFromTarBadCases(t *testing.T) {
	for _, c := range tartest.BadCases() {
		for _, w := range []Whiteouts{WhiteoutOverlay, WhiteoutKeep, WhiteoutStrip} {
			if tree, err := FromTar(bytes.NewReader(c.Tar), TarOptions{Whiteouts: w}); err == nil {
				t.Errorf("%s (whiteouts %d): no error; tree:\n%s", c.Name, w, tree)
			}
		}
	}
}

func TestFromTarTypes(t *testing.T) {
	tree := caseTree(t, "types", WhiteoutOverlay)
	for _, want := range []struct {
		path         string
		mode         uint32
		major, minor uint32
	}{
		{"dev/null", ModeChar | 0o660, 1, 3},
		{"dev/sda1", ModeBlock | 0o660, 8, 1},
		{"dev/nvme0n1p9", ModeBlock | 0o660, 259, 1048575},
		{"dev/maxdev", ModeChar | 0o660, 4095, 1048575},
		{"fifo", ModeFIFO | 0o644, 0, 0},
		{"dir", ModeDir | 0o755, 0, 0},
	} {
		n := node(t, tree, want.path)
		if n.Mode != want.mode || n.Devmajor != want.major || n.Devminor != want.minor {
			t.Errorf("%s: got %v, want mode %#o rdev %d:%d", want.path, n, want.mode, want.major, want.minor)
		}
	}
	f := node(t, tree, "dir/file")
	if f.Size != 13 || f.Digest != sha("hello, world\n") || f.Nlink != 2 || f.Link == 0 {
		t.Errorf("dir/file: %v", f)
	}
	if h := node(t, tree, "dir/hardlink"); h.Link != f.Link {
		t.Errorf("dir/hardlink not linked to dir/file: %v", h)
	}
	s := node(t, tree, "dir/symlink")
	if s.Mode != ModeSymlink|0o777 || s.Linkname != "file" || s.Size != 4 {
		t.Errorf("dir/symlink: %v", s)
	}
	if r := node(t, tree, "."); !r.Implicit || r.Mode != ModeDir|0o755 || r.Nlink != 4 {
		t.Errorf("root: %v", r)
	}
}

func TestFromTarHardlinks(t *testing.T) {
	tree := caseTree(t, "hardlinks", WhiteoutOverlay)
	file := node(t, tree, "a/file")
	for _, p := range []string{"a/l1", "a/l2", "b/other", "b/c/deeper", "top"} {
		if n := node(t, tree, p); n.Link != file.Link || n.Xattrs["user.linked"] == "" {
			t.Errorf("%s: %v, want linked to a/file", p, n)
		}
	}
	if file.Nlink != 6 || file.UID != 1000 {
		t.Errorf("a/file: %v", file)
	}
	for _, pair := range [][2]string{{"a/sym", "a/lsym"}, {"a/chr", "a/lchr"}, {"a/blk", "a/lblk"}, {"a/fifo", "a/lfifo"}, {"a/empty", "a/lempty"}} {
		a, b := node(t, tree, pair[0]), node(t, tree, pair[1])
		if a.Link == 0 || a.Link != b.Link || a.Nlink != 2 {
			t.Errorf("%s and %s not a pair of links: %v, %v", pair[0], pair[1], a, b)
		}
	}
	if n := node(t, tree, "b/c"); !n.Implicit {
		t.Errorf("b/c not implicit: %v", n)
	}
}

func TestFromTarDuplicates(t *testing.T) {
	tree := caseTree(t, "duplicates", WhiteoutOverlay)
	f := node(t, tree, "f")
	if f.Digest != sha("version 2, longer\n") || f.Mode != ModeReg|0o600 || f.UID != 7 || f.Mtime != tartest.Epoch.Unix()+1 {
		t.Errorf("f: %v", f)
	}
	if x := node(t, tree, "x"); x.Link != f.Link || f.Nlink != 2 {
		t.Errorf("x not replaced by a link to f: %v, %v", x, f)
	}
	if k := node(t, tree, "keep"); k.Digest != sha("victim v1") || k.Nlink != 1 || k.Link != 0 {
		t.Errorf("keep changed with its replaced target: %v", k)
	}
	if v := node(t, tree, "victim"); v.Digest != sha("victim v2") || v.Nlink != 1 {
		t.Errorf("victim: %v", v)
	}
	if n := node(t, tree, "f2d"); !n.IsDir() || n.Mode != ModeDir|0o750 {
		t.Errorf("f2d: %v", n)
	}
	node(t, tree, "f2d/child")
	dd := node(t, tree, "dd")
	if dd.Mode != ModeDir|0o700 || dd.UID != 2 || dd.GID != 3 || dd.Nlink != 3 {
		t.Errorf("dd: %v", dd)
	}
	if want := map[string]string{"user.a": "1", "user.b": "2", "user.both": "new"}; !equalMaps(dd.Xattrs, want) {
		t.Errorf("dd xattrs = %q, want %q", dd.Xattrs, want)
	}
	for _, p := range []string{"dd/a", "dd/b", "dd/sub"} {
		node(t, tree, p)
	}
	if n := node(t, tree, "s2f"); n.Type() != ModeReg {
		t.Errorf("s2f: %v", n)
	}
	if n := node(t, tree, "f2s"); n.Type() != ModeSymlink {
		t.Errorf("f2s: %v", n)
	}
	if n := node(t, tree, "fifo2dev"); n.Type() != ModeChar || n.Devminor != 9 {
		t.Errorf("fifo2dev: %v", n)
	}

	tree = caseTree(t, "dir-to-file", WhiteoutOverlay)
	if n := node(t, tree, "d2f"); n.Type() != ModeReg {
		t.Errorf("d2f: %v", n)
	}
	for p := range tree.Nodes {
		if strings.HasPrefix(p, "d2f/") || strings.HasPrefix(p, "d2s/") {
			t.Errorf("%q survived the replacement of its directory", p)
		}
	}
	if r := node(t, tree, "."); r.Nlink != 2 {
		t.Errorf("root nlink %d, want 2", r.Nlink)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestFromTarImplicitParents(t *testing.T) {
	tree := caseTree(t, "implicit-parents", WhiteoutOverlay)
	for _, p := range []string{"a", "a/b", "a/b/c", "x", "q", "q/r", "s", "s/t", "p"} {
		n := node(t, tree, p)
		if !n.Implicit || n.Mode != ModeDir|0o755 || n.UID != 0 || n.Mtime != 0 {
			t.Errorf("%s: %v, want an implicit 0755 directory", p, n)
		}
	}
	late := node(t, tree, "late")
	if late.Implicit || late.Mode != ModeDir|0o750 || late.UID != 5 || late.GID != 6 || late.Mtime != tartest.Epoch.Unix()+5 {
		t.Errorf("late: %v", late)
	}
	node(t, tree, "late/child")
	if n := node(t, tree, "x/y"); n.Implicit || n.Mode != ModeDir|0o700 {
		t.Errorf("x/y: %v", n)
	}
}

func TestFromTarDotSlash(t *testing.T) {
	tree := caseTree(t, "dot-slash", WhiteoutOverlay)
	r := node(t, tree, ".")
	if r.Implicit || r.Mode != ModeDir|0o750 || r.UID != 1000 || r.GID != 1000 || r.Mtime != tartest.Epoch.Unix()+10 {
		t.Errorf("root: %v", r)
	}
	if s := node(t, tree, "s"); s.Linkname != "./a/f" {
		t.Errorf("symlink target rewritten: %v", s)
	}
	for _, p := range []string{"a/f", "a/link", "c/d", "c/e", "b"} {
		node(t, tree, p)
	}
	if len(tree.Nodes) != 9 {
		t.Errorf("got %d nodes, want 9:\n%s", len(tree.Nodes), tree)
	}
}

func TestFromTarTimes(t *testing.T) {
	tree := caseTree(t, "pax-mtime-nsec", WhiteoutOverlay)
	for p, want := range map[string][2]int64{
		"t":        {1600000000, 500000000},
		"t/nsec":   {1700000000, 123456789},
		"t/one-ns": {1700000000, 1},
		"t/max-ns": {1700000000, 999999999},
		"t/sym":    {1700000001, 250000000},
	} {
		if n := node(t, tree, p); n.Mtime != want[0] || int64(n.MtimeNsec) != want[1] {
			t.Errorf("%s: mtime %d.%09d, want %d.%09d", p, n.Mtime, n.MtimeNsec, want[0], want[1])
		}
	}
	tree = caseTree(t, "mtime-edges", WhiteoutOverlay)
	for p, want := range map[string][2]int64{
		"m/zero":                 {0, 0},
		"m/minus-one":            {-1, 0},
		"m/minus-one-and-a-half": {-2, 500000000},
		"m/int32-min":            {-2147483648, 0},
		"m/y2100":                {4102444800, 0},
		"m/old-dir":              {-86400, 0},
	} {
		if n := node(t, tree, p); n.Mtime != want[0] || int64(n.MtimeNsec) != want[1] {
			t.Errorf("%s: mtime %d.%09d, want %d.%09d", p, n.Mtime, n.MtimeNsec, want[0], want[1])
		}
	}
	tree = caseTree(t, "gnu-base256", WhiteoutOverlay)
	if n := node(t, tree, "b256/bigids"); n.UID != 4000000000 || n.GID != 2097152 {
		t.Errorf("b256/bigids: %v", n)
	}
	if n := node(t, tree, "b256/negative-mtime"); n.Mtime != -1000000 {
		t.Errorf("b256/negative-mtime: %v", n)
	}
}

func TestFromTarXattrs(t *testing.T) {
	tree := caseTree(t, "xattrs", WhiteoutOverlay)
	u := node(t, tree, "x/user")
	if v, ok := u.Xattrs["user.empty"]; !ok || v != "" {
		t.Errorf("x/user: user.empty = %q, %v; want an empty value", v, ok)
	}
	if u.Xattrs["user.binary"] != "\x00\x01\xfe\xff\x00" {
		t.Errorf("x/user: user.binary = %q", u.Xattrs["user.binary"])
	}
	if c := node(t, tree, "x/cap").Xattrs["security.capability"]; len(c) != 20 || c[3] != 0x02 {
		t.Errorf("x/cap: security.capability = %x", c)
	}
	if a := node(t, tree, "x/acl").Xattrs["system.posix_acl_access"]; len(a) != 4+6*8 || a[0] != 2 {
		t.Errorf("x/acl: system.posix_acl_access = %x", a)
	}
	d := node(t, tree, "x")
	if len(d.Xattrs) != 3 {
		t.Errorf("x: xattrs %q", d.Xattrs)
	}
	if n := node(t, tree, "x/many"); len(n.Xattrs) != 24 {
		t.Errorf("x/many: %d xattrs, want 24", len(n.Xattrs))
	}

	tree = caseTree(t, "xattr-libarchive", WhiteoutOverlay)
	la := node(t, tree, "la")
	want := map[string]string{"user.lib archive=%": "value with \x00 NUL", "user.plain": "hi", "user.pad": "padded"}
	if !equalMaps(la.Xattrs, want) {
		t.Errorf("la xattrs = %q, want %q", la.Xattrs, want)
	}

	tree = caseTree(t, "pax-global", WhiteoutOverlay)
	if v := node(t, tree, "g/inherits").Xattrs["user.global"]; v != "from the global header" {
		t.Errorf("g/inherits: user.global = %q", v)
	}
	if v := node(t, tree, "g/overrides").Xattrs["user.global"]; v != "own value" {
		t.Errorf("g/overrides: user.global = %q", v)
	}

	tree = caseTree(t, "xattr-max-value", WhiteoutOverlay)
	if v := node(t, tree, "max").Xattrs["user.max"]; len(v) != 65535 {
		t.Errorf("max: user.max has %d bytes, want 65535", len(v))
	}
}

func TestFromTarWhiteouts(t *testing.T) {
	overlay := caseTree(t, "whiteouts", WhiteoutOverlay)
	for _, p := range []string{"dir/gone", "implicit/sub/deleted", "rootgone", "both/x", "native/wh", "dir/subdir-gone"} {
		if n := node(t, overlay, p); !n.IsWhiteout() || n.Mode != ModeChar {
			t.Errorf("%s: %v, want a 0:0 whiteout with mode 0o020000", p, n)
		}
	}
	if n := node(t, overlay, "dir/gone"); n.UID != 1000 || n.GID != 1001 || n.Mtime != tartest.Epoch.Unix()+100 {
		t.Errorf("dir/gone lost the header's owner or mtime: %v", n)
	}
	for _, p := range []string{".", "dir", "implicit/sub", "both", "native"} {
		if v, ok := node(t, overlay, p).Xattrs[XattrOrigin]; !ok || v != "" {
			t.Errorf("%s: no empty %s", p, XattrOrigin)
		}
	}
	for _, p := range []string{"opq", "optimp", "late", "both", "srcopq"} {
		if v := node(t, overlay, p).Xattrs[XattrOpaque]; v != "y" {
			t.Errorf("%s: %s = %q, want y", p, XattrOpaque, v)
		}
	}
	for _, p := range []string{"dir", "implicit/sub", "native"} {
		if _, ok := node(t, overlay, p).Xattrs[XattrOpaque]; ok {
			t.Errorf("%s: unexpected %s", p, XattrOpaque)
		}
	}
	for p := range overlay.Nodes {
		if strings.Contains(p, ".wh.") {
			t.Errorf("whiteout file %q kept", p)
		}
	}
	if n := node(t, overlay, "late"); n.Mode != ModeDir|0o700 || n.UID != 5 {
		t.Errorf("late: %v", n)
	}

	keep := caseTree(t, "whiteouts", WhiteoutKeep)
	for _, p := range []string{"dir/.wh.gone", "opq/.wh..wh..opq", ".wh.rootgone", "optimp/.wh..wh..opq", "both/.wh.x"} {
		if n := node(t, keep, p); n.Type() != ModeReg {
			t.Errorf("%s: %v, want a regular file", p, n)
		}
	}
	for p, n := range keep.Nodes {
		if _, ok := n.Xattrs[XattrOrigin]; ok {
			t.Errorf("%s: %s added with WhiteoutKeep", p, XattrOrigin)
		}
		if _, ok := n.Xattrs[XattrOpaque]; ok && p != "srcopq" {
			t.Errorf("%s: %s added with WhiteoutKeep", p, XattrOpaque)
		}
	}

	strip := caseTree(t, "whiteouts", WhiteoutStrip)
	for p, n := range strip.Nodes {
		if n.IsWhiteout() || strings.Contains(p, ".wh.") {
			t.Errorf("%s kept with WhiteoutStrip: %v", p, n)
		}
		if _, ok := n.Xattrs[XattrOrigin]; ok {
			t.Errorf("%s: %s with WhiteoutStrip", p, XattrOrigin)
		}
		if _, ok := n.Xattrs[XattrOpaque]; ok {
			t.Errorf("%s: %s with WhiteoutStrip", p, XattrOpaque)
		}
	}
	for _, p := range []string{"implicit/sub", "optimp", "opq/new", "dir/keep", "native"} {
		node(t, strip, p)
	}
}

func TestFromTarGzip(t *testing.T) {
	c, _ := tartest.Find("hardlinks")
	plain := fromTar(t, c.Tar, WhiteoutOverlay)
	zipped := fromTar(t, tartest.Gzip(c.Tar), WhiteoutOverlay)
	if d := Compare(plain, zipped); len(d) > 0 {
		t.Errorf("gzip changes the tree:\n%s", strings.Join(d, "\n"))
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(c.Tar)
	zw.Close()
	b := buf.Bytes()
	b[len(b)-8] ^= 0xff // corrupt the CRC-32
	if _, err := FromTar(bytes.NewReader(b), TarOptions{}); err == nil {
		t.Error("FromTar accepted a gzip stream with a bad checksum")
	}
}

// tarOf writes headers (with contents for regular files) into a tar.
func tarOf(t *testing.T, entries ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < len(entries); i++ {
		h := entries[i].(*tar.Header)
		var data []byte
		if i+1 < len(entries) {
			if s, ok := entries[i+1].(string); ok {
				data = []byte(s)
				i++
			}
		}
		h.Size = int64(len(data))
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1, 0)
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(data)
	}
	tw.Close()
	return buf.Bytes()
}

func TestFromTarEdges(t *testing.T) {
	// A hard link to itself is ignored; unknown types are skipped;
	// xattrs EROFS cannot name are dropped.
	b := tarOf(t,
		&tar.Header{Typeflag: tar.TypeReg, Name: "f", Mode: 0o644, PAXRecords: map[string]string{
			"SCHILY.xattr.user.ok":         "1",
			"SCHILY.xattr.system.nfs4_acl": "x",
			"SCHILY.xattr.os2.name":        "x",
		}}, "data",
		&tar.Header{Typeflag: tar.TypeLink, Name: "f", Linkname: "./f"},
		&tar.Header{Typeflag: 'V', Name: "volume"},
		&tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755},
	)
	tree := fromTar(t, b, WhiteoutOverlay)
	f := node(t, tree, "f")
	if f.Link != 0 || f.Nlink != 1 || f.Digest != sha("data") || !equalMaps(f.Xattrs, map[string]string{"user.ok": "1"}) {
		t.Errorf("f: %v", f)
	}
	if len(tree.Nodes) != 3 {
		t.Errorf("tree:\n%s", tree)
	}
	// Whiteouts naming no file, whiteout directories, entries below
	// whiteouts and hard links to them are errors in every mode.
	for _, hdrs := range [][]*tar.Header{
		{{Typeflag: tar.TypeReg, Name: "d/.wh."}},
		{{Typeflag: tar.TypeReg, Name: "d/.wh.."}},
		{{Typeflag: tar.TypeReg, Name: "d/.wh..."}},
		{{Typeflag: tar.TypeDir, Name: "d/.wh.x/"}},
		{{Typeflag: tar.TypeDir, Name: ".wh..wh..opq/"}},
		{{Typeflag: tar.TypeReg, Name: "d/.wh.x/y"}},
		{{Typeflag: tar.TypeReg, Name: "d/.wh.x"}, {Typeflag: tar.TypeLink, Name: "l", Linkname: "d/.wh.x"}},
	} {
		var args []any
		for _, h := range hdrs {
			args = append(args, h, "")
		}
		b = tarOf(t, args...)
		for _, w := range []Whiteouts{WhiteoutOverlay, WhiteoutKeep, WhiteoutStrip} {
			if _, err := FromTar(bytes.NewReader(b), TarOptions{Whiteouts: w}); err == nil {
				t.Errorf("whiteouts %d: FromTar accepted %q", w, hdrs[len(hdrs)-1].Name)
			}
		}
	}
	// A whiteout may be a hard link to another (as aufs made them).
	b = tarOf(t, &tar.Header{Typeflag: tar.TypeReg, Name: ".wh.a"}, "",
		&tar.Header{Typeflag: tar.TypeLink, Name: ".wh.b", Linkname: ".wh.a"}, "")
	for _, w := range []Whiteouts{WhiteoutOverlay, WhiteoutKeep, WhiteoutStrip} {
		if _, err := FromTar(bytes.NewReader(b), TarOptions{Whiteouts: w}); err != nil {
			t.Errorf("whiteouts %d: linked whiteouts: %v", w, err)
		}
	}
	// Symlink targets hold 1 to 4095 bytes.
	for n, ok := range map[int]bool{0: false, 1: true, 4095: true, 4096: false} {
		b = tarOf(t, &tar.Header{Typeflag: tar.TypeSymlink, Name: "s", Linkname: strings.Repeat("t", n), Format: tar.FormatPAX}, "")
		if _, err := FromTar(bytes.NewReader(b), TarOptions{}); (err == nil) != ok {
			t.Errorf("symlink target of %d bytes: %v", n, err)
		}
	}
	// A hard link to itself that names nothing is an error.
	b = tarOf(t, &tar.Header{Typeflag: tar.TypeLink, Name: "self", Linkname: "self"}, "")
	if _, err := FromTar(bytes.NewReader(b), TarOptions{}); err == nil {
		t.Error("FromTar accepted a hard link to itself with no earlier entry")
	}
	// An opaque marker below a regular file is an error.
	b = tarOf(t, &tar.Header{Typeflag: tar.TypeReg, Name: "f", Mode: 0o644}, &tar.Header{Typeflag: tar.TypeReg, Name: "f/.wh..wh..opq"})
	if _, err := FromTar(bytes.NewReader(b), TarOptions{}); err == nil {
		t.Error("FromTar accepted an opaque marker below a regular file")
	}
	// An empty input is an empty tree.
	tree = fromTar(t, nil, WhiteoutOverlay)
	if len(tree.Nodes) != 1 {
		t.Errorf("empty input:\n%s", tree)
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{
		"":         ".",
		".":        ".",
		"./":       ".",
		"./a/":     "a",
		"a//b/./c": "a/b/c",
		"a/../b":   "b",
	} {
		if got, err := cleanName(in); err != nil || got != want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"/a", "..", "../a", "a/../../b", "a/" + strings.Repeat("x", 256)} {
		if got, err := cleanName(in); err == nil {
			t.Errorf("cleanName(%q) = %q, want an error", in, got)
		}
	}
}
