package fstree

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// CompareOptions relaxes Compare for sources that cannot represent some
// metadata. The zero value compares everything.
type CompareOptions struct {
	IgnoreMtime     bool // skip mtimes entirely
	IgnoreNsec      bool // compare mtimes to the second only
	IgnoreOwner     bool // skip uid and gid
	IgnoreNlink     bool // skip link counts of all nodes
	IgnoreNlinkDirs bool // skip link counts of directories
	IgnoreHardlinks bool // skip hard link grouping
	// IgnoreImplicit skips mode, owner and mtime of directories that are
	// Implicit in want: these are FromTar's choice, not the tar's. Their
	// xattrs (overlayfs ones from whiteouts) are still compared.
	IgnoreImplicit bool
	// IgnoreXattr, if set, skips the xattrs for which it returns true.
	IgnoreXattr func(path, name string) bool
	// Skip, if set, skips the paths for which it returns true, as if they
	// were in neither tree.
	Skip func(path string) bool
}

// Compare returns every difference between want and got, one line each,
// in path order. It is CompareWith with the zero CompareOptions.
func Compare(want, got *Tree) []string {
	return CompareWith(want, got, CompareOptions{})
}

// CompareWith returns every difference between want and got allowed by opt,
// one line each, in path order. Each line starts with the quoted path,
// then names the field, e.g.
//
//	"a/b": mode: want 0o100644, got 0o100755
//	"a/c": missing (want reg ...)
//	"a/d": xattr "user.x": want "1", got "2"
//	"a/e": hardlinks: want ["a/e" "a/f"], got ["a/e"]
//
// Access and change times are not part of a Tree and never compared.
func CompareWith(want, got *Tree, opt CompareOptions) []string {
	var diffs []string
	diff := func(p, format string, args ...any) {
		diffs = append(diffs, fmt.Sprintf("%q: ", p)+fmt.Sprintf(format, args...))
	}
	paths := make(map[string]bool, len(want.Nodes))
	for p := range want.Nodes {
		paths[p] = true
	}
	for p := range got.Nodes {
		paths[p] = true
	}
	wantGroups, gotGroups := linkGroups(want, opt.Skip), linkGroups(got, opt.Skip)
	for _, p := range slices.SortedFunc(maps.Keys(paths), comparePaths) {
		if opt.Skip != nil && opt.Skip(p) {
			continue
		}
		w, g := want.Nodes[p], got.Nodes[p]
		switch {
		case g == nil:
			diff(p, "missing (want %s)", w.describe())
			continue
		case w == nil:
			diff(p, "unexpected (got %s)", g.describe())
			continue
		case w.Type() != g.Type():
			diff(p, "type: want %s, got %s", typeName(w.Mode), typeName(g.Mode))
			continue
		}
		implicit := opt.IgnoreImplicit && w.Implicit && w.IsDir()
		if !implicit {
			if w.Mode != g.Mode {
				diff(p, "mode: want %O, got %O", w.Mode, g.Mode)
			}
			if !opt.IgnoreOwner {
				if w.UID != g.UID {
					diff(p, "uid: want %d, got %d", w.UID, g.UID)
				}
				if w.GID != g.GID {
					diff(p, "gid: want %d, got %d", w.GID, g.GID)
				}
			}
			if !opt.IgnoreMtime {
				if w.Mtime != g.Mtime {
					diff(p, "mtime: want %d, got %d", w.Mtime, g.Mtime)
				}
				if !opt.IgnoreNsec && w.MtimeNsec != g.MtimeNsec {
					diff(p, "mtime nsec: want %d, got %d", w.MtimeNsec, g.MtimeNsec)
				}
			}
		}
		switch w.Type() {
		case ModeReg:
			if w.Size != g.Size {
				diff(p, "size: want %d, got %d", w.Size, g.Size)
			}
			if w.Digest != g.Digest {
				diff(p, "digest: want %.16s, got %.16s", w.Digest, g.Digest)
			}
		case ModeSymlink:
			if w.Linkname != g.Linkname {
				diff(p, "link target: want %q, got %q", w.Linkname, g.Linkname)
			}
		case ModeChar, ModeBlock:
			if w.Devmajor != g.Devmajor || w.Devminor != g.Devminor {
				diff(p, "rdev: want %d:%d, got %d:%d", w.Devmajor, w.Devminor, g.Devmajor, g.Devminor)
			}
		}
		{
			names := make(map[string]bool)
			for k := range w.Xattrs {
				names[k] = true
			}
			for k := range g.Xattrs {
				names[k] = true
			}
			for _, k := range slices.Sorted(maps.Keys(names)) {
				if opt.IgnoreXattr != nil && opt.IgnoreXattr(p, k) {
					continue
				}
				wv, wok := w.Xattrs[k]
				gv, gok := g.Xattrs[k]
				switch {
				case !gok:
					diff(p, "xattr %q: missing (want %s)", k, quoteValue(wv))
				case !wok:
					diff(p, "xattr %q: unexpected (got %s)", k, quoteValue(gv))
				case wv != gv:
					diff(p, "xattr %q: want %s, got %s", k, quoteValue(wv), quoteValue(gv))
				}
			}
		}
		if !opt.IgnoreNlink && !(opt.IgnoreNlinkDirs && w.IsDir()) && w.Nlink != g.Nlink {
			diff(p, "nlink: want %d, got %d", w.Nlink, g.Nlink)
		}
		if !opt.IgnoreHardlinks && !w.IsDir() {
			wg, gg := wantGroups[w.Link], gotGroups[g.Link]
			if w.Link == 0 {
				wg = []string{p}
			}
			if g.Link == 0 {
				gg = []string{p}
			}
			if !slices.Equal(wg, gg) {
				diff(p, "hardlinks: want %s, got %s", quoteList(wg), quoteList(gg))
			}
		}
	}
	return diffs
}

// linkGroups maps each non-zero Link of t to its sorted paths, leaving out
// skipped paths.
func linkGroups(t *Tree, skip func(string) bool) map[int][]string {
	groups := make(map[int][]string)
	for p, n := range t.Nodes {
		if n.Link != 0 && !n.IsDir() && (skip == nil || !skip(p)) {
			groups[n.Link] = append(groups[n.Link], p)
		}
	}
	for _, g := range groups {
		slices.SortFunc(g, comparePaths)
	}
	return groups
}

func quoteList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, " ") + "]"
}
