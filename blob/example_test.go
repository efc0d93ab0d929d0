package blob_test

import (
	"bytes"
	"fmt"
	"log"
	"strings"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/chunker"
)

// Example writes a blob from two files' chunks with an inline bootstrap,
// then reads it back.
func Example() {
	var out bytes.Buffer // any io.Writer: a file, a pipe, an upload
	w, err := blob.NewWriter(&out, &blob.WriterOptions{
		Compressor: blob.CompressorZstd,
		Digester:   blob.DigesterBlake3,
		ChunkSize:  64 << 10,
	})
	if err != nil {
		log.Fatal(err)
	}
	var chunks []*blob.StoredChunk
	for _, file := range []string{strings.Repeat("hello world\n", 10000), "short file"} {
		c, err := chunker.NewFixed(strings.NewReader(file), 64<<10)
		if err != nil {
			log.Fatal(err)
		}
		for {
			ch, err := c.Next()
			if err != nil {
				break // io.EOF
			}
			d, err := w.Add(ch.Data)
			if err != nil {
				log.Fatal(err)
			}
			chunks = append(chunks, d)
		}
	}
	info, err := w.Finish(func(data *blob.Info) ([]byte, error) {
		// Build the RAFS bootstrap here: chunk descriptors and blob-table
		// fields are final.
		return []byte(fmt.Sprintf("bootstrap for %d chunks", data.ChunkCount)), nil
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("chunks %d, features %#x, uncompressed size %d\n", info.ChunkCount, uint32(info.Features), info.UncompressedSize)
	fmt.Printf("second chunk at %d (index %d)\n", chunks[1].UncompressedOffset, chunks[1].Index)

	r, err := blob.Open(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		log.Fatal(err)
	}
	boot, _ := r.Bootstrap()
	data, err := r.ReadChunk(2, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s; chunk 2: %q\n", boot, data)
	// Output:
	// chunks 3, features 0x70000023, uncompressed size 126976
	// second chunk at 65536 (index 1)
	// bootstrap for 3 chunks; chunk 2: "short file"
}
