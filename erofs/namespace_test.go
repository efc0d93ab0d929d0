package erofs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/erofs"
)

// treeListing lists a sorted Tree depth-first as "path mode nlinked" lines,
// a hard link's later names as "path -> first path".
func treeListing(t *erofs.Tree) []string {
	var out []string
	first := map[uint32]string{}
	var walk func(dir uint32, prefix string)
	walk = func(dir uint32, prefix string) {
		for _, de := range t.Entries(dir) {
			name, id := t.Entry(de)
			p := prefix + name
			if f, ok := first[id]; ok {
				out = append(out, p+" -> "+f)
				continue
			}
			first[id] = p
			st := t.Stat(id)
			line := p + " " + strings.TrimLeft(fs.FileMode(st.Mode&erofs.ModePermMask).String(), "-")
			if t.IsDir(id) {
				line += "/"
			}
			for i := range t.NumXattrs(id) {
				k, v := t.Xattr(id, i)
				line += " " + k + "=" + v
			}
			out = append(out, line)
			if t.IsDir(id) {
				walk(id, p+"/")
			}
		}
	}
	walk(erofs.TreeRoot, "")
	return out
}

// TestTree checks the namespace the Nydus builder shares with the Writer:
// implied parents, replacement, directory merges, hard links, removal and
// the name order of Entries.
func TestTree(t *testing.T) {
	tr := erofs.NewTree(100)
	add := func(e erofs.Entry) uint32 {
		t.Helper()
		id, ok, err := tr.Add(&e)
		if err != nil {
			t.Fatalf("Add %s: %v", e.Path, err)
		}
		if !ok {
			return erofs.TreeRoot
		}
		return id
	}
	f := add(erofs.Entry{Path: "a/b/f", Mode: erofs.ModeRegular | 0o644, Size: 3, ModTime: time.Unix(5, 7)})
	tr.SetPayload(f, 42)
	add(erofs.Entry{Path: "a", Mode: erofs.ModeDir | 0o700, Xattrs: map[string]string{"user.x": "1"}})
	add(erofs.Entry{Path: "a/", Mode: erofs.ModeDir | 0o711, Xattrs: map[string]string{"user.y": "2"}})
	add(erofs.Entry{Path: "z", Mode: erofs.ModeSymlink | 0o777, Linkname: "a/b/f"})
	add(erofs.Entry{Path: "c/old", Mode: erofs.ModeRegular | 0o600})
	add(erofs.Entry{Path: "c", Mode: erofs.ModeCharDevice, Devmajor: 1, Devminor: 3}) // replaces the directory
	if err := tr.Link("a/h", "a/b/f"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Link("h", "a/b/./f"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Link("x", "nothing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Link to a missing target: %v", err)
	}
	if err := tr.Link("x", "a"); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("Link to a directory: %v", err)
	}
	if err := tr.SetXattr("c", "trusted.overlay.opaque", "y"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("SetXattr on a device: %v", err)
	}
	if err := tr.SetXattr("o/p", "trusted.overlay.opaque", "y"); err != nil {
		t.Fatal(err)
	}
	if err := tr.SetXattr("o", "bare", "y"); err == nil || !strings.Contains(err.Error(), "no prefix") {
		t.Errorf("SetXattr of a name in no namespace: %v", err)
	}
	if err := tr.MkdirAll("m/n"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Remove("m"); err != nil {
		t.Fatal(err)
	}
	if err := tr.Remove("nothing/there"); err != nil {
		t.Fatal(err)
	}
	if err := tr.MkdirAll("c/d"); !errors.Is(err, syscall.ENOTDIR) {
		t.Errorf("MkdirAll below a device: %v", err)
	}
	if _, _, err := tr.Add(&erofs.Entry{Path: "../x", Mode: erofs.ModeRegular}); err == nil {
		t.Error(`Add "../x" succeeded`)
	}
	if !tr.Linked(f) || tr.Payload(f) != 42 {
		t.Errorf("file: linked %v, payload %d", tr.Linked(f), tr.Payload(f))
	}
	if st := tr.Stat(f); st.Size != 3 || st.Mtime != 5 || st.MtimeNsec != 7 {
		t.Errorf("file: %+v", st)
	}
	tr.Sort()
	got := strings.Join(treeListing(tr), "\n")
	want := strings.Join([]string{
		"a rwx--x--x/ user.x=1 user.y=2",
		"a/b rwxr-xr-x/",
		"a/b/f rw-r--r--",
		"a/h -> a/b/f",
		"c ",
		"h -> a/b/f",
		"o rwxr-xr-x/",
		"o/p rwxr-xr-x/ trusted.overlay.opaque=y",
		"z rwxrwxrwx",
	}, "\n")
	if got != want {
		t.Errorf("tree:\n%s\nwant:\n%s", got, want)
	}
	for _, de := range tr.Entries(erofs.TreeRoot) {
		name, id := tr.Entry(de)
		switch name {
		case "c":
			if st := tr.Stat(id); st.Devmajor != 1 || st.Devminor != 3 {
				t.Errorf("c: device %d:%d", st.Devmajor, st.Devminor)
			}
		case "z":
			if l := tr.Linkname(id); l != "a/b/f" {
				t.Errorf("z: target %q", l)
			}
		case "o":
			if st := tr.Stat(id); st.Mtime != 100 {
				t.Errorf("implied directory o: mtime %d, want the build time", st.Mtime)
			}
		}
	}
}

// TestWriterManyLinks: a file with more names than a compact inode's
// 16-bit link count holds gets an extended inode with the whole count, and
// its directory the count of its subdirectories.
func TestWriterManyLinks(t *testing.T) {
	const links = 70000
	items := []item{{e: erofs.Entry{Path: "d/f", Mode: erofs.ModeRegular | 0o644}, data: "x"}}
	for i := range links - 1 {
		items = append(items, item{e: erofs.Entry{Path: fmt.Sprintf("d/l%05d", i)}, link: "d/f"})
	}
	items = append(items, item{e: erofs.Entry{Path: "d/sub", Mode: erofs.ModeDir | 0o755}})
	fsys, err := erofs.Open(bytes.NewReader(build(t, nil, items)))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint32{"d/f": links, "d/l00007": links, "d": 3, "d/sub": 2} {
		fi, err := fsys.Lstat(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Sys().(*erofs.Stat).Nlink; got != want {
			t.Errorf("%s: nlink %d, want %d", name, got, want)
		}
	}
}
