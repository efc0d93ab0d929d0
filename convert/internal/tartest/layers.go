package tartest

import (
	"archive/tar"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// Entry is one entry of Tar: a header and a regular file's data.
type Entry struct {
	Header tar.Header
	Data   []byte
}

// Tar renders entries with archive/tar. An unset ModTime becomes Epoch and
// the size of a regular file is len(Data). It panics on errors.
func Tar(entries ...Entry) []byte {
	a := newArchive(tar.FormatUnknown)
	for _, e := range entries {
		a.add(e.Header, e.Data)
	}
	return a.bytes()
}

// PAXXattrs returns the PAX records that carry the xattrs x
// (SCHILY.xattr.NAME), or nil for none.
func PAXXattrs(x map[string]string) map[string]string {
	if len(x) == 0 {
		return nil
	}
	recs := map[string]string{}
	for k, v := range x {
		recs["SCHILY.xattr."+k] = v
	}
	return recs
}

// Stack returns the three layers of the end-to-end layer stack, lowest
// first: a base with every entry type, hard links, xattrs, an implied
// directory and a whiteout with nothing below it; a layer that deletes
// files and a directory with hard links, makes a directory opaque and
// replaces one name of a hard link; and a layer that turns a directory
// into a file and back, and recreates what the second deleted.
func Stack() [][]byte {
	mt := time.Unix(1650000000, 123456789)
	old := time.Unix(1600000000, 0) // links, symlinks and devices
	dir := func(name string, mode int64, uid int, x map[string]string) Entry {
		return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: mode, Uid: uid, Gid: uid, ModTime: mt, PAXRecords: PAXXattrs(x), Format: tar.FormatPAX}}
	}
	file := func(name string, mode int64, data []byte, x map[string]string) Entry {
		return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, ModTime: mt, PAXRecords: PAXXattrs(x), Format: tar.FormatPAX}, Data: data}
	}
	link := func(name, target string) Entry {
		return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: target, ModTime: old}}
	}
	sym := func(name, target string) Entry {
		return Entry{Header: tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777, ModTime: old}}
	}
	l1 := Tar(
		dir("./", 0o755, 0, nil),
		dir("etc/", 0o755, 0, nil),
		file("etc/hostname", 0o644, []byte("base\n"), nil),
		file("etc/passwd", 0o644, Text("passwd", 3000), nil),
		file("etc/empty", 0o600, nil, nil),
		file("etc/.wh.ghost", 0o644, nil, nil), // a whiteout in the lowest layer
		dir("usr/", 0o755, 0, nil),
		dir("usr/bin/", 0o755, 0, nil),
		file("usr/bin/bash", 0o755, Content("bash", 1<<20+1), map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}),
		link("usr/bin/rbash", "usr/bin/bash"),
		sym("usr/bin/sh", "bash"),
		sym("usr/bin/dangling", "/nonexistent"),
		dir("usr/lib/", 0o755, 0, nil),
		file("usr/lib/big.so", 0o644, Content("big", 3<<20+5), nil),
		file("usr/lib/exact", 0o644, Content("exact", 1<<20), nil),
		file("usr/lib/less", 0o644, Content("less", 1<<20-1), nil),
		file("usr/lib/small", 0o644, Content("small", 4097), nil),
		link("usr/lib/small.1", "usr/lib/small"),
		dir("data/", 0o700, 1000, map[string]string{"user.tag": "lower", "trusted.t": "x"}),
		file("data/f", 0o640, Content("f", 4095), map[string]string{"user.a": "1", "user.b": ""}),
		dir("opq/", 0o755, 0, nil),
		file("opq/a", 0o644, []byte("a"), nil),
		dir("opq/sub/", 0o755, 0, nil),
		file("opq/sub/b", 0o644, []byte("b"), nil),
		dir("dir2file/", 0o755, 0, nil),
		file("dir2file/child", 0o644, []byte("child"), nil),
		file("file2dir", 0o644, []byte("file"), nil),
		dir("var/", 0o755, 0, nil),
		dir("var/log/", 0o750, 4, map[string]string{"user.log": "1"}),
		file("impl/deep/file", 0o644, []byte("implicit parents"), nil),
		Entry{Header: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666, ModTime: old}},
		Entry{Header: tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8, Devminor: 0, Mode: 0o660, Gid: 6, ModTime: old}},
		Entry{Header: tar.Header{Name: "dev/fifo", Typeflag: tar.TypeFifo, Mode: 0o600, ModTime: old}},
	)
	l2 := Tar(
		dir("etc/", 0o755, 0, nil),
		file("etc/.wh.hostname", 0o644, nil, nil),
		file("etc/passwd", 0o644, Text("passwd2", 3100), nil),
		file("usr/.wh.lib", 0o644, nil, nil),                                   // a whole directory, with hard links
		file("usr/bin/rbash", 0o755, []byte("#!/bin/sh\nexec bash -r\n"), nil), // replaces one name of a hard link
		dir("opq/", 0o711, 0, nil),
		file("opq/.wh..wh..opq", 0o644, nil, nil),
		file("opq/new", 0o644, []byte("new"), nil),
		file("var/log/new.log", 0o644, Content("log", 10000), nil), // var and var/log implicit
		file("data/f", 0o600, Content("f2", 2<<20), map[string]string{"user.a": "2"}),
		link("data/f.hard", "data/f"),
		file("usr/bin/bash2", 0o755, Content("bash", 1<<20+1), nil), // same chunks as a lower file
	)
	l3 := Tar(
		file("dir2file", 0o644, []byte("was a directory"), nil),
		dir("file2dir/", 0o700, 0, nil),
		file("file2dir/inside", 0o644, []byte("inside"), nil),
		file("opq/.wh.new", 0o644, nil, nil),
		file("etc/hostname", 0o644, []byte("top\n"), nil), // etc implicit: keeps layer 2's
		file("impl/.wh.deep", 0o644, nil, nil),
		dir("data/", 0o750, 1000, map[string]string{"user.tag": "upper"}),
		sym("data/f", "f.hard"),
		dir("var/log/", 0o700, 0, nil),
		file("usr/lib/again", 0o644, []byte("lib is back"), nil),
	)
	return [][]byte{l1, l2, l3}
}

// DebianLayer returns the path of the Debian base layer that
// testdata/debian-layer.sh makes (in rafs-bench under the user's cache
// directory, or the file $RAFS_DEBIAN_LAYER names), making it if it is
// missing.
func DebianLayer(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("RAFS_DEBIAN_LAYER"); p != "" {
		return p
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("no place for the Debian layer: %v", err)
	}
	dir := filepath.Join(cache, "rafs-bench")
	p := filepath.Join(dir, "debian-minbase.tar.gz")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("tartest: cannot locate the repository's testdata")
	}
	script := filepath.Join(filepath.Dir(self), "..", "..", "..", "testdata", "debian-layer.sh")
	out, err := exec.Command("bash", script, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("making the Debian layer: %v\n%s", err, out)
	}
	return p
}
