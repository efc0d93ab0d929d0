package imagetest

import (
	"bytes"
	"path/filepath"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rafs-dev/rafs/convert/internal/tartest"
)

// TestImageAndLayout checks that Image is deterministic, gives each layer
// its media type and stores a gzipped one as it is, and that WriteLayout names images as skopeo's
// oci: transport looks them up.
func TestImageAndLayout(t *testing.T) {
	layers := tartest.Stack()
	layers[1] = tartest.Gzip(layers[1])
	a, b := Image(t, "arm64", layers...), Image(t, "arm64", layers...)
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("the same layers gave images %s and %s", da, db)
	}
	m, err := a.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	want := []types.MediaType{types.OCIUncompressedLayer, types.OCILayer, types.OCIUncompressedLayer}
	for i, l := range m.Layers {
		if l.MediaType != want[i] {
			t.Errorf("layer %d: %s, want %s", i, l.MediaType, want[i])
		}
	}
	if m.Layers[1].Size != int64(len(layers[1])) || m.Layers[1].Digest != sha(layers[1]) {
		t.Errorf("gzipped layer stored as %+v, want its %d bytes unchanged", m.Layers[1], len(layers[1]))
	}
	cfg, err := a.ConfigFile()
	if err != nil || cfg.Architecture != "arm64" || cfg.OS != "linux" || len(cfg.RootFS.DiffIDs) != 3 {
		t.Errorf("config %+v, %v", cfg, err)
	}

	dir := filepath.Join(t.TempDir(), "layout")
	WriteLayout(t, dir, "one", a)
	other := Image(t, "amd64", layers[0])
	WriteLayout(t, dir, "two", other)
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	dOther, _ := other.Digest()
	got := map[string]v1.Hash{}
	for _, d := range im.Manifests {
		got[d.Annotations["org.opencontainers.image.ref.name"]] = d.Digest
	}
	if len(got) != 2 || got["one"] != da || got["two"] != dOther {
		t.Errorf("layout names %v, want one=%s two=%s", got, da, dOther)
	}
	if l := Layout(dir); !bytes.Equal(l.Read(t, m.Layers[1].Digest), layers[1]) {
		t.Errorf("Layout.Read does not read the gzipped layer back")
	}
	if l := Layout(dir); l.Manifest(t, da).Config.Digest != m.Config.Digest {
		t.Errorf("Layout.Manifest does not read the image's manifest")
	}
}

func sha(b []byte) v1.Hash {
	h, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		panic(err)
	}
	return h
}
