package convert_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

// nydusLayer is a converted layer held in memory.
type nydusLayer struct {
	blob []byte
	res  *convert.NydusResult
}

func toNydus(t testing.TB, tarData []byte, opts *convert.NydusOptions) *nydusLayer {
	t.Helper()
	var buf bytes.Buffer
	res, err := convert.TarToNydus(bytes.NewReader(tarData), &buf, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &nydusLayer{blob: buf.Bytes(), res: res}
}

// layerBootstrap reads the layer's inline bootstrap with the real blob id.
func (l *nydusLayer) layerBootstrap(t testing.TB) *rafs.Bootstrap {
	t.Helper()
	b, id, err := convert.ReadNydusLayer(bytes.NewReader(l.blob), int64(len(l.blob)))
	if err != nil {
		t.Fatal(err)
	}
	if id != l.res.Blob.ID {
		t.Fatalf("ReadNydusLayer id %s, TarToNydus said %s", id, l.res.Blob.ID)
	}
	return b
}

// openBlobs opens the blobs a bootstrap needs from the given layers (and
// dictionaries), matched by id.
func openBlobs(t testing.TB, boot *rafs.Bootstrap, layers ...*nydusLayer) []*blob.Reader {
	t.Helper()
	brs, err := convert.OpenNydusBlobs(boot, len(layers), func(i int) (io.ReaderAt, int64, error) {
		return bytes.NewReader(layers[i].blob), int64(len(layers[i].blob)), nil
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	return brs
}

// unpackTree unpacks a bootstrap to a tar and returns the oracle's view of
// that tar.
func unpackTree(t testing.TB, boot *rafs.Bootstrap, layers ...*nydusLayer) (*fstree.Tree, []byte) {
	t.Helper()
	var out bytes.Buffer
	if _, err := convert.UnpackNydus(boot, openBlobs(t, boot, layers...), &out); err != nil {
		t.Fatal(err)
	}
	tree, err := fstree.FromTar(bytes.NewReader(out.Bytes()), fstree.TarOptions{Whiteouts: fstree.WhiteoutKeep})
	if err != nil {
		t.Fatalf("unpacked tar: %v", err)
	}
	return tree, out.Bytes()
}

func oracle(t testing.TB, tarData []byte, wh fstree.Whiteouts) *fstree.Tree {
	t.Helper()
	want, err := fstree.FromTar(bytes.NewReader(tarData), fstree.TarOptions{Whiteouts: wh})
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func reportDiffs(t testing.TB, who string, diffs []string) {
	t.Helper()
	if len(diffs) > 20 {
		diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
	}
	for _, d := range diffs {
		t.Errorf("%s: %s", who, d)
	}
}

// TestNydusRoundTripGolden converts every golden tar and unpacks the layer
// again: the unpacked tar must describe the same tree.
func TestNydusRoundTripGolden(t *testing.T) {
	for _, c := range tartest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			l := toNydus(t, c.Tar, nil)
			want := oracle(t, c.Tar, fstree.WhiteoutKeep)
			got, _ := unpackTree(t, l.layerBootstrap(t), l)
			reportDiffs(t, "unpacked", fstree.Compare(want, got))
			// The bootstrap TarToNydus returns is the inline one with
			// the real id.
			b := l.layerBootstrap(t)
			x, _ := b.MarshalBinary()
			y, _ := l.res.Bootstrap.MarshalBinary()
			if !bytes.Equal(x, y) {
				t.Error("NydusResult.Bootstrap differs from the inline bootstrap with the real id")
			}
		})
	}
}

// TestNydusInlineBootstrap checks the inline bootstrap's blob table: the
// placeholder id, and the fields of the blob's Info.
func TestNydusInlineBootstrap(t *testing.T) {
	c, _ := tartest.Find("sizes")
	l := toNydus(t, c.Tar, nil)
	br, err := blob.Open(bytes.NewReader(l.blob), int64(len(l.blob)))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := br.Bootstrap()
	if err != nil {
		t.Fatal(err)
	}
	b, err := rafs.Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	info := l.res.Blob
	if len(b.Blobs) != 1 {
		t.Fatalf("%d blobs in the layer bootstrap", len(b.Blobs))
	}
	bi := b.Blobs[0]
	if bi.ID != convert.PlaceholderBlobID || bi.TOCSize != 0 || bi.TOCDigest != [32]byte{} {
		t.Errorf("inline blob entry: id %q TOC %d %x, want the placeholder and no TOC", bi.ID, bi.TOCSize, bi.TOCDigest[:4])
	}
	if bi.ChunkCount != info.ChunkCount || bi.CompressedSize != info.CompressedSize ||
		bi.UncompressedSize != info.UncompressedSize || bi.Features != 0x70000023 ||
		bi.Compressor != blob.CompressorZstd || bi.Digester != blob.DigesterBlake3 {
		t.Errorf("inline blob entry %+v does not match the blob's info %+v", bi, info)
	}
	want := rafs.FlagCompressionZstd | rafs.FlagHashBlake3 | rafs.FlagExplicitUIDGID | rafs.FlagInlinedChunkDigest | rafs.FlagEncryptionNone
	if b.Flags&^rafs.FlagHasXattr != want {
		t.Errorf("flags %#x, want %#x", b.Flags, want)
	}
	if b.ChunkSize != 1<<20 {
		t.Errorf("chunk size %#x", b.ChunkSize)
	}
	if len(l.blob) != int(info.Size) || fmt.Sprintf("%x", sha256Sum(l.blob)) != info.ID {
		t.Errorf("blob info size %d id %s do not match the %d bytes written", info.Size, info.ID, len(l.blob))
	}
	sep := l.res.Bootstrap.Blobs[0]
	if sep.ID != info.ID || sep.TOCSize != info.TOCSize || sep.TOCDigest != info.TOCDigest {
		t.Errorf("separate bootstrap blob entry: id %s TOC %d, want %s %d", sep.ID, sep.TOCSize, info.ID, info.TOCSize)
	}
	if err := br.Verify(); err != nil {
		t.Error(err)
	}
}

// TestNydusOptions round-trips a layer with every compressor, digester and
// a few chunk sizes, and checks the blob and bootstrap say so.
func TestNydusOptions(t *testing.T) {
	c, _ := tartest.Find("compression")
	want := oracle(t, c.Tar, fstree.WhiteoutKeep)
	for _, comp := range []string{"zstd", "lz4_block", "none"} {
		for _, dig := range []string{"blake3", "sha256"} {
			for _, cs := range []int{4096, 64 << 10, 1 << 20, 16 << 20} {
				t.Run(fmt.Sprintf("%s/%s/%d", comp, dig, cs), func(t *testing.T) {
					l := toNydus(t, c.Tar, &convert.NydusOptions{Compressor: comp, Digester: dig, ChunkSize: cs, Workers: 3})
					b := l.layerBootstrap(t)
					if b.ChunkSize != uint32(cs) || b.Blobs[0].Compressor.String() != comp || b.Blobs[0].Digester.String() != dig {
						t.Errorf("bootstrap: chunk size %d, blob %v/%v", b.ChunkSize, b.Blobs[0].Compressor, b.Blobs[0].Digester)
					}
					got, _ := unpackTree(t, b, l)
					reportDiffs(t, "unpacked", fstree.Compare(want, got))
				})
			}
		}
	}
	for _, o := range []convert.NydusOptions{{Compressor: "gzip"}, {Digester: "md5"}, {ChunkSize: 1000}, {ChunkSize: 32 << 20}} {
		if _, err := convert.TarToNydus(bytes.NewReader(c.Tar), io.Discard, &o); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

// TestNydusDeterministic builds the same layer with different worker counts
// and input compressions: the blobs must be identical.
func TestNydusDeterministic(t *testing.T) {
	var data []byte
	for _, name := range []string{"compression", "sizes", "hardlinks"} {
		c, _ := tartest.Find(name)
		data = c.Tar // the last one is used below; all are built twice
		a := toNydus(t, c.Tar, &convert.NydusOptions{Workers: 1, ChunkSize: 64 << 10})
		b := toNydus(t, c.Tar, &convert.NydusOptions{Workers: 5, ChunkSize: 64 << 10})
		if !bytes.Equal(a.blob, b.blob) {
			t.Errorf("%s: 1 and 5 workers give different blobs", name)
		}
	}
	c, _ := tartest.Find("sizes")
	data = c.Tar
	plain := toNydus(t, data, nil)
	zw, _ := zstd.NewWriter(nil)
	for name, in := range map[string][]byte{"gzip": tartest.Gzip(data), "zstd": zw.EncodeAll(data, nil)} {
		l := toNydus(t, in, nil)
		if !bytes.Equal(l.blob, plain.blob) {
			t.Errorf("%s input gives another blob than the plain tar", name)
		}
	}
}

// TestNydusDedupAndHardlinks: identical chunks are stored once, and hard
// links share their target's chunks.
func TestNydusDedupAndHardlinks(t *testing.T) {
	big := tartest.Content("big", 3<<20+5)
	data := makeTar(t,
		tarEntry{hdr: tar.Header{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644}, data: string(big)},
		tarEntry{hdr: tar.Header{Name: "b", Typeflag: tar.TypeReg, Mode: 0o600}, data: string(big)},
		tarEntry{hdr: tar.Header{Name: "d/link", Typeflag: tar.TypeLink, Linkname: "a"}},
		tarEntry{hdr: tar.Header{Name: "empty", Typeflag: tar.TypeReg, Mode: 0o644}},
	)
	l := toNydus(t, data, nil)
	if l.res.Blob.ChunkCount != 4 || l.res.Chunks != 8 || l.res.Files != 3 || l.res.FileBytes != 2*uint64(len(big)) {
		t.Errorf("%d unique chunks, %d chunks, %d files, %d bytes; want 4, 8, 3, %d",
			l.res.Blob.ChunkCount, l.res.Chunks, l.res.Files, l.res.FileBytes, 2*len(big))
	}
	b := l.layerBootstrap(t)
	link := b.Lookup("d/link")
	if link == nil || link.Link == nil || link.Link != b.Lookup("a") {
		t.Fatalf("d/link is not a hard link to a: %+v", link)
	}
	if a, bb := b.Lookup("a"), b.Lookup("b"); len(a.Chunks) != 4 || a.Chunks[3].Index != bb.Chunks[3].Index || a.Mode&0o777 != 0o644 || bb.Mode&0o777 != 0o600 {
		t.Errorf("a and b do not share chunks: %+v %+v", a.Chunks, bb.Chunks)
	}
	got, _ := unpackTree(t, b, l)
	reportDiffs(t, "unpacked", fstree.Compare(oracle(t, data, fstree.WhiteoutKeep), got))
}

// TestNydusMetadataOnly: a layer without file data has no blob in its
// bootstrap, and still carries the bootstrap.
func TestNydusMetadataOnly(t *testing.T) {
	data := makeTar(t,
		tarEntry{hdr: tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o700}},
		tarEntry{hdr: tar.Header{Name: "d/.wh.x", Typeflag: tar.TypeReg, Mode: 0o644}},
		tarEntry{hdr: tar.Header{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "d"}},
	)
	l := toNydus(t, data, nil)
	b := l.layerBootstrap(t)
	if len(b.Blobs) != 0 || l.res.Blob.ChunkCount != 0 {
		t.Errorf("%d blobs, %d chunks", len(b.Blobs), l.res.Blob.ChunkCount)
	}
	got, _ := unpackTree(t, b)
	reportDiffs(t, "unpacked", fstree.Compare(oracle(t, data, fstree.WhiteoutKeep), got))
}

// TestNydusBadCases: every invalid golden tar is an error naming an offset.
func TestNydusBadCases(t *testing.T) {
	for _, c := range tartest.BadCases() {
		t.Run(c.Name, func(t *testing.T) {
			_, err := convert.TarToNydus(bytes.NewReader(c.Tar), io.Discard, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), "offset") {
				t.Errorf("error does not give an offset: %v", err)
			}
		})
	}
}

// TestNydusDroppedXattrs: xattrs outside the Linux namespaces are dropped
// and counted.
func TestNydusDroppedXattrs(t *testing.T) {
	data := makeTar(t, tarEntry{hdr: tar.Header{Name: "f", Typeflag: tar.TypeReg, Mode: 0o644, PAXRecords: map[string]string{
		"SCHILY.xattr.com.apple.quarantine": "q", "SCHILY.xattr.user.kept": "k"}}, data: "x"})
	l := toNydus(t, data, nil)
	if l.res.DroppedXattrs != 1 {
		t.Errorf("dropped %d xattrs, want 1", l.res.DroppedXattrs)
	}
	if x := l.layerBootstrap(t).Lookup("f").Xattrs; len(x) != 1 || string(x["user.kept"]) != "k" {
		t.Errorf("xattrs %q", x)
	}
}

// TestNydusChunkDict builds layer B against layer A's bootstrap as chunk
// dictionary: B's blob stores only the chunks A lacks, and B's tree reads
// back from both blobs.
func TestNydusChunkDict(t *testing.T) {
	shared := tartest.Content("shared", 2<<20+100)
	own := tartest.Content("own", 1<<20+7)
	aTar := makeTar(t, tarEntry{hdr: tar.Header{Name: "lib/shared.so", Typeflag: tar.TypeReg, Mode: 0o755}, data: string(shared)})
	bTar := makeTar(t,
		tarEntry{hdr: tar.Header{Name: "usr/copy.so", Typeflag: tar.TypeReg, Mode: 0o755}, data: string(shared)},
		tarEntry{hdr: tar.Header{Name: "usr/own", Typeflag: tar.TypeReg, Mode: 0o644}, data: string(own)},
		tarEntry{hdr: tar.Header{Name: "usr/mixed", Typeflag: tar.TypeReg, Mode: 0o644}, data: string(shared[:1<<20]) + string(own)},
	)
	a := toNydus(t, aTar, nil)
	dict, err := rafs.NewChunkDict(a.layerBootstrap(t))
	if err != nil {
		t.Fatal(err)
	}
	b := toNydus(t, bTar, &convert.NydusOptions{ChunkDict: dict})
	// own: 2 chunks; mixed: 1 from the dictionary + 2 of own's (shared
	// with usr/own); copy.so: 3 from the dictionary.
	if b.res.DictChunks != 4 || b.res.Blob.ChunkCount != 2 {
		t.Errorf("%d dictionary chunks, %d chunks stored; want 4 and 2", b.res.DictChunks, b.res.Blob.ChunkCount)
	}
	bb := b.layerBootstrap(t)
	if len(bb.Blobs) != 2 || bb.Blobs[0].ID != b.res.Blob.ID || bb.Blobs[1].ID != a.res.Blob.ID {
		t.Fatalf("blob table %v, want [B A]", blobIDs(bb))
	}
	got, _ := unpackTree(t, bb, a, b)
	reportDiffs(t, "unpacked B", fstree.Compare(oracle(t, bTar, fstree.WhiteoutKeep), got))

	// Without a blob of its own: every chunk is in the dictionary.
	c := toNydus(t, aTar, &convert.NydusOptions{ChunkDict: dict})
	cb := c.layerBootstrap(t)
	if c.res.Blob.ChunkCount != 0 || len(cb.Blobs) != 1 || cb.Blobs[0].ID != a.res.Blob.ID {
		t.Errorf("a layer entirely in the dictionary: %d chunks, blobs %v", c.res.Blob.ChunkCount, blobIDs(cb))
	}
	got, _ = unpackTree(t, cb, a)
	reportDiffs(t, "unpacked C", fstree.Compare(oracle(t, aTar, fstree.WhiteoutKeep), got))

	// Merged: A's blob appears once.
	m, err := convert.MergeNydus([]*rafs.Bootstrap{a.layerBootstrap(t), bb, cb}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ids := blobIDs(m); len(ids) != 2 || ids[0] != a.res.Blob.ID || ids[1] != b.res.Blob.ID {
		t.Errorf("merged blob table %v, want [A B]", ids)
	}

	// A dictionary of another chunk size or with placeholder ids is refused.
	if _, err := convert.TarToNydus(bytes.NewReader(bTar), io.Discard, &convert.NydusOptions{ChunkDict: dict, ChunkSize: 64 << 10}); err == nil {
		t.Error("a dictionary with another chunk size was accepted")
	}
	raw, _ := blob.Open(bytes.NewReader(a.blob), int64(len(a.blob)))
	rb, _ := raw.Bootstrap()
	inline, _ := rafs.Read(bytes.NewReader(rb), int64(len(rb)))
	pd, _ := rafs.NewChunkDict(inline)
	if _, err := convert.TarToNydus(bytes.NewReader(bTar), io.Discard, &convert.NydusOptions{ChunkDict: pd}); err == nil {
		t.Error("a dictionary with the placeholder id was accepted")
	}
}

func blobIDs(b *rafs.Bootstrap) []string {
	var ids []string
	for _, bi := range b.Blobs {
		ids = append(ids, bi.ID)
	}
	return ids
}

// TestMergeNydusImplicitDirs: a directory an upper layer only implies keeps
// the lower layer's attributes; one the upper layer has replaces them.
func TestMergeNydusImplicitDirs(t *testing.T) {
	mt := time.Unix(1650000000, 0)
	lower := makeTar(t,
		tarEntry{hdr: tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o750, Uid: 3, ModTime: mt}},
		tarEntry{hdr: tar.Header{Name: "a/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 5, Gid: 6, ModTime: mt,
			PAXRecords: map[string]string{"SCHILY.xattr.user.dir": "lower"}}},
		tarEntry{hdr: tar.Header{Name: "c/", Typeflag: tar.TypeDir, Mode: 0o711, ModTime: mt}},
		tarEntry{hdr: tar.Header{Name: "a/old", Typeflag: tar.TypeReg, Mode: 0o644}, data: "old"},
	)
	upper := makeTar(t,
		tarEntry{hdr: tar.Header{Name: "a/b/new", Typeflag: tar.TypeReg, Mode: 0o644}, data: "new"},
		tarEntry{hdr: tar.Header{Name: "c/", Typeflag: tar.TypeDir, Mode: 0o755}}, // explicit: replaces
		tarEntry{hdr: tar.Header{Name: "c/f", Typeflag: tar.TypeReg, Mode: 0o644}, data: "f"},
	)
	l, u := toNydus(t, lower, nil), toNydus(t, upper, nil)
	m, err := convert.MergeNydus([]*rafs.Bootstrap{l.layerBootstrap(t), u.layerBootstrap(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	check := func(path string, mode, uid uint32, mtime int64, xattr string) {
		t.Helper()
		n := m.Lookup(path)
		if n == nil {
			t.Fatalf("%s missing", path)
		}
		if n.Mode != erofs.ModeDir|mode || n.UID != uid || n.Mtime != mtime || string(n.Xattrs["user.dir"]) != xattr {
			t.Errorf("%s: mode %o uid %d mtime %d xattrs %q; want %o %d %d %q", path, n.Mode, n.UID, n.Mtime, n.Xattrs, mode, uid, mtime, xattr)
		}
	}
	check("/", 0o750, 3, mt.Unix(), "")
	check("a", 0o700, 5, mt.Unix(), "lower")
	check("a/b", 0o755, 0, 0, "")
	check("c", 0o755, 0, 1600000000, "")
	if m.Lookup("a/old") == nil || m.Lookup("a/b/new") == nil {
		t.Error("merged children missing")
	}
	// The layers themselves are unchanged.
	if n := u.layerBootstrap(t).Lookup("a"); n.Mode != erofs.ModeDir|0o755 {
		t.Errorf("upper layer's a changed: %o", n.Mode)
	}
	if _, err := convert.MergeNydus([]*rafs.Bootstrap{l.res.Bootstrap, func() *rafs.Bootstrap {
		raw, _ := blob.Open(bytes.NewReader(u.blob), int64(len(u.blob)))
		rb, _ := raw.Bootstrap()
		b, _ := rafs.Read(bytes.NewReader(rb), int64(len(rb)))
		return b
	}()}, nil); err == nil {
		t.Error("a layer with the placeholder blob id was merged")
	}
}

// TestUnpackNydusCorrupt: a blob whose chunk data was changed, or the
// wrong blob, is an error, not wrong content.
func TestUnpackNydusCorrupt(t *testing.T) {
	c, _ := tartest.Find("sizes")
	l := toNydus(t, c.Tar, &convert.NydusOptions{Compressor: "none"})
	b := l.layerBootstrap(t)
	bad := bytes.Clone(l.blob)
	bad[100] ^= 1
	br, err := blob.Open(bytes.NewReader(bad), int64(len(bad)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := convert.UnpackNydus(b, []*blob.Reader{br}, io.Discard); err == nil {
		t.Error("a corrupt blob unpacked")
	}
	other := toNydus(t, makeTar(t, tarEntry{hdr: tar.Header{Name: "f", Typeflag: tar.TypeReg}, data: "other"}), nil)
	br, _ = blob.Open(bytes.NewReader(other.blob), int64(len(other.blob)))
	if _, err := convert.UnpackNydus(b, []*blob.Reader{br}, io.Discard); err == nil {
		t.Error("the wrong blob unpacked")
	}
	if _, err := convert.OpenNydusBlobs(b, 1, func(int) (io.ReaderAt, int64, error) {
		return bytes.NewReader(other.blob), int64(len(other.blob)), nil
	}, true); err == nil {
		t.Error("OpenNydusBlobs accepted a blob not in the table for the one it needs")
	}
}

// TestWriteBlobCache checks the uncompressed cache form of a blob: every
// chunk at its uncompressed offset, zeros elsewhere.
func TestWriteBlobCache(t *testing.T) {
	c, _ := tartest.Find("sizes")
	l := toNydus(t, c.Tar, &convert.NydusOptions{ChunkSize: 64 << 10})
	br, err := blob.Open(bytes.NewReader(l.blob), int64(len(l.blob)))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	n, err := convert.WriteBlobCache(&buf, br)
	if err != nil {
		t.Fatal(err)
	}
	cache := buf.Bytes()
	if n != int64(len(cache)) || uint64(n) != l.res.Blob.UncompressedSize {
		t.Fatalf("cache of %d bytes (said %d), want %d", len(cache), n, l.res.Blob.UncompressedSize)
	}
	covered := make([]bool, len(cache))
	for i, ci := range br.ChunkInfos() {
		data, err := br.ReadChunk(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(cache[ci.UncompressedOffset:ci.UncompressedOffset+uint64(len(data))], data) {
			t.Errorf("chunk %d not at %#x", i, ci.UncompressedOffset)
		}
		for j := range data {
			covered[int(ci.UncompressedOffset)+j] = true
		}
	}
	for i, b := range cache {
		if !covered[i] && b != 0 {
			t.Fatalf("byte %#x outside every chunk is %#x", i, b)
		}
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

// writeFile writes data to a new file in dir and returns its path.
func writeFile(t testing.TB, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
