package erofs

// This file holds the EROFS on-disk format: constants, field offsets and
// one encoder and one decoder per record (superblock and device slots,
// compact and extended inodes, directory blocks, the inline xattr header,
// xattr entries and long name prefixes, chunk indexes and block maps, the
// compression configuration records, map headers and logical cluster
// indexes), used by the Writer, the reader and package rafs. All integers
// are little-endian. Names follow the kernel's fs/erofs/erofs_fs.h where
// one exists.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
)

// Magic is the EROFS superblock magic number.
const Magic = 0xE0F5E1E2

// SuperblockOffset is the byte offset of the superblock in the primary device.
const SuperblockOffset = 1024

// superblockSize is the size of the base superblock (sb_extslots == 0).
const superblockSize = 128

// Block sizes.
const (
	MinBlockSize     = 512
	MaxBlockSize     = 65536
	DefaultBlockSize = 4096
)

// Compatible feature bits (superblock feature_compat).
const (
	FeatureCompatSbChksum     = 0x01
	FeatureCompatMtime        = 0x02
	FeatureCompatXattrFilter  = 0x04
	FeatureCompatSharedEaMbox = 0x08
	FeatureCompatPlainXattrPf = 0x10
	FeatureCompatIshareXattrs = 0x20
)

// Incompatible feature bits (superblock feature_incompat).
const (
	FeatureIncompatZeroPadding    = 0x001
	FeatureIncompatComprCfgs      = 0x002
	FeatureIncompatBigPcluster    = 0x002
	FeatureIncompatChunkedFile    = 0x004
	FeatureIncompatDeviceTable    = 0x008
	FeatureIncompatComprHead2     = 0x008
	FeatureIncompatZtailpacking   = 0x010
	FeatureIncompatFragments      = 0x020
	FeatureIncompatDedupe         = 0x020
	FeatureIncompatXattrPrefixes  = 0x040
	FeatureIncompat48Bit          = 0x080
	FeatureIncompatMetabox        = 0x100
	featureIncompatSupportedRead  = FeatureIncompatChunkedFile | FeatureIncompatDeviceTable | FeatureIncompatXattrPrefixes
	featureIncompatAllKnown       = 0x1FF
	featureIncompatCompressedMask = FeatureIncompatZeroPadding | FeatureIncompatComprCfgs | FeatureIncompatZtailpacking | FeatureIncompatFragments
)

// Superblock field offsets (relative to the start of the superblock).
const (
	sbMagic            = 0x00
	sbChecksum         = 0x04
	sbFeatureCompat    = 0x08
	sbBlkszBits        = 0x0C
	sbExtSlots         = 0x0D
	sbRootNid          = 0x0E
	sbInos             = 0x10
	sbEpoch            = 0x18
	sbFixedNsec        = 0x20
	sbBlocks           = 0x24
	sbMetaBlkAddr      = 0x28
	sbXattrBlkAddr     = 0x2C
	sbUUID             = 0x30
	sbVolumeName       = 0x40
	sbFeatureIncompat  = 0x50
	sbU1               = 0x54
	sbExtraDevices     = 0x56
	sbDevtSlotOff      = 0x58
	sbDirBlkBits       = 0x5A
	sbXattrPrefixCount = 0x5B
	sbXattrPrefixStart = 0x5C
	sbPackedNid        = 0x60
	sbXattrFilterRes   = 0x68
	sbRootNid8b        = 0x70
	sbBlocksHi         = sbRootNid // blocks_hi: shares rootnid_2b's bytes in 48-bit images
)

// SuperblockSize is the size of the base superblock record, struct
// erofs_super_block in erofs_fs.h, without extension slots.
const SuperblockSize = superblockSize

// Superblock is the superblock record, struct erofs_super_block in the
// kernel's fs/erofs/erofs_fs.h, with its fields decoded. Encode and
// DecodeSuperblock convert it from and to its 128 on-disk bytes; neither
// validates it. With FeatureIncompat48Bit, a root NID past 16 bits or a
// block count past 32 bits is carried in the 48-bit layout's fields
// (root_nid_8b, and blocks_hi in place of the 16-bit root_nid), as
// mkfs.erofs writes them; DecodeSuperblock reads those fields when the
// feature is set and root_nid_8b is not zero, as the kernel does.
type Superblock struct {
	Magic            uint32 // magic: Magic
	Checksum         uint32 // CRC-32C of the superblock block (if FeatureCompatSbChksum)
	FeatureCompat    uint32 // compatible feature bits (FeatureCompat*)
	FeatureIncompat  uint32 // incompatible feature bits (FeatureIncompat*)
	BlkSzBits        uint8  // blkszbits: log2 of the block size
	BlockSize        uint32 // block size in bytes, 1<<BlkSzBits (0 when that overflows); Encode ignores it
	ExtSlots         uint8  // number of 16-byte superblock extension slots
	RootNid          uint64 // NID of the root directory (16 bits on disk; 64 with the 48-bit layout)
	Inodes           uint64 // total number of inodes
	Epoch            int64  // base time in seconds for compact inodes
	FixedNsec        uint32 // nanoseconds of every compact inode's mtime
	Blocks           uint64 // size of the primary device in blocks (32 bits on disk; 48 with the 48-bit layout)
	MetaBlkAddr      uint32 // first block of the inode (NID) space
	XattrBlkAddr     uint32 // first block of the shared xattr area
	UUID             [16]byte
	VolumeName       string // label, up to 16 bytes, NULs trimmed
	U1               uint16 // available_compr_algs (with COMPR_CFGS) or lz4_max_distance
	ExtraDevices     uint16 // number of extra devices (with DEVICE_TABLE, else 0)
	DevtSlotOff      uint16 // device table offset in 128-byte units
	DirBlkBits       uint8  // directory block size shift (always 0)
	XattrPrefixCount uint8  // number of long xattr name prefixes
	XattrPrefixStart uint32 // long xattr prefix table offset in 4-byte units
	PackedNid        uint64 // NID of the packed inode, 0 if none

	// Devices is the device table, one entry per extra device. The
	// slots are records of their own (SuperblockDevice), which Encode
	// and DecodeSuperblock leave alone.
	Devices []SuperblockDevice
}

// Encode writes the superblock record to b[:SuperblockSize], reserved
// bytes zero. A shorter b is an error wrapping io.ErrShortBuffer, and
// nothing is written.
func (sb *Superblock) Encode(b []byte) error {
	if err := shortBuffer("superblock", b, superblockSize); err != nil {
		return err
	}
	b = b[:superblockSize]
	clear(b)
	le.PutUint32(b[sbMagic:], sb.Magic)
	le.PutUint32(b[sbChecksum:], sb.Checksum)
	le.PutUint32(b[sbFeatureCompat:], sb.FeatureCompat)
	b[sbBlkszBits] = sb.BlkSzBits
	b[sbExtSlots] = sb.ExtSlots
	le.PutUint16(b[sbRootNid:], uint16(sb.RootNid))
	le.PutUint64(b[sbInos:], sb.Inodes)
	le.PutUint64(b[sbEpoch:], uint64(sb.Epoch))
	le.PutUint32(b[sbFixedNsec:], sb.FixedNsec)
	le.PutUint32(b[sbBlocks:], uint32(sb.Blocks))
	le.PutUint32(b[sbMetaBlkAddr:], sb.MetaBlkAddr)
	le.PutUint32(b[sbXattrBlkAddr:], sb.XattrBlkAddr)
	copy(b[sbUUID:sbUUID+16], sb.UUID[:])
	copy(b[sbVolumeName:sbVolumeName+16], sb.VolumeName)
	le.PutUint32(b[sbFeatureIncompat:], sb.FeatureIncompat)
	le.PutUint16(b[sbU1:], sb.U1)
	le.PutUint16(b[sbExtraDevices:], sb.ExtraDevices)
	le.PutUint16(b[sbDevtSlotOff:], sb.DevtSlotOff)
	b[sbDirBlkBits] = sb.DirBlkBits
	b[sbXattrPrefixCount] = sb.XattrPrefixCount
	le.PutUint32(b[sbXattrPrefixStart:], sb.XattrPrefixStart)
	le.PutUint64(b[sbPackedNid:], sb.PackedNid)
	if sb.FeatureIncompat&FeatureIncompat48Bit != 0 && (sb.RootNid > math.MaxUint16 || sb.Blocks > math.MaxUint32) {
		le.PutUint16(b[sbBlocksHi:], uint16(sb.Blocks>>32))
		le.PutUint64(b[sbRootNid8b:], sb.RootNid)
	}
	return nil
}

// shortBuffer returns an error wrapping io.ErrShortBuffer, naming the
// record and the sizes, when b is shorter than the size bytes of record;
// nil otherwise.
func shortBuffer(record string, b []byte, size int) error {
	if len(b) < size {
		return fmt.Errorf("erofs: %s: %d-byte buffer, want %d: %w", record, len(b), size, io.ErrShortBuffer)
	}
	return nil
}

// DecodeSuperblock decodes the superblock record b[:SuperblockSize] (the
// bytes at SuperblockOffset). It checks nothing, not even the magic.
// A short b reads as if padded with zeros; it does not panic.
func DecodeSuperblock(b []byte) Superblock {
	b = record(b, superblockSize)
	sb := Superblock{
		Magic:            le.Uint32(b[sbMagic:]),
		Checksum:         le.Uint32(b[sbChecksum:]),
		FeatureCompat:    le.Uint32(b[sbFeatureCompat:]),
		BlkSzBits:        b[sbBlkszBits],
		ExtSlots:         b[sbExtSlots],
		RootNid:          uint64(le.Uint16(b[sbRootNid:])),
		Inodes:           le.Uint64(b[sbInos:]),
		Epoch:            int64(le.Uint64(b[sbEpoch:])),
		FixedNsec:        le.Uint32(b[sbFixedNsec:]),
		Blocks:           uint64(le.Uint32(b[sbBlocks:])),
		MetaBlkAddr:      le.Uint32(b[sbMetaBlkAddr:]),
		XattrBlkAddr:     le.Uint32(b[sbXattrBlkAddr:]),
		VolumeName:       CString(b[sbVolumeName : sbVolumeName+16]),
		FeatureIncompat:  le.Uint32(b[sbFeatureIncompat:]),
		U1:               le.Uint16(b[sbU1:]),
		ExtraDevices:     le.Uint16(b[sbExtraDevices:]),
		DevtSlotOff:      le.Uint16(b[sbDevtSlotOff:]),
		DirBlkBits:       b[sbDirBlkBits],
		XattrPrefixCount: b[sbXattrPrefixCount],
		XattrPrefixStart: le.Uint32(b[sbXattrPrefixStart:]),
		PackedNid:        le.Uint64(b[sbPackedNid:]),
	}
	if sb.FeatureIncompat&FeatureIncompat48Bit != 0 {
		if nid := le.Uint64(b[sbRootNid8b:]); nid != 0 {
			sb.RootNid = nid
			sb.Blocks |= uint64(le.Uint16(b[sbBlocksHi:])) << 32
		}
	}
	copy(sb.UUID[:], b[sbUUID:sbUUID+16])
	if sb.BlkSzBits < 32 {
		sb.BlockSize = 1 << sb.BlkSzBits
	}
	return sb
}

// CString returns b up to its first NUL byte: the value of a fixed-size,
// NUL-padded string field such as the superblock's volume_name or a device
// slot's tag (erofs_fs.h).
func CString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// superblockFields names the superblock fields as erofs_fs.h does, for
// SuperblockFieldOffset.
var superblockFields = [...]struct {
	name string
	off  int
}{
	{"magic", sbMagic}, {"checksum", sbChecksum}, {"feature_compat", sbFeatureCompat},
	{"blkszbits", sbBlkszBits}, {"sb_extslots", sbExtSlots}, {"root_nid", sbRootNid},
	{"inos", sbInos}, {"epoch", sbEpoch}, {"fixed_nsec", sbFixedNsec}, {"blocks", sbBlocks},
	{"meta_blkaddr", sbMetaBlkAddr}, {"xattr_blkaddr", sbXattrBlkAddr}, {"uuid", sbUUID},
	{"volume_name", sbVolumeName}, {"feature_incompat", sbFeatureIncompat}, {"u1", sbU1},
	{"extra_devices", sbExtraDevices}, {"devt_slotoff", sbDevtSlotOff}, {"dirblkbits", sbDirBlkBits},
	{"xattr_prefix_count", sbXattrPrefixCount}, {"xattr_prefix_start", sbXattrPrefixStart},
	{"packed_nid", sbPackedNid},
}

// SuperblockFieldOffset returns the byte offset in the image of the
// superblock field named as in erofs_fs.h ("magic", "feature_incompat",
// "devt_slotoff", ...), so that errors can say where a field is; -1 for
// an unknown name.
func SuperblockFieldOffset(name string) int {
	for _, f := range superblockFields {
		if f.name == name {
			return SuperblockOffset + f.off
		}
	}
	return -1
}

// Inode data layouts (bits 1-3 of i_format).
const (
	LayoutFlatPlain                = 0
	LayoutCompressedFull           = 1
	LayoutFlatInline               = 2
	LayoutCompressedCompact        = 3
	LayoutChunkBased               = 4
	inodeLayoutBits                = 3
	inodeVersionExtended           = 1
	inodeFormatReservedMask        = 0xFFE0
	inodeFormatBit4                = 0x10
	compactInodeSize               = 32
	extendedInodeSize              = 64
	inodeSlotSize                  = 32
	inodeSlotBits                  = 5
	nullAddr                uint32 = 0xFFFFFFFF
)

// Compact inode field offsets.
const (
	icFormat      = 0x00
	icXattrIcount = 0x02
	icMode        = 0x04
	icNb          = 0x06
	icSize        = 0x08
	icMtime       = 0x0C
	icU           = 0x10
	icIno         = 0x14
	icUID         = 0x18
	icGID         = 0x1A
	icReserved    = 0x1C
)

// Extended inode field offsets.
const (
	ieFormat      = 0x00
	ieXattrIcount = 0x02
	ieMode        = 0x04
	ieNb          = 0x06
	ieSize        = 0x08
	ieU           = 0x10
	ieIno         = 0x14
	ieUID         = 0x18
	ieGID         = 0x1C
	ieMtime       = 0x20
	ieMtimeNsec   = 0x28
	ieNlink       = 0x2C
	ieReserved    = 0x30
)

// Inode record sizes (erofs_fs.h: struct erofs_inode_compact, struct
// erofs_inode_extended) and the NID unit, the 32-byte inode slot of
// Documentation/filesystems/erofs.rst ("On-disk details").
const (
	CompactInodeSize  = compactInodeSize
	ExtendedInodeSize = extendedInodeSize
	InodeSlotSize     = inodeSlotSize
)

// InodeExtended is the version bit of i_format that marks an extended
// inode.
const InodeExtended = inodeVersionExtended

// Inode is an inode core record: struct erofs_inode_compact (32 bytes) or
// struct erofs_inode_extended (64 bytes) of erofs_fs.h, as bit 0 of Format
// says. Encode and DecodeInode convert it from and to its on-disk bytes;
// neither validates it. A compact inode stores its link count in i_nb, 16
// bits of Size, UID and GID, and no Mtime of its own: Mtime is then the
// 32-bit offset from the superblock's Epoch. The inline xattrs, chunk
// indexes, compression map or inline data that follow the core are
// records of their own.
type Inode struct {
	Format     uint16 // i_format: InodeExtended | layout << 1
	XattrCount uint16 // i_xattr_icount (see XattrIbodySize)
	Mode       uint16 // i_mode: file type and permission bits
	Nb         uint16 // i_nb of an extended inode (0 but in 48-bit images); compact inodes keep Nlink there
	Size       uint64 // i_size
	U          uint32 // i_u: start block, rdev, chunk format or compressed block count
	Ino        uint32 // i_ino
	UID, GID   uint32 // i_uid, i_gid
	Mtime      uint64 // i_mtime: seconds since the Unix epoch, or for a compact inode since Epoch
	MtimeNsec  uint32 // i_mtime_nsec (extended only)
	Nlink      uint32 // i_nlink, or a compact inode's i_nb.nlink
}

// Extended reports whether the record is an extended inode.
func (i *Inode) Extended() bool { return i.Format&inodeVersionExtended != 0 }

// Layout returns the data layout (LayoutFlatPlain, ...): bits 1-3 of
// i_format.
func (i *Inode) Layout() uint8 { return uint8(i.Format>>1) & (1<<inodeLayoutBits - 1) }

// RecordSize returns the size of the record: CompactInodeSize or
// ExtendedInodeSize.
func (i *Inode) RecordSize() int {
	if i.Extended() {
		return extendedInodeSize
	}
	return compactInodeSize
}

// Encode writes the inode record to b[:i.RecordSize()], reserved bytes
// zero. A shorter b is an error wrapping io.ErrShortBuffer, and nothing
// is written.
func (i *Inode) Encode(b []byte) error {
	if err := shortBuffer("inode", b, i.RecordSize()); err != nil {
		return err
	}
	i.encode(b)
	return nil
}

// encode is Encode for a b of at least i.RecordSize() bytes.
func (i *Inode) encode(b []byte) {
	if i.Extended() {
		b = b[:extendedInodeSize]
		clear(b[ieReserved:])
		le.PutUint16(b[ieFormat:], i.Format)
		le.PutUint16(b[ieXattrIcount:], i.XattrCount)
		le.PutUint16(b[ieMode:], i.Mode)
		le.PutUint16(b[ieNb:], i.Nb)
		le.PutUint64(b[ieSize:], i.Size)
		le.PutUint32(b[ieU:], i.U)
		le.PutUint32(b[ieIno:], i.Ino)
		le.PutUint32(b[ieUID:], i.UID)
		le.PutUint32(b[ieGID:], i.GID)
		le.PutUint64(b[ieMtime:], i.Mtime)
		le.PutUint32(b[ieMtimeNsec:], i.MtimeNsec)
		le.PutUint32(b[ieNlink:], i.Nlink)
		return
	}
	b = b[:compactInodeSize]
	le.PutUint16(b[icFormat:], i.Format)
	le.PutUint16(b[icXattrIcount:], i.XattrCount)
	le.PutUint16(b[icMode:], i.Mode)
	le.PutUint16(b[icNb:], uint16(i.Nlink))
	le.PutUint32(b[icSize:], uint32(i.Size))
	le.PutUint32(b[icMtime:], uint32(i.Mtime))
	le.PutUint32(b[icU:], i.U)
	le.PutUint32(b[icIno:], i.Ino)
	le.PutUint16(b[icUID:], uint16(i.UID))
	le.PutUint16(b[icGID:], uint16(i.GID))
	le.PutUint32(b[icReserved:], 0)
}

// Append appends the inode record to b.
func (i *Inode) Append(b []byte) []byte {
	n := i.RecordSize()
	b = slices.Grow(b, n)[:len(b)+n]
	i.encode(b[len(b)-n:])
	return b
}

// InodeRecordSize returns the size of the inode record whose first bytes
// (at least 2) are b: the i_format version bit decides.
// A short b reads as if padded with zeros; it does not panic.
func InodeRecordSize(b []byte) int {
	if le.Uint16(record(b, icFormat+2)[icFormat:])&inodeVersionExtended != 0 {
		return extendedInodeSize
	}
	return compactInodeSize
}

// DecodeInode decodes the inode record at the start of b, which must hold
// InodeRecordSize(b) bytes.
// A short b reads as if padded with zeros; it does not panic.
func DecodeInode(b []byte) Inode {
	full := b
	b = record(b, compactInodeSize)
	i := Inode{
		Format:     le.Uint16(b[icFormat:]),
		XattrCount: le.Uint16(b[icXattrIcount:]),
		Mode:       le.Uint16(b[icMode:]),
	}
	if !i.Extended() {
		i.Nlink = uint32(le.Uint16(b[icNb:]))
		i.Size = uint64(le.Uint32(b[icSize:]))
		i.Mtime = uint64(le.Uint32(b[icMtime:]))
		i.U = le.Uint32(b[icU:])
		i.Ino = le.Uint32(b[icIno:])
		i.UID = uint32(le.Uint16(b[icUID:]))
		i.GID = uint32(le.Uint16(b[icGID:]))
		return i
	}
	b = record(full, extendedInodeSize)
	i.Nb = le.Uint16(b[ieNb:])
	i.Size = le.Uint64(b[ieSize:])
	i.U = le.Uint32(b[ieU:])
	i.Ino = le.Uint32(b[ieIno:])
	i.UID = le.Uint32(b[ieUID:])
	i.GID = le.Uint32(b[ieGID:])
	i.Mtime = le.Uint64(b[ieMtime:])
	i.MtimeNsec = le.Uint32(b[ieMtimeNsec:])
	i.Nlink = le.Uint32(b[ieNlink:])
	return i
}

// Directory entry layout.
const (
	direntSize   = 12
	maxNameLen   = 255
	direntNid    = 0
	direntOff    = 8
	direntType   = 10
	fileTypeUnkn = 0
)

// Directory entry file types.
const (
	FileTypeRegular  = 1
	FileTypeDir      = 2
	FileTypeCharDev  = 3
	FileTypeBlockDev = 4
	FileTypeFIFO     = 5
	FileTypeSocket   = 6
	FileTypeSymlink  = 7
	fileTypeMax      = 8
)

// DirentSize is the size of a directory entry record, struct
// erofs_dirent in erofs_fs.h.
const DirentSize = direntSize

// Dirent is a directory entry record, struct erofs_dirent: the entry's
// inode, where its name starts in the directory block, and its file type.
// A directory block holds its dirents, then their names in the same order,
// each name running to the next one's nameoff (the last one to the first
// NUL or the end of the block); see EncodeDirBlock.
type Dirent struct {
	Nid      uint64 // nid
	NameOff  uint16 // nameoff: offset of the name in the block
	FileType uint8  // file_type (FileType*, see FileTypeOfMode)
}

// Encode writes the dirent record to b[:DirentSize]. A shorter b is an
// error wrapping io.ErrShortBuffer, and nothing is written.
func (d Dirent) Encode(b []byte) error {
	if err := shortBuffer("dirent", b, direntSize); err != nil {
		return err
	}
	d.encode(b)
	return nil
}

// encode is Encode for a b of at least DirentSize bytes.
func (d Dirent) encode(b []byte) {
	b = b[:direntSize]
	le.PutUint64(b[direntNid:], d.Nid)
	le.PutUint16(b[direntOff:], d.NameOff)
	b[direntType] = d.FileType
	b[direntType+1] = 0
}

// DecodeDirent decodes the dirent record b[:DirentSize].
// A short b reads as if padded with zeros; it does not panic.
func DecodeDirent(b []byte) Dirent {
	b = record(b, direntSize)
	return Dirent{Nid: le.Uint64(b[direntNid:]), NameOff: le.Uint16(b[direntOff:]), FileType: b[direntType]}
}

// EncodeDirBlock fills the directory block b with n entries, which entry
// returns in order: their dirents, then their names, then zeros to the
// end of b. Entries that do not fit b (n dirents and their names) are an
// error wrapping io.ErrShortBuffer, and nothing is written; so is a
// negative n, and a name starting past the 16-bit nameoff's reach (a b
// over 64 KiB). entry is called twice for each k, first to measure.
func EncodeDirBlock[S ~string | ~[]byte](b []byte, n int, entry func(k int) (nid uint64, fileType uint8, name S)) error {
	if n < 0 {
		return fmt.Errorf("erofs: directory block: %d entries: %w", n, io.ErrShortBuffer)
	}
	size := 0
	for k := range n {
		_, _, name := entry(k)
		size += direntSize + len(name)
		if size > len(b) {
			// Stop early: n may be huge.
			return fmt.Errorf("erofs: directory block: %d entries need more than %d bytes (at entry %d): %w", n, len(b), k, io.ErrShortBuffer)
		}
		// size-len(name) is where the names before this one end, after
		// the k+1 dirents so far: this name starts there plus the
		// remaining dirents.
		if start := size - len(name) + direntSize*(n-k-1); start > math.MaxUint16 {
			return fmt.Errorf("erofs: directory block: entry %d's name at byte %d, past a dirent's 16-bit nameoff", k, start)
		}
	}
	nameOff := direntSize * n
	for k := range n {
		nid, typ, name := entry(k)
		Dirent{Nid: nid, NameOff: uint16(nameOff), FileType: typ}.encode(b[k*direntSize:])
		nameOff += copy(b[nameOff:], name)
	}
	clear(b[nameOff:])
	return nil
}

// DirentOffset returns where in a directory's data the entry for a name
// of nameLen bytes goes when the entries before it end at off: at off, or
// at the next block when its dirent and name would cross the end of the
// block: an entry (its dirent and its name) never spans two blocks.
func DirentOffset(off int64, nameLen int, blockSize int64) int64 {
	if off%blockSize+direntSize+int64(nameLen) > blockSize {
		return roundUp64(off, blockSize)
	}
	return off
}

// DirBlockEntries returns the number of entries of the directory block
// blk, from the first dirent's nameoff. It fails when blk cannot hold a
// dirent or that nameoff is not a whole number of dirents inside blk.
func DirBlockEntries(blk []byte) (int, error) {
	if len(blk) < direntSize {
		return 0, fmt.Errorf("%d bytes, less than one entry", len(blk))
	}
	first := int(le.Uint16(blk[direntOff:]))
	if first < direntSize || first >= len(blk) || first%direntSize != 0 {
		return 0, fmt.Errorf("bad first nameoff %d", first)
	}
	return first / direntSize, nil
}

// DirentName returns the bounds of the name of entry k in the directory
// block blk of n entries: from its nameoff to the next entry's, or for the
// last entry to the first NUL or the end of the block. The bounds are not
// checked.
func DirentName(blk []byte, n, k int) (start, end int) {
	nameOff := func(k int) int {
		if k < 0 || k >= len(blk)/direntSize {
			return len(blk) // no such dirent: an empty name at the end
		}
		return int(le.Uint16(blk[k*direntSize+direntOff:]))
	}
	start = nameOff(k)
	if k+1 < n {
		return start, nameOff(k + 1)
	}
	if start >= len(blk) {
		return start, start
	}
	if z := bytes.IndexByte(blk[start:], 0); z >= 0 {
		return start, start + z
	}
	return start, len(blk)
}

// File type bits of a Unix mode (i_mode), as in <sys/stat.h>. An Entry's
// Mode is one of these ORed with the permission bits (07777).
const (
	ModeTypeMask    = 0o170000
	ModeSocket      = 0o140000
	ModeSymlink     = 0o120000
	ModeRegular     = 0o100000
	ModeBlockDevice = 0o060000
	ModeDir         = 0o040000
	ModeCharDevice  = 0o020000
	ModeFIFO        = 0o010000
	ModePermMask    = 0o007777
)

// Xattr layout.
const (
	xattrIbodyHeaderSize = 12
	xattrEntryHeaderSize = 4
	xattrMaxShared       = 255
	xattrMaxValueSize    = 65535
	xattrLongPrefixFlag  = 0x80
	xattrFilterSeed      = 0x25BBE08F
	maxLongPrefixes      = 128
)

// XattrIbodyHeaderSize is the size of the inline xattr header, struct
// erofs_xattr_ibody_header in erofs_fs.h.
const XattrIbodyHeaderSize = xattrIbodyHeaderSize

// XattrIbodyHeader is the header of an inode's inline xattrs, struct
// erofs_xattr_ibody_header: the name filter, the number of shared xattr
// ids that follow it (le32 each, see AppendSharedXattrID) and reserved
// bytes. The inline entries (see AppendXattrEntry) follow the ids.
type XattrIbodyHeader struct {
	NameFilter  uint32 // h_name_filter: bit n clear when some name hashes to n (FeatureCompatXattrFilter)
	SharedCount uint8  // h_shared_count
}

// Encode writes the header record to b[:XattrIbodyHeaderSize]. A
// shorter b is an error wrapping io.ErrShortBuffer, and nothing is
// written.
func (h XattrIbodyHeader) Encode(b []byte) error {
	if err := shortBuffer("xattr ibody header", b, xattrIbodyHeaderSize); err != nil {
		return err
	}
	h.encode(b)
	return nil
}

// encode is Encode for a b of at least XattrIbodyHeaderSize bytes.
func (h XattrIbodyHeader) encode(b []byte) {
	b = b[:xattrIbodyHeaderSize]
	clear(b)
	le.PutUint32(b, h.NameFilter)
	b[4] = h.SharedCount
}

// Append appends the header record to b.
func (h XattrIbodyHeader) Append(b []byte) []byte {
	b = append(b, make([]byte, xattrIbodyHeaderSize)...)
	h.encode(b[len(b)-xattrIbodyHeaderSize:])
	return b
}

// DecodeXattrIbodyHeader decodes the header record b[:XattrIbodyHeaderSize].
// A short b reads as if padded with zeros; it does not panic.
func DecodeXattrIbodyHeader(b []byte) XattrIbodyHeader {
	b = record(b, xattrIbodyHeaderSize)
	return XattrIbodyHeader{NameFilter: le.Uint32(b), SharedCount: b[4]}
}

// AppendSharedXattrID appends a shared xattr id (h_shared_xattrs[]: the
// entry's offset in the shared area in 4-byte units) to b.
func AppendSharedXattrID(b []byte, id uint32) []byte { return le.AppendUint32(b, id) }

// SharedXattrID returns shared xattr id k of an inline xattr body, 0 when
// body is too short to hold it.
func SharedXattrID(body []byte, k int) uint32 {
	off := xattrIbodyHeaderSize + 4*k
	if k < 0 || off+4 > len(body) {
		return 0
	}
	return le.Uint32(body[off:])
}

// XattrIbodySize converts i_xattr_icount to the size of the inline xattr
// body (the header, shared ids and entries).
func XattrIbodySize(icount uint16) int {
	if icount == 0 {
		return 0
	}
	return xattrIbodyHeaderSize + 4*(int(icount)-1)
}

// XattrIcount converts the size of an inline xattr body to
// i_xattr_icount, the inverse of XattrIbodySize.
func XattrIcount(ibodySize int) uint16 {
	if ibodySize == 0 {
		return 0
	}
	return uint16((ibodySize-xattrIbodyHeaderSize)/4 + 1)
}

// XattrEntrySize is the size of an xattr entry record (struct
// erofs_xattr_entry, then the name and the value, padded to 4 bytes).
func XattrEntrySize(nameLen, valueLen int) int {
	return roundUp(xattrEntryHeaderSize+nameLen+valueLen, 4)
}

// AppendXattrEntry appends an xattr entry record to b: e_name_len,
// e_name_index, e_value_size, the name as stored after its prefix, the
// value, zero padding to 4 bytes.
func AppendXattrEntry[V ~string | ~[]byte](b []byte, nameIndex uint8, name string, value V) []byte {
	start := len(b)
	b = append(b, uint8(len(name)), nameIndex)
	b = le.AppendUint16(b, uint16(len(value)))
	b = append(b, name...)
	b = append(b, value...)
	for (len(b)-start)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// XattrEntry is a decoded xattr entry record. Name and Value point into
// the decoded bytes.
type XattrEntry struct {
	NameIndex uint8  // e_name_index: a short prefix (XattrIndex*) or XattrLongPrefix | a long prefix's index
	Name      []byte // the name after its prefix
	Value     []byte
}

// XattrLongPrefix is the bit of e_name_index that marks an index into the
// long name prefix table (EROFS_XATTR_LONG_PREFIX).
const XattrLongPrefix = xattrLongPrefixFlag

// DecodeXattrEntryHeader decodes the 4-byte header of an xattr entry
// record (struct erofs_xattr_entry): the lengths of the name and the
// value, and the name index.
// A short b reads as if padded with zeros; it does not panic.
func DecodeXattrEntryHeader(b []byte) (nameLen int, nameIndex uint8, valueLen int) {
	b = record(b, xattrEntryHeaderSize)
	return int(b[0]), b[1], int(le.Uint16(b[2:]))
}

// DecodeXattrEntry decodes the xattr entry record at the start of b and
// returns it with its size, padding included. It fails when b cannot hold
// the record.
func DecodeXattrEntry(b []byte) (XattrEntry, int, error) {
	if len(b) < xattrEntryHeaderSize {
		return XattrEntry{}, 0, fmt.Errorf("truncated entry (%d bytes)", len(b))
	}
	nl, index, vl := DecodeXattrEntryHeader(b)
	size := XattrEntrySize(nl, vl)
	if size > len(b) {
		return XattrEntry{}, 0, fmt.Errorf("entry of %d bytes overruns the %d bytes left", size, len(b))
	}
	e := b[xattrEntryHeaderSize:]
	return XattrEntry{NameIndex: index, Name: e[:nl], Value: e[nl : nl+vl]}, size, nil
}

// sizedRecordSize returns the payload size of a record framed the way
// long xattr name prefixes and compression configuration records are: a
// le16 payload size (hdr), the payload, zero padding to 4 bytes.
func sizedRecordSize(hdr []byte) int { return int(le.Uint16(hdr[:2])) }

// appendXattrLongPrefix appends a long name prefix record to b (le16
// size, then struct erofs_xattr_long_prefix: base_index and the infix),
// padded to 4 bytes from its start.
func appendXattrLongPrefix(b []byte, base uint8, infix string) []byte {
	start := len(b)
	b = le.AppendUint16(b, uint16(1+len(infix)))
	b = append(b, base)
	b = append(b, infix...)
	for (len(b)-start)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// decodeXattrLongPrefix splits a long name prefix record's payload (what
// follows its le16 size) into base_index and the infix.
func decodeXattrLongPrefix(p []byte) (base uint8, infix []byte) { return p[0], p[1:] }

// Short xattr name indexes.
const (
	XattrIndexUser            = 1
	XattrIndexPosixACLAccess  = 2
	XattrIndexPosixACLDefault = 3
	XattrIndexTrusted         = 4
	XattrIndexLustre          = 5
	XattrIndexSecurity        = 6
)

// xattrPrefixes maps short name indexes to the prefixes they stand for, in
// the order mkfs.erofs matches them. The ACL names are whole names.
var xattrPrefixes = [...]struct {
	index  uint8
	prefix string
}{
	{XattrIndexUser, "user."},
	{XattrIndexPosixACLAccess, "system.posix_acl_access"},
	{XattrIndexPosixACLDefault, "system.posix_acl_default"},
	{XattrIndexTrusted, "trusted."},
	{XattrIndexSecurity, "security."},
}

// XattrPrefix returns the name prefix a short xattr name index stands for
// ("" if unknown).
func XattrPrefix(index uint8) string {
	for _, p := range xattrPrefixes {
		if p.index == index {
			return p.prefix
		}
	}
	if index == XattrIndexLustre {
		return "lustre."
	}
	return ""
}

// Chunk-based inode format (low 16 bits of i_u).
const (
	chunkFormatBlkbitsMask = 0x1F
	chunkFormatIndexes     = 0x20
	chunkFormat48Bit       = 0x40
	chunkFormatReserved    = 0xFF80
	chunkIndexSize         = 8
	chunkBlockMapSize      = 4
)

// Chunk-based inode format bits (the low 16 bits of i_u of a
// LayoutChunkBased inode, EROFS_CHUNK_FORMAT_* in erofs_fs.h): the chunk
// size is the block size shifted left by the ChunkFormatBlkBits bits, and
// ChunkFormatIndexes selects 8-byte chunk indexes over 4-byte block maps.
// ChunkFormat48Bit (chunk indexes only, in images with
// FeatureIncompat48Bit) makes each index's block address 48 bits wide:
// startblk_hi (ChunkIndex.Advise) holds its high 16 bits.
const (
	ChunkFormatBlkBits = chunkFormatBlkbitsMask
	ChunkFormatIndexes = chunkFormatIndexes
	ChunkFormat48Bit   = chunkFormat48Bit
)

// ChunkIndexSize is the size of a chunk index record.
const ChunkIndexSize = chunkIndexSize

// NullAddr is the block address of a hole in a block map or chunk index
// (EROFS_NULL_ADDR).
const NullAddr = nullAddr

// ChunkIndex is a chunk index record, struct erofs_inode_chunk_index in
// erofs_fs.h. A chunk-based inode with ChunkFormatIndexes has one per
// chunk, after its inline xattrs, 8-byte aligned.
type ChunkIndex struct {
	Advise   uint16 // advise, or startblk_hi with ChunkFormat48Bit (see StartBlock). The kernel ignores it otherwise; Nydus keeps data of its own there
	DeviceID uint16 // device_id: 0 the primary device, n the device table's slot n-1 (the kernel masks it)
	BlkAddr  uint32 // startblk_lo: the chunk's first block, NullAddr for a hole
}

// NewChunkIndex returns the chunk index of a chunk at block blk (less
// than 2^48) of device dev, with the block's high 16 bits in startblk_hi
// (Advise): an index of an inode with ChunkFormat48Bit when blk needs
// more than 32 bits. A hole is one whose BlkAddr is NullAddr (mkfs.erofs
// sets all 48 bits of a 48-bit one).
func NewChunkIndex(dev uint16, blk uint64) ChunkIndex {
	return ChunkIndex{Advise: uint16(blk >> 32), DeviceID: dev, BlkAddr: uint32(blk)}
}

// StartBlock returns the chunk's first block: BlkAddr, with the high 16
// bits from startblk_hi (Advise) when wide, as for an inode whose chunk
// format has ChunkFormat48Bit. A hole is marked by BlkAddr alone.
func (c ChunkIndex) StartBlock(wide bool) uint64 {
	if !wide {
		return uint64(c.BlkAddr)
	}
	return uint64(c.Advise)<<32 | uint64(c.BlkAddr)
}

// Encode writes the chunk index record to b[:ChunkIndexSize]. A shorter
// b is an error wrapping io.ErrShortBuffer, and nothing is written.
func (c ChunkIndex) Encode(b []byte) error {
	if err := shortBuffer("chunk index", b, chunkIndexSize); err != nil {
		return err
	}
	b = b[:chunkIndexSize]
	le.PutUint16(b[0:], c.Advise)
	le.PutUint16(b[2:], c.DeviceID)
	le.PutUint32(b[4:], c.BlkAddr)
	return nil
}

// DecodeChunkIndex decodes the chunk index record b[:ChunkIndexSize].
// A short b reads as if padded with zeros; it does not panic.
func DecodeChunkIndex(b []byte) ChunkIndex {
	b = record(b, chunkIndexSize)
	return ChunkIndex{Advise: le.Uint16(b[0:]), DeviceID: le.Uint16(b[2:]), BlkAddr: le.Uint32(b[4:])}
}

// decodeChunkBlockMap decodes a block map entry of a chunk-based inode
// without ChunkFormatIndexes: the chunk's first block (le32), NullAddr for
// a hole.
func decodeChunkBlockMap(b []byte) uint32 { return le.Uint32(b[:chunkBlockMapSize]) }

// Device slot layout.
const (
	deviceSlotSize     = 128
	deviceSlotTagSize  = 64
	deviceSlotBlocks   = 64
	deviceSlotUniaddr  = 68
	deviceSlotBlocksHi = 72
	deviceSlotUniHi    = 74
)

// SuperblockDevice is one slot of the device table.
type SuperblockDevice struct {
	Tag     string // opaque identifier (Nydus: blob id), NULs trimmed
	Blocks  uint64 // size of the device in blocks
	UniAddr uint64 // first block of the device in the unified address space
}

// DeviceSlotSize is the size of a device table slot, struct
// erofs_deviceslot in erofs_fs.h.
const DeviceSlotSize = deviceSlotSize

// Encode writes the device slot record (struct erofs_deviceslot) to
// b[:DeviceSlotSize]: the tag, then Blocks and UniAddr (mapped_blkaddr),
// their low 32 bits and then, for the 48-bit layout, their high 16 bits
// (blocks_hi, uniaddr_hi: zero below 2^32). The reserved bytes are zero.
// A shorter b is an error wrapping io.ErrShortBuffer, and nothing is
// written.
func (d *SuperblockDevice) Encode(b []byte) error {
	if err := shortBuffer("device slot", b, deviceSlotSize); err != nil {
		return err
	}
	b = b[:deviceSlotSize]
	clear(b)
	copy(b[:deviceSlotTagSize], d.Tag)
	le.PutUint32(b[deviceSlotBlocks:], uint32(d.Blocks))
	le.PutUint32(b[deviceSlotUniaddr:], uint32(d.UniAddr))
	le.PutUint16(b[deviceSlotBlocksHi:], uint16(d.Blocks>>32))
	le.PutUint16(b[deviceSlotUniHi:], uint16(d.UniAddr>>32))
	return nil
}

// DeviceSlotFieldOffset returns the byte offset in a device slot of the
// field named as in erofs_fs.h's struct erofs_deviceslot ("tag",
// "blocks", "mapped_blkaddr"), so that errors can say where a field is;
// -1 for an unknown name.
func DeviceSlotFieldOffset(name string) int {
	switch name {
	case "tag":
		return 0
	case "blocks":
		return deviceSlotBlocks
	case "mapped_blkaddr":
		return deviceSlotUniaddr
	}
	return -1
}

// DecodeDeviceSlot decodes the device slot record b[:DeviceSlotSize],
// Blocks and UniAddr from their low 32 bits only, as in an image without
// the 48-bit layout (see DecodeDeviceSlot48). It ignores the reserved
// bytes.
// A short b reads as if padded with zeros; it does not panic.
func DecodeDeviceSlot(b []byte) SuperblockDevice {
	b = record(b, deviceSlotSize)
	return SuperblockDevice{
		Tag:     CString(b[:deviceSlotTagSize]),
		Blocks:  uint64(le.Uint32(b[deviceSlotBlocks:])),
		UniAddr: uint64(le.Uint32(b[deviceSlotUniaddr:])),
	}
}

// DecodeDeviceSlot48 decodes the device slot record b[:DeviceSlotSize] of
// an image with FeatureIncompat48Bit: Blocks and UniAddr take their high
// 16 bits from blocks_hi and uniaddr_hi.
// A short b reads as if padded with zeros; it does not panic.
func DecodeDeviceSlot48(b []byte) SuperblockDevice {
	b = record(b, deviceSlotSize)
	d := DecodeDeviceSlot(b)
	d.Blocks |= uint64(le.Uint16(b[deviceSlotBlocksHi:])) << 32
	d.UniAddr |= uint64(le.Uint16(b[deviceSlotUniHi:])) << 32
	return d
}

var le = binary.LittleEndian

// record returns b[:n] when b holds n bytes, and otherwise a copy of b
// padded with zeros to n bytes. The Decode functions of this package
// read their record through it, so that a short buffer,
// from a truncated or malformed image, decodes as if zero-padded instead
// of panicking (or, resliced within its capacity, reading stale bytes);
// callers that must tell a short record apart check its length first, as
// the readers do.
func record(b []byte, n int) []byte {
	if len(b) >= n {
		return b[:n]
	}
	r := make([]byte, n)
	copy(r, b)
	return r
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// superblockChecksum computes the superblock checksum over the block-0 bytes
// that follow offset 1024. b must start at byte 1024 of the image, hold the
// superblock with its checksum field zeroed, and be exactly checksumLen bytes.
func superblockChecksum(b []byte) uint32 {
	return ^crc32.Checksum(b, castagnoli)
}

// sealSuperblock stores the superblock checksum of b, which starts at byte
// 1024 of the image and is checksumLen bytes long.
func sealSuperblock(b []byte) {
	le.PutUint32(b[sbChecksum:], 0)
	le.PutUint32(b[sbChecksum:], superblockChecksum(b))
}

// computeSuperblockChecksum returns the checksum b should hold (b as for
// sealSuperblock); it zeroes b's checksum field.
func computeSuperblockChecksum(b []byte) uint32 {
	le.PutUint32(b[sbChecksum:], 0)
	return superblockChecksum(b)
}

// checksumLen is the number of bytes from offset 1024 that the superblock
// checksum covers for the given block size.
func checksumLen(blockSize int) int {
	if blockSize > SuperblockOffset {
		return blockSize - SuperblockOffset
	}
	return blockSize
}

// EncodeDev packs a device number the way Linux's new_encode_dev does,
// as inodes store it.
func EncodeDev(major, minor uint32) uint32 {
	return (minor & 0xFF) | (major&0xFFF)<<8 | (minor&^0xFF)<<12
}

// DecodeDev unpacks a device number packed by EncodeDev.
func DecodeDev(v uint32) (major, minor uint32) {
	return (v >> 8) & 0xFFF, (v & 0xFF) | ((v >> 12) & 0xFFF00)
}

// FileTypeOfMode returns the directory entry file type (FileType*) of an
// i_mode, 0 when its file type bits are not a file type.
func FileTypeOfMode(mode uint32) uint8 {
	switch mode & ModeTypeMask {
	case ModeRegular:
		return FileTypeRegular
	case ModeDir:
		return FileTypeDir
	case ModeCharDevice:
		return FileTypeCharDev
	case ModeBlockDevice:
		return FileTypeBlockDev
	case ModeFIFO:
		return FileTypeFIFO
	case ModeSocket:
		return FileTypeSocket
	case ModeSymlink:
		return FileTypeSymlink
	}
	return fileTypeUnkn
}

func roundUp(x, n int) int { return (x + n - 1) / n * n }

func roundUp64(x, n int64) int64 { return (x + n - 1) / n * n }

// Compression algorithm ids (h_algorithmtype, the superblock's algorithm
// bitmap and the configuration records).
const (
	AlgLZ4     = 0
	AlgLZMA    = 1
	AlgDeflate = 2
	AlgZstd    = 3
	algMax     = 3
)

// Compression configuration records (one per algorithm, after the
// superblock, each a le16 length then the payload, 4-byte aligned).
const (
	lz4CfgSize     = 14 // le16 max_distance, le16 max_pclusterblks, 10 reserved
	lzmaCfgSize    = 14 // le32 dict_size, le16 format, 8 reserved
	deflateCfgSize = 6  // u8 windowbits, 5 reserved
	zstdCfgSize    = 6  // u8 format, u8 windowlog (log2(window)-10), 4 reserved

	lz4MaxDistance   = 65535
	maxPclusterSize  = 1 << 20  // bytes
	maxExtentSize    = 12 << 20 // decompressed bytes per pcluster, checked by readers
	maxLZMADictSize  = 8 << 20
	maxZstdWindowLog = 20
)

// zAlgConfig is the payload of one compression configuration record
// (erofs_fs.h: struct z_erofs_lz4_cfgs, z_erofs_lzma_cfgs,
// z_erofs_deflate_cfgs, z_erofs_zstd_cfgs); only the fields of the
// record's algorithm mean anything.
type zAlgConfig struct {
	lz4MaxDistance     uint16 // lz4: max_distance
	lz4MaxPclusterBlks uint16 // lz4: max_pclusterblks
	lzmaDictSize       uint32 // lzma: dict_size
	format             uint16 // lzma, zstd: format (0)
	deflateWindowBits  uint8  // deflate: windowbits
	zstdWindowLog      uint8  // zstd: windowlog, log2(window) - 10
}

// zAlgConfigSize returns the payload size of algorithm alg's record.
func zAlgConfigSize(alg uint8) int {
	switch alg {
	case AlgLZ4:
		return lz4CfgSize
	case AlgLZMA:
		return lzmaCfgSize
	case AlgDeflate:
		return deflateCfgSize
	}
	return zstdCfgSize
}

// appendZAlgConfig appends algorithm alg's configuration record to b: its
// le16 payload size, the payload, zero padding to 4 bytes.
func appendZAlgConfig(b []byte, alg uint8, c zAlgConfig) []byte {
	start := len(b)
	n := zAlgConfigSize(alg)
	b = le.AppendUint16(b, uint16(n))
	b = appendZeros(b, n)
	p := b[start+2:]
	switch alg {
	case AlgLZ4:
		le.PutUint16(p[0:], c.lz4MaxDistance)
		le.PutUint16(p[2:], c.lz4MaxPclusterBlks)
	case AlgLZMA:
		le.PutUint32(p[0:], c.lzmaDictSize)
		le.PutUint16(p[4:], c.format)
	case AlgDeflate:
		p[0] = c.deflateWindowBits
	case AlgZstd:
		p[0], p[1] = uint8(c.format), c.zstdWindowLog
	}
	return appendZeros(b, roundUp(len(b)-start, 4)-(len(b)-start))
}

// decodeZAlgConfig decodes the payload p of algorithm alg's
// configuration record, which holds at least zAlgConfigSize(alg) bytes.
func decodeZAlgConfig(alg uint8, p []byte) zAlgConfig {
	var c zAlgConfig
	switch alg {
	case AlgLZ4:
		c.lz4MaxDistance, c.lz4MaxPclusterBlks = le.Uint16(p[0:]), le.Uint16(p[2:])
	case AlgLZMA:
		c.lzmaDictSize, c.format = le.Uint32(p[0:]), le.Uint16(p[4:])
	case AlgDeflate:
		c.deflateWindowBits = p[0]
	case AlgZstd:
		c.format, c.zstdWindowLog = uint16(p[0]), p[1]
	}
	return c
}

// Compressed inode map header (8 bytes at roundup(inode+xattrs, 8)).
const (
	mapHeaderSize         = 8
	mhFragmentOff         = 0 // le32, with the fragment feature
	mhIdataSize           = 2 // le16, ztailpacking: bytes of the inline pcluster
	mhAdvise              = 4 // le16
	mhAlgorithmType       = 6 // u8: bits 0-3 HEAD1, 4-7 HEAD2
	mhClusterBits         = 7 // u8: bits 0-3 lclusterbits - blkszbits
	mhClusterBitsFragment = 0x80
	fullIndexReserved     = 8 // zero bytes after the map header in COMPRESSED_FULL
)

// zMapHeader is the map header of a compressed inode, struct
// z_erofs_map_header in erofs_fs.h, at the inode's xattrs' end rounded up
// to 8 bytes.
type zMapHeader struct {
	fragmentOff   uint32 // h_fragmentoff, with adviseFragmentPcluster (shares bytes 0-3 with idataSize)
	idataSize     uint16 // h_idata_size, with adviseInlinePcluster
	advise        uint16 // h_advise (advise* bits)
	algorithmType uint8  // h_algorithmtype: bits 0-3 HEAD1, 4-7 HEAD2
	clusterBits   uint8  // h_clusterbits: bits 0-3 lclusterbits - blkszbits, bit 7 mhClusterBitsFragment
	wholeFragOff  uint64 // with mhClusterBitsFragment: bytes 0-7 but bit 63, the whole file's offset in the packed inode
}

// encode writes the map header record to b[:mapHeaderSize]. A header
// carries either a fragment offset or an inline size, as its advise says;
// that of a file stored whole in the packed inode only that offset.
func (h *zMapHeader) encode(b []byte) {
	b = b[:mapHeaderSize]
	if h.clusterBits&mhClusterBitsFragment != 0 {
		le.PutUint64(b, h.wholeFragOff|1<<63)
		return
	}
	le.PutUint32(b[mhFragmentOff:], h.fragmentOff)
	if h.advise&adviseFragmentPcluster == 0 {
		le.PutUint16(b[mhIdataSize:], h.idataSize)
	}
	le.PutUint16(b[mhAdvise:], h.advise)
	b[mhAlgorithmType] = h.algorithmType
	b[mhClusterBits] = h.clusterBits
}

// decodeZMapHeader decodes the map header record b[:mapHeaderSize].
func decodeZMapHeader(b []byte) zMapHeader {
	b = b[:mapHeaderSize]
	return zMapHeader{
		fragmentOff:   le.Uint32(b[mhFragmentOff:]),
		idataSize:     le.Uint16(b[mhIdataSize:]),
		advise:        le.Uint16(b[mhAdvise:]),
		algorithmType: b[mhAlgorithmType],
		clusterBits:   b[mhClusterBits],
		wholeFragOff:  le.Uint64(b) &^ (1 << 63),
	}
}

// zFullIndex is a full logical cluster index record, struct
// z_erofs_lcluster_index in erofs_fs.h: di_advise (the lcluster type in
// bits 0-1, fullIndexPartialRef), di_clusterofs, then di_u: a HEAD's or
// PLAIN's block address, or a NONHEAD's two deltas.
type zFullIndex struct {
	advise     uint16
	clusterofs uint16
	blkaddr    uint32
	delta      [2]uint16
}

// typ returns the lcluster type (lcluster*).
func (x *zFullIndex) typ() uint8 { return uint8(x.advise & 3) }

// encode writes the index record to b[:fullIndexSize].
func (x *zFullIndex) encode(b []byte) {
	b = b[:fullIndexSize]
	le.PutUint16(b[0:], x.advise)
	le.PutUint16(b[2:], x.clusterofs)
	if x.typ() == lclusterNonhead {
		le.PutUint16(b[4:], x.delta[0])
		le.PutUint16(b[6:], x.delta[1])
	} else {
		le.PutUint32(b[4:], x.blkaddr)
	}
}

// decodeZFullIndex decodes the index record b[:fullIndexSize], di_u both
// ways.
func decodeZFullIndex(b []byte) zFullIndex {
	b = b[:fullIndexSize]
	return zFullIndex{
		advise:     le.Uint16(b[0:]),
		clusterofs: le.Uint16(b[2:]),
		blkaddr:    le.Uint32(b[4:]),
		delta:      [2]uint16{le.Uint16(b[4:]), le.Uint16(b[6:])},
	}
}

// zCompactPack is a pack of compact lcluster indexes, the compacted form
// of struct z_erofs_lcluster_index (Documentation/filesystems/erofs.rst,
// "compacted_2b"/"compacted_4b"): vcnt entries of bits bits each, packed
// least significant bit first, each an lcluster type above lobits bits of
// value (clusterofs or a delta), then the le32 base block address the
// pack's HEADs count from.
type zCompactPack struct {
	b          []byte // the pack: vcnt*bits/8 bytes of entries, then the base address
	vcnt, bits int
	lobits     uint
}

// zCompactPackSize is the size of a pack of vcnt entries of bits bits.
func zCompactPackSize(vcnt, bits int) int { return vcnt*bits/8 + 4 }

// entry decodes entry i: its lcluster type and value.
func (p zCompactPack) entry(i int) (typ uint8, lo uint32) {
	at := i * p.bits
	v := le.Uint32(p.b[at/8:]) >> (at & 7)
	return uint8(v>>p.lobits) & 3, v & (1<<p.lobits - 1)
}

// setEntry encodes entry i, whose bits must be zero.
func (p zCompactPack) setEntry(i int, typ uint8, lo uint16) {
	v := uint32(typ)<<p.lobits | uint32(lo)
	for bit := 0; bit < p.bits; bit++ {
		if v>>bit&1 != 0 {
			at := i*p.bits + bit
			p.b[at/8] |= 1 << (at % 8)
		}
	}
}

// blkaddr returns the pack's base block address.
func (p zCompactPack) blkaddr() uint32 { return le.Uint32(p.b[len(p.b)-4:]) }

// setBlkaddr stores the pack's base block address.
func (p zCompactPack) setBlkaddr(v uint32) { le.PutUint32(p.b[len(p.b)-4:], v) }

// Map header h_advise bits.
const (
	adviseCompacted2B        = 0x0001
	adviseBigPcluster1       = 0x0002
	adviseBigPcluster2       = 0x0004
	adviseInlinePcluster     = 0x0008
	adviseInterlacedPcluster = 0x0010
	adviseFragmentPcluster   = 0x0020
)

// Logical cluster index types (full: bits 0-1 of di_advise; compact: the
// bits above lobits).
const (
	lclusterPlain   = 0
	lclusterHead1   = 1
	lclusterNonhead = 2
	lclusterHead2   = 3

	fullIndexSize       = 8 // le16 di_advise, le16 di_clusterofs, le32 blkaddr or le16 delta[2]
	fullIndexPartialRef = 0x8000
	deltaCblkcnt        = 0x0800 // first NONHEAD after a big-pcluster HEAD: CBLKCNT | blocks
	deltaMax            = 2047
)
