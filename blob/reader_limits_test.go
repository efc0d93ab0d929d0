package blob

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

// zstdZeros returns a zstd frame of RLE blocks that decodes to n zero
// bytes: 4 bytes for every 128 KiB, the most a few kilobytes of zstd can
// expand to.
func zstdZeros(n int) []byte {
	b := []byte{0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x38} // magic, no content size, 128 KiB window
	for left := n; ; {
		k := min(left, 128<<10)
		left -= k
		h := uint32(k)<<3 | 1<<1 // RLE block of k bytes
		if left == 0 {
			h |= 1 // last block
		}
		b = append(b, byte(h), byte(h>>8), byte(h>>16), 0)
		if left == 0 {
			return b
		}
	}
}

// plainBlob returns a blob without tar headers: dataLen bytes of chunk
// data, then the CI buffer ci, then the CI header hdr with the CI fields
// filled in.
func plainBlob(dataLen int, ci []byte, hdr CIHeader) []byte {
	b := make([]byte, dataLen, dataLen+len(ci)+CIHeaderSize)
	hdr.CIOffset, hdr.CICompressedSize = uint64(dataLen), uint64(len(ci))
	b = append(b, ci...)
	var h [CIHeaderSize]byte
	if err := hdr.Encode(h[:]); err != nil {
		panic(err) // h is sized by construction
	}
	return append(b, h[:]...)
}

// tocPart is one section of a blob made by tocBlob.
type tocPart struct {
	name  string
	data  []byte
	flags TOCFlags
	usize int
}

// tocBlob returns the parts one after the other, then their TOC.
func tocBlob(t *testing.T, parts ...tocPart) []byte {
	t.Helper()
	var b, toc []byte
	for _, p := range parts {
		e := TOCEntry{Flags: p.flags, Name: p.name, CompressedOffset: uint64(len(b)),
			CompressedSize: uint64(len(p.data)), UncompressedSize: uint64(p.usize)}
		var eb [TOCEntrySize]byte
		if err := e.Encode(eb[:]); err != nil {
			t.Fatal(err)
		}
		b, toc = append(b, p.data...), append(toc, eb[:]...)
	}
	b = append(b, toc...)
	var h [TarHeaderSize]byte
	if err := EncodeTarHeader(h[:], SectionTOC, uint64(len(toc))); err != nil {
		t.Fatal(err)
	}
	return append(b, h[:]...)
}

// openAllocs opens data and returns the reader, the error and the bytes
// allocated meanwhile.
func openAllocs(data []byte) (*Reader, error, uint64) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r, err := Open(bytes.NewReader(data), int64(len(data)))
	runtime.ReadMemStats(&after)
	return r, err, after.TotalAlloc - before.TotalAlloc
}

// maxOpenAllocs bounds what Open may allocate for the blobs of a few
// kilobytes below. Before the CI entries were bounded by the blob's size
// they took from 512 MiB to 1.7 GiB (and seconds).
const maxOpenAllocs = 16 << 20

// TestOpenCIBomb opens blobs of a few kilobytes whose compressed CI array
// or digest array declares and decodes to hundreds of megabytes: Open must
// refuse them, or read them in bounded memory, rather than allocate what
// they declare.
func TestOpenCIBomb(t *testing.T) {
	v1Zeros := func(entries int) []byte { return zstdZeros(entries * ChunkInfoV1Size) }
	for _, tc := range []struct {
		name   string
		blob   []byte
		err    string // "" if Open succeeds
		chunks int
	}{
		// 4 KiB of chunk data hold at most 4096 chunks, whatever the CI
		// array declares.
		{"16M chunks", plainBlob(4096, v1Zeros(MaxChunks), CIHeader{
			CICompressor: CompressorZstd, CIEntries: MaxChunks, CIUncompressedSize: MaxChunks * ChunkInfoV1Size,
		}), "16777215 chunks in a blob with 4096 chunk data bytes", 0},
		{"one chunk per data byte", plainBlob(4096, v1Zeros(4096), CIHeader{
			CICompressor: CompressorZstd, CIEntries: 4096, CIUncompressedSize: 4096 * ChunkInfoV1Size,
		}), "", 4096},
		{"one chunk too many", plainBlob(4096, v1Zeros(4097), CIHeader{
			CICompressor: CompressorZstd, CIEntries: 4097, CIUncompressedSize: 4097 * ChunkInfoV1Size,
		}), "4097 chunks in a blob with 4096 chunk data bytes", 0},
		// Chunks stored elsewhere: the count is bounded by the stored CI.
		{"16M separate chunks", plainBlob(0, v1Zeros(MaxChunks), CIHeader{
			Features: FeatureSeparate, CICompressor: CompressorZstd, CIEntries: MaxChunks, CIUncompressedSize: MaxChunks * ChunkInfoV1Size,
		}), "chunks in a blob with", 0},
		// A CI buffer larger than its entries (nydusd refuses it too).
		{"256 MiB CI for no chunks", plainBlob(4096, zstdZeros(256<<20), CIHeader{
			CICompressor: CompressorZstd, CIUncompressedSize: 256 << 20,
		}), "CI buffer of 268435456 bytes for 0 16-byte entries", 0},
		// Zran contexts may follow the entries: they are checked, not kept.
		{"256 MiB of zran contexts", plainBlob(4096, zstdZeros(256<<20), CIHeader{
			Features: FeatureZran | FeatureChunkInfoV2, CICompressor: CompressorZstd, CIUncompressedSize: 256 << 20,
		}), "", 0},
		// A compressed digest array must decode to a digest per chunk.
		{"256 MiB digest array", tocBlob(t,
			tocPart{SectionData, []byte{1}, TOCCompressionNone, 4096},
			tocPart{SectionMeta, make([]byte, ChunkInfoV1Size), TOCCompressionNone, ChunkInfoV1Size},
			tocPart{SectionMetaHeader, ciHeaderBytes(CIHeader{CIEntries: 1, CIOffset: 1,
				CICompressedSize: ChunkInfoV1Size, CIUncompressedSize: ChunkInfoV1Size}), TOCCompressionNone, CIHeaderSize},
			tocPart{SectionDigest, zstdZeros(256 << 20), TOCCompressionZstd, 256 << 20},
		), "blob.digest: 268435456 bytes for 1 chunks", 0},
		{"compressed digest array", tocBlob(t,
			tocPart{SectionData, []byte{1}, TOCCompressionNone, 4096},
			tocPart{SectionMeta, make([]byte, ChunkInfoV1Size), TOCCompressionNone, ChunkInfoV1Size},
			tocPart{SectionMetaHeader, ciHeaderBytes(CIHeader{CIEntries: 1, CIOffset: 1,
				CICompressedSize: ChunkInfoV1Size, CIUncompressedSize: ChunkInfoV1Size}), TOCCompressionNone, CIHeaderSize},
			tocPart{SectionDigest, zstdZeros(DigestSize), TOCCompressionZstd, DigestSize},
		), "", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.blob) > 64<<10 {
				t.Fatalf("test blob of %d bytes", len(tc.blob))
			}
			r, err, allocs := openAllocs(tc.blob)
			if allocs > maxOpenAllocs {
				t.Errorf("Open of %d bytes allocated %d MiB", len(tc.blob), allocs>>20)
			}
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Open: %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if r.ChunkCount() != tc.chunks {
				t.Fatalf("%d chunks, want %d", r.ChunkCount(), tc.chunks)
			}
		})
	}
}

// ciHeaderBytes returns h encoded.
func ciHeaderBytes(h CIHeader) []byte {
	b := make([]byte, CIHeaderSize)
	if err := h.Encode(b); err != nil {
		panic(err) // b is sized by construction
	}
	return b
}
