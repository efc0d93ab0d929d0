package rafs

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/rafs-dev/rafs/blob"
)

// OCI whiteout names.
const (
	// WhiteoutPrefix marks a whiteout: ".wh.NAME" in a layer removes NAME
	// of the lower layers.
	WhiteoutPrefix = ".wh."
	// WhiteoutOpaque in a directory hides every lower-layer entry of that
	// directory.
	WhiteoutOpaque = ".wh..wh..opq"
	// whiteoutMetaPrefix is reserved for whiteout metadata files; entries
	// with it other than WhiteoutOpaque are dropped.
	whiteoutMetaPrefix = ".wh..wh."
)

// MergeOptions configures Merge.
type MergeOptions struct {
	// Flags, when non-zero, is the merged bootstrap's s_flags (WriteTo
	// still adds FlagHasXattr when needed). When zero, Merge uses the
	// first layer's flags with FlagHasXattr set (nydus's merge always sets
	// it), and FlagInlinedChunkDigest set only if every merged blob has
	// the blob feature blob.FeatureInlinedChunkDigest.
	Flags uint64
}

// Merge overlays per-layer bootstraps, layers[0] the lowest, into one
// bootstrap the way containerd applies OCI layers in order (the result is
// the tree a container would see):
//
//   - ".wh.NAME" removes NAME (and everything below it) of the lower layers;
//     the whiteout itself is dropped. ".wh..wh..opq" in a directory hides all
//     of that directory's lower-layer entries and is dropped. Whiteouts only
//     affect lower layers: an entry of the same layer survives. Whiteouts in
//     the lowest layer have nothing to remove and are dropped too (nydus's
//     merge keeps them; we follow containerd/overlayfs, where they never
//     show as files).
//   - A directory of an upper layer over a lower directory replaces its
//     attributes (mode, owner, times, xattrs) and keeps its lower entries
//     (unless opaque); over a lower non-directory it replaces it.
//   - A non-directory of an upper layer replaces whatever the lower layers
//     had at that path, including a whole directory tree.
//   - Hard links stay hard links within a layer (nodes sharing an inode
//     through Node.Link); replacing one name of a lower-layer hard-link
//     group leaves the other names linked to the original inode.
//
// The merged blob table holds each blob that some chunk of the merged tree
// references, in layer order (and, within a layer, in that layer's blob
// order); a blob that several layers list (by ID, e.g. a chunk
// dictionary's) appears once. Layers without chunks contribute no blob,
// and neither do blobs whose every chunk was whited out. Chunks'
// BlobIndex is re-indexed accordingly, and blob.FeatureInlinedFSMeta is
// cleared in the merged table (the merged bootstrap is not inside any
// blob). All layers must share the chunk size, the explicit-uid/gid
// flag and the tarfs flag (tarfs layers merge into a tarfs bootstrap,
// whose devices are the layers' tars, as nydus-image merge does for
// nydus-snapshotter's tarfs mode); at most MaxBlobs blobs may result.
//
// Merge does not modify the layers; the result shares no nodes with them.
func Merge(layers []*Bootstrap, opts *MergeOptions) (*Bootstrap, error) {
	if opts == nil {
		opts = &MergeOptions{}
	}
	if len(layers) == 0 {
		return nil, errors.New("rafs: merge: no layers")
	}
	m := &merger{blobIDs: map[string]int{}}
	first := layers[0]
	for i, l := range layers {
		if l == nil || l.Root == nil || !l.Root.IsDir() || l.Root.Link != nil {
			return nil, fmt.Errorf("rafs: merge: layer %d has no root directory", i)
		}
		if l.ChunkSize != first.ChunkSize {
			return nil, fmt.Errorf("rafs: merge: layer %d has chunk size %#x, layer 0 has %#x", i, l.ChunkSize, first.ChunkSize)
		}
		if (l.Flags^first.Flags)&FlagExplicitUIDGID != 0 {
			return nil, fmt.Errorf("rafs: merge: layer %d differs from layer 0 in the EXPLICIT_UID_GID flag", i)
		}
		if (l.Flags^first.Flags)&FlagTarfsMode != 0 {
			return nil, fmt.Errorf("rafs: merge: layer %d differs from layer 0 in the TARFS_MODE flag: tarfs layers (whose blobs are tars, in 512-byte blocks) merge only with tarfs layers", i)
		}
	}

	var root *Node
	for i, l := range layers {
		// Map the layer's blobs to candidate indexes (deduplicated by ID).
		remap := make([]uint32, len(l.Blobs))
		for j, bi := range l.Blobs {
			k, ok := m.blobIDs[bi.ID]
			if !ok {
				k = len(m.blobs)
				m.blobIDs[bi.ID] = k
				m.blobs = append(m.blobs, bi)
			}
			remap[j] = uint32(k)
		}
		c := &cloner{layer: i, remap: remap, nblobs: len(l.Blobs)}
		c.done.key = func(k int32) *Node { return c.copied(k).orig }
		lroot, err := c.cloneTree(l.Root)
		if err != nil {
			return nil, err
		}
		if root == nil {
			root = lroot
			dropWhiteouts(root)
			continue
		}
		applyDir(root, lroot)
	}

	// Keep referenced blobs only, in candidate order, and re-index. The
	// chunks of the copies carry candidate indexes plus candidateBase,
	// so an inode met under several names is re-indexed once.
	used := make([]bool, len(m.blobs))
	forEachInode(root, func(n *Node) {
		for _, c := range n.Chunks {
			used[c.BlobIndex-candidateBase] = true
		}
	})
	final := make([]uint32, len(m.blobs))
	out := &Bootstrap{ChunkSize: first.ChunkSize, Root: root}
	allInlined := true
	for k, bi := range m.blobs {
		if !used[k] {
			continue
		}
		final[k] = uint32(len(out.Blobs))
		bi.Features &^= blob.FeatureInlinedFSMeta
		if !bi.inlinesChunkDigests() {
			allInlined = false
		}
		out.Blobs = append(out.Blobs, bi)
	}
	if len(out.Blobs) > MaxBlobs {
		return nil, fmt.Errorf("rafs: merge: %d blobs, more than %d", len(out.Blobs), MaxBlobs)
	}
	forEachInode(root, func(n *Node) {
		for j := range n.Chunks {
			if k := n.Chunks[j].BlobIndex; k >= candidateBase {
				n.Chunks[j].BlobIndex = final[k-candidateBase]
			}
		}
	})
	out.Flags = opts.Flags
	if out.Flags == 0 {
		out.Flags = first.Flags | FlagHasXattr
		if allInlined {
			out.Flags |= FlagInlinedChunkDigest
		} else {
			out.Flags &^= FlagInlinedChunkDigest
		}
	}
	return out, nil
}

// merger holds the merged blob candidates.
type merger struct {
	blobs   []BlobInfo
	blobIDs map[string]int
}

// candidateBase is added to the blob indexes of copied chunks until the
// merged blob table is known; real indexes are below MaxBlobs.
const candidateBase = 1 << 31

// cloner deep-copies one layer's tree, remapping chunk blob indexes to
// merge candidates and keeping hard links within the layer.
type cloner struct {
	layer  int
	remap  []uint32
	nblobs int
	// The non-directory inodes copied, in pages that never move; done
	// finds one's number by the original.
	pages [][]copyPair
	n     int32
	done  nodeTable
}

// copyPair is an inode and its copy.
type copyPair struct{ orig, copy *Node }

func (c *cloner) copied(k int32) *copyPair { return &c.pages[k/recPageSize][k%recPageSize] }

// cloneTree copies the tree below root, without recursion. An error
// names the path, built from a stack of names only then.
func (c *cloner) cloneTree(root *Node) (*Node, error) {
	type frame struct {
		src, dst *Node
		next     int // the next child of src to copy
	}
	stack := []frame{{src: root, dst: copyAttrs(root)}}
	out := stack[0].dst
	if len(root.Children) > 0 {
		out.Children = make([]*Node, 0, len(root.Children))
	}
	for len(stack) > 0 {
		f := &stack[len(stack)-1]
		if f.next == len(f.src.Children) {
			stack = stack[:len(stack)-1]
			continue
		}
		k := f.src.Children[f.next]
		f.next++
		if k.Link == nil && k.IsDir() {
			kc := copyAttrs(k)
			if len(k.Children) > 0 {
				kc.Children = make([]*Node, 0, len(k.Children))
			}
			f.dst.Children = append(f.dst.Children, kc)
			stack = append(stack, frame{src: k, dst: kc})
			continue
		}
		var kc *Node
		var err error
		if k.Link != nil {
			var target *Node
			if target, err = c.inode(k.Link); err == nil {
				kc = &Node{Name: k.Name, Link: target}
			}
		} else {
			kc, err = c.inode(k)
		}
		if err != nil {
			names := make([]string, 0, len(stack))
			for _, f := range stack[1:] {
				names = append(names, f.src.Name)
			}
			names = append(names, k.Name)
			return nil, fmt.Errorf("rafs: merge: layer %d: /%s: %w", c.layer, strings.Join(names, "/"), err)
		}
		f.dst.Children = append(f.dst.Children, kc)
	}
	return out, nil
}

// inode returns the copy of a non-directory inode, made on first use.
func (c *cloner) inode(n *Node) (*Node, error) {
	if k, ok := c.done.find(n); ok {
		return c.copied(k).copy, nil
	}
	if n.IsDir() || n.Link != nil {
		return nil, errors.New("hard link to a directory or to another link")
	}
	cp := copyAttrs(n)
	cp.Linkname = n.Linkname
	cp.Chunks = slices.Clone(n.Chunks)
	for i := range cp.Chunks {
		bi := cp.Chunks[i].BlobIndex
		if int(bi) >= c.nblobs {
			return nil, fmt.Errorf("chunk %d references blob %d of %d", i, bi, c.nblobs)
		}
		cp.Chunks[i].BlobIndex = candidateBase + c.remap[bi]
	}
	if c.n%recPageSize == 0 {
		c.pages = append(c.pages, make([]copyPair, 0, recPageSize))
	}
	c.pages[len(c.pages)-1] = append(c.pages[len(c.pages)-1], copyPair{n, cp})
	c.done.insert(c.n)
	c.n++
	return cp, nil
}

// copyAttrs copies n's attributes (not its children, target or chunks).
func copyAttrs(n *Node) *Node {
	cp := *n
	cp.Children, cp.Chunks, cp.Link, cp.Linkname = nil, nil, nil, ""
	if n.Xattrs != nil {
		cp.Xattrs = maps.Clone(n.Xattrs)
		for k, v := range cp.Xattrs {
			cp.Xattrs[k] = slices.Clone(v)
		}
	}
	return &cp
}

// isWhiteout reports whether a name is any kind of whiteout entry.
func isWhiteout(name string) bool { return strings.HasPrefix(name, WhiteoutPrefix) }

// dropWhiteouts removes whiteout entries from a tree (the lowest layer's,
// or a directory that is new in its layer).
func dropWhiteouts(root *Node) {
	stack := []*Node{root}
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		kids := d.Children[:0]
		for _, k := range d.Children {
			if isWhiteout(k.Name) {
				continue
			}
			if k.Link == nil && k.IsDir() {
				stack = append(stack, k)
			}
			kids = append(kids, k)
		}
		clear(d.Children[len(kids):])
		d.Children = kids
	}
}

// applyDir overlays upper directory up onto merged directory dst: dst takes
// up's attributes, lower entries are whited out, then up's entries are
// added or merged; directories over directories the same way, with a
// stack of the pairs still to merge.
func applyDir(dst, up *Node) {
	type pair struct{ dst, up *Node }
	stack := []pair{{dst, up}}
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		dst, up := p.dst, p.up
		setAttrs(dst, up)
		names := map[string]bool{}
		opaque := false
		for _, k := range up.Children {
			switch {
			case k.Name == WhiteoutOpaque:
				opaque = true
			case strings.HasPrefix(k.Name, whiteoutMetaPrefix):
			case isWhiteout(k.Name):
				names[k.Name[len(WhiteoutPrefix):]] = true
			}
		}
		if opaque {
			dst.Children = nil
		} else if len(names) > 0 {
			kept := dst.Children[:0]
			for _, k := range dst.Children {
				if !names[k.Name] {
					kept = append(kept, k)
				}
			}
			clear(dst.Children[len(kept):])
			dst.Children = kept
		}
		index := make(map[string]int, len(dst.Children))
		for i, k := range dst.Children {
			index[k.Name] = i
		}
		for _, k := range up.Children {
			if isWhiteout(k.Name) {
				continue
			}
			i, found := index[k.Name]
			upDir := k.Link == nil && k.IsDir()
			if found && upDir {
				if old := dst.Children[i]; old.Link == nil && old.IsDir() {
					stack = append(stack, pair{old, k})
					continue
				}
			}
			if upDir {
				dropWhiteouts(k) // nothing below a new directory to white out
			}
			if found {
				dst.Children[i] = k
			} else {
				index[k.Name] = len(dst.Children)
				dst.Children = append(dst.Children, k)
			}
		}
	}
}

// setAttrs copies a directory's attributes (not its children).
func setAttrs(dst, src *Node) {
	kids := dst.Children
	name := dst.Name
	*dst = *src
	dst.Children, dst.Name = kids, name
}

// forEachInode calls fn with the inode of every node of the tree (n.inode():
// hard-link targets too, whether or not they are in the tree), once per
// name, without recursion.
func forEachInode(root *Node, fn func(*Node)) {
	stack := []*Node{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		fn(n.inode())
		if n.Link == nil && n.IsDir() {
			stack = append(stack, n.Children...)
		}
	}
}
