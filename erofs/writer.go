package erofs

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
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

	// Times says what becomes of the entries' mtimes: kept (TimesKeep, the
	// zero value), all set to BuildTime (TimesFixed) or none later than
	// BuildTime (TimesClamp).
	Times TimePolicy

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

	// Devices is the device table: the extra devices chunk-based files
	// (Writer.AddChunks) may point into, device 1 first. Their UniAddr is
	// not used and must be 0 (see DevicesAppended). Blocks may be set
	// later, before Close, with SetDeviceBlocks; a device of 2^32 blocks
	// or more makes the image use the 48-bit layout. Mount such an image
	// with one device= option per entry, in order.
	Devices []SuperblockDevice

	// DevicesAppended sets each device's UniAddr (mapped_blkaddr) to the
	// block where it starts when the devices' contents are appended to
	// the image in order: the image's own blocks, then the blocks of the
	// devices before it, as mkfs.erofs sets them. The image followed by
	// the devices so then mounts alone (the kernel reads the devices at
	// their UniAddr when it is given no device= option), which is the
	// form of a tar index with its tar appended.
	DevicesAppended bool

	// ChunkSize, when set, stores every non-empty regular file given to
	// Add chunk-based, in chunks of ChunkSize bytes (mkfs.erofs
	// --chunksize): a power of two from the block size to 2 GiB. Chunks
	// are deduplicated across the image by SHA-256, all-zero chunks become
	// holes, and a file's chunk size is enlarged where its chunks lie in
	// contiguous runs (see chunkdata.go, which also says how the
	// deduplication table's memory is bounded). Not with Compression;
	// NoInlineData has nothing to change then, chunk-based files having
	// no inline tails.
	ChunkSize int64

	// BlobDev, with ChunkSize, receives the chunk data instead of the
	// image (mkfs.erofs --blobdev): written from its start, each chunk
	// padded to whole blocks, it becomes the last device of the device
	// table (after Devices), whose Blocks Close fills in, and every
	// chunk-based file gets chunk indexes. Close flushes it but does not
	// close it. Mount the image with it as the last device= option.
	BlobDev io.Writer
}

// Writer builds an EROFS image in one pass, its regular files stored
// plain or, with WriterOptions.Compression, compressed. File data is
// written to the output as it is added (compressed data by the compression
// pipeline, in the order the files were added); directories, inodes and
// the superblock are written by Close. Memory use grows with the number of
// entries and the bytes of their names and attributes, not with the size
// of the data, the depth of directories or the length of paths.
//
// The image layout is: the superblock (followed by the compression
// configuration records and, when they fit, the shared xattrs and the long
// xattr prefix table) in the first block, then file data in the order it
// was added, then the blocks Close makes (directory and symlink blocks,
// and tails or inline clusters that no longer fit inline), then the shared
// xattrs when they did not fit the first block, then the inodes packed
// best-fit into metadata blocks. With ChunkSize, as mkfs.erofs does, the
// metadata area starts at block 0 (the root inode and the records that
// fit follow the superblock in its block) and the records of chunk-based
// files may cross block boundaries.
type Writer struct {
	opts  WriterOptions
	bs    int
	bits  uint8
	out   *seqWriter
	spool spool
	err   error // sticky
	done  bool
	size  int64

	// The tree (see namespace.go); the root directory is inode rootID.
	namespace
	zfiles     []*zfile    // compressed files, by inode.data
	chunkFiles []chunkFile // chunk-based files, by inode.data
	wide       bool        // some chunk index needs 48 bits: the 48-bit layout

	// The data area. While a compression pipeline runs, its sink owns
	// out, spool and these counters, and Close takes them back.
	dataStart int64  // first block after the superblock
	nextBlock int64  // next free block in the data area
	packedID  uint32 // the packed inode, noID for none
	tail      []byte // scratch for a file's tail on its way to the spool
	dataCRC   uint32 // CRC-32C of all file data, for the derived UUID
	dataLen   int64
	zp        *zpipe // compression pipeline, when compressing

	chunks *chunkStore // with WriterOptions.ChunkSize
}

// rootID is the inode of the root directory.
const rootID = 0

// inode is an object being built, the record of the namespace both the
// Writer and Tree keep; hard links share one. It holds no pointers: what
// only some objects have lives in tables of the namespace or the Writer
// that the inode indexes. It takes 48 bytes; what only Close needs
// (position, link count, inode number) is in its tables. The flags but
// flagLinked, and for a regular file data and u are the Writer's; a Tree's
// builder has data of a regular file as its payload.
type inode struct {
	mtime int64
	size  int64
	// data depends on the type. A regular file: the spool offset of its
	// inline tail, or its index in Writer.zfiles when flagZ is set. A
	// symlink: its index in namespace.links. A directory: its parent's
	// inode, set during layout.
	data  int64
	nsec  uint32
	uid   uint32
	gid   uint32
	u     uint32 // first data block (noID for none), or a device's number
	xattr uint32 // 1 + index in namespace.xattrs; 0 for no xattrs
	mode  uint16
	flags uint8
}

// inode flags.
const (
	flagInline    = 1 << iota // the data's tail is inline in the inode's block
	flagZ                     // stored compressed; data indexes Writer.zfiles
	flagVisited               // reached by the layout walk
	flagLinked                // the target of a hard link (set by the namespace)
	flagManyLinks             // set during layout: more links than a compact inode holds
	flagChunk                 // chunk-based; data indexes Writer.chunkFiles
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
	if len(o.Devices) > math.MaxUint16 {
		return nil, fmt.Errorf("erofs: %d devices: at most %d", len(o.Devices), math.MaxUint16)
	}
	for i, d := range o.Devices {
		if len(d.Tag) > deviceSlotTagSize || d.UniAddr != 0 || d.Blocks >= 1<<48 {
			return nil, fmt.Errorf("erofs: device %d: tag of at most %d bytes, zero UniAddr and fewer than 2^48 blocks", i+1, deviceSlotTagSize)
		}
	}
	wr.opts.Devices = slices.Clone(o.Devices)
	if err := wr.initChunks(); err != nil {
		return nil, err
	}
	wr.dataStart = int64(roundUp(headerEnd(o.Compression != nil, len(wr.opts.Devices)), bs) / bs)
	wr.nextBlock = wr.dataStart
	wr.packedID = noID
	wr.out = newSeqWriter(w, wr.dataStart*int64(bs), 1<<20)
	wr.namespace.init(o.BuildTime)
	if o.Times < TimesKeep || o.Times > TimesClamp {
		return nil, fmt.Errorf("erofs: unknown time policy %d", o.Times)
	}
	wr.namespace.times = o.Times
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

// Add adds an object to the image. For a regular file it reads exactly
// e.Size bytes from data and writes them out before returning; data may be
// nil for other types. An existing object at the same path is replaced, as
// extracting the entries in order would do, except that a directory added
// over a directory updates its metadata (merging xattrs) and keeps its
// children. Missing parent directories are created; a parent that exists
// but is not a directory is an error.
func (w *Writer) Add(e *Entry, data io.Reader) error {
	if err := w.usable("Add"); err != nil {
		return err
	}
	id, err := w.add(e)
	if err != nil {
		return w.treeError(err)
	}
	if id == noID {
		return nil
	}
	if p := w.inodes.at(id); p.mode&ModeTypeMask == ModeRegular {
		ibody := inlineIbodySize(w.xattrsOf(p))
		if w.zp != nil && p.size > 0 {
			err = w.addCompressed(id, p, w.coreSize(p)+ibody, data)
		} else if w.chunks != nil && p.size > 0 {
			err = w.addChunked(id, p, data)
		} else {
			err = w.writeData(p, ibody, data)
		}
		if err != nil {
			w.err = fmt.Errorf("erofs: %s: %w", e.Path, err)
			return w.err
		}
	}
	return nil
}

// treeError reports an error of the tree, if any. One of a tree that
// cannot grow is sticky.
func (w *Writer) treeError(err error) error {
	if err == nil {
		return nil
	}
	err = fmt.Errorf("erofs: %w", err)
	if errors.Is(err, errTooManyEntries) {
		w.err = err
	}
	return err
}

// needsExtended reports whether n cannot be stored in a compact inode. Like
// mkfs.erofs, an inode is compact only if its mtime is the build time;
// unlike it, nanoseconds must be zero too, so none are lost.
func (w *Writer) needsExtended(n *inode) bool {
	return n.size > math.MaxUint32 || n.uid > math.MaxUint16 || n.gid > math.MaxUint16 ||
		n.mtime != w.opts.BuildTime || n.nsec != 0 || n.flags&flagManyLinks != 0
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
	return w.treeError(w.hardLink(name, target))
}

// Remove deletes the object at path p (with everything below it, for a
// directory). It is not an error if nothing is there.
func (w *Writer) Remove(p string) error {
	if w.done {
		return errors.New("erofs: Remove after Close")
	}
	return w.treeError(w.remove(p))
}

// MkdirAll makes sure a directory exists at path p, creating it and its
// parents as implicit directories (mode 0755, owned by root, build time)
// where they are missing. Existing directories are left as they are.
func (w *Writer) MkdirAll(p string) error {
	if w.done {
		return errors.New("erofs: MkdirAll after Close")
	}
	return w.treeError(w.mkdirAll(p))
}

// SetXattr sets an extended attribute on the directory at path p, creating
// the directory (and its parents) if it does not exist. Attributes of other
// objects are given to Add.
func (w *Writer) SetXattr(p, name, value string) error {
	if err := w.usable("SetXattr"); err != nil {
		return err
	}
	return w.treeError(w.setDirXattr(p, name, value))
}

// Size returns the size of the finished image in bytes. It is valid after a
// successful Close.
func (w *Writer) Size() int64 { return w.size }

// SetDeviceBlocks sets the size in blocks of device dev (1 the first of
// WriterOptions.Devices) before Close, for a device whose size is known
// only once its files are added (a tar being read, say). Chunks already
// added are not checked against it.
func (w *Writer) SetDeviceBlocks(dev int, blocks uint64) error {
	if err := w.usable("SetDeviceBlocks"); err != nil {
		return err
	}
	if dev < 1 || dev > len(w.opts.Devices) || blocks >= 1<<48 {
		return fmt.Errorf("erofs: device %d of %d, %d blocks: want fewer than 2^48", dev, len(w.opts.Devices), blocks)
	}
	w.opts.Devices[dev-1].Blocks = blocks
	return nil
}

// TimePolicy says what becomes of the entries' modification times
// (WriterOptions.Times), as mkfs.erofs's -T, --mkfs-time and
// $SOURCE_DATE_EPOCH choose: see mkfs.erofs(1).
type TimePolicy int

const (
	// TimesKeep keeps every entry's mtime (mkfs.erofs --mkfs-time, or no
	// -T).
	TimesKeep TimePolicy = iota
	// TimesFixed gives every inode the build time as mtime, with zero
	// nanoseconds (mkfs.erofs -T, whose --all-time is the default): all
	// inodes can then be compact.
	TimesFixed
	// TimesClamp gives the build time, with zero nanoseconds, to every
	// inode whose mtime is not before it (mkfs.erofs with
	// $SOURCE_DATE_EPOCH, for reproducible builds).
	TimesClamp
)
