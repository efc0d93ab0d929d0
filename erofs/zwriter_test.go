package erofs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"testing"

	"github.com/rafs-dev/rafs/erofs"
)

// zcontent returns n bytes of content of the given kind: "zero",
// "noise" (incompressible), "text" (compressible) or "mixed".
func zcontent(kind string, n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, uint64(n)))
	b := make([]byte, n)
	switch kind {
	case "noise":
		for i := range b {
			b[i] = byte(r.Uint32())
		}
	case "text":
		words := []string{"erofs ", "block ", "inode ", "cluster ", "data\n", "0123 ", "return err\n"}
		for i := 0; i < n; {
			i += copy(b[i:], words[r.IntN(len(words))])
		}
	case "mixed":
		for i := 0; i < n; {
			k := min(n-i, 1+r.IntN(20000))
			switch r.IntN(3) {
			case 0:
				copy(b[i:i+k], zcontent("text", k, seed+uint64(i)))
			case 1:
				copy(b[i:i+k], zcontent("noise", k, seed+uint64(i)))
			}
			i += k
		}
	}
	return b
}

// TestCompressedRoundTrip writes files of sizes around block and cluster
// boundaries with every algorithm and layout option and reads them back.
func TestCompressedRoundTrip(t *testing.T) {
	sizes := []int{1, 100, 4095, 4096, 4097, 8192, 12289, 65535, 65536, 65537, 200_000, 1<<20 + 3, 5<<20 + 17}
	kinds := []string{"zero", "noise", "text", "mixed"}
	for _, alg := range []string{"lz4", "lz4hc", "lzma", "deflate", "zstd"} {
		for _, cfg := range []struct {
			bs, pcl     int
			ztail, full bool
		}{
			{4096, 0, false, false},
			{4096, 0, true, false},
			{4096, 65536, true, false},
			{4096, 65536, false, true},
			{512, 16384, true, false},
			{1024, 1024, true, true},
		} {
			name := fmt.Sprintf("%s/bs%d/C%d/ztail=%v/full=%v", alg, cfg.bs, cfg.pcl, cfg.ztail, cfg.full)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				if testing.Short() && alg == "lzma" && cfg.bs != 4096 {
					t.Skip("-short")
				}
				c, err := erofs.DefaultCompression(alg)
				if err != nil {
					t.Fatal(err)
				}
				c.PclusterSize, c.Ztailpacking, c.FullIndexes = cfg.pcl, cfg.ztail, cfg.full
				img := &memImage{}
				w, err := erofs.NewWriter(img, &erofs.WriterOptions{BlockSize: cfg.bs, Compression: c})
				if err != nil {
					t.Fatal(err)
				}
				want := map[string][]byte{}
				for i, size := range sizes {
					for _, kind := range kinds {
						// One file crosses a segment boundary; with the slow
						// algorithms only the compressible kind.
						if size > 4<<20 && (kind == "noise" || kind == "text" || alg == "lzma" || alg == "lz4hc") && kind != "mixed" {
							continue
						}
						name := fmt.Sprintf("%s-%d", kind, size)
						data := zcontent(kind, size, uint64(i))
						want[name] = data
						if err := w.Add(&erofs.Entry{Path: name, Mode: erofs.ModeRegular | 0o644, Size: int64(size)}, bytes.NewReader(data)); err != nil {
							t.Fatal(err)
						}
					}
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				f, err := erofs.Open(bytes.NewReader(img.b))
				if err != nil {
					t.Fatal(err)
				}
				if f.Superblock().FeatureIncompat&erofs.FeatureIncompatZeroPadding == 0 {
					t.Error("no compressed inode in the image")
				}
				for name, data := range want {
					got, err := fs.ReadFile(f, name)
					if err != nil {
						t.Errorf("%s: %v", name, err)
						continue
					}
					if !bytes.Equal(got, data) {
						t.Errorf("%s: content differs", name)
					}
				}
			})
		}
	}
}

// TestCompressedFeatureBits checks that an image whose files all stay
// uncompressed carries no compression feature bit.
func TestCompressedFeatureBits(t *testing.T) {
	c, _ := erofs.DefaultCompression("lz4")
	img := &memImage{}
	w, err := erofs.NewWriter(img, &erofs.WriterOptions{Compression: c})
	if err != nil {
		t.Fatal(err)
	}
	for i, size := range []int{1, 100, 4096, 8000} {
		data := zcontent("noise", size, uint64(i))
		if err := w.Add(&erofs.Entry{Path: fmt.Sprint(i), Mode: erofs.ModeRegular | 0o644, Size: int64(size)}, bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := erofs.Open(bytes.NewReader(img.b))
	if err != nil {
		t.Fatal(err)
	}
	sb := f.Superblock()
	if sb.FeatureIncompat != 0 {
		t.Errorf("incompat features %#x, want none", sb.FeatureIncompat)
	}
}

func TestParseCompression(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
		bad  bool
	}{
		{in: "lz4", want: "lz4"},
		{in: "lz4hc", want: "lz4hc,level=9"},
		{in: "lz4hc,level=12", want: "lz4hc,level=12"},
		{in: "lzma,9", want: "lzma,level=9"},
		{in: "zstd", want: "zstd,level=3"},
		{in: "deflate", want: "deflate,level=1"},
		{in: "lz4hc,level=13", bad: true},
		{in: "zstd,level=x", bad: true},
		{in: "zstd,dictsize=4", bad: true},
		{in: "brotli", bad: true},
	} {
		got, err := erofs.ParseCompression(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("%q: accepted", c.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
		} else if got.String() != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
	c, _ := erofs.DefaultCompression("zstd")
	for _, p := range []int{100, 4096 + 512, 2 << 20} {
		c.PclusterSize = p
		if _, err := erofs.NewWriter(&memImage{}, &erofs.WriterOptions{Compression: c}); err == nil {
			t.Errorf("physical cluster size %d accepted", p)
		}
	}
}

// failAt is an io.WriterAt that fails every write at or past offset at.
type failAt struct {
	memImage
	at int64
}

var errDiskFull = errors.New("disk full")

func (f *failAt) WriteAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.at {
		return 0, errDiskFull
	}
	return f.memImage.WriteAt(p, off)
}

// writeCompressed writes a few files of every kind, compressed with lz4
// on the given number of workers, to dst, and returns the first error.
func writeCompressed(dst io.WriterAt, workers int) error {
	c, err := erofs.DefaultCompression("lz4")
	if err != nil {
		return err
	}
	c.Workers, c.Ztailpacking = workers, true
	w, err := erofs.NewWriter(dst, &erofs.WriterOptions{Compression: c})
	if err != nil {
		return err
	}
	for i, size := range []int{0, 100, 5000, 70000, 5<<20 + 3} {
		for _, kind := range []string{"zero", "noise", "text", "mixed"} {
			data := zcontent(kind, size, uint64(i))
			e := &erofs.Entry{Path: fmt.Sprintf("d/%s-%d", kind, size), Mode: erofs.ModeRegular | 0o644, Size: int64(size)}
			if err := w.Add(e, bytes.NewReader(data)); err != nil {
				w.Close()
				return err
			}
		}
	}
	return w.Close()
}

// TestCompressedPipeline checks that the image does not depend on the
// number of workers, and that an output error reaches Add or Close.
func TestCompressedPipeline(t *testing.T) {
	var one, four memImage
	if err := writeCompressed(&one, 1); err != nil {
		t.Fatal(err)
	}
	if err := writeCompressed(&four, 4); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(one.b, four.b) {
		t.Error("the image differs between 1 and 4 workers")
	}
	if err := writeCompressed(&failAt{at: 1 << 20}, 3); !errors.Is(err, errDiskFull) {
		t.Errorf("writing past a full disk: %v, want %v", err, errDiskFull)
	}
}
