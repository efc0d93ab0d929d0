package blob

// On-disk structures and constants of a Nydus data blob (RAFS v6 native
// blob). All integers are little-endian. See the package documentation for
// the layout of a whole blob. Nydus defines these records in its source
// (github.com/dragonflyoss/nydus): BlobChunkInfoV1Ondisk and
// BlobChunkInfoV2Ondisk in storage/src/meta/chunk_info_v1.rs and
// chunk_info_v2.rs, BlobCompressionContextHeader (the CI header) in
// storage/src/meta/mod.rs, TocEntry in storage/src/meta/toc.rs.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/rafs-dev/rafs/erofs"
)

// Sizes of the fixed on-disk records.
const (
	// ChunkInfoV1Size is the size of a V1 chunk-info (CI) entry.
	ChunkInfoV1Size = 16
	// ChunkInfoV2Size is the size of a V2 chunk-info (CI) entry.
	ChunkInfoV2Size = 24
	// CIHeaderSize is the size of the compression-context header that
	// follows the (compressed) CI array.
	CIHeaderSize = 4096
	// TOCEntrySize is the size of one table-of-contents entry.
	TOCEntrySize = 128
	// TarHeaderSize is the size of the GNU tar header that follows each
	// section.
	TarHeaderSize = 512
	// DigestSize is the size of a chunk digest (BLAKE3-256 or SHA-256) and
	// of a TOC entry digest (SHA-256).
	DigestSize = 32
	// MaxTOCSize is the largest TOC (entries plus its tar header) a reader
	// finds: nydusd reads only the last 4 KiB of a blob.
	MaxTOCSize = 4096
)

// Limits of the format.
const (
	// MinChunkSize and MaxChunkSize bound the chunk size, a power of two:
	// the filesystem chunk size of a bootstrap and of its blob-table
	// entries, and the largest chunk a CI entry holds.
	MinChunkSize = 4 << 10
	MaxChunkSize = 16 << 20
	// DefaultChunkSize is the chunk size nydus-image uses by default.
	DefaultChunkSize = 1 << 20
	// MaxChunks is the largest number of chunks (CI entries) in one blob.
	MaxChunks = 1<<24 - 1
	// MaxCompressedOffset bounds a chunk's compressed offset (40 bits).
	MaxCompressedOffset = 1 << 40
	// MaxUncompressedOffset bounds a chunk's uncompressed offset (44 bits).
	MaxUncompressedOffset = 1 << 44
	// chunkAlign is the alignment of uncompressed chunk offsets.
	chunkAlign = 4096
)

// ValidChunkSize reports whether size is a chunk size the format allows: a
// power of two from MinChunkSize to MaxChunkSize.
func ValidChunkSize(size uint64) bool {
	return size >= MinChunkSize && size <= MaxChunkSize && size&(size-1) == 0
}

// Section names: the tar header names and TOC entry names in a blob.
const (
	SectionData       = "image.blob"       // chunk data
	SectionMeta       = "blob.meta"        // (compressed) CI array
	SectionMetaHeader = "blob.meta.header" // 4096-byte CI header (TOC only)
	SectionDigest     = "blob.digest"      // chunk digest array
	SectionBootstrap  = "image.boot"       // inline RAFS bootstrap
	SectionTOC        = "rafs.blob.toc"    // table of contents
)

// CIHeaderMagic is the magic number at offsets 0 and 4092 of a CI header.
const CIHeaderMagic = 0xB10BB10B

// Features are the BlobFeatures bits, stored in the CI header and in the
// bootstrap's blob table.
type Features uint32

// BlobFeatures bits.
const (
	FeatureAligned            Features = 0x0000_0001 // 4 KiB aligned uncompressed offsets
	FeatureInlinedFSMeta      Features = 0x0000_0002 // blob carries its bootstrap (image.boot)
	FeatureChunkInfoV2        Features = 0x0000_0004 // 24-byte V2 CI entries
	FeatureZran               Features = 0x0000_0008 // zran contexts follow the CI array
	FeatureSeparate           Features = 0x0000_0010 // data and meta in different blobs
	FeatureInlinedChunkDigest Features = 0x0000_0020 // blob.digest present
	FeatureTarfs              Features = 0x0000_0040 // tarfs blob
	FeatureBatch              Features = 0x0000_0080 // batch chunks
	FeatureEncrypted          Features = 0x0000_0100 // encrypted chunks and CI
	FeatureChunkdictGenerated Features = 0x0000_0200 // chunkdict generated
	FeatureSeparatedPrefetch  Features = 0x0000_0400 // optimize output
	FeatureExternal           Features = 0x0000_0800 // external backend
	FeatureHasTarHeader       Features = 0x1000_0000 // tar headers separate sections
	FeatureHasTOC             Features = 0x2000_0000 // TOC at the end
	FeatureCapTarTOC          Features = 0x4000_0000 // built by nydus-image >= 2.2
	featureV5NoExtBlobTable   Features = 0x8000_0000 // internal, never on disk
	featureIncompatMask       Features = 0x0000_F000

	// FeaturesKnown are the bits above that may appear on disk.
	FeaturesKnown = FeatureAligned | FeatureInlinedFSMeta | FeatureChunkInfoV2 | FeatureZran |
		FeatureSeparate | FeatureInlinedChunkDigest | FeatureTarfs | FeatureBatch | FeatureEncrypted |
		FeatureChunkdictGenerated | FeatureSeparatedPrefetch | FeatureExternal |
		FeatureHasTarHeader | FeatureHasTOC | FeatureCapTarTOC

	featureInvalidOnDisk     = featureV5NoExtBlobTable | featureIncompatMask
	featuresV2Required       = FeatureZran | FeatureBatch | FeatureEncrypted
	defaultFeatures          = FeatureAligned | FeatureCapTarTOC | FeatureHasTOC | FeatureHasTarHeader
	featureUnsupportedChunks = FeatureZran | FeatureBatch | FeatureEncrypted | FeatureTarfs | FeatureExternal
)

// Compressor is the compression algorithm id used for chunks, the CI array
// and the blob table ("compression_algo", "ci_compressor").
type Compressor uint32

// Compressor ids.
const (
	CompressorNone     Compressor = 0
	CompressorLZ4Block Compressor = 1
	CompressorGzip     Compressor = 2
	CompressorZstd     Compressor = 3
)

// String returns the nydus-image name of c.
func (c Compressor) String() string {
	switch c {
	case CompressorNone:
		return "none"
	case CompressorLZ4Block:
		return "lz4_block"
	case CompressorGzip:
		return "gzip"
	case CompressorZstd:
		return "zstd"
	}
	return fmt.Sprintf("compressor(%d)", uint32(c))
}

// Digester is the chunk digest algorithm id ("digest_algo").
type Digester uint32

// Digester ids.
const (
	DigesterBlake3 Digester = 0
	DigesterSHA256 Digester = 1
)

// String returns the nydus-image name of d.
func (d Digester) String() string {
	switch d {
	case DigesterBlake3:
		return "blake3"
	case DigesterSHA256:
		return "sha256"
	}
	return fmt.Sprintf("digester(%d)", uint32(d))
}

// ChunkFlags are the V2 CI entry flags (bits 56–63 of uncomp_info).
type ChunkFlags uint8

// V2 chunk flags.
const (
	ChunkCompressed ChunkFlags = 0x01
	ChunkZran       ChunkFlags = 0x02
	ChunkBatch      ChunkFlags = 0x04
	ChunkEncrypted  ChunkFlags = 0x08
	ChunkHasCRC32   ChunkFlags = 0x10
)

// ChunkInfo is one decoded CI entry: where a chunk lives in the blob file
// (compressed space) and in the blob's uncompressed address space.
type ChunkInfo struct {
	UncompressedOffset uint64 // 4 KiB aligned
	UncompressedSize   uint32 // 1 .. 16 MiB
	CompressedOffset   uint64 // file offset of the stored bytes
	CompressedSize     uint32 // stored bytes
	// Flags: V2 flags as stored; for V1 entries only ChunkCompressed,
	// derived from CompressedSize != UncompressedSize.
	Flags ChunkFlags
	// Data is the V2 data word (CRC-32C in the low 32 bits with
	// ChunkHasCRC32; zran/batch context otherwise); 0 for V1.
	Data uint64
}

// Compressed reports whether the stored bytes are compressed.
func (c *ChunkInfo) Compressed() bool { return c.Flags&ChunkCompressed != 0 }

// CRC32 returns the chunk's CRC-32C and whether the entry carries one.
func (c *ChunkInfo) CRC32() (uint32, bool) {
	return uint32(c.Data), c.Flags&ChunkHasCRC32 != 0
}

var errChunkRange = errors.New("chunk info field out of range")

// EncodeV1 writes c as a 16-byte V1 entry into b. It fails if a field
// cannot be represented: sizes 1..16 MiB, uncompressed offset 4 KiB
// aligned below 2^44, compressed offset below 2^40, and (V1 infers
// compression from the sizes) Compressed() == (sizes differ).
func (c *ChunkInfo) EncodeV1(b []byte) error {
	if len(b) < ChunkInfoV1Size {
		return fmt.Errorf("v1 entry: %d-byte buffer, want %d: %w", len(b), ChunkInfoV1Size, io.ErrShortBuffer)
	}
	if c.UncompressedSize == 0 || c.UncompressedSize > MaxChunkSize ||
		c.CompressedSize == 0 || c.CompressedSize > MaxChunkSize ||
		c.UncompressedOffset%chunkAlign != 0 || c.UncompressedOffset >= MaxUncompressedOffset ||
		c.CompressedOffset >= MaxCompressedOffset ||
		c.Compressed() != (c.CompressedSize != c.UncompressedSize) {
		return fmt.Errorf("v1 entry %+v: %w", *c, errChunkRange)
	}
	us, cs := uint64(c.UncompressedSize-1), uint64(c.CompressedSize-1)
	u := (us>>20)<<8 | c.UncompressedOffset | (us&0xFFFFF)<<44
	v := c.CompressedOffset | (cs>>20)<<40 | (cs&0xFFFFF)<<44
	binary.LittleEndian.PutUint64(b[0:], u)
	binary.LittleEndian.PutUint64(b[8:], v)
	return nil
}

// DecodeChunkInfoV1 decodes a 16-byte V1 CI entry.
// A short b reads as if padded with zeros; it does not panic.
func DecodeChunkInfoV1(b []byte) ChunkInfo {
	b = record(b, ChunkInfoV1Size)
	u := binary.LittleEndian.Uint64(b[0:])
	v := binary.LittleEndian.Uint64(b[8:])
	c := ChunkInfo{
		UncompressedOffset: u & 0x0000_0FFF_FFFF_F000,
		UncompressedSize:   uint32((u>>8&0xF)<<20|u>>44) + 1,
		CompressedOffset:   v & (MaxCompressedOffset - 1),
		CompressedSize:     uint32((v>>40&0xF)<<20|v>>44) + 1,
	}
	if c.CompressedSize != c.UncompressedSize {
		c.Flags = ChunkCompressed
	}
	return c
}

// EncodeV2 writes c as a 24-byte V2 entry into b. It fails if a field
// cannot be represented: uncompressed size 1..16 MiB, compressed size
// below 16 MiB (a V2 entry stores it without the minus one), uncompressed
// offset 4 KiB aligned below 2^44, compressed offset below 2^40.
func (c *ChunkInfo) EncodeV2(b []byte) error {
	if len(b) < ChunkInfoV2Size {
		return fmt.Errorf("v2 entry: %d-byte buffer, want %d: %w", len(b), ChunkInfoV2Size, io.ErrShortBuffer)
	}
	if c.UncompressedSize == 0 || c.UncompressedSize > MaxChunkSize ||
		c.CompressedSize >= MaxChunkSize ||
		c.UncompressedOffset%chunkAlign != 0 || c.UncompressedOffset >= MaxUncompressedOffset ||
		c.CompressedOffset >= MaxCompressedOffset {
		return fmt.Errorf("v2 entry %+v: %w", *c, errChunkRange)
	}
	u := c.UncompressedOffset>>12 | uint64(c.UncompressedSize-1)<<32 | uint64(c.Flags)<<56
	v := c.CompressedOffset | uint64(c.CompressedSize)<<40
	binary.LittleEndian.PutUint64(b[0:], u)
	binary.LittleEndian.PutUint64(b[8:], v)
	binary.LittleEndian.PutUint64(b[16:], c.Data)
	return nil
}

// DecodeChunkInfoV2 decodes a 24-byte V2 CI entry.
// A short b reads as if padded with zeros; it does not panic.
func DecodeChunkInfoV2(b []byte) ChunkInfo {
	b = record(b, ChunkInfoV2Size)
	u := binary.LittleEndian.Uint64(b[0:])
	v := binary.LittleEndian.Uint64(b[8:])
	return ChunkInfo{
		UncompressedOffset: (u & 0xFFFF_FFFF) << 12,
		UncompressedSize:   uint32(u>>32&0xFF_FFFF) + 1,
		Flags:              ChunkFlags(u >> 56),
		CompressedOffset:   v & (MaxCompressedOffset - 1),
		CompressedSize:     uint32(v >> 40),
		Data:               binary.LittleEndian.Uint64(b[16:]),
	}
}

// CIHeader is the 4096-byte compression-context header
// (BlobCompressionContextHeader) that follows the CI array. Its fields
// must agree with the bootstrap's blob table entry.
type CIHeader struct {
	Features           Features   // BlobFeatures of the blob
	CICompressor       Compressor // compression of the CI buffer
	CIEntries          uint32     // number of chunks
	CIOffset           uint64     // file offset of the (compressed) CI buffer
	CICompressedSize   uint64     // stored CI buffer bytes
	CIUncompressedSize uint64     // decoded CI buffer bytes
	ZranOffset         uint64     // zran/batch data offset inside the decoded CI buffer
	ZranSize           uint64     // zran/batch data bytes
	ZranCount          uint32     // zran contexts or batches
}

// Encode writes h into the 4096-byte b (magics included, the rest
// zero). A shorter b is an error wrapping io.ErrShortBuffer, and nothing
// is written.
func (h *CIHeader) Encode(b []byte) error {
	if len(b) < CIHeaderSize {
		return fmt.Errorf("CI header: %d-byte buffer, want %d: %w", len(b), CIHeaderSize, io.ErrShortBuffer)
	}
	clear(b[:CIHeaderSize])
	le := binary.LittleEndian
	le.PutUint32(b[0:], CIHeaderMagic)
	le.PutUint32(b[4:], uint32(h.Features))
	le.PutUint32(b[8:], uint32(h.CICompressor))
	le.PutUint32(b[12:], h.CIEntries)
	le.PutUint64(b[16:], h.CIOffset)
	le.PutUint64(b[24:], h.CICompressedSize)
	le.PutUint64(b[32:], h.CIUncompressedSize)
	le.PutUint64(b[40:], h.ZranOffset)
	le.PutUint64(b[48:], h.ZranSize)
	le.PutUint32(b[56:], h.ZranCount)
	le.PutUint32(b[CIHeaderSize-4:], CIHeaderMagic)
	return nil
}

// DecodeCIHeader decodes a 4096-byte CI header, checking both magics.
// Other fields are not validated.
func DecodeCIHeader(b []byte) (CIHeader, error) {
	if len(b) < CIHeaderSize {
		return CIHeader{}, fmt.Errorf("CI header: %d bytes, want %d", len(b), CIHeaderSize)
	}
	le := binary.LittleEndian
	if m, m2 := le.Uint32(b[0:]), le.Uint32(b[CIHeaderSize-4:]); m != CIHeaderMagic || m2 != CIHeaderMagic {
		return CIHeader{}, fmt.Errorf("CI header: bad magic %#x/%#x, want %#x", m, m2, uint32(CIHeaderMagic))
	}
	return CIHeader{
		Features:           Features(le.Uint32(b[4:])),
		CICompressor:       Compressor(le.Uint32(b[8:])),
		CIEntries:          le.Uint32(b[12:]),
		CIOffset:           le.Uint64(b[16:]),
		CICompressedSize:   le.Uint64(b[24:]),
		CIUncompressedSize: le.Uint64(b[32:]),
		ZranOffset:         le.Uint64(b[40:]),
		ZranSize:           le.Uint64(b[48:]),
		ZranCount:          le.Uint32(b[56:]),
	}, nil
}

// TOCFlags say how a TOC entry's data is compressed.
type TOCFlags uint32

// TOC entry flags.
const (
	TOCCompressionNone     TOCFlags = 0x1
	TOCCompressionZstd     TOCFlags = 0x2
	TOCCompressionLZ4Block TOCFlags = 0x4
	tocCompressionMask              = TOCCompressionNone | TOCCompressionZstd | TOCCompressionLZ4Block
)

// tocFlags maps a compressor to TOC flags (gzip has none).
func tocFlags(c Compressor) (TOCFlags, error) {
	switch c {
	case CompressorNone:
		return TOCCompressionNone, nil
	case CompressorZstd:
		return TOCCompressionZstd, nil
	case CompressorLZ4Block:
		return TOCCompressionLZ4Block, nil
	}
	return 0, fmt.Errorf("no TOC flag for compressor %v", c)
}

// Compressor returns the compressor that the flags name.
func (f TOCFlags) Compressor() (Compressor, error) {
	switch f & tocCompressionMask {
	case TOCCompressionNone:
		return CompressorNone, nil
	case TOCCompressionZstd:
		return CompressorZstd, nil
	case TOCCompressionLZ4Block:
		return CompressorLZ4Block, nil
	}
	return 0, fmt.Errorf("TOC flags %#x name no single compressor", uint32(f))
}

// TOCEntry is one 128-byte table-of-contents entry.
type TOCEntry struct {
	Flags TOCFlags
	// Name is at most 16 bytes.
	Name string
	// Digest is the SHA-256 of the uncompressed data (all zero:
	// unchecked). For image.blob it covers the data and the image.blob
	// tar header that follows it.
	Digest           [DigestSize]byte
	CompressedOffset uint64
	CompressedSize   uint64
	UncompressedSize uint64
}

// Encode writes e into the 128-byte b.
func (e *TOCEntry) Encode(b []byte) error {
	if len(b) < TOCEntrySize {
		return fmt.Errorf("TOC entry: %d-byte buffer, want %d: %w", len(b), TOCEntrySize, io.ErrShortBuffer)
	}
	if len(e.Name) > 16 {
		return fmt.Errorf("TOC entry name %q longer than 16 bytes", e.Name)
	}
	clear(b[:TOCEntrySize])
	le := binary.LittleEndian
	le.PutUint32(b[0:], uint32(e.Flags))
	copy(b[8:24], e.Name)
	copy(b[24:56], e.Digest[:])
	le.PutUint64(b[56:], e.CompressedOffset)
	le.PutUint64(b[64:], e.CompressedSize)
	le.PutUint64(b[72:], e.UncompressedSize)
	return nil
}

// DecodeTOCEntry decodes a 128-byte TOC entry. Reserved bytes are
// ignored (old blobs have junk there).
// A short b reads as if padded with zeros; it does not panic.
func DecodeTOCEntry(b []byte) TOCEntry {
	b = record(b, TOCEntrySize)
	le := binary.LittleEndian
	e := TOCEntry{
		Flags:            TOCFlags(le.Uint32(b[0:])),
		Name:             erofs.CString(b[8:24]),
		CompressedOffset: le.Uint64(b[56:]),
		CompressedSize:   le.Uint64(b[64:]),
		UncompressedSize: le.Uint64(b[72:]),
	}
	copy(e.Digest[:], b[24:56])
	return e
}

// Tar header field offsets (GNU format).
const (
	tarName     = 0
	tarNameLen  = 100
	tarSize     = 124
	tarMtime    = 136
	tarChksum   = 148
	tarTypeflag = 156
	tarMagic    = 257
	gnuMagic    = "ustar  \x00" // magic "ustar " + version " \0"
	maxOctal11  = 1<<33 - 1     // largest size in 11 octal digits
)

// EncodeTarHeader writes the 512-byte GNU tar header nydus-image puts
// after a section: name, NUL mode/uid/gid, size in 11 octal digits (GNU
// base-256 above 8 GiB), mtime 0, a 7-digit checksum, typeflag '0' and
// the GNU magic.
func EncodeTarHeader(b []byte, name string, size uint64) error {
	if len(b) < TarHeaderSize {
		return fmt.Errorf("tar header: %d-byte buffer, want %d: %w", len(b), TarHeaderSize, io.ErrShortBuffer)
	}
	if name == "" || len(name) > tarNameLen {
		return fmt.Errorf("tar header name %q: want 1..%d bytes", name, tarNameLen)
	}
	clear(b[:TarHeaderSize])
	copy(b[tarName:], name)
	if size <= maxOctal11 {
		putOctal(b[tarSize:tarSize+11], size)
	} else {
		// GNU base-256: high bit of the first byte, big-endian value.
		f := b[tarSize : tarSize+12]
		binary.BigEndian.PutUint64(f[4:], size)
		f[0] = 0x80
	}
	putOctal(b[tarMtime:tarMtime+11], 0)
	b[tarTypeflag] = '0'
	copy(b[tarMagic:], gnuMagic)
	putOctal(b[tarChksum:tarChksum+7], uint64(tarChecksum(b)))
	return nil
}

// DecodeTarHeader parses a section tar header written by EncodeTarHeader
// (or nydus-image): it checks the GNU magic and the checksum and returns
// the name and the size.
func DecodeTarHeader(b []byte) (name string, size uint64, err error) {
	if len(b) < TarHeaderSize {
		return "", 0, fmt.Errorf("tar header: %d bytes, want %d", len(b), TarHeaderSize)
	}
	if string(b[tarMagic:tarMagic+len(gnuMagic)]) != gnuMagic {
		return "", 0, errors.New("tar header: no GNU magic")
	}
	want, err := parseOctal(b[tarChksum : tarChksum+8])
	if err != nil {
		return "", 0, fmt.Errorf("tar header checksum field: %w", err)
	}
	if got := tarChecksum(b); uint64(got) != want {
		return "", 0, fmt.Errorf("tar header: checksum %o, computed %o", want, got)
	}
	f := b[tarSize : tarSize+12]
	if f[0]&0x80 != 0 {
		if f[0] != 0x80 || f[1]|f[2]|f[3] != 0 || f[4]&0x80 != 0 {
			return "", 0, errors.New("tar header: base-256 size out of range")
		}
		size = binary.BigEndian.Uint64(f[4:])
	} else if size, err = parseOctal(f); err != nil {
		return "", 0, fmt.Errorf("tar header size field: %w", err)
	}
	name = erofs.CString(b[tarName : tarName+tarNameLen])
	if name == "" {
		return "", 0, errors.New("tar header: empty name")
	}
	return name, size, nil
}

// tarChecksum sums the header bytes with the checksum field as spaces.
func tarChecksum(b []byte) uint32 {
	var s uint32
	for i, c := range b[:TarHeaderSize] {
		if i >= tarChksum && i < tarChksum+8 {
			c = ' '
		}
		s += uint32(c)
	}
	return s
}

// putOctal writes v as zero-padded octal digits filling f.
func putOctal(f []byte, v uint64) {
	for i := len(f) - 1; i >= 0; i-- {
		f[i] = byte('0' + v&7)
		v >>= 3
	}
}

// parseOctal parses an octal field: optional leading spaces, digits,
// then NULs or spaces.
func parseOctal(f []byte) (uint64, error) {
	i := 0
	for i < len(f) && f[i] == ' ' {
		i++
	}
	var v uint64
	n := 0
	for ; i < len(f) && f[i] >= '0' && f[i] <= '7'; i++ {
		v = v<<3 | uint64(f[i]-'0')
		n++
	}
	for ; i < len(f); i++ {
		if f[i] != 0 && f[i] != ' ' {
			return 0, fmt.Errorf("bad octal byte %#x", f[i])
		}
	}
	if n == 0 {
		return 0, errors.New("no octal digits")
	}
	return v, nil
}

// record returns b[:n] when b holds n bytes, and otherwise a copy of b
// padded with zeros to n bytes: the Decode functions read their record
// through it, so that a short buffer decodes as if zero-padded instead of
// panicking.
func record(b []byte, n int) []byte {
	if len(b) >= n {
		return b[:n]
	}
	r := make([]byte, n)
	copy(r, b)
	return r
}
