package erofs

import (
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"math"
	"slices"
	"strings"
	"syscall"
)

// WriterOptions configure a Writer. The zero value gives mkfs.erofs's
// defaults for an uncompressed image: 4096-byte blocks, tail packing,
// shared xattrs and the xattr name filter, build time 0.
type WriterOptions struct {
	// BlockSize is the block size in bytes: a power of two from 512 to
	// 65536 (the kernel mounts block sizes up to its page size). 0 means
	// 4096.
	BlockSize int

	// BuildTime is the image's base time (the superblock epoch) in seconds
	// since the Unix epoch. Inodes whose mtime equals it, with zero
	// nanoseconds, get compact 32-byte inodes; the rest extended ones.
	// Entries with a zero ModTime get this time.
	BuildTime int64

	// UUID is the volume UUID. Nil means one derived from the image's
	// content, so equal inputs give equal images.
	UUID *[16]byte

	// VolumeName is the volume label (at most 16 bytes).
	VolumeName string

	// NoInlineData stores every regular file's data in whole blocks
	// (FLAT_PLAIN) instead of packing its tail into the inode's block, like
	// mkfs.erofs -E noinline_data.
	NoInlineData bool

	// NoSharedXattrs keeps every xattr inline. Otherwise an xattr (name and
	// value) carried by more than two inodes is stored once and referenced.
	NoSharedXattrs bool

	// NoXattrFilter leaves out the per-inode xattr name bloom filter
	// (needed by kernels before 6.6 only to be ignored; it is harmless).
	NoXattrFilter bool

	// WhiteoutOrigin adds an empty trusted.overlay.origin xattr to every
	// directory that holds an overlayfs whiteout (character device 0:0), as
	// mkfs.erofs does, so overlayfs does not show the whiteouts when the
	// directory is iterated directly.
	WhiteoutOrigin bool

	// Compression, when set, compresses regular files (mkfs.erofs -z, -C
	// and -E ztailpacking). Nil writes an uncompressed image.
	Compression *Compression

	// TempDir is where file tails and the extent lists of compressed files
	// wait, in an unlinked temporary file, until Close packs them into
	// inode blocks. "" means os.TempDir.
	TempDir string
}

// Writer builds an uncompressed EROFS image in one pass. File data is
// written to the output as it is added; directories, inodes and the
// superblock are written by Close. Memory use grows with the number of
// entries and the bytes of their names and attributes, not with the size
// of the data, the depth of directories or the length of paths.
//
// The image layout is: the superblock (and, when they fit, shared xattrs
// and the long xattr prefix table) in the first block, then file data in
// the order it was added, then directory blocks, then the inodes packed
// best-fit into metadata blocks.
type Writer struct {
	opts  WriterOptions
	bs    int
	bits  uint8
	out   *seqWriter
	spool spool
	err   error // sticky
	done  bool
	size  int64

	// The tree (see tree.go); the root directory is inode rootID.
	inodes arena[inode]
	dents  arena[dentry]
	names  nameStore
	index  dirIndex
	xattrs arena[xattrSet]   // by inode.xattr-1
	xnames map[string]string // xattr names, stored once
	links  arena[string]     // symlink targets, by inode.data
	zfiles []*zfile          // compressed files, by inode.data

	// The data area. While a compression pipeline runs, its sink owns
	// out, spool and these counters, and Close takes them back.
	dataStart int64  // first block after the superblock
	nextBlock int64  // next free block in the data area
	tail      []byte // scratch for a file's tail on its way to the spool
	dataCRC   uint32 // CRC-32C of all file data, for the derived UUID
	dataLen   int64
	zp        *zpipe // compression pipeline, when compressing
}

// rootID is the inode of the root directory.
const rootID = 0

// inode is an object being built; hard links share one. It holds no
// pointers: what only some objects have lives in tables of the Writer that
// the inode indexes. It takes 64 bytes.
type inode struct {
	mtime int64
	size  int64
	pos   int64 // set during layout: offset of the record in the metadata area
	// data depends on the type. A regular file: the spool offset of its
	// inline tail, or its index in Writer.zfiles when flagZ is set. A
	// symlink: its index in Writer.links. A directory: its parent's inode,
	// set during layout.
	data  int64
	nsec  uint32
	uid   uint32
	gid   uint32
	u     uint32 // first data block (noID for none), or a device's number
	xattr uint32 // 1 + index in Writer.xattrs; 0 for no xattrs
	nlink uint32 // set during layout
	ino   uint32 // set during layout
	mode  uint16
	flags uint8
}

// inode flags.
const (
	flagInline  = 1 << iota // the data's tail is inline in the inode's block
	flagZ                   // stored compressed; data indexes Writer.zfiles
	flagVisited             // reached by the layout walk
)

// xattrSet holds an inode's extended attributes.
type xattrSet struct {
	list   []xattr // sorted by key()
	filter uint32  // set during layout: the name bloom filter
	ibody  int32   // set during layout: size of the xattr body in the inode
}

func (n *inode) isDir() bool { return n.mode&ModeTypeMask == ModeDir }

func (n *inode) inline() bool { return n.flags&flagInline != 0 }

func (n *inode) setInline(v bool) {
	if v {
		n.flags |= flagInline
	} else {
		n.flags &^= flagInline
	}
}

// startBlk is the first data block, -1 if none.
func (n *inode) startBlk() int64 {
	if n.u == noID {
		return -1
	}
	return int64(n.u)
}

// setStartBlk sets the first data block; b is below math.MaxUint32, or -1
// for none.
func (n *inode) setStartBlk(b int64) {
	if b < 0 {
		n.u = noID
	} else {
		n.u = uint32(b)
	}
}

// tailLen is the number of data bytes stored inline with the inode.
func (n *inode) tailLen(bs int) int {
	if !n.inline() {
		return 0
	}
	return int(n.size % int64(bs))
}

// nid is the inode's number on disk, once layout has placed it.
func (n *inode) nid() uint64 { return uint64(n.pos / inodeSlotSize) }

// xattrsOf returns n's xattrs, sorted by key.
func (w *Writer) xattrsOf(n *inode) []xattr {
	if n.xattr == 0 {
		return nil
	}
	return w.xattrs.at(n.xattr - 1).list
}

// ibody is the size of n's xattr body, once layout has planned it.
func (w *Writer) ibody(n *inode) int {
	if n.xattr == 0 {
		return 0
	}
	return int(w.xattrs.at(n.xattr - 1).ibody)
}

// zf returns n's compressed form, or nil.
func (w *Writer) zf(n *inode) *zfile {
	if n.flags&flagZ == 0 {
		return nil
	}
	return w.zfiles[n.data]
}

// NewWriter returns a Writer that writes an image to w, starting at offset
// 0. opts may be nil.
func NewWriter(w io.WriterAt, opts *WriterOptions) (*Writer, error) {
	var o WriterOptions
	if opts != nil {
		o = *opts
	}
	if o.BlockSize == 0 {
		o.BlockSize = DefaultBlockSize
	}
	bs := o.BlockSize
	if bs < MinBlockSize || bs > MaxBlockSize || bs&(bs-1) != 0 {
		return nil, fmt.Errorf("erofs: invalid block size %d (want a power of two from %d to %d)", bs, MinBlockSize, MaxBlockSize)
	}
	if len(o.VolumeName) > 16 {
		return nil, fmt.Errorf("erofs: volume name %q longer than 16 bytes", o.VolumeName)
	}
	bits := uint8(0)
	for 1<<bits < bs {
		bits++
	}
	wr := &Writer{opts: o, bs: bs, bits: bits}
	wr.spool = spool{dir: o.TempDir}
	wr.tail = make([]byte, bs)
	wr.dataStart = int64(roundUp(SuperblockOffset+superblockSize, bs) / bs)
	wr.nextBlock = wr.dataStart
	wr.out = newSeqWriter(w, wr.dataStart*int64(bs), 1<<20)
	wr.index.seed = maphash.MakeSeed()
	wr.xnames = map[string]string{}
	_, root, _ := wr.inodes.add()
	*root = inode{mode: ModeDir | 0o755, mtime: o.BuildTime, u: noID}
	if o.Compression != nil {
		c := *o.Compression
		if err := c.validate(bs); err != nil {
			return nil, err
		}
		wr.opts.Compression = &c
		if err := wr.startPipe(); err != nil {
			return nil, err
		}
	}
	return wr, nil
}

// SplitPath cleans an entry path into the names Add uses: empty and "."
// components are dropped; absolute paths, ".." components, names over 255
// bytes and NUL bytes are errors.
func SplitPath(p string) ([]string, error) {
	if err := checkPath(p); err != nil {
		return nil, err
	}
	var parts []string
	for c, i := nextName(p, 0); c != ""; c, i = nextName(p, i) {
		parts = append(parts, c)
	}
	return parts, nil
}

// checkPath reports the error SplitPath would return for p, if any.
func checkPath(p string) error {
	if strings.HasPrefix(p, "/") {
		return fmt.Errorf("absolute path %q", p)
	}
	for rest := p; ; {
		c, tail, more := strings.Cut(rest, "/")
		switch c {
		case "", ".":
		case "..":
			return fmt.Errorf("path %q has a \"..\" component", p)
		default:
			if len(c) > maxNameLen {
				return fmt.Errorf("path %q: name %.20q... is %d bytes, over the limit of %d", p, c, len(c), maxNameLen)
			}
			if strings.IndexByte(c, 0) >= 0 {
				return fmt.Errorf("path %q contains a NUL byte", p)
			}
		}
		if !more {
			return nil
		}
		rest = tail
	}
}

// nextName returns the first name of p at or after byte i, skipping empty
// and "." components, and the byte after it; "" when there is none.
func nextName(p string, i int) (string, int) {
	for i < len(p) {
		c, _, _ := strings.Cut(p[i:], "/")
		i += len(c) + 1
		if c != "" && c != "." {
			return c, min(i, len(p))
		}
	}
	return "", len(p)
}

// splitLast splits a path into the part before its last name and that
// name, "" for a path naming the root.
func splitLast(p string) (dir, name string) {
	for end := len(p); end > 0; {
		k := strings.LastIndexByte(p[:end], '/')
		if c := p[k+1 : end]; c != "" && c != "." {
			return p[:k+1], c
		}
		if k < 0 {
			break
		}
		end = k
	}
	return "", ""
}

// cleanPrefix joins the names of p[:end] with slashes, as SplitPath would.
func cleanPrefix(p string, end int) string {
	var b strings.Builder
	for c, i := nextName(p[:end], 0); c != ""; c, i = nextName(p[:end], i) {
		if b.Len() > 0 {
			b.WriteByte('/')
		}
		b.WriteString(c)
	}
	return b.String()
}

// child returns the inode named name in directory dir, or noID, with the
// dentry that holds the name (noID if there is none) and the name's tag.
func (w *Writer) child(dir uint32, name string) (ino, de, tag uint32) {
	de, tag = w.find(dir, name)
	if de == noID {
		return noID, noID, tag
	}
	return w.dents.at(de).ino, de, tag
}

// link makes name in directory dir refer to inode ino.
func (w *Writer) link(dir uint32, name string, de, tag, ino uint32) error {
	if de != noID {
		w.dents.at(de).ino = ino
		return nil
	}
	return w.insert(dir, name, tag, ino)
}

// walkDirs walks the directories named by path p (already checked) from
// the root, creating missing directories, and returns the last. A
// non-directory in the way is an error, as it is when extracting.
func (w *Writer) walkDirs(p string) (uint32, error) {
	dir := uint32(rootID)
	for c, i := nextName(p, 0); c != ""; c, i = nextName(p, i) {
		child, de, tag := w.child(dir, c)
		if child == noID {
			id, n, err := w.inodes.add()
			if err != nil {
				return 0, err
			}
			*n = w.implicitDir()
			if err := w.link(dir, c, de, tag, id); err != nil {
				return 0, err
			}
			child = id
		} else if !w.inodes.at(child).isDir() {
			return 0, fmt.Errorf("%q is not a directory: %w", cleanPrefix(p, i), syscall.ENOTDIR)
		}
		dir = child
	}
	return dir, nil
}

// implicitDir makes a directory for a path whose parent never appeared as
// an entry: mode 0755, owned by root, with the build time as mtime.
func (w *Writer) implicitDir() inode {
	return inode{mode: ModeDir | 0o755, mtime: w.opts.BuildTime, u: noID}
}

// Add adds an object to the image. For a regular file it reads exactly
// e.Size bytes from data and writes them out before returning; data may be
// nil for other types. An existing object at the same path is replaced, as
// extracting the entries in order would do, except that a directory added
// over a directory updates its metadata (merging xattrs) and keeps its
// children. Missing parent directories are created; a parent that exists
// but is not a directory is an error.
func (w *Writer) Add(e *Entry, data io.Reader) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errors.New("erofs: Add after Close")
	}
	if err := checkPath(e.Path); err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	var n inode
	xs, err := w.newInode(e, &n)
	if err != nil {
		return fmt.Errorf("erofs: %s: %w", e.Path, err)
	}
	dirPath, name := splitLast(e.Path)
	if name == "" {
		if !n.isDir() {
			return fmt.Errorf("erofs: %q: the root must be a directory", e.Path)
		}
		w.updateDir(w.inodes.at(rootID), &n, xs)
		return nil
	}
	dir, err := w.walkDirs(dirPath)
	if err != nil {
		return fmt.Errorf("erofs: %s: %w", e.Path, err)
	}
	old, de, tag := w.child(dir, name)
	if old != noID {
		if o := w.inodes.at(old); o.isDir() && n.isDir() {
			w.updateDir(o, &n, xs)
			return nil
		}
	}
	id, p, err := w.inodes.add()
	if err != nil {
		w.err = fmt.Errorf("erofs: %s: %w", e.Path, err)
		return w.err
	}
	*p = n
	if len(xs) > 0 {
		for i, x := range xs {
			xs[i] = xattr{w.xattrName(x.name), strings.Clone(x.value)}
		}
		w.newXattrSet(p, xs)
	}
	if p.mode&ModeTypeMask == ModeSymlink {
		i, link, err := w.links.add()
		if err != nil {
			w.err = fmt.Errorf("erofs: %s: %w", e.Path, err)
			return w.err
		}
		*link = strings.Clone(e.Linkname)
		p.data = int64(i)
	}
	if p.mode&ModeTypeMask == ModeRegular {
		ibody := inlineIbodySize(xs)
		if w.zp != nil && p.size > 0 {
			err = w.addCompressed(id, p, w.coreSize(p)+ibody, data)
		} else {
			err = w.writeData(p, ibody, data)
		}
		if err != nil {
			w.err = fmt.Errorf("erofs: %s: %w", e.Path, err)
			return w.err
		}
	}
	if err := w.link(dir, name, de, tag, id); err != nil {
		w.err = fmt.Errorf("erofs: %s: %w", e.Path, err)
		return w.err
	}
	return nil
}

// updateDir copies a repeated directory entry's metadata onto the existing
// directory. Xattrs are merged, the later values winning, as mkfs.erofs and
// containerd's layer extraction do.
func (w *Writer) updateDir(dst, src *inode, xs []xattr) {
	dst.mode, dst.uid, dst.gid = src.mode, src.uid, src.gid
	dst.mtime, dst.nsec = src.mtime, src.nsec
	for _, x := range xs {
		w.setXattr(dst, x.name, x.value)
	}
}

// newInode validates e and fills n from its metadata. It returns e's
// xattrs, sorted, for the caller to store.
func (w *Writer) newInode(e *Entry, n *inode) ([]xattr, error) {
	*n = inode{uid: e.UID, gid: e.GID, u: noID}
	if e.ModTime.IsZero() {
		n.mtime = w.opts.BuildTime
	} else {
		n.mtime, n.nsec = e.ModTime.Unix(), uint32(e.ModTime.Nanosecond())
	}
	switch e.Mode & ModeTypeMask {
	case ModeRegular:
		if e.Size < 0 {
			return nil, fmt.Errorf("negative size %d", e.Size)
		}
		n.size = e.Size
	case ModeDir, ModeFIFO, ModeSocket:
	case ModeSymlink:
		if e.Linkname == "" || len(e.Linkname) > 4095 {
			return nil, fmt.Errorf("symlink target of %d bytes (want 1 to 4095)", len(e.Linkname))
		}
		n.size = int64(len(e.Linkname))
	case ModeCharDevice, ModeBlockDevice:
		if e.Devmajor > 0xFFF || e.Devminor > 0xFFFFF {
			return nil, fmt.Errorf("device number %d:%d out of range", e.Devmajor, e.Devminor)
		}
		n.u = EncodeDev(e.Devmajor, e.Devminor)
	default:
		return nil, fmt.Errorf("unsupported file mode %#o", e.Mode)
	}
	if e.Mode&^(ModeTypeMask|ModePermMask) != 0 {
		return nil, fmt.Errorf("invalid mode bits %#o", e.Mode)
	}
	n.mode = uint16(e.Mode)
	var xs []xattr
	if len(e.Xattrs) > 0 {
		xs = make([]xattr, 0, len(e.Xattrs))
		for name, value := range e.Xattrs {
			if err := checkXattr(name, value); err != nil {
				return nil, err
			}
			xs = append(xs, xattr{name, value})
		}
		if size := inlineIbodySize(xs); (size-xattrIbodyHeaderSize)/4+1 > math.MaxUint16 {
			return nil, fmt.Errorf("xattrs take %d bytes, more than an inode can hold", size)
		}
		sortXattrs(xs)
	}
	return xs, nil
}

func sortXattrs(xs []xattr) {
	slices.SortFunc(xs, func(a, b xattr) int { return strings.Compare(a.key(), b.key()) })
}

// needsExtended reports whether n cannot be stored in a compact inode. Like
// mkfs.erofs, an inode is compact only if its mtime is the build time;
// unlike it, nanoseconds must be zero too, so none are lost.
func (w *Writer) needsExtended(n *inode) bool {
	return n.size > math.MaxUint32 || n.uid > math.MaxUint16 || n.gid > math.MaxUint16 ||
		n.mtime != w.opts.BuildTime || n.nsec != 0 || n.nlink > math.MaxUint16
}

// coreSize is the size of n's inode core: compact (32) or extended (64).
func (w *Writer) coreSize(n *inode) int {
	if w.needsExtended(n) {
		return extendedInodeSize
	}
	return compactInodeSize
}

// inlineIbodySize is the xattr body size with every xattr inline and short
// prefixes only: the most the body can take after layout.
func inlineIbodySize(xs []xattr) int {
	if len(xs) == 0 {
		return 0
	}
	var short xattrEncoder // no long prefixes
	size := xattrIbodyHeaderSize
	for _, x := range xs {
		size += short.entrySize(x)
	}
	return size
}

// writeData streams a regular file's data: whole blocks to the data area,
// the tail to the spool when it will be packed into the inode's block.
// ibody is inlineIbodySize of the file's xattrs.
func (w *Writer) writeData(n *inode, ibody int, r io.Reader) error {
	if n.size == 0 {
		return nil
	}
	if r == nil {
		return errors.New("no data reader for a non-empty file")
	}
	bs := int64(w.bs)
	full, tail := n.size/bs, n.size%bs
	blocks, err := w.planFlat(n, ibody)
	if err != nil {
		return err
	}
	w.dataCRC, err = w.out.readFrom(r, full*bs, w.dataCRC)
	if err == nil && tail > 0 {
		if n.inline() {
			buf := w.tail[:tail]
			if _, err = io.ReadFull(r, buf); err == nil {
				n.data, err = w.spool.write(buf)
			}
		} else {
			w.dataCRC, err = w.out.readFrom(r, tail, w.dataCRC)
			if err == nil {
				err = w.out.padTo(bs)
			}
		}
	}
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("data: %w", err)
	}
	w.nextBlock += blocks
	w.dataLen += n.size
	return nil
}

// planFlat places a file stored uncompressed (see flatPlan) at the next
// free block and records the plan in its inode. ibody is inlineIbodySize
// of its xattrs. It returns the number of data blocks.
func (w *Writer) planFlat(n *inode, ibody int) (int64, error) {
	fp, err := newFlatPlan(n.size, w.coreSize(n)+ibody, w.bs, w.opts.NoInlineData, w.nextBlock)
	if err != nil {
		return 0, err
	}
	n.setInline(fp.inline)
	n.setStartBlk(fp.start)
	return fp.blocks, nil
}

// usable reports an error for a Writer that is closed or has failed.
func (w *Writer) usable(op string) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return fmt.Errorf("erofs: %s after Close", op)
	}
	return nil
}

// Link adds a hard link: name becomes another name of the object at
// target, which must exist and must not be a directory. An existing object
// at name is replaced.
func (w *Writer) Link(name, target string) error {
	if err := w.usable("Link"); err != nil {
		return err
	}
	if err := checkPath(name); err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	t, err := w.lookup(target)
	if err != nil {
		return fmt.Errorf("erofs: hard link %q: %w", name, err)
	}
	if w.inodes.at(t).isDir() {
		return fmt.Errorf("erofs: hard link %q: target %q is a directory", name, target)
	}
	dirPath, last := splitLast(name)
	if last == "" {
		return fmt.Errorf("erofs: hard link %q: cannot replace the root", name)
	}
	dir, err := w.walkDirs(dirPath)
	if err != nil {
		return fmt.Errorf("erofs: hard link %q: %w", name, err)
	}
	_, de, tag := w.child(dir, last)
	if err := w.link(dir, last, de, tag, t); err != nil {
		w.err = fmt.Errorf("erofs: hard link %q: %w", name, err)
		return w.err
	}
	return nil
}

// lookup finds the object at path p.
func (w *Writer) lookup(p string) (uint32, error) {
	if err := checkPath(p); err != nil {
		return 0, err
	}
	n := uint32(rootID)
	for c, i := nextName(p, 0); c != ""; c, i = nextName(p, i) {
		if !w.inodes.at(n).isDir() {
			return 0, fmt.Errorf("%q: %w", p, fs.ErrNotExist)
		}
		if n, _, _ = w.child(n, c); n == noID {
			return 0, fmt.Errorf("%q: %w", p, fs.ErrNotExist)
		}
	}
	return n, nil
}

// Remove deletes the object at path p (with everything below it, for a
// directory). It is not an error if nothing is there.
func (w *Writer) Remove(p string) error {
	if w.done {
		return errors.New("erofs: Remove after Close")
	}
	if err := checkPath(p); err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	dirPath, name := splitLast(p)
	if name == "" {
		return errors.New("erofs: cannot remove the root")
	}
	n := uint32(rootID)
	for c, i := nextName(dirPath, 0); c != ""; c, i = nextName(dirPath, i) {
		if n, _, _ = w.child(n, c); n == noID || !w.inodes.at(n).isDir() {
			return nil
		}
	}
	if _, de, _ := w.child(n, name); de != noID {
		w.dents.at(de).ino = noID
	}
	return nil
}

// MkdirAll makes sure a directory exists at path p, creating it and its
// parents as implicit directories (mode 0755, owned by root, build time)
// where they are missing. Existing directories are left as they are.
func (w *Writer) MkdirAll(p string) error {
	if w.done {
		return errors.New("erofs: MkdirAll after Close")
	}
	if err := checkPath(p); err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	if _, err := w.walkDirs(p); err != nil {
		return fmt.Errorf("erofs: MkdirAll %q: %w", p, err)
	}
	return nil
}

// SetXattr sets an extended attribute on the directory at path p, creating
// the directory (and its parents) if it does not exist. Attributes of other
// objects are given to Add.
func (w *Writer) SetXattr(p, name, value string) error {
	if err := w.usable("SetXattr"); err != nil {
		return err
	}
	if err := checkXattr(name, value); err != nil {
		return fmt.Errorf("erofs: %s: %w", p, err)
	}
	if err := checkPath(p); err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	id := uint32(rootID)
	if dirPath, last := splitLast(p); last != "" {
		dir, err := w.walkDirs(dirPath)
		if err != nil {
			return fmt.Errorf("erofs: SetXattr %q: %w", p, err)
		}
		var de, tag uint32
		if id, de, tag = w.child(dir, last); id == noID {
			var n *inode
			if id, n, err = w.inodes.add(); err != nil {
				return fmt.Errorf("erofs: SetXattr %q: %w", p, err)
			}
			*n = w.implicitDir()
			if err := w.link(dir, last, de, tag, id); err != nil {
				return fmt.Errorf("erofs: SetXattr %q: %w", p, err)
			}
		}
	}
	n := w.inodes.at(id)
	if !n.isDir() {
		return fmt.Errorf("erofs: SetXattr %q: %w", p, syscall.ENOTDIR)
	}
	w.setXattr(n, name, value)
	return nil
}

// setXattr sets an xattr of n, keeping its list sorted. Like Add, it
// stores copies of the strings, which hold on to nothing else (archive/tar
// returns PAX values that share the memory of their whole header, path
// included), and each name once.
func (w *Writer) setXattr(n *inode, name, value string) {
	if n.xattr == 0 {
		w.newXattrSet(n, nil)
	}
	s := w.xattrs.at(n.xattr - 1)
	value = strings.Clone(value)
	for i := range s.list {
		if s.list[i].name == name {
			s.list[i].value = value
			sortXattrs(s.list)
			return
		}
	}
	s.list = append(s.list, xattr{w.xattrName(name), value})
	sortXattrs(s.list)
}

// newXattrSet gives n, which has none, the xattrs xs.
func (w *Writer) newXattrSet(n *inode, xs []xattr) {
	// This cannot fail: there is at most one set per inode, and the
	// inodes' arena has the same limit.
	i, s, _ := w.xattrs.add()
	s.list = xs
	n.xattr = i + 1
}

// xattrName returns the Writer's copy of an xattr name.
func (w *Writer) xattrName(name string) string {
	stored, ok := w.xnames[name]
	if !ok {
		stored = strings.Clone(name)
		w.xnames[stored] = stored
	}
	return stored
}

// Size returns the size of the finished image in bytes. It is valid after a
// successful Close.
func (w *Writer) Size() int64 { return w.size }
