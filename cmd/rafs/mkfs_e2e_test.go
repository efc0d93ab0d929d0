package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMkfsEndToEnd runs the rafs binary as mkfs.erofs, through a symlink
// of that name, the way containerd's EROFS differ runs it (--tar=f --aufs
// --quiet -Enoinline_data, and --tar=i --aufs --quiet -b4096 followed by
// appending the tar), with the layer on standard input and as a file;
// mounts each image and compares the mounted tree with the tar. It also
// merges two layers in mkfs.erofs's rebuild mode (containerd's merged
// metadata) and mounts that. fsck.erofs checks the images when it is
// there. The Debian layer is added when it is cached.
func TestMkfsEndToEnd(t *testing.T) {
	requireEROFSMount(t)
	t.Setenv("SOURCE_DATE_EPOCH", "")
	dir := t.TempDir()
	mkfs := filepath.Join(dir, "mkfs.erofs")
	if err := os.Symlink(rafsBinary(t), mkfs); err != nil {
		t.Fatal(err)
	}
	layers := map[string]string{"sample": filepath.Join(dir, "sample.tar")}
	gz, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(layers["sample"], data, 0o644)
	if home, err := os.UserCacheDir(); err == nil && !testing.Short() {
		deb := filepath.Join(home, "rafs-bench", "debian-minbase.tar")
		if _, err := os.Stat(deb); err == nil {
			layers["debian"] = deb
		} else {
			t.Logf("no Debian layer at %s: the sample layer only", deb)
		}
	}
	const uuid = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	for name, layer := range layers {
		t.Run(name, func(t *testing.T) {
			want := tarTree(t, layer, false)
			// mk runs mkfs.erofs ARGS OUT [SRC], the layer on standard
			// input without SRC.
			mk := func(out, src string, args ...string) {
				t.Helper()
				args = append(args, out)
				stdin := layer
				if src != "" {
					args, stdin = append(args, src), ""
				}
				cmd := exec.Command(mkfs, args...)
				if stdin != "" {
					fh, err := os.Open(stdin)
					if err != nil {
						t.Fatal(err)
					}
					defer fh.Close()
					cmd.Stdin = fh
				}
				if b, err := cmd.CombinedOutput(); err != nil || len(b) > 0 {
					t.Fatalf("mkfs.erofs %q: %v\n%s", cmd.Args[1:], err, b)
				}
			}
			full := []string{"--tar=f", "--aufs", "--quiet", "-Enoinline_data", "-U", uuid}
			index := []string{"--tar=i", "--aufs", "--quiet", "-b4096", "-U", uuid}

			// The full image, from standard input and from the file.
			a, b := filepath.Join(dir, name+"-stdin.erofs"), filepath.Join(dir, name+"-file.erofs")
			mk(a, "", full...)
			mk(b, layer, full...)
			compareMount(t, erofsMount(t, a), want)
			if name == "sample" { // the Debian layer in containerd's forms only, for time
				compareMount(t, erofsMount(t, b), want)
			}
			fsck(t, a)

			// The tar index with the tar appended (containerd's layer.erofs),
			// and the index over the tar as its device.
			idx, idxFile := filepath.Join(dir, name+"-index.erofs"), filepath.Join(dir, name+"-index-file.erofs")
			mk(idx, "", index...)
			appendFile(t, idx, layer)
			compareMount(t, erofsMount(t, idx), want)
			mk(idxFile, layer, index...)
			if name == "sample" {
				compareMount(t, erofsMount(t, idxFile, layer), want)
			}
			fsck(t, idxFile, "--device="+layer)

			// Merged metadata over both (rebuild mode): the same layer
			// twice, so the merged tree is the layer with its whiteouts
			// applied and removed.
			merged := filepath.Join(dir, name+"-merged.erofs")
			cmd := exec.Command(mkfs, "--aufs", "--ovlfs-strip=1", "--quiet", merged, a, idx)
			if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
				t.Fatalf("mkfs.erofs rebuild: %v\n%s", err, out)
			}
			compareMount(t, erofsMount(t, merged, a, idx), tarTree(t, layer, true))
		})
	}

	// Errors: an option rafs does not support fails the command, naming
	// it, and leaves no output.
	out := filepath.Join(dir, "refused.erofs")
	cmd := exec.Command(mkfs, "--tar=f", "--exclude-regex=x", out, layers["sample"])
	b, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(b), "--exclude-regex: not supported") {
		t.Errorf("--exclude-regex: %v\n%s", err, b)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused command left %s: %v", out, err)
	}
	// containerd's check: --help lists --tar=.
	if b, err := exec.Command(mkfs, "--help").CombinedOutput(); err != nil || !bytes.Contains(b, []byte("--tar=")) {
		t.Errorf("mkfs.erofs --help: %v\n%s", err, b)
	}
}

// requireEROFSMount skips t (fails it under RAFS_E2E=require) unless the
// kernel can mount EROFS images here.
func requireEROFSMount(t *testing.T) {
	t.Helper()
	requireRoot(t, "mounting EROFS images")
	b, err := os.ReadFile("/proc/filesystems")
	if err != nil || !bytes.Contains(b, []byte("\terofs\n")) {
		if os.Getenv(e2eEnv) == "require" {
			t.Fatalf("the kernel cannot mount erofs (and %s=require)", e2eEnv)
		}
		t.Skip("the kernel cannot mount erofs")
	}
}

// erofsMount mounts image read-only with its extra devices on a new
// directory, unmounted when the test ends.
func erofsMount(t *testing.T, image string, devices ...string) string {
	t.Helper()
	var opts []string
	for _, d := range devices {
		opts = append(opts, "device="+d)
	}
	dir := t.TempDir()
	if err := unix.Mount(image, dir, "erofs", unix.MS_RDONLY, strings.Join(opts, ",")); err != nil {
		t.Fatalf("mount %s: %v", image, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fsck runs fsck.erofs --extract (checking every file's data) on image
// when fsck.erofs 1.9 or later is at $RAFS_FSCK_EROFS or on PATH.
func fsck(t *testing.T, image string, args ...string) {
	t.Helper()
	p := os.Getenv("RAFS_FSCK_EROFS")
	if p == "" {
		var err error
		if p, err = exec.LookPath("fsck.erofs"); err != nil {
			t.Logf("no fsck.erofs: %s not checked", filepath.Base(image))
			return
		}
	}
	if out, err := exec.Command(p, append(args, "--extract", image)...).CombinedOutput(); err != nil {
		t.Errorf("fsck.erofs %s: %v\n%s", image, err, out)
	}
}

// appendFile appends the file src to dst.
func appendFile(t *testing.T, dst, src string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// node is what the tar says one path of the mounted tree is.
type node struct {
	typ      byte // tar type flag; 'w' for an overlayfs whiteout, 'i' for a directory a stripped whiteout implies
	mode     int64
	uid, gid int
	mtime    int64
	sum      [32]byte // regular files' content
	size     int64
	link     string // symlink target; hard link target for '1'
	dev      uint64 // unix.Mkdev of a device
	opaque   bool
	xattrs   map[string]string
}

// tarTree reads the layer tar at p into the tree extracting it gives:
// later entries replace earlier ones, OCI whiteouts become overlayfs ones
// (mkfs.erofs --aufs) or, with strip, hide the paths they name and go.
func tarTree(t *testing.T, p string, strip bool) map[string]*node {
	t.Helper()
	fh, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	tree := map[string]*node{}
	tr := tar.NewReader(bufio.NewReaderSize(fh, 1<<20))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if name == "." || name == "/" {
			continue
		}
		dir, base := path.Split(name)
		dir = path.Clean(dir)
		switch {
		case base == ".wh..wh..opq":
			if !strip {
				if d := tree[dir]; d != nil {
					d.opaque = true
				}
			}
			continue
		case strings.HasPrefix(base, ".wh."):
			target := path.Join(dir, strings.TrimPrefix(base, ".wh."))
			removeTree(tree, target)
			if !strip {
				tree[target] = &node{typ: 'w'}
				continue
			}
			// The whiteout's directories stay, as the layer has them.
			for d := dir; d != "." && tree[d] == nil; d = path.Dir(d) {
				tree[d] = &node{typ: 'i'}
			}
			continue
		}
		n := &node{typ: h.Typeflag, mode: h.Mode & 0o7777, uid: h.Uid, gid: h.Gid, mtime: h.ModTime.Unix(), link: h.Linkname}
		for k, v := range h.PAXRecords {
			if x, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				if n.xattrs == nil {
					n.xattrs = map[string]string{}
				}
				n.xattrs[x] = v
			}
		}
		switch h.Typeflag {
		case tar.TypeReg:
			hs := sha256.New()
			if n.size, err = io.Copy(hs, tr); err != nil {
				t.Fatal(err)
			}
			copy(n.sum[:], hs.Sum(nil))
		case tar.TypeLink:
			n.link = path.Clean(strings.TrimPrefix(h.Linkname, "./"))
		case tar.TypeChar, tar.TypeBlock:
			n.dev = unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))
		}
		if old := tree[name]; old != nil && old.typ == tar.TypeDir && n.typ == tar.TypeDir {
			n.opaque = old.opaque
		} else if old != nil {
			removeTree(tree, name)
		}
		tree[name] = n
	}
	return tree
}

// removeTree removes p and everything below it.
func removeTree(tree map[string]*node, p string) {
	for k := range tree {
		if k == p || strings.HasPrefix(k, p+"/") {
			delete(tree, k)
		}
	}
}

// compareMount compares the tree mounted at root with want: every path
// the tar names is there with its type, permissions, owner, mtime, content
// or target, device number and xattrs (trusted.overlay.* but the opaque
// marker are left out); hard links share an inode; whiteouts are character
// devices 0:0; and nothing else is there but the directories the tar only
// implies.
func compareMount(t *testing.T, root string, want map[string]*node) {
	t.Helper()
	errs := 0
	fail := func(format string, a ...any) {
		t.Helper()
		if errs++; errs <= 20 {
			t.Errorf(format, a...)
		}
	}
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		seen[rel] = true
		n := want[rel]
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if n == nil {
			if st.Mode&unix.S_IFMT != unix.S_IFDIR || !implied(want, rel) {
				fail("%s: in the image, not in the tar", rel)
			}
			return nil
		}
		ft := st.Mode & unix.S_IFMT
		if n.typ == 'i' {
			if ft != unix.S_IFDIR {
				fail("%s: type %o, want a directory", rel, ft)
			}
			return nil
		}
		typ := n.typ
		if typ == tar.TypeLink {
			typ = want[n.link].typ
		}
		wantType := map[byte]uint32{tar.TypeReg: unix.S_IFREG, tar.TypeDir: unix.S_IFDIR, tar.TypeSymlink: unix.S_IFLNK,
			tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO, 'w': unix.S_IFCHR}[typ]
		if ft != wantType {
			fail("%s: type %o, want %o", rel, ft, wantType)
			return nil
		}
		if typ == 'w' {
			if st.Rdev != 0 {
				fail("%s: whiteout with device %d", rel, st.Rdev)
			}
			return nil
		}
		m := n
		if n.typ == tar.TypeLink {
			m = want[n.link]
			var lt unix.Stat_t
			if err := unix.Lstat(filepath.Join(root, n.link), &lt); err != nil || lt.Ino != st.Ino {
				fail("%s: not a hard link of %s", rel, n.link)
			}
		}
		if int64(st.Mode&0o7777) != m.mode || int(st.Uid) != m.uid || int(st.Gid) != m.gid || st.Mtim.Sec != m.mtime {
			fail("%s: mode %o uid %d gid %d mtime %d, want %o %d %d %d", rel, st.Mode&0o7777, st.Uid, st.Gid, st.Mtim.Sec, m.mode, m.uid, m.gid, m.mtime)
		}
		switch typ {
		case tar.TypeReg:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if int64(len(b)) != m.size || sha256.Sum256(b) != m.sum {
				fail("%s: content differs (%d bytes, want %d)", rel, len(b), m.size)
			}
		case tar.TypeSymlink:
			if l, err := os.Readlink(p); err != nil || l != m.link {
				fail("%s: target %q, want %q", rel, l, m.link)
			}
		case tar.TypeChar, tar.TypeBlock:
			if st.Rdev != m.dev {
				fail("%s: device %x, want %x", rel, st.Rdev, m.dev)
			}
		}
		got := xattrs(t, p)
		wantX := m.xattrs
		if m.opaque {
			wantX = map[string]string{"trusted.overlay.opaque": "y"}
			for k, v := range m.xattrs {
				wantX[k] = v
			}
		}
		for k, v := range wantX {
			if got[k] != v {
				fail("%s: xattr %s = %q, want %q", rel, k, got[k], v)
			}
		}
		for k := range got {
			if _, ok := wantX[k]; !ok && !strings.HasPrefix(k, "trusted.overlay.") {
				fail("%s: xattr %s not in the tar", rel, k)
			}
		}
		if got["trusted.overlay.opaque"] != "" && !m.opaque {
			fail("%s: opaque, not in the tar", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p := range want {
		if !seen[p] {
			fail("%s: in the tar, not in the image", p)
		}
	}
	if errs > 20 {
		t.Errorf("... and %d more differences", errs-20)
	}
}

// implied reports whether directory p is a parent of a path of want.
func implied(want map[string]*node, p string) bool {
	for k := range want {
		if strings.HasPrefix(k, p+"/") {
			return true
		}
	}
	return false
}

// xattrs lists the xattrs of p, not following a symlink.
func xattrs(t *testing.T, p string) map[string]string {
	t.Helper()
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err != nil {
		if errors.Is(err, syscall.ENOTSUP) {
			return nil
		}
		t.Fatalf("llistxattr %s: %v", p, err)
	}
	out := map[string]string{}
	for name := range strings.SplitSeq(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		v := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, v)
		if err != nil {
			t.Fatalf("lgetxattr %s %s: %v", p, name, err)
		}
		out[name] = string(v[:m])
	}
	return out
}
