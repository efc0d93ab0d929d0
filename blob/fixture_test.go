package blob

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

const (
	fixtureDir  = "../testdata/nydus" // from Nydus's tests; see its NOTICE
	fixtureBlob = "blobs/be7d77eeb719f70884758d1aa800ed0fb09d701aaec469964e9d54325f0d5fef"
	fixtureTOC  = "toc/2fa78cad554b75ac91a4a125ed148d0ddeb25efa4aaa8bd80e5dc292690a4dca"
	fixtureBoot = "bootstrap/rafs-v6-2.2.boot"
)

// readFixture returns a fixture file.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtureDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hexDigest(t *testing.T, s string) (d [DigestSize]byte) {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != DigestSize {
		t.Fatalf("bad digest %q", s)
	}
	copy(d[:], b)
	return d
}

// chunkTableRecord is one 80-byte record of a RAFS v6 bootstrap's chunk
// table (test-only parsing).
type chunkTableRecord struct {
	digest           [DigestSize]byte
	blobIndex, flags uint32
	csize, usize     uint32
	coff, uoff, foff uint64
	index            uint32
}

// bootstrapChunkTable parses the chunk table of a RAFS v6 bootstrap.
func bootstrapChunkTable(t *testing.T, boot []byte) []chunkTableRecord {
	t.Helper()
	le := binary.LittleEndian
	if len(boot) < 4096 || le.Uint32(boot[1024:]) != erofsMagic {
		t.Fatal("not a RAFS v6 bootstrap")
	}
	off, size := le.Uint64(boot[1176:]), le.Uint64(boot[1184:])
	if size%80 != 0 || off+size > uint64(len(boot)) {
		t.Fatalf("bad chunk table %d+%d", off, size)
	}
	var recs []chunkTableRecord
	for p := off; p < off+size; p += 80 {
		b := boot[p:]
		r := chunkTableRecord{
			blobIndex: le.Uint32(b[32:]), flags: le.Uint32(b[36:]),
			csize: le.Uint32(b[40:]), usize: le.Uint32(b[44:]),
			coff: le.Uint64(b[48:]), uoff: le.Uint64(b[56:]), foff: le.Uint64(b[64:]),
			index: le.Uint32(b[72:]),
		}
		copy(r.digest[:], b)
		recs = append(recs, r)
	}
	return recs
}

func TestFixtureNativeBlob(t *testing.T) {
	data := readFixture(t, fixtureBlob)
	if len(data) != 14554 {
		t.Fatalf("fixture is %d bytes", len(data))
	}
	r, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	// Byte ranges of the sections (see the package documentation).
	want := []struct {
		name      string
		off, size int64
		usize     int64
		comp      Compressor
		digest    string
	}{
		{SectionData, 0, 7802, 36864, CompressorNone, "632d11c76e652544684d73053a4656d3cca2c693539bd4bae5ea226355cfdd1d"},
		{SectionMeta, 8314, 32, 32, CompressorNone, "cae7cc4bc024ca68bd0c4f5c9cdf612d6cb9622271d787c8c79ccba91852b6b1"},
		{SectionMetaHeader, 8346, 4096, 4096, CompressorNone, "1a4559316dbcfca5ff8cd1f005172a429a9e9f6b885bfda6a43cf4098a4f8db1"},
		{SectionDigest, 12954, 64, 64, CompressorNone, "910f7305f347bacd48d1221e0fb91c6af903f34eddcfc124004f3c5ff7e8bfdd"},
	}
	secs := r.Sections()
	if len(secs) != len(want) || len(r.TOC()) != len(want) {
		t.Fatalf("%d sections, %d TOC entries, want %d", len(secs), len(r.TOC()), len(want))
	}
	for i, w := range want {
		s := secs[i]
		if s.Name != w.name || s.Offset != w.off || s.Size != w.size || s.UncompressedSize != w.usize ||
			s.Compressor != w.comp || s.Digest != hexDigest(t, w.digest) {
			t.Errorf("section %d = %+v, want %+v", i, s, w)
		}
		if _, err := r.Section(w.name); err != nil {
			t.Errorf("section %s: %v", w.name, err)
		}
	}
	// The image.blob quirks: its TOC offset is the data size (nydus 2.2)
	// and its digest covers the data and the tar header after it.
	if e := r.TOC()[0]; e.CompressedOffset != 7802 || sha256.Sum256(data[:7802+512]) != e.Digest {
		t.Errorf("image.blob TOC entry %+v", e)
	}
	// TOC region: 4 × 128 at 13530, tar header at 14042.
	td, ts := r.TOCDigest()
	if ts != 4*128+512 || td != sha256.Sum256(data[13530:]) {
		t.Errorf("TOC digest/size %x/%d", td, ts)
	}
	for _, h := range []struct {
		off  int
		name string
		size uint64
	}{{7802, SectionData, 7802}, {12442, SectionMeta, 4128}, {13018, SectionDigest, 64}, {14042, SectionTOC, 512}} {
		name, size, err := DecodeTarHeader(data[h.off:])
		if err != nil || name != h.name || size != h.size {
			t.Errorf("tar header at %d: %q %d %v", h.off, name, size, err)
		}
		// Our encoder reproduces nydus-image's headers byte for byte.
		var b [TarHeaderSize]byte
		if err := EncodeTarHeader(b[:], h.name, h.size); err != nil || !bytes.Equal(b[:], data[h.off:h.off+TarHeaderSize]) {
			t.Errorf("EncodeTarHeader(%s, %d) differs from the fixture", h.name, h.size)
		}
	}
	// CI header.
	hdr, ok := r.CIHeader()
	wantHdr := CIHeader{Features: 0x70000021, CICompressor: CompressorNone, CIEntries: 2, CIOffset: 8314, CICompressedSize: 32, CIUncompressedSize: 32}
	if !ok || hdr != wantHdr {
		t.Errorf("CI header %+v, want %+v", hdr, wantHdr)
	}
	var hb [CIHeaderSize]byte
	if err := hdr.Encode(hb[:]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(hb[:], data[8346:8346+CIHeaderSize]) {
		t.Error("CIHeader.Encode differs from the fixture")
	}
	for i, e := range r.TOC() {
		// Bytes 80..127 are reserved; this 2.2-era blob has junk at 124.
		var b [TOCEntrySize]byte
		if err := e.Encode(b[:]); err != nil || !bytes.Equal(b[:80], data[13530+128*i:13530+128*i+80]) {
			t.Errorf("TOCEntry.Encode of entry %d differs from the fixture", i)
		}
	}
	// Chunks: two zstd chunks at 0 and 4828, matching the bootstrap's
	// chunk table and the digest array.
	infos := r.ChunkInfos()
	wantCI := []ChunkInfo{
		{UncompressedOffset: 0, UncompressedSize: 16931, CompressedOffset: 0, CompressedSize: 4828, Flags: ChunkCompressed},
		{UncompressedOffset: 20480, UncompressedSize: 13400, CompressedOffset: 4828, CompressedSize: 2974, Flags: ChunkCompressed},
	}
	if len(infos) != 2 || infos[0] != wantCI[0] || infos[1] != wantCI[1] {
		t.Fatalf("chunk infos %+v", infos)
	}
	for i := range infos {
		var b [ChunkInfoV1Size]byte
		if err := infos[i].EncodeV1(b[:]); err != nil || !bytes.Equal(b[:], data[8314+16*i:8314+16*(i+1)]) {
			t.Errorf("EncodeV1 of chunk %d differs from the fixture (%v)", i, err)
		}
	}
	if r.UncompressedSize() != 36864 {
		t.Errorf("uncompressed size %d", r.UncompressedSize())
	}
	table := bootstrapChunkTable(t, readFixture(t, fixtureBoot))
	if len(table) != 2 {
		t.Fatalf("bootstrap chunk table has %d records", len(table))
	}
	for _, rec := range table {
		ci := infos[rec.index]
		if ci.CompressedOffset != rec.coff || ci.CompressedSize != rec.csize || ci.UncompressedOffset != rec.uoff || ci.UncompressedSize != rec.usize {
			t.Errorf("chunk %d: CI %+v, chunk table %+v", rec.index, ci, rec)
		}
		d, _ := r.ChunkDigest(int(rec.index))
		if d != rec.digest {
			t.Errorf("chunk %d: blob.digest %x, chunk table %x", rec.index, d, rec.digest)
		}
		chunk, err := r.ReadChunk(int(rec.index), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := DigesterBlake3.Sum(chunk); got != rec.digest {
			t.Errorf("chunk %d: blake3 %x, want %x", rec.index, got, rec.digest)
		}
	}
	if err := r.Verify(); err != nil {
		t.Error(err)
	}
	// Blob id: sha256 of the file without the digest array (12954–13017).
	id := sha256.New()
	id.Write(data[:12954])
	id.Write(data[13018:])
	if got := hex.EncodeToString(id.Sum(nil)); got != filepath.Base(fixtureBlob) {
		t.Errorf("blob id %s, want %s", got, filepath.Base(fixtureBlob))
	}
	if _, err := r.Bootstrap(); err == nil {
		t.Error("Bootstrap: no error for a blob without image.boot")
	}
}

func TestFixtureInlineBootstrapBlob(t *testing.T) {
	data := readFixture(t, fixtureTOC)
	r, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	// File name = sha256(file): no digest array.
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != filepath.Base(fixtureTOC) {
		t.Errorf("sha256 %x", got)
	}
	names := []string{SectionData, SectionMeta, SectionMetaHeader, SectionBootstrap}
	if len(r.TOC()) != len(names) {
		t.Fatalf("%d TOC entries", len(r.TOC()))
	}
	for i, n := range names {
		if r.TOC()[i].Name != n {
			t.Errorf("TOC entry %d is %q, want %q", i, r.TOC()[i].Name, n)
		}
	}
	if s, _ := r.Lookup(SectionData); s.Offset != 0 || s.Size != 2829 {
		t.Errorf("image.blob %+v", s)
	}
	if s, _ := r.Lookup(SectionBootstrap); s.Offset != 7997 || s.Size != 501 || s.UncompressedSize != 20480 || s.Compressor != CompressorZstd {
		t.Errorf("image.boot %+v", s)
	}
	hdr, _ := r.CIHeader()
	if hdr.CIEntries != 3 || hdr.CIOffset != 3341 || hdr.CICompressedSize != 48 || hdr.Features != FeatureAligned {
		t.Errorf("CI header %+v", hdr)
	}
	boot, err := r.Bootstrap()
	if err != nil {
		t.Fatal(err)
	}
	if len(boot) != 20480 {
		t.Fatalf("bootstrap %d bytes", len(boot))
	}
	if c, ok := r.Compressor(); !ok || c != CompressorZstd || r.Digester() != DigesterBlake3 {
		t.Errorf("from bootstrap flags: compressor %v (%v), digester %v", c, ok, r.Digester())
	}
	// No blob.digest: check every chunk against the bootstrap's chunk table.
	table := bootstrapChunkTable(t, boot)
	if len(table) != r.ChunkCount() {
		t.Fatalf("chunk table %d records, blob %d chunks", len(table), r.ChunkCount())
	}
	seen := map[uint32]bool{}
	for _, rec := range table {
		ci := r.ChunkInfos()[rec.index]
		if ci.CompressedOffset != rec.coff || ci.CompressedSize != rec.csize || ci.UncompressedOffset != rec.uoff || ci.UncompressedSize != rec.usize {
			t.Errorf("chunk %d: CI %+v, chunk table %+v", rec.index, ci, rec)
		}
		chunk, err := r.ReadChunk(int(rec.index), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := DigesterBlake3.Sum(chunk); got != rec.digest {
			t.Errorf("chunk %d: blake3 %x, want %x", rec.index, got, rec.digest)
		}
		seen[rec.index] = true
	}
	if len(seen) != r.ChunkCount() {
		t.Errorf("chunk table covers %d of %d chunks", len(seen), r.ChunkCount())
	}
	if err := r.Verify(); err != nil {
		t.Error(err)
	}
}

// TestFixtureTarWalk strips the TOC so the reader must walk tar headers.
func TestFixtureTarWalk(t *testing.T) {
	for _, f := range []struct {
		name    string
		tocSize int
	}{{fixtureBlob, 4*128 + 512}, {fixtureTOC, 4*128 + 512}} {
		data := readFixture(t, f.name)
		data = data[:len(data)-f.tocSize]
		r, err := Open(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s without TOC: %v", f.name, err)
		}
		if r.TOC() != nil {
			t.Error("TOC found")
		}
		if r.ChunkCount() == 0 {
			t.Error("no chunks")
		}
		if err := r.Verify(); err != nil {
			t.Errorf("%s without TOC: %v", f.name, err)
		}
		if s, ok := r.Lookup(SectionBootstrap); ok {
			boot, err := r.Bootstrap()
			if err != nil || len(boot) != 20480 || s.Compressor != CompressorZstd {
				t.Errorf("bootstrap by tar walk: %d bytes, %v, %v", len(boot), s.Compressor, err)
			}
		}
	}
	// Chunk data ‖ CI ‖ CI header only (no tar headers at all).
	data := readFixture(t, fixtureBlob)
	plain := append(append(bytes.Clone(data[:7802]), data[8314:8346]...), data[8346:12442]...)
	// Fix the CI offset in the header for the shifted layout.
	binary.LittleEndian.PutUint64(plain[7802+32+16:], 7802)
	r, err := Open(bytes.NewReader(plain), int64(len(plain)))
	if err != nil {
		t.Fatal(err)
	}
	if r.ChunkCount() != 2 || len(r.Sections()) != 3 {
		t.Fatalf("plain blob: %d chunks, %d sections", r.ChunkCount(), len(r.Sections()))
	}
	if err := r.Verify(); err != nil {
		t.Error(err)
	}
}
