package chunker_test

import (
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/rafs-dev/rafs/chunker"
)

func Example() {
	data := strings.Repeat("x", 10000)
	c, err := chunker.NewFixed(strings.NewReader(data), 4096)
	if err != nil {
		log.Fatal(err)
	}
	for {
		ch, err := c.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("chunk at %d: %d bytes\n", ch.Offset, len(ch.Data))
	}
	// Output:
	// chunk at 0: 4096 bytes
	// chunk at 4096: 4096 bytes
	// chunk at 8192: 1808 bytes
}
