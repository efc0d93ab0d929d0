package blob

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// smallBlob returns a small zstd blob with an inline bootstrap.
func smallBlob(t testing.TB, v2 bool) ([]byte, *Info) {
	chunks := [][]byte{bytes.Repeat([]byte("hello "), 1000), []byte("tiny"), bytes.Repeat([]byte{0}, 4096)}
	data, info, _ := writeBlob(t, &WriterOptions{Compressor: CompressorZstd, ChunkSize: 8192, ChunkInfoV2: v2}, chunks, bytes.Repeat([]byte("boot"), 300))
	return data, info
}

func TestReaderCorrupt(t *testing.T) {
	data, info := smallBlob(t, true)
	r, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	boot, _ := r.Lookup(SectionBootstrap)
	dig, _ := r.Lookup(SectionDigest)
	for _, tc := range []struct {
		name   string
		mutate func(b []byte) []byte
		open   string // expected Open error substring, "" if Open succeeds
		verify string // expected Verify error substring
	}{
		{"empty", func(b []byte) []byte { return nil }, "too short", ""},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }, "TOC", ""},
		{"no tail", func(b []byte) []byte { return bytes.Repeat([]byte{7}, 5000) }, "no TOC, tar header or CI header", ""},
		{"CI magic", func(b []byte) []byte { b[info.CIOffset+info.CICompressedSize] ^= 1; return b }, "CI header at offset", ""},
		{"CI entries", func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[info.CIOffset+info.CICompressedSize+12:], 1000)
			return b
		}, "CI buffer of", ""},
		{"chunk data", func(b []byte) []byte { b[3] ^= 0xFF; return b }, "", "image.blob"},
		{"digest array", func(b []byte) []byte { b[dig.Offset] ^= 1; return b }, "blob.digest", ""},
		{"bootstrap", func(b []byte) []byte { b[boot.Offset+boot.Size-1] ^= 1; return b }, "", "image.boot"},
		{"TOC offset", func(b []byte) []byte {
			toc := len(b) - int(info.TOCSize)
			binary.LittleEndian.PutUint64(b[toc+TOCEntrySize+56:], 1<<40)
			return b
		}, "outside", ""},
		{"TOC flags", func(b []byte) []byte {
			toc := len(b) - int(info.TOCSize)
			binary.LittleEndian.PutUint32(b[toc:], 7)
			return b
		}, "name no single compressor", ""},
		{"tar checksum", func(b []byte) []byte { b[len(b)-512] ^= 1; return b }, "no TOC, tar header or CI header", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.mutate(bytes.Clone(data))
			r, err := Open(bytes.NewReader(b), int64(len(b)))
			if tc.open != "" {
				if err == nil || !strings.Contains(err.Error(), tc.open) {
					t.Fatalf("Open error %v, want %q", err, tc.open)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if err := r.Verify(); err == nil || !strings.Contains(err.Error(), tc.verify) {
				t.Fatalf("Verify error %v, want %q", err, tc.verify)
			}
		})
	}
	// Corrupt chunk data: ReadChunk fails on its own.
	b := bytes.Clone(data)
	b[3] ^= 0xFF
	r, _ = Open(bytes.NewReader(b), int64(len(b)))
	if _, err := r.ReadChunk(0, nil); err == nil || !strings.Contains(err.Error(), "chunk 0 at offset 0") {
		t.Fatalf("corrupt chunk 0: %v", err)
	}
	// CRC mismatch with the digest array gone: V2 CRC still catches it.
	b = bytes.Clone(data)
	r, _ = Open(bytes.NewReader(b), int64(len(b)))
	r.digests = nil
	c := r.ChunkInfos()[1] // "tiny", stored raw
	b[c.CompressedOffset] ^= 1
	if _, err := r.ReadChunk(1, nil); err == nil || !strings.Contains(err.Error(), "CRC-32C") {
		t.Fatalf("CRC: %v", err)
	}
	if _, err := r.ReadChunk(3, nil); err == nil {
		t.Fatal("chunk 3 of 3 read")
	}
	if _, err := r.Section("nope"); err == nil {
		t.Fatal("missing section read")
	}
	// A wrong digester is detected.
	r, _ = Open(bytes.NewReader(data), int64(len(data)))
	r.SetDigester(DigesterSHA256)
	if _, err := r.ReadChunk(0, nil); err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("wrong digester: %v", err)
	}
}

func TestReaderForcedCompressor(t *testing.T) {
	chunks := [][]byte{bytes.Repeat([]byte("lz4 data "), 500)}
	data, _, _ := writeBlob(t, &WriterOptions{Compressor: CompressorLZ4Block, ChunkSize: 8192}, chunks, nil)
	r, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, known := r.Compressor(); known {
		t.Fatal("compressor known without a bootstrap")
	}
	if got, err := r.ReadChunk(0, nil); err != nil || !bytes.Equal(got, chunks[0]) {
		t.Fatalf("detected lz4: %v", err)
	}
	r.SetCompressor(CompressorZstd)
	if _, err := r.ReadChunk(0, nil); err == nil {
		t.Fatal("lz4 chunk decoded as zstd")
	}
}

// assemble builds a blob of one section (stored as given) and a TOC.
func assemble(t *testing.T, name string, stored []byte, flags TOCFlags, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	b.Write(stored)
	var h [TarHeaderSize]byte
	if err := EncodeTarHeader(h[:], name, uint64(len(stored))); err != nil {
		t.Fatal(err)
	}
	b.Write(h[:])
	e := TOCEntry{Flags: flags, Name: name, Digest: sha256.Sum256(raw), CompressedSize: uint64(len(stored)), UncompressedSize: uint64(len(raw))}
	var eb [TOCEntrySize]byte
	if err := e.Encode(eb[:]); err != nil {
		t.Fatal(err)
	}
	b.Write(eb[:])
	if err := EncodeTarHeader(h[:], SectionTOC, TOCEntrySize); err != nil {
		t.Fatal(err)
	}
	b.Write(h[:])
	return b.Bytes()
}

func TestReaderLZ4Section(t *testing.T) {
	raw := bytes.Repeat([]byte("an lz4 bootstrap "), 200)
	c, err := newChunkCompressor(CompressorLZ4Block, 0)
	if err != nil {
		t.Fatal(err)
	}
	var buf []byte
	stored := bytes.Clone(c.compress(&buf, raw))
	data := assemble(t, SectionBootstrap, stored, TOCCompressionLZ4Block, raw)
	r, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Bootstrap(); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("lz4 bootstrap: %d bytes, %v", len(got), err)
	}
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
	// Wrong uncompressed size and corrupt data are errors.
	bad := assemble(t, SectionBootstrap, stored, TOCCompressionLZ4Block, raw[:len(raw)-1])
	r, _ = Open(bytes.NewReader(bad), int64(len(bad)))
	if _, err := r.Bootstrap(); err == nil {
		t.Fatal("lz4 size mismatch accepted")
	}
	bad = assemble(t, SectionBootstrap, stored[:len(stored)-3], TOCCompressionLZ4Block, raw)
	r, _ = Open(bytes.NewReader(bad), int64(len(bad)))
	if _, err := r.Bootstrap(); err == nil || !strings.Contains(err.Error(), `section "image.boot" at offset 0`) {
		t.Fatalf("truncated lz4: %v", err)
	}
	// A raw section whose sizes disagree, and a zstd one that decodes to
	// more than the TOC says.
	bad = assemble(t, SectionBootstrap, raw, TOCCompressionNone, raw[:10])
	r, _ = Open(bytes.NewReader(bad), int64(len(bad)))
	if _, err := r.Bootstrap(); err == nil {
		t.Fatal("raw size mismatch accepted")
	}
	enc, _ := newZstdEncoder(metaZstdLevel)
	z := enc.EncodeAll(raw, nil)
	bad = assemble(t, SectionBootstrap, z, TOCCompressionZstd, raw[:100])
	r, _ = Open(bytes.NewReader(bad), int64(len(bad)))
	if _, err := r.Bootstrap(); err == nil || !strings.Contains(err.Error(), `section "image.boot"`) {
		t.Fatalf("zstd overrun: %v", err)
	}
	// One byte more than declared.
	bad = assemble(t, SectionBootstrap, z, TOCCompressionZstd, raw[:len(raw)-1])
	r, _ = Open(bytes.NewReader(bad), int64(len(bad)))
	if _, err := r.Bootstrap(); err == nil || !strings.Contains(err.Error(), `section "image.boot"`) {
		t.Fatalf("zstd overrun by one: %v", err)
	}
}

func TestReaderConcurrent(t *testing.T) {
	chunks := testChunks(16<<10, 21)
	data, _, descs := writeBlob(t, &WriterOptions{Compressor: CompressorZstd, ChunkSize: 16 << 10}, chunks, []byte("boot"))
	r, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 4)
	for g := range 4 {
		go func() {
			var buf []byte
			for k := range 50 {
				i := (g*7 + k) % len(chunks)
				got, err := r.ReadChunk(int(descs[i].Index), buf)
				if err == nil && !bytes.Equal(got, chunks[i]) {
					err = fmt.Errorf("chunk %d differs", i)
				}
				if err != nil {
					errs <- err
					return
				}
				buf = got
			}
			errs <- nil
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestReaderZstdMemory checks that a zstd section's decoder memory is
// bounded by its declared size, and that bootstraps larger than the
// encoder window still round-trip.
func TestReaderZstdMemory(t *testing.T) {
	// A frame header asking for a 128 MiB window, for 1 MiB of output.
	frame := []byte{0x28, 0xB5, 0x2F, 0xFD, 0x00, (27 - 10) << 3, 0x01, 0x00, 0x00}
	data := assemble(t, SectionBootstrap, frame, TOCCompressionZstd, make([]byte, 1<<20))
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	r, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Bootstrap(); err == nil {
		t.Fatal("oversized window accepted")
	}
	runtime.ReadMemStats(&m1)
	if a := m1.TotalAlloc - m0.TotalAlloc; a > 16<<20 {
		t.Errorf("allocated %d MB for a 29-byte section", a>>20)
	}

	rnd := rand.New(rand.NewPCG(1, 1))
	boot := make([]byte, 20<<20)
	for i := range boot {
		boot[i] = byte(rnd.IntN(4))
	}
	data, _, _ = writeBlob(t, nil, [][]byte{[]byte("x")}, boot)
	r, err = Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Bootstrap(); err != nil || !bytes.Equal(got, boot) {
		t.Fatalf("20 MiB bootstrap: %v", err)
	}
}
