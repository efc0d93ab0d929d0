package convert_test

import (
	"bytes"
	"fmt"
	"log"
	"os"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/rafs"
)

// ExampleTarToNydusTarfs writes the tarfs bootstrap of the sample layer
// (a .tar.gz, so its uncompressed tar is written out too: that tar is the
// bootstrap's blob) and reads a file back through the bootstrap from
// the tar.
func ExampleTarToNydusTarfs() {
	in, err := os.Open("../testdata/sample-layer.tar.gz")
	if err != nil {
		log.Fatal(err)
	}
	defer in.Close()
	var boot, tarData bytes.Buffer
	res, err := convert.TarToNydusTarfs(in, &boot, &tarData, nil)
	if err != nil {
		log.Fatal(err)
	}
	b, err := rafs.Read(bytes.NewReader(boot.Bytes()), int64(boot.Len()))
	if err != nil {
		log.Fatal(err)
	}
	c := b.Lookup("etc/hostname").Chunks[0]
	fmt.Println("block size:", b.BlockSize(), "blobs:", len(b.Blobs), "tar bytes:", res.TarSize == int64(tarData.Len()))
	fmt.Printf("etc/hostname is at tar offset %d: %q\n", c.UncompressedOffset,
		tarData.Bytes()[c.UncompressedOffset:c.UncompressedOffset+uint64(c.UncompressedSize)])
	// Output:
	// block size: 512 blobs: 1 tar bytes: true
	// etc/hostname is at tar offset 1536: "rafs-sample\n"
}
