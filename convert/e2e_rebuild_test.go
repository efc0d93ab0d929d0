package convert_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	goerofs "github.com/erofs/go-erofs"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/erofs/rebuild"
)

// mergeLayers writes the merged metadata of the layer images (lowest
// first) next to them and returns its path.
func mergeLayers(t testing.TB, layers []string) string {
	t.Helper()
	var ls []rebuild.Layer
	for _, p := range layers {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		fi, err := f.Stat()
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, rebuild.Layer{Name: p, Image: f, Size: fi.Size()})
	}
	meta := filepath.Join(t.TempDir(), "meta.erofs")
	out, err := os.Create(meta)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	res, err := rebuild.Merge(out, ls, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Devices) != len(layers) {
		t.Fatalf("%d devices for %d layers", len(res.Devices), len(layers))
	}
	return meta
}

// checkMerged compares the merged image meta over the devices devs with
// want: through our reader, fsck.erofs (when there is one) and a kernel
// mount with one device= per layer.
func checkMerged(t *testing.T, meta string, devs []string, want *fstree.Tree) {
	t.Helper()
	var readers []io.ReaderAt
	for _, p := range devs {
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		readers = append(readers, f)
	}
	mf, err := os.Open(meta)
	if err != nil {
		t.Fatal(err)
	}
	defer mf.Close()
	ours, err := erofs.Open(mf, erofs.WithDevices(readers...))
	if err != nil {
		t.Fatalf("our reader: %v", err)
	}
	got, err := fstree.FromFS(ours, ourMeta, ours.ReadLink)
	if err != nil {
		t.Fatalf("our reader: %v", err)
	}
	reportDiffs(t, "our reader", fstree.Compare(want, got))

	// go-erofs, an independent reader, takes the devices too.
	mb, err := os.ReadFile(meta)
	if err != nil {
		t.Fatal(err)
	}
	gfs, err := goerofs.Open(bytes.NewReader(mb), goerofs.WithExtraDevices(readers...))
	if err != nil {
		t.Fatalf("go-erofs: %v", err)
	}
	if got, err := fstree.FromFS(gfs, goErofsMeta, nil); err != nil {
		t.Errorf("go-erofs: %v", err)
	} else {
		reportDiffs(t, "go-erofs", fstree.CompareWith(want, got, fstree.CompareOptions{
			IgnoreXattr: func(_, name string) bool { return strings.HasPrefix(name, "system.posix_acl") },
		}))
	}

	if fsck := fsckErofs(); fsck != "" {
		dir := filepath.Join(t.TempDir(), "x")
		args := []string{"--extract=" + dir}
		for _, d := range devs {
			args = append(args, "--device="+d)
		}
		out, err := exec.Command(fsck, append(args, meta)...).CombinedOutput()
		if err != nil {
			t.Errorf("%s %v: %v\n%s", fsck, args, err, out)
		} else {
			got, err := fstree.FromDir(dir)
			if err != nil {
				t.Fatalf("fsck.erofs --extract: %v", err)
			}
			reportDiffs(t, "fsck.erofs --extract", fstree.CompareWith(want, got, fstree.CompareOptions{
				IgnoreXattr: func(string, string) bool { return true },
			}))
		}
	} else {
		t.Log("fsck.erofs check skipped: no fsck.erofs 1.9 or later on $PATH and $RAFS_FSCK_EROFS unset")
	}

	checkMount(t, mounttest.Mount(t, meta, devs...), want)
}

// TestEndToEndMergedEROFS builds the three-layer stack as EROFS layers
// without inline tails, merges them into metadata over the layers as
// devices and compares it, mounted with one device= per layer, with the
// layers applied in order: whiteouts, opaque directories, replaced files,
// hard links and xattrs. The stack of the lowest one, two and three
// layers, and the three as chunk-based layers (4 KiB chunks with
// duplicates and holes, in the image or on a blob device, which is then
// the merged image's device) are merged.
func TestEndToEndMergedEROFS(t *testing.T) {
	mounttest.Require(t)
	tars := tartest.Stack()
	var layers []string
	for i, data := range tars {
		layers = append(layers, buildImage(t, bytes.NewReader(data), &convert.EROFSOptions{
			Image:     erofs.WriterOptions{NoInlineData: true},
			Whiteouts: convert.WhiteoutOverlay,
		}))
		t.Run("layers1-"+string(rune('1'+i)), func(t *testing.T) {
			meta := mergeLayers(t, layers)
			checkMerged(t, meta, layers, applyStack(t, tars[:i+1]...))
		})
	}
	for _, blobdev := range []bool{false, true} {
		name := "chunked"
		if blobdev {
			name = "blobdev"
		}
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			var layers, devs []string
			for i, data := range tars {
				img := filepath.Join(dir, fmt.Sprintf("layer%d.erofs", i+1))
				opts := &convert.EROFSOptions{Image: erofs.WriterOptions{ChunkSize: 4096}, Whiteouts: convert.WhiteoutOverlay}
				dev := img
				if blobdev {
					dev = filepath.Join(dir, fmt.Sprintf("layer%d.blob", i+1))
					blob, err := os.Create(dev)
					if err != nil {
						t.Fatal(err)
					}
					defer blob.Close()
					opts.Image.BlobDev = blob
				}
				f, err := os.Create(img)
				if err != nil {
					t.Fatal(err)
				}
				_, err = convert.TarToEROFS(bytes.NewReader(data), f, opts)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				layers, devs = append(layers, img), append(devs, dev)
			}
			checkMerged(t, mergeLayers(t, layers), devs, applyStack(t, tars...))
		})
	}
}

// splitDebian writes the Debian layer's entries as three layer tars in dir:
// usr/lib, the rest of usr, everything else. Each tar repeats the
// directory entries above its entries, and a hard link goes with its
// target.
func splitDebian(t testing.TB, dir string) []string {
	t.Helper()
	f, err := os.Open(tartest.DebianLayer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	var tws []*tar.Writer
	for i := range 3 {
		p := filepath.Join(dir, fmt.Sprintf("part%d.tar", i+1))
		out, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		paths = append(paths, p)
		tws = append(tws, tar.NewWriter(out))
	}
	clean := func(name string) string { return strings.Trim(strings.TrimPrefix(name, "./"), "/") }
	dirs := map[string]*tar.Header{}
	written := make([]map[string]bool, 3)
	for i := range written {
		written[i] = map[string]bool{}
	}
	partOf := map[string]int{}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := clean(h.Name)
		part := 2
		switch {
		case name == "usr/lib" || strings.HasPrefix(name, "usr/lib/"):
			part = 0
		case name == "usr" || strings.HasPrefix(name, "usr/"):
			part = 1
		}
		if h.Typeflag == tar.TypeLink {
			part = partOf[clean(h.Linkname)]
		}
		partOf[name] = part
		if h.Typeflag == tar.TypeDir {
			dirs[name] = h
		}
		tw := tws[part]
		for i := 0; i <= len(name); i++ {
			if i < len(name) && name[i] != '/' || name == "" {
				continue
			}
			a := name[:i]
			if d := dirs[a]; d != nil && !written[part][a] && a != name {
				written[part][a] = true
				if err := tw.WriteHeader(d); err != nil {
					t.Fatal(err)
				}
			}
		}
		if h.Typeflag == tar.TypeDir {
			if written[part][name] {
				continue
			}
			written[part][name] = true
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			t.Fatal(err)
		}
	}
	for _, tw := range tws {
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return paths
}

// TestEndToEndMergedDebian splits the Debian layer in three layers, merges
// them and compares the merged image, mounted over the three layers, with
// the whole layer: layers without inline tails, and tar-index layers (the
// part tars are then the devices). The merge's time is logged (the
// acceptance figure: under 0.5 s).
func TestEndToEndMergedDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("the Debian layer takes a while; skipped with -short")
	}
	mounttest.Require(t)
	parts := splitDebian(t, t.TempDir())
	f, err := os.Open(tartest.DebianLayer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := fstree.FromTar(f, fstree.TarOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tarIndex := range []bool{false, true} {
		name := "noinline"
		if tarIndex {
			name = "tarindex"
		}
		t.Run(name, func(t *testing.T) {
			var layers, devs []string
			for _, p := range parts {
				f, err := os.Open(p)
				if err != nil {
					t.Fatal(err)
				}
				if tarIndex {
					img := p + ".erofs"
					out, err := os.Create(img)
					if err != nil {
						t.Fatal(err)
					}
					_, err = convert.TarToEROFSIndex(f, out, nil)
					out.Close()
					if err != nil {
						t.Fatal(err)
					}
					layers, devs = append(layers, img), append(devs, p)
				} else {
					img := buildImage(t, f, &convert.EROFSOptions{Image: erofs.WriterOptions{NoInlineData: true}})
					layers, devs = append(layers, img), append(devs, img)
				}
				f.Close()
			}
			start := time.Now()
			meta := mergeLayers(t, layers)
			took := time.Since(start)
			fi, err := os.Stat(meta)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("merged metadata of three Debian layers: %d bytes in %v", fi.Size(), took)
			checkMerged(t, meta, devs, want)
		})
	}
}
