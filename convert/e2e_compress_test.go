package convert_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/erofs"
)

var compressors = []string{"lz4", "lz4hc", "zstd", "deflate", "lzma"}

// compressed returns options for a compressed image.
func compressed(t testing.TB, alg string, pcluster int, ztail bool) *convert.EROFSOptions {
	t.Helper()
	c, err := erofs.DefaultCompression(alg)
	if err != nil {
		t.Fatal(err)
	}
	c.PclusterSize, c.Ztailpacking = pcluster, ztail
	o := &convert.EROFSOptions{}
	o.Image.Compression = c
	return o
}

// TestEndToEndCompressed builds the cases that stress compressed layouts
// with every algorithm, physical clusters of 4 KiB, 64 KiB and 1 MiB, with
// and without ztailpacking, and compares the kernel's and our reader's
// view with the tar.
func TestEndToEndCompressed(t *testing.T) {
	mounttest.Require(t)
	for _, name := range []string{"compression", "sizes", "hardlinks", "xattrs"} {
		c, ok := tartest.Find(name)
		if !ok {
			t.Fatalf("no golden case %q", name)
		}
		want, err := fstree.FromTar(bytes.NewReader(c.Tar), fstree.TarOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, alg := range compressors {
			for _, pcl := range []int{4096, 65536, 1 << 20} {
				if name != "compression" && pcl == 1<<20 {
					continue
				}
				for _, ztail := range []bool{false, true} {
					t.Run(fmt.Sprintf("%s/%s/C%d/ztail=%v", name, alg, pcl, ztail), func(t *testing.T) {
						t.Parallel()
						image := buildImage(t, bytes.NewReader(c.Tar), compressed(t, alg, pcl, ztail))
						checkImage(t, image, want, true)
					})
				}
			}
		}
	}
}

// TestEndToEndCompressedLayouts covers full (legacy) indexes and small
// blocks, where compact indexes use 2-byte packs with other offsets.
func TestEndToEndCompressedLayouts(t *testing.T) {
	mounttest.Require(t)
	c, _ := tartest.Find("compression")
	want, err := fstree.FromTar(bytes.NewReader(c.Tar), fstree.TarOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range compressors {
		for _, bs := range []int{512, 1024, 4096} {
			for _, full := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/bs%d/full=%v", alg, bs, full), func(t *testing.T) {
					t.Parallel()
					o := compressed(t, alg, 8*bs, true)
					o.Image.BlockSize = bs
					o.Image.Compression.FullIndexes = full
					checkImage(t, buildImage(t, bytes.NewReader(c.Tar), o), want, true)
				})
			}
		}
	}
}

// TestCompressedDeterministic checks that the image does not depend on
// the number of compressing goroutines.
func TestCompressedDeterministic(t *testing.T) {
	c, _ := tartest.Find("compression")
	for _, alg := range compressors {
		t.Run(alg, func(t *testing.T) {
			var first [sha256.Size]byte
			for i, workers := range []int{1, 2, 5} {
				o := compressed(t, alg, 65536, true)
				o.Image.Compression.Workers = workers
				img := &memImage{}
				if _, err := convert.TarToEROFS(bytes.NewReader(c.Tar), img, o); err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(img.b)
				if i == 0 {
					first = sum
				} else if sum != first {
					t.Errorf("%d workers give a different image than 1", workers)
				}
			}
		})
	}
}

// bigLayer writes a tar holding one 100 MB file of mixed text, zeros and
// noise, generated as it is written.
func bigLayer(w io.Writer) error {
	const size = 100 << 20
	tw := tar.NewWriter(w)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "big", Mode: 0o644, Size: size, ModTime: tartest.Epoch}); err != nil {
		return err
	}
	for off, i := 0, 0; off < size; i++ {
		var b []byte
		switch i % 3 {
		case 0:
			b = tartest.Text(fmt.Sprint("big ", i), 900_000+i*7)
		case 1:
			b = make([]byte, 300_000+i*5)
		case 2:
			b = tartest.Content(fmt.Sprint("big ", i), 200_000+i*3)
		}
		b = b[:min(len(b), size-off)]
		if _, err := tw.Write(b); err != nil {
			return err
		}
		off += len(b)
	}
	return tw.Close()
}

// TestEndToEndCompressedLargeFile compresses a 100 MB file with every
// algorithm; it spans many segments and index blocks.
func TestEndToEndCompressedLargeFile(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	mounttest.Require(t)
	var layer bytes.Buffer
	if err := bigLayer(&layer); err != nil {
		t.Fatal(err)
	}
	want, err := fstree.FromTar(bytes.NewReader(layer.Bytes()), fstree.TarOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range compressors {
		t.Run(alg, func(t *testing.T) {
			image := buildImage(t, bytes.NewReader(layer.Bytes()), compressed(t, alg, 65536, true))
			checkImage(t, image, want, true)
		})
	}
}

// TestEndToEndDebianCompressed converts the Debian layer with every
// algorithm and compares each mounted image with the tar. It does not
// take the full product of algorithms, cluster sizes and ztailpacking,
// which TestEndToEndCompressed runs on small tars built to stress each
// layout; on the Debian layer, each algorithm once, each of one-block and
// 64 KiB clusters with and without ztailpacking at least once, is enough
// to show that real-world files and their number change nothing.
func TestEndToEndDebianCompressed(t *testing.T) {
	if testing.Short() {
		t.Skip("the Debian layer takes a while; skipped with -short")
	}
	cases := []struct {
		alg   string
		pcl   int
		ztail bool
	}{
		{"lz4", 0, false},
		{"lz4", 65536, true},
		{"lz4hc", 65536, false},
		{"zstd", 0, true},
		{"deflate", 65536, true},
		{"lzma", 65536, true},
	}
	covered := map[string]bool{}
	for _, c := range cases {
		covered[c.alg] = true
		covered[fmt.Sprintf("C%d/ztail=%v", c.pcl, c.ztail)] = true
	}
	for _, alg := range compressors {
		if !covered[alg] {
			t.Errorf("no case for %s", alg)
		}
	}
	for _, pcl := range []int{0, 65536} {
		for _, ztail := range []bool{false, true} {
			if k := fmt.Sprintf("C%d/ztail=%v", pcl, ztail); !covered[k] {
				t.Errorf("no case for %s", k)
			}
		}
	}
	mounttest.Require(t)
	layer := tartest.DebianLayer(t)
	data, err := os.ReadFile(layer)
	if err != nil {
		t.Fatal(err)
	}
	want, err := fstree.FromTar(bytes.NewReader(data), fstree.TarOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/C%d/ztail=%v", c.alg, c.pcl, c.ztail), func(t *testing.T) {
			image := filepath.Join(t.TempDir(), "debian.erofs")
			f, err := os.Create(image)
			if err != nil {
				t.Fatal(err)
			}
			res, err := convert.TarToEROFS(bytes.NewReader(data), f, compressed(t, c.alg, c.pcl, c.ztail))
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%d entries, %d-byte image", res.Entries, res.ImageSize)
			checkImage(t, image, want, true)
		})
	}
}
