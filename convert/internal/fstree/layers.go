package fstree

import (
	"bytes"
	"strings"
)

// FromLayers returns the tree a container sees of the tar layers tars
// applied in order, tars[0] the lowest, as containerd extracts them: each
// layer read with FromTar (WhiteoutOverlay) and applied with Extract, and
// link counts recounted (RecountLinks). Whiteouts in the lowest layer hide
// nothing and are not shown.
func FromLayers(tars ...[]byte) (*Tree, error) {
	var res *Tree
	for i, data := range tars {
		up, err := FromTar(bytes.NewReader(data), TarOptions{Whiteouts: WhiteoutOverlay})
		if err != nil {
			return nil, err
		}
		if i == 0 {
			res = Apply(&Tree{Nodes: map[string]*Node{".": up.Nodes["."].Clone()}}, up)
		} else {
			res = Extract(res, up)
		}
	}
	RecountLinks(res)
	return res, nil
}

// Extract applies upper onto lower as containerd extracts a layer: Apply,
// except that a directory the upper tar only implies leaves the lower
// directory's attributes alone.
func Extract(lower, upper *Tree) *Tree {
	res := Apply(lower, upper)
	for p, u := range upper.Nodes {
		l, r := lower.Nodes[p], res.Nodes[p]
		if !u.Implicit || !u.IsDir() || l == nil || !l.IsDir() || r == nil || !r.IsDir() {
			continue
		}
		r.Mode, r.UID, r.GID, r.Mtime, r.MtimeNsec = l.Mode, l.UID, l.GID, l.Mtime, l.MtimeNsec
		r.Xattrs = nil
		for k, v := range l.Xattrs {
			if !strings.HasPrefix(k, "trusted.overlay.") {
				if r.Xattrs == nil {
					r.Xattrs = map[string]string{}
				}
				r.Xattrs[k] = v
			}
		}
	}
	return res
}

// RecountLinks sets the link count of the non-directories of t to the
// number of names their inode has in t: what extracting the layers in
// order gives (overlayfs would report the count of the inode's own layer).
func RecountLinks(t *Tree) {
	groups := map[int]uint32{}
	for _, n := range t.Nodes {
		if !n.IsDir() && n.Link != 0 {
			groups[n.Link]++
		}
	}
	for _, n := range t.Nodes {
		if !n.IsDir() {
			n.Nlink = 1
			if n.Link != 0 {
				n.Nlink = groups[n.Link]
			}
		}
	}
}
