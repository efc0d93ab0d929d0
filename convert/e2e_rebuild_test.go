package convert_test

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

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
// hard links and xattrs.
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
}
