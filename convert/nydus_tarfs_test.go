package convert_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/rafs"
)

// tarfsLayer is a layer built with TarToNydusTarfs: its plain tar, the
// bootstrap bytes and the result.
type tarfsLayer struct {
	tar  []byte
	boot []byte
	res  *convert.NydusTarfsResult
}

// toTarfs builds the tarfs bootstrap of a layer (plain or compressed),
// keeping its uncompressed tar.
func toTarfs(t testing.TB, data []byte, opts *convert.NydusTarfsOptions) *tarfsLayer {
	t.Helper()
	var boot, tarOut bytes.Buffer
	res, err := convert.TarToNydusTarfs(bytes.NewReader(data), &boot, &tarOut, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.BootstrapSize != int64(boot.Len()) {
		t.Errorf("BootstrapSize %d, wrote %d bytes", res.BootstrapSize, boot.Len())
	}
	if res.TarSize != int64(tarOut.Len()) {
		t.Errorf("TarSize %d, copied %d bytes of tar", res.TarSize, tarOut.Len())
	}
	return &tarfsLayer{tar: tarOut.Bytes(), boot: boot.Bytes(), res: res}
}

// read parses the layer's bootstrap.
func (l *tarfsLayer) read(t testing.TB) *rafs.Bootstrap {
	t.Helper()
	b, err := rafs.Read(bytes.NewReader(l.boot), int64(len(l.boot)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// unpackTarfs unpacks a tarfs bootstrap with the tars of layers (matched
// by blob id) and returns the tree of the tar written.
func unpackTarfs(t testing.TB, boot *rafs.Bootstrap, layers ...*tarfsLayer) *fstree.Tree {
	t.Helper()
	tars := make([]io.ReaderAt, len(boot.Blobs))
	for i, bi := range boot.Blobs {
		for _, l := range layers {
			if l.res.BlobID == bi.ID {
				tars[i] = bytes.NewReader(l.tar)
			}
		}
		if tars[i] == nil {
			t.Fatalf("no layer has blob %s", bi.ID)
		}
	}
	var out bytes.Buffer
	if _, err := convert.UnpackNydusTarfs(boot, tars, &out); err != nil {
		t.Fatal(err)
	}
	tree, err := fstree.FromTar(bytes.NewReader(out.Bytes()), fstree.TarOptions{Whiteouts: fstree.WhiteoutKeep})
	if err != nil {
		t.Fatalf("unpacked tar: %v", err)
	}
	return tree
}

// TestNydusTarfsCases builds the tarfs bootstrap of every good tar case
// and checks it: the superblock and blob entry of the tarfs form, every
// chunk pointing at its file's data in the tar, a byte-identical
// re-encoding of what rafs.Read reads, and the tree read back both by
// unpacking and by the EROFS reader with the tar as device 1.
func TestNydusTarfsCases(t *testing.T) {
	for _, c := range tartest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			l := toTarfs(t, c.Tar, nil)
			data := plainTar(t, c.Tar)
			if !bytes.Equal(l.tar, data) {
				t.Fatal("the tar copied out is not the input's uncompressed tar")
			}
			want := oracle(t, c.Tar, fstree.WhiteoutKeep)
			b := l.read(t)
			checkTarfsLayout(t, l, b)

			// What Read returns encodes to the same bytes.
			again, err := b.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, l.boot) {
				t.Error("the bootstrap read back encodes to other bytes")
			}
			if x, _ := l.res.Bootstrap.MarshalBinary(); !bytes.Equal(x, l.boot) {
				t.Error("NydusTarfsResult.Bootstrap encodes to other bytes than were written")
			}

			// Every chunk is its file's data, in place in the tar.
			b.Walk(func(p string, n *rafs.Node) error {
				if n.Link != nil || !n.IsRegular() {
					return nil
				}
				h := sha256.New()
				for _, c := range n.Chunks {
					h.Write(data[c.UncompressedOffset : c.UncompressedOffset+uint64(c.UncompressedSize)])
				}
				if w, ok := want.Nodes[strings.TrimPrefix(p, "/")]; !ok || hex.EncodeToString(h.Sum(nil)) != w.Digest {
					t.Errorf("%s: the chunks' bytes in the tar are not the file's", p)
				}
				return nil
			})

			reportDiffs(t, "unpacked", fstree.Compare(want, unpackTarfs(t, b, l)))
			bootPath := writeFile(t, t.TempDir(), "layer.boot", l.boot)
			if len(b.Blobs) > 0 {
				compareIndex(t, bootPath, data, want) // the tar as device 1
			} else {
				compareIndex(t, bootPath, nil, want)
			}
		})
	}
}

// checkTarfsLayout checks the bytes and model of a tarfs layer's
// bootstrap against the tarfs form (nydus-image create --type
// tar-tarfs): 512-byte blocks, flag TARFS_MODE, a blob that is the tar.
func checkTarfsLayout(t *testing.T, l *tarfsLayer, b *rafs.Bootstrap) {
	t.Helper()
	img := l.boot
	le := binary.LittleEndian
	if got := img[1024+12]; got != 9 {
		t.Errorf("blkszbits %d, want 9", got)
	}
	if b.Flags&^rafs.FlagHasXattr != convert.TarfsFlags {
		t.Errorf("flags %#x, want %#x (and HAS_XATTR if any)", b.Flags, convert.TarfsFlags)
	}
	if b.BlockSize() != rafs.TarfsBlockSize {
		t.Errorf("BlockSize %d", b.BlockSize())
	}
	if got := le.Uint32(img[1152+48:]); got != 0 {
		t.Errorf("prefetch table of %d bytes; tarfs bootstraps have none", got)
	}
	if len(img)%4096 != 0 {
		t.Errorf("bootstrap of %d bytes: not 4 KiB-aligned", len(img))
	}
	if l.res.Chunks == 0 {
		if len(b.Blobs) != 0 {
			t.Errorf("no file has data, but the bootstrap has %d blobs", len(b.Blobs))
		}
		return
	}
	if len(b.Blobs) != 1 {
		t.Fatalf("%d blobs, want 1", len(b.Blobs))
	}
	bi := b.Blobs[0]
	sum := sha256.Sum256(l.tar)
	if id := hex.EncodeToString(sum[:]); bi.ID != id || l.res.BlobID != id {
		t.Errorf("blob id %s (result %s), want the tar's SHA-256 %s", bi.ID, l.res.BlobID, id)
	}
	if bi.Features != blob.FeatureTarfs|blob.FeatureCapTarTOC || bi.Compressor != blob.CompressorNone || bi.Digester != blob.DigesterSHA256 {
		t.Errorf("blob features %#x, compressor %d, digester %d", bi.Features, bi.Compressor, bi.Digester)
	}
	if bi.UncompressedSize != uint64(len(l.tar)) || bi.CompressedSize != uint64(len(l.tar)) {
		t.Errorf("blob sizes %d/%d, want the tar's %d", bi.CompressedSize, bi.UncompressedSize, len(l.tar))
	}
	if got := le.Uint32(img[1408+64:]); got != uint32(len(l.tar)/512) {
		t.Errorf("device slot: %d blocks, want %d", got, len(l.tar)/512)
	}
	// The chunk table collapses to one record: tarfs chunks have no
	// digests.
	if got := le.Uint64(img[1152+32:]); got != 80 {
		t.Errorf("chunk table of %d bytes, want one 80-byte record", got)
	}
	if int(bi.ChunkCount) < l.res.Chunks {
		t.Errorf("blob chunk count %d for %d chunks", bi.ChunkCount, l.res.Chunks)
	}
}

// TestNydusTarfsInputs checks what the input and options change: a
// compressed layer needs an output for its tar and gives the bootstrap
// of its plain tar; a plain tar file needs none; BlobID names the blob.
func TestNydusTarfsInputs(t *testing.T) {
	tars := tartest.Stack()
	plain := tars[0]
	l := toTarfs(t, plain, nil)
	gz := toTarfs(t, tartest.Gzip(plain), nil)
	if !bytes.Equal(gz.boot, l.boot) || !bytes.Equal(gz.tar, plain) {
		t.Error("the .tar.gz gives another bootstrap or tar than the .tar")
	}
	if gz.res.Encoding != convert.TarGzip || l.res.Encoding != convert.Tar {
		t.Errorf("encodings %v and %v", gz.res.Encoding, l.res.Encoding)
	}

	var boot bytes.Buffer
	_, err := convert.TarToNydusTarfs(bytes.NewReader(tartest.Gzip(plain)), &boot, nil, nil)
	if !errors.Is(err, convert.ErrTarfsNoBlobOutput) {
		t.Errorf("compressed input without a tar output: error %v, want ErrTarfsNoBlobOutput", err)
	}

	// A plain tar file is its own blob; with a blob id given, its data
	// is skipped, not read.
	p := writeFile(t, t.TempDir(), "layer.tar", plain)
	id := strings.Repeat("ab", 32)
	for _, o := range []*convert.NydusTarfsOptions{nil, {BlobID: id}} {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		boot.Reset()
		res, err := convert.TarToNydusTarfs(f, &boot, nil, o)
		if err != nil {
			t.Fatal(err)
		}
		b, err := rafs.Read(bytes.NewReader(boot.Bytes()), int64(boot.Len()))
		if err != nil {
			t.Fatal(err)
		}
		wantID := l.res.BlobID
		if o != nil {
			wantID = id
		}
		if res.BlobID != wantID || b.Blobs[0].ID != wantID {
			t.Errorf("options %+v: blob id %s (bootstrap %s), want %s", o, res.BlobID, b.Blobs[0].ID, wantID)
		}
		b.Blobs[0].ID = l.res.BlobID
		if x, _ := b.MarshalBinary(); !bytes.Equal(x, l.boot) {
			t.Errorf("options %+v: the bootstrap differs from the one of the stream beyond the blob id", o)
		}
	}

	if _, err := convert.TarToNydusTarfs(bytes.NewReader(plain), &boot, nil, &convert.NydusTarfsOptions{BlobID: "short"}); err == nil {
		t.Error("a blob id of 5 characters was accepted")
	}
	if _, err := convert.TarToNydusTarfs(bytes.NewReader(plain), &boot, nil, &convert.NydusTarfsOptions{ChunkSize: 512}); err == nil {
		t.Error("chunk size 512 was accepted")
	}

	// The chunk size sets the chunk indexes, not where the data is.
	small := toTarfs(t, plain, &convert.NydusTarfsOptions{ChunkSize: 4096})
	if small.res.Chunks < l.res.Chunks {
		t.Errorf("%d chunks of 4 KiB, %d of 1 MiB", small.res.Chunks, l.res.Chunks)
	}
	reportDiffs(t, "4 KiB chunks", fstree.Compare(oracle(t, plain, fstree.WhiteoutKeep), unpackTarfs(t, small.read(t), small)))
}

// TestNydusTarfsSparse refuses GNU sparse files.
func TestNydusTarfsSparse(t *testing.T) {
	var boot, out bytes.Buffer
	_, err := convert.TarToNydusTarfs(bytes.NewReader(gnuSparseTar(t)), &boot, &out, nil)
	if err == nil || !strings.Contains(err.Error(), "sparse") {
		t.Errorf("GNU sparse entry: error %v, want one about sparse files", err)
	}
}

// TestNydusTarfsMerge merges the tarfs layers of the three-layer stack:
// the merged bootstrap is tarfs too, has the tars as its blobs in layer
// order, and unpacks to the layers applied. A tarfs layer does not merge
// with a Nydus blob layer, nor serve as a chunk dictionary.
func TestNydusTarfsMerge(t *testing.T) {
	tars := tartest.Stack()
	var layers []*tarfsLayer
	var boots []*rafs.Bootstrap
	for _, data := range tars {
		l := toTarfs(t, data, nil)
		layers = append(layers, l)
		boots = append(boots, l.read(t))
	}
	m, err := convert.MergeNydus(boots, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Flags&rafs.FlagTarfsMode == 0 || len(m.Blobs) != len(tars) {
		t.Fatalf("merged: flags %#x, %d blobs", m.Flags, len(m.Blobs))
	}
	for i, bi := range m.Blobs {
		if bi.ID != layers[i].res.BlobID {
			t.Errorf("merged blob %d is %s, want layer %d's %s", i, bi.ID, i, layers[i].res.BlobID)
		}
	}
	raw, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	back, err := rafs.Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	reportDiffs(t, "merged", fstree.Compare(applyStack(t, tars...), unpackTarfs(t, back, layers...)))

	nl := toNydus(t, tars[1], nil)
	if _, err := convert.MergeNydus([]*rafs.Bootstrap{boots[0], nl.layerBootstrap(t)}, nil); err == nil || !strings.Contains(err.Error(), "TARFS") {
		t.Errorf("merging a tarfs and a Nydus layer: error %v, want one naming TARFS_MODE", err)
	}
	if _, err := rafs.NewChunkDict(boots[0]); err == nil {
		t.Error("a tarfs bootstrap was taken as a chunk dictionary")
	}
	var out bytes.Buffer
	if _, err := convert.UnpackNydus(boots[0], make([]*blob.Reader, len(boots[0].Blobs)), &out); err == nil || !strings.Contains(err.Error(), "UnpackNydusTarfs") {
		t.Errorf("UnpackNydus of a tarfs bootstrap: error %v, want one naming UnpackNydusTarfs", err)
	}
}

// TestNydusTarfsShortTar checks that a tar shorter than its bootstrap
// says is an error when unpacking, not short content.
func TestNydusTarfsShortTar(t *testing.T) {
	l := toTarfs(t, tartest.Stack()[0], nil)
	b := l.read(t)
	short := l.tar[:512] // the first header, no file's data
	var out bytes.Buffer
	_, err := convert.UnpackNydusTarfs(b, []io.ReaderAt{bytes.NewReader(short)}, &out)
	if err == nil {
		t.Error("unpacking with half the tar succeeded")
	}
}
