package rafs

// This file holds what RAFS v6 adds to EROFS: constants, field offsets and
// the encoders and decoders of its own records (extended superblock,
// blob-table entry, chunk-table record) and the way it fills EROFS's chunk
// indexes. All integers are little-endian. Every EROFS record (superblock,
// device slots, inodes, dirents, xattrs, chunk indexes) is encoded and
// decoded by package erofs, after the kernel's fs/erofs/erofs_fs.h; the
// RAFS additions follow Nydus's RAFS v6 layout (rafs/src/metadata/layout/v6.rs
// in dragonflyoss/nydus).

import (
	"encoding/binary"
	"fmt"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
)

var le = binary.LittleEndian

// BlockSize is the block size of a RAFS v6 bootstrap (blkszbits 12), and
// in every bootstrap, tarfs ones included, the alignment of the blob
// table, the meta area, the chunk table and the file size (nydus's
// builder/src/core/v6.rs aligns those to 4 KiB whatever the block size).
const BlockSize = 4096

// TarfsBlockSize is the block size of a tarfs bootstrap (FlagTarfsMode,
// blkszbits 9): its blob is a plain tar, whose file data starts on
// 512-byte boundaries, and its chunk indexes, directory blocks and inline
// tails are in 512-byte blocks.
const TarfsBlockSize = 512

const (
	blockBits      = 12
	tarfsBlockBits = 9
)

// blockBitsOf returns log2 of the block size of a bootstrap whose s_flags
// are f: this is the one place that decides it (nydus's
// BuildContext::v6_block_size: 512 for tar-tarfs, else 4096).
func blockBitsOf(f uint64) uint32 {
	if f&FlagTarfsMode != 0 {
		return tarfsBlockBits
	}
	return blockBits
}

// BlockSize returns the bootstrap's block size: TarfsBlockSize when its
// Flags have FlagTarfsMode, else BlockSize.
func (b *Bootstrap) BlockSize() int64 { return 1 << blockBitsOf(b.Flags) }

// Whole-file layout: the EROFS superblock, the RAFS v6 extended superblock
// (RafsV6SuperBlockExt in nydus's rafs/src/metadata/layout/v6.rs), the device
// slots (RafsV6Device), then the blob table (RafsV6BlobTable), the prefetch
// table, the inodes and the chunk table at offsets the extended superblock
// records.
const (
	sbOffset        = erofs.SuperblockOffset // EROFS superblock
	sbSize          = erofs.SuperblockSize
	extSBOffset     = 1152 // RAFS v6 extended superblock
	extSBSize       = 256
	devSlotOffset   = 1408 // device slot table (devt_slotoff 11 × 128)
	devtSlotOff     = devSlotOffset / devSlotSize
	devSlotSize     = erofs.DeviceSlotSize
	inodeSlot       = erofs.InodeSlotSize
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
	// MaxXattrNameLen and MaxXattrValueLen bound one extended attribute, as
	// erofs.CheckXattr checks them.
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

// extSuperblock is the RAFS v6 extended superblock (RafsV6SuperBlockExt),
// extSBSize bytes at extSBOffset: its fields in on-disk order, then
// reserved bytes.
type extSuperblock struct {
	flags               uint64 // s_flags
	blobTableOffset     uint64 // s_blob_table_offset
	blobTableSize       uint32 // s_blob_table_size
	chunkSize           uint32 // s_chunk_size
	chunkTableOffset    uint64 // s_chunk_table_offset
	chunkTableSize      uint64 // s_chunk_table_size
	prefetchTableOffset uint64 // s_prefetch_table_offset
	prefetchTableSize   uint32 // s_prefetch_table_size
	padding             uint32 // s_padding
}

// encode writes the record to b[:extSBSize], reserved bytes zero.
func (x *extSuperblock) encode(b []byte) {
	w := fieldWriter(b[:0:extSBSize])
	w.u64(x.flags)
	w.u64(x.blobTableOffset)
	w.u32(x.blobTableSize)
	w.u32(x.chunkSize)
	w.u64(x.chunkTableOffset)
	w.u64(x.chunkTableSize)
	w.u64(x.prefetchTableOffset)
	w.u32(x.prefetchTableSize)
	w.u32(x.padding)
	w.zeros(extSBSize)
}

// decodeExtSuperblock decodes the record b[:extSBSize]; reservedZero
// reports whether its reserved bytes are all zero.
func decodeExtSuperblock(b []byte) (x extSuperblock, reservedZero bool) {
	r := fieldReader(b[:extSBSize])
	x = extSuperblock{
		flags:               r.u64(),
		blobTableOffset:     r.u64(),
		blobTableSize:       r.u32(),
		chunkSize:           r.u32(),
		chunkTableOffset:    r.u64(),
		chunkTableSize:      r.u64(),
		prefetchTableOffset: r.u64(),
		prefetchTableSize:   r.u32(),
		padding:             r.u32(),
	}
	return x, allZero(r)
}

// fieldWriter encodes a record's fields in on-disk order, little-endian,
// into the slice's spare capacity.
type fieldWriter []byte

func (w *fieldWriter) u32(v uint32)   { *w = le.AppendUint32(*w, v) }
func (w *fieldWriter) u64(v uint64)   { *w = le.AppendUint64(*w, v) }
func (w *fieldWriter) bytes(p []byte) { *w = append(*w, p...) }
func (w *fieldWriter) str(p string, n int) {
	start := len(*w)
	*w = append(*w, p[:min(len(p), n)]...)
	w.zeros(start + n)
}

// zeros pads the record with zeros to n bytes.
func (w *fieldWriter) zeros(n int) {
	for len(*w) < n {
		*w = append(*w, 0)
	}
}

// fieldReader decodes a record's fields in on-disk order, little-endian;
// what is left of it after the fields are read is the record's tail.
type fieldReader []byte

func (r *fieldReader) u32() uint32 { v := le.Uint32(*r); *r = (*r)[4:]; return v }
func (r *fieldReader) u64() uint64 { v := le.Uint64(*r); *r = (*r)[8:]; return v }

// bytes returns the next n bytes.
func (r *fieldReader) bytes(n int) []byte { p := (*r)[:n]; *r = (*r)[n:]; return p }

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
	if f&FlagTarfsMode != 0 && f&flagCompressionMask != FlagCompressionNone {
		return fmt.Errorf("flags %#x: TARFS_MODE with compression: a tarfs blob is a plain tar", f)
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

// Chunk flags (chunk-table record flags).
const (
	ChunkFlagCompressed uint32 = 0x01
	ChunkFlagHole       uint32 = 0x02
	ChunkFlagEncrypted  uint32 = 0x04
	ChunkFlagBatch      uint32 = 0x08
	ChunkFlagHasCRC32   uint32 = 0x10

	chunkFlagKnown = ChunkFlagCompressed | ChunkFlagHole | ChunkFlagEncrypted | ChunkFlagBatch | ChunkFlagHasCRC32
)

// Chunk-table record field offsets (RafsV5ChunkInfo, 80 bytes).
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

// chunkIndex fills the EROFS chunk index of a chunk the way Nydus does
// (RafsV6InodeChunkAddr): device_id is the blob index + 1 in its low byte
// and CI index bits 16-23 in its high byte (the kernel masks the high byte
// off), advise holds the low 16 bits of the CI index, and the block is the
// chunk's block in the blob's uncompressed data.
func chunkIndex(ciIndex, blobIndex, blkaddr uint32) erofs.ChunkIndex {
	return erofs.ChunkIndex{
		Advise:   uint16(ciIndex),
		DeviceID: uint16(blobIndex+1)&0xFF | uint16(ciIndex>>16&0xFF)<<8,
		BlkAddr:  blkaddr,
	}
}

// chunkOf is the inverse of chunkIndex. devID is the raw device id (blob
// index + 1; 0 means the bootstrap itself).
func chunkOf(ci erofs.ChunkIndex) (ciIndex, devID, blkaddr uint32) {
	return uint32(ci.Advise) | uint32(ci.DeviceID>>8)<<16, uint32(ci.DeviceID & 0xFF), ci.BlkAddr
}

// encodeBlobEntry writes a blob-table entry (RafsV6Blob) for blob i to
// b[:blobEntrySize]: its fields in on-disk order, then reserved bytes.
func encodeBlobEntry(b []byte, i int, chunkSize uint32, bi *BlobInfo) {
	w := fieldWriter(b[:0:blobEntrySize])
	w.str(bi.ID, beIDSize)
	w.u32(uint32(i))
	w.u32(chunkSize)
	w.u32(bi.ChunkCount)
	w.u32(uint32(bi.Compressor))
	w.u32(uint32(bi.Digester))
	w.u32(uint32(bi.Features))
	w.u64(bi.CompressedSize)
	w.u64(bi.UncompressedSize)
	w.u32(bi.TOCSize)
	w.u32(uint32(bi.CICompressor))
	w.u64(bi.CIOffset)
	w.u64(bi.CICompressedSize)
	w.u64(bi.CIUncompressedSize)
	w.bytes(bi.TOCDigest[:])
	w.bytes(bi.MetaDigest[:])
	w.u64(bi.MetaSize)
	w.u64(bi.CipherIV)
	w.u32(bi.CipherAlgo)
	w.zeros(blobEntrySize)
}

// decodeBlobEntry reads a blob-table entry; it returns the entry's
// blob_index and chunk_size fields for validation, and whether its
// reserved bytes are all zero.
func decodeBlobEntry(b []byte) (bi BlobInfo, index, chunkSize uint32, reservedZero bool) {
	r := fieldReader(b[:blobEntrySize])
	bi.ID = erofs.CString(r.bytes(beIDSize))
	index = r.u32()
	chunkSize = r.u32()
	bi.ChunkCount = r.u32()
	bi.Compressor = blob.Compressor(r.u32())
	bi.Digester = blob.Digester(r.u32())
	bi.Features = blob.Features(r.u32())
	bi.CompressedSize = r.u64()
	bi.UncompressedSize = r.u64()
	bi.TOCSize = r.u32()
	bi.CICompressor = blob.Compressor(r.u32())
	bi.CIOffset = r.u64()
	bi.CICompressedSize = r.u64()
	bi.CIUncompressedSize = r.u64()
	copy(bi.TOCDigest[:], r.bytes(32))
	copy(bi.MetaDigest[:], r.bytes(32))
	bi.MetaSize = r.u64()
	bi.CipherIV = r.u64()
	bi.CipherAlgo = r.u32()
	return bi, index, chunkSize, allZero(r)
}

// encodeChunkRecord writes an 80-byte chunk-table record (RafsV5ChunkInfo
// in nydus's rafs/src/metadata/layout/v5.rs): its fields in
// on-disk order.
func encodeChunkRecord(b []byte, c *ChunkRecord) {
	w := fieldWriter(b[:0:chunkRecordSize])
	w.bytes(c.Digest[:])
	w.u32(c.BlobIndex)
	w.u32(c.Flags)
	w.u32(c.CompressedSize)
	w.u32(c.UncompressedSize)
	w.u64(c.CompressedOffset)
	w.u64(c.UncompressedOffset)
	w.u64(c.FileOffset)
	w.u32(c.Index)
	w.u32(c.CRC32)
}

// decodeChunkRecord reads an 80-byte chunk-table record.
func decodeChunkRecord(b []byte) ChunkRecord {
	r := fieldReader(b[:chunkRecordSize])
	var c ChunkRecord
	copy(c.Digest[:], r.bytes(32))
	c.BlobIndex = r.u32()
	c.Flags = r.u32()
	c.CompressedSize = r.u32()
	c.UncompressedSize = r.u32()
	c.CompressedOffset = r.u64()
	c.UncompressedOffset = r.u64()
	c.FileOffset = r.u64()
	c.Index = r.u32()
	c.CRC32 = r.u32()
	return c
}

func alignUp(x, n int64) int64 { return (x + n - 1) / n * n }
