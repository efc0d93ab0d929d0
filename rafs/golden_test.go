package rafs

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/zeebo/blake3"
)

// fixtureDir holds test data made by Nydus's tools (see its NOTICE).
const fixtureDir = "../testdata/nydus"

const fixtureBlobID = "be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef"

// readFixture returns a fixture file.
func readFixture(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGoldenFixture(t *testing.T) {
	img := readFixture(t, "bootstrap/rafs-v6-2.2.boot")
	raw := readFixture(t, "blobs/"+fixtureBlobID)

	// Raw superblock fields (spec §1.1 worked example).
	u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(img[off:]) }
	u64 := func(off int) uint64 { return binary.LittleEndian.Uint64(img[off:]) }
	rawChecks := []struct {
		name      string
		got, want uint64
	}{
		{"magic", uint64(u32(1024)), erofs.Magic},
		{"feature_compat", uint64(u32(1032)), FeatureCompatRAFSV6},
		{"blkszbits", uint64(img[1036]), 12},
		{"root nid", uint64(binary.LittleEndian.Uint16(img[1038:])), RootNid},
		{"inos", u64(1040), 3},
		{"blocks", uint64(u32(1060)), 9},
		{"meta_blkaddr", uint64(u32(1064)), 2},
		{"feature_incompat", uint64(u32(1104)), 0xC},
		{"extra_devices", uint64(binary.LittleEndian.Uint16(img[1110:])), 1},
		{"devt_slotoff", uint64(binary.LittleEndian.Uint16(img[1112:])), 11},
		{"ext flags", u64(1152), 0x194},
		{"ext blob table offset", u64(1160), 4096},
		{"ext blob table size", uint64(u32(1168)), 256},
		{"ext chunk size", uint64(u32(1172)), 0x100000},
		{"ext chunk table offset", u64(1176), 16384},
		{"ext chunk table size", u64(1184), 160},
		{"ext prefetch table offset", u64(1192), 0},
		{"devslot blocks", uint64(u32(1408 + 64)), 9},
		{"devslot mapped_blkaddr (2 MiB alignment)", uint64(u32(1408 + 68)), 512},
	}
	for _, c := range rawChecks {
		if c.got != c.want {
			t.Errorf("%s = %#x, want %#x", c.name, c.got, c.want)
		}
	}
	if tag := string(img[1408 : 1408+64]); tag != fixtureBlobID {
		t.Errorf("devslot tag %q", tag)
	}

	b, err := Read(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if b.Flags != 0x194 || b.ChunkSize != 0x100000 {
		t.Errorf("flags %#x chunk size %#x", b.Flags, b.ChunkSize)
	}
	if len(b.Blobs) != 1 {
		t.Fatalf("%d blobs", len(b.Blobs))
	}
	bi := b.Blobs[0]
	wantBlob := BlobInfo{
		ID: fixtureBlobID, ChunkCount: 2, Compressor: blob.CompressorZstd, Digester: blob.DigesterBlake3,
		Features: 0x70000021, CompressedSize: 0x38da, UncompressedSize: 0x9000, TOCSize: 0x400,
		CIOffset: 0x207a, CICompressedSize: 0x20, CIUncompressedSize: 0x20, CICompressor: blob.CompressorNone,
	}
	copy(wantBlob.TOCDigest[:], img[4096+136:4096+168])
	if bi != wantBlob {
		t.Errorf("blob entry\n got %+v\nwant %+v", bi, wantBlob)
	}
	if wantBlob.TOCDigest == [32]byte{} {
		t.Error("fixture TOC digest is zero")
	}

	// The root and its two files.
	root := b.Root
	if root.Mode != erofs.ModeDir|0o755 || len(root.Children) != 2 {
		t.Fatalf("root mode %#o, %d children", root.Mode, len(root.Children))
	}
	files := []struct {
		name         string
		size         uint64
		ci, blk      uint32
		uoff, csize  uint64
		coff         uint64
		digestOffset int // index in the blob's digest array
	}{
		{"lib.rs", 16931, 0, 0, 0, 0x12dc, 0, 0},
		{"sync_io.rs", 13400, 1, 5, 0x5000, 0xb9e, 0x12dc, 1},
	}
	// The blob's chunk digest array (spec §3.1): 2 × 32 bytes at 12954.
	digests := raw[12954 : 12954+64]
	zr, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for i, f := range files {
		n := root.Children[i]
		if n.Name != f.name || n.Size != f.size || !n.IsRegular() || len(n.Chunks) != 1 {
			t.Fatalf("child %d: %q size %d mode %#o %d chunks", i, n.Name, n.Size, n.Mode, len(n.Chunks))
		}
		c := n.Chunks[0]
		if c.BlobIndex != 0 || c.Index != f.ci || c.UncompressedOffset != f.uoff || c.UncompressedSize != uint32(f.size) ||
			uint64(c.CompressedSize) != f.csize || c.CompressedOffset != f.coff || c.Flags != ChunkFlagCompressed || c.FileOffset != 0 {
			t.Errorf("%s: chunk %+v", f.name, c)
		}
		if !bytes.Equal(c.Digest[:], digests[32*f.digestOffset:][:32]) {
			t.Errorf("%s: digest %x differs from the blob's digest array", f.name, c.Digest)
		}
		// The chunk data decompresses to the file and hashes to the digest.
		data, err := zr.DecodeAll(raw[c.CompressedOffset:c.CompressedOffset+uint64(c.CompressedSize)], nil)
		if err != nil || len(data) != int(f.size) {
			t.Fatalf("%s: decompressing chunk: %d bytes, %v", f.name, len(data), err)
		}
		if sum := blake3.Sum256(data); sum != c.Digest {
			t.Errorf("%s: blake3 of data %x != digest %x", f.name, sum, c.Digest)
		}
		// Raw chunk index entry in the inode (spec §1.10).
		nid := []int{133, 136}[i]
		at := 8192 + nid*32 + 64
		ci, dev, blk := chunkOf(erofs.DecodeChunkIndex(img[at:]))
		if ci != f.ci || dev != 1 || blk != f.blk {
			t.Errorf("%s: chunk index (ci %d, dev %d, blk %d)", f.name, ci, dev, blk)
		}
	}
	// Chunk table: 2 records, sorted by digest.
	recs := img[16384 : 16384+160]
	if !bytes.Equal(recs[0:32], digests[32:64]) || !bytes.Equal(recs[80:112], digests[0:32]) {
		t.Error("chunk table digests are not the blob's digests in sorted order")
	}

	// Re-encoding the model gives a bootstrap that reads back the same.
	out, err := b.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	b2, err := Read(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatalf("Read(re-encoded): %v", err)
	}
	if diff := compareBootstraps(b, b2); diff != "" {
		t.Errorf("re-encoded fixture differs: %s", diff)
	}
	// Layout matches the fixture's (nid 133 and 136, chunk table at 16 KiB)
	// except the prefetch table we add and the 512 KiB devslot alignment.
	if got := binary.LittleEndian.Uint32(out[1408+68:]); got != 128 {
		t.Errorf("re-encoded mapped_blkaddr %d, want 128 (512 KiB alignment)", got)
	}
	// The fixture numbers i_ino from 0 (2.2 era); compare the rest.
	for _, off := range []int{8192 + 128*32, 8192 + 133*32, 8192 + 136*32} {
		if !bytes.Equal(out[off:off+20], img[off:off+20]) || !bytes.Equal(out[off+24:off+72], img[off+24:off+72]) {
			t.Errorf("inode at %d differs:\n got %x\nwant %x", off, out[off:off+72], img[off:off+72])
		}
	}
	if !bytes.Equal(out[16384:16384+160], img[16384:16384+160]) {
		t.Error("re-encoded chunk table differs")
	}
}

// inlineBootstrap extracts the zstd-compressed image.boot that an older
// inline-meta nydus blob carries, through the blob's table of contents
// (spec §3.7): 128-byte entries before the final 512-byte tar header.
func inlineBootstrap(t testing.TB, blob []byte) []byte {
	t.Helper()
	hdr := blob[len(blob)-512:]
	size, err := strconv.ParseInt(strings.Trim(string(hdr[124:136]), "\x00 "), 8, 64)
	if err != nil || size%128 != 0 || size > int64(len(blob)-512) {
		t.Fatalf("TOC header size %q: %v", hdr[124:136], err)
	}
	toc := blob[len(blob)-512-int(size) : len(blob)-512]
	for i := 0; i+128 <= len(toc); i += 128 {
		e := toc[i:]
		if strings.TrimRight(string(e[8:24]), "\x00") != "image.boot" {
			continue
		}
		off, csz := binary.LittleEndian.Uint64(e[56:]), binary.LittleEndian.Uint64(e[64:])
		if binary.LittleEndian.Uint32(e)&2 == 0 {
			return blob[off : off+csz]
		}
		zr, err := zstd.NewReader(nil)
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		raw, err := zr.DecodeAll(blob[off:off+csz], nil)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	t.Fatal("no image.boot in the TOC")
	return nil
}

// TestGoldenInlineBootstrap reads the per-layer bootstrap stored inside the
// older fixture blob toc/2fa78cad… and checks its chunks against the
// blob's chunk data.
func TestGoldenInlineBootstrap(t *testing.T) {
	raw := readFixture(t, "toc/2fa78cad554b75ac91a4a125ed148d0ddeb25efa4aaa8bd80e5dc292690a4dca")
	img := inlineBootstrap(t, raw)
	b, err := Read(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if b.Flags != 0x94 || len(b.Blobs) != 1 || b.Blobs[0].ChunkCount != 3 || b.Blobs[0].UncompressedSize != 12288 {
		t.Fatalf("flags %#x blobs %+v", b.Flags, b.Blobs)
	}
	want := []struct {
		name  string
		size  uint64
		mtime int64
		nsec  uint32
	}{{"error.rs", 2816, 1667882847, 4018050}, {"lib.rs", 678, 1667567839, 54771639}, {"logger.rs", 3115, 1667567839, 54928471}}
	if len(b.Root.Children) != len(want) {
		t.Fatalf("%d children", len(b.Root.Children))
	}
	zr, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	for i, w := range want {
		n := b.Root.Children[i]
		if n.Name != w.name || n.Size != w.size || n.Mtime != w.mtime || n.MtimeNsec != w.nsec || len(n.Chunks) != 1 {
			t.Errorf("%d: %s size %d mtime %d.%d, %d chunks", i, n.Name, n.Size, n.Mtime, n.MtimeNsec, len(n.Chunks))
			continue
		}
		c := n.Chunks[0]
		data, err := zr.DecodeAll(raw[c.CompressedOffset:c.CompressedOffset+uint64(c.CompressedSize)], nil)
		if err != nil || uint64(len(data)) != w.size {
			t.Errorf("%s: chunk decodes to %d bytes: %v", w.name, len(data), err)
		} else if blake3.Sum256(data) != c.Digest {
			t.Errorf("%s: blake3 of data differs from the chunk digest", w.name)
		}
	}
}
