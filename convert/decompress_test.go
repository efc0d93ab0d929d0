package convert_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand"
	"testing"

	"github.com/rafs-dev/rafs/convert"
)

// TestDecompressWithCores decodes a gzip stream of several megabytes
// (large enough to be decoded on several cores) with each number of
// cores, and refuses a negative one.
func TestDecompressWithCores(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	words := []string{"layer ", "image ", "erofs ", "rafs ", "chunk ", "blob "}
	var data bytes.Buffer
	for data.Len() < 12<<20 {
		data.WriteString(words[rng.Intn(len(words))])
		if rng.Intn(50) == 0 {
			var b [64]byte
			rng.Read(b[:])
			data.Write(b[:])
		}
	}
	var comp bytes.Buffer
	w, _ := gzip.NewWriterLevel(&comp, 6)
	w.Write(data.Bytes())
	w.Close()
	for _, cores := range []int{0, 1, 2, 3, 8} {
		rc, enc, err := convert.DecompressWith(bytes.NewReader(comp.Bytes()), &convert.DecompressOptions{Cores: cores})
		if err != nil || enc != convert.TarGzip {
			t.Fatalf("cores %d: %v, %v", cores, enc, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data.Bytes()) {
			t.Fatalf("cores %d: err %v, equal %v", cores, err, bytes.Equal(got, data.Bytes()))
		}
	}
	if _, _, err := convert.DecompressWith(bytes.NewReader(comp.Bytes()), &convert.DecompressOptions{Cores: -1}); err == nil {
		t.Error("negative Cores accepted")
	}
}
