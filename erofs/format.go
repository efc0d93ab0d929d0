package erofs

// This file holds the EROFS on-disk format: constants, field offsets and the
// encoders and decoders of the fixed-size structures. All integers are
// little-endian. Names follow the kernel's include/erofs_fs.h where one
// exists.

import (
	"encoding/binary"
	"hash/crc32"
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
)

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
)

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

// Device slot layout.
const (
	deviceSlotSize     = 128
	deviceSlotTagSize  = 64
	deviceSlotBlocks   = 64
	deviceSlotUniaddr  = 68
	deviceSlotBlocksHi = 72
	deviceSlotUniHi    = 74
)

var le = binary.LittleEndian

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// superblockChecksum computes the superblock checksum over the block-0 bytes
// that follow offset 1024. b must start at byte 1024 of the image, hold the
// superblock with its checksum field zeroed, and be exactly checksumLen bytes.
func superblockChecksum(b []byte) uint32 {
	return ^crc32.Checksum(b, castagnoli)
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

// fileTypeOfMode returns the directory-entry file type for an i_mode.
func fileTypeOfMode(mode uint32) uint8 {
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

// xattrEntrySize is the on-disk size of an xattr entry, padded to 4 bytes.
func xattrEntrySize(nameLen, valueLen int) int {
	return roundUp(xattrEntryHeaderSize+nameLen+valueLen, 4)
}

// xattrIbodySize converts i_xattr_icount to the inline xattr body size.
func xattrIbodySize(icount uint16) int {
	if icount == 0 {
		return 0
	}
	return xattrIbodyHeaderSize + 4*(int(icount)-1)
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
