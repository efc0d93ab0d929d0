//go:build linux

// Package mounttest mounts EROFS images and overlayfs stacks for end-to-end
// tests. Mounting needs root and kernel support; Require skips a test
// without them, unless the environment variable RAFS_E2E is "require", in
// which case the test fails instead (for CI machines that must run them).
//
// Mounts are removed by t.Cleanup, before the mount point (a t.TempDir) is.
package mounttest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rafs-dev/rafs/convert/internal/e2eenv"
)

// EnvVar names the environment variable that turns skips into failures
// when set to "require".
const EnvVar = e2eenv.EnvVar

// Require skips t unless the process can mount EROFS images: it must run as
// root and the kernel must list erofs in /proc/filesystems. With
// RAFS_E2E=require it fails t instead of skipping.
func Require(t testing.TB) {
	t.Helper()
	if reason := missing("erofs"); reason != "" {
		skipOrFail(t, reason)
	}
}

// requireOverlay is Require for overlayfs.
func requireOverlay(t testing.TB) {
	t.Helper()
	if reason := missing("overlay"); reason != "" {
		skipOrFail(t, reason)
	}
}

func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	e2eenv.SkipOrFail(t, "mounttest", reason)
}

// missing returns why file system fstype cannot be mounted, or "".
func missing(fstype string) string {
	if os.Geteuid() != 0 {
		return "not running as root"
	}
	ok, err := hasFilesystem(fstype)
	if err != nil {
		return err.Error()
	}
	if !ok {
		return fmt.Sprintf("kernel has no %s support (not in /proc/filesystems)", fstype)
	}
	return ""
}

func hasFilesystem(fstype string) (bool, error) {
	f, err := os.Open("/proc/filesystems")
	if err != nil {
		return false, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 0 && fields[len(fields)-1] == fstype {
			return true, nil
		}
	}
	return false, s.Err()
}

// Mount mounts the EROFS image file read-only on a new temporary directory
// and returns that directory. The image is mounted directly as a file
// (file-backed mount, Linux 6.12+), without a loop device. devices are the
// image's extra devices (blob files), in device table order; each becomes a
// device=PATH mount option. The mount is removed when the test ends.
//
// Mount calls Require first, so a test only needs Mount.
func Mount(t testing.TB, image string, devices ...string) string {
	t.Helper()
	Require(t)
	var opts []string
	for _, d := range devices {
		if strings.ContainsAny(d, ",") {
			t.Fatalf("mounttest: device path %q contains a comma, which mount options cannot carry", d)
		}
		opts = append(opts, "device="+d)
	}
	dir := t.TempDir()
	data := strings.Join(opts, ",")
	if err := unix.Mount(image, dir, "erofs", unix.MS_RDONLY, data); err != nil {
		t.Fatalf("mounttest: mount -t erofs -o ro,%s %s %s: %v", data, image, dir, err)
	}
	t.Cleanup(func() { unmount(t, dir) })
	return dir
}

// Overlay mounts a read-only overlayfs of the given lower directories on a
// new temporary directory and returns that directory. lowers[0] is the top
// layer and the last one the bottom, as in lowerdir=top:...:bottom. A single
// lower directory is stacked on an empty one, since overlayfs needs two
// layers without an upper directory. The mount is removed when the test
// ends.
func Overlay(t testing.TB, lowers ...string) string {
	t.Helper()
	requireOverlay(t)
	if len(lowers) == 0 {
		t.Fatalf("mounttest: Overlay needs at least one lower directory")
	}
	if len(lowers) == 1 {
		lowers = append(lowers, t.TempDir())
	}
	for _, l := range lowers {
		if strings.ContainsAny(l, ":,\\") {
			t.Fatalf("mounttest: lower directory %q contains ':', ',' or '\\'", l)
		}
	}
	dir := t.TempDir()
	data := "lowerdir=" + strings.Join(lowers, ":")
	if err := unix.Mount("overlay", dir, "overlay", unix.MS_RDONLY, data); err != nil {
		t.Fatalf("mounttest: mount -t overlay -o ro,%s overlay %s: %v", data, dir, err)
	}
	t.Cleanup(func() { unmount(t, dir) })
	return dir
}

// unmount unmounts dir, retrying for five seconds while it is busy (for
// instance while a file the test opened is being closed), then detaching it.
func unmount(t testing.TB, dir string) {
	t.Helper()
	var err error
	for range 50 {
		err = unix.Unmount(dir, 0)
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("mounttest: unmount %s: %v", dir, err)
		if errors.Is(err, unix.EBUSY) {
			// Detach it so that removing the mount point does not walk
			// into the mounted file system.
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				t.Errorf("mounttest: lazy unmount %s: %v", dir, err)
			}
		}
	}
}
