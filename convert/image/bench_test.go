//go:build linux

package image_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/convert/internal/registrytest"
	"github.com/rafs-dev/rafs/rafs"
)

// The speed target of whole-image conversion: converting the three-layer
// Debian image from a registry to a registry (BenchmarkImageRegistry)
// takes at most 1.2 times as long as converting its layers from local
// files to local files (BenchmarkImageLocal). Both run on a real registry
// (distribution) on this machine:
//
//	go test -run XXX -bench 'Image(Registry|Local)' -benchtime 5x ./convert/image/

// benchStack returns the three layers of the Debian test image.
func benchStack(b *testing.B) [][]byte {
	b.Helper()
	p := os.Getenv("RAFS_BENCH_LAYER")
	if p == "" {
		// Where testdata/debian-layer.sh puts it.
		cache, _ := os.UserCacheDir()
		p = filepath.Join(cache, "rafs-bench", "debian-minbase.tar.gz")
	}
	base, err := os.ReadFile(p)
	if err != nil {
		b.Skipf("no Debian layer: %v", err)
	}
	return debianStack(b, base)
}

// BenchmarkImageRegistry converts the three-layer image from one
// repository of a local registry to another, pushing layers as they are
// converted.
func BenchmarkImageRegistry(b *testing.B) {
	layers := benchStack(b)
	reg := registrytest.Start(b)
	img := imageOf(b, "amd64", layers...)
	pushSource(b, reg.Ref("src/three:v1"), img.img, nil)
	for _, typ := range []image.Type{image.TypeNydus, image.TypeEROFS} {
		b.Run(string(typ), func(b *testing.B) {
			var in, out int64
			for i := range b.N {
				dst := reg.Ref(fmt.Sprintf("dst/%s%d:v1", typ, i))
				_, st := convertRemote(b, reg.Ref("src/three:v1"), dst, image.Options{Type: typ})
				in, out = st.BytesIn, st.BytesOut
			}
			b.ReportMetric(float64(in)/1e6, "MB-in")
			b.ReportMetric(float64(out)/1e6, "MB-out")
		})
	}
}

// BenchmarkImageLocal converts the same three layers from local files to
// local files, one after another, as `rafs build` would (and, for Nydus,
// merges their bootstraps as `rafs merge` would).
func BenchmarkImageLocal(b *testing.B) {
	layers := benchStack(b)
	dir := b.TempDir()
	var paths []string
	for i, l := range layers {
		paths = append(paths, writeFile(b, dir, fmt.Sprintf("layer%d", i), l))
	}
	b.Run("nydus", func(b *testing.B) {
		for range b.N {
			var boots []*rafs.Bootstrap
			for i, p := range paths {
				src, err := os.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				out, err := os.Create(filepath.Join(dir, fmt.Sprintf("blob%d", i)))
				if err != nil {
					b.Fatal(err)
				}
				res, err := convert.TarToNydus(src, out, nil)
				if err != nil {
					b.Fatal(err)
				}
				src.Close()
				out.Close()
				boots = append(boots, res.Bootstrap)
			}
			merged, err := convert.MergeNydus(boots, nil)
			if err != nil {
				b.Fatal(err)
			}
			var buf bytes.Buffer
			if _, err := merged.WriteTo(&buf); err != nil {
				b.Fatal(err)
			}
			writeFile(b, dir, "boot", buf.Bytes())
		}
	})
	b.Run("erofs", func(b *testing.B) {
		for range b.N {
			for i, p := range paths {
				src, err := os.Open(p)
				if err != nil {
					b.Fatal(err)
				}
				out, err := os.Create(filepath.Join(dir, fmt.Sprintf("erofs%d", i)))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := convert.TarToEROFS(src, out, nil); err != nil {
					b.Fatal(err)
				}
				src.Close()
				out.Close()
			}
		}
	})
}
