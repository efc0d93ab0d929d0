package erofs_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"

	"github.com/rafs-dev/rafs/erofs"
)

func ExampleOpen() {
	// testdata/plain.erofs.gz is an image made by mkfs.erofs.
	gz, err := os.ReadFile("testdata/plain.erofs.gz")
	if err != nil {
		log.Fatal(err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		log.Fatal(err)
	}
	img, err := io.ReadAll(zr)
	if err != nil {
		log.Fatal(err)
	}

	fsys, err := erofs.Open(bytes.NewReader(img))
	if err != nil {
		log.Fatal(err)
	}
	sb := fsys.Superblock()
	fmt.Printf("volume %q, %d-byte blocks, %d inodes\n", sb.VolumeName, sb.BlockSize, sb.Inodes)

	ents, err := fs.ReadDir(fsys, "dir1")
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			log.Fatal(err)
		}
		st := info.Sys().(*erofs.Stat)
		fmt.Printf("%v %5d %s (nlink %d)\n", info.Mode(), info.Size(), e.Name(), st.Nlink)
	}

	target, err := fsys.ReadLink("dir1/sub/up")
	if err != nil {
		log.Fatal(err)
	}
	data, err := fs.ReadFile(fsys, "dir1/sub/up") // follows the link
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("dir1/sub/up -> %s (%d bytes)\n", target, len(data))

	info, err := fsys.Stat("acl")
	if err != nil {
		log.Fatal(err)
	}
	for name := range info.Sys().(*erofs.Stat).Xattrs {
		fmt.Println("acl has xattr", name)
	}
	// Output:
	// volume "golden", 4096-byte blocks, 639 inodes
	// -rw-r--r-- 10000 hard10000b (nlink 3)
	// -rw-r--r--   100 inner (nlink 1)
	// drwxr-xr-x    41 sub (nlink 2)
	// dir1/sub/up -> ../../one (1 bytes)
	// acl has xattr system.posix_acl_access
}
