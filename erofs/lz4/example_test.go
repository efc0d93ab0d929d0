package lz4_test

import (
	"bytes"
	"fmt"

	"github.com/rafs-dev/rafs/erofs/lz4"
)

// Compress a buffer into 64-byte blocks the way EROFS fills physical
// clusters, then decode the blocks again.
func Example() {
	var data []byte
	for i := 0; i < 40; i++ {
		data = fmt.Appendf(data, "inode %d: %d blocks at %#x\n", i, i*i%7, 4096*i*i)
	}

	c, err := lz4.NewCompressor(lz4.LevelHCDefault)
	if err != nil {
		panic(err)
	}
	var blocks [][]byte
	for rest := data; len(rest) > 0; {
		dst := make([]byte, 64)
		n, consumed := c.CompressDestSize(dst, rest)
		blocks = append(blocks, dst[:n])
		rest = rest[consumed:]
	}

	var out []byte
	for _, b := range blocks {
		buf := make([]byte, 64*255)
		n, err := lz4.Decompress(buf, b)
		if err != nil {
			panic(err)
		}
		out = append(out, buf[:n]...)
	}
	fmt.Println(len(data), "bytes in", len(blocks), "blocks; equal:", bytes.Equal(out, data))
	// Output: 1207 bytes in 12 blocks; equal: true
}

// Plain compression of a whole buffer.
func ExampleCompressor_Compress() {
	src := []byte("hello, hello, hello, hello, hello!")
	c, _ := lz4.NewCompressor(lz4.LevelFast)
	dst := make([]byte, lz4.CompressBound(len(src)))
	n := c.Compress(dst, src)
	out := make([]byte, len(src))
	m, err := lz4.Decompress(out, dst[:n])
	fmt.Println(n < len(src), m, err, string(out[:m]))
	// Output: true 34 <nil> hello, hello, hello, hello, hello!
}
