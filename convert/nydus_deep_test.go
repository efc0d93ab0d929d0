package convert_test

import (
	"archive/tar"
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/rafs"
)

// deepTarDepth is deep enough that a path kept or formatted per directory
// costs gigabytes (depth² bytes and more), while the layer itself is a
// few megabytes of metadata.
const deepTarDepth = 20000

// deepTar returns a layer whose one file is deepTarDepth directories
// down, with implicit parents, and the file's path.
func deepTar(t testing.TB, file string) ([]byte, string) {
	p := strings.Repeat("d/", deepTarDepth) + file
	return makeTar(t, tarEntry{hdr: tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX}, data: "deep\n"}), p
}

// allocated returns the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestNydusDeepTreeMemory: converting, reading, merging and unpacking a
// layer 20,000 directories deep allocates memory linear in its entries
// (the unpacked tar, whose every header holds a full path, is written
// through reused buffers).
func TestNydusDeepTreeMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	lowerTar, _ := deepTar(t, "file")
	upperTar, _ := deepTar(t, "other") // its directories are implicit too
	const limit = 64 << 20
	check := func(what string, n uint64) {
		t.Helper()
		t.Logf("%s: %.1f MB allocated", what, float64(n)/(1<<20))
		if n > limit {
			t.Errorf("%s allocated %d MB for %d directories; want at most %d MB", what, n>>20, deepTarDepth, limit>>20)
		}
	}
	var lower, upper nydusLayer
	var err error
	check("TarToNydus", allocated(func() {
		var buf bytes.Buffer
		lower.res, err = convert.TarToNydus(bytes.NewReader(lowerTar), &buf, nil)
		lower.blob = buf.Bytes()
	}))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if upper.res, err = convert.TarToNydus(bytes.NewReader(upperTar), &buf, nil); err != nil {
		t.Fatal(err)
	}
	upper.blob = buf.Bytes()
	var lb, ub, m *rafs.Bootstrap
	check("ReadNydusLayer", allocated(func() {
		lb, _, err = convert.ReadNydusLayer(bytes.NewReader(lower.blob), int64(len(lower.blob)))
	}))
	if err != nil {
		t.Fatal(err)
	}
	ub = upper.layerBootstrap(t)
	check("MergeNydus", allocated(func() { m, err = convert.MergeNydus([]*rafs.Bootstrap{lb, ub}, nil) }))
	if err != nil {
		t.Fatal(err)
	}
	brs := openBlobs(t, m, &lower, &upper)
	var out countWriter
	var res *convert.UnpackResult
	check("UnpackNydus", allocated(func() { res, err = convert.UnpackNydus(m, brs, &out) }))
	if err != nil {
		t.Fatal(err)
	}
	// Every directory and both files, each header with its full path.
	if res.Entries != deepTarDepth+2 || out.n < int64(deepTarDepth)*int64(deepTarDepth) {
		t.Errorf("unpacked %d entries in %d bytes", res.Entries, out.n)
	}
}

// countWriter counts what is written to it.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// TestNydusDeepTreeErrors: an unpack error deep down names the entry's
// full path, which is built only then.
func TestNydusDeepTreeErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	data, p := deepTar(t, "file")
	l := toNydus(t, data, nil)
	_, err := convert.UnpackNydus(l.layerBootstrap(t), []*blob.Reader{nil}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "convert: unpack /"+p+": chunk 0 (file offset 0): blob ") {
		msg := "no error"
		if err != nil {
			msg = err.Error()[:min(len(err.Error()), 200)]
		}
		t.Errorf("unpack without the blob: %s; want an error naming /%s...", msg, p[:20])
	}
}
