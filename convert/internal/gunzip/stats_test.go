package gunzip

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"
)

// TestLayerStats is a measuring aid, skipped unless GUNZIP_LAYER names a
// .tar.gz: it reports decode throughput at 1, 2 and 4 workers and
// sequentially, and how many chunks the parallel path used.
func TestLayerStats(t *testing.T) {
	path := os.Getenv("GUNZIP_LAYER")
	if path == "" {
		t.Skip()
	}
	data, _ := os.ReadFile(path)
	for _, w := range []int{1, 2, 4} {
		t0 := time.Now()
		z, err := newReader(bytes.NewReader(data), config{workers: w, force: true})
		if err != nil {
			t.Fatal(err)
		}
		p := z.p
		n, err := io.Copy(io.Discard, z)
		d := time.Since(t0)
		t.Logf("workers %d: %d bytes, %v, %.0f MB/s, err %v, accepted %d fallbacks %d skipped %d", w, n, d, float64(n)/d.Seconds()/1e6, err, p.accepted, p.fallbacks, p.skipped)
	}
	t0 := time.Now()
	z, _ := newReader(bytes.NewReader(data), config{sequential: true})
	n, err := io.Copy(io.Discard, z)
	d := time.Since(t0)
	t.Logf("sequential: %d bytes, %v, %.0f MB/s, err %v", n, d, float64(n)/d.Seconds()/1e6, err)
}
