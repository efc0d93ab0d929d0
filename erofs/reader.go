package erofs

// This file holds the EROFS reader: Open, the superblock and the FS type
// with its fs.FS methods and path resolution. The inode, directory, data and
// xattr decoders live in reader_*.go.
//
// Images are untrusted input. Every on-disk offset, size and count is checked
// before use, memory use is bounded by the sizes of the structures actually
// present in the image, and no walk can loop forever: symbolic links are
// followed at most maxSymlinks times per path, directory lookups are binary
// searches, and directory listings check the "." and ".." entries so that a
// directory tree walked with fs.WalkDir visits every directory at most once
// (see readDirents).

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"strings"
	"sync"
	"syscall"
)

// maxSymlinks is the maximum number of symbolic links followed while
// resolving one path (Linux's MAXSYMLINKS).
const maxSymlinks = 40

// maxLookups bounds the directory lookups of one path resolution, so that
// chains of symlinks full of "d/.." components cannot make a resolution
// arbitrarily expensive.
const maxLookups = 4096

// maxSymlinkLen bounds the length of a symbolic link target the reader is
// willing to load (Linux's PATH_MAX).
const maxSymlinkLen = 4096

// defaultAllocLimit caps up-front allocations when the image size is not
// known.
const defaultAllocLimit = 64 << 20

// ErrCorrupt is matched (with errors.Is) by every error that reports a
// malformed image. The errors themselves carry the details, for example
// "erofs: inode 1234: directory block 2: nameoff 7 out of range".
var ErrCorrupt = errors.New("erofs: corrupt image")

// ErrNotEROFS is returned by Open when the superblock magic number is wrong.
var ErrNotEROFS = errors.New("erofs: not an EROFS image (bad superblock magic)")

// corruptError reports a malformed image.
type corruptError struct{ msg string }

func (e *corruptError) Error() string        { return "erofs: " + e.msg }
func (e *corruptError) Is(target error) bool { return target == ErrCorrupt }

// unsupportedError reports a valid image feature this reader cannot handle.
type unsupportedError struct{ msg string }

func (e *unsupportedError) Error() string        { return "erofs: " + e.msg }
func (e *unsupportedError) Is(target error) bool { return target == errors.ErrUnsupported }

func corruptf(format string, args ...any) error {
	return &corruptError{fmt.Sprintf(format, args...)}
}

func inodeCorruptf(nid uint64, format string, args ...any) error {
	return &corruptError{fmt.Sprintf("inode %d: ", nid) + fmt.Sprintf(format, args...)}
}

func unsupportedf(format string, args ...any) error {
	return &unsupportedError{fmt.Sprintf(format, args...)}
}

// ioErrorf wraps an I/O error from an underlying device with context. A short
// read means the image is truncated, which is reported as corruption.
func ioErrorf(err error, format string, args ...any) error {
	ctx := fmt.Sprintf(format, args...)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return &corruptError{ctx + ": unexpected end of image"}
	}
	return fmt.Errorf("erofs: %s: %w", ctx, err)
}

// readFull reads exactly len(p) bytes at off from r.
func readFull(r io.ReaderAt, p []byte, off int64) error {
	if off < 0 || off > math.MaxInt64-int64(len(p)) {
		return io.ErrUnexpectedEOF
	}
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// readerSize returns the size of r if it can tell, else -1.
func readerSize(r io.ReaderAt) int64 {
	switch v := r.(type) {
	case interface{ Size() int64 }:
		return v.Size()
	case interface {
		Stat() (fs.FileInfo, error)
	}:
		if fi, err := v.Stat(); err == nil && fi.Mode().IsRegular() {
			return fi.Size()
		}
	}
	return -1
}

// OpenOption configures Open.
type OpenOption func(*openOptions)

type openOptions struct {
	devices    []io.ReaderAt
	devicesSet bool
}

// WithDevices supplies the extra devices (blobs) of a multi-device image in
// device-table order: devs[0] is device_id 1, devs[1] is device_id 2 and so
// on. When given, their number must equal the superblock's extra_devices.
// Without this option the image is read in "flat" mode, like a kernel mount
// without device= options: a block on extra device N is read from the
// primary device at N's unified address (as for an image concatenated with
// its blobs).
func WithDevices(devs ...io.ReaderAt) OpenOption {
	return func(o *openOptions) {
		o.devices = append([]io.ReaderAt(nil), devs...)
		o.devicesSet = true
	}
}

// FS is a read-only EROFS file system. It implements fs.FS, fs.StatFS,
// fs.ReadDirFS, fs.ReadFileFS and fs.ReadLinkFS. An FS caches nothing but
// a few decoded pclusters of the packed inode (compressed images with
// fragments) and is safe for concurrent use. The fs.File values it returns are not, except
// that ReadAt may be called concurrently.
type FS struct {
	r          io.ReaderAt
	size       int64 // primary device size, or -1 if unknown
	allocLimit int64 // cap on up-front allocations driven by on-disk sizes
	sb         Superblock
	blkBits    uint
	blkSize    int64
	metaBase   int64 // byte offset of NID 0
	xattrBase  int64 // byte offset of shared xattr ID 0
	devs       []fsDevice
	devMask    uint16
	flat       bool // no devices given: extra devices live in the primary at their uniaddr
	prefixes   []xattrLongPrefix
	zcfg       zConfig // compression configuration (the COMPR_CFGS records)

	packedOnce sync.Once
	packed     *fsData // the packed inode's data, shared by files with fragments
	packedErr  error
}

// fsDevice is an extra device: its device table slot and its reader.
type fsDevice struct {
	r       io.ReaderAt // nil in flat mode
	blocks  uint64
	uniaddr uint64
}

// Open reads an EROFS image's superblock from r and returns a file system
// over it. It verifies the superblock checksum when the image has one,
// decodes the compression configuration records, and rejects images with
// incompatible features it does not support (48-bit layout, metabox; such
// errors match errors.ErrUnsupported). The returned FS reads r
// (and any extra devices) on demand and never loads whole files into memory.
func Open(r io.ReaderAt, opts ...OpenOption) (*FS, error) {
	var o openOptions
	for _, opt := range opts {
		opt(&o)
	}
	f := &FS{r: r, size: readerSize(r)}

	var b [superblockSize]byte
	if err := readFull(r, b[:], SuperblockOffset); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, corruptf("superblock: image too short")
		}
		return nil, fmt.Errorf("erofs: reading superblock: %w", err)
	}
	f.sb = DecodeSuperblock(b[:])
	sb := &f.sb
	if sb.Magic != Magic {
		return nil, ErrNotEROFS
	}
	blkBits := uint(sb.BlkSzBits)
	if blkBits < 9 || blkBits > 16 {
		return nil, corruptf("superblock: block size bits %d out of range [9, 16]", blkBits)
	}
	f.blkBits = blkBits
	f.blkSize = 1 << blkBits
	if sb.FeatureCompat&FeatureCompatSbChksum != 0 {
		if err := f.verifyChecksum(); err != nil {
			return nil, err
		}
	}
	if sb.DirBlkBits != 0 {
		return nil, corruptf("superblock: dirblkbits %d (must be 0)", sb.DirBlkBits)
	}
	if sbSize := superblockSize + 16*int(sb.ExtSlots); sbSize > 4096-SuperblockOffset {
		return nil, corruptf("superblock: size %d (%d extension slots) too large", sbSize, sb.ExtSlots)
	}
	if err := checkIncompat(sb.FeatureIncompat); err != nil {
		return nil, err
	}

	f.metaBase = int64(sb.MetaBlkAddr) << blkBits
	f.xattrBase = int64(sb.XattrBlkAddr) << blkBits
	f.allocLimit = defaultAllocLimit
	if f.size >= 0 {
		f.allocLimit = f.size
	}

	if sb.FeatureIncompat&FeatureIncompatDeviceTable == 0 {
		sb.ExtraDevices = 0
	}
	if err := f.readDeviceTable(&o); err != nil {
		return nil, err
	}
	if err := f.readComprConfigs(); err != nil {
		return nil, err
	}
	if err := f.readXattrPrefixes(); err != nil {
		return nil, err
	}
	// Fail early on an unusable root.
	root, err := f.inode(sb.RootNid)
	if err != nil {
		return nil, err
	}
	if !root.isDir() {
		return nil, inodeCorruptf(root.nid, "root inode is not a directory (mode %#o)", root.mode)
	}
	return f, nil
}

// checkIncompat rejects incompatible feature bits the reader does not handle.
func checkIncompat(incompat uint32) error {
	if unknown := incompat &^ featureIncompatAllKnown; unknown != 0 {
		return unsupportedf("superblock: unknown incompatible features %#x", unknown)
	}
	if u := incompat &^ (featureIncompatSupportedRead | featureIncompatCompressedMask | FeatureIncompatBigPcluster | FeatureIncompatDedupe | FeatureIncompat48Bit); u != 0 {
		var names []string
		if u&FeatureIncompatMetabox != 0 {
			names = append(names, "metabox")
		}
		return unsupportedf("superblock: unsupported incompatible features %#x (%s)", u, strings.Join(names, ", "))
	}
	return nil
}

// verifyChecksum checks the superblock CRC-32C (struct erofs_super_block
// checksum, EROFS_FEATURE_COMPAT_SB_CHKSUM in fs/erofs/erofs_fs.h).
func (f *FS) verifyChecksum() error {
	buf := make([]byte, checksumLen(int(f.blkSize)))
	if err := readFull(f.r, buf, SuperblockOffset); err != nil {
		return ioErrorf(err, "superblock checksum")
	}
	if got := computeSuperblockChecksum(buf); got != f.sb.Checksum {
		return corruptf("superblock: checksum mismatch (stored %#08x, computed %#08x)", f.sb.Checksum, got)
	}
	return nil
}

// readDeviceTable decodes the device table and attaches the extra devices.
func (f *FS) readDeviceTable(o *openOptions) error {
	n := int(f.sb.ExtraDevices)
	if o.devicesSet && len(o.devices) != n {
		return fmt.Errorf("erofs: image has %d extra devices, %d given", n, len(o.devices))
	}
	f.flat = !o.devicesSet || n == 0
	if n == 0 {
		return nil
	}
	// The kernel masks device IDs with roundup_pow_of_two(n+1)-1.
	m := uint32(1)
	for m < uint32(n)+1 {
		m <<= 1
	}
	f.devMask = uint16(m - 1)

	base := int64(f.sb.DevtSlotOff) * deviceSlotSize
	if f.size >= 0 && base+int64(n)*deviceSlotSize > f.size {
		return corruptf("device table: %d slots at %d beyond end of image", n, base)
	}
	f.devs = make([]fsDevice, 0, min(n, 1024))
	f.sb.Devices = make([]SuperblockDevice, 0, min(n, 1024))
	var slot [deviceSlotSize]byte
	for i := range n {
		if err := readFull(f.r, slot[:], base+int64(i)*deviceSlotSize); err != nil {
			return ioErrorf(err, "device table slot %d", i)
		}
		sd := DecodeDeviceSlot(slot[:])
		if f.sb.FeatureIncompat&FeatureIncompat48Bit != 0 {
			sd = DecodeDeviceSlot48(slot[:])
		}
		d := fsDevice{blocks: sd.Blocks, uniaddr: sd.UniAddr}
		if !f.flat {
			d.r = o.devices[i]
		}
		f.devs = append(f.devs, d)
		f.sb.Devices = append(f.sb.Devices, sd)
	}
	return nil
}

// Superblock returns the decoded superblock.
func (f *FS) Superblock() Superblock {
	sb := f.sb
	sb.Devices = append([]SuperblockDevice(nil), f.sb.Devices...)
	return sb
}

// resolved is the result of resolving a path.
type resolved struct {
	ino    *fsInode
	parent uint64 // NID of the directory holding ino's entry (the root's is the root)
}

// resolve looks up a path. Symbolic links in intermediate components are
// always followed; a final symbolic link is followed if follow is set.
// Relative link targets are resolved from the link's directory, absolute
// ones from the root of the image, ".." in them lexically.
func (f *FS) resolve(name string, follow bool) (resolved, error) {
	if !validPath(name) {
		return resolved{}, fs.ErrInvalid
	}
	root, err := f.inode(f.sb.RootNid)
	if err != nil {
		return resolved{}, err
	}
	// stack holds the directories from the root down to the current one.
	stack := []*fsInode{root}
	cur := root
	var pending []string // components still to resolve, in reverse order
	pushPath := func(p string) {
		parts := strings.Split(p, "/")
		for i := len(parts) - 1; i >= 0; i-- {
			pending = append(pending, parts[i])
		}
	}
	if name != "." {
		pushPath(name)
	}
	links, lookups := 0, 0
	for len(pending) > 0 {
		c := pending[len(pending)-1]
		pending = pending[:len(pending)-1]
		if cur != stack[len(stack)-1] {
			// cur is not a directory but more components follow.
			if c == "" || c == "." {
				continue
			}
			return resolved{}, syscall.ENOTDIR
		}
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
			cur = stack[len(stack)-1]
			continue
		}
		if lookups++; lookups > maxLookups {
			return resolved{}, syscall.ENAMETOOLONG
		}
		ent, ok, err := f.lookup(cur, c)
		if err != nil {
			return resolved{}, err
		}
		if !ok {
			return resolved{}, fs.ErrNotExist
		}
		child, err := f.inode(ent.nid)
		if err != nil {
			return resolved{}, err
		}
		// A walk descends only into entries typed as directories; a
		// mismatch could make it follow a symlink it did not mean to.
		if ent.typ != fileTypeUnkn && ent.typ != FileTypeOfMode(child.mode) {
			return resolved{}, inodeCorruptf(cur.nid, "entry %q has file type %d, but inode %d has mode %#o", c, ent.typ, child.nid, child.mode)
		}
		if child.isSymlink() && (follow || len(pending) > 0) {
			links++
			if links > maxSymlinks {
				return resolved{}, syscall.ELOOP
			}
			target, err := f.readLink(child)
			if err != nil {
				return resolved{}, err
			}
			if target == "" {
				return resolved{}, fs.ErrNotExist
			}
			if strings.HasPrefix(target, "/") {
				stack = stack[:1]
				cur = root
			}
			pushPath(target)
			continue
		}
		if child.isDir() {
			stack = append(stack, child)
		}
		cur = child
	}
	parent := stack[len(stack)-1].nid
	if cur == stack[len(stack)-1] && len(stack) > 1 {
		parent = stack[len(stack)-2].nid
	}
	return resolved{ino: cur, parent: parent}, nil
}

// validPath is fs.ValidPath without its UTF-8 requirement: EROFS names are
// arbitrary bytes (tar layers carry non-UTF-8 names), and every name ReadDir
// returns must be usable in Open.
func validPath(name string) bool {
	if name == "." {
		return true
	}
	for {
		i := strings.IndexByte(name, '/')
		elem := name
		if i >= 0 {
			elem = name[:i]
		}
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
		if i < 0 {
			return true
		}
		name = name[i+1:]
	}
}

// pathErr wraps err in an *fs.PathError.
func pathErr(op, name string, err error) error {
	return &fs.PathError{Op: op, Path: name, Err: err}
}

// baseName returns the last element of a valid fs path ("." for the root).
func baseName(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// Open opens the named file. Symbolic links are followed. Names are paths
// as for fs.ValidPath, except that they need not be valid UTF-8 (EROFS
// names are arbitrary bytes); the same holds for the other methods. Regular files
// implement io.Reader, io.ReaderAt and io.Seeker and read their data on
// demand; directories implement fs.ReadDirFile. Device, FIFO and socket
// inodes open as empty files.
func (f *FS) Open(name string) (fs.File, error) {
	res, err := f.resolve(name, true)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	ino := res.ino
	if ino.isDir() {
		return &fsDir{fsys: f, name: name, ino: ino, parent: res.parent}, nil
	}
	file := &fsFile{fsys: f, name: name, ino: ino}
	if ino.isReg() {
		d, err := f.data(ino)
		if err != nil {
			return nil, pathErr("open", name, err)
		}
		file.data = d
	}
	return file, nil
}

// Stat returns information about the named file, following symbolic links.
// Its Sys method returns a *Stat.
func (f *FS) Stat(name string) (fs.FileInfo, error) {
	return f.stat("stat", name, true)
}

// Lstat returns information about the named file without following a final
// symbolic link. Its Sys method returns a *Stat.
func (f *FS) Lstat(name string) (fs.FileInfo, error) {
	return f.stat("lstat", name, false)
}

func (f *FS) stat(op, name string, follow bool) (fs.FileInfo, error) {
	res, err := f.resolve(name, follow)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	fi, err := f.fileInfo(baseName(name), res.ino)
	if err != nil {
		return nil, pathErr(op, name, err)
	}
	return fi, nil
}

// ReadLink returns the target of the named symbolic link.
func (f *FS) ReadLink(name string) (string, error) {
	res, err := f.resolve(name, false)
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	if !res.ino.isSymlink() {
		return "", pathErr("readlink", name, fs.ErrInvalid)
	}
	target, err := f.readLink(res.ino)
	if err != nil {
		return "", pathErr("readlink", name, err)
	}
	return target, nil
}

// ReadDir reads the named directory (following symbolic links) and returns
// its entries sorted by name, without "." and "..".
func (f *FS) ReadDir(name string) ([]fs.DirEntry, error) {
	res, err := f.resolve(name, true)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	if !res.ino.isDir() {
		return nil, pathErr("readdir", name, syscall.ENOTDIR)
	}
	ents, err := f.listDir(res.ino, res.parent)
	if err != nil {
		return nil, pathErr("readdir", name, err)
	}
	return ents, nil
}

// ReadFile reads the named file (following symbolic links) and returns its
// contents. Device, FIFO and socket inodes read as empty.
func (f *FS) ReadFile(name string) ([]byte, error) {
	res, err := f.resolve(name, true)
	if err != nil {
		return nil, pathErr("readfile", name, err)
	}
	ino := res.ino
	if ino.isDir() {
		return nil, pathErr("readfile", name, syscall.EISDIR)
	}
	if !ino.isReg() {
		return []byte{}, nil
	}
	d, err := f.data(ino)
	if err != nil {
		return nil, pathErr("readfile", name, err)
	}
	b, err := d.readAll()
	if err != nil {
		return nil, pathErr("readfile", name, err)
	}
	return b, nil
}

// Interface checks.
var (
	_ fs.FS          = (*FS)(nil)
	_ fs.StatFS      = (*FS)(nil)
	_ fs.ReadDirFS   = (*FS)(nil)
	_ fs.ReadFileFS  = (*FS)(nil)
	_ fs.ReadLinkFS  = (*FS)(nil)
	_ fs.ReadDirFile = (*fsDir)(nil)
	_ io.ReaderAt    = (*fsFile)(nil)
	_ io.Seeker      = (*fsFile)(nil)
)
