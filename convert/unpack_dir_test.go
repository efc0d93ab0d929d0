package convert_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/erofs"
)

// unpackedEqualsMounted unpacks the image at img (with its devices) into
// a directory with UnpackEROFSDir and compares that tree with the kernel's
// mount of the image: everything but sockets, which a tar cannot hold.
func unpackedEqualsMounted(t *testing.T, who, img string, devices ...string) {
	t.Helper()
	mnt := mounttest.Mount(t, img, devices...)
	r, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var opts []erofs.OpenOption
	if len(devices) > 0 {
		var devs []io.ReaderAt
		for _, d := range devices {
			f, err := os.Open(d)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			devs = append(devs, f)
		}
		opts = append(opts, erofs.WithDevices(devs...))
	}
	f, err := erofs.Open(r, opts...)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	res, xres, err := convert.UnpackEROFSDir(f, out)
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.E2BIG) {
		// ext4 without ea_inode holds xattr values up to a block.
		t.Logf("%s: the file system of the temporary directory cannot hold it: %v", who, err)
		return
	}
	if err != nil {
		t.Fatalf("%s: %v", who, err)
	}
	if xres.SkippedNodes != 0 {
		t.Errorf("%s: %d device nodes left out as root", who, xres.SkippedNodes)
	}
	sockets := map[string]bool{}
	filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&fs.ModeSocket != 0 {
			rel, _ := filepath.Rel(mnt, p)
			sockets[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	if len(sockets) != res.Sockets {
		t.Errorf("%s: %d sockets left out, the mount has %d", who, res.Sockets, len(sockets))
	}
	want, err := fstree.FromDir(mnt)
	if err != nil {
		t.Fatal(err)
	}
	got, err := fstree.FromDir(out)
	if err != nil {
		t.Fatal(err)
	}
	reportDiffs(t, who, fstree.CompareWith(want, got, fstree.CompareOptions{Skip: func(p string) bool { return sockets[p] }}))
}

// TestUnpackEROFSDirGoldens: every mkfs.erofs golden image (each layout
// and algorithm, chunk-based, a blob device) unpacked into a directory
// equals its kernel mount.
func TestUnpackEROFSDirGoldens(t *testing.T) {
	mounttest.Require(t)
	dir := t.TempDir()
	golden := func(name string) string {
		f, err := os.Open(filepath.Join("..", "erofs", "testdata", name+".gz"))
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
	ents, err := os.ReadDir(filepath.Join("..", "erofs", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".gz")
		if !ok || !strings.HasSuffix(name, ".erofs") {
			continue
		}
		var devs []string
		if name == "blobdev.erofs" {
			devs = append(devs, golden("blob.img"))
		}
		unpackedEqualsMounted(t, name, golden(name), devs...)
		n++
	}
	if n < 50 {
		t.Errorf("%d golden images", n)
	}
}

// TestUnpackEROFSDirOurs: images of ours built from every tar case,
// plain and compressed (lz4hc, tail packing), unpacked into a directory
// equal their kernel mounts.
func TestUnpackEROFSDirOurs(t *testing.T) {
	mounttest.Require(t)
	for _, c := range tartest.Cases() {
		for _, comp := range []string{"", "lz4hc"} {
			o := &convert.EROFSOptions{}
			if comp != "" {
				o = compressed(t, comp, 16384, true)
			}
			img := buildImage(t, bytes.NewReader(c.Tar), o)
			unpackedEqualsMounted(t, c.Name+" "+comp, img)
		}
	}
}

// TestUnpackEROFSDirLayouts: the multi-device layouts of ours unpacked
// into a directory equal their kernel mounts: chunk-based with a blob
// device, tar indexes (the tar as the device, and appended), and merged
// metadata over tar-index layers.
func TestUnpackEROFSDirLayouts(t *testing.T) {
	mounttest.Require(t)
	tars := tartest.Stack()
	img, blob := buildChunked(t, tars[0], 8192, true)
	unpackedEqualsMounted(t, "chunked with a blob device", img, blob)
	for _, appended := range []bool{false, true} {
		dir := t.TempDir()
		var layers, devs []string
		for i, data := range tars {
			tarPath := filepath.Join(dir, fmt.Sprintf("layer%d.tar", i))
			if err := os.WriteFile(tarPath, data, 0o644); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, fmt.Sprintf("layer%d.erofs", i))
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			_, err = convert.TarToEROFSIndex(bytes.NewReader(data), f, &convert.TarIndexOptions{
				EROFS: convert.EROFSOptions{Whiteouts: convert.WhiteoutOverlay}, Append: appended,
			})
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			layers = append(layers, p)
			dev := tarPath
			if appended {
				dev = p
			}
			devs = append(devs, dev)
			if appended {
				unpackedEqualsMounted(t, fmt.Sprintf("appended tar index %d", i), p)
			} else {
				unpackedEqualsMounted(t, fmt.Sprintf("tar index %d", i), p, tarPath)
			}
		}
		unpackedEqualsMounted(t, fmt.Sprintf("merged (appended %v)", appended), mergeLayers(t, layers), devs...)
	}
}
