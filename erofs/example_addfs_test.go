package erofs_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"testing/fstest"
	"time"

	"github.com/rafs-dev/rafs/erofs"
)

// memFile is an in-memory io.WriterAt and io.ReaderAt for the examples.
type memFile struct{ b []byte }

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(m.b) {
		m.b = append(m.b, make([]byte, end-len(m.b))...)
	}
	return copy(m.b[off:], p), nil
}

// ExampleWriter_AddFS copies a file tree (here an fstest.MapFS whose files
// carry tar headers for their owners and xattrs; os.DirFS and an opened
// image work too) into an image, then copies that image into another.
// MapFS makes the directories it implies, mode 0555.
func ExampleWriter_AddFS() {
	t := time.Unix(1700000000, 0)
	src := fstest.MapFS{
		"etc/motd": {Data: []byte("hi\n"), Mode: 0o644, ModTime: t,
			Sys: &tar.Header{Uid: 1000, Gid: 1000, PAXRecords: map[string]string{"SCHILY.xattr.user.k": "v"}}},
		"etc/issue": {Mode: 0o644, ModTime: t, Sys: &tar.Header{Typeflag: tar.TypeLink, Linkname: "etc/motd"}},
		"bin":       {Mode: fs.ModeSymlink | 0o777, Data: []byte("usr/bin"), ModTime: t},
	}
	build := func(fsys fs.FS) *erofs.FS {
		img := &memFile{}
		w, err := erofs.NewWriter(img, nil)
		if err != nil {
			log.Fatal(err)
		}
		if err := w.AddFS(fsys); err != nil {
			log.Fatal(err)
		}
		if err := w.Close(); err != nil {
			log.Fatal(err)
		}
		r, err := erofs.Open(bytes.NewReader(img.b))
		if err != nil {
			log.Fatal(err)
		}
		return r
	}
	copied := build(build(src)) // MapFS -> image -> image
	fs.WalkDir(copied, ".", func(p string, d fs.DirEntry, err error) error {
		fi, _ := d.Info()
		st := fi.Sys().(*erofs.Stat)
		fmt.Println(p, fi.Mode(), st.UID, st.Nlink, st.Xattrs)
		return nil
	})

	// A Writer is done after Close.
	w, _ := erofs.NewWriter(&memFile{}, nil)
	w.Close()
	fmt.Println(errors.Is(w.AddFS(src), erofs.ErrClosed))
	// Output:
	// . dr-xr-xr-x 0 3 map[]
	// bin Lrwxrwxrwx 0 1 map[]
	// etc dr-xr-xr-x 0 2 map[]
	// etc/issue -rw-r--r-- 1000 2 map[user.k:v]
	// etc/motd -rw-r--r-- 1000 2 map[user.k:v]
	// true
}
