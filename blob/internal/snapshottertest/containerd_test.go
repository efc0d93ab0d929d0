package snapshottertest

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"maps"
	"sync"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/converter"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/containerd/platforms"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/erofs"
)

// layerConvertFunc is the glue a containerd user writes to convert layers
// with rafs: a converter.ConvertFunc that reads the layer from the
// content store, converts it with image.ConvertLayer into a content
// writer, and commits it labelled with its diff ID.
func layerConvertFunc(opts *image.Options) converter.ConvertFunc {
	return func(ctx context.Context, cs content.Store, desc ocispec.Descriptor) (*ocispec.Descriptor, error) {
		if !images.IsLayerType(desc.MediaType) {
			return nil, nil
		}
		ra, err := cs.ReaderAt(ctx, desc)
		if err != nil {
			return nil, err
		}
		defer ra.Close()
		w, err := content.OpenWriter(ctx, cs, content.WithRef("rafs-convert-"+desc.Digest.String()))
		if err != nil {
			return nil, err
		}
		defer w.Close()
		out, err := image.ConvertLayer(ctx, desc, content.NewReader(ra), w, opts)
		if err != nil {
			return nil, err
		}
		labels := map[string]string{image.AnnotationUncompressed: out.Annotations[image.AnnotationUncompressed]}
		if err := w.Commit(ctx, out.Size, out.Digest, content.WithLabels(labels)); err != nil {
			return nil, err
		}
		return &out, nil
	}
}

// labelStore keeps content labels in memory, as containerd's metadata
// store does for the real content store.
type labelStore struct {
	mu sync.Mutex
	m  map[digest.Digest]map[string]string
}

func (s *labelStore) Get(d digest.Digest) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m[d]), nil
}

func (s *labelStore) Set(d digest.Digest, l map[string]string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[d] = maps.Clone(l)
	return nil
}

func (s *labelStore) Update(d digest.Digest, l map[string]string) (map[string]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.m[d]
	if cur == nil {
		cur = map[string]string{}
	}
	for k, v := range l {
		if v == "" {
			delete(cur, k)
		} else {
			cur[k] = v
		}
	}
	s.m[d] = cur
	return maps.Clone(cur), nil
}

// writeBlob stores b in cs and returns its descriptor.
func writeBlob(t *testing.T, cs content.Store, mt string, b []byte) ocispec.Descriptor {
	t.Helper()
	d := ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := content.WriteBlob(context.Background(), cs, d.Digest.String(), bytes.NewReader(b), d); err != nil {
		t.Fatal(err)
	}
	return d
}

func readJSON(t *testing.T, cs content.Store, d ocispec.Descriptor, v any) {
	t.Helper()
	b, err := content.ReadBlob(context.Background(), cs, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// TestContainerdConverter converts an image in a containerd content store
// with containerd's own image converter (DefaultIndexConvertFunc) calling
// image.ConvertLayer for each layer: the new manifest must list the
// converted layers, its config their diff IDs, and each EROFS layer must
// hold its tar's files.
func TestContainerdConverter(t *testing.T) {
	ctx := context.Background()
	tars := stackTars(t)
	for _, typ := range []image.Type{image.TypeEROFS, image.TypeNydus} {
		t.Run(string(typ), func(t *testing.T) {
			cs, err := local.NewLabeledStore(t.TempDir(), &labelStore{m: map[digest.Digest]map[string]string{}})
			if err != nil {
				t.Fatal(err)
			}
			var layers []ocispec.Descriptor
			var diffIDs []digest.Digest
			for _, tr := range tars {
				layers = append(layers, writeBlob(t, cs, ocispec.MediaTypeImageLayer, tr))
				diffIDs = append(diffIDs, digest.FromBytes(tr))
			}
			cfg, _ := json.Marshal(ocispec.Image{
				Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
				RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: diffIDs},
			})
			cfgDesc := writeBlob(t, cs, ocispec.MediaTypeImageConfig, cfg)
			man, _ := json.Marshal(ocispec.Manifest{
				Versioned: specs.Versioned{SchemaVersion: 2},
				MediaType: ocispec.MediaTypeImageManifest,
				Config:    cfgDesc,
				Layers:    layers,
			})
			manDesc := writeBlob(t, cs, ocispec.MediaTypeImageManifest, man)

			conv := converter.DefaultIndexConvertFunc(layerConvertFunc(&image.Options{Type: typ, TempDir: t.TempDir()}), false, platforms.All)
			newDesc, err := conv(ctx, cs, manDesc)
			if err != nil {
				t.Fatal(err)
			}
			if newDesc == nil || newDesc.Digest == manDesc.Digest {
				t.Fatalf("converter made no new manifest: %v", newDesc)
			}
			var m ocispec.Manifest
			readJSON(t, cs, *newDesc, &m)
			var img ocispec.Image
			readJSON(t, cs, m.Config, &img)
			if len(m.Layers) != len(tars) || len(img.RootFS.DiffIDs) != len(tars) {
				t.Fatalf("%d layers, %d diff IDs, want %d", len(m.Layers), len(img.RootFS.DiffIDs), len(tars))
			}
			for i, l := range m.Layers {
				if img.RootFS.DiffIDs[i] != l.Digest {
					t.Errorf("layer %d: diff ID %s, want the blob's own digest %s", i, img.RootFS.DiffIDs[i], l.Digest)
				}
				ra, err := cs.ReaderAt(ctx, l)
				if err != nil {
					t.Fatal(err)
				}
				switch typ {
				case image.TypeEROFS:
					if l.MediaType != string(image.MediaTypeEROFSLayer) {
						t.Errorf("layer %d media type %s", i, l.MediaType)
					}
					fsys, err := erofs.Open(ra)
					if err != nil {
						t.Fatalf("layer %d: %v", i, err)
					}
					if i == 0 {
						got, err := fs.ReadFile(fsys, "etc/config")
						if err != nil || !bytes.Equal(got, fileContent("text", 5000, 1)) {
							t.Errorf("layer 0: etc/config reads %d bytes, %v", len(got), err)
						}
					}
				case image.TypeNydus:
					if l.MediaType != string(image.MediaTypeNydusBlob) || l.Annotations[image.AnnotationNydusBlob] != "true" {
						t.Errorf("layer %d: %s %v", i, l.MediaType, l.Annotations)
					}
					boot, id, err := convert.ReadNydusLayer(ra, ra.Size())
					if err != nil {
						t.Fatalf("layer %d: %v", i, err)
					}
					if id != l.Digest.Encoded() {
						t.Errorf("layer %d: blob id %s, digest %s", i, id, l.Digest)
					}
					if i == 0 && boot.Lookup("etc/config") == nil {
						t.Errorf("layer 0: no etc/config in its bootstrap")
					}
				}
				ra.Close()
			}
		})
	}
}
