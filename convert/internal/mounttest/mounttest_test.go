//go:build linux

package mounttest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
)

func TestMissing(t *testing.T) {
	if got := missing("no-such-filesystem"); got == "" {
		t.Error(`missing("no-such-filesystem") = "", want a reason`)
	}
}

// readTar reads a gzipped testdata tar into a tree.
func readTar(t *testing.T, name string, w fstree.Whiteouts) *fstree.Tree {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tree, err := fstree.FromTar(f, fstree.TarOptions{Whiteouts: w})
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func fromDir(t *testing.T, dir string) *fstree.Tree {
	t.Helper()
	tree, err := fstree.FromDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func checkTrees(t *testing.T, want, got *fstree.Tree, opt fstree.CompareOptions) {
	t.Helper()
	if diffs := fstree.CompareWith(want, got, opt); len(diffs) > 0 {
		t.Errorf("%d differences:\n%s", len(diffs), strings.Join(diffs, "\n"))
	}
}

func TestMount(t *testing.T) {
	Require(t)
	mnt := Mount(t, fixture(t, lowerImage))
	checkTrees(t, readTar(t, lowerTar, fstree.WhiteoutOverlay), fromDir(t, mnt), fstree.CompareOptions{})
}

func TestMountWithDevice(t *testing.T) {
	Require(t)
	mnt := Mount(t, fixture(t, lowerIndexImage), fixture(t, lowerTar))
	checkTrees(t, readTar(t, lowerTar, fstree.WhiteoutOverlay), fromDir(t, mnt), fstree.CompareOptions{})
}

func TestMountWhiteouts(t *testing.T) {
	Require(t)
	mnt := Mount(t, fixture(t, upperImage))
	checkTrees(t, readTar(t, upperTar, fstree.WhiteoutOverlay), fromDir(t, mnt), fstree.CompareOptions{})
}

// TestOverlay checks fstree.Apply against the kernel's overlayfs.
func TestOverlay(t *testing.T) {
	Require(t)
	lower := Mount(t, fixture(t, lowerImage))
	upper := Mount(t, fixture(t, upperImage))
	mnt := Overlay(t, upper, lower)
	want := fstree.Apply(readTar(t, lowerTar, fstree.WhiteoutOverlay), readTar(t, upperTar, fstree.WhiteoutOverlay))
	// Overlayfs reports nlink 1 for merged directories.
	checkTrees(t, want, fromDir(t, mnt), fstree.CompareOptions{IgnoreNlinkDirs: true})
}

func TestOverlaySingleLower(t *testing.T) {
	Require(t)
	mnt := Overlay(t, Mount(t, fixture(t, lowerImage)))
	want := fstree.Apply(&fstree.Tree{Nodes: map[string]*fstree.Node{}}, readTar(t, lowerTar, fstree.WhiteoutOverlay))
	checkTrees(t, want, fromDir(t, mnt), fstree.CompareOptions{IgnoreNlinkDirs: true})
}

// gnuTarQuirks lists what GNU tar 1.34 extracting onto ext4 cannot
// reproduce, per case; the oracle is right in each (it matches mkfs.erofs).
var gnuTarQuirks = map[string]struct {
	args      []string // extra tar arguments
	xattrs    []string // "path xattr" pairs to ignore
	allXattrs bool     // ignore every xattr of the case
	comment   string
}{
	"xattr-max-value": {allXattrs: true, comment: "ext4 without ea_inode cannot store xattr values this large"},
	"pax-global":      {allXattrs: true, comment: "GNU tar 1.34 cannot apply xattrs from global PAX headers"},
	"xattr-libarchive": {
		xattrs:  []string{"la user.lib archive=%", "la user.pad", "la user.plain"},
		comment: "GNU tar ignores LIBARCHIVE.xattr records",
	},
	"duplicates": {
		xattrs: []string{"dd user.a"},
		comment: "GNU tar applies a repeated directory's xattrs from its last entry only; " +
			"mkfs.erofs and containerd keep the union",
	},
	"dir-to-file": {
		args:    []string{"--recursive-unlink"},
		comment: "GNU tar cannot replace a non-empty directory without --recursive-unlink",
	},
}

// TestOracleMatchesGNUTar cross-checks fstree.FromTar against a real
// extractor: GNU tar extracting every golden case as root.
func TestOracleMatchesGNUTar(t *testing.T) {
	if os.Geteuid() != 0 {
		skipOrFail(t, "not running as root")
	}
	tarBin, err := exec.LookPath("tar")
	if err != nil {
		skipOrFail(t, "no tar in $PATH")
	}
	if out, err := exec.Command(tarBin, "--version").Output(); err != nil || !bytes.Contains(out, []byte("GNU tar")) {
		skipOrFail(t, "tar in $PATH is not GNU tar")
	}
	for _, c := range tartest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			q := gnuTarQuirks[c.Name]
			if q.comment != "" {
				t.Log("known difference:", q.comment)
			}
			dir := t.TempDir()
			file := filepath.Join(dir, "layer.tar")
			if err := os.WriteFile(file, c.Tar, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out")
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"--extract", "--file", file, "--directory", out,
				"--same-permissions", "--same-owner", "--numeric-owner",
				"--xattrs", "--xattrs-include=*", "--delay-directory-restore"}, q.args...)
			cmd := exec.Command(tarBin, args...)
			cmd.Env = append(os.Environ(), "LC_ALL=C")
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %v\n%s", cmd, err, b)
			}
			want, err := fstree.FromTar(bytes.NewReader(c.Tar), fstree.TarOptions{Whiteouts: fstree.WhiteoutKeep})
			if err != nil {
				t.Fatal(err)
			}
			ignored := make(map[string]bool)
			for _, x := range q.xattrs {
				ignored[x] = true
			}
			checkTrees(t, want, fromDir(t, out), fstree.CompareOptions{
				// GNU tar gives implicit directories the extraction time
				// and the umask's mode.
				IgnoreImplicit: true,
				IgnoreXattr:    func(p, name string) bool { return q.allXattrs || ignored[p+" "+name] },
			})
		})
	}
}
