package convert_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
)

// ExampleUnpackEROFSDir converts the sample layer into an EROFS image and
// writes the image's tree into a new directory, as "rafs unpack --dir"
// does (which also renames the directory into place when it is complete).
func ExampleUnpackEROFSDir() {
	in, err := os.Open("../testdata/sample-layer.tar.gz")
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	dir, err := os.MkdirTemp("", "rafs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	img, err := os.Create(filepath.Join(dir, "layer.erofs"))
	if err != nil {
		log.Fatal(err)
	}
	defer img.Close()
	if _, err := convert.TarToEROFS(in, img, nil); err != nil {
		log.Fatal(err)
	}
	fsys, err := erofs.Open(img)
	if err != nil {
		log.Fatal(err)
	}

	out := filepath.Join(dir, "tree")
	if err := os.Mkdir(out, 0o755); err != nil {
		log.Fatal(err)
	}
	res, _, err := convert.UnpackEROFSDir(fsys, out)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("entries:", res.Entries)
	fi, err := os.Lstat(filepath.Join(out, "opt/app"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("opt/app:", fi.Mode())
	// Output:
	// entries: 29
	// opt/app: drwxr-xr-x
}
