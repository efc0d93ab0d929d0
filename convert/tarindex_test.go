package convert_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/erofs"
)

// buildTarIndex writes the tar index of tarData to a file and returns its
// path.
func buildTarIndex(t *testing.T, tarData []byte, opts *convert.TarIndexOptions) (string, *convert.EROFSResult) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "index.erofs")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := convert.TarToEROFSIndex(bytes.NewReader(tarData), f, opts)
	if err != nil {
		t.Fatal(err)
	}
	return p, res
}

// plainTar returns a case's tar uncompressed.
func plainTar(t *testing.T, data []byte) []byte {
	t.Helper()
	rc, _, err := convert.Decompress(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(rc); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// compareIndex reads a tar index with this module's reader, the tar as
// device 1 (or appended, when dev is nil), and compares it with want.
func compareIndex(t *testing.T, image string, dev []byte, want *fstree.Tree) {
	t.Helper()
	img, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	var opts []erofs.OpenOption
	if dev != nil {
		opts = append(opts, erofs.WithDevices(bytes.NewReader(dev)))
	}
	fsys, err := erofs.Open(bytes.NewReader(img), opts...)
	if err != nil {
		t.Fatalf("our reader: %v", err)
	}
	got, err := fstree.FromFS(fsys, ourMeta, fsys.ReadLink)
	if err != nil {
		t.Fatalf("our reader: %v", err)
	}
	for _, d := range fstree.Compare(want, got) {
		t.Errorf("our reader: %s", d)
	}
}

// TestTarIndexCases builds the tar index of every good tar case, reads it
// back with the tar as its device, and checks that every regular file
// with data is chunk-based on device 1, at the tar offset of its data.
func TestTarIndexCases(t *testing.T) {
	for _, c := range tartest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			data := plainTar(t, c.Tar)
			want, err := fstree.FromTar(bytes.NewReader(data), fstree.TarOptions{Whiteouts: fstree.WhiteoutOverlay})
			if err != nil {
				t.Fatal(err)
			}
			image, res := buildTarIndex(t, data, nil)
			if res.TarSize != int64(len(data)) {
				t.Errorf("TarSize %d, want %d", res.TarSize, len(data))
			}
			compareIndex(t, image, data, want)

			img, _ := os.ReadFile(image)
			fsys, err := erofs.Open(bytes.NewReader(img), erofs.WithDevices(bytes.NewReader(data)))
			if err != nil {
				t.Fatal(err)
			}
			sb := fsys.Superblock()
			if sb.BlockSize != 512 || len(sb.Devices) != 1 || sb.Devices[0].Blocks != uint64(len(data)+511)/512 ||
				sb.Devices[0].UniAddr != uint64(res.ImageSize)/512 {
				t.Errorf("block size %d, devices %+v: want 512, one of %d blocks at block %d", sb.BlockSize, sb.Devices, (len(data)+511)/512, res.ImageSize/512)
			}
			if res.ImageSize%512 != 0 {
				t.Errorf("image size %d: not whole blocks", res.ImageSize)
			}
		})
	}
}

// TestTarIndexAppend builds the appended form from a gzip-compressed tar
// and reads it alone, as one file.
func TestTarIndexAppend(t *testing.T) {
	for _, name := range []string{"types", "hardlinks", "xattrs", "whiteouts", "sizes", "pax-long-names"} {
		t.Run(name, func(t *testing.T) {
			c, ok := tartest.Find(name)
			if !ok {
				t.Fatalf("no case %q", name)
			}
			data := plainTar(t, c.Tar)
			want, err := fstree.FromTar(bytes.NewReader(data), fstree.TarOptions{Whiteouts: fstree.WhiteoutOverlay})
			if err != nil {
				t.Fatal(err)
			}
			image, res := buildTarIndex(t, tartest.Gzip(data), &convert.TarIndexOptions{Append: true})
			img, err := os.ReadFile(image)
			if err != nil {
				t.Fatal(err)
			}
			if res.Encoding != convert.TarGzip || res.ImageSize != int64(len(img)) || !bytes.HasSuffix(img, data) {
				t.Fatalf("encoding %v, size %d of %d: want gzip and the tar at the end", res.Encoding, res.ImageSize, len(img))
			}
			compareIndex(t, image, nil, want)
			// The index alone, with the tar as its device, reads the same.
			index := filepath.Join(t.TempDir(), "index-only.erofs")
			if err := os.WriteFile(index, img[:len(img)-len(data)], 0o644); err != nil {
				t.Fatal(err)
			}
			compareIndex(t, index, data, want)
		})
	}
}

// TestTarIndexRefuses checks the inputs a tar index cannot be made of.
func TestTarIndexRefuses(t *testing.T) {
	c, _ := tartest.Find("types")
	data := plainTar(t, c.Tar)
	w := &sliceWriterAt{}
	if _, err := convert.TarToEROFSIndex(bytes.NewReader(tartest.Gzip(data)), w, nil); err == nil || !strings.Contains(err.Error(), "uncompressed tar") {
		t.Errorf("gzip input without Append: error %v, want one about the uncompressed tar", err)
	}
	o := &convert.TarIndexOptions{}
	o.EROFS.Image.BlockSize = 4096
	if _, err := convert.TarToEROFSIndex(bytes.NewReader(data), w, o); err == nil {
		t.Error("block size 4096: no error")
	}
	o = &convert.TarIndexOptions{}
	o.EROFS.Image.Compression = &erofs.Compression{Algorithm: "lz4"}
	if _, err := convert.TarToEROFSIndex(bytes.NewReader(data), w, o); err == nil {
		t.Error("compression: no error")
	}
	// A GNU sparse file's data in the tar is not its bytes in order.
	sparse := gnuSparseTar(t)
	_, err := convert.TarToEROFSIndex(bytes.NewReader(sparse), w, nil)
	if err == nil || !strings.Contains(err.Error(), "sparse") {
		t.Errorf("GNU sparse entry: error %v, want one about sparse files", err)
	}
}

// gnuSparseTar returns a tar with a GNU sparse (old format, type 'S')
// entry, written by GNU tar when it is installed.
func gnuSparseTar(t *testing.T) []byte {
	t.Helper()
	gtar, err := exec.LookPath("tar")
	if err != nil {
		t.Skip("no tar to write a GNU sparse entry")
	}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "holes"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("data"), 1<<20)
	f.Close()
	out, err := exec.Command(gtar, "--format=gnu", "--sparse", "-C", dir, "-cf", "-", "holes").Output()
	if err != nil {
		t.Skipf("tar --sparse: %v", err)
	}
	if !bytes.Contains(out[:512], []byte("holes")) || out[156] != 'S' {
		t.Skip("tar wrote no GNU sparse entry")
	}
	return out
}

// sliceWriterAt is an io.WriterAt over a growing byte slice.
type sliceWriterAt struct{ b []byte }

func (s *sliceWriterAt) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("negative offset")
	}
	if end := off + int64(len(p)); end > int64(len(s.b)) {
		s.b = append(s.b, make([]byte, end-int64(len(s.b)))...)
	}
	return copy(s.b[off:], p), nil
}

// TestTarIndexKernel mounts a tar index with the tar as device= and the
// appended form of the gzip-compressed tar alone, compares both with the
// tar, and checks both with fsck.erofs (--device for the first).
func TestTarIndexKernel(t *testing.T) {
	mounttest.Require(t)
	noteFsck(t)
	for _, name := range []string{"types", "hardlinks", "xattrs", "whiteouts", "sizes", "pax-long-names"} {
		t.Run(name, func(t *testing.T) {
			c, _ := tartest.Find(name)
			data := plainTar(t, c.Tar)
			want, err := fstree.FromTar(bytes.NewReader(data), fstree.TarOptions{Whiteouts: fstree.WhiteoutOverlay})
			if err != nil {
				t.Fatal(err)
			}
			tarPath := filepath.Join(t.TempDir(), "layer.tar")
			if err := os.WriteFile(tarPath, data, 0o644); err != nil {
				t.Fatal(err)
			}
			in, err := os.Open(tarPath)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			index := filepath.Join(t.TempDir(), "index.erofs")
			out, err := os.Create(index)
			if err != nil {
				t.Fatal(err)
			}
			// From a file: the data is skipped by seeking.
			if _, err := convert.TarToEROFSIndex(in, out, nil); err != nil {
				t.Fatal(err)
			}
			out.Close()
			appended, _ := buildTarIndex(t, tartest.Gzip(data), &convert.TarIndexOptions{Append: true})

			for _, m := range []struct {
				name  string
				image string
				devs  []string
			}{{"index", index, []string{tarPath}}, {"appended", appended, nil}} {
				got, err := fstree.FromDir(mounttest.Mount(t, m.image, m.devs...))
				if err != nil {
					t.Fatalf("%s: mounted: %v", m.name, err)
				}
				for _, d := range fstree.Compare(want, got) {
					t.Errorf("%s: kernel: %s", m.name, d)
				}
			}
			// fsck.erofs 1.9.3 reads no device at its mapped_blkaddr in
			// the primary ("invalid device id 1", for mkfs.erofs --tar=i
			// with the tar appended too): check the index part of the
			// appended form with the tar as its device, like the index.
			img, err := os.ReadFile(appended)
			if err != nil {
				t.Fatal(err)
			}
			indexPart := filepath.Join(t.TempDir(), "index-part.erofs")
			if err := os.WriteFile(indexPart, img[:len(img)-len(data)], 0o644); err != nil {
				t.Fatal(err)
			}
			if fsck := fsckErofs(); fsck != "" {
				for _, image := range []string{index, indexPart} {
					dir := filepath.Join(t.TempDir(), "x")
					args := []string{"--extract=" + dir, "--device=" + tarPath, image}
					if out, err := exec.Command(fsck, args...).CombinedOutput(); err != nil {
						t.Errorf("%s %v: %v\n%s", fsck, args, err, out)
						continue
					}
					got, err := fstree.FromDir(dir)
					if err != nil {
						t.Fatal(err)
					}
					for _, d := range fstree.CompareWith(want, got, fstree.CompareOptions{IgnoreXattr: func(string, string) bool { return true }}) {
						t.Errorf("fsck.erofs --extract %s: %s", filepath.Base(image), d)
					}
				}
			}
		})
	}
}

// hugeSparseTar writes to dir a tar whose second file's data lies past
// 2^32 512-byte blocks: the first is 2 TiB of zeros, left as a hole of the
// tar file. It returns the tar's path and the second file's content.
func hugeSparseTar(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	const zeros = int64(1) << 41
	var first, second bytes.Buffer
	tw := tar.NewWriter(&first)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "zeros", Mode: 0o644, Size: zeros, Format: tar.FormatPAX}); err != nil {
		t.Fatal(err)
	}
	far := []byte("past 2^32 blocks of the tar\n")
	tw = tar.NewWriter(&second)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "far", Mode: 0o644, Size: int64(len(far))}); err != nil {
		t.Fatal(err)
	}
	tw.Write(far)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "huge.tar")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(first.Bytes()); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(second.Bytes(), int64(first.Len())+zeros); err != nil {
		t.Skipf("no sparse file of 2 TiB here: %v", err)
	}
	return p, far
}

// TestTarIndex48Bit indexes a tar with data past 2^32 512-byte blocks (a
// sparse file: nothing of its 2 TiB is read or written), so the image
// takes 48-bit chunk addresses, and reads it back with this module's
// reader and, when it can, the kernel.
func TestTarIndex48Bit(t *testing.T) {
	tarPath, far := hugeSparseTar(t, t.TempDir())
	in, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	image := filepath.Join(t.TempDir(), "index.erofs")
	out, err := os.Create(image)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if _, err := convert.TarToEROFSIndex(in, out, nil); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := erofs.Open(bytes.NewReader(img), erofs.WithDevices(in))
	if err != nil {
		t.Fatal(err)
	}
	if sb := fsys.Superblock(); sb.FeatureIncompat&erofs.FeatureIncompat48Bit == 0 || sb.Devices[0].Blocks <= 1<<32 {
		t.Errorf("feature_incompat %#x, device %+v: want the 48-bit layout and more than 2^32 blocks", sb.FeatureIncompat, sb.Devices[0])
	}
	check := func(who string, read func(string) ([]byte, error), readAt func(string, []byte, int64) error) {
		t.Helper()
		if got, err := read("far"); err != nil || !bytes.Equal(got, far) {
			t.Errorf("%s: far: %q, %v", who, got, err)
		}
		// Both ends of the 2 TiB file (two 1 TiB chunks) read as zeros.
		for _, off := range []int64{0, 1<<41 - 4096} {
			b := bytes.Repeat([]byte{1}, 4096)
			if err := readAt("zeros", b, off); err != nil || !bytes.Equal(b, make([]byte, 4096)) {
				t.Errorf("%s: zeros at %d: %v, or not zeros", who, off, err)
			}
		}
	}
	check("our reader", fsys.ReadFile, func(name string, b []byte, off int64) error {
		f, err := fsys.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = f.(io.ReaderAt).ReadAt(b, off)
		return err
	})
	if fsck := fsckErofs(); fsck != "" {
		if out, err := exec.Command(fsck, "--device="+tarPath, image).CombinedOutput(); err != nil {
			t.Errorf("%s --device: %v\n%s", fsck, err, out)
		}
	}
	t.Run("kernel", func(t *testing.T) {
		dir := mounttest.Mount(t, image, tarPath)
		check("kernel", func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(dir, name)) },
			func(name string, b []byte, off int64) error {
				f, err := os.Open(filepath.Join(dir, name))
				if err != nil {
					return err
				}
				defer f.Close()
				_, err = f.ReadAt(b, off)
				return err
			})
	})
}

// TestTarIndexBadCases checks that every bad tar is refused from a
// seekable reader too, whose file data is skipped by seeking, not read.
func TestTarIndexBadCases(t *testing.T) {
	for _, c := range tartest.BadCases() {
		t.Run(c.Name, func(t *testing.T) {
			for _, append := range []bool{false, true} {
				_, err := convert.TarToEROFSIndex(bytes.NewReader(c.Tar), &sliceWriterAt{}, &convert.TarIndexOptions{Append: append})
				if err == nil {
					t.Errorf("append %v: no error", append)
				}
			}
		})
	}
}

// TestTarIndexDebian builds both tar index forms of the Debian base
// layer, the index from the plain tar (mounted with device=) and the
// appended form from the tar.gz (mounted alone), and compares every entry
// of both mounts with the tar.
func TestTarIndexDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("the Debian layer takes a while; skipped with -short")
	}
	mounttest.Require(t)
	layer := tartest.DebianLayer(t)
	gz, err := os.ReadFile(layer)
	if err != nil {
		t.Fatal(err)
	}
	data := plainTar(t, gz)
	want, err := fstree.FromTar(bytes.NewReader(data), fstree.TarOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	tarPath := filepath.Join(dir, "layer.tar")
	if err := os.WriteFile(tarPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	index := filepath.Join(dir, "index.erofs")
	out, err := os.Create(index)
	if err != nil {
		t.Fatal(err)
	}
	res, err := convert.TarToEROFSIndex(in, out, nil)
	out.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("index of %d bytes of tar: %d bytes", res.TarSize, res.ImageSize)
	appended, _ := buildTarIndex(t, gz, &convert.TarIndexOptions{Append: true})
	for _, m := range []struct {
		name, image string
		devs        []string
	}{{"index", index, []string{tarPath}}, {"appended", appended, nil}} {
		got, err := fstree.FromDir(mounttest.Mount(t, m.image, m.devs...))
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		diffs := fstree.Compare(want, got)
		if len(diffs) > 20 {
			diffs = diffs[:20]
		}
		for _, d := range diffs {
			t.Errorf("%s: kernel: %s", m.name, d)
		}
	}
}
