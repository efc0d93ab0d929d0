// Package rebuild builds merged metadata: one metadata-only EROFS image
// that shows a stack of layer images as a single file system, its regular
// files pointing into the layers, which become its extra devices. It is
// what mkfs.erofs's rebuild mode makes (mkfs.erofs(1): source images given
// after the output, with --ovlfs-strip=1 to apply whiteouts), and what
// containerd's EROFS snapshotter mounts instead of stacking one overlayfs
// lower directory per layer.
//
// The layers are EROFS images whose whiteouts are in overlayfs form (a
// character device 0:0 hides the lower path; trusted.overlay.opaque "y"
// makes a directory hide its lower contents), as rafs build writes them
// by default. Their file data must be addressable in whole blocks:
// uncompressed images built without inline tails (rafs build
// -inline-data=false, mkfs.erofs -E noinline_data), chunk-based images
// (--chunk-size, with the chunks in the image or on a blob device), or
// tar-index images, whose files point into their tar.
//
// The package reads the layers with the erofs reader and writes with the
// erofs Writer; it knows nothing of tars or OCI.
package rebuild

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"math/bits"
	"slices"
	"strings"
	"time"

	"github.com/rafs-dev/rafs/erofs"
)

// Layer is one layer image of the stack.
type Layer struct {
	// Name names the layer in errors, for example its file name.
	Name string

	// Image is the layer's EROFS image.
	Image io.ReaderAt

	// Size is the image's size in bytes, or 0 when unknown. When the
	// layer's data is on the image itself, the device's size in the
	// merged image's device table is the larger of the superblock's block
	// count and Size.
	Size int64
}

// Options configure Merge. The zero value (or nil) is the default.
type Options struct {
	// UUID is the merged image's volume UUID. Nil means one derived from
	// its content (the erofs Writer's default), so equal layers give equal
	// images.
	UUID *[16]byte

	// TempDir is the erofs Writer's temporary directory ("" means
	// os.TempDir).
	TempDir string
}

// Result describes a merged image.
type Result struct {
	// Devices is the merged image's device table: Devices[k] is layer k's
	// data, the layer image itself or its one extra device (a tar index's
	// tar, a blob device). Mount the image with one device= option per
	// entry, in order.
	Devices []erofs.SuperblockDevice

	// BlockSize is the merged image's block size.
	BlockSize int

	// Size is the merged image's size in bytes.
	Size int64
}

// overlayXattrPrefix starts the xattrs overlayfs interprets
// (trusted.overlay.opaque, trusted.overlay.origin, ...): they describe the
// layers' stacking, which the merged image has applied, so it drops them.
const overlayXattrPrefix = "trusted.overlay."

// Merge writes to out the merged metadata of layers, the lowest first, and
// returns its device table. The merged tree is what extracting the
// layers' tars in order gives, and what a read-only overlayfs mount of the
// layers shows but for the directories a layer only implies:
//
//   - A path takes the topmost layer's entry: a non-directory replaces
//     whatever lower layers have there, directory or not.
//   - A directory over lower directories keeps their entries (the union)
//     and takes its own metadata and xattrs; an opaque one
//     (trusted.overlay.opaque "y", ignored on the root) hides the lower
//     entries. A whiteout (character device 0:0) hides the lower path and
//     is not shown itself.
//   - A directory a layer only implies (with the metadata a layer builder
//     gives a tar's missing parents: mode 0755, owner 0:0, the layer's
//     build time as mtime, no xattrs but overlayfs ones) leaves the
//     metadata of the directory below it alone, as extracting the tar
//     would.
//   - Hard links within a layer stay hard links; their link count is the
//     number of names left in the merged tree.
//   - trusted.overlay.* xattrs are dropped everywhere.
//
// Layer k becomes device k+1: the layer image, or for a layer with one
// extra device (a tar index's tar, a blob device) that device, unless it
// is appended to the image (containerd's layer.erofs with a tar index),
// when the image holds it and is the device. Every regular file
// becomes chunk-based with 8-byte chunk indexes naming its layer's device,
// its blocks translated to that device's. A plain file is one chunk
// (the smallest power-of-two chunk, from the block size, that holds it, as
// mkfs.erofs's rebuild mode chooses); a chunk-based one keeps its chunks.
// The merged block size is the smallest of the layers'. A layer whose data
// cannot be referenced in place gives an error naming the layer and the
// file: an inline tail, compressed data, data outside the file that
// becomes the layer's device, more than one extra device.
//
// Merge reads only the layers' metadata; memory grows with the number of
// entries (and chunks) of the merged tree, not with the data.
func Merge(out io.WriterAt, layers []Layer, opts *Options) (*Result, error) {
	if opts == nil {
		opts = &Options{}
	}
	if len(layers) == 0 {
		return nil, errors.New("rebuild: no layers")
	}
	m := &merger{layers: make([]*layer, len(layers))}
	for k, l := range layers {
		ly, err := openLayer(k, l)
		if err != nil {
			return nil, err
		}
		m.layers[k] = ly
	}
	bs := m.layers[0].bs
	for _, ly := range m.layers {
		bs = min(bs, ly.bs)
	}
	m.bs = bs
	devs := make([]erofs.SuperblockDevice, len(m.layers))
	for k, ly := range m.layers {
		ly.scale = uint64(ly.bs / bs)
		devs[k] = erofs.SuperblockDevice{Tag: ly.tag, Blocks: ly.blocks * ly.scale}
	}
	for k := len(m.layers) - 1; k >= 0; k-- {
		if err := m.load(k); err != nil {
			return nil, err
		}
		m.layers[k].cache.drop() // each layer is read once
	}
	top := m.layers[len(m.layers)-1].fsys.Superblock()
	w, err := erofs.NewWriter(out, &erofs.WriterOptions{
		BlockSize: int(bs),
		BuildTime: top.Epoch,
		UUID:      opts.UUID,
		TempDir:   opts.TempDir,
		Devices:   devs,
	})
	if err != nil {
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	if err := m.emit(w); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("rebuild: %w", err)
	}
	return &Result{Devices: devs, BlockSize: int(bs), Size: w.Size()}, nil
}

// layer is an opened layer image.
type layer struct {
	name    string
	fsys    *erofs.FS
	cache   *pageCache // fsys reads through it
	bs      int64      // block size
	epoch   int64      // build time (the superblock's)
	dataDev uint16     // the layer's device holding its file data: 0 the image, 1 its extra device (tar, blob)
	uniaddr uint64     // the tar's first block in the unified address space (0: none)
	inImage bool       // the tar is in the image file, at uniaddr: the image is the merged device
	tag     string     // the merged device's tag
	blocks  uint64     // the merged device's size in the layer's blocks
	scale   uint64     // the layer's block size over the merged image's
}

// openLayer opens layer k and works out which file becomes its device in
// the merged image: the image itself, or the tar of a tar-index layer (its
// one extra device), unless the tar is appended to the image (it starts at
// the device's unified address, within the image's Size), when the image
// is the device again. The tag of a tar is its device tag when it has one;
// otherwise, and for an image, the tag is the image's UUID in hexadecimal,
// as mkfs.erofs's rebuild mode sets them.
func openLayer(k int, l Layer) (*layer, error) {
	name := l.Name
	if name == "" {
		name = fmt.Sprintf("layer %d", k)
	}
	cache := newPageCache(l.Image)
	fsys, err := erofs.Open(cache)
	if err != nil {
		return nil, fmt.Errorf("rebuild: %s: %w", name, err)
	}
	cache.drop()
	sb := fsys.Superblock()
	ly := &layer{name: name, fsys: fsys, cache: cache, bs: int64(1) << sb.BlkSzBits, epoch: sb.Epoch}
	ly.tag, ly.blocks = fmt.Sprintf("%x", sb.UUID[:]), sb.Blocks
	if l.Size > 0 {
		ly.blocks = max(ly.blocks, uint64((l.Size+ly.bs-1)/ly.bs))
	}
	switch len(sb.Devices) {
	case 0:
	case 1:
		d := sb.Devices[0]
		ly.dataDev, ly.uniaddr = 1, d.UniAddr
		if d.UniAddr > 0 && l.Size > 0 && uint64(l.Size) >= (d.UniAddr+d.Blocks)*uint64(ly.bs) {
			ly.inImage = true
			break
		}
		ly.blocks = d.Blocks
		if d.Tag != "" {
			ly.tag = d.Tag
		}
	default:
		return nil, fmt.Errorf("rebuild: %s: %d extra devices; a layer can have at most one (a tar index's tar or a blob device)", name, len(sb.Devices))
	}
	return ly, nil
}

// deviceBlock translates a layer's data extent's first block to the layer's
// block on its merged device.
func (ly *layer) deviceBlock(e erofs.DataExtent) (uint64, bool) {
	switch {
	case ly.dataDev == 0:
		return e.Block, e.Device == 0
	case ly.inImage && e.Device == 1:
		return ly.uniaddr + e.Block, true
	case ly.inImage:
		return e.Block, true
	case e.Device == 1:
		return e.Block, true
	}
	// The tar-index's own blocks but for a tar in the unified address
	// space.
	return e.Block - ly.uniaddr, ly.uniaddr > 0 && e.Block >= ly.uniaddr && e.Block-ly.uniaddr < ly.blocks
}

// deviceName names the file that becomes the layer's merged device.
func (ly *layer) deviceName() string {
	if ly.dataDev == 1 && !ly.inImage {
		return "tar (extra device 1)"
	}
	return "image"
}

// node is an entry of the merged tree.
type node struct {
	kids     map[string]*node // a directory's entries, whiteouts included
	entry    erofs.Entry      // metadata (Path unset)
	layer    int              // the layer the entry comes from
	nid      uint64           // its inode there, for hard links
	nlink    uint32           // its link count there
	chunks   erofs.ChunkedFile
	whiteout bool // hides lower entries and is not shown
	implied  bool // a directory whose metadata a lower layer's replaces (see merger.implied)
	opaque   bool // a directory hiding the lower layers' entries
}

func (n *node) isDir() bool { return !n.whiteout && n.entry.Mode&erofs.ModeTypeMask == erofs.ModeDir }

// merger builds the merged tree.
type merger struct {
	layers []*layer
	bs     int64 // the merged block size
	root   *node
}

// load adds layer k's entries that the layers above it (already loaded)
// leave visible.
func (m *merger) load(k int) error {
	ly := m.layers[k]
	fi, err := ly.fsys.Lstat(".")
	if err != nil {
		return fmt.Errorf("rebuild: %s: %w", ly.name, err)
	}
	if m.root == nil {
		m.root, err = m.newNode(k, ".", fi)
		if err != nil {
			return err
		}
		m.root.opaque = false // overlayfs ignores an opaque root
	} else if err := m.underDir(k, ".", m.root, fi); err != nil {
		return err
	}
	return m.loadDir(k, ".", m.root)
}

// loadDir merges layer k's directory p into the merged directory dir.
func (m *merger) loadDir(k int, p string, dir *node) error {
	ly := m.layers[k]
	ents, err := ly.fsys.ReadDir(p)
	if err != nil {
		return fmt.Errorf("rebuild: %s: %w", ly.name, err)
	}
	for _, de := range ents {
		name := de.Name()
		cp := name
		if p != "." {
			cp = p + "/" + name
		}
		fi, err := de.Info()
		if err != nil {
			return fmt.Errorf("rebuild: %s: %s: %w", ly.name, cp, err)
		}
		if old := dir.kids[name]; old != nil {
			// An upper layer has the path: lower entries show only
			// below a directory that is not opaque.
			if !old.isDir() || old.opaque {
				continue
			}
			if !fi.IsDir() {
				// A whiteout or a non-directory in this layer
				// ends the lookup, as in overlayfs: the layers
				// below show nothing more of the path.
				old.opaque = true
				continue
			}
			if err := m.underDir(k, cp, old, fi); err != nil {
				return err
			}
			if err := m.loadDir(k, cp, old); err != nil {
				return err
			}
			if st, ok := fi.Sys().(*erofs.Stat); ok && st.Xattrs["trusted.overlay.opaque"] == "y" {
				old.opaque = true
			}
			continue
		}
		n, err := m.newNode(k, cp, fi)
		if err != nil {
			return err
		}
		if dir.kids == nil {
			dir.kids = map[string]*node{}
		}
		dir.kids[name] = n
		if n.isDir() {
			if err := m.loadDir(k, cp, n); err != nil {
				return err
			}
		}
	}
	return nil
}

// underDir handles layer k's directory p under the merged directory dir
// of an upper layer: when that only implies the directory, dir takes p's
// metadata (see implied).
func (m *merger) underDir(k int, p string, dir *node, fi fs.FileInfo) error {
	if !dir.implied {
		return nil
	}
	n, err := m.newNode(k, p, fi)
	if err != nil {
		return err
	}
	dir.entry, dir.layer, dir.nid, dir.implied = n.entry, n.layer, n.nid, n.implied
	return nil
}

// implied reports whether a directory of layer k has the metadata a layer
// gives a directory its tar only implies (a parent of entries without an
// entry of its own): mode 0755, owner 0:0, the layer's build time as mtime
// and no xattrs. Such a directory does not change the metadata of the
// lower layers' directory, as extracting the tar would not: the merged
// directory takes them from the topmost layer with the directory's own
// entry, as rafs merge of Nydus layers does.
func (m *merger) implied(k int, st *erofs.Stat) bool {
	if st.Mode != erofs.ModeDir|0o755 || st.UID != 0 || st.GID != 0 || st.Mtime != m.layers[k].epoch || st.MtimeNsec != 0 {
		return false
	}
	for name := range st.Xattrs {
		if !strings.HasPrefix(name, overlayXattrPrefix) {
			return false
		}
	}
	return true
}

// isWhiteout reports whether an inode is an overlayfs whiteout.
func isWhiteout(st *erofs.Stat) bool {
	return st.Mode&erofs.ModeTypeMask == erofs.ModeCharDevice && st.Devmajor == 0 && st.Devminor == 0
}

// newNode makes the merged entry for layer k's entry at path p.
func (m *merger) newNode(k int, p string, fi fs.FileInfo) (*node, error) {
	ly := m.layers[k]
	st, ok := fi.Sys().(*erofs.Stat)
	if !ok {
		return nil, fmt.Errorf("rebuild: %s: %s: no inode", ly.name, p)
	}
	n := &node{layer: k, nid: st.Nid, nlink: st.Nlink}
	if isWhiteout(st) {
		n.whiteout = true
		return n, nil
	}
	n.implied = m.implied(k, st)
	n.entry = erofs.Entry{
		Mode:     st.Mode,
		UID:      st.UID,
		GID:      st.GID,
		ModTime:  time.Unix(st.Mtime, int64(st.MtimeNsec)),
		Devmajor: st.Devmajor,
		Devminor: st.Devminor,
	}
	for name, v := range st.Xattrs {
		if strings.HasPrefix(name, overlayXattrPrefix) {
			if name == "trusted.overlay.opaque" && v == "y" && n.isDir() {
				n.opaque = true
			}
			continue
		}
		if n.entry.Xattrs == nil {
			n.entry.Xattrs = make(map[string]string, len(st.Xattrs))
		}
		n.entry.Xattrs[name] = v
	}
	switch st.Mode & erofs.ModeTypeMask {
	case erofs.ModeSymlink:
		target, err := ly.fsys.ReadLink(p)
		if err != nil {
			return nil, fmt.Errorf("rebuild: %s: %w", ly.name, err)
		}
		n.entry.Linkname = target
	case erofs.ModeRegular:
		n.entry.Size = st.Size
		if st.Size > 0 {
			cf, err := m.chunks(k, p, st)
			if err != nil {
				return nil, err
			}
			n.chunks = cf
		}
	}
	return n, nil
}

// chunks translates the data of layer k's regular file p into chunks on
// the merged image's device k+1.
func (m *merger) chunks(k int, p string, st *erofs.Stat) (erofs.ChunkedFile, error) {
	ly := m.layers[k]
	size := st.Size
	ext, err := ly.fsys.DataExtents(st.Nid)
	if err != nil {
		if errors.Is(err, erofs.ErrNotBlockAddressed) {
			return erofs.ChunkedFile{}, fmt.Errorf("rebuild: layer %s: file %s: data cannot be referenced in place (build layers with whole-block uncompressed data, e.g. rafs build -inline-data=false without -z): %w", ly.name, p, err)
		}
		return erofs.ChunkedFile{}, fmt.Errorf("rebuild: layer %s: file %s: %w", ly.name, p, err)
	}
	// The chunk size: the smallest power of two from the block size that
	// holds the file, as mkfs.erofs's rebuild mode takes for a plain
	// file, but no more than every extent's alignment (a chunk-based
	// file keeps its chunk size).
	maxChunk := m.bs << erofs.ChunkFormatBlkBits
	cs := m.bs
	for cs < size && cs < maxChunk {
		cs <<= 1
	}
	for i, e := range ext {
		if e.Len <= 0 || (i == 0) != (e.Off == 0) {
			return erofs.ChunkedFile{}, fmt.Errorf("rebuild: layer %s: file %s: bad data extent %d at %d+%d", ly.name, p, i, e.Off, e.Len)
		}
		if i < len(ext)-1 {
			cs = min(cs, int64(1)<<bits.TrailingZeros64(uint64(e.Len)))
		}
		if _, ok := ly.deviceBlock(e); !e.Hole && !ok {
			return erofs.ChunkedFile{}, fmt.Errorf("rebuild: layer %s: file %s: data at offset %d in block %d of the layer's device %d, outside the file that becomes the merged image's device (the layer's %s)", ly.name, p, e.Off, e.Block, e.Device, ly.deviceName())
		}
	}
	if cs < m.bs {
		return erofs.ChunkedFile{}, fmt.Errorf("rebuild: layer %s: file %s: data extents not aligned to %d-byte blocks", ly.name, p, m.bs)
	}
	cf := erofs.ChunkedFile{ChunkSize: cs, Indexes: true, Chunks: make([]erofs.Chunk, 0, (size+cs-1)/cs)}
	per := uint64(cs / m.bs)
	for _, e := range ext {
		for off := int64(0); off < e.Len; off += cs {
			if e.Hole {
				cf.Chunks = append(cf.Chunks, erofs.Chunk{Hole: true})
				continue
			}
			b, _ := ly.deviceBlock(e)
			blk := b*ly.scale + uint64(off/cs)*per
			cf.Chunks = append(cf.Chunks, erofs.Chunk{Device: uint16(k + 1), Block: blk})
		}
	}
	return cf, nil
}

// emit adds the merged tree to w, depth first in name order. Hard links of
// a layer become hard links to the name emitted first.
func (m *merger) emit(w *erofs.Writer) error {
	type key struct {
		layer int
		nid   uint64
	}
	linked := map[key]string{}
	type item struct {
		p string
		n *node
	}
	stack := []item{{"", m.root}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := it.n
		e := n.entry
		e.Path = it.p
		if !n.isDir() && n.nlink > 1 {
			k := key{n.layer, n.nid}
			if target, ok := linked[k]; ok {
				if err := w.Link(it.p, target); err != nil {
					return fmt.Errorf("rebuild: %w", err)
				}
				continue
			}
			linked[k] = it.p
		}
		var err error
		switch {
		case e.Mode&erofs.ModeTypeMask == erofs.ModeRegular && len(n.chunks.Chunks) > 0:
			err = w.AddChunks(&e, n.chunks)
		case e.Mode&erofs.ModeTypeMask == erofs.ModeRegular:
			err = w.Add(&e, strings.NewReader(""))
		default:
			err = w.Add(&e, nil)
		}
		if err != nil {
			return fmt.Errorf("rebuild: %s: %w", m.layers[n.layer].name, err)
		}
		names := slices.Sorted(maps.Keys(n.kids))
		for i := len(names) - 1; i >= 0; i-- {
			c := n.kids[names[i]]
			if c.whiteout {
				continue
			}
			p := names[i]
			if it.p != "" {
				p = it.p + "/" + p
			}
			stack = append(stack, item{p, c})
		}
	}
	return nil
}
