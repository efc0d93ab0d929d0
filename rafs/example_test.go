package rafs_test

import (
	"bytes"
	"fmt"
	"log"

	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

// Example writes a small bootstrap (no regular file data, so no blobs)
// and reads it back.
func Example() {
	boot := &rafs.Bootstrap{
		ChunkSize: 1 << 20,
		Flags:     rafs.DefaultFlags,
		Root: &rafs.Node{Mode: erofs.ModeDir | 0o755, Children: []*rafs.Node{
			{Name: "etc", Mode: erofs.ModeDir | 0o755, Children: []*rafs.Node{
				{Name: "motd", Mode: erofs.ModeRegular | 0o644}, // empty: no chunks
			}},
			{Name: "bin", Mode: erofs.ModeSymlink | 0o777, Linkname: "usr/bin"},
		}},
	}
	var buf bytes.Buffer
	if _, err := boot.WriteTo(&buf); err != nil {
		log.Fatal(err)
	}
	got, err := rafs.Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		log.Fatal(err)
	}
	err = got.Walk(func(path string, n *rafs.Node) error {
		fmt.Printf("%s %o %q\n", path, n.Mode, n.Linkname)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output:
	// / 40755 ""
	// /bin 120777 "usr/bin"
	// /etc 40755 ""
	// /etc/motd 100644 ""
}

// ExampleMerge overlays two layers: the upper one deletes a file of the
// lower one with a whiteout and adds its own.
func ExampleMerge() {
	dir := func(name string, children ...*rafs.Node) *rafs.Node {
		return &rafs.Node{Name: name, Mode: erofs.ModeDir | 0o755, Children: children}
	}
	file := func(name string) *rafs.Node { return &rafs.Node{Name: name, Mode: erofs.ModeRegular | 0o644} }
	lower := &rafs.Bootstrap{ChunkSize: 1 << 20, Flags: rafs.DefaultFlags,
		Root: dir("", dir("etc", file("old.conf"), file("keep.conf")))}
	upper := &rafs.Bootstrap{ChunkSize: 1 << 20, Flags: rafs.DefaultFlags,
		Root: dir("", dir("etc", file(rafs.WhiteoutPrefix+"old.conf"), file("new.conf")))}

	merged, err := rafs.Merge([]*rafs.Bootstrap{lower, upper}, nil)
	if err != nil {
		log.Fatal(err)
	}
	merged.Walk(func(path string, n *rafs.Node) error {
		fmt.Println(path)
		return nil
	})
	// Output:
	// /
	// /etc
	// /etc/keep.conf
	// /etc/new.conf
}
