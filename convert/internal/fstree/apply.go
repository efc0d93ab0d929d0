package fstree

import "strings"

// Apply returns the tree that a read-only overlayfs mount shows with upper
// stacked on lower, where upper is a layer in overlayfs form (as FromTar
// with WhiteoutOverlay produces it) and lower is a layer or the result of an
// earlier Apply. Neither argument is modified.
//
//   - A whiteout (character device 0:0) in upper hides the lower path and
//     its subtree, and is not shown itself.
//   - A directory in upper replaces a lower non-directory, replaces a lower
//     directory with its subtree if it is opaque (trusted.overlay.opaque is
//     "y"), and otherwise merges with the lower directory: the metadata are
//     upper's and the children are the union. The root's opaque xattr is
//     ignored, as overlayfs does.
//   - A non-directory in upper replaces the lower path and its subtree.
//   - Whiteouts left in lower are not shown, and trusted.overlay.* xattrs
//     are removed everywhere: overlayfs hides both.
//
// Hard link groups are kept per layer (a group never spans layers). Nlink
// of directories is recomputed as 2 plus the number of subdirectories;
// Nlink of non-directories is kept from their layer, as overlayfs reports
// the real inode's count. Note that overlayfs reports nlink 1 for merged
// directories, so compare mounted overlays with IgnoreNlinkDirs.
func Apply(lower, upper *Tree) *Tree {
	res := lower.Clone()
	offset := 0
	for _, n := range res.Nodes {
		offset = max(offset, n.Link)
	}
	for _, p := range upper.Paths() {
		u := upper.Nodes[p].Clone()
		if u.Link != 0 {
			u.Link += offset
		}
		l := res.Nodes[p]
		switch {
		case p == ".":
		case u.IsWhiteout():
			removeAll(res, p)
			continue
		case u.IsDir():
			if l != nil && (!l.IsDir() || u.Xattrs[XattrOpaque] == "y") {
				removeAll(res, p)
			}
		default:
			removeAll(res, p)
		}
		res.Nodes[p] = u
	}
	for p, n := range res.Nodes {
		if p != "." && n.IsWhiteout() {
			removeAll(res, p)
			continue
		}
		for k := range n.Xattrs {
			if strings.HasPrefix(k, "trusted.overlay.") {
				delete(n.Xattrs, k)
			}
		}
		if len(n.Xattrs) == 0 {
			n.Xattrs = nil
		}
	}
	subdirs := make(map[string]uint32)
	for p, n := range res.Nodes {
		if n.IsDir() && p != "." {
			subdirs[parentDir(p)]++
		}
	}
	for p, n := range res.Nodes {
		if n.IsDir() {
			n.Nlink = 2 + subdirs[p]
		}
	}
	return res
}

// removeAll deletes p and everything below it from t.
func removeAll(t *Tree, p string) {
	delete(t.Nodes, p)
	for q := range t.Nodes {
		if isUnder(q, p) {
			delete(t.Nodes, q)
		}
	}
}
