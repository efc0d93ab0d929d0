package convert_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/erofs/verity"
)

// appendVerity appends a dm-verity tree to the image file and returns the
// result.
func appendVerity(t *testing.T, image string, opts *verity.Options) *verity.Result {
	t.Helper()
	f, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	res, err := verity.Append(f, fi.Size(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != res.Size {
		t.Fatalf("file of %d bytes after the tree, want %d (%v)", fi.Size(), res.Size, err)
	}
	return res
}

// TestVerityKernel checks that images with a dm-verity tree appended still
// read as before, mounted by the kernel (as a file, without the verity
// device: the EROFS superblock's block count stops before the tree),
// with this module's reader, go-erofs and fsck.erofs: plain and
// compressed images, and a tar index with its tar appended, whose verity
// blocks are 512 bytes like its own.
func TestVerityKernel(t *testing.T) {
	mounttest.Require(t)
	for _, name := range []string{"types", "hardlinks", "xattrs", "sizes"} {
		c, ok := tartest.Find(name)
		if !ok {
			t.Fatalf("no case %q", name)
		}
		want, err := fstree.FromTar(bytes.NewReader(c.Tar), fstree.TarOptions{Whiteouts: fstree.WhiteoutOverlay})
		if err != nil {
			t.Fatal(err)
		}
		t.Run(name+"/plain", func(t *testing.T) {
			image := buildImage(t, bytes.NewReader(c.Tar), nil)
			appendVerity(t, image, nil)
			checkImage(t, image, want, true)
		})
		t.Run(name+"/lz4", func(t *testing.T) {
			z, err := erofs.ParseCompression("lz4")
			if err != nil {
				t.Fatal(err)
			}
			image := buildImage(t, bytes.NewReader(c.Tar), &convert.EROFSOptions{Image: erofs.WriterOptions{Compression: z}})
			appendVerity(t, image, nil)
			checkImage(t, image, want, true)
		})
		t.Run(name+"/tar-index", func(t *testing.T) {
			image, _ := buildTarIndex(t, plainTar(t, c.Tar), &convert.TarIndexOptions{Append: true})
			res := appendVerity(t, image, &verity.Options{BlockSize: 512})
			if res.BlockSize != 512 {
				t.Fatalf("block size %d", res.BlockSize)
			}
			compareIndex(t, image, nil, want)
			got, err := fstree.FromDir(mounttest.Mount(t, image))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range fstree.Compare(want, got) {
				t.Errorf("kernel: %s", d)
			}
		})
	}
}
