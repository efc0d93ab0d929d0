package convert_test

import (
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
)

// ExampleTarToEROFS converts the sample layer shipped in testdata into an
// EROFS image and looks at what the OCI whiteouts became.
func ExampleTarToEROFS() {
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
	out, err := os.Create(filepath.Join(dir, "layer.erofs"))
	if err != nil {
		log.Fatal(err)
	}
	defer out.Close()

	res, err := convert.TarToEROFS(in, out, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("entries:", res.Entries, "input:", res.Encoding)

	fsys, err := erofs.Open(out)
	if err != nil {
		log.Fatal(err)
	}
	wh, _ := fsys.Lstat("var/cache/apt")
	fmt.Println("var/cache/apt:", wh.Mode())
	opq, _ := fsys.Lstat("opt/app")
	fmt.Printf("opt/app opaque: %q\n", opq.Sys().(*erofs.Stat).Xattrs["trusted.overlay.opaque"])
	// Output:
	// entries: 25 input: gzip
	// var/cache/apt: Dc---------
	// opt/app opaque: "y"
}
