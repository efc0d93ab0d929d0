package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// mountTmpfs mounts a tmpfs of size bytes on a new directory, unmounted
// when the test ends.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	requireRoot(t, "mounting a tmpfs")
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size="+size+",mode=0755"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// fillUp writes a file into dir until its file system is full.
func fillUp(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return
		}
	}
}

// faultInputs are inputs whose outputs are larger than a 1 MiB tmpfs: a
// tar of 4 MiB of random bytes, and its Nydus blob.
type faultInputs struct {
	tar, blob, id string
}

func makeFaultInputs(t *testing.T) *faultInputs {
	t.Helper()
	dir := t.TempDir()
	in := &faultInputs{tar: filepath.Join(dir, "big.tar"), blob: filepath.Join(dir, "big.blob")}
	if err := os.WriteFile(in.tar, slowTar(t), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := rafsCmd(t, "build", "--type", "nydus", "-q", "-o", in.blob, in.tar); code != 0 {
		t.Fatal(stderr)
	}
	in.id = fileSHA256(t, in.blob)
	return in
}

// faultCase is a command writing into dir (a full or read-only file
// system, prepared by setup), and other, a directory elsewhere.
type faultCase struct {
	name  string
	setup func(t *testing.T, dir string)
	args  func(in *faultInputs, dir, other string) []string
}

func faultCases() []faultCase {
	old := func(names ...string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			for _, n := range names {
				p := filepath.Join(dir, n)
				os.MkdirAll(filepath.Dir(p), 0o755)
				if err := os.WriteFile(p, []byte("old "+n), 0o640); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	layout := func(t *testing.T, dir string) {
		mustRun(t, "convert", "--progress", "none", sampleSrc, "oci:"+filepath.Join(dir, "layout")+":old")
	}
	return []faultCase{
		{"erofs", old("out"), func(in *faultInputs, dir, other string) []string {
			return []string{"build", "-q", "-o", filepath.Join(dir, "out"), in.tar}
		}},
		{"nydus-blob", old("out"), func(in *faultInputs, dir, other string) []string {
			return []string{"build", "--type", "nydus", "-q", "-o", filepath.Join(dir, "out"), in.tar}
		}},
		{"nydus-pair", old("boot"), func(in *faultInputs, dir, other string) []string {
			return []string{"build", "--type", "nydus", "-q", "-o", filepath.Join(other, "blob"), "--bootstrap", filepath.Join(dir, "boot"), in.tar}
		}},
		{"merge", old("boot"), func(in *faultInputs, dir, other string) []string {
			return []string{"merge", "-q", "-o", filepath.Join(dir, "boot"), in.blob}
		}},
		{"unpack", old("out.tar"), func(in *faultInputs, dir, other string) []string {
			return []string{"unpack", "-q", "-o", filepath.Join(dir, "out.tar"), in.blob}
		}},
		{"unpack-cache-new", nil, func(in *faultInputs, dir, other string) []string {
			return []string{"unpack", "-q", "--cache-dir", filepath.Join(dir, "cache", "sub"), in.blob}
		}},
		{"unpack-cache-existing", nil, func(in *faultInputs, dir, other string) []string {
			return []string{"unpack", "-q", "-o", filepath.Join(other, "out.tar"), "--cache-dir", filepath.Join(dir, "cache"), in.blob}
		}},
		{"convert-existing", layout, func(in *faultInputs, dir, other string) []string {
			return []string{"convert", "--progress", "none", sampleSrc, "oci:" + filepath.Join(dir, "layout") + ":new"}
		}},
		{"convert-existing-erofs", layout, func(in *faultInputs, dir, other string) []string {
			return []string{"convert", "--type", "erofs", "--progress", "none", sampleSrc, "oci:" + filepath.Join(dir, "layout") + ":new"}
		}},
		{"convert-new", nil, func(in *faultInputs, dir, other string) []string {
			return []string{"convert", "--progress", "none", sampleSrc, "oci:" + filepath.Join(dir, "layout")}
		}},
	}
}

// runFault runs c into dir after prepare (which fills or remounts it), and
// checks that it fails with exit status 1 and changes nothing in dir or
// in other, and leaves nothing in TMPDIR.
func runFault(t *testing.T, in *faultInputs, c faultCase, dir string, prepare func()) {
	t.Helper()
	other, tmp := t.TempDir(), t.TempDir()
	t.Setenv("TMPDIR", tmp)
	if c.setup != nil {
		c.setup(t, dir)
	}
	if c.name == "unpack-cache-existing" {
		old := filepath.Join(dir, "cache", in.id+".blob.data")
		os.MkdirAll(filepath.Dir(old), 0o755)
		os.WriteFile(old, []byte("old cache"), 0o644)
	}
	if c.name == "nydus-pair" {
		os.WriteFile(filepath.Join(other, "blob"), []byte("old blob"), 0o644)
	}
	prepare()
	before, beforeOther := dirState(t, dir), dirState(t, other)
	args := c.args(in, dir, other)
	code, _, stderr := rafsCmd(t, args...)
	if code != 1 {
		t.Errorf("rafs %s: exit code %d, want 1: %s", strings.Join(args, " "), code, stderr)
	}
	if after := dirState(t, dir); after != before {
		t.Errorf("%s changed:\n%s\nwant\n%s", dir, after, before)
	}
	if after := dirState(t, other); after != beforeOther {
		t.Errorf("%s changed:\n%s\nwant\n%s", other, after, beforeOther)
	}
	if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
		t.Errorf("left in TMPDIR: %v", ents)
	}
	t.Logf("%s", strings.TrimSpace(stderr))
}

// TestFullFilesystem writes every kind of output onto a full file
// system: each fails with exit status 1, leaving what was there as it
// was (a replaced file, a layout) and nothing else.
func TestFullFilesystem(t *testing.T) {
	requireRoot(t, "mounting a tmpfs")
	in := makeFaultInputs(t)
	for _, c := range faultCases() {
		t.Run(c.name, func(t *testing.T) {
			dir := mountTmpfs(t, "1m")
			runFault(t, in, c, dir, func() {
				// The outputs of the 4 MiB input do not fit; the small
				// ones (a bootstrap, a layout's index.json) need the rest
				// of the space gone.
				if !strings.HasPrefix(c.name, "erofs") && c.name != "nydus-blob" && c.name != "unpack" && !strings.HasPrefix(c.name, "unpack-cache") {
					fillUp(t, dir)
				}
			})
		})
	}
}

// TestReadOnlyOutputDir writes every kind of output into a read-only
// file system (permission bits would not stop root): a clear error, exit
// status 1, nothing changed.
func TestReadOnlyOutputDir(t *testing.T) {
	requireRoot(t, "mounting a tmpfs")
	in := makeFaultInputs(t)
	for _, c := range faultCases() {
		t.Run(c.name, func(t *testing.T) {
			dir := mountTmpfs(t, "16m")
			runFault(t, in, c, dir, func() {
				if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
					t.Fatalf("remount read-only: %v", err)
				}
			})
		})
	}
}
