package rafs

// This file holds the RAFS v6 on-disk format: constants, field offsets and
// the encoders and decoders of the fixed-size records (extended superblock,
// device slot, blob-table entry, chunk-table record, chunk index). All
// integers are little-endian. The EROFS side (superblock, inodes, dirents,
// xattrs) is package erofs's, after the kernel's fs/erofs/erofs_fs.h; the
// RAFS additions follow Nydus's RAFS v6 layout (rafs/src/metadata/layout/v6.rs
// in dragonflyoss/nydus).

import (
	"encoding/binary"
	"fmt"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
)

var le = binary.LittleEndian

// BlockSize is the block size of every RAFS v6 bootstrap this package writes
// and reads (blkszbits 12). Tarfs bootstraps (512-byte blocks) are not
// supported.
const BlockSize = 4096

const blockBits = 12

// Whole-file layout (spec §1.1).
const (
	sbOffset        = erofs.SuperblockOffset // EROFS superblock, 128 bytes
	sbSize          = 128
	extSBOffset     = 1152 // RAFS v6 extended superblock
	extSBSize       = 256
	devSlotOffset   = 1408 // device slot table (devt_slotoff 11 × 128)
	devtSlotOff     = devSlotOffset / devSlotSize
	devSlotSize     = 128
	blobEntrySize   = 256
	chunkRecordSize = 80
	prefetchEntry   = 4
	unusedMetaBlock = BlockSize // the unused block at the start of the meta area
	mappedAlign     = 0x80000   // 512 KiB alignment of devslot mapped_blkaddr
)

// RootNid is the nid of the root directory in every bootstrap this package
// writes: the meta area starts with one unused block, so the root's inode
// is 4096 bytes (128 slots) into it.
const RootNid = 128

// Limits.
const (
	// MaxBlobs is the largest number of blobs (extra devices) a bootstrap
	// may reference: the kernel masks the chunk index's device id with
	// roundup_pow_of_two(blobs+1)−1, which must not reach the CI bits.
	MaxBlobs = 254
	// MaxChunksPerBlob bounds a blob's chunk_count; CI indexes are 24 bits.
	MaxChunksPerBlob = 1 << 24
	// MaxNameLen is the longest file name (bytes).
	MaxNameLen = 255
	// MaxSymlinkLen is the longest symlink target nydusd accepts.
	MaxSymlinkLen = 4096
	// MaxXattrNameLen and MaxXattrValueLen bound one extended attribute.
	MaxXattrNameLen  = 255
	MaxXattrValueLen = 65535

	maxCIIndex = 1<<24 - 1
)

// EROFS superblock values a RAFS v6 bootstrap must carry.
const (
	// FeatureCompatRAFSV6 is the EROFS feature_compat bit that marks a RAFS
	// v6 bootstrap; nydus writes it and nothing else.
	FeatureCompatRAFSV6 = 0x40000000
	// featureIncompatRAFS is CHUNKED_FILE | DEVICE_TABLE, the exact value
	// nydusd requires.
	featureIncompatRAFS = erofs.FeatureIncompatChunkedFile | erofs.FeatureIncompatDeviceTable
)

// EROFS superblock field offsets (relative to the superblock).
const (
	sbMagic           = 0x00
	sbChecksum        = 0x04
	sbFeatureCompat   = 0x08
	sbBlkszBits       = 0x0C
	sbExtSlots        = 0x0D
	sbRootNid         = 0x0E
	sbInos            = 0x10
	sbBuildTime       = 0x18
	sbBuildTimeNsec   = 0x20
	sbBlocks          = 0x24
	sbMetaBlkAddr     = 0x28
	sbXattrBlkAddr    = 0x2C
	sbFeatureIncompat = 0x50
	sbU1              = 0x54
	sbExtraDevices    = 0x56
	sbDevtSlotOff     = 0x58
)

// Extended superblock field offsets (relative to 1152).
const (
	extFlags             = 0
	extBlobTableOffset   = 8
	extBlobTableSize     = 16
	extChunkSize         = 20
	extChunkTableOffset  = 24
	extChunkTableSize    = 32
	extPrefetchTableOff  = 40
	extPrefetchTableSize = 48
	extPadding           = 52
	extReservedStart     = 56
)

// RAFS superblock flags (s_flags of the extended superblock,
// RafsSuperFlags). A bootstrap has exactly one compression flag and exactly
// one hash flag.
const (
	FlagCompressionNone    uint64 = 0x0000_0001
	FlagCompressionLZ4     uint64 = 0x0000_0002
	FlagHashBlake3         uint64 = 0x0000_0004
	FlagHashSHA256         uint64 = 0x0000_0008
	FlagExplicitUIDGID     uint64 = 0x0000_0010
	FlagHasXattr           uint64 = 0x0000_0020
	FlagCompressionGzip    uint64 = 0x0000_0040
	FlagCompressionZstd    uint64 = 0x0000_0080
	FlagInlinedChunkDigest uint64 = 0x0000_0100
	FlagTarfsMode          uint64 = 0x0000_0200
	FlagEncryptionNone     uint64 = 0x0100_0000
	FlagEncryptionAES128   uint64 = 0x0200_0000

	flagCompressionMask = FlagCompressionNone | FlagCompressionLZ4 | FlagCompressionGzip | FlagCompressionZstd
	flagHashMask        = FlagHashBlake3 | FlagHashSHA256
	flagKnown           = flagCompressionMask | flagHashMask | FlagExplicitUIDGID | FlagHasXattr |
		FlagInlinedChunkDigest | FlagTarfsMode | FlagEncryptionNone | FlagEncryptionAES128
)

// DefaultFlags is what the nydus-snapshotter flow writes: zstd, blake3,
// explicit uid/gid, inlined chunk digest, encryption none. The writer adds
// FlagHasXattr when any inode has extended attributes.
const DefaultFlags = FlagCompressionZstd | FlagHashBlake3 | FlagExplicitUIDGID |
	FlagInlinedChunkDigest | FlagEncryptionNone

// AlgorithmFlags returns the compression flag and the hash flag that name
// chunk compressor c and digester d (0 for an id without a flag): a
// bootstrap's flags name the algorithms of its blobs.
func AlgorithmFlags(c blob.Compressor, d blob.Digester) uint64 {
	var f uint64
	switch c {
	case blob.CompressorNone:
		f = FlagCompressionNone
	case blob.CompressorLZ4Block:
		f = FlagCompressionLZ4
	case blob.CompressorGzip:
		f = FlagCompressionGzip
	case blob.CompressorZstd:
		f = FlagCompressionZstd
	}
	switch d {
	case blob.DigesterBlake3:
		f |= FlagHashBlake3
	case blob.DigesterSHA256:
		f |= FlagHashSHA256
	}
	return f
}

// checkFlags reports whether s_flags is a value nydusd accepts.
func checkFlags(f uint64) error {
	if u := f &^ flagKnown; u != 0 {
		return fmt.Errorf("unknown flag bits %#x", u)
	}
	if c := f & flagCompressionMask; c == 0 || c&(c-1) != 0 {
		return fmt.Errorf("flags %#x: need exactly one compression flag", f)
	}
	if h := f & flagHashMask; h == 0 || h&(h-1) != 0 {
		return fmt.Errorf("flags %#x: need exactly one hash flag", f)
	}
	if f&FlagTarfsMode != 0 {
		return fmt.Errorf("flags %#x: tarfs bootstraps are not supported", f)
	}
	if f&FlagEncryptionNone != 0 && f&FlagEncryptionAES128 != 0 {
		return fmt.Errorf("flags %#x: both encryption flags set", f)
	}
	return nil
}

// Blob-table entry field offsets (RafsV6Blob, 256 bytes).
const (
	beID                 = 0
	beIDSize             = 64
	beIndex              = 64
	beChunkSize          = 68
	beChunkCount         = 72
	beCompressor         = 76
	beDigester           = 80
	beFeatures           = 84
	beCompressedSize     = 88
	beUncompressedSize   = 96
	beTOCSize            = 104
	beCICompressor       = 108
	beCIOffset           = 112
	beCICompressedSize   = 120
	beCIUncompressedSize = 128
	beTOCDigest          = 136
	beMetaDigest         = 168
	beMetaSize           = 200
	beCipherIV           = 208
	beCipherAlgo         = 216
	beReservedStart      = 220
)

// Device slot field offsets.
const (
	dsTag           = 0
	dsBlocks        = 64
	dsMappedBlkaddr = 68
	dsReservedStart = 72
)

// Chunk flags (chunk-table record flags).
const (
	ChunkFlagCompressed uint32 = 0x01
	ChunkFlagHole       uint32 = 0x02
	ChunkFlagEncrypted  uint32 = 0x04
	ChunkFlagBatch      uint32 = 0x08
	ChunkFlagHasCRC32   uint32 = 0x10

	chunkFlagKnown = ChunkFlagCompressed | ChunkFlagHole | ChunkFlagEncrypted | ChunkFlagBatch | ChunkFlagHasCRC32
)

// Chunk-table record field offsets (80 bytes).
const (
	crDigest             = 0
	crBlobIndex          = 32
	crFlags              = 36
	crCompressedSize     = 40
	crUncompressedSize   = 44
	crCompressedOffset   = 48
	crUncompressedOffset = 56
	crFileOffset         = 64
	crIndex              = 72
	crCRC32              = 76
)

// EROFS inode, dirent and xattr layout used by RAFS v6.
const (
	extendedInodeSize = 64
	compactInodeSize  = 32
	inodeSlot         = 32
	direntSize        = 12
	chunkIndexSize    = 8

	// i_format: bit 0 = extended, bits 1-3 = data layout.
	formatExtended = 1

	// Extended inode field offsets.
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

	// Compact inode field offsets (reader only).
	icNlink = 0x06
	icSize  = 0x08
	icUID   = 0x18
	icGID   = 0x1A

	// Chunk-based i_u format bits.
	chunkFormatBitsMask = 0x1F
	chunkFormatIndexes  = 0x20

	// Xattr ibody.
	xattrHeaderSize      = 12
	xattrEntryHeaderSize = 4
)

// xattrPrefixOf returns the prefix of a short name index ("" if RAFS v6
// cannot store it).
func xattrPrefixOf(index uint8) string {
	if index == erofs.XattrIndexLustre {
		return ""
	}
	return erofs.XattrPrefix(index)
}

// fileTypeOfMode returns the directory-entry file type for a mode.
func fileTypeOfMode(mode uint32) uint8 {
	switch mode & erofs.ModeTypeMask {
	case erofs.ModeRegular:
		return erofs.FileTypeRegular
	case erofs.ModeDir:
		return erofs.FileTypeDir
	case erofs.ModeCharDevice:
		return erofs.FileTypeCharDev
	case erofs.ModeBlockDevice:
		return erofs.FileTypeBlockDev
	case erofs.ModeFIFO:
		return erofs.FileTypeFIFO
	case erofs.ModeSocket:
		return erofs.FileTypeSocket
	case erofs.ModeSymlink:
		return erofs.FileTypeSymlink
	}
	return 0
}

// encodeChunkIndex packs one 8-byte chunk index entry: the low 16 bits of
// the CI index, then the device id (blob index + 1) in the low byte and CI
// index bits 16-23 in the high byte of the second u16, then the block.
func encodeChunkIndex(b []byte, ciIndex uint32, blobIndex uint32, blkaddr uint32) {
	le.PutUint16(b[0:], uint16(ciIndex))
	le.PutUint16(b[2:], uint16(blobIndex+1)&0xFF|uint16(ciIndex>>16&0xFF)<<8)
	le.PutUint32(b[4:], blkaddr)
}

// decodeChunkIndex unpacks an entry written by encodeChunkIndex. devID is
// the raw device id (blob index + 1; 0 means the bootstrap itself).
func decodeChunkIndex(b []byte) (ciIndex uint32, devID uint32, blkaddr uint32) {
	lo := le.Uint16(b[0:])
	hi := le.Uint16(b[2:])
	return uint32(lo) | uint32(hi>>8)<<16, uint32(hi & 0xFF), le.Uint32(b[4:])
}

// encodeBlobEntry writes a blob-table entry for blob i.
func encodeBlobEntry(b []byte, i int, chunkSize uint32, bi *BlobInfo) {
	copy(b[beID:beID+beIDSize], bi.ID)
	le.PutUint32(b[beIndex:], uint32(i))
	le.PutUint32(b[beChunkSize:], chunkSize)
	le.PutUint32(b[beChunkCount:], bi.ChunkCount)
	le.PutUint32(b[beCompressor:], uint32(bi.Compressor))
	le.PutUint32(b[beDigester:], uint32(bi.Digester))
	le.PutUint32(b[beFeatures:], uint32(bi.Features))
	le.PutUint64(b[beCompressedSize:], bi.CompressedSize)
	le.PutUint64(b[beUncompressedSize:], bi.UncompressedSize)
	le.PutUint32(b[beTOCSize:], bi.TOCSize)
	le.PutUint32(b[beCICompressor:], uint32(bi.CICompressor))
	le.PutUint64(b[beCIOffset:], bi.CIOffset)
	le.PutUint64(b[beCICompressedSize:], bi.CICompressedSize)
	le.PutUint64(b[beCIUncompressedSize:], bi.CIUncompressedSize)
	copy(b[beTOCDigest:beTOCDigest+32], bi.TOCDigest[:])
	copy(b[beMetaDigest:beMetaDigest+32], bi.MetaDigest[:])
	le.PutUint64(b[beMetaSize:], bi.MetaSize)
	le.PutUint64(b[beCipherIV:], bi.CipherIV)
	le.PutUint32(b[beCipherAlgo:], bi.CipherAlgo)
}

// decodeBlobEntry reads a blob-table entry; it returns the entry's
// blob_index and chunk_size fields for validation.
func decodeBlobEntry(b []byte) (bi BlobInfo, index, chunkSize uint32) {
	bi.ID = erofs.CString(b[beID : beID+beIDSize])
	index = le.Uint32(b[beIndex:])
	chunkSize = le.Uint32(b[beChunkSize:])
	bi.ChunkCount = le.Uint32(b[beChunkCount:])
	bi.Compressor = blob.Compressor(le.Uint32(b[beCompressor:]))
	bi.Digester = blob.Digester(le.Uint32(b[beDigester:]))
	bi.Features = blob.Features(le.Uint32(b[beFeatures:]))
	bi.CompressedSize = le.Uint64(b[beCompressedSize:])
	bi.UncompressedSize = le.Uint64(b[beUncompressedSize:])
	bi.TOCSize = le.Uint32(b[beTOCSize:])
	bi.CICompressor = blob.Compressor(le.Uint32(b[beCICompressor:]))
	bi.CIOffset = le.Uint64(b[beCIOffset:])
	bi.CICompressedSize = le.Uint64(b[beCICompressedSize:])
	bi.CIUncompressedSize = le.Uint64(b[beCIUncompressedSize:])
	copy(bi.TOCDigest[:], b[beTOCDigest:])
	copy(bi.MetaDigest[:], b[beMetaDigest:])
	bi.MetaSize = le.Uint64(b[beMetaSize:])
	bi.CipherIV = le.Uint64(b[beCipherIV:])
	bi.CipherAlgo = le.Uint32(b[beCipherAlgo:])
	return bi, index, chunkSize
}

// encodeChunkRecord writes an 80-byte chunk-table record.
func encodeChunkRecord(b []byte, c *ChunkRecord) {
	copy(b[crDigest:crDigest+32], c.Digest[:])
	le.PutUint32(b[crBlobIndex:], c.BlobIndex)
	le.PutUint32(b[crFlags:], c.Flags)
	le.PutUint32(b[crCompressedSize:], c.CompressedSize)
	le.PutUint32(b[crUncompressedSize:], c.UncompressedSize)
	le.PutUint64(b[crCompressedOffset:], c.CompressedOffset)
	le.PutUint64(b[crUncompressedOffset:], c.UncompressedOffset)
	le.PutUint64(b[crFileOffset:], c.FileOffset)
	le.PutUint32(b[crIndex:], c.Index)
	le.PutUint32(b[crCRC32:], c.CRC32)
}

// decodeChunkRecord reads an 80-byte chunk-table record.
func decodeChunkRecord(b []byte) ChunkRecord {
	var c ChunkRecord
	copy(c.Digest[:], b[crDigest:])
	c.BlobIndex = le.Uint32(b[crBlobIndex:])
	c.Flags = le.Uint32(b[crFlags:])
	c.CompressedSize = le.Uint32(b[crCompressedSize:])
	c.UncompressedSize = le.Uint32(b[crUncompressedSize:])
	c.CompressedOffset = le.Uint64(b[crCompressedOffset:])
	c.UncompressedOffset = le.Uint64(b[crUncompressedOffset:])
	c.FileOffset = le.Uint64(b[crFileOffset:])
	c.Index = le.Uint32(b[crIndex:])
	c.CRC32 = le.Uint32(b[crCRC32:])
	return c
}

func alignUp(x, n int64) int64 { return (x + n - 1) / n * n }
