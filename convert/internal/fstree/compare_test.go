package fstree

import (
	"slices"
	"strings"
	"testing"
)

// sampleTree returns a small tree with every kind of node.
func sampleTree() *Tree {
	t := &Tree{Nodes: map[string]*Node{}}
	add := func(n *Node) { t.Nodes[n.Path] = n }
	add(&Node{Path: ".", Mode: ModeDir | 0o755, Nlink: 3})
	add(&Node{Path: "d", Mode: ModeDir | 0o750, UID: 1, GID: 2, Mtime: 10, MtimeNsec: 5, Nlink: 2,
		Xattrs: map[string]string{"user.a": "1", "trusted.b": "2"}})
	add(&Node{Path: "d/f", Mode: ModeReg | 0o644, Size: 3, Digest: sha("abc"), Nlink: 2, Link: 1})
	add(&Node{Path: "d/g", Mode: ModeReg | 0o644, Size: 3, Digest: sha("abc"), Nlink: 2, Link: 1})
	add(&Node{Path: "h", Mode: ModeReg | 0o600, Size: 0, Digest: sha(""), Nlink: 1})
	add(&Node{Path: "s", Mode: ModeSymlink | 0o777, Size: 3, Linkname: "d/f", Nlink: 1})
	add(&Node{Path: "c", Mode: ModeChar | 0o600, Devmajor: 1, Devminor: 3, Nlink: 1})
	return t
}

func TestCompareEqual(t *testing.T) {
	if d := Compare(sampleTree(), sampleTree()); len(d) != 0 {
		t.Errorf("identical trees differ:\n%s", strings.Join(d, "\n"))
	}
	// Link ids are arbitrary: renumbering a group is no difference.
	got := sampleTree()
	got.Nodes["d/f"].Link, got.Nodes["d/g"].Link = 7, 7
	if d := Compare(sampleTree(), got); len(d) != 0 {
		t.Errorf("renumbered link group differs:\n%s", strings.Join(d, "\n"))
	}
	// Nil and empty xattr maps are equal.
	want := sampleTree()
	want.Nodes["h"].Xattrs = map[string]string{}
	if d := Compare(want, sampleTree()); len(d) != 0 {
		t.Errorf("empty xattrs differ from nil:\n%s", strings.Join(d, "\n"))
	}
}

func TestCompareDetects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*Tree)
		want   []string
		opt    CompareOptions // options under which the difference vanishes
	}{
		{"missing", func(t *Tree) { delete(t.Nodes, "h") }, []string{`"h": missing (want reg 0600`}, CompareOptions{Skip: func(p string) bool { return p == "h" }}},
		{"extra", func(t *Tree) { t.Nodes["x"] = &Node{Path: "x", Mode: ModeFIFO | 0o644, Nlink: 1} }, []string{`"x": unexpected (got fifo 0644`}, CompareOptions{Skip: func(p string) bool { return p == "x" }}},
		{"type", func(t *Tree) { t.Nodes["h"].Mode = ModeFIFO | 0o600 }, []string{`"h": type: want reg, got fifo`}, CompareOptions{Skip: func(p string) bool { return p == "h" }}},
		{"mode", func(t *Tree) { t.Nodes["h"].Mode = ModeReg | 0o4600 }, []string{`"h": mode: want 0o100600, got 0o104600`}, CompareOptions{Skip: func(p string) bool { return p == "h" }}},
		{"uid", func(t *Tree) { t.Nodes["d"].UID = 9 }, []string{`"d": uid: want 1, got 9`}, CompareOptions{IgnoreOwner: true}},
		{"gid", func(t *Tree) { t.Nodes["d"].GID = 9 }, []string{`"d": gid: want 2, got 9`}, CompareOptions{IgnoreOwner: true}},
		{"mtime", func(t *Tree) { t.Nodes["d"].Mtime = -1 }, []string{`"d": mtime: want 10, got -1`}, CompareOptions{IgnoreMtime: true}},
		{"nsec", func(t *Tree) { t.Nodes["d"].MtimeNsec = 0 }, []string{`"d": mtime nsec: want 5, got 0`}, CompareOptions{IgnoreNsec: true}},
		{"size", func(t *Tree) { t.Nodes["h"].Size = 1 }, []string{`"h": size: want 0, got 1`}, CompareOptions{Skip: func(p string) bool { return p == "h" }}},
		{"digest", func(t *Tree) { t.Nodes["h"].Digest = sha("x") }, []string{`"h": digest: want e3b0c44298fc1c14, got 2d711642b726b044`}, CompareOptions{Skip: func(p string) bool { return p == "h" }}},
		{"linkname", func(t *Tree) { t.Nodes["s"].Linkname = "elsewhere" }, []string{`"s": link target: want "d/f", got "elsewhere"`}, CompareOptions{Skip: func(p string) bool { return p == "s" }}},
		{"rdev", func(t *Tree) { t.Nodes["c"].Devminor = 4 }, []string{`"c": rdev: want 1:3, got 1:4`}, CompareOptions{Skip: func(p string) bool { return p == "c" }}},
		{"xattr value", func(t *Tree) { t.Nodes["d"].Xattrs["user.a"] = "2" }, []string{`"d": xattr "user.a": want "1", got "2"`},
			CompareOptions{IgnoreXattr: func(p, name string) bool { return name == "user.a" }}},
		{"xattr missing", func(t *Tree) { delete(t.Nodes["d"].Xattrs, "trusted.b") }, []string{`"d": xattr "trusted.b": missing (want "2")`},
			CompareOptions{IgnoreXattr: func(p, name string) bool { return p == "d" }}},
		{"xattr extra", func(t *Tree) { t.Nodes["h"].Xattrs = map[string]string{"user.new": ""} }, []string{`"h": xattr "user.new": unexpected (got "")`},
			CompareOptions{IgnoreXattr: func(p, name string) bool { return true }}},
		{"nlink", func(t *Tree) { t.Nodes["h"].Nlink = 2 }, []string{`"h": nlink: want 1, got 2`}, CompareOptions{IgnoreNlink: true}},
		{"nlink dir", func(t *Tree) { t.Nodes["d"].Nlink = 1 }, []string{`"d": nlink: want 2, got 1`}, CompareOptions{IgnoreNlinkDirs: true}},
		{"hardlink split", func(t *Tree) { t.Nodes["d/g"].Link = 0; t.Nodes["d/g"].Nlink = 2 }, []string{
			`"d/f": hardlinks: want ["d/f" "d/g"], got ["d/f"]`,
			`"d/g": hardlinks: want ["d/f" "d/g"], got ["d/g"]`,
		}, CompareOptions{IgnoreHardlinks: true}},
		{"hardlink joined", func(t *Tree) { t.Nodes["h"].Link = 1 }, []string{
			`"d/f": hardlinks: want ["d/f" "d/g"], got ["d/f" "d/g" "h"]`,
			`"d/g": hardlinks: want ["d/f" "d/g"], got ["d/f" "d/g" "h"]`,
			`"h": hardlinks: want ["h"], got ["d/f" "d/g" "h"]`,
		}, CompareOptions{IgnoreHardlinks: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := sampleTree()
			tc.mutate(got)
			diffs := Compare(sampleTree(), got)
			if len(diffs) != len(tc.want) {
				t.Fatalf("got %d differences, want %d:\n%s", len(diffs), len(tc.want), strings.Join(diffs, "\n"))
			}
			for i, d := range diffs {
				if !strings.HasPrefix(d, tc.want[i]) {
					t.Errorf("difference %d = %s\nwant prefix    %s", i, d, tc.want[i])
				}
			}
			if d := CompareWith(sampleTree(), got, tc.opt); len(d) != 0 {
				t.Errorf("with %+v still:\n%s", tc.opt, strings.Join(d, "\n"))
			}
		})
	}
}

func TestCompareMany(t *testing.T) {
	// Every field of one node differs: one line each, in a stable order.
	got := sampleTree()
	d := got.Nodes["d"]
	d.Mode, d.UID, d.GID, d.Mtime, d.MtimeNsec, d.Nlink = ModeDir|0o700, 5, 6, 11, 6, 9
	d.Xattrs = map[string]string{"user.a": "x", "user.z": "z"}
	diffs := Compare(sampleTree(), got)
	var fields []string
	for _, l := range diffs {
		fields = append(fields, strings.SplitN(strings.TrimPrefix(l, `"d": `), ":", 2)[0])
	}
	want := []string{"mode", "uid", "gid", "mtime", "mtime nsec", `xattr "trusted.b"`, `xattr "user.a"`, `xattr "user.z"`, "nlink"}
	if !slices.Equal(fields, want) {
		t.Errorf("fields %q, want %q\n%s", fields, want, strings.Join(diffs, "\n"))
	}
}

func TestCompareImplicit(t *testing.T) {
	want := sampleTree()
	want.Nodes["d"].Implicit = true
	got := sampleTree()
	d := got.Nodes["d"]
	d.Mode, d.UID, d.GID, d.Mtime, d.MtimeNsec = ModeDir|0o700, 0, 0, 99, 0
	if diffs := CompareWith(want, got, CompareOptions{IgnoreImplicit: true}); len(diffs) != 0 {
		t.Errorf("implicit directory metadata compared:\n%s", strings.Join(diffs, "\n"))
	}
	d.Nlink = 5
	delete(d.Xattrs, "user.a")
	if diffs := CompareWith(want, got, CompareOptions{IgnoreImplicit: true}); len(diffs) != 2 {
		t.Errorf("got %q, want the xattr and nlink differences", diffs)
	}
}

func TestComparePaths(t *testing.T) {
	paths := []string{"a-b", "a/b", "a", ".", "b", "a/b/c", "a/a", "\xff", "a.b"}
	slices.SortFunc(paths, comparePaths)
	want := []string{".", "a", "a/a", "a/b", "a/b/c", "a-b", "a.b", "b", "\xff"}
	if !slices.Equal(paths, want) {
		t.Errorf("sorted %q, want %q", paths, want)
	}
}

func TestNodeString(t *testing.T) {
	s := sampleTree().String()
	for _, want := range []string{
		`"d" dir 0750 1:2 mtime=10.000000005 nlink=2 trusted.b="2" user.a="1"`,
		`"d/f" reg 0644 0:0 mtime=0.000000000 nlink=2 size=3 sha256=ba7816bf8f01 link=1`,
		`"s" symlink 0777 0:0 mtime=0.000000000 nlink=1 -> "d/f"`,
		`"c" char 0600 0:0 mtime=0.000000000 nlink=1 rdev=1:3`,
	} {
		if !strings.Contains(s, want+"\n") {
			t.Errorf("String() lacks %s:\n%s", want, s)
		}
	}
}
