package containerd

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/converter"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rafs-dev/rafs/convert/image"
)

// labelUncompressed is the content label (and annotation) in which
// containerd keeps a layer's diff ID (pkg/labels.LabelUncompressed).
const labelUncompressed = image.AnnotationUncompressed

// EROFSLayerConvertFunc returns a converter.ConvertFunc that converts a
// tar layer (plain, gzip or zstd) in the content store into an EROFS
// layer, a drop-in for containerd's
// core/images/converter/erofs.LayerConvertFunc: it skips what is not a
// layer, what is an EROFS layer already and non-distributable layers
// (returning nil), stores the EROFS image in the content store labelled
// with its diff ID (containerd.io/uncompressed, its own digest) and
// returns desc with the EROFS media type, digest and size.
//
// opts are the rafs conversion options (image.ConvertLayer; Type is
// taken to be image.TypeEROFS); nil means rafs's defaults. containerd's
// converter runs mkfs.erofs with -Enoinline_data; set
// opts.EROFS.Image.NoInlineData for the same layout. The image's UUID is
// derived from the layer's diff ID as containerd derives it. containerd's
// WithBlobCompression("zstd") has no counterpart: the layer is stored as
// the EROFS image it is, which the kernel mounts as it is.
func EROFSLayerConvertFunc(opts *image.Options) converter.ConvertFunc {
	o := typed(opts, image.TypeEROFS)
	return func(ctx context.Context, cs content.Store, desc ocispec.Descriptor) (*ocispec.Descriptor, error) {
		if !images.IsLayerType(desc.MediaType) || image.IsEROFSLayer(desc) || images.IsNonDistributable(desc.MediaType) {
			return nil, nil
		}
		out, err := convertLayer(ctx, cs, desc, "convert-erofs-from-", o)
		if err != nil {
			return nil, err
		}
		newDesc := desc
		newDesc.MediaType = out.MediaType
		newDesc.Digest = out.Digest
		newDesc.Size = out.Size
		return &newDesc, nil
	}
}

// typed returns a copy of opts with the given type.
func typed(opts *image.Options, t image.Type) *image.Options {
	var o image.Options
	if opts != nil {
		o = *opts
	}
	o.Type = t
	return &o
}

// convertLayer converts the layer desc of cs with image.ConvertLayer into
// a content writer under ref prefix+digest and commits it, labelled with
// its diff ID.
func convertLayer(ctx context.Context, cs content.Store, desc ocispec.Descriptor, prefix string, opts *image.Options) (ocispec.Descriptor, error) {
	ra, err := cs.ReaderAt(ctx, desc)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("rafs: reading layer %s: %w", desc.Digest, err)
	}
	defer ra.Close()
	w, err := content.OpenWriter(ctx, cs, content.WithRef(prefix+desc.Digest.String()))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("rafs: content writer for layer %s: %w", desc.Digest, err)
	}
	defer w.Close()
	// A writer left by an interrupted conversion resumes: start again.
	if err := w.Truncate(0); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("rafs: content writer for layer %s: %w", desc.Digest, err)
	}
	// Only the digest and size of desc are checked: the diff ID
	// annotation containerd's descriptors may carry is left out, since
	// ConvertLayer computes the diff ID itself.
	in := ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	out, err := image.ConvertLayer(ctx, in, content.NewReader(ra), w, opts)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	labels := map[string]string{labelUncompressed: out.Digest.String()}
	if err := w.Commit(ctx, out.Size, out.Digest, content.WithLabels(labels)); err != nil && !errdefs.IsAlreadyExists(err) {
		return ocispec.Descriptor{}, fmt.Errorf("rafs: storing the conversion of layer %s: %w", desc.Digest, err)
	}
	if err != nil {
		// The same layer was stored before: make sure it has the label.
		if _, err := cs.Update(ctx, content.Info{Digest: out.Digest, Labels: labels}, "labels."+labelUncompressed); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("rafs: labelling layer %s: %w", out.Digest, err)
		}
	}
	return out, nil
}

// EROFSUpdateManifest returns a converter.UpdateManifestFunc (for
// converter.WithUpdateManifest) that rewrites a manifest whose layers
// EROFSLayerConvertFunc converted into the manifest and config rafs
// convert writes for the image (image.ConvertedManifest): "erofs" added
// to the config's os.features, as containerd's
// core/images/converter/erofs.UpdateManifestPlatform adds it, and the
// returned descriptor's platform, the source's with os.features erofs.
// The result has the digest `rafs convert --type erofs` gives the image
// with the same options. A manifest with a layer that is not EROFS is an
// error.
func EROFSUpdateManifest(opts *image.Options) converter.UpdateManifestFunc {
	o := typed(opts, image.TypeEROFS)
	return func(ctx context.Context, cs content.Store, original, converted ocispec.Descriptor) (*ocispec.Descriptor, error) {
		if !images.IsManifestType(converted.MediaType) {
			return nil, nil
		}
		var m ocispec.Manifest
		if _, err := converter.ReadJSON(ctx, cs, &m, converted); err != nil {
			return nil, fmt.Errorf("rafs: converted manifest: %w", err)
		}
		var layers []v1.Descriptor
		var diffIDs []v1.Hash
		for i, l := range m.Layers {
			if !image.IsEROFSLayer(l) {
				return nil, fmt.Errorf("rafs: layer %d (%s) of the converted manifest has media type %s, not EROFS", i, l.Digest, l.MediaType)
			}
			d := hashOf(l.Digest)
			layers = append(layers, v1.Descriptor{MediaType: v1MediaType(l.MediaType), Size: l.Size, Digest: d})
			diffIDs = append(diffIDs, d)
		}
		srcCfg, platform, err := sourceConfig(ctx, cs, original)
		if err != nil {
			return nil, err
		}
		desc, err := writeManifest(ctx, cs, o, original, srcCfg, layers, diffIDs)
		if err != nil {
			return nil, err
		}
		p := platforms.Normalize(platform)
		if !slices.Contains(p.OSFeatures, image.OSFeatureEROFS) {
			p.OSFeatures = append(p.OSFeatures, image.OSFeatureEROFS)
			p = platforms.Normalize(p)
		}
		desc.Platform = &p
		return desc, nil
	}
}

// sourceConfig returns the raw config of the source manifest desc and
// its platform (desc's, else the config's).
func sourceConfig(ctx context.Context, cs content.Store, desc ocispec.Descriptor) ([]byte, ocispec.Platform, error) {
	var m ocispec.Manifest
	if _, err := converter.ReadJSON(ctx, cs, &m, desc); err != nil {
		return nil, ocispec.Platform{}, fmt.Errorf("rafs: source manifest %s: %w", desc.Digest, err)
	}
	raw, err := content.ReadBlob(ctx, cs, m.Config)
	if err != nil {
		return nil, ocispec.Platform{}, fmt.Errorf("rafs: source config %s: %w", m.Config.Digest, err)
	}
	if desc.Platform != nil {
		return raw, *desc.Platform, nil
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, ocispec.Platform{}, fmt.Errorf("rafs: source config %s: %w", m.Config.Digest, err)
	}
	return raw, cfg.Platform, nil
}

// writeManifest stores the config and the manifest of the converted
// image (image.ConvertedManifest), the manifest labelled for containerd's
// garbage collector with its config and layers, and returns the
// manifest's descriptor.
func writeManifest(ctx context.Context, cs content.Store, opts *image.Options, source ocispec.Descriptor, srcCfg []byte, layers []v1.Descriptor, diffIDs []v1.Hash) (*ocispec.Descriptor, error) {
	src := v1.Descriptor{MediaType: v1MediaType(source.MediaType), Size: source.Size, Digest: hashOf(source.Digest)}
	man, cfg, err := image.ConvertedManifest(opts, src, srcCfg, layers, diffIDs)
	if err != nil {
		return nil, err
	}
	cfgDesc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))}
	if err := content.WriteBlob(ctx, cs, "rafs-config-"+cfgDesc.Digest.String(), bytesReader(cfg), cfgDesc); err != nil {
		return nil, fmt.Errorf("rafs: storing the config: %w", err)
	}
	labels := map[string]string{"containerd.io/gc.ref.content.config": cfgDesc.Digest.String()}
	for i, l := range layers {
		labels[fmt.Sprintf("containerd.io/gc.ref.content.l.%d", i)] = l.Digest.String()
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromBytes(man), Size: int64(len(man))}
	if err := content.WriteBlob(ctx, cs, "rafs-manifest-"+desc.Digest.String(), bytesReader(man), desc, content.WithLabels(labels)); err != nil {
		return nil, fmt.Errorf("rafs: storing the manifest: %w", err)
	}
	return &desc, nil
}
