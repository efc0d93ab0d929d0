package convert_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/erofs"
)

// buildChunked converts a tar into a chunk-based image, with its chunk
// data in a blob file when blob is set, and returns their paths (blob ""
// without).
func buildChunked(t testing.TB, tarData []byte, chunkSize int64, blob bool) (string, string) {
	t.Helper()
	return buildChunkedBS(t, tarData, 0, chunkSize, blob)
}

// buildChunkedBS is buildChunked with a block size (0 for the default).
func buildChunkedBS(t testing.TB, tarData []byte, bs int, chunkSize int64, blob bool) (string, string) {
	t.Helper()
	dir := t.TempDir()
	img, err := os.Create(filepath.Join(dir, "layer.erofs"))
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	opts := &convert.EROFSOptions{}
	opts.Image.ChunkSize, opts.Image.BlockSize = chunkSize, bs
	blobPath := ""
	if blob {
		blobPath = filepath.Join(dir, "layer.blob")
		bf, err := os.Create(blobPath)
		if err != nil {
			t.Fatal(err)
		}
		defer bf.Close()
		opts.Image.BlobDev = bf
	}
	if _, err := convert.TarToEROFS(bytes.NewReader(tarData), img, opts); err != nil {
		t.Fatal(err)
	}
	return img.Name(), blobPath
}

// checkChunked compares a chunk-based image (and its blob device, if any)
// with the oracle: read by our reader, checked by fsck.erofs
// (--device= for the blob), and mounted by the kernel (device= for the
// blob). Without a blob, checkImage does it, go-erofs included.
func checkChunked(t *testing.T, image, blob string, want *fstree.Tree) {
	t.Helper()
	if blob == "" {
		checkImageWith(t, image, want, checkOptions{mount: true, extracted: true})
		return
	}
	report := func(who string, diffs []string) {
		t.Helper()
		if len(diffs) > 20 {
			diffs = append(diffs[:20], fmt.Sprintf("... and %d more", len(diffs)-20))
		}
		for _, d := range diffs {
			t.Errorf("%s: %s", who, d)
		}
	}
	img, err := os.Open(image)
	if err != nil {
		t.Fatal(err)
	}
	defer img.Close()
	dev, err := os.Open(blob)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	ours, err := erofs.Open(img, erofs.WithDevices(dev))
	if err != nil {
		t.Fatalf("our reader: %v", err)
	}
	if got, err := fstree.FromFS(ours, ourMeta, ours.ReadLink); err != nil {
		t.Errorf("our reader: %v", err)
	} else {
		report("our reader", fstree.Compare(want, got))
	}
	if fsck := fsckErofs(); fsck != "" {
		// Decode every file (--extract without a directory). fsck.erofs
		// 1.9.3 extracts a file with chunk indexes that ends in holes one
		// hole short (it seeks over holes and never truncates), for
		// mkfs.erofs --blobdev images too, so what it extracts is not
		// compared here: the kernel and our reader compare the data.
		out, err := exec.Command(fsck, "--device="+blob, "--extract", image).CombinedOutput()
		if err != nil {
			t.Errorf("%s --device=%s --extract: %v\n%s", fsck, blob, err, out)
		}
	}
	got, err := fstree.FromDir(mounttest.Mount(t, image, blob))
	if err != nil {
		t.Fatalf("mounted: %v", err)
	}
	report("kernel", fstree.Compare(want, got))
}

// TestEndToEndChunked builds golden cases chunk-based with 4 KiB and
// 1 MiB chunks, in the image and on a blob device, and compares the
// mounted images (and what our reader and fsck.erofs see) with the tars.
func TestEndToEndChunked(t *testing.T) {
	mounttest.Require(t)
	noteFsck(t)
	var cases []tartest.Case
	for _, name := range []string{"types", "sizes", "xattrs", "hardlinks", "whiteouts"} {
		c, ok := tartest.Find(name)
		if !ok {
			t.Fatalf("no golden case %q", name)
		}
		cases = append(cases, c)
	}
	for _, c := range tartest.Corpus() {
		if c.Name == "sparse-pax" || c.Name == "sparse-old-gnu" {
			cases = append(cases, tartest.Case{Name: c.Name, Tar: c.Input})
		}
	}
	cases = append(cases, tartest.Case{Name: "zeros-dupes", Tar: zerosTar()})
	// Smaller blocks: the superblock's block has no room for inodes (512,
	// 1024) or some (2048).
	for _, c := range cases[:3] {
		want, err := fstree.FromTar(bytes.NewReader(c.Tar), fstree.TarOptions{Whiteouts: fstree.WhiteoutOverlay})
		if err != nil {
			t.Fatal(err)
		}
		for _, bs := range []int{512, 1024, 2048} {
			t.Run(fmt.Sprintf("%s/bs%d/blob", c.Name, bs), func(t *testing.T) {
				image, dev := buildChunkedBS(t, c.Tar, bs, 4096, true)
				checkChunked(t, image, dev, want)
			})
		}
	}
	for _, c := range cases {
		want, err := fstree.FromTar(bytes.NewReader(c.Tar), fstree.TarOptions{Whiteouts: fstree.WhiteoutOverlay})
		if err != nil {
			t.Fatal(err)
		}
		for _, cs := range []int64{4096, 1 << 20} {
			for _, blob := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%d/blob=%v", c.Name, cs, blob), func(t *testing.T) {
					image, dev := buildChunked(t, c.Tar, cs, blob)
					checkChunked(t, image, dev, want)
				})
			}
		}
	}
}

// zerosTar is a layer of all-zero files, a file with a zero middle and
// two copies of the same data: its chunks are holes and duplicates.
func zerosTar() []byte {
	noise := tartest.Content("chunk noise", 3<<20)
	mid := append(append(append([]byte(nil), noise[:1<<20]...), make([]byte, 2<<20)...), noise[2<<20:]...)
	file := func(name string, data []byte) tartest.Entry {
		return tartest.Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, Data: data}
	}
	return tartest.Tar(
		file("zero4m", make([]byte, 4<<20)),
		file("zero-odd", make([]byte, 5<<20+123)),
		file("mid", mid),
		file("noise", noise),
		file("dir/noise-copy", noise),
		file("tail", noise[:5000]),
	)
}

// TestChunkedHoles checks that all-zero data and sparse holes take no
// space: the images of the zeros layer and of the sparse layer are much
// smaller than their files, and their holes read back as zeros (checked
// entry by entry by TestEndToEndChunked; here by our reader alone).
func TestChunkedHoles(t *testing.T) {
	layer := zerosTar()
	var sparse []byte
	for _, c := range tartest.Corpus() {
		if c.Name == "sparse-pax" {
			sparse = c.Input
		}
	}
	for _, cs := range []int64{4096, 1 << 20} {
		for _, blob := range []bool{false, true} {
			image, dev := buildChunked(t, layer, cs, blob)
			size := fileSize(t, image)
			if dev != "" {
				size += fileSize(t, dev)
			}
			// Data: 3 MiB of noise, stored once, plus the 2 MiB non-zero
			// part of "mid" which is the noise's too (4 KiB chunks) or
			// not (1 MiB chunks: its first and last MiB are noise's).
			if max := int64(3<<20 + 64<<10); size > max {
				t.Errorf("chunks %d, blob %v: image of %d bytes for 3 MiB of distinct data (want at most %d)", cs, blob, size, max)
			}
			f := openChunked(t, image, dev)
			for _, name := range []string{"zero4m", "zero-odd"} {
				b, err := fs.ReadFile(f, name)
				if err != nil {
					t.Fatal(err)
				}
				if len(b) == 0 || bytes.Count(b, []byte{0}) != len(b) {
					t.Errorf("chunks %d: %s: %d bytes, not all zeros", cs, name, len(b))
				}
			}
		}
		// Three copies of a 200000-byte file holding 9 KiB of data in 7
		// blocks, and a 1000000-byte hole: the data is stored once, in
		// the 7 blocks (4 KiB chunks) or the one chunk (1 MiB chunks).
		image, _ := buildChunked(t, sparse, cs, false)
		max := int64(16 * 4096)
		if cs > 200000 {
			max += 200000
		}
		if size := fileSize(t, image); size > max {
			t.Errorf("chunks %d: sparse layer: image of %d bytes, want at most %d", cs, size, max)
		}
	}
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// openChunked opens an image with its blob device, if any.
func openChunked(t *testing.T, image, blob string) *erofs.FS {
	t.Helper()
	img, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	var opts []erofs.OpenOption
	if blob != "" {
		dev, err := os.ReadFile(blob)
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, erofs.WithDevices(bytes.NewReader(dev)))
	}
	f, err := erofs.Open(bytes.NewReader(img), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestEndToEndDebianChunked builds the Debian layer chunk-based with
// 1 MiB chunks, in the image and on a blob device, and compares every
// entry of the mounted images with the tar.
func TestEndToEndDebianChunked(t *testing.T) {
	if testing.Short() {
		t.Skip("the Debian layer takes a while; skipped with -short")
	}
	mounttest.Require(t)
	noteFsck(t)
	layer, err := os.ReadFile(tartest.DebianLayer(t))
	if err != nil {
		t.Fatal(err)
	}
	want, err := fstree.FromTar(bytes.NewReader(layer), fstree.TarOptions{Whiteouts: fstree.WhiteoutOverlay})
	if err != nil {
		t.Fatal(err)
	}
	for _, blob := range []bool{false, true} {
		t.Run(fmt.Sprintf("blob=%v", blob), func(t *testing.T) {
			image, dev := buildChunked(t, layer, 1<<20, blob)
			checkChunked(t, image, dev, want)
		})
	}
}
