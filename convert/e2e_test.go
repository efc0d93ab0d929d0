package convert_test

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	goerofs "github.com/erofs/go-erofs"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/erofs"
)

var whiteoutModes = []struct {
	name   string
	conv   convert.WhiteoutMode
	oracle fstree.Whiteouts
}{
	{"overlay", convert.WhiteoutOverlay, fstree.WhiteoutOverlay},
	{"keep", convert.WhiteoutKeep, fstree.WhiteoutKeep},
	{"strip", convert.WhiteoutStrip, fstree.WhiteoutStrip},
}

// buildImage converts a tar into an image file and returns its path.
func buildImage(t testing.TB, tarData io.Reader, opts *convert.EROFSOptions) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "layer.erofs")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := convert.TarToEROFS(tarData, f, opts); err != nil {
		t.Fatal(err)
	}
	return p
}

// ourMeta adapts this module's reader to fstree.
func ourMeta(_ string, fi fs.FileInfo) (fstree.Meta, error) {
	st, ok := fi.Sys().(*erofs.Stat)
	if !ok {
		return fstree.Meta{}, fmt.Errorf("Sys() is %T", fi.Sys())
	}
	return fstree.Meta{Mode: st.Mode, UID: st.UID, GID: st.GID, Mtime: st.Mtime, MtimeNsec: st.MtimeNsec,
		Nlink: st.Nlink, Devmajor: st.Devmajor, Devminor: st.Devminor, Xattrs: st.Xattrs, Ino: st.Nid}, nil
}

// goErofsMeta adapts github.com/erofs/go-erofs to fstree.
func goErofsMeta(_ string, fi fs.FileInfo) (fstree.Meta, error) {
	st, ok := fi.Sys().(*goerofs.Stat)
	if !ok {
		return fstree.Meta{}, fmt.Errorf("Sys() is %T", fi.Sys())
	}
	return fstree.Meta{Mode: fstree.UnixMode(st.Mode), UID: st.UID, GID: st.GID, Mtime: int64(st.Mtime), MtimeNsec: st.MtimeNs,
		Nlink: uint32(st.Nlink), Devmajor: (st.Rdev >> 8) & 0xfff, Devminor: st.Rdev&0xff | (st.Rdev>>12)&0xfff00,
		Xattrs: st.Xattrs, Ino: uint64(st.Ino)}, nil
}

// checkImage compares an image, read three ways — mounted by the kernel,
// with this module's reader and with go-erofs — against the oracle, and
// checks it with fsck.erofs when one is available.
func checkImage(t *testing.T, image string, want *fstree.Tree, mount bool) {
	t.Helper()
	checkImageWith(t, image, want, checkOptions{mount: mount})
}

// checkOptions says how checkImageWith checks an image.
type checkOptions struct {
	mount bool // mount it with the kernel and compare
	// extracted compares what fsck.erofs --extract writes with the oracle
	// too (but for xattrs, which fsck.erofs extracts only in part), not
	// just its exit status.
	extracted bool
}

// checkImageWith is checkImage with options.
func checkImageWith(t *testing.T, image string, want *fstree.Tree, opt checkOptions) {
	t.Helper()
	img, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
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
	ours, err := erofs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatalf("our reader: %v", err)
	}
	// A read error still lets the other readers have their say.
	if got, err := fstree.FromFS(ours, ourMeta, ours.ReadLink); err != nil {
		t.Errorf("our reader: %v", err)
	} else {
		report("our reader", fstree.Compare(want, got))
	}

	// go-erofs follows io/fs path rules (UTF-8 only), misnames POSIX ACL
	// xattrs and reads no compressed images; compare what it can represent.
	utf8Only := ours.Superblock().FeatureIncompat&erofs.FeatureIncompatZeroPadding == 0
	for p := range want.Nodes {
		utf8Only = utf8Only && utf8.ValidString(p)
	}
	if utf8Only {
		gfs, err := goerofs.Open(bytes.NewReader(img))
		if err != nil {
			t.Fatalf("go-erofs: %v", err)
		}
		got, err := fstree.FromFS(gfs, goErofsMeta, nil)
		if err != nil {
			t.Fatalf("go-erofs: %v", err)
		}
		report("go-erofs", fstree.CompareWith(want, got, fstree.CompareOptions{
			IgnoreXattr: func(_, name string) bool { return strings.HasPrefix(name, "system.posix_acl") },
		}))
	}

	if fsck := fsckErofs(); fsck != "" {
		// fsck.erofs 1.9.3 --extract=DIR writes the packed inode (of
		// fragments) to DIR itself, then fails to extract the root there,
		// even for mkfs.erofs's images. With a packed inode, check that
		// every file decodes (--extract without a directory) instead.
		dir, arg := filepath.Join(t.TempDir(), "x"), "--extract"
		if ours.Superblock().PackedNid == 0 {
			arg += "=" + dir
		} else {
			dir = ""
		}
		out, err := exec.Command(fsck, arg, image).CombinedOutput()
		if err != nil {
			t.Errorf("%s %s: %v\n%s", fsck, arg, err, out)
		} else if opt.extracted && dir != "" {
			got, err := fstree.FromDir(dir)
			if err != nil {
				t.Fatalf("fsck.erofs --extract: %v", err)
			}
			report("fsck.erofs --extract", fstree.CompareWith(want, got, fstree.CompareOptions{
				IgnoreXattr: func(string, string) bool { return true },
			}))
		}
	}

	if opt.mount {
		dir := mounttest.Mount(t, image)
		got, err := fstree.FromDir(dir)
		if err != nil {
			t.Fatalf("mounted: %v", err)
		}
		report("kernel", fstree.Compare(want, got))
	}
}

// noteFsck logs which fsck.erofs checks the test's images, or that none
// does, so that a run without one says so.
func noteFsck(t *testing.T) {
	t.Helper()
	if fsck := fsckErofs(); fsck != "" {
		t.Logf("checking images with %s --extract", fsck)
	} else {
		t.Logf("fsck.erofs checks skipped: no fsck.erofs 1.9 or later on $PATH and $RAFS_FSCK_EROFS unset")
	}
}

// fsckErofs returns the fsck.erofs to check images with: $RAFS_FSCK_EROFS,
// or one on $PATH from erofs-utils 1.9 or later (older ones reject valid
// images), or "" for none.
func fsckErofs() string {
	if p := os.Getenv("RAFS_FSCK_EROFS"); p != "" {
		return p
	}
	p, err := exec.LookPath("fsck.erofs")
	if err != nil {
		return ""
	}
	out, _ := exec.Command(p, "-V").CombinedOutput()
	var major, minor int
	if _, v, ok := strings.Cut(string(out), "(erofs-utils) "); ok {
		fmt.Sscanf(v, "%d.%d", &major, &minor)
	}
	if major > 1 || major == 1 && minor >= 9 {
		return p
	}
	return ""
}

// TestEndToEndGolden converts every golden tar in every whiteout mode, and
// compares the kernel's view of the image with the oracle's view of the tar.
func TestEndToEndGolden(t *testing.T) {
	mounttest.Require(t)
	for _, c := range tartest.Cases() {
		for _, m := range whiteoutModes {
			if m.conv != convert.WhiteoutOverlay && c.Name != "whiteouts" {
				continue
			}
			t.Run(c.Name+"/"+m.name, func(t *testing.T) {
				want, err := fstree.FromTar(bytes.NewReader(c.Tar), fstree.TarOptions{Whiteouts: m.oracle})
				if err != nil {
					t.Fatal(err)
				}
				image := buildImage(t, bytes.NewReader(c.Tar), &convert.EROFSOptions{Whiteouts: m.conv})
				checkImage(t, image, want, true)
			})
		}
	}
}

// TestEndToEndBlockSizes builds a few golden cases with every block size.
func TestEndToEndBlockSizes(t *testing.T) {
	mounttest.Require(t)
	for _, name := range []string{"types", "sizes", "xattrs", "big-dir", "hardlinks"} {
		c, ok := tartest.Find(name)
		if !ok {
			t.Fatalf("no golden case %q", name)
		}
		want, err := fstree.FromTar(bytes.NewReader(c.Tar), fstree.TarOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, bs := range []int{512, 1024, 2048, 4096} {
			for _, inline := range []bool{true, false} {
				t.Run(fmt.Sprintf("%s/bs%d/inline=%v", name, bs, inline), func(t *testing.T) {
					opts := &convert.EROFSOptions{}
					opts.Image.BlockSize, opts.Image.NoInlineData = bs, !inline
					checkImage(t, buildImage(t, bytes.NewReader(c.Tar), opts), want, true)
				})
			}
		}
	}
}

func TestBadCases(t *testing.T) {
	for _, c := range tartest.BadCases() {
		t.Run(c.Name, func(t *testing.T) {
			_, err := convert.TarToEROFS(bytes.NewReader(c.Tar), &memImage{}, nil)
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), "offset") {
				t.Errorf("error does not give an offset: %v", err)
			}
		})
	}
}

func TestEndToEndNydusFixtures(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("..", "testdata", "nydus", "tar", "*.tar"))
	if len(paths) == 0 {
		t.Fatal("no tars in testdata/nydus/tar")
	}
	mounttest.Require(t)
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			want, err := fstree.FromTar(bytes.NewReader(data), fstree.TarOptions{})
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, buildImage(t, bytes.NewReader(data), nil), want, true)
		})
	}
}

// TestEndToEndDebian converts a real Debian base layer and compares every
// entry of the mounted image with the tar.
func TestEndToEndDebian(t *testing.T) {
	if testing.Short() {
		t.Skip("the Debian layer takes a while; skipped with -short")
	}
	mounttest.Require(t)
	layer := tartest.DebianLayer(t)
	f, err := os.Open(layer)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	want, err := fstree.FromTar(f, fstree.TarOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f.Seek(0, io.SeekStart)
	image := buildImage(t, f, nil)
	checkImage(t, image, want, true)

	// A second build is byte-identical.
	f.Seek(0, io.SeekStart)
	again := buildImage(t, f, nil)
	a, _ := os.ReadFile(image)
	b, _ := os.ReadFile(again)
	if !bytes.Equal(a, b) {
		t.Error("two builds of the Debian layer differ")
	}
}

// TestEndToEndDirectory extracts golden tars with GNU tar, builds images
// from the directories, and compares the mounts with the directories.
func TestEndToEndDirectory(t *testing.T) {
	mounttest.Require(t)
	if _, err := exec.LookPath("tar"); err != nil {
		t.Skip("no tar to extract the golden cases with")
	}
	for _, name := range []string{"types", "hardlinks", "xattrs", "modes", "sizes", "deep"} {
		t.Run(name, func(t *testing.T) {
			c, _ := tartest.Find(name)
			src := t.TempDir()
			cmd := exec.Command("tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", "-", "-C", src)
			cmd.Stdin = bytes.NewReader(c.Tar)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("tar: %v\n%s", err, out)
			}
			want, err := fstree.FromDir(src)
			if err != nil {
				t.Fatal(err)
			}
			image := filepath.Join(t.TempDir(), "dir.erofs")
			f, err := os.Create(image)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := convert.DirToEROFS(src, f, nil); err != nil {
				t.Fatal(err)
			}
			f.Close()
			got, err := fstree.FromDir(mounttest.Mount(t, image))
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range fstree.Compare(want, got) {
				t.Error(d)
			}
		})
	}
}
