package erofs

// Inode decoding and file information for the reader.

import (
	"io/fs"
	"math"
	"time"
)

// Stat is the EROFS-specific information about a file. The fs.FileInfo
// values returned by FS.Stat, FS.Lstat, fs.File.Stat and fs.DirEntry.Info
// return a *Stat from their Sys method. They also have the accessor
// methods other EROFS readers' FileInfo values have (those of
// github.com/erofs/go-erofs), for code that asserts interfaces instead of
// importing this package:
//
//	UID() uint32, GID() uint32
//	Ino() uint64    // the node ID (Nid), which hard links share
//	Nlink() uint64
//	Rdev() uint64   // EncodeDev(Devmajor, Devminor)
//	GetAllXattr() map[string]string, GetXattr(name string) (string, bool)
//
// Xattrs holds the extended attributes Linux would list: inline and shared
// ones, with short and long name prefixes resolved. Entries Linux hides
// (name index 0, "lustre.", long prefixes without a known base) are left
// out.
type Stat struct {
	Nid       uint64            // node ID: (inode offset - meta_blkaddr*blksz) / 32
	Mode      uint32            // raw i_mode, including the file type bits (ModeRegular, ...)
	UID, GID  uint32            // owner
	Size      int64             // i_size: data length, symlink target length
	Mtime     int64             // modification time, seconds since the Unix epoch
	MtimeNsec uint32            // nanoseconds part of the modification time
	Nlink     uint32            // number of hard links
	Devmajor  uint32            // major device number of a character or block device
	Devminor  uint32            // minor device number of a character or block device
	Xattrs    map[string]string // extended attributes by full name ("user.x"), nil if none
	Layout    uint8             // data layout (LayoutFlatPlain, LayoutFlatInline, ...)
	Ino       uint32            // on-disk i_ino serial number
	Extended  bool              // the inode is the 64-byte extended form (else the 32-byte compact one)
}

// fsInode is a decoded inode core.
type fsInode struct {
	nid      uint64
	pos      int64 // byte offset of the inode on the primary device
	format   uint16
	layout   uint8
	extended bool
	coreSize int64 // 32 or 64
	xattrLen int64 // size of the inline xattr body
	mode     uint32
	nlink    uint32
	size     int64
	u        uint32 // i_u: start block, rdev or chunk format
	ino      uint32
	uid, gid uint32
	mtime    int64
	nsec     uint32
}

func (i *fsInode) isDir() bool     { return i.mode&ModeTypeMask == ModeDir }
func (i *fsInode) isReg() bool     { return i.mode&ModeTypeMask == ModeRegular }
func (i *fsInode) isSymlink() bool { return i.mode&ModeTypeMask == ModeSymlink }

// metaEnd is the byte offset just past the inode core and its xattr body.
func (i *fsInode) metaEnd() int64 { return i.pos + i.coreSize + i.xattrLen }

// inode reads and validates the inode with the given NID.
func (f *FS) inode(nid uint64) (*fsInode, error) {
	if nid > uint64(math.MaxInt64-f.metaBase-extendedInodeSize)>>inodeSlotBits {
		return nil, inodeCorruptf(nid, "NID out of range")
	}
	pos := f.metaBase + int64(nid)<<inodeSlotBits
	if f.size >= 0 && pos+compactInodeSize > f.size {
		return nil, inodeCorruptf(nid, "beyond end of image")
	}
	var b [extendedInodeSize]byte
	if err := readFull(f.r, b[:compactInodeSize], pos); err != nil {
		return nil, ioErrorf(err, "inode %d", nid)
	}
	i := &fsInode{nid: nid, pos: pos}
	rec := DecodeInode(b[:]) // an extended inode's second half is read below
	i.format = rec.Format
	if i.format&(inodeFormatReservedMask|inodeFormatBit4) != 0 {
		return nil, inodeCorruptf(nid, "bad i_format %#04x", i.format)
	}
	if i.coreSize = int64(rec.RecordSize()); i.coreSize > compactInodeSize {
		if err := readFull(f.r, b[compactInodeSize:], pos+compactInodeSize); err != nil {
			return nil, ioErrorf(err, "inode %d", nid)
		}
		rec = DecodeInode(b[:])
	}
	i.layout = rec.Layout()
	i.extended = rec.Extended()
	if rec.XattrCount == 1 {
		return nil, inodeCorruptf(nid, "bad i_xattr_icount 1")
	}
	i.xattrLen = int64(XattrIbodySize(rec.XattrCount))
	i.mode = uint32(rec.Mode)
	if rec.Size > math.MaxInt64 {
		return nil, inodeCorruptf(nid, "negative size")
	}
	i.size = int64(rec.Size)
	i.u, i.ino, i.uid, i.gid, i.nlink = rec.U, rec.Ino, rec.UID, rec.GID, rec.Nlink
	if rec.Nb != 0 && f.sb.FeatureIncompat&FeatureIncompat48Bit != 0 && (i.layout == LayoutFlatPlain || i.layout == LayoutFlatInline) {
		// startblk_hi: a flat file's data past block 2^32.
		return nil, unsupportedf("inode %d: flat data past block 2^32 (48-bit layout)", nid)
	}
	if i.extended {
		i.mtime, i.nsec = int64(rec.Mtime), rec.MtimeNsec
	} else {
		i.mtime, i.nsec = f.sb.Epoch+int64(rec.Mtime), f.sb.FixedNsec
	}

	switch i.mode & ModeTypeMask {
	case ModeRegular, ModeDir, ModeSymlink:
		if err := f.checkLayout(i); err != nil {
			return nil, err
		}
	case ModeCharDevice, ModeBlockDevice, ModeFIFO, ModeSocket:
	default:
		return nil, inodeCorruptf(nid, "bogus i_mode %#o", i.mode)
	}
	if i.isSymlink() && i.size > maxSymlinkLen {
		return nil, inodeCorruptf(nid, "symlink target length %d too long", i.size)
	}
	return i, nil
}

// checkLayout validates the data layout of an inode that has data.
func (f *FS) checkLayout(i *fsInode) error {
	switch i.layout {
	case LayoutFlatPlain:
	case LayoutFlatInline:
		if i.size > 0 {
			tail := i.size - (i.size-1)>>f.blkBits<<f.blkBits
			if i.metaEnd()&(f.blkSize-1)+tail > f.blkSize {
				return inodeCorruptf(i.nid, "inline data (%d bytes) crosses a block boundary", tail)
			}
		}
	case LayoutChunkBased:
		cf := uint16(i.u)
		if cf&chunkFormatReserved != 0 || i.u>>16 != 0 {
			return inodeCorruptf(i.nid, "bad chunk format %#x", i.u)
		}
		if cf&chunkFormat48Bit != 0 && f.sb.FeatureIncompat&FeatureIncompat48Bit == 0 {
			return inodeCorruptf(i.nid, "48-bit chunk indexes in a non-48-bit image")
		}
		if cf&chunkFormat48Bit != 0 && cf&chunkFormatIndexes == 0 {
			return inodeCorruptf(i.nid, "48-bit chunk format %#x without chunk indexes", cf)
		}
	case LayoutCompressedFull, LayoutCompressedCompact:
		// Decoded lazily: Stat works, reading data reports ErrUnsupported.
	default:
		return inodeCorruptf(i.nid, "unknown data layout %d", i.layout)
	}
	return nil
}

// fileInfo builds the fs.FileInfo of an inode, loading its xattrs.
func (f *FS) fileInfo(name string, i *fsInode) (*fsFileInfo, error) {
	x, err := f.xattrs(i)
	if err != nil {
		return nil, err
	}
	st := &Stat{
		Nid:       i.nid,
		Mode:      i.mode,
		UID:       i.uid,
		GID:       i.gid,
		Size:      i.size,
		Mtime:     i.mtime,
		MtimeNsec: i.nsec,
		Nlink:     i.nlink,
		Xattrs:    x,
		Layout:    i.layout,
		Ino:       i.ino,
		Extended:  i.extended,
	}
	switch i.mode & ModeTypeMask {
	case ModeCharDevice, ModeBlockDevice:
		st.Devmajor, st.Devminor = DecodeDev(i.u)
	}
	return &fsFileInfo{name: name, st: st}, nil
}

// fsFileInfo implements fs.FileInfo.
type fsFileInfo struct {
	name string
	st   *Stat
}

func (fi *fsFileInfo) Name() string       { return fi.name }
func (fi *fsFileInfo) Size() int64        { return fi.st.Size }
func (fi *fsFileInfo) Mode() fs.FileMode  { return unixToFileMode(fi.st.Mode) }
func (fi *fsFileInfo) ModTime() time.Time { return time.Unix(fi.st.Mtime, int64(fi.st.MtimeNsec)) }
func (fi *fsFileInfo) IsDir() bool        { return fi.st.Mode&ModeTypeMask == ModeDir }
func (fi *fsFileInfo) Sys() any           { return fi.st }

// The accessors below are the ones github.com/erofs/go-erofs documents
// for its FileInfo values (Ownership, InodeInfo, DeviceInfo, Xattrs), so
// that code reading metadata through them reads ours too, without
// importing this package.

func (fi *fsFileInfo) UID() uint32   { return fi.st.UID }
func (fi *fsFileInfo) GID() uint32   { return fi.st.GID }
func (fi *fsFileInfo) Ino() uint64   { return fi.st.Nid }
func (fi *fsFileInfo) Nlink() uint64 { return uint64(fi.st.Nlink) }

// Rdev is the device number in the kernel's encoding (EncodeDev), 0 for
// other types.
func (fi *fsFileInfo) Rdev() uint64 { return uint64(EncodeDev(fi.st.Devmajor, fi.st.Devminor)) }

func (fi *fsFileInfo) GetAllXattr() map[string]string { return fi.st.Xattrs }

func (fi *fsFileInfo) GetXattr(name string) (string, bool) {
	v, ok := fi.st.Xattrs[name]
	return v, ok
}

// unixToFileMode converts a Unix mode to an fs.FileMode.
func unixToFileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & ModeTypeMask {
	case ModeDir:
		mode |= fs.ModeDir
	case ModeSymlink:
		mode |= fs.ModeSymlink
	case ModeBlockDevice:
		mode |= fs.ModeDevice
	case ModeCharDevice:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case ModeFIFO:
		mode |= fs.ModeNamedPipe
	case ModeSocket:
		mode |= fs.ModeSocket
	}
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// fileTypeToFileMode converts a directory entry file type to fs.FileMode
// type bits.
func fileTypeToFileMode(t uint8) fs.FileMode {
	switch t {
	case FileTypeDir:
		return fs.ModeDir
	case FileTypeSymlink:
		return fs.ModeSymlink
	case FileTypeBlockDev:
		return fs.ModeDevice
	case FileTypeCharDev:
		return fs.ModeDevice | fs.ModeCharDevice
	case FileTypeFIFO:
		return fs.ModeNamedPipe
	case FileTypeSocket:
		return fs.ModeSocket
	}
	return 0
}
