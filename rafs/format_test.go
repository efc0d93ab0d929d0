package rafs

import (
	"strings"
	"testing"
)

// TestRecordOffsets checks that RAFS's own records, encoded field after
// field, put each field at the offset its constant (used in error
// messages) names, and decode back.
func TestRecordOffsets(t *testing.T) {
	check := func(rec string, off int, got, want uint64) {
		t.Helper()
		if got != want {
			t.Errorf("%s: field at offset %d is %#x, want %#x", rec, off, got, want)
		}
	}

	x := extSuperblock{flags: 1, blobTableOffset: 2, blobTableSize: 3, chunkSize: 4, chunkTableOffset: 5,
		chunkTableSize: 6, prefetchTableOffset: 7, prefetchTableSize: 8, padding: 9}
	b := make([]byte, extSBSize)
	x.encode(b)
	for _, f := range []struct {
		off  int
		size int
		want uint64
	}{
		{extFlags, 8, 1}, {extBlobTableOffset, 8, 2}, {extBlobTableSize, 4, 3}, {extChunkSize, 4, 4},
		{extChunkTableOffset, 8, 5}, {extChunkTableSize, 8, 6}, {extPrefetchTableOff, 8, 7},
		{extPrefetchTableSize, 4, 8}, {extPadding, 4, 9},
	} {
		check("extended superblock", f.off, leUint(f.size, b[f.off:]), f.want)
	}
	if y, ok := decodeExtSuperblock(b); y != x || !ok || !allZero(b[extReservedStart:]) {
		t.Errorf("extended superblock: decoded %+v (reserved zero %v), want %+v", y, ok, x)
	}

	bi := BlobInfo{ID: strings.Repeat("a", beIDSize), ChunkCount: 3, Compressor: 4, Digester: 5, Features: 6,
		CompressedSize: 7, UncompressedSize: 8, TOCSize: 9, CICompressor: 10, CIOffset: 11, CICompressedSize: 12,
		CIUncompressedSize: 13, MetaSize: 14, CipherIV: 15, CipherAlgo: 16}
	bi.TOCDigest[0], bi.MetaDigest[0] = 17, 18
	b = make([]byte, blobEntrySize)
	encodeBlobEntry(b, 1, 2, &bi)
	for _, f := range []struct {
		off  int
		size int
		want uint64
	}{
		{beIndex, 4, 1}, {beChunkSize, 4, 2}, {beChunkCount, 4, 3}, {beCompressor, 4, 4}, {beDigester, 4, 5},
		{beFeatures, 4, 6}, {beCompressedSize, 8, 7}, {beUncompressedSize, 8, 8}, {beTOCSize, 4, 9},
		{beCICompressor, 4, 10}, {beCIOffset, 8, 11}, {beCICompressedSize, 8, 12}, {beCIUncompressedSize, 8, 13},
		{beMetaSize, 8, 14}, {beCipherIV, 8, 15}, {beCipherAlgo, 4, 16}, {beTOCDigest, 1, 17}, {beMetaDigest, 1, 18},
	} {
		check("blob entry", f.off, leUint(f.size, b[f.off:]), f.want)
	}
	if got, index, cs, ok := decodeBlobEntry(b); got != bi || index != 1 || cs != 2 || !ok || string(b[beID:beID+beIDSize]) != bi.ID {
		t.Errorf("blob entry: decoded %+v, %d, %d, %v", got, index, cs, ok)
	}

	c := ChunkRecord{BlobIndex: 1, Flags: 2, CompressedSize: 3, UncompressedSize: 4, CompressedOffset: 5,
		UncompressedOffset: 6, FileOffset: 7, Index: 8, CRC32: 9}
	c.Digest[0] = 10
	b = make([]byte, chunkRecordSize)
	encodeChunkRecord(b, &c)
	for _, f := range []struct {
		off  int
		size int
		want uint64
	}{
		{crBlobIndex, 4, 1}, {crFlags, 4, 2}, {crCompressedSize, 4, 3}, {crUncompressedSize, 4, 4},
		{crCompressedOffset, 8, 5}, {crUncompressedOffset, 8, 6}, {crFileOffset, 8, 7}, {crIndex, 4, 8},
		{crCRC32, 4, 9}, {crDigest, 1, 10},
	} {
		check("chunk record", f.off, leUint(f.size, b[f.off:]), f.want)
	}
	if got := decodeChunkRecord(b); got != c {
		t.Errorf("chunk record: decoded %+v, want %+v", got, c)
	}
}

// leUint reads a little-endian integer of size bytes.
func leUint(size int, b []byte) uint64 {
	var v uint64
	for i := size - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}
