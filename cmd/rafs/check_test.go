package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
)

// goldenImage writes the mkfs.erofs golden image erofs/testdata/NAME.gz
// to dir and returns its path.
func goldenImage(t *testing.T, dir, name string) string {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "erofs", "testdata", name+".gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// flipByte inverts the byte at off in the file at path.
func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[off] ^= 0xFF
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// wantCheckFailure runs rafs check and wants exit status 1 and every one
// of wants in its message.
func wantCheckFailure(t *testing.T, what string, wants []string, args ...string) {
	t.Helper()
	code, _, stderr := rafsCmd(t, append([]string{"check"}, args...)...)
	if code != 1 {
		t.Errorf("%s: exit %d, want 1; stderr %q", what, code, stderr)
	}
	for _, w := range wants {
		if !strings.Contains(stderr, w) {
			t.Errorf("%s: message %q does not name %q", what, stderr, w)
		}
	}
}

// TestCheckGoldens: rafs check reads every mkfs.erofs golden image back
// (every layout: compact and extended inodes, inline, tail packing,
// fragments, dedupe, each algorithm, chunk-based, a blob device given with
// --device), and a sample image and Nydus blob and bootstrap of ours.
func TestCheckGoldens(t *testing.T) {
	dir := t.TempDir()
	ents, err := os.ReadDir(filepath.Join("..", "..", "erofs", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".gz")
		if !ok || !strings.HasSuffix(name, ".erofs") {
			continue
		}
		img := goldenImage(t, dir, name)
		args := []string{"check", img}
		if name == "blobdev.erofs" {
			args = append(args, "--device", goldenImage(t, dir, "blob.img"))
		}
		stdout, _ := mustRun(t, args...)
		if !strings.Contains(stdout, "ok (erofs)") {
			t.Errorf("%s: %q", name, stdout)
		}
		n++
	}
	if n < 50 {
		t.Errorf("checked %d golden images", n)
	}
	wantCheckFailure(t, "blobdev without its device", []string{"--device"}, filepath.Join(dir, "blobdev.erofs"))

	img := filepath.Join(dir, "sample.erofs")
	mustRun(t, "build", "-q", "-o", img, sample)
	mustRun(t, "check", "-q", img)
	// A tar index reads its data from the tar, given as its device.
	layerTar := filepath.Join(dir, "layer.tar")
	writeTar(t, layerTar, [2]string{"d/", ""}, [2]string{"d/f", strings.Repeat("tar data ", 1000)})
	idx := filepath.Join(dir, "index.erofs")
	mustRun(t, "build", "-q", "--tar-index", "-o", idx, layerTar)
	stdout, _ := mustRun(t, "check", idx, "--device", layerTar)
	if !strings.Contains(stdout, "9000 bytes of file data") {
		t.Errorf("tar index: %q", stdout)
	}
	nblob, nboot := filepath.Join(dir, "l.blob"), filepath.Join(dir, "l.boot")
	mustRun(t, "build", "--type", "nydus", "-q", "-o", nblob, "--bootstrap", nboot, sample)
	mustRun(t, "check", "-q", nblob)
	mustRun(t, "check", "-q", nboot, "--blob", nblob)
	if code, _, stderr := rafsCmd(t, "check", nboot); code != 2 || !strings.Contains(stderr, "--blob") {
		t.Errorf("bootstrap without its blob: exit %d, %q", code, stderr)
	}
	if code, _, stderr := rafsCmd(t, "check", "--device", nblob, img); code == 0 {
		t.Errorf("a Nydus blob as an EROFS device: exit 0, %q", stderr)
	}
	if code, _, _ := rafsCmd(t, "check", sample); code != 1 {
		t.Errorf("a tar: exit %d, want 1", code)
	}
}

// checkLayer writes a layer with a 200 KB text file a/text and a small
// file, as a tar.
func checkLayer(t *testing.T, dir string) (string, []byte) {
	var text bytes.Buffer
	for i := 0; text.Len() < 200000; i++ {
		text.WriteString("line ")
		text.WriteString(strings.Repeat(string(rune('a'+i%26)), i%50))
		text.WriteByte('\n')
	}
	tarPath := filepath.Join(dir, "layer.tar")
	writeTar(t, tarPath, [2]string{"a/", ""}, [2]string{"a/text", text.String()}, [2]string{"small", "hello"})
	return tarPath, text.Bytes()
}

// TestCheckFlippedCompressedData: one flipped byte in a compressed
// pcluster (the zstd frame's magic) is reported with the file's path and
// the offset of the data that does not decode.
func TestCheckFlippedCompressedData(t *testing.T) {
	dir := t.TempDir()
	layer, _ := checkLayer(t, dir)
	img := filepath.Join(dir, "z.erofs")
	mustRun(t, "build", "-q", "-z", "zstd", "-o", img, layer)
	mustRun(t, "check", "-q", img)
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	// The third pcluster of a/text (4 KiB lclusters, fixed-size output).
	magic := []byte{0x28, 0xB5, 0x2F, 0xFD}
	off := -1
	for i, k := 0, 0; k < 3; k++ {
		j := bytes.Index(b[i:], magic)
		if j < 0 {
			t.Fatalf("only %d zstd frames in the image", k)
		}
		off, i = i+j, i+j+1
	}
	flipByte(t, img, int64(off))
	wantCheckFailure(t, "flipped zstd magic", []string{"a/text (inode ", "data at offset "}, img)
	code, _, stderr := rafsCmd(t, "check", img)
	if code != 1 || strings.Contains(stderr, "data at offset 0:") {
		t.Errorf("the third pcluster is not at offset 0: %q", stderr)
	}
}

// TestCheckFlippedNydusChunk: one flipped byte of a chunk's stored data
// fails its digest; the message names the file, the chunk and its file
// offset, for the blob alone and for the bootstrap with the blob.
func TestCheckFlippedNydusChunk(t *testing.T) {
	dir := t.TempDir()
	layer, _ := checkLayer(t, dir)
	nblob, nboot := filepath.Join(dir, "l.blob"), filepath.Join(dir, "l.boot")
	mustRun(t, "build", "--type", "nydus", "-q", "--chunk-size", "0x10000", "--compressor", "none", "-o", nblob, "--bootstrap", nboot, layer)
	mustRun(t, "check", "-q", nboot, "--blob", nblob)
	f, err := os.Open(nblob)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	br, err := blob.Open(f, fi.Size())
	if err != nil {
		t.Fatal(err)
	}
	// The second chunk of a/text: its data starts 64 KiB into the file.
	var at int64 = -1
	for _, c := range br.ChunkInfos() {
		if c.UncompressedSize == 0x10000 && c.UncompressedOffset == 0x10000 {
			at = int64(c.CompressedOffset) + 100
		}
	}
	f.Close()
	if at < 0 {
		t.Fatal("no second chunk of 64 KiB")
	}
	flipByte(t, nblob, at)
	for _, args := range [][]string{{nblob}, {nboot, "--blob", nblob}} {
		wantCheckFailure(t, "flipped chunk byte in "+strings.Join(args, " "),
			[]string{"a/text", "chunk 1 (file offset 65536)", "digest"}, args...)
	}
}

// TestCheckFlippedMetadata: a flipped byte in an inode's format field
// (its data layout) is reported with the path and the inode.
func TestCheckFlippedMetadata(t *testing.T) {
	dir := t.TempDir()
	img := goldenImage(t, dir, "plain.erofs")
	r, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	f, err := erofs.Open(r)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Lstat("f4097")
	if err != nil {
		r.Close()
		t.Fatal(err)
	}
	nid := fi.Sys().(*erofs.Stat).Nid
	sb := f.Superblock()
	r.Close()
	pos := int64(sb.MetaBlkAddr)*int64(sb.BlockSize) + int64(nid)*32
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	// i_format's layout bits (1..3) become 7, which no layout has.
	format := binary.LittleEndian.Uint16(b[pos:])
	flipByte(t, img, pos)
	if got := binary.LittleEndian.Uint16(mustRead(t, img)[pos:]); (got>>1)&7 == (format>>1)&7 {
		t.Fatalf("layout unchanged: %#x -> %#x", format, got)
	}
	wantCheckFailure(t, "flipped inode format", []string{"f4097", "inode "}, img)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// FuzzCheck: rafs check's reading of an EROFS image, a Nydus blob or a
// bootstrap never panics or hangs on a damaged file. Seeds: small
// mkfs.erofs goldens (every algorithm, chunk-based, a blob device, long
// xattr prefixes) and a small Nydus blob and bootstrap of ours.
func FuzzCheck(f *testing.F) {
	for _, name := range []string{"small512.erofs", "smallchunk.erofs", "blobdev.erofs", "prefix.erofs",
		"zseed-lz4.erofs", "zseed-lzma.erofs", "zseed-zstd.erofs", "zseed-deflate.erofs", "zseed-lz4-share.erofs"} {
		b, err := readGolden(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range [][2]string{{"a/", ""}, {"a/f", strings.Repeat("data ", 3000)}, {"g", "small"}} {
		h := &tar.Header{Name: e[0], Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e[1]))}
		if strings.HasSuffix(e[0], "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		tw.WriteHeader(h)
		io.WriteString(tw, e[1])
	}
	tw.Close()
	var nblob, nboot bytes.Buffer
	res, err := convert.TarToNydus(&buf, &nblob, &convert.NydusOptions{ChunkSize: 0x1000})
	if err != nil {
		f.Fatal(err)
	}
	if _, err := res.Bootstrap.WriteTo(&nboot); err != nil {
		f.Fatal(err)
	}
	f.Add(nblob.Bytes())
	f.Add(nboot.Bytes())
	f.Fuzz(func(t *testing.T, data []byte) {
		var c closers
		defer c.Close()
		// Errors are expected; panics and hangs are what this looks for.
		checkInput(&c, bytes.NewReader(data), int64(len(data)), "fuzz", nil, nil)
		inspectImage(bytes.NewReader(data), int64(len(data)), "fuzz")
	})
}

// readGolden returns the bytes of the golden image erofs/testdata/NAME.gz.
func readGolden(name string) ([]byte, error) {
	f, err := os.Open(filepath.Join("..", "..", "erofs", "testdata", name+".gz"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}
