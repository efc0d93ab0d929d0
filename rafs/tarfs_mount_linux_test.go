//go:build linux

package rafs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTarfsMount mounts a tarfs bootstrap with its tar as the device, as
// nydus-snapshotter's tarfs mode does: the kernel reads 512-byte
// directory blocks, inline tails and chunk indexes into the tar, for
// files contiguous in it and scattered ones. fsck.erofs --device checks
// it too when installed.
func TestTarfsMount(t *testing.T) {
	requireMount(t)
	f := richTarfs()
	img, err := f.b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	boot, devs := writeImage(t, img, [][]byte{f.tar})
	mnt := mountBoot(t, boot, devs)
	checkTarfsContents(t, f, func(p string) ([]byte, error) { return os.ReadFile(filepath.Join(mnt, p)) })
	for name, want := range map[string]string{"short": strings.Repeat("s", 440), "long": strings.Repeat("l/", 600), "plain": strings.Repeat("p/", 500)} {
		if got, err := os.Readlink(filepath.Join(mnt, name)); err != nil || got != want {
			t.Errorf("%s: %d bytes, want %d (%v)", name, len(got), len(want), err)
		}
	}
	ents, err := os.ReadDir(filepath.Join(mnt, "many"))
	if err != nil || len(ents) != 120 {
		t.Errorf("many/: %d entries, want 120 (%v)", len(ents), err)
	}
	checkXattrs(t, "/xattrs", filepath.Join(mnt, "xattrs"), f.b.Lookup("xattrs").Xattrs)
	if x := fsck(t, boot, devs); x != "" {
		checkTarfsContents(t, f, func(p string) ([]byte, error) { return os.ReadFile(filepath.Join(x, p)) })
	}
}
