package snapshottertest

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/containerd/nydus-snapshotter/pkg/converter"
	"github.com/containerd/nydus-snapshotter/pkg/layout"
	"github.com/klauspost/compress/zstd"
	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/rafs"
)

// readerAt is a content.ReaderAt (containerd) over a byte slice.
type readerAt struct{ *bytes.Reader }

func (r readerAt) Close() error { return nil }

func newReaderAt(b []byte) readerAt { return readerAt{bytes.NewReader(b)} }

// unpack runs nydus-snapshotter's converter.UnpackEntry on blob b.
func unpack(b []byte, name string) ([]byte, *converter.TOCEntry, error) {
	var out bytes.Buffer
	e, err := converter.UnpackEntry(newReaderAt(b), name, &out)
	return out.Bytes(), e, err
}

// mustUnpack is unpack that fails the test on error.
func mustUnpack(t *testing.T, b []byte, name string) ([]byte, *converter.TOCEntry) {
	t.Helper()
	data, e, err := unpack(b, name)
	if err != nil {
		t.Fatalf("converter.UnpackEntry(%q): %v", name, err)
	}
	return data, e
}

func TestSectionNamesAndFlags(t *testing.T) {
	// The names and TOC compression flags both sides use must agree.
	for _, c := range []struct{ theirs, ours string }{
		{converter.EntryBlob, blob.SectionData},
		{converter.EntryBootstrap, blob.SectionBootstrap},
		{converter.EntryBlobMeta, blob.SectionMeta},
		{converter.EntryBlobMetaHeader, blob.SectionMetaHeader},
		{converter.EntryTOC, blob.SectionTOC},
	} {
		if c.theirs != c.ours {
			t.Errorf("section name: nydus-snapshotter %q, blob %q", c.theirs, c.ours)
		}
	}
	for _, c := range []struct {
		theirs uint32
		ours   blob.TOCFlags
	}{
		{converter.CompressorNone, blob.TOCCompressionNone},
		{converter.CompressorZstd, blob.TOCCompressionZstd},
		{converter.CompressorLz4Block, blob.TOCCompressionLZ4Block},
	} {
		if c.theirs != uint32(c.ours) {
			t.Errorf("TOC flag: nydus-snapshotter %#x, blob %#x", c.theirs, uint32(c.ours))
		}
	}
}

func TestUnpackEntry(t *testing.T) {
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			l := buildLayer(t, cfg)
			checkLayer(t, l)
		})
	}
}

// checkLayer reads every section of l's blob with nydus-snapshotter's
// UnpackEntry and compares it with what was written and with blob.Reader.
func checkLayer(t *testing.T, l *layer) {
	b := l.blob
	if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != l.info.ID || int64(len(b)) != l.info.Size {
		t.Fatalf("blob id/size: Info %s/%d, blob sha256 %x/%d", l.info.ID, l.info.Size, sum, len(b))
	}
	r, err := blob.Open(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("blob.Open: %v", err)
	}
	ours := r.TOC()
	wantNames := []string{blob.SectionData, blob.SectionMeta, blob.SectionMetaHeader, blob.SectionDigest, blob.SectionBootstrap}
	if l.cfg.noData {
		wantNames = []string{blob.SectionBootstrap}
	}
	if len(ours) != len(wantNames) {
		t.Fatalf("our TOC has %d entries, want %v", len(ours), wantNames)
	}

	// 1. Every TOC entry, through the TOC path of UnpackEntry: the entry
	// it returns must equal ours field by field, and the bytes it writes
	// must be the decoded section (what blob.Reader.Section returns) with
	// the entry's size and SHA-256.
	extracted := map[string][]byte{}
	for i, e := range ours {
		if e.Name != wantNames[i] {
			t.Errorf("our TOC entry %d is %q, want %q", i, e.Name, wantNames[i])
		}
		data, te := mustUnpack(t, b, e.Name)
		if te == nil {
			t.Fatalf("%s: UnpackEntry found it by tar header, not by TOC", e.Name)
		}
		compareTOCEntry(t, te, &e)
		if c, err := te.GetCompressor(); err != nil {
			t.Errorf("%s: GetCompressor: %v", e.Name, err)
		} else if c != converter.CompressorNone && c != converter.CompressorZstd {
			t.Errorf("%s: compressor %#x: UnpackEntry decodes only none and zstd", e.Name, c)
		}
		// image.blob is special (rafs-format §3.7): flags none, yet its
		// uncompressed size is the blob's uncompressed address space, and
		// its digest also covers its tar header. UnpackEntry copies the
		// compressed size; that case is checked below.
		if e.Name != blob.SectionData {
			if uint64(len(data)) != te.GetUncompressedSize() {
				t.Errorf("%s: UnpackEntry wrote %d bytes, entry says %d", e.Name, len(data), te.GetUncompressedSize())
			}
			if got := fmt.Sprintf("%x", sha256.Sum256(data)); got != te.GetUncompressedDigest() {
				t.Errorf("%s: sha256 of extracted bytes %s, entry digest %s", e.Name, got, te.GetUncompressedDigest())
			}
		}
		want, err := r.Section(e.Name)
		if err != nil {
			t.Fatalf("blob.Reader.Section(%q): %v", e.Name, err)
		}
		if !bytes.Equal(data, want) {
			t.Errorf("%s: UnpackEntry bytes (%d) differ from blob.Reader.Section (%d)", e.Name, len(data), len(want))
		}
		extracted[e.Name] = data
	}

	// 2. image.boot: byte-for-byte the bootstrap we inlined, a RAFS v6
	// bootstrap for nydus-snapshotter's layout package, block aligned (as
	// its filesystem package requires before mounting), and parsed by
	// rafs.Read into the tree we built.
	boot := extracted[blob.SectionBootstrap]
	if !bytes.Equal(boot, l.bootstrap) {
		t.Fatalf("image.boot: extracted %d bytes differ from the %d-byte bootstrap we inlined", len(boot), len(l.bootstrap))
	}
	head := boot[:min(len(boot), layout.MaxSuperBlockSize)]
	if v, err := layout.DetectFsVersion(head); err != nil || v != layout.RafsV6 {
		t.Errorf("layout.DetectFsVersion = %q, %v; want %q", v, err, layout.RafsV6)
	}
	if len(boot)%4096 != 0 || boot[layout.RafsV6SuperBlockOffset+12] != 12 {
		t.Errorf("bootstrap size %d, blkszbits %d: nydus-snapshotter wants 4096-byte blocks and a multiple of them",
			len(boot), boot[layout.RafsV6SuperBlockOffset+12])
	}
	got, err := rafs.Read(bytes.NewReader(boot), int64(len(boot)))
	if err != nil {
		t.Fatalf("rafs.Read(extracted image.boot): %v", err)
	}
	if a, w := treeListing(t, got), treeListing(t, l.model); a != w {
		t.Errorf("tree read back differs:\n got:\n%s\nwant:\n%s", a, w)
	}
	if fmt.Sprint(got.Blobs) != fmt.Sprint(l.model.Blobs) || got.ChunkSize != l.model.ChunkSize {
		t.Errorf("blob table read back %+v (chunk size %d), wrote %+v (%d)", got.Blobs, got.ChunkSize, l.model.Blobs, l.model.ChunkSize)
	}
	if got.Flags&^rafs.FlagHasXattr != l.model.Flags {
		t.Errorf("flags read back %#x, wrote %#x", got.Flags, l.model.Flags)
	}

	// 3. The TOC itself is not an entry of the TOC, so UnpackEntry falls
	// back to walking tar headers: it must find the 128-byte entries, and
	// nydus-snapshotter's TOCEntry (binary.Read, little endian) must decode
	// them as blob.DecodeTOCEntry does.
	toc, te := mustUnpack(t, b, blob.SectionTOC)
	if te != nil {
		t.Errorf("rafs.blob.toc: UnpackEntry returned a TOC entry %+v", te)
	}
	tocStart := len(b) - int(l.info.TOCSize)
	if !bytes.Equal(toc, b[tocStart:len(b)-blob.TarHeaderSize]) {
		t.Fatalf("rafs.blob.toc: extracted %d bytes, want the %d entry bytes at %d", len(toc), int(l.info.TOCSize)-blob.TarHeaderSize, tocStart)
	}
	if d := sha256.Sum256(b[tocStart:]); d != l.info.TOCDigest {
		t.Errorf("TOC digest: Info %x, sha256(entries ‖ header) %x", l.info.TOCDigest, d)
	}
	for i := 0; i < len(toc)/blob.TOCEntrySize; i++ {
		raw := toc[i*blob.TOCEntrySize : (i+1)*blob.TOCEntrySize]
		var e converter.TOCEntry
		if err := binary.Read(bytes.NewReader(raw), binary.LittleEndian, &e); err != nil {
			t.Fatalf("TOC entry %d: %v", i, err)
		}
		ourEntry := blob.DecodeTOCEntry(raw)
		compareTOCEntry(t, &e, &ourEntry)
		if !bytes.Equal(raw[binary.Size(e):], make([]byte, blob.TOCEntrySize-binary.Size(e))) {
			t.Errorf("TOC entry %d: bytes %d..127 (not read by nydus-snapshotter) are not zero: %x", i, binary.Size(e), raw[binary.Size(e):])
		}
	}

	// A name the blob does not have is ErrNotFound (the snapshotter's
	// Unpack and Merge rely on that for layers without data).
	if _, _, err := unpack(b, "no.such.entry"); !errors.Is(err, converter.ErrNotFound) {
		t.Errorf("unknown entry: err %v, want ErrNotFound", err)
	}

	if l.cfg.noData {
		if l.info.ChunkCount != 0 || len(l.model.Blobs) != 0 {
			t.Errorf("no-data layer: %d chunks, %d blob entries", l.info.ChunkCount, len(l.model.Blobs))
		}
		for _, name := range []string{blob.SectionData, blob.SectionMeta, blob.SectionMetaHeader, blob.SectionDigest} {
			if _, _, err := unpack(b, name); !errors.Is(err, converter.ErrNotFound) {
				t.Errorf("no-data layer, %s: err %v, want ErrNotFound", name, err)
			}
		}
		return
	}
	checkDataSections(t, l, r, extracted)
}

// checkDataSections checks image.blob, blob.meta, blob.meta.header and
// blob.digest as extracted by UnpackEntry against blob.Reader's view and
// the writer's Info.
func checkDataSections(t *testing.T, l *layer, r *blob.Reader, extracted map[string][]byte) {
	b, info := l.blob, l.info

	// image.blob: the chunk data at offset 0, what the snapshotter's
	// Unpack hands nydus-image as the blob file; its TOC digest covers
	// the data and the image.blob tar header.
	data := extracted[blob.SectionData]
	if uint64(len(data)) != info.DataSize || !bytes.Equal(data, b[:info.DataSize]) {
		t.Errorf("image.blob: extracted %d bytes, want the %d data bytes at 0", len(data), info.DataSize)
	}
	_, te := mustUnpack(t, b, blob.SectionData)
	if name, size, err := blob.DecodeTarHeader(b[info.DataSize : info.DataSize+blob.TarHeaderSize]); err != nil || name != blob.SectionData || size != info.DataSize {
		t.Errorf("image.blob tar header: %q %d %v", name, size, err)
	}
	if d := fmt.Sprintf("%x", sha256.Sum256(b[:info.DataSize+blob.TarHeaderSize])); d != te.GetUncompressedDigest() {
		t.Errorf("image.blob digest %s, want sha256(data ‖ header) %s", te.GetUncompressedDigest(), d)
	}
	if te.GetUncompressedSize() != info.UncompressedSize || te.GetCompressedOffset() != 0 || te.GetCompressedSize() != info.DataSize {
		t.Errorf("image.blob entry %d+%d (%d uncompressed), want 0+%d (%d)", te.GetCompressedOffset(), te.GetCompressedSize(),
			te.GetUncompressedSize(), info.DataSize, info.UncompressedSize)
	}
	cis := r.ChunkInfos()
	if len(cis) != int(info.ChunkCount) || info.ChunkCount == 0 || int(info.ChunkCount) >= l.nchunks {
		t.Errorf("%d CI entries, Info %d, %d chunks added (some are duplicates)", len(cis), info.ChunkCount, l.nchunks)
	}
	buf := make([]byte, l.cfg.chunkSize)
	var raw, compressed int
	for i, ci := range cis {
		if ci.CompressedOffset+uint64(ci.CompressedSize) > uint64(len(data)) {
			t.Errorf("chunk %d at %d+%d is outside the extracted image.blob (%d)", i, ci.CompressedOffset, ci.CompressedSize, len(data))
		}
		if _, err := r.ReadChunk(i, buf); err != nil {
			t.Errorf("ReadChunk(%d): %v", i, err)
		}
		if ci.Compressed() {
			compressed++
		} else {
			raw++
		}
	}
	if l.cfg.compressor != blob.CompressorNone && (raw == 0 || compressed == 0) {
		t.Errorf("%s: %d raw and %d compressed chunks; the layer should have both", l.cfg.compressor, raw, compressed)
	}
	// Every file's chunks, read from the blob, give back its contents.
	if err := l.model.Walk(func(path string, n *rafs.Node) error {
		if n.Link != nil || !n.IsRegular() {
			return nil
		}
		var got []byte
		for _, c := range n.Chunks {
			d, err := r.ReadChunk(int(c.Index), nil)
			if err != nil {
				return err
			}
			got = append(got, d...)
		}
		if !bytes.Equal(got, l.files[path[1:]]) {
			return fmt.Errorf("%s: chunks give %d bytes, file has %d", path, len(got), len(l.files[path[1:]]))
		}
		return nil
	}); err != nil {
		t.Error(err)
	}

	// blob.meta: the decoded CI array; its entries are blob.ChunkInfos.
	meta := extracted[blob.SectionMeta]
	esize := blob.ChunkInfoV1Size
	if l.cfg.ciV2 {
		esize = blob.ChunkInfoV2Size
	}
	if uint64(len(meta)) != info.CIUncompressedSize || len(meta) != esize*int(info.ChunkCount) {
		t.Fatalf("blob.meta: %d bytes, want %d × %d (Info %d)", len(meta), info.ChunkCount, esize, info.CIUncompressedSize)
	}
	for i := range cis {
		var ci blob.ChunkInfo
		if l.cfg.ciV2 {
			ci = blob.DecodeChunkInfoV2(meta[i*esize:])
		} else {
			ci = blob.DecodeChunkInfoV1(meta[i*esize:])
		}
		if ci != cis[i] {
			t.Errorf("CI %d: extracted %+v, blob.Reader %+v", i, ci, cis[i])
		}
	}
	_, te = mustUnpack(t, b, blob.SectionMeta)
	wantFlags := converter.CompressorNone
	if info.CICompressor == blob.CompressorZstd {
		wantFlags = converter.CompressorZstd
	} else if info.CICompressor != blob.CompressorNone {
		t.Errorf("CI compressor %s: UnpackEntry cannot decode it", info.CICompressor)
	}
	if te.Flags != wantFlags || te.GetCompressedOffset() != info.CIOffset || te.GetCompressedSize() != info.CICompressedSize {
		t.Errorf("blob.meta entry flags %#x at %d+%d, want %#x at %d+%d", te.Flags, te.GetCompressedOffset(), te.GetCompressedSize(),
			wantFlags, info.CIOffset, info.CICompressedSize)
	}

	// blob.meta.header: the 4096-byte CI header right after the stored CI.
	hb := extracted[blob.SectionMetaHeader]
	h, err := blob.DecodeCIHeader(hb)
	if err != nil {
		t.Fatalf("extracted blob.meta.header: %v", err)
	}
	rh, _ := r.CIHeader()
	want := blob.CIHeader{
		Features: info.Features, CICompressor: info.CICompressor, CIEntries: info.ChunkCount,
		CIOffset: info.CIOffset, CICompressedSize: info.CICompressedSize, CIUncompressedSize: info.CIUncompressedSize,
	}
	if h != want || rh != want {
		t.Errorf("CI header: extracted %+v, blob.Reader %+v, Info %+v", h, rh, want)
	}
	if off := info.CIOffset + info.CICompressedSize; !bytes.Equal(hb, b[off:off+blob.CIHeaderSize]) {
		t.Errorf("blob.meta.header is not the 4096 bytes at %d", off)
	}
	// nydus-snapshotter's Merge assembles the nydusd blob-meta cache file
	// from these two entries: CI ‖ zero pad to 4 KiB ‖ header.
	cache := append(append(append([]byte(nil), meta...), make([]byte, (len(meta)+4095)&^4095-len(meta))...), hb...)
	if len(cache)%4096 != 0 || binary.LittleEndian.Uint32(cache[len(cache)-4096:]) != blob.CIHeaderMagic {
		t.Errorf("assembled blob.meta cache file: %d bytes", len(cache))
	}

	// blob.digest: the chunk digests in CI order, as blob.Reader and the
	// bootstrap's chunks have them.
	dg := extracted[blob.SectionDigest]
	if len(dg) != blob.DigestSize*int(info.ChunkCount) {
		t.Fatalf("blob.digest: %d bytes for %d chunks", len(dg), info.ChunkCount)
	}
	for i := range cis {
		d, ok := r.ChunkDigest(i)
		if !ok || !bytes.Equal(dg[i*blob.DigestSize:(i+1)*blob.DigestSize], d[:]) {
			t.Errorf("chunk %d digest: extracted %x, blob.Reader %x", i, dg[i*blob.DigestSize:(i+1)*blob.DigestSize], d)
		}
	}
	if err := l.model.Walk(func(path string, n *rafs.Node) error {
		for _, c := range n.Chunks {
			if !bytes.Equal(dg[int(c.Index)*blob.DigestSize:int(c.Index+1)*blob.DigestSize], c.Digest[:]) {
				return fmt.Errorf("%s: chunk %d digest %x is not blob.digest[%d]", path, c.FileOffset, c.Digest, c.Index)
			}
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// compareTOCEntry compares nydus-snapshotter's decoding of a TOC entry
// with ours.
func compareTOCEntry(t *testing.T, theirs *converter.TOCEntry, ours *blob.TOCEntry) {
	t.Helper()
	if theirs.GetName() != ours.Name || theirs.Flags != uint32(ours.Flags) ||
		theirs.UncompressedDigest != ours.Digest ||
		theirs.GetCompressedOffset() != ours.CompressedOffset ||
		theirs.GetCompressedSize() != ours.CompressedSize ||
		theirs.GetUncompressedSize() != ours.UncompressedSize {
		t.Errorf("TOC entry: nydus-snapshotter %s flags %#x %s %d+%d (%d); blob %s flags %#x %x %d+%d (%d)",
			theirs.GetName(), theirs.Flags, theirs.GetUncompressedDigest(), theirs.CompressedOffset, theirs.CompressedSize, theirs.UncompressedSize,
			ours.Name, uint32(ours.Flags), ours.Digest, ours.CompressedOffset, ours.CompressedSize, ours.UncompressedSize)
	}
	if theirs.Reserved1 != 0 || theirs.Reserved2 != [len(theirs.Reserved2)]byte{} {
		t.Errorf("TOC entry %s: reserved fields not zero: %#x %x", ours.Name, theirs.Reserved1, theirs.Reserved2)
	}
	want, err := ours.Flags.Compressor()
	if err != nil {
		t.Errorf("TOC entry %s: %v", ours.Name, err)
	}
	if c, err := theirs.GetCompressor(); err != nil {
		t.Errorf("TOC entry %s: GetCompressor: %v", ours.Name, err)
	} else if map[uint32]blob.Compressor{converter.CompressorNone: blob.CompressorNone, converter.CompressorZstd: blob.CompressorZstd,
		converter.CompressorLz4Block: blob.CompressorLZ4Block}[c] != want {
		t.Errorf("TOC entry %s: compressor %#x, ours %s", ours.Name, c, want)
	}
}

// TestTarHeaderFallback removes the TOC from our blobs so that UnpackEntry
// finds every section by walking the tar headers backwards (its path for
// blobs without a TOC), and compares what it finds with blob.Reader's
// sections. It also checks the legacy layout (no TOC, raw bootstrap).
func TestTarHeaderFallback(t *testing.T) {
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			l := buildLayer(t, cfg)
			full, err := blob.Open(bytes.NewReader(l.blob), int64(len(l.blob)))
			if err != nil {
				t.Fatal(err)
			}
			noTOC := l.blob[:len(l.blob)-int(l.info.TOCSize)]
			r, err := blob.Open(bytes.NewReader(noTOC), int64(len(noTOC)))
			if err != nil {
				t.Fatalf("blob.Open without TOC: %v", err)
			}
			if _, _, err := unpack(noTOC, blob.SectionTOC); !errors.Is(err, converter.ErrNotFound) {
				t.Errorf("rafs.blob.toc in a blob without TOC: err %v, want ErrNotFound", err)
			}
			// Through tar headers UnpackEntry returns a section's stored
			// bytes: for blob.meta the stored CI and the CI header.
			names := map[string]bool{}
			for _, s := range r.Sections() {
				if s.Name == blob.SectionMetaHeader {
					continue // inside blob.meta's tar section, not one of its own
				}
				names[s.Name] = true
				data, te := mustUnpack(t, noTOC, s.Name)
				if te != nil {
					t.Errorf("%s: UnpackEntry returned a TOC entry without a TOC", s.Name)
				}
				fs, ok := full.Lookup(s.Name)
				if !ok {
					t.Fatalf("%s: not in the blob with TOC", s.Name)
				}
				start, end := fs.Offset, fs.Offset+fs.Size
				if s.Name == blob.SectionMeta {
					end += blob.CIHeaderSize
				}
				if !bytes.Equal(data, noTOC[start:end]) {
					t.Errorf("%s: tar-header walk found %d bytes, want the %d stored bytes at %d", s.Name, len(data), end-start, start)
				}
				// blob.Reader models blob.meta as the stored CI only (as
				// the TOC does), the CI header as a section of its own.
				if s.Offset != fs.Offset || s.Size != fs.Size {
					t.Errorf("%s: blob.Reader without TOC says %d+%d, with TOC %d+%d", s.Name, s.Offset, s.Size, fs.Offset, fs.Size)
				}
			}
			want := map[string]bool{blob.SectionBootstrap: true}
			if !cfg.noData {
				want = map[string]bool{blob.SectionData: true, blob.SectionMeta: true, blob.SectionDigest: true, blob.SectionBootstrap: true}
			}
			if fmt.Sprint(names) != fmt.Sprint(want) {
				t.Errorf("sections without TOC: %v, want %v", names, want)
			}
			// The stored bootstrap is zstd (or raw) as the TOC entry says.
			stored, _ := mustUnpack(t, noTOC, blob.SectionBootstrap)
			bs, _ := full.Lookup(blob.SectionBootstrap)
			if bs.Compressor == blob.CompressorZstd {
				dec, err := zstd.NewReader(nil)
				if err != nil {
					t.Fatal(err)
				}
				defer dec.Close()
				if stored, err = dec.DecodeAll(stored, nil); err != nil {
					t.Fatalf("zstd image.boot: %v", err)
				}
			}
			if !bytes.Equal(stored, l.bootstrap) {
				t.Error("image.boot found through tar headers does not decode to our bootstrap")
			}

			// Legacy layout (--blob-inline-meta without blob-toc): the
			// same sections, raw bootstrap, no TOC.
			legacy := append([]byte(nil), l.blob[:bs.Offset]...)
			legacy = append(legacy, l.bootstrap...)
			var hdr [blob.TarHeaderSize]byte
			if err := blob.EncodeTarHeader(hdr[:], blob.SectionBootstrap, uint64(len(l.bootstrap))); err != nil {
				t.Fatal(err)
			}
			legacy = append(legacy, hdr[:]...)
			got, _ := mustUnpack(t, legacy, blob.SectionBootstrap)
			if !bytes.Equal(got, l.bootstrap) {
				t.Error("legacy layout: UnpackEntry does not return our bootstrap")
			}
			lr, err := blob.Open(bytes.NewReader(legacy), int64(len(legacy)))
			if err != nil {
				t.Fatalf("blob.Open legacy: %v", err)
			}
			ours, err := lr.Bootstrap()
			if err != nil || !bytes.Equal(ours, l.bootstrap) {
				t.Errorf("legacy layout: blob.Reader.Bootstrap: %d bytes, %v", len(ours), err)
			}
			if !cfg.noData {
				data, _ := mustUnpack(t, legacy, blob.SectionData)
				if !bytes.Equal(data, l.blob[:l.info.DataSize]) {
					t.Error("legacy layout: image.blob differs")
				}
			}
		})
	}
}

// TestTarHeadersParse checks that Go's archive/tar, which
// nydus-snapshotter's tar-header walk uses, reads every tar header of our
// blobs as a GNU-format regular file with the section's name and size, and
// that a corrupted header makes UnpackEntry fail.
func TestTarHeadersParse(t *testing.T) {
	for _, cfg := range configs {
		t.Run(cfg.name, func(t *testing.T) {
			l := buildLayer(t, cfg)
			r, err := blob.Open(bytes.NewReader(l.blob), int64(len(l.blob)))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			check := func(name string, start, end int64) {
				hb := l.blob[end : end+blob.TarHeaderSize]
				h, err := tar.NewReader(bytes.NewReader(hb)).Next()
				if err != nil {
					t.Fatalf("%s: archive/tar: %v", name, err)
				}
				if h.Name != name || h.Size != end-start || h.Typeflag != tar.TypeReg || h.Format != tar.FormatGNU {
					t.Errorf("%s: archive/tar reads name %q size %d type %q format %v; want size %d, regular, GNU",
						name, h.Name, h.Size, h.Typeflag, h.Format, end-start)
				}
				names = append(names, name)
			}
			for _, s := range r.Sections() {
				switch s.Name {
				case blob.SectionMetaHeader:
					continue // inside blob.meta's tar section
				case blob.SectionMeta:
					check(s.Name, s.Offset, s.Offset+s.Size+blob.CIHeaderSize)
				default:
					check(s.Name, s.Offset, s.Offset+s.Size)
				}
			}
			check(blob.SectionTOC, int64(len(l.blob))-int64(l.info.TOCSize), int64(len(l.blob))-blob.TarHeaderSize)
			want := "[image.blob blob.meta blob.digest image.boot rafs.blob.toc]"
			if cfg.noData {
				want = "[image.boot rafs.blob.toc]"
			}
			if fmt.Sprint(names) != want {
				t.Errorf("tar-headed sections %v, want %s", names, want)
			}

			// A bad checksum in the last header (rafs.blob.toc's) or in
			// image.boot's must make nydus-snapshotter's walk fail.
			bad := append([]byte(nil), l.blob...)
			bad[len(bad)-blob.TarHeaderSize+148]++
			if _, _, err := unpack(bad, blob.SectionBootstrap); err == nil {
				t.Error("UnpackEntry accepted a blob whose TOC tar header has a bad checksum")
			}
			bs, _ := r.Lookup(blob.SectionBootstrap)
			bad = append([]byte(nil), l.blob[:len(l.blob)-int(l.info.TOCSize)]...)
			bad[bs.Offset+bs.Size+148]++
			if _, _, err := unpack(bad, blob.SectionBootstrap); err == nil {
				t.Error("UnpackEntry accepted a blob whose image.boot tar header has a bad checksum")
			}
		})
	}
}
