//go:build linux

package fstree

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"golang.org/x/sys/unix"
)

// statMeta is a FromFS meta adapter for os.DirFS: it reads the Unix
// metadata from syscall.Stat_t and the xattrs with lgetxattr.
func statMeta(root string) func(string, fs.FileInfo) (Meta, error) {
	return func(p string, fi fs.FileInfo) (Meta, error) {
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return Meta{}, errors.New("no Stat_t")
		}
		x, err := listXattrs(filepath.Join(root, p))
		if err != nil {
			return Meta{}, err
		}
		return Meta{
			Mode: st.Mode, UID: st.Uid, GID: st.Gid,
			Mtime: st.Mtim.Sec, MtimeNsec: uint32(st.Mtim.Nsec),
			Nlink:    uint32(st.Nlink),
			Devmajor: unix.Major(st.Rdev), Devminor: unix.Minor(st.Rdev),
			Xattrs: x, Ino: st.Ino,
		}, nil
	}
}

// makeDir creates a small directory tree that needs no privileges.
func makeDir(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "d/sub"), 0o750))
	must(os.WriteFile(filepath.Join(root, "d/f"), []byte("content"), 0o640))
	must(os.WriteFile(filepath.Join(root, "empty"), nil, 0o600))
	must(os.Link(filepath.Join(root, "d/f"), filepath.Join(root, "hard")))
	must(os.Symlink("d/f", filepath.Join(root, "sym")))
	must(unix.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	must(os.Chmod(filepath.Join(root, "fifo"), 0o644))
	if err := unix.Setxattr(filepath.Join(root, "d/f"), "user.test", []byte("value"), 0); err != nil {
		t.Logf("no user xattrs here: %v", err)
	}
	mtime := time.Unix(1600000000, 123456789)
	must(os.Chtimes(filepath.Join(root, "d/f"), mtime, mtime))
	return root
}

func TestFromDirAndFromFS(t *testing.T) {
	root := makeDir(t)
	dir, err := FromDir(root)
	if err != nil {
		t.Fatal(err)
	}
	f := node(t, dir, "d/f")
	if f.Mode != ModeReg|0o640 || f.Size != 7 || f.Digest != sha("content") || f.Nlink != 2 || f.Link == 0 ||
		f.Mtime != 1600000000 || f.MtimeNsec != 123456789 {
		t.Errorf("d/f: %v", f)
	}
	if h := node(t, dir, "hard"); h.Link != f.Link {
		t.Errorf("hard not grouped with d/f: %v", h)
	}
	if s := node(t, dir, "sym"); s.Linkname != "d/f" || s.Size != 3 || s.Type() != ModeSymlink {
		t.Errorf("sym: %v", s)
	}
	if n := node(t, dir, "fifo"); n.Mode != ModeFIFO|0o644 {
		t.Errorf("fifo: %v", n)
	}
	if n := node(t, dir, "d"); n.Nlink != 3 || n.Mode != ModeDir|0o750 {
		t.Errorf("d: %v", n)
	}

	got, err := FromFS(os.DirFS(root), statMeta(root), nil)
	if err != nil {
		t.Fatal(err)
	}
	if d := Compare(dir, got); len(d) > 0 {
		t.Errorf("FromFS(os.DirFS) differs from FromDir:\n%s", strings.Join(d, "\n"))
	}
}

func TestFromFSDefaultMeta(t *testing.T) {
	mtime := time.Unix(1700000000, 5)
	fsys := fstest.MapFS{
		"a/b":  {Data: []byte("hello"), Mode: 0o644, ModTime: mtime},
		"a":    {Mode: fs.ModeDir | 0o755, ModTime: mtime},
		"link": {Data: []byte("a/b"), Mode: fs.ModeSymlink | 0o777, ModTime: mtime},
		"suid": {Data: []byte("x"), Mode: fs.ModeSetuid | 0o755, ModTime: mtime},
		"dev":  {Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, ModTime: mtime},
	}
	tree, err := FromFS(fsys, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := node(t, tree, "a/b"); n.Mode != ModeReg|0o644 || n.Digest != sha("hello") || n.Mtime != 1700000000 || n.MtimeNsec != 5 {
		t.Errorf("a/b: %v", n)
	}
	if n := node(t, tree, "link"); n.Linkname != "a/b" {
		t.Errorf("link: %v", n)
	}
	if n := node(t, tree, "suid"); n.Mode != ModeReg|0o4755 {
		t.Errorf("suid: %v", n)
	}
	if n := node(t, tree, "dev"); n.Mode != ModeChar|0o600 {
		t.Errorf("dev: %v", n)
	}
	if n := node(t, tree, "a"); n.Mode != ModeDir|0o755 {
		t.Errorf("a: %v", n)
	}
}

func TestFromFSSizeMismatch(t *testing.T) {
	fsys := fstest.MapFS{"f": {Data: []byte("abc")}}
	if _, err := FromFS(shortFS{fsys}, nil, nil); err == nil {
		t.Error("FromFS accepted content shorter than FileInfo.Size")
	}
}

// shortFS reports, in directory listings, sizes one byte larger than the
// content.
type shortFS struct{ fstest.MapFS }

func (s shortFS) ReadDir(name string) ([]fs.DirEntry, error) {
	entries, err := s.MapFS.ReadDir(name)
	for i, e := range entries {
		entries[i] = shortEntry{e}
	}
	return entries, err
}

type shortEntry struct{ fs.DirEntry }

func (e shortEntry) Info() (fs.FileInfo, error) {
	fi, err := e.DirEntry.Info()
	return shortInfo{fi}, err
}

type shortInfo struct{ fs.FileInfo }

func (i shortInfo) Size() int64 { return i.FileInfo.Size() + 1 }
