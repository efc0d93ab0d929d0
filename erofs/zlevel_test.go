package erofs_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/rafs-dev/rafs/erofs"
)

// TestCompressionLevelZero checks that Level 0 is each algorithm's default:
// the same image, String and Key as DefaultCompression's, for every
// algorithm, and that a negative level is refused.
func TestCompressionLevelZero(t *testing.T) {
	build := func(c *erofs.Compression) []byte {
		t.Helper()
		img := &memImage{}
		w, err := erofs.NewWriter(img, &erofs.WriterOptions{Compression: c})
		if err != nil {
			t.Fatalf("%s: %v", c.Algorithm, err)
		}
		data := []byte(strings.Repeat("level zero means the default level; ", 400))
		if err := w.Add(&erofs.Entry{Path: "f", Mode: erofs.ModeRegular | 0o644, Size: int64(len(data))}, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("%s: %v", c.Algorithm, err)
		}
		return img.b
	}
	for _, alg := range []string{"lz4", "lz4hc", "lzma", "deflate", "zstd"} {
		def, err := erofs.DefaultCompression(alg)
		if err != nil {
			t.Fatal(err)
		}
		zero := &erofs.Compression{Algorithm: alg}
		if !bytes.Equal(build(zero), build(def)) {
			t.Errorf("%s: Level 0 gives another image than level %d", alg, def.Level)
		}
		if zero.String() != def.String() || zero.Key() != def.Key() {
			t.Errorf("%s: Level 0 is %q (key %q), the default %q (key %q)", alg, zero, zero.Key(), def, def.Key())
		}
		if p, err := erofs.ParseCompression(alg + ",level=0"); err != nil || p.String() != def.String() {
			t.Errorf("%s,level=0 parses to %v, %v; want %v", alg, p, err, def)
		}
		if _, err := erofs.NewWriter(&memImage{}, &erofs.WriterOptions{Compression: &erofs.Compression{Algorithm: alg, Level: -1}}); err == nil {
			t.Errorf("%s: level -1 accepted", alg)
		}
	}
}
