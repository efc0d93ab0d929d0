package erofs

import (
	"errors"
	"fmt"
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

	// TempDir is where file tails wait, in an unlinked temporary file,
	// until Close packs them into inode blocks. "" means os.TempDir.
	TempDir string
}

// Writer builds an uncompressed EROFS image in one pass. File data is
// written to the output as it is added; directories, inodes and the
// superblock are written by Close. Memory use grows with the number of
// entries, not with the size of the data.
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
	root  *inode
	spool spool
	err   error // sticky
	done  bool
	size  int64

	dataStart int64  // first block after the superblock
	nextBlock int64  // next free block in the data area
	tail      []byte // scratch for a file's tail on its way to the spool
	dataCRC   uint32 // CRC-32C of all file data, for the derived UUID
	dataLen   int64
	zp        *zpipe // compression pipeline, when compressing
}

// inode is an object being built; hard links share one.
type inode struct {
	mode     uint32
	uid, gid uint32
	mtime    int64
	nsec     uint32
	size     int64
	rdev     uint32
	xattrs   []xattr // sorted by key()
	link     string  // symlink target
	children map[string]*inode
	parent   *inode

	// Regular file data.
	startBlk int64 // first data block, -1 if none
	inline   bool  // tail is in the spool at tailOff
	tailOff  int64

	z *zfile // compressed data, when the file was stored compressed

	// Set during layout.
	nlink    uint32
	ino      uint32
	extended bool
	sharedX  []xattr  // xattrs stored in the shared area
	shared   []uint32 // their ids, relative to the area
	inlineX  []xattr
	filter   uint32
	ibody    int
	tailLen  int
	nid      uint64
	pos      int64
	names    []string // directories: sorted child names
	visited  bool
}

func (n *inode) isDir() bool { return n.mode&ModeTypeMask == ModeDir }

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
	wr.root = &inode{mode: ModeDir | 0o755, mtime: o.BuildTime, startBlk: -1, children: map[string]*inode{}}
	wr.root.parent = wr.root
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
	if strings.HasPrefix(p, "/") {
		return nil, fmt.Errorf("absolute path %q", p)
	}
	var parts []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, fmt.Errorf("path %q has a \"..\" component", p)
		}
		if len(c) > maxNameLen {
			return nil, fmt.Errorf("path %q: name %.20q... is %d bytes, over the limit of %d", p, c, len(c), maxNameLen)
		}
		if strings.IndexByte(c, 0) >= 0 {
			return nil, fmt.Errorf("path %q contains a NUL byte", p)
		}
		parts = append(parts, c)
	}
	return parts, nil
}

// lookupParent walks to the directory that holds the last component of
// parts, creating missing directories. A non-directory in the way is an
// error, as it is when extracting.
func (w *Writer) lookupParent(parts []string) (*inode, error) {
	dir := w.root
	for i, c := range parts[:len(parts)-1] {
		child := dir.children[c]
		if child == nil {
			child = w.implicitDir(dir)
			dir.children[c] = child
		} else if !child.isDir() {
			return nil, fmt.Errorf("%q is not a directory: %w", strings.Join(parts[:i+1], "/"), syscall.ENOTDIR)
		}
		dir = child
	}
	return dir, nil
}

// implicitDir makes a directory for a path whose parent never appeared as
// an entry: mode 0755, owned by root, with the build time as mtime.
func (w *Writer) implicitDir(parent *inode) *inode {
	return &inode{mode: ModeDir | 0o755, mtime: w.opts.BuildTime, startBlk: -1, parent: parent, children: map[string]*inode{}}
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
	parts, err := SplitPath(e.Path)
	if err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	n, err := w.newInode(e)
	if err != nil {
		return fmt.Errorf("erofs: %s: %w", e.Path, err)
	}
	if len(parts) == 0 {
		if !n.isDir() {
			return fmt.Errorf("erofs: %q: the root must be a directory", e.Path)
		}
		w.updateDir(w.root, n)
		return nil
	}
	dir, err := w.lookupParent(parts)
	if err != nil {
		return fmt.Errorf("erofs: %s: %w", e.Path, err)
	}
	name := parts[len(parts)-1]
	if old := dir.children[name]; old != nil && old.isDir() && n.isDir() {
		w.updateDir(old, n)
		return nil
	}
	if n.isDir() {
		n.parent = dir
		n.children = map[string]*inode{}
	}
	if n.mode&ModeTypeMask == ModeRegular {
		write := w.writeData
		if w.zp != nil && n.size > 0 {
			write = w.zp.add
		}
		if err := write(n, data); err != nil {
			w.err = fmt.Errorf("erofs: %s: %w", e.Path, err)
			return w.err
		}
	}
	dir.children[name] = n
	return nil
}

// updateDir copies a repeated directory entry's metadata onto the existing
// directory. Xattrs are merged, the later values winning, as mkfs.erofs and
// containerd's layer extraction do.
func (w *Writer) updateDir(dst, src *inode) {
	dst.mode, dst.uid, dst.gid = src.mode, src.uid, src.gid
	dst.mtime, dst.nsec = src.mtime, src.nsec
	for _, x := range src.xattrs {
		setXattr(dst, x.name, x.value)
	}
}

// newInode validates e and makes an inode from its metadata.
func (w *Writer) newInode(e *Entry) (*inode, error) {
	n := &inode{mode: e.Mode, uid: e.UID, gid: e.GID, startBlk: -1}
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
		n.link = e.Linkname
		n.size = int64(len(e.Linkname))
	case ModeCharDevice, ModeBlockDevice:
		if e.Devmajor > 0xFFF || e.Devminor > 0xFFFFF {
			return nil, fmt.Errorf("device number %d:%d out of range", e.Devmajor, e.Devminor)
		}
		n.rdev = EncodeDev(e.Devmajor, e.Devminor)
	default:
		return nil, fmt.Errorf("unsupported file mode %#o", e.Mode)
	}
	if e.Mode&^(ModeTypeMask|ModePermMask) != 0 {
		return nil, fmt.Errorf("invalid mode bits %#o", e.Mode)
	}
	if len(e.Xattrs) > 0 {
		n.xattrs = make([]xattr, 0, len(e.Xattrs))
		for name, value := range e.Xattrs {
			if err := checkXattr(name, value); err != nil {
				return nil, err
			}
			n.xattrs = append(n.xattrs, xattr{name, value})
		}
		if size := inlineIbodySize(n.xattrs); (size-xattrIbodyHeaderSize)/4+1 > math.MaxUint16 {
			return nil, fmt.Errorf("xattrs take %d bytes, more than an inode can hold", size)
		}
		sortXattrs(n.xattrs)
	}
	return n, nil
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
func (w *Writer) writeData(n *inode, r io.Reader) error {
	if n.size == 0 {
		return nil
	}
	if r == nil {
		return errors.New("no data reader for a non-empty file")
	}
	bs := int64(w.bs)
	full, tail := n.size/bs, n.size%bs
	blocks, err := w.planFlat(n)
	if err != nil {
		return err
	}
	w.dataCRC, err = w.out.readFrom(r, full*bs, w.dataCRC)
	if err == nil && tail > 0 {
		if n.inline {
			buf := w.tail[:tail]
			if _, err = io.ReadFull(r, buf); err == nil {
				n.tailOff, err = w.spool.write(buf)
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

// planFlat places a file stored uncompressed: whole blocks from the next
// free block, and the tail inline in the inode's block when it fits. It
// returns the number of data blocks.
func (w *Writer) planFlat(n *inode) (int64, error) {
	bs := int64(w.bs)
	full, tail := n.size/bs, n.size%bs
	n.inline = !w.opts.NoInlineData && tail > 0 &&
		w.coreSize(n)+inlineIbodySize(n.xattrs)+int(tail) <= w.bs
	blocks := full
	if tail > 0 && !n.inline {
		blocks++
	}
	if w.nextBlock+blocks > math.MaxUint32 {
		return 0, fmt.Errorf("image exceeds %d blocks", uint64(math.MaxUint32))
	}
	n.startBlk = -1
	if blocks > 0 {
		n.startBlk = w.nextBlock
	}
	return blocks, nil
}

// Link adds a hard link: name becomes another name of the object at
// target, which must exist and must not be a directory. An existing object
// at name is replaced.
func (w *Writer) Link(name, target string) error {
	if w.err != nil {
		return w.err
	}
	parts, err := SplitPath(name)
	if err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	t, err := w.lookup(target)
	if err != nil {
		return fmt.Errorf("erofs: hard link %q: %w", name, err)
	}
	if t.isDir() {
		return fmt.Errorf("erofs: hard link %q: target %q is a directory", name, target)
	}
	if len(parts) == 0 {
		return fmt.Errorf("erofs: hard link %q: cannot replace the root", name)
	}
	dir, err := w.lookupParent(parts)
	if err != nil {
		return fmt.Errorf("erofs: hard link %q: %w", name, err)
	}
	dir.children[parts[len(parts)-1]] = t
	return nil
}

// lookup finds the object at path p.
func (w *Writer) lookup(p string) (*inode, error) {
	parts, err := SplitPath(p)
	if err != nil {
		return nil, err
	}
	n := w.root
	for _, c := range parts {
		if !n.isDir() {
			return nil, fmt.Errorf("%q: %w", p, fs.ErrNotExist)
		}
		child := n.children[c]
		if child == nil {
			return nil, fmt.Errorf("%q: %w", p, fs.ErrNotExist)
		}
		n = child
	}
	return n, nil
}

// Remove deletes the object at path p (with everything below it, for a
// directory). It is not an error if nothing is there.
func (w *Writer) Remove(p string) error {
	parts, err := SplitPath(p)
	if err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	if len(parts) == 0 {
		return errors.New("erofs: cannot remove the root")
	}
	n := w.root
	for _, c := range parts[:len(parts)-1] {
		if n = n.children[c]; n == nil || !n.isDir() {
			return nil
		}
	}
	delete(n.children, parts[len(parts)-1])
	return nil
}

// MkdirAll makes sure a directory exists at path p, creating it and its
// parents as implicit directories (mode 0755, owned by root, build time)
// where they are missing. Existing directories are left as they are.
func (w *Writer) MkdirAll(p string) error {
	parts, err := SplitPath(p)
	if err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	_, err = w.lookupParent(append(parts, "x"))
	if err != nil {
		return fmt.Errorf("erofs: MkdirAll %q: %w", p, err)
	}
	return nil
}

// SetXattr sets an extended attribute on the directory at path p, creating
// the directory (and its parents) if it does not exist. Attributes of other
// objects are given to Add.
func (w *Writer) SetXattr(p, name, value string) error {
	if w.err != nil {
		return w.err
	}
	if err := checkXattr(name, value); err != nil {
		return fmt.Errorf("erofs: %s: %w", p, err)
	}
	parts, err := SplitPath(p)
	if err != nil {
		return fmt.Errorf("erofs: %w", err)
	}
	n := w.root
	if len(parts) > 0 {
		dir, err := w.lookupParent(parts)
		if err != nil {
			return fmt.Errorf("erofs: SetXattr %q: %w", p, err)
		}
		c := parts[len(parts)-1]
		n = dir.children[c]
		if n == nil {
			n = w.implicitDir(dir)
			dir.children[c] = n
		}
	}
	if !n.isDir() {
		return fmt.Errorf("erofs: SetXattr %q: %w", p, syscall.ENOTDIR)
	}
	setXattr(n, name, value)
	return nil
}

func setXattr(n *inode, name, value string) {
	for i := range n.xattrs {
		if n.xattrs[i].name == name {
			n.xattrs[i].value = value
			sortXattrs(n.xattrs)
			return
		}
	}
	n.xattrs = append(n.xattrs, xattr{name, value})
	sortXattrs(n.xattrs)
}

// Size returns the size of the finished image in bytes. It is valid after a
// successful Close.
func (w *Writer) Size() int64 { return w.size }
