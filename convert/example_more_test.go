package convert_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
)

// sampleTar returns the uncompressed sample layer.
func sampleTar() []byte {
	in, err := os.Open("../testdata/sample-layer.tar.gz")
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	rc, _, err := convert.Decompress(in)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

// ExampleTarToEROFSIndex makes a tar index of the sample layer: an image
// of the metadata alone whose files' data is the tar itself, given to the
// reader (or to mount, as device=) as the image's device 1.
func ExampleTarToEROFSIndex() {
	layer := sampleTar()
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
	res, err := convert.TarToEROFSIndex(bytes.NewReader(layer), out, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("index smaller than the tar:", res.ImageSize < int64(len(layer)))

	fsys, err := erofs.Open(out, erofs.WithDevices(bytes.NewReader(layer)))
	if err != nil {
		log.Fatal(err)
	}
	data, err := fs.ReadFile(fsys, "etc/hostname")
	fmt.Printf("%q %v\n", data, err)
	// Output:
	// index smaller than the tar: true
	// "rafs-sample\n" <nil>
}

// ExampleEntryError shows the error a bad tar entry gives: the entry's
// name and offset, and the cause, all inspectable.
func ExampleEntryError() {
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	tw.WriteHeader(&tar.Header{Name: "a", Typeflag: tar.TypeReg, Mode: 0o644})
	tw.WriteHeader(&tar.Header{Name: "b", Typeflag: tar.TypeLink, Linkname: "missing"})
	tw.Close()

	_, err := convert.TarToNydus(&layer, io.Discard, nil)
	var ee *convert.EntryError
	if errors.As(err, &ee) {
		fmt.Println(ee.Name, ee.Offset, errors.Is(err, fs.ErrNotExist))
	}
	fmt.Println(err)
	// Output:
	// b 512 true
	// convert: tar entry "b" at offset 512: hard link to "missing", which is not in the archive before it
}

// ExampleUnpackEROFS converts the sample layer and unpacks the image back
// into a tar.
func ExampleUnpackEROFS() {
	img := &memImage{}
	if _, err := convert.TarToEROFS(bytes.NewReader(sampleTar()), img, nil); err != nil {
		log.Fatal(err)
	}
	fsys, err := erofs.Open(bytes.NewReader(img.b))
	if err != nil {
		log.Fatal(err)
	}
	var out bytes.Buffer
	res, err := convert.UnpackEROFS(fsys, &out)
	if err != nil {
		log.Fatal(err)
	}
	tr := tar.NewReader(&out)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		if h.Name == "etc/hostname" {
			b, _ := io.ReadAll(tr)
			fmt.Printf("%s %q\n", h.Name, b)
		}
	}
	fmt.Println("entries:", res.Entries)
	// Output:
	// etc/hostname "rafs-sample\n"
	// entries: 29
}
