//go:build linux

package rafs

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/rafs-dev/rafs/erofs"
)

// fsckName is the erofs-utils fsck used, when $PATH has it, to check
// bootstraps a second way.
const fsckName = "fsck.erofs"

// writeImage writes a bootstrap and its blobs' uncompressed data files to
// a temporary directory and returns their paths.
func writeImage(t *testing.T, img []byte, blobs [][]byte) (boot string, devs []string) {
	t.Helper()
	dir := t.TempDir()
	boot = filepath.Join(dir, "image.boot")
	if err := os.WriteFile(boot, img, 0o644); err != nil {
		t.Fatal(err)
	}
	for i, d := range blobs {
		p := filepath.Join(dir, fmt.Sprintf("blob%d.data", i))
		if err := os.WriteFile(p, d, 0o644); err != nil {
			t.Fatal(err)
		}
		devs = append(devs, p)
	}
	return boot, devs
}

// requireMount skips t unless EROFS images can be mounted here (root and
// erofs in /proc/filesystems). With RAFS_E2E=require it fails instead.
func requireMount(t *testing.T) {
	t.Helper()
	reason := ""
	if os.Geteuid() != 0 {
		reason = "not running as root"
	} else if fsList, err := os.ReadFile("/proc/filesystems"); err != nil {
		reason = err.Error()
	} else if !hasWord(string(fsList), "erofs") {
		reason = "kernel has no erofs support"
	}
	if reason == "" {
		return
	}
	if os.Getenv("RAFS_E2E") == "require" {
		t.Fatalf("cannot mount: %s (and RAFS_E2E=require)", reason)
	}
	t.Skipf("cannot mount: %s", reason)
}

func hasWord(s, w string) bool {
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 && f[len(f)-1] == w {
			return true
		}
	}
	return false
}

// mountBoot mounts a bootstrap file-backed with its blob data files as
// device= options and returns the mount point; the mount is removed at the
// end of the test.
func mountBoot(t *testing.T, boot string, devs []string) string {
	t.Helper()
	requireMount(t)
	var opts []string
	for _, d := range devs {
		opts = append(opts, "device="+d)
	}
	mnt := t.TempDir()
	data := strings.Join(opts, ",")
	if err := unix.Mount(boot, mnt, "erofs", unix.MS_RDONLY, data); err != nil {
		t.Fatalf("mount -t erofs -o ro,%s %s: %v", data, boot, err)
	}
	t.Cleanup(func() {
		var err error
		for range 50 {
			if err = unix.Unmount(mnt, 0); !errors.Is(err, unix.EBUSY) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("unmount %s: %v", mnt, err)
			unix.Unmount(mnt, unix.MNT_DETACH)
		}
	})
	return mnt
}

// fsck runs fsck.erofs (with --extract) on a bootstrap when it is
// installed, and returns the extraction directory ("" when skipped).
func fsck(t *testing.T, boot string, devs []string) string {
	t.Helper()
	fsckPath, err := exec.LookPath(fsckName)
	if err != nil {
		t.Logf("not checking with fsck.erofs: %v", err)
		return ""
	}
	out := filepath.Join(t.TempDir(), "x")
	args := []string{"--extract=" + out}
	for _, d := range devs {
		args = append(args, "--device="+d)
	}
	args = append(args, boot)
	if o, err := exec.Command(fsckPath, args...).CombinedOutput(); err != nil {
		t.Fatalf("fsck.erofs %v: %v\n%s", args, err, o)
	}
	return out
}

func TestMountRoundTrip(t *testing.T) {
	f := richFS()
	b := f.finish()
	img, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	boot, devs := writeImage(t, img, f.data)
	if x := fsck(t, boot, devs); x != "" {
		compareDir(t, f.b, f.contents, x, false, 700)
	}
	mnt := mountBoot(t, boot, devs)
	compareDir(t, f.b, f.contents, mnt, true, 700)
}

// checkMergedMount checks a merged bootstrap with fsck.erofs and through a
// kernel mount, with the layers' blob data as devices.
func checkMergedMount(t *testing.T, m *Bootstrap, img []byte, data map[string][]byte) {
	t.Helper()
	var blobs [][]byte
	for _, bi := range m.Blobs {
		blobs = append(blobs, data[bi.ID])
	}
	contents := mergedContents(t, m, data)
	boot, devs := writeImage(t, img, blobs)
	if x := fsck(t, boot, devs); x != "" {
		compareDir(t, m, contents, x, false, 0)
	}
	mnt := mountBoot(t, boot, devs)
	entries := 0
	m.Walk(func(string, *Node) error { entries++; return nil })
	compareDir(t, m, contents, mnt, true, entries)
}

// compareDir compares the tree under root (a mount, or an fsck.erofs
// extraction when full is false: no xattrs, owners or devices there) with
// the model.
func compareDir(t *testing.T, b *Bootstrap, contents map[*Node][]byte, root string, full bool, minEntries int) {
	t.Helper()
	nlinks := expectedNlinks(b)
	inodes := map[*Node]uint64{}
	checked := 0
	b.Walk(func(path string, n *Node) error {
		in := n.inode()
		p := filepath.Join(root, path)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			t.Errorf("%s: %v", path, err)
			return nil
		}
		checked++
		if !full && in.Mode&erofs.ModeTypeMask != erofs.ModeRegular && in.Mode&erofs.ModeTypeMask != erofs.ModeDir &&
			in.Mode&erofs.ModeTypeMask != erofs.ModeSymlink {
			return nil // fsck extracts only files, directories and symlinks as root-owned copies
		}
		if st.Mode&unix.S_IFMT != in.Mode&erofs.ModeTypeMask {
			t.Errorf("%s: type %#o, want %#o", path, st.Mode&unix.S_IFMT, in.Mode&erofs.ModeTypeMask)
		}
		if full {
			if st.Mode != in.Mode || st.Uid != in.UID || st.Gid != in.GID || st.Nlink != uint64(nlinks[in]) ||
				st.Mtim.Sec != in.Mtime || uint32(st.Mtim.Nsec) != in.MtimeNsec {
				t.Errorf("%s: mode %#o uid %d gid %d nlink %d mtime %d.%d; want %#o %d %d %d %d.%d", path,
					st.Mode, st.Uid, st.Gid, st.Nlink, st.Mtim.Sec, st.Mtim.Nsec, in.Mode, in.UID, in.GID, nlinks[in], in.Mtime, in.MtimeNsec)
			}
			if in.Mode&erofs.ModeTypeMask == erofs.ModeCharDevice || in.Mode&erofs.ModeTypeMask == erofs.ModeBlockDevice {
				if unix.Major(st.Rdev) != in.Devmajor || unix.Minor(st.Rdev) != in.Devminor {
					t.Errorf("%s: rdev %d:%d", path, unix.Major(st.Rdev), unix.Minor(st.Rdev))
				}
			}
			checkXattrs(t, path, p, in.Xattrs)
			if prev, ok := inodes[in]; ok && prev != st.Ino {
				t.Errorf("%s: inode %d, but another name of it has %d", path, st.Ino, prev)
			}
			inodes[in] = st.Ino
		}
		switch in.Mode & erofs.ModeTypeMask {
		case erofs.ModeRegular:
			data, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(data, contents[in]) {
				t.Errorf("%s: contents differ (%d bytes, want %d): %v", path, len(data), len(contents[in]), err)
			}
		case erofs.ModeSymlink:
			if tgt, err := os.Readlink(p); err != nil || tgt != in.Linkname {
				t.Errorf("%s: readlink %q: %v", path, tgt, err)
			}
		case erofs.ModeDir:
			ents, err := os.ReadDir(p)
			if err != nil || len(ents) != len(in.Children) {
				t.Errorf("%s: %d entries, want %d: %v", path, len(ents), len(in.Children), err)
			}
		}
		return nil
	})
	if checked < minEntries {
		t.Errorf("checked only %d entries", checked)
	}
}

func checkXattrs(t *testing.T, path, p string, want map[string][]byte) {
	t.Helper()
	sz, err := unix.Llistxattr(p, nil)
	if err != nil {
		t.Errorf("%s: listxattr: %v", path, err)
		return
	}
	buf := make([]byte, sz)
	sz, _ = unix.Llistxattr(p, buf)
	var names []string
	for _, n := range bytes.Split(buf[:sz], []byte{0}) {
		if len(n) > 0 {
			names = append(names, string(n))
		}
	}
	if len(names) != len(want) {
		t.Errorf("%s: xattrs %q, want %d", path, names, len(want))
	}
	for k, v := range want {
		got := make([]byte, 70000)
		n, err := unix.Lgetxattr(p, k, got)
		if err != nil || !bytes.Equal(got[:n], v) {
			t.Errorf("%s: xattr %s = %.40q (%v), want %.40q", path, k, got[:max(n, 0)], err, v)
		}
	}
}

// TestMountFixture mounts the nydus 2.2 fixture with its blob decompressed
// into an uncompressed cache file, and reads the files through the kernel.
func TestMountFixture(t *testing.T) {
	img := readFixture(t, "bootstrap/rafs-v6-2.2.boot")
	blob := readFixture(t, "blobs/"+fixtureBlobID)
	b, err := Read(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatal(err)
	}
	zr, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	data := make([]byte, b.Blobs[0].UncompressedSize)
	want := map[string][]byte{}
	for _, n := range b.Root.Children {
		for _, c := range n.Chunks {
			raw, err := zr.DecodeAll(blob[c.CompressedOffset:c.CompressedOffset+uint64(c.CompressedSize)], nil)
			if err != nil {
				t.Fatal(err)
			}
			copy(data[c.UncompressedOffset:], raw)
			want[n.Name] = append(want[n.Name], raw...)
		}
	}
	boot, devs := writeImage(t, img, [][]byte{data})
	if x := fsck(t, boot, devs); x != "" {
		for name, w := range want {
			if got, err := os.ReadFile(filepath.Join(x, name)); err != nil || !bytes.Equal(got, w) {
				t.Errorf("fsck extract %s: %d bytes, %v", name, len(got), err)
			}
		}
	}
	mnt := mountBoot(t, boot, devs)
	for name, w := range want {
		got, err := os.ReadFile(filepath.Join(mnt, name))
		if err != nil || !bytes.Equal(got, w) {
			t.Errorf("%s through the kernel: %d bytes, %v", name, len(got), err)
		}
	}
	if !strings.Contains(string(want["lib.rs"]), "fn ") {
		t.Error("lib.rs does not look like Rust")
	}
}
