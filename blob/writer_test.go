package blob

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// testChunks returns chunks of mixed content: compressible text, random
// (incompressible) data, zeros, duplicates and odd sizes up to size.
func testChunks(size int, seed uint64) [][]byte {
	rnd := rand.New(rand.NewPCG(seed, 7))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	text := func(n int) []byte {
		var buf bytes.Buffer
		for buf.Len() < n {
			fmt.Fprintf(&buf, "line %d of some file %x\n", rnd.IntN(1000), rnd.Uint32()%64)
		}
		return buf.Bytes()[:n]
	}
	var chunks [][]byte
	chunks = append(chunks, text(size), random(size), make([]byte, size), text(1), random(1), text(size/3+5))
	chunks = append(chunks, chunks[0], random(min(4097, size)), chunks[2], text(size-1), chunks[5])
	for range 10 {
		chunks = append(chunks, text(1+rnd.IntN(size)))
	}
	chunks = append(chunks, chunks[1], chunks[len(chunks)-1])
	return chunks
}

// writeBlob writes chunks (and bootstrap, if non-nil) and returns the
// blob, its Info and the Chunk descriptors.
func writeBlob(t testing.TB, opts *WriterOptions, chunks [][]byte, boot []byte) ([]byte, *Info, []*StoredChunk) {
	t.Helper()
	var out bytes.Buffer
	w, err := NewWriter(struct{ io.Writer }{&out}, opts) // hide ReadFrom etc.: a plain stream
	if err != nil {
		t.Fatal(err)
	}
	var descs []*StoredChunk
	for _, c := range chunks {
		d, err := w.Add(c)
		if err != nil {
			t.Fatal(err)
		}
		descs = append(descs, d)
	}
	var fn BootstrapFunc
	var seen *Info
	if boot != nil {
		fn = func(i *Info) ([]byte, error) {
			cp := *i
			seen = &cp
			return boot, nil
		}
	}
	info, err := w.Finish(fn)
	if err != nil {
		t.Fatal(err)
	}
	if seen != nil {
		// The bootstrap saw all blob-table fields except id, size and TOC.
		want := *info
		want.ID, want.Size, want.TOCSize, want.TOCDigest = "", 0, 0, [DigestSize]byte{}
		if *seen != want {
			t.Errorf("bootstrap saw %+v, final %+v", *seen, want)
		}
	}
	return out.Bytes(), info, descs
}

func TestRoundTrip(t *testing.T) {
	boot := bytes.Repeat([]byte("bootstrap "), 2000)
	for _, tc := range []struct {
		comp Compressor
		dig  Digester
		v2   bool
		size int
	}{
		{CompressorZstd, DigesterBlake3, false, 64 << 10},
		{CompressorZstd, DigesterSHA256, false, 64 << 10},
		{CompressorLZ4Block, DigesterBlake3, false, 64 << 10},
		{CompressorNone, DigesterSHA256, false, 64 << 10},
		{CompressorZstd, DigesterBlake3, true, 64 << 10},
		{CompressorLZ4Block, DigesterSHA256, true, 4096},
		{CompressorZstd, DigesterBlake3, false, 1 << 20},
	} {
		name := fmt.Sprintf("%v-%v-v2=%v-%d", tc.comp, tc.dig, tc.v2, tc.size)
		t.Run(name, func(t *testing.T) {
			chunks := testChunks(tc.size, uint64(tc.size))
			opts := &WriterOptions{Compressor: tc.comp, Uncompressed: tc.comp == CompressorNone, Digester: tc.dig, ChunkSize: tc.size, ChunkInfoV2: tc.v2, Workers: 3}
			data, info, descs := writeBlob(t, opts, chunks, boot)
			checkBlob(t, data, info, descs, chunks, opts, boot)
		})
	}
}

// checkBlob reads data back and compares it with what was written.
func checkBlob(t *testing.T, data []byte, info *Info, descs []*StoredChunk, chunks [][]byte, opts *WriterOptions, boot []byte) {
	t.Helper()
	sum := sha256.Sum256(data)
	if info.ID != hex.EncodeToString(sum[:]) || info.Size != int64(len(data)) {
		t.Fatalf("id %s size %d; blob sha256 %x size %d", info.ID, info.Size, sum, len(data))
	}
	r, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	r.SetDigester(opts.Digester)
	if err := r.Verify(); err != nil {
		t.Fatal(err)
	}
	wantFeat := Features(0x70000023)
	if opts.ChunkInfoV2 {
		wantFeat |= FeatureChunkInfoV2
	}
	if boot == nil {
		wantFeat &^= FeatureInlinedFSMeta
	}
	hdr, _ := r.CIHeader()
	if info.Features != wantFeat || hdr.Features != wantFeat {
		t.Errorf("features %#x / header %#x, want %#x", info.Features, hdr.Features, wantFeat)
	}
	if hdr.CIEntries != info.ChunkCount || hdr.CIOffset != info.CIOffset || hdr.CICompressedSize != info.CICompressedSize ||
		hdr.CIUncompressedSize != info.CIUncompressedSize || hdr.CICompressor != info.CICompressor {
		t.Errorf("header %+v vs info %+v", hdr, info)
	}
	esize := uint64(ChunkInfoV1Size)
	if opts.ChunkInfoV2 {
		esize = ChunkInfoV2Size
	}
	if info.CIUncompressedSize != esize*uint64(info.ChunkCount) {
		t.Errorf("CI uncompressed size %d for %d chunks", info.CIUncompressedSize, info.ChunkCount)
	}
	if r.UncompressedSize() != info.UncompressedSize || info.ChunkSize != uint32(opts.ChunkSize) {
		t.Errorf("uncompressed size %d / info %d", r.UncompressedSize(), info.UncompressedSize)
	}
	td, ts := r.TOCDigest()
	if td != info.TOCDigest || ts != int64(info.TOCSize) {
		t.Errorf("TOC digest/size %x/%d, info %x/%d", td, ts, info.TOCDigest, info.TOCSize)
	}
	// Layout: the sections in the package documentation's order, contiguous.
	names := []string{SectionData, SectionMeta, SectionMetaHeader, SectionDigest, SectionBootstrap}
	if boot == nil {
		names = names[:4]
	}
	secs := r.Sections()
	if len(secs) != len(names) {
		t.Fatalf("%d sections", len(secs))
	}
	for i, n := range names {
		if secs[i].Name != n {
			t.Fatalf("section %d is %s, want %s", i, secs[i].Name, n)
		}
	}
	if secs[0].Offset != 0 || uint64(secs[0].Size) != info.DataSize || secs[1].Offset != secs[0].Size+512 ||
		secs[2].Offset != secs[1].Offset+secs[1].Size || secs[3].Offset != secs[2].Offset+4096+512 ||
		uint64(secs[3].Offset+secs[3].Size+512) != info.CompressedSize {
		t.Errorf("layout %+v, info %+v", secs, info)
	}
	if boot != nil {
		if secs[4].Offset != int64(info.CompressedSize) {
			t.Errorf("bootstrap at %d, compressed size %d", secs[4].Offset, info.CompressedSize)
		}
		got, err := r.Bootstrap()
		if err != nil || !bytes.Equal(got, boot) {
			t.Errorf("bootstrap: %d bytes, %v", len(got), err)
		}
	}
	if int64(info.TOCSize)+secs[len(secs)-1].Offset+secs[len(secs)-1].Size+512 != int64(len(data)) {
		t.Errorf("TOC does not end the blob")
	}
	// Chunks: descriptors match the CI array, data round-trips, dedup and
	// offset rules hold.
	infos := r.ChunkInfos()
	byDigest := map[[DigestSize]byte]uint32{}
	var uoff, coff uint64
	for i, d := range descs {
		if d.Digest != opts.Digester.Sum(chunks[i]) || d.CRC32 != crc32c(chunks[i]) || d.UncompressedSize != uint32(len(chunks[i])) {
			t.Fatalf("chunk %d: descriptor %+v", i, d)
		}
		if idx, ok := byDigest[d.Digest]; ok {
			if !d.Duplicate || d.Index != idx {
				t.Fatalf("chunk %d: duplicate of %d not deduplicated: %+v", i, idx, d)
			}
			continue
		}
		if d.Duplicate || d.Index != uint32(len(byDigest)) {
			t.Fatalf("chunk %d: index %d dup %v, want new %d", i, d.Index, d.Duplicate, len(byDigest))
		}
		byDigest[d.Digest] = d.Index
		ci := infos[d.Index]
		if ci.UncompressedOffset != uoff || ci.CompressedOffset != coff || d.UncompressedOffset != uoff || d.CompressedOffset != coff ||
			ci.CompressedSize != d.CompressedSize || ci.Compressed() != d.Compressed {
			t.Fatalf("chunk %d: CI %+v descriptor %+v, want offsets %d/%d", i, ci, d, uoff, coff)
		}
		if d.Compressed != (d.CompressedSize < d.UncompressedSize) || (opts.Uncompressed && d.Compressed) {
			t.Fatalf("chunk %d: compressed %v with sizes %d/%d", i, d.Compressed, d.CompressedSize, d.UncompressedSize)
		}
		if crc, ok := ci.CRC32(); ok != opts.ChunkInfoV2 || (ok && crc != d.CRC32) {
			t.Fatalf("chunk %d: CRC %x %v", i, crc, ok)
		}
		uoff += alignUp(uint64(d.UncompressedSize), 4096)
		coff += uint64(d.CompressedSize)
		got, err := r.ReadChunk(int(d.Index), nil)
		if err != nil || !bytes.Equal(got, chunks[i]) {
			t.Fatalf("chunk %d: read back %d bytes, %v", i, len(got), err)
		}
		if dg, _ := r.ChunkDigest(int(d.Index)); dg != d.Digest {
			t.Fatalf("chunk %d: blob.digest %x", i, dg)
		}
	}
	if uint32(len(byDigest)) != info.ChunkCount || r.ChunkCount() != len(byDigest) || uoff != info.UncompressedSize || coff != info.DataSize {
		t.Errorf("%d unique chunks, info %+v", len(byDigest), info)
	}
}

func TestDeterministicAcrossWorkers(t *testing.T) {
	chunks := testChunks(64<<10, 3)
	// Many duplicates in flight at once exercise the claim logic.
	for range 4 {
		chunks = append(chunks, chunks...)
	}
	boot := []byte("a small bootstrap")
	for _, comp := range []Compressor{CompressorZstd, CompressorLZ4Block} {
		var ref []byte
		for _, workers := range []int{1, 2, 4, 7} {
			data, _, _ := writeBlob(t, &WriterOptions{Compressor: comp, ChunkSize: 64 << 10, Workers: workers}, chunks, boot)
			if ref == nil {
				ref = data
			} else if !bytes.Equal(ref, data) {
				t.Fatalf("%v: %d workers give different bytes than 1", comp, workers)
			}
		}
	}
}

func TestNoChunks(t *testing.T) {
	boot := bytes.Repeat([]byte{1, 2, 3, 4}, 1000)
	data, info, _ := writeBlob(t, nil, nil, boot)
	if info.ChunkCount != 0 || info.Features != 0 || info.CompressedSize != 0 || info.TOCSize != 128+512 {
		t.Errorf("info %+v", info)
	}
	r, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Sections()) != 1 || r.ChunkCount() != 0 {
		t.Fatalf("sections %+v", r.Sections())
	}
	if got, err := r.Bootstrap(); err != nil || !bytes.Equal(got, boot) {
		t.Fatalf("bootstrap %d bytes, %v", len(got), err)
	}
	// Incompressible bootstrap is stored raw.
	rb := testChunks(4096, 9)[1]
	data, _, _ = writeBlob(t, nil, nil, rb)
	r, err = Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := r.Lookup(SectionBootstrap); s.Compressor != CompressorNone || s.Size != 4096 {
		t.Errorf("raw bootstrap section %+v", s)
	}
	if err := r.Verify(); err != nil {
		t.Error(err)
	}
	// Chunks without a bootstrap (like the be7d77ee… fixture).
	chunks := testChunks(8192, 5)
	opts := &WriterOptions{Compressor: CompressorZstd, ChunkSize: 8192}
	data, info, descs := writeBlob(t, opts, chunks, nil)
	checkBlob(t, data, info, descs, chunks, opts, nil)
}

func TestWriterErrors(t *testing.T) {
	for _, o := range []WriterOptions{
		{ChunkSize: 3000}, {ChunkSize: 1 << 25}, {Digester: 5}, {Compressor: CompressorGzip}, {Compressor: 9},
		{Compressor: CompressorLZ4Block, Level: 99},
		{ChunkInfoV2: true, Uncompressed: true, ChunkSize: MaxChunkSize},
	} {
		if _, err := NewWriter(io.Discard, &o); err == nil {
			t.Errorf("NewWriter(%+v) accepted", o)
		}
	}
	w, err := NewWriter(io.Discard, &WriterOptions{ChunkSize: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Add(nil); err == nil {
		t.Error("empty chunk accepted")
	}
	if _, err := w.Add(make([]byte, 4097)); err == nil {
		t.Error("oversized chunk accepted")
	}
	if _, err := w.Finish(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Add([]byte{1}); err == nil {
		t.Error("Add after Finish accepted")
	}
	if _, err := w.Finish(nil); err == nil {
		t.Error("second Finish accepted")
	}

	// A failing writer: the error surfaces from Add/Flush/Finish.
	boom := errors.New("boom")
	w, _ = NewWriter(&failWriter{n: 100 << 10, err: boom}, &WriterOptions{Uncompressed: true, ChunkSize: 64 << 10})
	chunks := testChunks(64<<10, 11)
	var got error
	for _, c := range chunks {
		if _, err := w.Add(c); err != nil {
			got = err
			break
		}
	}
	if got == nil {
		got = w.Flush()
	}
	if got == nil {
		_, got = w.Finish(nil)
	}
	if !errors.Is(got, boom) {
		t.Fatalf("error %v, want boom", got)
	}
	w.Close()

	// A failing bootstrap function.
	w, _ = NewWriter(io.Discard, nil)
	w.Add([]byte("x"))
	if _, err := w.Finish(func(*Info) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("bootstrap error %v", err)
	}
	w, _ = NewWriter(io.Discard, nil)
	w.Close()
	if _, err := w.Finish(nil); err == nil {
		t.Error("Finish after Close accepted")
	}
}

type failWriter struct {
	n   int
	err error
}

func (f *failWriter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, f.err
	}
	f.n -= len(p)
	return len(p), nil
}

func TestFlushFillsChunks(t *testing.T) {
	var out bytes.Buffer
	w, _ := NewWriter(&out, &WriterOptions{Compressor: CompressorZstd, ChunkSize: 4096, Workers: 2})
	a, _ := w.Add(bytes.Repeat([]byte("a"), 4096))
	b, _ := w.Add(bytes.Repeat([]byte("b"), 100))
	c, _ := w.Add(bytes.Repeat([]byte("a"), 4096))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if a.Index != 0 || b.Index != 1 || c.Index != 0 || !c.Duplicate || !a.Compressed || b.UncompressedOffset != 4096 || b.CompressedOffset != uint64(a.CompressedSize) {
		t.Fatalf("a %+v b %+v c %+v", a, b, c)
	}
	if _, err := w.Finish(nil); err != nil {
		t.Fatal(err)
	}
}

func TestFormatCodecs(t *testing.T) {
	// V1 bit packing at the limits.
	for _, c := range []ChunkInfo{
		{UncompressedOffset: 0, UncompressedSize: 1, CompressedOffset: 0, CompressedSize: 1},
		{UncompressedOffset: MaxUncompressedOffset - 4096, UncompressedSize: MaxChunkSize, CompressedOffset: MaxCompressedOffset - 1, CompressedSize: MaxChunkSize - 1, Flags: ChunkCompressed},
		{UncompressedOffset: 0x12345000, UncompressedSize: 0xABCDE, CompressedOffset: 0x9876543, CompressedSize: 0xABCDE},
	} {
		var b [ChunkInfoV1Size]byte
		if err := c.EncodeV1(b[:]); err != nil {
			t.Fatal(err)
		}
		if got := DecodeChunkInfoV1(b[:]); got != c {
			t.Errorf("V1 %+v -> %+v", c, got)
		}
		c.Flags |= ChunkHasCRC32
		c.Data = 0xDEADBEEF
		if c.CompressedSize < MaxChunkSize {
			var b2 [ChunkInfoV2Size]byte
			if err := c.EncodeV2(b2[:]); err != nil {
				t.Fatal(err)
			}
			if got := DecodeChunkInfoV2(b2[:]); got != c {
				t.Errorf("V2 %+v -> %+v", c, got)
			}
		}
	}
	var b [ChunkInfoV2Size]byte
	for _, c := range []ChunkInfo{
		{UncompressedOffset: 100, UncompressedSize: 1, CompressedSize: 1},
		{UncompressedSize: 0, CompressedSize: 1},
		{UncompressedSize: 2, CompressedSize: 1},                         // V1: compressed flag missing
		{UncompressedSize: 1, CompressedSize: 1, Flags: ChunkCompressed}, // V1: flag without size difference
		{UncompressedSize: 1, CompressedSize: 1, CompressedOffset: MaxCompressedOffset},
	} {
		if err := c.EncodeV1(b[:]); err == nil {
			t.Errorf("EncodeV1(%+v) accepted", c)
		}
	}
	if err := (&ChunkInfo{UncompressedSize: MaxChunkSize, CompressedSize: MaxChunkSize}).EncodeV2(b[:]); err == nil {
		t.Error("V2 accepted a 16 MiB compressed size")
	}
	// Tar headers: large sizes use GNU base-256.
	var h [TarHeaderSize]byte
	for _, size := range []uint64{0, 1, maxOctal11, maxOctal11 + 1, 1 << 50} {
		if err := EncodeTarHeader(h[:], SectionData, size); err != nil {
			t.Fatal(err)
		}
		if n, s, err := DecodeTarHeader(h[:]); err != nil || n != SectionData || s != size {
			t.Errorf("tar header %d -> %q %d %v", size, n, s, err)
		}
	}
	h[0] ^= 1
	if _, _, err := DecodeTarHeader(h[:]); err == nil {
		t.Error("bad checksum accepted")
	}
	if err := EncodeTarHeader(h[:], "", 1); err == nil {
		t.Error("empty tar name accepted")
	}
	if err := (&TOCEntry{Name: "seventeen-bytes!!"}).Encode(make([]byte, TOCEntrySize)); err == nil {
		t.Error("long TOC name accepted")
	}
	for c, want := range map[Compressor]string{CompressorNone: "none", CompressorLZ4Block: "lz4_block", CompressorGzip: "gzip", CompressorZstd: "zstd", 7: "compressor(7)"} {
		if c.String() != want {
			t.Errorf("%d.String() = %s", c, c.String())
		}
	}
	if DigesterBlake3.String() != "blake3" || DigesterSHA256.String() != "sha256" || Digester(3).String() != "digester(3)" {
		t.Error("Digester.String")
	}
	if _, err := TOCFlags(3).Compressor(); err == nil {
		t.Error("TOC flags 3 accepted")
	}
	_ = binary.LittleEndian
}

// TestBackpressure checks that a stalled output stops Add after a bounded
// number of chunks (memory stays flat) and that everything flows once the
// output drains.
func TestBackpressure(t *testing.T) {
	pr, pw := io.Pipe()
	const size = 64 << 10
	w, err := NewWriter(pw, &WriterOptions{Uncompressed: true, ChunkSize: size, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	added := make(chan int, 1000)
	go func() {
		buf := make([]byte, size)
		for i := range 200 {
			binary.LittleEndian.PutUint64(buf, uint64(i)) // all distinct
			if _, err := w.Add(buf); err != nil {
				t.Error(err)
				break
			}
			added <- i
		}
		close(added)
	}()
	// Nobody reads the pipe: the first write blocks the ordered stage.
	// Adds then stop once every in-flight slot is taken.
	n := 0
	for stalled := false; !stalled; {
		select {
		case _, ok := <-added:
			if !ok {
				t.Fatal("all chunks accepted with a stalled output")
			}
			n++
		case <-time.After(300 * time.Millisecond):
			stalled = true
		}
	}
	t.Logf("%d chunks accepted before the stall", n)
	// 256 KiB of bufio buffer (4 chunks) + the in-flight jobs (2×2+2).
	if n > 4+6+2 {
		t.Errorf("%d chunks accepted with a stalled output", n)
	}
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(pr)
		done <- b
	}()
	for range added {
	}
	if _, err := w.Finish(nil); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	data := <-done
	r, err := Open(bytes.NewReader(data), int64(len(data)))
	if err != nil || r.ChunkCount() != 200 {
		t.Fatalf("%d chunks, %v", r.ChunkCount(), err)
	}
}

// TestTarHeadersStdlib checks that Go's archive/tar (which
// nydus-snapshotter uses to seek sections) reads every section header of
// a written blob, walking from the end.
func TestTarHeadersStdlib(t *testing.T) {
	data, _ := smallBlob(t, false)
	var names []string
	for end := int64(len(data)); end > 0; {
		hdr, err := tar.NewReader(bytes.NewReader(data[end-TarHeaderSize : end])).Next()
		if err != nil {
			t.Fatalf("archive/tar at %d: %v", end-TarHeaderSize, err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Format != tar.FormatGNU || hdr.Mode != 0 || !hdr.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("header %q: type %c format %v mode %o mtime %v", hdr.Name, hdr.Typeflag, hdr.Format, hdr.Mode, hdr.ModTime)
		}
		names = append(names, hdr.Name)
		end -= TarHeaderSize + hdr.Size
	}
	want := []string{SectionTOC, SectionBootstrap, SectionDigest, SectionMeta, SectionData}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Fatalf("sections %v, want %v", names, want)
	}
}
