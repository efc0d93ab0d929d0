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

// ApplyOCI returns the tree that applying the OCI layer upper onto lower
// gives, by the rules of the OCI image spec (layer.md, "Whiteouts"), which
// is what extracting the layers in order into one directory gives. upper is
// the layer as FromTar with WhiteoutKeep describes it: whiteout files are
// plain entries named ".wh.NAME" and ".wh..wh..opq". Neither argument is
// modified.
//
//   - Whiteouts apply to lower only, whatever their order in the layer: a
//     ".wh.NAME" removes NAME and its subtree from lower, an opaque marker
//     removes every lower entry of its directory (the root included).
//     Neither is shown.
//   - Then each other entry of upper is added as Apply adds it: a
//     directory over a lower directory takes the upper attributes and
//     xattrs (as rafs.Merge and overlayfs show it; extraction would keep
//     lower xattrs the entry does not set), except that a directory upper
//     only implies (Implicit) keeps the lower attributes: an extracted layer
//     never changes a directory it has no entry for.
//
// Unlike Apply (an overlayfs mount), ApplyOCI hides lower entries under a
// directory that the layer deletes and then recreates, and lower entries of
// an opaque root. Nlink is recounted for every node from the result.
func ApplyOCI(lower, upper *Tree) *Tree {
	res := lower.Clone()
	offset := 0
	for _, n := range res.Nodes {
		offset = max(offset, n.Link)
	}
	isWh := func(p string) bool { return p != "." && strings.HasPrefix(baseName(p), whiteoutPrefix) }
	for _, p := range upper.Paths() {
		if !isWh(p) {
			continue
		}
		dir, name := parentDir(p), baseName(p)
		if name == opaqueMarker {
			for q := range res.Nodes {
				if q != dir && isUnder(q, dir) {
					delete(res.Nodes, q)
				}
			}
		} else {
			removeAll(res, joinPath(dir, name[len(whiteoutPrefix):]))
		}
	}
	for _, p := range upper.Paths() {
		if isWh(p) {
			continue
		}
		u := upper.Nodes[p].Clone()
		if u.Link != 0 {
			u.Link += offset
		}
		l := res.Nodes[p]
		if u.IsDir() && l != nil && l.IsDir() {
			if u.Implicit {
				continue
			}
		} else if p != "." {
			removeAll(res, p)
		}
		res.Nodes[p] = u
	}
	for p := range res.Nodes {
		if isWh(p) {
			delete(res.Nodes, p)
		}
	}
	// Link counts: the names each inode has now, as extraction counts.
	groups := make(map[int]uint32)
	subdirs := make(map[string]uint32)
	for p, n := range res.Nodes {
		switch {
		case n.IsDir():
			if p != "." {
				subdirs[parentDir(p)]++
			}
		case n.Link != 0:
			groups[n.Link]++
		}
	}
	for p, n := range res.Nodes {
		switch {
		case n.IsDir():
			n.Nlink = 2 + subdirs[p]
		case n.Link != 0:
			n.Nlink = groups[n.Link]
		default:
			n.Nlink = 1
		}
	}
	return res
}
