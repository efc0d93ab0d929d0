package convert

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/rafs"
)

// ReadNydusLayer reads the layer bootstrap inlined in a Nydus blob of size
// bytes and returns it with the blob's id, the hex SHA-256 of the whole
// blob, which it substitutes for the placeholder id in the blob table
// (together with the blob's TOC size and digest). A blob without an
// inline bootstrap is an error.
func ReadNydusLayer(r io.ReaderAt, size int64) (*rafs.Bootstrap, string, error) {
	br, err := blob.Open(r, size)
	if err != nil {
		return nil, "", fmt.Errorf("convert: %w", err)
	}
	raw, err := br.Bootstrap()
	if err != nil {
		return nil, "", fmt.Errorf("convert: inline bootstrap: %w", err)
	}
	b, err := rafs.Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, "", fmt.Errorf("convert: inline bootstrap: %w", err)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
		return nil, "", fmt.Errorf("convert: hashing the blob: %w", err)
	}
	id := hex.EncodeToString(h.Sum(nil))
	tocDigest, tocSize := br.TOCDigest()
	for i := range b.Blobs {
		bi := &b.Blobs[i]
		if bi.ID != PlaceholderBlobID {
			continue
		}
		bi.ID = id
		if bi.TOCSize == 0 && tocSize > 0 {
			bi.TOCSize, bi.TOCDigest = uint32(tocSize), tocDigest
		}
	}
	return b, id, nil
}

// MergeNydus overlays per-layer bootstraps, layers[0] the lowest, into the
// image's bootstrap with rafs.Merge's OCI rules (whiteouts and opaque
// directories hide lower entries; an upper directory over a lower one
// merges into it), with one difference: a directory that the upper layer's
// tar only implied — one with the attributes TarToNydus gives such
// directories (mode 0755, owner 0:0, mtime 0, no xattrs) — does not
// replace a lower directory's attributes, as extracting the layers in order
// does not (nydus-image's merge lets it). A real directory entry with
// exactly those attributes is treated the same way.
//
// Layers must carry real blob ids (see ReadNydusLayer). The layers are not
// modified.
func MergeNydus(layers []*rafs.Bootstrap, opts *rafs.MergeOptions) (*rafs.Bootstrap, error) {
	if len(layers) == 0 {
		return nil, errors.New("convert: merge: no layers")
	}
	for i, l := range layers {
		if l == nil {
			return nil, fmt.Errorf("convert: merge: layer %d is nil", i)
		}
		for j, bi := range l.Blobs {
			if bi.ID == PlaceholderBlobID {
				return nil, fmt.Errorf("convert: merge: layer %d: blob %d has the placeholder id; read layer bootstraps with ReadNydusLayer", i, j)
			}
		}
	}
	merged, err := rafs.Merge(layers[:1], opts)
	if err != nil {
		return nil, fmt.Errorf("convert: merge: %w", err)
	}
	for i := 1; i < len(layers); i++ {
		next, err := rafs.Merge([]*rafs.Bootstrap{merged, layers[i]}, opts)
		if err != nil {
			return nil, fmt.Errorf("convert: merge: layer %d: %w", i, err)
		}
		keepLowerDirs(merged, layers[i], next)
		merged = next
	}
	return merged, nil
}

// keepLowerDirs gives each directory of upper that has implicit attributes
// the attributes it had in lower (if it was a directory there) in merged,
// the result of merging upper onto lower. It walks the three trees side
// by side, by name, without recursion or paths.
func keepLowerDirs(lower, upper, merged *rafs.Bootstrap) {
	type dirs struct{ u, l, m *rafs.Node } // l and m may be nil
	stack := []dirs{{upper.Root, lower.Root, merged.Root}}
	for len(stack) > 0 {
		d := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if isImplicitDir(d.u) && d.l != nil && isDir(d.l) && d.m != nil && isDir(d.m) {
			l, m := d.l, d.m
			m.Mode, m.UID, m.GID, m.Mtime, m.MtimeNsec = l.Mode, l.UID, l.GID, l.Mtime, l.MtimeNsec
			m.Xattrs = nil
			if l.Xattrs != nil {
				m.Xattrs = make(map[string][]byte, len(l.Xattrs))
				for k, v := range l.Xattrs {
					m.Xattrs[k] = slices.Clone(v)
				}
			}
		}
		var lc, mc childFinder
		for _, k := range d.u.Children {
			if isDir(k) {
				stack = append(stack, dirs{k, lc.find(d.l, k.Name), mc.find(d.m, k.Name)})
			}
		}
	}
}

// childFinder finds a directory's children by name as rafs.Node.Child
// does (the first one of that name), through a map once it has been asked
// more than a few times.
type childFinder struct {
	asked  int
	byName map[string]*rafs.Node
}

func (f *childFinder) find(d *rafs.Node, name string) *rafs.Node {
	if d == nil || !d.IsDir() {
		return nil
	}
	if f.asked++; f.asked <= 8 {
		return d.Child(name)
	}
	if f.byName == nil {
		f.byName = make(map[string]*rafs.Node, len(d.Children))
		for _, c := range d.Children {
			if _, dup := f.byName[c.Name]; !dup {
				f.byName[c.Name] = c
			}
		}
	}
	return f.byName[name]
}
