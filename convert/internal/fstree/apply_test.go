package fstree

import (
	"archive/tar"
	"slices"
	"strings"
	"testing"
)

func TestApply(t *testing.T) {
	lower := fromTar(t, tarOf(t,
		&tar.Header{Typeflag: tar.TypeDir, Name: "keep/", Mode: 0o755},
		&tar.Header{Typeflag: tar.TypeReg, Name: "keep/a", Mode: 0o644}, "lower a",
		&tar.Header{Typeflag: tar.TypeDir, Name: "merge/", Mode: 0o755, PAXRecords: map[string]string{"SCHILY.xattr.user.x": "lower"}},
		&tar.Header{Typeflag: tar.TypeReg, Name: "merge/lower", Mode: 0o644}, "l",
		&tar.Header{Typeflag: tar.TypeReg, Name: "merge/both", Mode: 0o644}, "lower both",
		&tar.Header{Typeflag: tar.TypeDir, Name: "opq/", Mode: 0o755},
		&tar.Header{Typeflag: tar.TypeReg, Name: "opq/old", Mode: 0o644}, "old",
		&tar.Header{Typeflag: tar.TypeDir, Name: "opq/sub/", Mode: 0o755},
		&tar.Header{Typeflag: tar.TypeReg, Name: "gone", Mode: 0o644}, "gone",
		&tar.Header{Typeflag: tar.TypeDir, Name: "gonedir/", Mode: 0o755},
		&tar.Header{Typeflag: tar.TypeReg, Name: "gonedir/x", Mode: 0o644}, "x",
		&tar.Header{Typeflag: tar.TypeReg, Name: "file2dir", Mode: 0o644}, "f",
		&tar.Header{Typeflag: tar.TypeDir, Name: "dir2file/", Mode: 0o755},
		&tar.Header{Typeflag: tar.TypeReg, Name: "dir2file/x", Mode: 0o644}, "x",
		&tar.Header{Typeflag: tar.TypeReg, Name: "hl1", Mode: 0o644}, "hard",
		&tar.Header{Typeflag: tar.TypeLink, Name: "hl2", Linkname: "hl1"},
	), WhiteoutOverlay)
	upper := fromTar(t, tarOf(t,
		&tar.Header{Typeflag: tar.TypeDir, Name: "merge/", Mode: 0o700},
		&tar.Header{Typeflag: tar.TypeReg, Name: "merge/both", Mode: 0o600}, "upper both",
		&tar.Header{Typeflag: tar.TypeReg, Name: "merge/upper", Mode: 0o644}, "u",
		&tar.Header{Typeflag: tar.TypeReg, Name: "merge/.wh.nothing"},
		&tar.Header{Typeflag: tar.TypeDir, Name: "opq/", Mode: 0o755},
		&tar.Header{Typeflag: tar.TypeReg, Name: "opq/.wh..wh..opq"},
		&tar.Header{Typeflag: tar.TypeReg, Name: "opq/new", Mode: 0o644}, "new",
		&tar.Header{Typeflag: tar.TypeReg, Name: ".wh.gone"},
		&tar.Header{Typeflag: tar.TypeReg, Name: ".wh.gonedir"},
		&tar.Header{Typeflag: tar.TypeDir, Name: "file2dir/", Mode: 0o755},
		&tar.Header{Typeflag: tar.TypeReg, Name: "dir2file", Mode: 0o644}, "now a file",
		&tar.Header{Typeflag: tar.TypeReg, Name: ".wh.hl2"},
		&tar.Header{Typeflag: tar.TypeReg, Name: "up1", Mode: 0o644}, "up",
		&tar.Header{Typeflag: tar.TypeLink, Name: "up2", Linkname: "up1"},
	), WhiteoutOverlay)
	lowerCopy, upperCopy := lower.Clone(), upper.Clone()

	got := Apply(lower, upper)

	if d := Compare(lowerCopy, lower); len(d) > 0 {
		t.Errorf("Apply modified lower:\n%s", strings.Join(d, "\n"))
	}
	if d := Compare(upperCopy, upper); len(d) > 0 {
		t.Errorf("Apply modified upper:\n%s", strings.Join(d, "\n"))
	}
	wantPaths := []string{".", "dir2file", "file2dir", "hl1", "keep", "keep/a", "merge", "merge/both", "merge/lower", "merge/upper",
		"opq", "opq/new", "up1", "up2"}
	if paths := got.Paths(); !slices.Equal(paths, wantPaths) {
		t.Errorf("paths %q\nwant  %q", paths, wantPaths)
	}
	merge := node(t, got, "merge")
	if merge.Mode != ModeDir|0o700 || merge.Xattrs != nil || merge.Nlink != 2 {
		t.Errorf("merge: %v, want upper's metadata and no xattrs", merge)
	}
	if n := node(t, got, "merge/both"); n.Digest != sha("upper both") || n.Mode != ModeReg|0o600 {
		t.Errorf("merge/both: %v", n)
	}
	if n := node(t, got, "dir2file"); n.Type() != ModeReg {
		t.Errorf("dir2file: %v", n)
	}
	if n := node(t, got, "file2dir"); !n.IsDir() {
		t.Errorf("file2dir: %v", n)
	}
	for p, n := range got.Nodes {
		for k := range n.Xattrs {
			if strings.HasPrefix(k, "trusted.overlay.") {
				t.Errorf("%s: %s visible", p, k)
			}
		}
	}
	// The lower hard link group keeps its layer's link count, and the
	// upper group is not merged with it.
	hl1, up1, up2 := node(t, got, "hl1"), node(t, got, "up1"), node(t, got, "up2")
	if hl1.Nlink != 2 || up1.Link == 0 || up1.Link != up2.Link || up1.Link == hl1.Link {
		t.Errorf("links: hl1 %v, up1 %v, up2 %v", hl1, up1, up2)
	}
	if r := node(t, got, "."); r.Nlink != 2+4 {
		t.Errorf("root nlink %d, want 6", r.Nlink)
	}
}

func TestApplyHidesLowerWhiteouts(t *testing.T) {
	bottom := fromTar(t, tarOf(t,
		&tar.Header{Typeflag: tar.TypeReg, Name: "d/.wh.x"},
		&tar.Header{Typeflag: tar.TypeReg, Name: "d/y", Mode: 0o644}, "y",
	), WhiteoutOverlay)
	got := Apply(&Tree{Nodes: map[string]*Node{}}, bottom)
	if want := []string{".", "d", "d/y"}; !slices.Equal(got.Paths(), want) {
		t.Errorf("paths %q, want %q", got.Paths(), want)
	}
	if x := node(t, got, "d").Xattrs; x != nil {
		t.Errorf("d: xattrs %q", x)
	}
}

func TestApplyStacks(t *testing.T) {
	// Three layers: a file created, deleted, and re-created as a directory.
	l0 := fromTar(t, tarOf(t, &tar.Header{Typeflag: tar.TypeReg, Name: "a/f", Mode: 0o644}, "v0"), WhiteoutOverlay)
	l1 := fromTar(t, tarOf(t, &tar.Header{Typeflag: tar.TypeReg, Name: "a/.wh.f"}), WhiteoutOverlay)
	l2 := fromTar(t, tarOf(t, &tar.Header{Typeflag: tar.TypeDir, Name: "a/f/", Mode: 0o700}), WhiteoutOverlay)
	got := Apply(Apply(l0, l1), l2)
	if want := []string{".", "a", "a/f"}; !slices.Equal(got.Paths(), want) {
		t.Fatalf("paths %q, want %q", got.Paths(), want)
	}
	if n := node(t, got, "a/f"); n.Mode != ModeDir|0o700 {
		t.Errorf("a/f: %v", n)
	}
	if n := node(t, Apply(l0, l1), "a"); n.Nlink != 2 {
		t.Errorf("a: %v", n)
	}
	if _, ok := Apply(l0, l1).Nodes["a/f"]; ok {
		t.Error("a/f not deleted by the whiteout")
	}
}
