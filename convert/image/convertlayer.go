package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rafs-dev/rafs/convert"
)

// AnnotationUncompressed is the annotation (and content label) with
// which containerd records a layer's diff ID. Converted layers are stored
// uncompressed, so it is their own digest.
const AnnotationUncompressed = "containerd.io/uncompressed"

// ConvertLayer converts one layer blob — r reads it: a tar, plain, gzip-
// or zstd-compressed; desc describes it — into w and returns the
// descriptor of the converted blob. It is the per-layer step of
// containerd's image converter: a converter.ConvertFunc that reads the
// layer from the content store, calls ConvertLayer with a content writer,
// and commits it with the returned digest and size and a
// "containerd.io/uncompressed" label taken from the returned annotations
// can be passed to containerd's converter.DefaultIndexConvertFunc.
//
// Of opts, Type, Nydus, ChunkDict, EROFS, EROFSMediaType, EROFSTarIndex
// and TempDir apply. A Nydus blob streams to w as it is made; an EROFS image is built
// in a temporary file in TempDir and then copied to w. The EROFS UUID is
// derived from desc's "containerd.io/uncompressed" annotation (the diff
// ID) when it has one, else from desc's digest.
func ConvertLayer(ctx context.Context, desc ocispec.Descriptor, r io.Reader, w io.Writer, opts *Options) (ocispec.Descriptor, error) {
	c, err := NewConverter(opts)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if err := ctx.Err(); err != nil {
		return ocispec.Descriptor{}, err
	}
	o := c.opts
	out := ocispec.Descriptor{Annotations: map[string]string{}}
	switch o.Type {
	case TypeNydus:
		res, err := convert.TarToNydus(r, w, &o.Nydus)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("convert: layer %s: %w", desc.Digest, err)
		}
		out.Digest = digest.NewDigestFromEncoded(digest.SHA256, res.Blob.ID)
		out.Size = res.Blob.Size
		out.MediaType = string(MediaTypeNydusBlob)
		out.Annotations[AnnotationNydusBlob] = "true"
	default:
		f, err := os.CreateTemp(o.TempDir, "rafs-layer-*")
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("convert: temp file for a layer: %w", err)
		}
		defer os.Remove(f.Name())
		defer f.Close()
		id := desc.Digest
		if u := desc.Annotations[AnnotationUncompressed]; u != "" {
			id = digest.Digest(u)
		}
		hash, err := v1.NewHash(id.String())
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("convert: layer digest %q: %w", id, err)
		}
		eo := o.EROFS
		u := layerUUID(hash)
		eo.Image.UUID = &u
		res, err := erofsLayer(r, f, &eo, o.EROFSTarIndex)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("convert: layer %s: %w", desc.Digest, err)
		}
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(w, h), io.NewSectionReader(f, 0, res.ImageSize)); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("convert: layer %s: writing: %w", desc.Digest, err)
		}
		out.Digest = digest.NewDigestFromEncoded(digest.SHA256, hex.EncodeToString(h.Sum(nil)))
		out.Size = res.ImageSize
		out.MediaType = string(o.EROFSMediaType)
	}
	out.Annotations[AnnotationUncompressed] = out.Digest.String()
	return out, nil
}
