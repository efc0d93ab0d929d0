package blob

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/bits"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/rafs-dev/rafs/erofs/lz4"
)

// MaxSectionSize bounds the uncompressed size of a section that Reader
// loads into memory (Section, the CI array, the bootstrap).
const MaxSectionSize = 1 << 30

// maxZstdWindow is the largest zstd window accepted in sections.
const maxZstdWindow = 16 << 20

// maxTarWalk bounds the number of tar headers walked from the end.
const maxTarWalk = 64

// featuresForeignChunks are the blob features under which CI entries may
// describe chunk data that is not stored in the blob itself, or that
// several entries share: without them, every chunk stores at least one
// byte of its own before the end of the chunk data.
const featuresForeignChunks = FeatureSeparate | FeatureChunkdictGenerated | featureUnsupportedChunks

// featuresCIExtra are the blob features under which the CI buffer holds
// more than the CI entries (zran or batch contexts); without them its size
// is exactly that of the entries, as nydusd requires.
const featuresCIExtra = FeatureZran | FeatureBatch | FeatureChunkdictGenerated | FeatureTarfs

// maxChunksPerCIByte bounds the CI entries of a blob with foreign chunks
// by its stored CI bytes. No compressor comes near it: zstd --ultra -22
// stores a V1 array of a million identical raw chunks, the most regular
// there is, in about one byte per entry.
const maxChunksPerCIByte = 4

// Section locates one section of a blob.
type Section struct {
	// Name is the section name, e.g. SectionBootstrap.
	Name string
	// Offset and Size locate the stored (possibly compressed) bytes.
	Offset int64
	Size   int64
	// UncompressedSize is the size of the decoded data, or -1 when the
	// blob does not record it (no TOC).
	UncompressedSize int64
	// Compressor is how the stored bytes are compressed.
	Compressor Compressor
	// Digest is the SHA-256 of the decoded data from the TOC (zero when
	// absent, then unchecked).
	Digest [DigestSize]byte
	// hashTail is the number of stored bytes after the section that its
	// digest also covers (the image.blob tar header quirk).
	hashTail int64
}

// Reader reads a Nydus data blob: its sections, CI header and chunk infos,
// chunk digests, chunks and inline bootstrap. After Open (and the optional
// SetDigester/SetCompressor calls) its methods are safe for concurrent use.
type Reader struct {
	ra        io.ReaderAt
	size      int64
	toc       []TOCEntry
	tocDigest [DigestSize]byte
	tocSize   int64
	sections  []Section
	header    *CIHeader
	chunks    []ChunkInfo
	digests   []byte
	dataEnd   int64

	digester   Digester
	compressor Compressor
	compKnown  bool
}

// Open parses the blob of size bytes in r. It finds the sections through
// the TOC, or by walking the tar headers backwards from the end when there
// is no TOC, or (blobs without tar headers) from the CI header in the last
// 4 KiB; then it loads and checks the CI header, the CI array and the
// chunk digests, in memory bounded by the blob's size rather than by what
// its headers declare: a blob cannot have more chunks than bytes of chunk
// data (or, when its chunks are stored elsewhere, more than four per byte
// of its stored CI array). If the blob carries a bootstrap, the chunk
// compressor and digester are taken from its RAFS superblock flags;
// otherwise the digester defaults to BLAKE3 and the compressor is
// detected per chunk (see SetDigester, SetCompressor).
func Open(r io.ReaderAt, size int64) (*Reader, error) {
	br := &Reader{ra: r, size: size, dataEnd: -1}
	if size < TarHeaderSize {
		return nil, &formatError{fmt.Errorf("blob: %d bytes is too short for a blob", size)}
	}
	if err := br.findSections(); err != nil {
		return nil, fmt.Errorf("blob: %w", asFormat(err))
	}
	if err := br.loadMeta(); err != nil {
		return nil, fmt.Errorf("blob: %w", asFormat(err))
	}
	br.peekBootstrap()
	return br, nil
}

// readAt reads exactly len(b) bytes at off, naming what it reads in errors.
func (r *Reader) readAt(b []byte, off int64, what string) error {
	if off < 0 || off > r.size || int64(len(b)) > r.size-off {
		return fmt.Errorf("%s: range [%d, %d) outside the %d-byte blob", what, off, off+int64(len(b)), r.size)
	}
	n, err := r.ra.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("%s: reading %d bytes at offset %d: %w", what, len(b), off, &ioError{err})
}

// ErrFormat is matched (errors.Is) by every error Open, ReadChunk, Section
// and SectionReader return for a blob that is malformed or does not match
// its own records (sizes, digests, CRCs); not by errors of the underlying
// io.ReaderAt, which are wrapped as they are.
var ErrFormat = errors.New("blob: invalid blob")

// formatError marks err as one about the blob's content.
type formatError struct{ err error }

func (e *formatError) Error() string        { return e.err.Error() }
func (e *formatError) Unwrap() error        { return e.err }
func (e *formatError) Is(target error) bool { return target == ErrFormat }

// ioError marks err as one of the underlying reader.
type ioError struct{ err error }

func (e *ioError) Error() string { return e.err.Error() }
func (e *ioError) Unwrap() error { return e.err }

// asFormat marks err as a format error unless it is nil, one of the
// underlying reader or already marked.
func asFormat(err error) error {
	var ie *ioError
	if err == nil || errors.As(err, &ie) || errors.Is(err, ErrFormat) {
		return err
	}
	return &formatError{err}
}

// ioReader marks the errors of r but io.EOF as ioErrors.
type ioReader struct{ r io.Reader }

func (r ioReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && err != io.EOF {
		err = &ioError{err}
	}
	return n, err
}

// findSections fills r.sections (and r.toc).
func (r *Reader) findSections() error {
	var hb [TarHeaderSize]byte
	if err := r.readAt(hb[:], r.size-TarHeaderSize, "tail tar header"); err != nil {
		return err
	}
	name, tsize, terr := DecodeTarHeader(hb[:])
	switch {
	case terr == nil && name == SectionTOC:
		return r.readTOC(tsize)
	case terr == nil:
		return r.walkTar()
	}
	// No tar header: a blob with only chunk data, CI and CI header.
	if r.size >= CIHeaderSize {
		var h [CIHeaderSize]byte
		if err := r.readAt(h[:], r.size-CIHeaderSize, "CI header"); err != nil {
			return err
		}
		if hdr, err := DecodeCIHeader(h[:]); err == nil {
			return r.plainSections(hdr)
		}
	}
	return fmt.Errorf("no TOC, tar header or CI header at the end (last 512 bytes at offset %d: %v)", r.size-TarHeaderSize, terr)
}

// readTOC parses the TOC whose tar header ends the blob.
func (r *Reader) readTOC(tsize uint64) error {
	hoff := r.size - TarHeaderSize
	if tsize%TOCEntrySize != 0 || tsize > MaxTOCSize-TarHeaderSize || int64(tsize) > hoff {
		return fmt.Errorf("TOC tar header at offset %d: bad TOC size %d", hoff, tsize)
	}
	start := hoff - int64(tsize)
	b := make([]byte, int64(tsize)+TarHeaderSize)
	if err := r.readAt(b, start, "TOC"); err != nil {
		return err
	}
	r.tocDigest = sha256.Sum256(b)
	r.tocSize = int64(len(b))
	for i := 0; i < int(tsize); i += TOCEntrySize {
		e := DecodeTOCEntry(b[i:])
		r.toc = append(r.toc, e)
		at := start + int64(i)
		comp, err := e.Flags.Compressor()
		if err != nil {
			return fmt.Errorf("TOC entry %q at offset %d: %w", e.Name, at, err)
		}
		if e.CompressedSize > uint64(start) || e.CompressedOffset > uint64(start)-e.CompressedSize {
			if e.Name != SectionData {
				return fmt.Errorf("TOC entry %q at offset %d: range %d+%d outside the data before the TOC (%d bytes)",
					e.Name, at, e.CompressedOffset, e.CompressedSize, start)
			}
		}
		if e.UncompressedSize > 1<<62 || e.CompressedOffset > 1<<62 || e.CompressedSize > 1<<62 {
			return fmt.Errorf("TOC entry %q at offset %d: offset/sizes %d/%d/%d out of range", e.Name, at,
				e.CompressedOffset, e.CompressedSize, e.UncompressedSize)
		}
		s := Section{
			Name:             e.Name,
			Offset:           int64(e.CompressedOffset),
			Size:             int64(e.CompressedSize),
			UncompressedSize: int64(e.UncompressedSize),
			Compressor:       comp,
			Digest:           e.Digest,
		}
		if e.Name == SectionData {
			if err := r.locateData(&s, start, at); err != nil {
				return err
			}
		}
		r.sections = append(r.sections, s)
	}
	return nil
}

// locateData finds the image.blob data of a TOC entry. Builds around
// nydus 2.2 wrote the data size as its offset; the data always starts at
// 0 and is followed by the image.blob tar header, whose presence also
// extends the digest over it.
func (r *Reader) locateData(s *Section, limit, at int64) error {
	for _, off := range []int64{s.Offset, 0} {
		if s.Size > limit || off > limit-s.Size || s.Size > limit-TarHeaderSize-off {
			continue
		}
		var hb [TarHeaderSize]byte
		if err := r.readAt(hb[:], off+s.Size, "image.blob tar header"); err != nil {
			return err
		}
		if name, size, err := DecodeTarHeader(hb[:]); err == nil && name == SectionData && size == uint64(s.Size) {
			s.Offset, s.hashTail = off, TarHeaderSize
			return nil
		}
	}
	if s.Size > limit || s.Offset > limit-s.Size {
		return fmt.Errorf("TOC entry %q at offset %d: range %d+%d outside the data before the TOC (%d bytes)",
			s.Name, at, s.Offset, s.Size, limit)
	}
	return nil
}

// walkTar collects sections by walking tar headers from the end.
func (r *Reader) walkTar() error {
	end := r.size
	for n := 0; end > 0; n++ {
		if n == maxTarWalk {
			return fmt.Errorf("more than %d tar headers", maxTarWalk)
		}
		hoff := end - TarHeaderSize
		if hoff < 0 {
			return fmt.Errorf("%d bytes before offset %d hold no tar header", end, end)
		}
		var hb [TarHeaderSize]byte
		if err := r.readAt(hb[:], hoff, "tar header"); err != nil {
			return err
		}
		name, size, err := DecodeTarHeader(hb[:])
		if err != nil {
			return fmt.Errorf("tar header at offset %d: %w", hoff, err)
		}
		if size > uint64(hoff) {
			return fmt.Errorf("tar header %q at offset %d: size %d exceeds the %d bytes before it", name, hoff, size, hoff)
		}
		start := hoff - int64(size)
		s := Section{Name: name, Offset: start, Size: int64(size), UncompressedSize: -1}
		switch name {
		case SectionMeta:
			if s.Size < CIHeaderSize {
				return fmt.Errorf("blob.meta at offset %d: %d bytes, shorter than the CI header", start, size)
			}
			var h [CIHeaderSize]byte
			hdrOff := hoff - CIHeaderSize
			if err := r.readAt(h[:], hdrOff, "CI header"); err != nil {
				return err
			}
			hdr, err := DecodeCIHeader(h[:])
			if err != nil {
				return fmt.Errorf("blob.meta at offset %d: %w", hdrOff, err)
			}
			s.Size -= CIHeaderSize
			s.Compressor = hdr.CICompressor
			s.UncompressedSize = int64(min(hdr.CIUncompressedSize, 1<<62))
			r.sections = append(r.sections, s, Section{
				Name: SectionMetaHeader, Offset: hdrOff, Size: CIHeaderSize,
				UncompressedSize: CIHeaderSize, Compressor: CompressorNone,
			})
			end = start
			continue
		case SectionBootstrap:
			var m [4]byte
			if s.Size >= 4 {
				if err := r.readAt(m[:], start, "image.boot"); err != nil {
					return err
				}
			}
			if bytes.Equal(m[:], zstdMagic) {
				s.Compressor = CompressorZstd
			}
		case SectionData:
			s.hashTail = TarHeaderSize
		}
		r.sections = append(r.sections, s)
		end = start
	}
	return nil
}

// plainSections describes a blob that ends with the CI header.
func (r *Reader) plainSections(hdr CIHeader) error {
	hoff := r.size - CIHeaderSize
	if hdr.CICompressedSize > uint64(hoff) || hdr.CIOffset != uint64(hoff)-hdr.CICompressedSize {
		return fmt.Errorf("CI header at offset %d: CI at %d+%d does not end at the header", hoff, hdr.CIOffset, hdr.CICompressedSize)
	}
	r.sections = []Section{
		{Name: SectionData, Offset: 0, Size: int64(hdr.CIOffset), UncompressedSize: -1},
		{Name: SectionMeta, Offset: int64(hdr.CIOffset), Size: int64(hdr.CICompressedSize),
			UncompressedSize: int64(min(hdr.CIUncompressedSize, 1<<62)), Compressor: hdr.CICompressor},
		{Name: SectionMetaHeader, Offset: hoff, Size: CIHeaderSize, UncompressedSize: CIHeaderSize},
	}
	return nil
}

// loadMeta reads the CI header, the CI array and the digests.
func (r *Reader) loadMeta() error {
	if s, ok := r.Lookup(SectionData); ok {
		r.dataEnd = s.Offset + s.Size
	}
	hs, ok := r.Lookup(SectionMetaHeader)
	if !ok {
		if _, ok := r.Lookup(SectionMeta); ok {
			return errors.New("blob.meta without a CI header")
		}
		return nil
	}
	if hs.Size != CIHeaderSize || hs.Compressor != CompressorNone {
		return fmt.Errorf("CI header at offset %d: %d bytes (%v), want %d uncompressed", hs.Offset, hs.Size, hs.Compressor, CIHeaderSize)
	}
	var h [CIHeaderSize]byte
	if err := r.readAt(h[:], hs.Offset, "CI header"); err != nil {
		return err
	}
	hdr, err := DecodeCIHeader(h[:])
	if err != nil {
		return fmt.Errorf("CI header at offset %d: %w", hs.Offset, err)
	}
	r.header = &hdr
	ms, ok := r.Lookup(SectionMeta)
	if !ok {
		return fmt.Errorf("CI header at offset %d without a blob.meta section", hs.Offset)
	}
	if hdr.CIOffset != uint64(ms.Offset) || hdr.CICompressedSize != uint64(ms.Size) || hdr.CICompressor != ms.Compressor ||
		(ms.UncompressedSize >= 0 && hdr.CIUncompressedSize != uint64(ms.UncompressedSize)) {
		return fmt.Errorf("CI header at offset %d (CI %v at %d, %d/%d bytes) disagrees with blob.meta (%v at %d, %d/%d bytes)",
			hs.Offset, hdr.CICompressor, hdr.CIOffset, hdr.CICompressedSize, hdr.CIUncompressedSize,
			ms.Compressor, ms.Offset, ms.Size, ms.UncompressedSize)
	}
	if hdr.Features&featureInvalidOnDisk != 0 {
		return fmt.Errorf("CI header at offset %d: invalid features %#x", hs.Offset, uint32(hdr.Features))
	}
	if hdr.CIEntries > MaxChunks {
		return fmt.Errorf("CI header at offset %d: %d chunks, more than %d", hs.Offset, hdr.CIEntries, MaxChunks)
	}
	esize := uint64(ChunkInfoV1Size)
	if hdr.Features&FeatureChunkInfoV2 != 0 {
		esize = ChunkInfoV2Size
	} else if hdr.Features&featuresV2Required != 0 {
		return fmt.Errorf("CI header at offset %d: features %#x need V2 chunk infos", hs.Offset, uint32(hdr.Features))
	}
	need := uint64(hdr.CIEntries) * esize
	if hdr.CIUncompressedSize < need || hdr.CIUncompressedSize > MaxSectionSize ||
		(hdr.CIUncompressedSize != need && hdr.Features&featuresCIExtra == 0) {
		return fmt.Errorf("CI header at offset %d: CI buffer of %d bytes for %d %d-byte entries", hs.Offset, hdr.CIUncompressedSize, hdr.CIEntries, esize)
	}
	if r.dataEnd < 0 {
		r.dataEnd = int64(hdr.CIOffset)
	}
	// A compressed CI array of a few kilobytes can declare and decode to
	// millions of entries; bound the count by what the blob really holds
	// before decoding it or allocating the chunk table.
	maxEntries, holds := uint64(r.dataEnd), "chunk data bytes"
	if hdr.Features&featuresForeignChunks != 0 {
		maxEntries, holds = maxChunksPerCIByte*hdr.CICompressedSize, "stored CI bytes"
	}
	if uint64(hdr.CIEntries) > maxEntries {
		return fmt.Errorf("CI header at offset %d: %d chunks in a blob with %d %s", hs.Offset, hdr.CIEntries, maxEntries, holds)
	}
	ci, err := r.sectionPrefix(ms, need)
	if err != nil {
		return err
	}
	r.chunks = make([]ChunkInfo, hdr.CIEntries)
	for i := range r.chunks {
		if esize == ChunkInfoV2Size {
			r.chunks[i] = DecodeChunkInfoV2(ci[uint64(i)*esize:])
		} else {
			r.chunks[i] = DecodeChunkInfoV1(ci[uint64(i)*esize:])
		}
	}
	if ds, ok := r.Lookup(SectionDigest); ok {
		want := uint64(hdr.CIEntries) * DigestSize
		got := ds.UncompressedSize
		if got < 0 && ds.Compressor == CompressorNone {
			got = ds.Size
		}
		if got >= 0 && uint64(got) != want {
			return fmt.Errorf("blob.digest: %d bytes for %d chunks", got, hdr.CIEntries)
		}
		d, err := r.sectionPrefix(ds, want)
		if err != nil {
			return err
		}
		r.digests = d
	}
	return nil
}

// sectionPrefix returns the first n decoded bytes of s, which must decode
// to at least n bytes. It reads the rest only to check the section's size
// and digest, so memory stays bounded by n whatever s decodes to.
func (r *Reader) sectionPrefix(s Section, n uint64) ([]byte, error) {
	if s.UncompressedSize > MaxSectionSize || n > MaxSectionSize {
		return nil, fmt.Errorf("blob: section %q at offset %d: %d bytes, more than %d", s.Name, s.Offset, max(s.UncompressedSize, int64(n)), MaxSectionSize)
	}
	rc, err := r.open(s, MaxSectionSize)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(rc, b); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			err = &formatError{fmt.Errorf("blob: section %q at offset %d: decodes to fewer than %d bytes", s.Name, s.Offset, n)}
		}
		return nil, err
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, err
	}
	return b, nil
}

// RAFS v6 bootstrap superblock fields used to learn the chunk format.
const (
	erofsMagic       = 0xE0F5E1E2
	erofsMagicOffset = 1024
	rafsFlagsOffset  = 1152
)

// peekBootstrap sets the chunk compressor and digester from the inline
// bootstrap's RAFS flags, when there is one (best effort).
func (r *Reader) peekBootstrap() {
	rc, err := r.SectionReader(SectionBootstrap)
	if err != nil {
		return
	}
	defer rc.Close()
	var b [rafsFlagsOffset + 8]byte
	if _, err := io.ReadFull(rc, b[:]); err != nil {
		return
	}
	if binary.LittleEndian.Uint32(b[erofsMagicOffset:]) != erofsMagic {
		return
	}
	flags := binary.LittleEndian.Uint64(b[rafsFlagsOffset:])
	switch flags & (0x1 | 0x2 | 0x40 | 0x80) {
	case 0x1:
		r.compressor, r.compKnown = CompressorNone, true
	case 0x2:
		r.compressor, r.compKnown = CompressorLZ4Block, true
	case 0x40:
		r.compressor, r.compKnown = CompressorGzip, true
	case 0x80:
		r.compressor, r.compKnown = CompressorZstd, true
	}
	switch flags & (0x4 | 0x8) {
	case 0x4:
		r.digester = DigesterBlake3
	case 0x8:
		r.digester = DigesterSHA256
	}
}

// SetDigester sets the chunk digest algorithm ReadChunk verifies with
// (recorded in the bootstrap's blob table, not in the blob). Call it
// before using the Reader concurrently.
func (r *Reader) SetDigester(d Digester) { r.digester = d }

// Digester returns the chunk digest algorithm in use.
func (r *Reader) Digester() Digester { return r.digester }

// SetCompressor sets the chunk compressor (recorded in the bootstrap's
// blob table, not in the blob). Without it, compressed chunks starting
// with the zstd magic are decoded as zstd and others as lz4_block. Call
// it before using the Reader concurrently.
func (r *Reader) SetCompressor(c Compressor) { r.compressor, r.compKnown = c, true }

// Compressor returns the chunk compressor and whether it is known (set,
// or read from the inline bootstrap) rather than detected per chunk.
func (r *Reader) Compressor() (Compressor, bool) { return r.compressor, r.compKnown }

// Size returns the blob's size.
func (r *Reader) Size() int64 { return r.size }

// TOC returns the TOC entries as stored, or nil when the blob has no TOC.
func (r *Reader) TOC() []TOCEntry { return r.toc }

// TOCDigest returns the SHA-256 of the TOC entries and their tar header
// and that region's size (the blob table's blob_toc_digest and
// blob_toc_size); the size is 0 without a TOC.
func (r *Reader) TOCDigest() ([DigestSize]byte, int64) { return r.tocDigest, r.tocSize }

// Sections returns the blob's sections in TOC order (or, without a TOC,
// from the end of the blob backwards).
func (r *Reader) Sections() []Section { return r.sections }

// Lookup returns the first section named name.
func (r *Reader) Lookup(name string) (Section, bool) {
	for _, s := range r.sections {
		if s.Name == name {
			return s, true
		}
	}
	return Section{}, false
}

// CIHeader returns the CI header, if the blob has chunk metadata.
func (r *Reader) CIHeader() (CIHeader, bool) {
	if r.header == nil {
		return CIHeader{}, false
	}
	return *r.header, true
}

// Features returns the CI header's features (0 without one).
func (r *Reader) Features() Features {
	if r.header == nil {
		return 0
	}
	return r.header.Features
}

// ChunkCount returns the number of chunks (CI entries).
func (r *Reader) ChunkCount() int { return len(r.chunks) }

// ChunkInfos returns the decoded CI entries in index order. The slice is
// shared; do not modify it.
func (r *Reader) ChunkInfos() []ChunkInfo { return r.chunks }

// ChunkDigest returns chunk i's digest from blob.digest; false when the
// blob has no digest array or i is out of range.
func (r *Reader) ChunkDigest(i int) (d [DigestSize]byte, ok bool) {
	if r.digests == nil || i < 0 || i >= len(r.chunks) {
		return d, false
	}
	copy(d[:], r.digests[i*DigestSize:])
	return d, true
}

// UncompressedSize returns the end of the last chunk in the blob's
// uncompressed address space, 4 KiB aligned (the blob table value).
func (r *Reader) UncompressedSize() uint64 {
	var end uint64
	for _, c := range r.chunks {
		end = max(end, c.UncompressedOffset+alignUp(uint64(c.UncompressedSize), chunkAlign))
	}
	return end
}

// Bootstrap returns the decoded inline bootstrap (image.boot), verified
// against its TOC digest.
func (r *Reader) Bootstrap() ([]byte, error) { return r.Section(SectionBootstrap) }

// Section returns the decoded bytes of the section named name, verified
// against its TOC digest. Sections over MaxSectionSize are refused; use
// SectionReader for those.
func (r *Reader) Section(name string) ([]byte, error) {
	s, ok := r.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("blob: no section %q", name)
	}
	if s.UncompressedSize > MaxSectionSize || (s.Compressor == CompressorNone && s.Size > MaxSectionSize) {
		return nil, fmt.Errorf("blob: section %q at offset %d: %d bytes, more than %d", name, s.Offset, max(s.Size, s.UncompressedSize), MaxSectionSize)
	}
	rc, err := r.open(s, MaxSectionSize)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var buf bytes.Buffer
	if s.UncompressedSize >= 0 && s.UncompressedSize <= s.Size*4+(1<<20) {
		buf.Grow(int(s.UncompressedSize))
	}
	if _, err := buf.ReadFrom(rc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// SectionReader returns a reader of the decoded bytes of the section
// named name. At the end of the data it checks the size and the TOC
// digest and reports a mismatch as an error instead of io.EOF.
func (r *Reader) SectionReader(name string) (io.ReadCloser, error) {
	s, ok := r.Lookup(name)
	if !ok {
		return nil, fmt.Errorf("blob: no section %q", name)
	}
	return r.open(s, 1<<62)
}

// open returns a verifying reader of s's decoded data (at most limit
// bytes when its size is unknown).
func (r *Reader) open(s Section, limit int64) (io.ReadCloser, error) {
	fail := func(err error) error {
		return fmt.Errorf("blob: section %q at offset %d: %w", s.Name, s.Offset, asFormat(err))
	}
	if s.Offset < 0 || s.Size < 0 || s.Offset > r.size || s.Size > r.size-s.Offset {
		return nil, fail(fmt.Errorf("range of %d bytes outside the %d-byte blob", s.Size, r.size))
	}
	raw := ioReader{io.NewSectionReader(r.ra, s.Offset, s.Size)}
	v := &verifier{name: s.Name, off: s.Offset, want: s.UncompressedSize, limit: limit, digest: s.Digest}
	if s.Digest != ([DigestSize]byte{}) {
		v.h = sha256.New()
		if s.hashTail > 0 {
			v.tail = ioReader{io.NewSectionReader(r.ra, s.Offset+s.Size, s.hashTail)}
		}
	}
	switch s.Compressor {
	case CompressorNone:
		if s.UncompressedSize >= 0 && s.UncompressedSize != s.Size && s.Name != SectionData {
			return nil, fail(fmt.Errorf("stored %d bytes uncompressed but %d bytes decoded", s.Size, s.UncompressedSize))
		}
		if s.Name == SectionData {
			v.want = -1 // its uncompressed size is the blob's address space
		}
		v.r = raw
	case CompressorZstd:
		// The window bounds the decoder's memory: at most the decoded
		// size rounded up to a power of two (1 MiB at least), and never
		// above maxZstdWindow (libzstd level 3, what nydus-image uses,
		// needs 2 MiB; this package writes ≤ 8 MiB).
		window := uint64(maxZstdWindow)
		if s.UncompressedSize >= 0 {
			window = min(window, max(1<<20, uint64(1)<<bits.Len64(uint64(s.UncompressedSize))))
		}
		dec, err := zstd.NewReader(raw, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(window))
		if err != nil {
			return nil, fail(err)
		}
		v.r, v.closer = dec, dec.Close
	case CompressorLZ4Block:
		if s.UncompressedSize < 0 || s.UncompressedSize > MaxSectionSize || s.UncompressedSize > s.Size*255+16 || s.Size > MaxSectionSize {
			return nil, fail(fmt.Errorf("lz4 section of %d bytes decoding to %d bytes", s.Size, s.UncompressedSize))
		}
		src := make([]byte, s.Size)
		if err := r.readAt(src, s.Offset, s.Name); err != nil {
			return nil, fail(err)
		}
		dst := make([]byte, s.UncompressedSize)
		n, err := lz4.Decompress(dst, src)
		if err != nil {
			return nil, fail(err)
		}
		v.r = bytes.NewReader(dst[:n])
	default:
		return nil, fail(fmt.Errorf("unsupported compressor %v", s.Compressor))
	}
	return v, nil
}

// verifier counts and hashes a section's decoded bytes and checks them at
// the end.
type verifier struct {
	name   string
	off    int64
	r      io.Reader
	closer func()
	h      hash.Hash
	tail   io.Reader
	digest [DigestSize]byte
	want   int64 // -1: unknown
	limit  int64
	n      int64
	err    error
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	if v.h != nil {
		v.h.Write(p[:n])
	}
	switch {
	case (v.want >= 0 && v.n > v.want) || v.n > v.limit:
		bound := v.limit
		if v.want >= 0 {
			bound = v.want
		}
		err = fmt.Errorf("decodes to more than %d bytes", bound)
	case err == io.EOF:
		err = v.finish()
	}
	if err != nil {
		if err != io.EOF {
			err = fmt.Errorf("blob: section %q at offset %d: %w", v.name, v.off, asFormat(err))
		}
		v.err = err
		v.Close()
	}
	return n, err
}

// finish checks size and digest at the end of the data.
func (v *verifier) finish() error {
	if v.want >= 0 && v.n != v.want {
		return fmt.Errorf("decoded %d bytes, want %d", v.n, v.want)
	}
	if v.h != nil {
		if v.tail != nil {
			if _, err := io.Copy(v.h, v.tail); err != nil {
				return fmt.Errorf("reading the trailing tar header: %w", err)
			}
		}
		var got [DigestSize]byte
		copy(got[:], v.h.Sum(nil))
		if got != v.digest {
			return fmt.Errorf("sha256 %x, TOC says %x", got, v.digest)
		}
	}
	return io.EOF
}

// Close releases the decoder.
func (v *verifier) Close() error {
	if v.closer != nil {
		v.closer()
		v.closer = nil
	}
	return nil
}

// chunkDecoder decodes zstd chunks with DecodeAll, bounded by the
// destination capacity.
var chunkDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecodeAllCapLimit(true),
		zstd.WithDecoderMaxMemory(MaxChunkSize), zstd.WithDecoderMaxWindow(MaxChunkSize))
})

// scratch holds stored chunk bytes during ReadChunk.
var scratch = sync.Pool{New: func() any { return new([]byte) }}

// ReadChunk returns chunk i's uncompressed data, in dst if it has the
// capacity. It verifies the chunk digest (when the blob has blob.digest)
// and the CRC-32C (when the CI entry carries one).
func (r *Reader) ReadChunk(i int, dst []byte) ([]byte, error) {
	if i < 0 || i >= len(r.chunks) {
		return nil, fmt.Errorf("blob: chunk %d out of range (%d chunks)", i, len(r.chunks))
	}
	c := r.chunks[i]
	fail := func(err error) error {
		return fmt.Errorf("blob: chunk %d at offset %d: %w", i, c.CompressedOffset, asFormat(err))
	}
	if c.Flags&(ChunkZran|ChunkBatch|ChunkEncrypted) != 0 || r.Features()&featureUnsupportedChunks != 0 {
		return nil, fail(fmt.Errorf("unsupported chunk (flags %#x, blob features %#x)", c.Flags, uint32(r.Features())))
	}
	usize, csize := int64(c.UncompressedSize), int64(c.CompressedSize)
	if usize > MaxChunkSize || csize == 0 || csize > MaxChunkSize {
		return nil, fail(fmt.Errorf("sizes %d/%d out of range", csize, usize))
	}
	if c.CompressedOffset > uint64(r.dataEnd) || uint64(csize) > uint64(r.dataEnd)-c.CompressedOffset {
		return nil, fail(fmt.Errorf("%d stored bytes run past the chunk data end %d", csize, r.dataEnd))
	}
	if int64(cap(dst)) < usize {
		dst = make([]byte, usize)
	}
	dst = dst[:usize]
	off := int64(c.CompressedOffset)
	if !c.Compressed() {
		if csize != usize {
			return nil, fail(fmt.Errorf("stored raw but %d bytes stored for %d", csize, usize))
		}
		if err := r.readAt(dst, off, "chunk data"); err != nil {
			return nil, fail(err)
		}
	} else {
		bp := scratch.Get().(*[]byte)
		defer scratch.Put(bp)
		if int64(cap(*bp)) < csize {
			*bp = make([]byte, csize)
		}
		src := (*bp)[:csize]
		if err := r.readAt(src, off, "chunk data"); err != nil {
			return nil, fail(err)
		}
		kind := r.compressor
		if !r.compKnown {
			kind = CompressorLZ4Block
			if bytes.HasPrefix(src, zstdMagic) {
				kind = CompressorZstd
			}
		}
		dec, err := chunkDecoder()
		if err != nil {
			return nil, fail(err)
		}
		if dst, err = decompressChunk(dec, kind, dst, src, int(usize)); err != nil {
			return nil, fail(err)
		}
	}
	if want, ok := r.ChunkDigest(i); ok {
		if got := r.digester.Sum(dst); got != want {
			return nil, fail(fmt.Errorf("%v digest %x, blob.digest says %x", r.digester, got, want))
		}
	}
	if want, ok := c.CRC32(); ok {
		if got := crc32c(dst); got != want {
			return nil, fail(fmt.Errorf("CRC-32C %08x, CI entry says %08x", got, want))
		}
	}
	return dst, nil
}

// Verify reads every section and every chunk, checking all digests,
// sizes and CRCs; it returns the first mismatch.
func (r *Reader) Verify() error {
	for _, s := range r.sections {
		rc, err := r.open(s, 1<<62)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	var buf []byte
	for i := range r.chunks {
		var err error
		if buf, err = r.ReadChunk(i, buf); err != nil {
			return err
		}
	}
	return nil
}
