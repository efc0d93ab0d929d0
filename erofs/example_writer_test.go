package erofs_test

import (
	"fmt"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rafs-dev/rafs/erofs"
)

// ExampleWriter builds a small image from entries a program makes itself,
// then reads it back.
func ExampleWriter() {
	dir, err := os.MkdirTemp("", "rafs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	f, err := os.Create(filepath.Join(dir, "example.erofs"))
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	w, err := erofs.NewWriter(f, &erofs.WriterOptions{BuildTime: 1700000000})
	if err != nil {
		log.Fatal(err)
	}
	hello := "hello, EROFS\n"
	entries := []struct {
		e    erofs.Entry
		data string
	}{
		{erofs.Entry{Path: "etc", Mode: erofs.ModeDir | 0o755}, ""},
		{erofs.Entry{Path: "etc/motd", Mode: erofs.ModeRegular | 0o644, Size: int64(len(hello)),
			ModTime: time.Unix(1700000000, 0), Xattrs: map[string]string{"user.origin": "example"}}, hello},
		{erofs.Entry{Path: "motd", Mode: erofs.ModeSymlink | 0o777, Linkname: "etc/motd"}, ""},
	}
	for _, it := range entries {
		if err := w.Add(&it.e, strings.NewReader(it.data)); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Link("etc/motd.link", "etc/motd"); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	fsys, err := erofs.Open(f)
	if err != nil {
		log.Fatal(err)
	}
	data, _ := fs.ReadFile(fsys, "motd") // follows the symlink
	fmt.Printf("motd: %q\n", data)
	fi, _ := fsys.Lstat("etc/motd.link")
	st := fi.Sys().(*erofs.Stat)
	fmt.Println("links:", st.Nlink, "xattr:", st.Xattrs["user.origin"])
	// Output:
	// motd: "hello, EROFS\n"
	// links: 2 xattr: example
}

// ExampleCompression builds a compressed image: zstd in clusters of up to
// 64 KiB, with tails inline, as mkfs.erofs -zzstd -C65536 -Eztailpacking.
func ExampleCompression() {
	c, err := erofs.ParseCompression("zstd,level=3")
	if err != nil {
		log.Fatal(err)
	}
	c.PclusterSize = 64 << 10
	c.Ztailpacking = true

	f, err := os.CreateTemp("", "rafs-example-*.erofs")
	if err != nil {
		log.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	w, err := erofs.NewWriter(f, &erofs.WriterOptions{Compression: c})
	if err != nil {
		log.Fatal(err)
	}
	text := strings.Repeat("a compressible line of text\n", 10000)
	if err := w.Add(&erofs.Entry{Path: "notes.txt", Mode: erofs.ModeRegular | 0o644, Size: int64(len(text))}, strings.NewReader(text)); err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	fsys, err := erofs.Open(f)
	if err != nil {
		log.Fatal(err)
	}
	data, _ := fs.ReadFile(fsys, "notes.txt")
	fi, _ := fsys.Stat("notes.txt")
	fmt.Println("read back:", len(data) == len(text), "layout:", fi.Sys().(*erofs.Stat).Layout == erofs.LayoutCompressedCompact)
	fmt.Printf("image smaller than the text: %v\n", w.Size() < int64(len(text))/10)
	// Output:
	// read back: true layout: true
	// image smaller than the text: true
}
