//go:build linux

package containerd_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containerd/containerd/v2/pkg/archive/compression"
	"golang.org/x/sys/unix"
)

// requireMount skips t unless it can mount EROFS images (root, and the
// kernel has erofs), or fails it when RAFS_E2E is "require", as the rafs
// module's end-to-end tests do (convert/internal/mounttest, which another
// module cannot import).
func requireMount(t *testing.T) {
	t.Helper()
	reason := ""
	if os.Geteuid() != 0 {
		reason = "not root"
	} else if b, err := os.ReadFile("/proc/filesystems"); err != nil || !bytes.Contains(b, []byte("\terofs\n")) {
		reason = "the kernel has no erofs file system"
	}
	if reason == "" {
		return
	}
	if os.Getenv("RAFS_E2E") == "require" {
		t.Fatalf("mount: %s (RAFS_E2E=require)", reason)
	}
	t.Skipf("mount: %s", reason)
}

// mountEROFS mounts the EROFS image file img read-only (mount(2) takes an
// image file directly on Linux 6.12 and later) and unmounts it when the
// test ends.
func mountEROFS(t *testing.T, img string) string {
	t.Helper()
	dir := t.TempDir()
	if err := unix.Mount(img, dir, "erofs", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount %s: %v", img, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// checkTree compares the tree at root, an EROFS layer as mkfs.erofs
// --tar=f --aufs makes it, with the layer tar: every entry's type,
// permissions, owner, mtime, content, link target and device number;
// hard links share an inode; OCI whiteouts are overlayfs whiteouts
// (character devices 0:0) and opaque markers the trusted.overlay.opaque
// xattr. It returns how many entries it checked.
func checkTree(t *testing.T, root string, layer []byte) int {
	t.Helper()
	dr, err := compression.DecompressStream(bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	n := 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.Trim(strings.TrimPrefix(h.Name, "./"), "/")
		if name == "" || name == "." {
			continue
		}
		n++
		if err := checkEntry(root, name, h, data); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func checkEntry(root, name string, h *tar.Header, data []byte) error {
	dir, base := filepath.Split(name)
	p := filepath.Join(root, name)
	switch {
	case base == ".wh..wh..opq":
		v := make([]byte, 8)
		k, err := unix.Lgetxattr(filepath.Join(root, dir), "trusted.overlay.opaque", v)
		if err != nil || string(v[:k]) != "y" {
			return fmt.Errorf("directory not opaque: %q, %v", v[:max(k, 0)], err)
		}
		return nil
	case strings.HasPrefix(base, ".wh."):
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, dir, strings.TrimPrefix(base, ".wh.")), &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			return fmt.Errorf("whiteout is mode %o rdev %d, want a character device 0:0", st.Mode, st.Rdev)
		}
		return nil
	}
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	if h.Typeflag == tar.TypeLink {
		var tst unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, strings.Trim(strings.TrimPrefix(h.Linkname, "./"), "/")), &tst); err != nil {
			return err
		}
		if st.Ino != tst.Ino {
			return fmt.Errorf("hard link to %s: inode %d, target's %d", h.Linkname, st.Ino, tst.Ino)
		}
		return nil
	}
	want := map[byte]uint32{tar.TypeReg: unix.S_IFREG, tar.TypeDir: unix.S_IFDIR, tar.TypeSymlink: unix.S_IFLNK,
		tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[h.Typeflag]
	if st.Mode&unix.S_IFMT != want {
		return fmt.Errorf("mode %o, want type %o", st.Mode, want)
	}
	if h.Typeflag != tar.TypeSymlink && int64(st.Mode&0o7777) != h.Mode&0o7777 {
		return fmt.Errorf("permissions %o, want %o", st.Mode&0o7777, h.Mode&0o7777)
	}
	if int(st.Uid) != h.Uid || int(st.Gid) != h.Gid {
		return fmt.Errorf("owner %d:%d, want %d:%d", st.Uid, st.Gid, h.Uid, h.Gid)
	}
	if st.Mtim.Sec != h.ModTime.Unix() {
		return fmt.Errorf("mtime %d, want %d", st.Mtim.Sec, h.ModTime.Unix())
	}
	switch h.Typeflag {
	case tar.TypeReg:
		got, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, data) {
			return fmt.Errorf("content differs (%d bytes, want %d)", len(got), len(data))
		}
	case tar.TypeSymlink:
		l, err := os.Readlink(p)
		if err != nil || l != h.Linkname {
			return fmt.Errorf("symlink to %q (%v), want %q", l, err, h.Linkname)
		}
	case tar.TypeChar, tar.TypeBlock:
		if unix.Major(st.Rdev) != uint32(h.Devmajor) || unix.Minor(st.Rdev) != uint32(h.Devminor) {
			return fmt.Errorf("device %d:%d, want %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev), h.Devmajor, h.Devminor)
		}
	}
	return nil
}
