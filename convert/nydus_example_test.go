package convert_test

import (
	"bytes"
	"fmt"
	"log"
	"os"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/rafs"
)

// ExampleTarToNydus converts the sample layer into a Nydus blob, reads the
// layer bootstrap back out of the blob and merges it into an image
// bootstrap, where the layer's whiteouts are gone.
func ExampleTarToNydus() {
	in, err := os.Open("../testdata/sample-layer.tar.gz")
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	var blobData bytes.Buffer
	res, err := convert.TarToNydus(in, &blobData, nil) // zstd, BLAKE3, 1 MiB chunks
	if err != nil {
		log.Fatal(err)
	}
	layer, id, err := convert.ReadNydusLayer(bytes.NewReader(blobData.Bytes()), int64(blobData.Len()))
	if err != nil {
		log.Fatal(err)
	}
	image, err := convert.MergeNydus([]*rafs.Bootstrap{layer}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("blob id is the sha256 of the blob:", id == res.Blob.ID)
	fmt.Println("files:", res.Files, "chunks:", res.Blob.ChunkCount)
	fmt.Println("whiteout in the layer:", layer.Lookup("var/cache/.wh.apt") != nil)
	fmt.Println("whiteout in the image:", image.Lookup("var/cache/.wh.apt") != nil)
	// Output:
	// blob id is the sha256 of the blob: true
	// files: 11 chunks: 8
	// whiteout in the layer: true
	// whiteout in the image: false
}
