package convert_test

import (
	"bytes"
	"io"
	"testing"

	"github.com/rafs-dev/rafs/convert"
)

// benchNydus converts data to a Nydus blob (zstd, BLAKE3, 1 MiB chunks)
// written to io.Discard.
func benchNydus(b *testing.B, data []byte) {
	br := bytes.NewReader(data)
	var res *convert.NydusResult
	for b.Loop() {
		br.Reset(data)
		var err error
		if res, err = convert.TarToNydus(br, io.Discard, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.Blob.Size), "blob-bytes")
}

// BenchmarkTarToNydusDebian measures the whole conversion of the gzipped
// benchmark layer (the Debian base layer when present) into a Nydus blob
// with its inline bootstrap. The target is at most 1.5 times the time of
// BenchmarkGunzip (klauspost/compress decoding the same file).
func BenchmarkTarToNydusDebian(b *testing.B) {
	l := getBenchLayer(b)
	benchReportLayer(b, l)
	benchNydus(b, l.gz)
}

// BenchmarkTarToNydusPlain measures the conversion of the uncompressed tar.
func BenchmarkTarToNydusPlain(b *testing.B) {
	l := getBenchLayer(b)
	benchReportLayer(b, l)
	benchNydus(b, l.tar)
}
