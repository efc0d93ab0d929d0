// Package imagetest builds source images for end-to-end tests of the image
// converters and of rafs serve, writes them to OCI layouts, and checks
// converted images by mounting them with the kernel (on Linux, as root)
// and comparing the tree with the source layers applied in order.
package imagetest

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Image builds an OCI image of the given layer blobs (tars, gzipped or
// not, lowest first) for linux/arch. Its config and history are fixed, so
// the same layers give the same image digest. A gzipped layer is stored
// as it is, media type tar+gzip. An uncompressed one gets the media type
// tar, but go-containerregistry's tarball.LayerFromOpener stores it
// gzipped all the same: the converters find the compression from the
// bytes.
func Image(t testing.TB, arch string, layers ...[]byte) v1.Image {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Created = v1.Time{Time: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	cfg.Config.Env = []string{"PATH=/usr/bin:/bin"}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	for i, data := range layers {
		mt := types.OCIUncompressedLayer
		if bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			mt = types.OCILayer
		}
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}, tarball.WithMediaType(mt))
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.Append(img, mutate.Addendum{Layer: l, History: v1.History{CreatedBy: "layer " + string(rune('0'+i))}}); err != nil {
			t.Fatal(err)
		}
	}
	return img
}

// WriteLayout writes img into the OCI image layout dir (created if
// missing) under the reference name tag, as skopeo's oci:DIR:TAG
// transport names it.
func WriteLayout(t testing.TB, dir, tag string, img v1.Image) {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag})); err != nil {
		t.Fatal(err)
	}
}

// Layout is an OCI image layout directory, e.g. one skopeo copied a
// converted image into.
type Layout string

// BlobPath returns the path of the blob with digest d.
func (l Layout) BlobPath(d v1.Hash) string {
	return filepath.Join(string(l), "blobs", d.Algorithm, d.Hex)
}

// Read returns the blob with digest d.
func (l Layout) Read(t testing.TB, d v1.Hash) []byte {
	t.Helper()
	b, err := os.ReadFile(l.BlobPath(d))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Manifest returns the image manifest with digest d.
func (l Layout) Manifest(t testing.TB, d v1.Hash) *v1.Manifest {
	t.Helper()
	m, err := v1.ParseManifest(bytes.NewReader(l.Read(t, d)))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
