package containerd

import (
	"context"
	"fmt"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/images/converter"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/rafs"
)

// labelNydusTargetDigest is the content label nydus-snapshotter's
// converter reads on a source layer for the digest of its Nydus blob,
// converted before (pkg/converter LayerAnnotationNydusTargetDigest).
const labelNydusTargetDigest = "containerd.io/snapshot/nydus-target-digest"

// NydusLayerConvertFunc returns a converter.ConvertFunc that converts a
// tar layer (plain, gzip or zstd) in the content store into a Nydus blob
// layer (RAFS v6, its bootstrap inlined), a drop-in for
// nydus-snapshotter's pkg/converter.LayerConvertFunc: it fails at once
// when ctx is done, skips what is not a layer and Nydus blob and
// bootstrap layers (returning nil), reuses the blob a source layer's
// containerd.io/snapshot/nydus-target-digest label names when the content
// store has it, and otherwise stores the blob labelled with its diff ID
// (containerd.io/uncompressed, its own digest). The descriptor returned
// has media type image.MediaTypeNydusBlob and the annotations
// containerd.io/uncompressed and image.AnnotationNydusBlob ("true").
//
// opts are the rafs conversion options (image.ConvertLayer; Type is
// taken to be image.TypeNydus); nil means rafs's defaults, which are
// nydus-image's (zstd, blake3, 1 MiB chunks). The image needs
// NydusConvertHookFunc's bootstrap layer.
func NydusLayerConvertFunc(opts *image.Options) converter.ConvertFunc {
	o := typed(opts, image.TypeNydus)
	return func(ctx context.Context, cs content.Store, desc ocispec.Descriptor) (*ocispec.Descriptor, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !images.IsLayerType(desc.MediaType) || image.IsNydusBlob(desc) || image.IsNydusBootstrap(desc) {
			return nil, nil
		}
		info, err := cs.Info(ctx, desc.Digest)
		if err != nil {
			return nil, fmt.Errorf("rafs: layer %s: %w", desc.Digest, err)
		}
		if target := digest.Digest(info.Labels[labelNydusTargetDigest]); target.Validate() == nil {
			if ti, err := cs.Info(ctx, target); err == nil {
				return nydusBlobDesc(target, ti.Size), nil
			}
		}
		out, err := convertLayer(ctx, cs, desc, "convert-nydus-from-", o)
		if err != nil {
			return nil, err
		}
		return nydusBlobDesc(out.Digest, out.Size), nil
	}
}

// nydusBlobDesc is the descriptor of a Nydus blob layer.
func nydusBlobDesc(d digest.Digest, size int64) *ocispec.Descriptor {
	return &ocispec.Descriptor{
		MediaType: string(image.MediaTypeNydusBlob),
		Digest:    d,
		Size:      size,
		Annotations: map[string]string{
			labelUncompressed:         d.String(),
			image.AnnotationNydusBlob: "true",
		},
	}
}

// NydusConvertHookFunc returns a converter.ConvertHookFunc, the post-
// conversion hook of converter.IndexConvertFuncWithHook, a drop-in for
// nydus-snapshotter's pkg/converter.ConvertHookFunc: given nothing
// converted it returns the original descriptor; an index of one manifest
// becomes that manifest; a manifest whose layers NydusLayerConvertFunc
// converted gets the Nydus bootstrap layer — the blobs' bootstraps
// merged (convert.MergeNydus) into image/image.boot of a tar.gz layer
// (image.NydusBootstrapLayer), stored labelled with its diff ID — last,
// and the config its diff ID and a history entry. A manifest whose last
// layer is a bootstrap layer already is left as it is.
//
// The manifest and config are those `rafs convert` writes for the image
// with the same options (image.ConvertedManifest), so the image has the
// same digest. Blobs of a chunk dictionary (opts.ChunkDict) that the
// merged bootstrap uses must be in the content store; they are listed
// before the bootstrap layer. opts nil means rafs's defaults.
func NydusConvertHookFunc(opts *image.Options) converter.ConvertHookFunc {
	o := typed(opts, image.TypeNydus)
	return func(ctx context.Context, cs content.Store, orgDesc ocispec.Descriptor, newDesc *ocispec.Descriptor) (*ocispec.Descriptor, error) {
		if newDesc == nil {
			return &orgDesc, nil
		}
		switch {
		case images.IsIndexType(newDesc.MediaType):
			var idx ocispec.Index
			if _, err := converter.ReadJSON(ctx, cs, &idx, *newDesc); err != nil {
				return nil, fmt.Errorf("rafs: converted index: %w", err)
			}
			if len(idx.Manifests) == 1 {
				return &idx.Manifests[0], nil
			}
			return newDesc, nil
		case images.IsManifestType(newDesc.MediaType):
			return nydusManifest(ctx, cs, o, orgDesc, *newDesc)
		}
		return newDesc, nil
	}
}

// nydusManifest adds the bootstrap layer to the converted manifest
// newDesc of orgDesc.
func nydusManifest(ctx context.Context, cs content.Store, opts *image.Options, orgDesc, newDesc ocispec.Descriptor) (*ocispec.Descriptor, error) {
	var m ocispec.Manifest
	if _, err := converter.ReadJSON(ctx, cs, &m, newDesc); err != nil {
		return nil, fmt.Errorf("rafs: converted manifest: %w", err)
	}
	if n := len(m.Layers); n > 0 && image.IsNydusBootstrap(m.Layers[n-1]) {
		return &newDesc, nil
	}
	var layers []v1.Descriptor
	var diffIDs []v1.Hash
	boots := make([]*rafs.Bootstrap, len(m.Layers))
	have := map[string]bool{}
	for i, l := range m.Layers {
		if !image.IsNydusBlob(l) {
			return nil, fmt.Errorf("rafs: layer %d (%s) of the converted manifest is not a Nydus blob", i, l.Digest)
		}
		boot, err := readBootstrap(ctx, cs, l)
		if err != nil {
			return nil, fmt.Errorf("rafs: Nydus layer %d (%s): %w", i, l.Digest, err)
		}
		boots[i] = boot
		d := hashOf(l.Digest)
		layers = append(layers, v1.Descriptor{MediaType: image.MediaTypeNydusBlob, Size: l.Size, Digest: d,
			Annotations: map[string]string{image.AnnotationNydusBlob: "true"}})
		diffIDs = append(diffIDs, d)
		have[l.Digest.Encoded()] = true
	}
	merged, err := convert.MergeNydus(boots, nil)
	if err != nil {
		return nil, fmt.Errorf("rafs: merging the Nydus layers: %w", err)
	}
	for _, bi := range merged.Blobs {
		if have[bi.ID] {
			continue
		}
		d := digest.NewDigestFromEncoded(digest.SHA256, bi.ID)
		info, err := cs.Info(ctx, d)
		if err != nil {
			return nil, fmt.Errorf("rafs: the merged bootstrap uses blob %s, which is no layer's (a chunk dictionary's blob must be in the content store): %w", bi.ID, err)
		}
		h := hashOf(d)
		layers = append(layers, v1.Descriptor{MediaType: image.MediaTypeNydusBlob, Size: info.Size, Digest: h,
			Annotations: map[string]string{image.AnnotationNydusBlob: "true"}})
		diffIDs = append(diffIDs, h)
		have[bi.ID] = true
	}
	bl, err := image.NydusBootstrapLayer(merged)
	if err != nil {
		return nil, err
	}
	bd, err := partial.Descriptor(bl)
	if err != nil {
		return nil, err
	}
	bdiff, err := bl.DiffID()
	if err != nil {
		return nil, err
	}
	rc, err := bl.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	bootDesc := ocispec.Descriptor{MediaType: string(bd.MediaType), Digest: digest.Digest(bd.Digest.String()), Size: bd.Size}
	if err := content.WriteBlob(ctx, cs, "rafs-nydus-bootstrap-"+bootDesc.Digest.String(), rc, bootDesc,
		content.WithLabels(map[string]string{labelUncompressed: bdiff.String()})); err != nil {
		return nil, fmt.Errorf("rafs: storing the bootstrap layer: %w", err)
	}
	layers = append(layers, *bd)
	diffIDs = append(diffIDs, bdiff)
	srcCfg, _, err := sourceConfig(ctx, cs, orgDesc)
	if err != nil {
		return nil, err
	}
	desc, err := writeManifest(ctx, cs, opts, orgDesc, srcCfg, layers, diffIDs)
	if err != nil {
		return nil, err
	}
	desc.Platform = newDesc.Platform
	return desc, nil
}

// readBootstrap returns the bootstrap inlined in the Nydus blob l of cs,
// with its blob id.
func readBootstrap(ctx context.Context, cs content.Store, l ocispec.Descriptor) (*rafs.Bootstrap, error) {
	ra, err := cs.ReaderAt(ctx, l)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	boot, id, err := convert.ReadNydusLayer(ra, ra.Size())
	if err != nil {
		return nil, err
	}
	if id != l.Digest.Encoded() {
		return nil, fmt.Errorf("blob id %s is not the layer's digest", id)
	}
	return boot, nil
}
