package containerd_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/converter"
	"github.com/containerd/platforms"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/containerd"
	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/erofs"
)

// convertCase is one conversion, through containerd's converter and
// through `rafs convert`.
type convertCase struct {
	name string
	opts image.Options
	args []string // rafs convert's flags for the same options
}

func convertCases() []convertCase {
	return []convertCase{
		{"erofs", image.Options{Type: image.TypeEROFS}, []string{"--type", "erofs"}},
		{"erofs-noinline", image.Options{Type: image.TypeEROFS, EROFS: convert.EROFSOptions{Image: erofs.WriterOptions{NoInlineData: true}}},
			[]string{"--type", "erofs", "-E", "noinline_data"}},
		{"erofs-tar-index", image.Options{Type: image.TypeEROFS, EROFSTarIndex: true}, []string{"--type", "erofs", "--tar-index"}},
		{"erofs-lz4", image.Options{Type: image.TypeEROFS, EROFS: convert.EROFSOptions{Image: erofs.WriterOptions{Compression: &erofs.Compression{Algorithm: "lz4"}}}},
			[]string{"--type", "erofs", "-z", "lz4"}},
		{"nydus", image.Options{Type: image.TypeNydus}, []string{"--type", "nydus"}},
		{"nydus-lz4", image.Options{Type: image.TypeNydus, Nydus: convert.NydusOptions{Compressor: "lz4_block"}}, []string{"--type", "nydus", "--compressor", "lz4_block"}},
		{"erofs-referrer", image.Options{Type: image.TypeEROFS, Link: image.LinkReferrer}, []string{"--type", "erofs", "--referrer"}},
		{"nydus-referrer", image.Options{Type: image.TypeNydus, Link: image.LinkReferrer}, []string{"--type", "nydus", "--referrer"}},
	}
}

// containerdConvert converts the image "src" of c into "dst" with
// containerd's converter.Convert and the adapters, and returns the new
// target.
func containerdConvert(t *testing.T, tc convertCase) (context.Context, *client, ocispec.Descriptor) {
	t.Helper()
	ctx, c := newClient(t)
	importLayout(t, ctx, c, sampleImage)
	opts := tc.opts
	opts.TempDir = t.TempDir()
	var copts []converter.Opt
	if opts.Type == image.TypeNydus {
		copts = append(copts, converter.WithIndexConvertFunc(converter.IndexConvertFuncWithHook(
			containerd.NydusLayerConvertFunc(&opts), false, platforms.All,
			converter.ConvertHooks{PostConvertHook: containerd.NydusConvertHookFunc(&opts)})))
	} else {
		copts = append(copts,
			converter.WithLayerConvertFunc(containerd.EROFSLayerConvertFunc(&opts)),
			converter.WithUpdateManifest(containerd.EROFSUpdateManifest(&opts)))
	}
	img, err := converter.Convert(ctx, c, "dst", "src", copts...)
	if err != nil {
		t.Fatal(err)
	}
	return ctx, c, img.Target
}

// TestConvertMatchesRafsConvert converts the sample image with
// containerd's converter.Convert and the adapters, against a content
// store, and with `rafs convert` into an OCI layout, with the same
// options: the manifests must have one digest, and every blob the
// manifest lists (config, layers, the Nydus bootstrap layer) must be the
// same bytes in both.
func TestConvertMatchesRafsConvert(t *testing.T) {
	for _, tc := range convertCases() {
		t.Run(tc.name, func(t *testing.T) {
			ctx2, c, target := containerdConvert(t, tc)
			out, want := rafsConvert(t, tc.args...)
			if target.Digest != want {
				t.Errorf("containerd's converter gives manifest %s, rafs convert %s", target.Digest, want)
			}
			man, err := content.ReadBlob(ctx2, c.cs, target)
			if err != nil {
				t.Fatal(err)
			}
			rafsMan, err := os.ReadFile(filepath.Join(out, "blobs", "sha256", want.Encoded()))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(man, rafsMan) {
				t.Fatalf("manifests differ:\ncontainerd: %s\nrafs:       %s", man, rafsMan)
			}
			var m ocispec.Manifest
			readJSONFile(t, filepath.Join(out, "blobs", "sha256", want.Encoded()), &m)
			descs := append([]ocispec.Descriptor{m.Config}, m.Layers...)
			for i, d := range descs {
				got, err := content.ReadBlob(ctx2, c.cs, d)
				if err != nil {
					t.Fatalf("blob %d %s: %v", i, d.Digest, err)
				}
				w, err := os.ReadFile(filepath.Join(out, "blobs", "sha256", d.Digest.Encoded()))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, w) {
					t.Errorf("blob %d %s differs", i, d.Digest)
				}
				kind := "layer"
				switch {
				case i == 0:
					kind = "config"
				case image.IsNydusBootstrap(d):
					kind = "bootstrap"
				}
				t.Logf("%-16s %-9s %s %8d bytes: containerd = rafs convert", tc.name, kind, d.Digest, d.Size)
				if kind != "layer" {
					continue
				}
				if (tc.opts.Type == image.TypeEROFS) != image.IsEROFSLayer(d) || (tc.opts.Type == image.TypeNydus) != image.IsNydusBlob(d) {
					t.Errorf("layer %s: media type %s, annotations %v", d.Digest, d.MediaType, d.Annotations)
				}
				info, err := c.cs.Info(ctx2, d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				if info.Labels["containerd.io/uncompressed"] != d.Digest.String() {
					t.Errorf("layer %s: labels %v", d.Digest, info.Labels)
				}
			}
			t.Logf("%-16s manifest  %s: containerd = rafs convert", tc.name, want)
			// containerd reads the converted image's diff IDs back as the
			// layers' digests (and the bootstrap's tar digest).
			var cfg ocispec.Image
			readJSONFile(t, filepath.Join(out, "blobs", "sha256", m.Config.Digest.Encoded()), &cfg)
			for i, l := range m.Layers {
				did, err := images.GetDiffID(ctx2, c.cs, l)
				if err != nil || did != cfg.RootFS.DiffIDs[i] {
					t.Errorf("layer %d: containerd's diff ID %s (%v), config %s", i, did, err, cfg.RootFS.DiffIDs[i])
				}
			}
		})
	}
}
