package erofs_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	goerofs "github.com/erofs/go-erofs"

	"github.com/rafs-dev/rafs/erofs"
)

// addFS builds an image of fsys with AddFS.
func addFS(t *testing.T, opts *erofs.WriterOptions, fsys fs.FS) []byte {
	t.Helper()
	img := &memImage{}
	w, err := erofs.NewWriter(img, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.AddFS(fsys); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return img.b
}

// sameTree compares two readings of images, all but where the inodes are
// and the mode bits outside modeMask.
func sameTree(t *testing.T, want, got map[string]got, modeMask uint32) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing", p)
			continue
		}
		w.ino, g.ino, w.layout, g.layout = 0, 0, 0, 0
		w.mode, g.mode = w.mode&modeMask, g.mode&modeMask
		if w.data != g.data {
			t.Errorf("%s: data differs", p)
		}
		w.data, g.data = "", ""
		if len(w.xattrs) == 0 && len(g.xattrs) == 0 {
			w.xattrs, g.xattrs = nil, nil
		}
		if !maps.Equal(w.xattrs, g.xattrs) {
			t.Errorf("%s: xattrs %v, want %v", p, g.xattrs, w.xattrs)
		}
		w.xattrs, g.xattrs = nil, nil
		if fmt.Sprint(w) != fmt.Sprint(g) {
			t.Errorf("%s: %+v, want %+v", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected", p)
		}
	}
}

// TestAddFSFromImage copies an image with AddFS, read by this package's
// reader and by go-erofs (through its FileInfo accessors): the copies have
// the same tree, hard links and xattrs included.
func TestAddFSFromImage(t *testing.T) {
	opts := &erofs.WriterOptions{BuildTime: 1000}
	items := sampleTree()
	img := build(t, opts, items)
	want := readGoErofs(t, img)

	src, err := erofs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	copied := addFS(t, opts, src)
	checkTree(t, items, readGoErofs(t, copied), opts)
	sameTree(t, want, readGoErofs(t, copied), ^uint32(0))

	gsrc, err := goerofs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	// go-erofs (v0.3.1) leaves setuid, setgid and sticky out of
	// FileInfo.Mode, and has no accessor for them.
	viaGo := addFS(t, opts, gsrc)
	sameTree(t, want, readGoErofs(t, viaGo), ^uint32(0o7000))
}

// TestAddFSTarHeaders copies an fs.FS whose FileInfo.Sys() values are
// archive/tar headers: owners, devices, PAX xattrs and hard links.
func TestAddFSTarHeaders(t *testing.T) {
	mt := time.Unix(1600000000, 5)
	fsys := fstest.MapFS{
		"f": {Data: []byte("data"), Mode: 0o640, ModTime: mt, Sys: &tar.Header{Uid: 7, Gid: 8,
			PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v", "mtime": "1"}}},
		"h":   {Mode: 0o640, ModTime: mt, Sys: &tar.Header{Typeflag: tar.TypeLink, Linkname: "f"}},
		"dev": {Mode: fs.ModeDevice | fs.ModeCharDevice | 0o600, ModTime: mt, Sys: &tar.Header{Devmajor: 1, Devminor: 3}},
		"sym": {Mode: fs.ModeSymlink | 0o777, ModTime: mt, Sys: &tar.Header{Typeflag: tar.TypeSymlink, Linkname: "f"}},
	}
	img := addFS(t, nil, fsys)
	r, err := erofs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	st := func(p string) *erofs.Stat {
		fi, err := r.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*erofs.Stat)
	}
	if f := st("f"); f.UID != 7 || f.GID != 8 || f.Xattrs["user.k"] != "v" || len(f.Xattrs) != 1 || f.Nlink != 2 || f.Mtime != mt.Unix() || f.MtimeNsec != 5 {
		t.Errorf("f: %+v", f)
	}
	if h := st("h"); h.Nid != st("f").Nid {
		t.Errorf("h is not a hard link of f")
	}
	if d := st("dev"); d.Mode != erofs.ModeCharDevice|0o600 || d.Devmajor != 1 || d.Devminor != 3 {
		t.Errorf("dev: %+v", d)
	}
	if l, err := r.ReadLink("sym"); err != nil || l != "f" {
		t.Errorf("sym: %q, %v", l, err)
	}
}

// TestAddFSDirFS copies a directory through os.DirFS: types, modes,
// times, owners, device numbers and hard links.
func TestAddFSDirFS(t *testing.T) {
	dir := t.TempDir()
	write := func(p string, data string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(filepath.Join(dir, p), mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "d/e"), 0o750); err != nil {
		t.Fatal(err)
	}
	write("d/e/f", "file data", 0o644|os.ModeSetuid)
	write("g", "", 0o600)
	if err := os.Link(filepath.Join(dir, "d/e/f"), filepath.Join(dir, "hard")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d/e/f", filepath.Join(dir, "sym")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0
	if root {
		if err := syscall.Mknod(filepath.Join(dir, "null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
			t.Fatal(err)
		}
		if err := os.Lchown(filepath.Join(dir, "g"), 1234, 5678); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chtimes(filepath.Join(dir, "g"), time.Unix(1, 0), time.Unix(1500000000, 123)); err != nil {
		t.Fatal(err)
	}
	img := addFS(t, nil, os.DirFS(dir))
	r, err := erofs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		want, err := os.Lstat(path)
		if err != nil {
			return err
		}
		gotInfo, err := r.Lstat(filepath.ToSlash(rel))
		if err != nil {
			return err
		}
		ws, gs := want.Sys().(*syscall.Stat_t), gotInfo.Sys().(*erofs.Stat)
		if gotInfo.Mode() != want.Mode() || (!want.IsDir() && gotInfo.Size() != want.Size()) || !gotInfo.ModTime().Equal(want.ModTime()) {
			t.Errorf("%s: %v %d %v, want %v %d %v", rel, gotInfo.Mode(), gotInfo.Size(), gotInfo.ModTime(), want.Mode(), want.Size(), want.ModTime())
		}
		if gs.UID != ws.Uid || gs.GID != ws.Gid {
			t.Errorf("%s: owner %d:%d, want %d:%d", rel, gs.UID, gs.GID, ws.Uid, ws.Gid)
		}
		if want.Mode().IsRegular() {
			if b, err := r.ReadFile(filepath.ToSlash(rel)); err != nil || !bytes.Equal(b, mustRead(t, path)) {
				t.Errorf("%s: data %q, %v", rel, b, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := r.Lstat("d/e/f")
	h, _ := r.Lstat("hard")
	if f.Sys().(*erofs.Stat).Nid != h.Sys().(*erofs.Stat).Nid || f.Sys().(*erofs.Stat).Nlink != 2 {
		t.Error("hard: not a hard link of d/e/f")
	}
	if l, err := r.ReadLink("sym"); err != nil || l != "d/e/f" {
		t.Errorf("sym: %q, %v", l, err)
	}
	if root {
		if n, err := r.Lstat("null"); err != nil || n.Sys().(*erofs.Stat).Devmajor != 1 || n.Sys().(*erofs.Stat).Devminor != 3 {
			t.Errorf("null: %v", err)
		}
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAddFSAfterClose checks AddFS's ErrClosed.
func TestAddFSAfterClose(t *testing.T) {
	w, err := erofs.NewWriter(&memImage{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := w.AddFS(fstest.MapFS{}); !errors.Is(err, erofs.ErrClosed) {
		t.Errorf("AddFS after Close: %v", err)
	}
}

// TestFileInfoAccessors checks that the reader's FileInfo values have the
// accessors go-erofs's have, with the same values for the same image.
func TestFileInfoAccessors(t *testing.T) {
	img := build(t, nil, sampleTree())
	ours, err := erofs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := goerofs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	type accessors interface {
		UID() uint32
		GID() uint32
		Ino() uint64
		Nlink() uint64
		Rdev() uint64
		GetAllXattr() map[string]string
		GetXattr(string) (string, bool)
	}
	n := 0
	err = fs.WalkDir(ours, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		a, ok := fi.(accessors)
		if !ok {
			t.Fatalf("%s: %T lacks the accessors", p, fi)
		}
		gfi, err := fs.Lstat(theirs, p)
		if err != nil {
			return err
		}
		b := gfi.(accessors)
		if a.UID() != b.UID() || a.GID() != b.GID() || a.Ino() != b.Ino() || a.Nlink() != b.Nlink() || a.Rdev() != b.Rdev() {
			t.Errorf("%s: uid %d gid %d ino %d nlink %d rdev %#x; go-erofs: %d %d %d %d %#x", p,
				a.UID(), a.GID(), a.Ino(), a.Nlink(), a.Rdev(), b.UID(), b.GID(), b.Ino(), b.Nlink(), b.Rdev())
		}
		if x, y := a.GetAllXattr(), b.GetAllXattr(); !maps.Equal(x, y) {
			t.Errorf("%s: xattrs %v; go-erofs: %v", p, x, y)
		}
		for k, v := range b.GetAllXattr() {
			if got, ok := a.GetXattr(k); !ok || got != v {
				t.Errorf("%s: GetXattr(%q) = %q, %t", p, k, got, ok)
			}
		}
		n++
		return nil
	})
	if err != nil || n < 600 {
		t.Fatalf("walked %d files: %v", n, err)
	}
}

// TestGoErofsCopyFrom copies an image read by this package with go-erofs's
// Writer.CopyFrom. go-erofs v0.3.1 takes owners, times and xattrs only
// from its own *Stat or a *syscall.Stat_t in FileInfo.Sys() (mkfs.go,
// entryFromSys), not from the accessors, so what is compared is what it
// can keep from any fs.FS: names, types, permissions, sizes, data and
// symbolic link targets.
func TestGoErofsCopyFrom(t *testing.T) {
	img := build(t, nil, sampleTree())
	src, err := erofs.Open(bytes.NewReader(img))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(t.TempDir(), "copy.erofs"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	gw := goerofs.Create(out)
	if err := gw.CopyFrom(src); err != nil {
		t.Fatal(err)
	}
	if err := gw.Close(); err != nil {
		t.Fatal(err)
	}
	copied, err := os.ReadFile(out.Name())
	if err != nil {
		t.Fatal(err)
	}
	want, got := readGoErofs(t, img), readGoErofs(t, copied)
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing", p)
			continue
		}
		if g.mode&^0o7000 != w.mode&^0o7000 || g.size != w.size || g.data != w.data || g.link != w.link {
			t.Errorf("%s: mode %#o size %d link %q, want %#o %d %q (or data differs)", p, g.mode, g.size, g.link, w.mode, w.size, w.link)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d files, want %d", len(got), len(want))
	}
}
