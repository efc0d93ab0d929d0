//go:build linux

package containerd_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rafs-dev/rafs/convert/image"
)

// TestAdapterEROFSLayersMount converts the sample image with containerd's
// converter and EROFSLayerConvertFunc in every EROFS form of
// convertCases (plain, noinline, tar index with the tar appended, lz4):
// the kernel mounts each layer alone, and it holds its source tar's tree.
func TestAdapterEROFSLayersMount(t *testing.T) {
	requireMount(t)
	_, blobs := sourceLayers(t)
	for _, tc := range convertCases() {
		if tc.opts.Type != image.TypeEROFS {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			ctx, c, target := containerdConvert(t, tc)
			var m ocispec.Manifest
			readBlobJSON(t, ctx, c, target, &m)
			if len(m.Layers) != len(blobs) {
				t.Fatalf("%d layers, want %d", len(m.Layers), len(blobs))
			}
			for i, l := range m.Layers {
				b, err := content.ReadBlob(ctx, c.cs, l)
				if err != nil {
					t.Fatal(err)
				}
				f := filepath.Join(t.TempDir(), "layer.erofs")
				if err := os.WriteFile(f, b, 0o644); err != nil {
					t.Fatal(err)
				}
				n := checkTree(t, mountEROFS(t, f), blobs[i])
				t.Logf("%s: layer %d (%s) mounts and holds the tar's %d entries", tc.name, i, l.Digest, n)
			}
		})
	}
}
