package blob_test

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/rafs-dev/rafs/blob"
)

// ExampleOpen shows how to tell a malformed blob (ErrFormat) from a
// failure of the reader under it.
func ExampleOpen() {
	junk := bytes.Repeat([]byte("not a blob "), 100)
	_, err := blob.Open(bytes.NewReader(junk), int64(len(junk)))
	fmt.Println(errors.Is(err, blob.ErrFormat))

	// The zero WriterOptions are the defaults: zstd chunks, BLAKE3.
	var out bytes.Buffer
	w, err := blob.NewWriter(&out, &blob.WriterOptions{})
	if err != nil {
		panic(err)
	}
	w.Add([]byte("chunk"))
	info, err := w.Finish(nil)
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Compressor, info.Digester)
	_, err = w.Add([]byte("more"))
	fmt.Println(errors.Is(err, blob.ErrClosed))
	// Output:
	// true
	// zstd blake3
	// true
}
