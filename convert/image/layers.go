package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/rafs"
)

// IsNydusBlob reports whether desc is a Nydus blob layer: it carries the
// AnnotationNydusBlob annotation, whatever its value, which is how
// nydus-snapshotter's converter.IsNydusBlob tells one.
func IsNydusBlob(desc ocispec.Descriptor) bool {
	_, ok := desc.Annotations[AnnotationNydusBlob]
	return ok
}

// IsNydusBootstrap reports whether desc is a Nydus bootstrap layer: it
// carries the AnnotationNydusBootstrap annotation, whatever its value, as
// nydus-snapshotter's converter.IsNydusBootstrap decides.
func IsNydusBootstrap(desc ocispec.Descriptor) bool {
	_, ok := desc.Annotations[AnnotationNydusBootstrap]
	return ok
}

// IsEROFSLayer reports whether desc is an EROFS layer by its media type:
// containerd's MediaTypeEROFSLayer, also with a suffix such as "+zstd"
// (containerd's EROFS differ and converter take any media type that
// begins with "application/vnd.erofs.layer"), or MediaTypeEROFS.
func IsEROFSLayer(desc ocispec.Descriptor) bool {
	return strings.HasPrefix(desc.MediaType, "application/vnd.erofs.layer") || desc.MediaType == string(MediaTypeEROFS)
}

// NydusBootstrapLayer returns the bootstrap layer of a Nydus image whose
// merged bootstrap (MergeNydusLayers, convert.MergeNydus) is boot: a
// gzip-compressed tar of the directory image/ and the file
// image/image.boot, which nydus-snapshotter unpacks and which must be the
// image's last layer. It is the layer Converter.Image writes, byte for
// byte.
//
// The layer is held in memory. Its DiffID is the digest of the tar, and
// partial.Descriptor gives its descriptor for the manifest: media type
// types.OCILayer, with the annotations AnnotationNydusBootstrap ("true")
// and AnnotationNydusFsVersion ("6").
func NydusBootstrapLayer(boot *rafs.Bootstrap) (v1.Layer, error) {
	if boot == nil {
		return nil, errors.New("convert: Nydus bootstrap layer: no bootstrap")
	}
	raw, err := boot.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("convert: Nydus bootstrap layer: %w", err)
	}
	l, diffID, err := bootstrapLayer(raw)
	if err != nil {
		return nil, fmt.Errorf("convert: Nydus bootstrap layer: %w", err)
	}
	return &bootLayer{Layer: l, diffID: diffID}, nil
}

// bootLayer is a bootstrap layer with its diff ID and descriptor.
type bootLayer struct {
	v1.Layer
	diffID v1.Hash
}

// DiffID implements v1.Layer.
func (l *bootLayer) DiffID() (v1.Hash, error) { return l.diffID, nil }

// Descriptor returns the layer's descriptor in a Nydus manifest (see
// partial.Descriptor).
func (l *bootLayer) Descriptor() (*v1.Descriptor, error) {
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	size, err := l.Size()
	if err != nil {
		return nil, err
	}
	return &v1.Descriptor{MediaType: types.OCILayer, Size: size, Digest: d, Annotations: map[string]string{
		AnnotationNydusBootstrap: "true",
		AnnotationNydusFsVersion: nydusFsVersion,
	}}, nil
}

// MergeNydusLayers merges the bootstraps of Nydus blob layers, layers[0]
// the lowest, into the image's bootstrap (convert.MergeNydus), as
// Converter.Image does; NydusBootstrapLayer makes the bootstrap layer of
// the result. A layer that Converter.Layer returned gives its bootstrap
// at once; another is read whole (into a temporary file in dir, ""
// meaning os.TempDir) for the bootstrap inlined at its end.
func MergeNydusLayers(dir string, layers ...v1.Layer) (*rafs.Bootstrap, error) {
	boots := make([]*rafs.Bootstrap, len(layers))
	for i, l := range layers {
		var err error
		if boots[i], err = nydusLayerBootstrap(dir, l); err != nil {
			return nil, fmt.Errorf("convert: Nydus layer %d: %w", i, err)
		}
	}
	return convert.MergeNydus(boots, nil)
}

// nydusLayerBootstrap returns the bootstrap of a Nydus blob layer.
func nydusLayerBootstrap(dir string, l v1.Layer) (*rafs.Bootstrap, error) {
	if cl, ok := l.(*convertedLayer); ok && cl.boot != nil {
		return cl.boot, nil
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	f, err := os.CreateTemp(dir, "rafs-blob-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, rc)
	if err != nil {
		return nil, err
	}
	boot, _, err := convert.ReadNydusLayer(f, n)
	return boot, err
}

// convertedLayer is a layer Converter.Layer made: the spooled layer, with
// its bootstrap for a Nydus blob.
type convertedLayer struct {
	v1.Layer
	boot *rafs.Bootstrap
	desc v1.Descriptor
}

// Descriptor returns the layer's descriptor as a converted manifest lists
// it (see partial.Descriptor).
func (l *convertedLayer) Descriptor() (*v1.Descriptor, error) {
	d := l.desc
	d.Annotations = maps.Clone(d.Annotations)
	return &d, nil
}

// Layer converts one layer of a go-containerregistry image, l (a tar
// layer, plain, gzip- or zstd-compressed), into an EROFS layer or a Nydus
// blob layer, as Options.Type says: the bytes Image gives that layer. The
// result is complete when Layer returns (its Digest, Size and DiffID, the
// digest, are known) and is kept in a temporary file until the
// Converter is closed; partial.Descriptor gives its descriptor for a
// manifest (AnnotationNydusBlob on a Nydus blob). For a Nydus image,
// merge the converted layers' bootstraps with MergeNydusLayers and add
// NydusBootstrapLayer's layer last.
//
// The EROFS UUID is derived from l's diff ID (l.DiffID, which for a
// layer of a remote or layout image comes from the config). The blob is
// checked against l's digest and size and its uncompressed bytes against
// the diff ID as they are read; a mismatch is a *BlobMismatchError. The
// Options' Cache, Push and Progress apply to it as to the layers of
// Image, and a layer converted before by this Converter is not converted
// again.
func (c *Converter) Layer(ctx context.Context, l v1.Layer) (v1.Layer, error) {
	d, err := partial.Descriptor(l)
	if err != nil {
		return nil, fmt.Errorf("convert: layer: %w", err)
	}
	if !isTarLayer(d.MediaType) {
		return nil, fmt.Errorf("convert: layer %s has media type %s, not a tar layer", d.Digest, d.MediaType)
	}
	diffID, err := l.DiffID()
	if err != nil {
		return nil, fmt.Errorf("convert: layer %s: diff ID: %w", d.Digest, err)
	}
	vl := verifiedOf(l)
	if vl == nil {
		vl = &verifiedLayer{inner: l, desc: v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest}, name: "layer " + d.Digest.String(), diffID: diffID}
	}
	src := &sourceImage{
		layers:   []*verifiedLayer{vl},
		digests:  []v1.Hash{d.Digest},
		diffIDs:  []v1.Hash{diffID},
		chainIDs: []v1.Hash{diffID},
	}
	res, err := c.layer(ctx, src, 0)
	if err != nil {
		if namesBlob(err) {
			return nil, err
		}
		return nil, fmt.Errorf("convert: layer %s: %w", d.Digest, err)
	}
	if res.finish != nil {
		if err := res.finish(); err != nil {
			return nil, fmt.Errorf("convert: layer %s: %w", d.Digest, err)
		}
	}
	mt := c.opts.EROFSMediaType
	var ann map[string]string
	if c.opts.Type == TypeNydus {
		mt = MediaTypeNydusBlob
		ann = map[string]string{AnnotationNydusBlob: "true"}
	}
	return &convertedLayer{
		Layer: res.layer,
		boot:  res.boot,
		desc:  v1.Descriptor{MediaType: mt, Size: res.size, Digest: res.digest, Annotations: ann},
	}, nil
}

// ConvertedManifest returns the manifest and the config that
// Converter.Image writes for an image converted from a source image
// whose manifest is described by source and whose config is srcConfig,
// given the converted layers' descriptors in manifest order (for a Nydus
// image the blob layers, then the bootstrap layer, as partial.Descriptor
// gives them for the layers of Layer and NydusBootstrapLayer) and their
// diff IDs. It lets a program that stores the layers itself (a
// containerd content store) make the image rafs convert makes, with the
// same digests.
//
// The config is srcConfig with the diff IDs, "erofs" added to
// os.features (TypeEROFS) or a history entry for the bootstrap layer
// (TypeNydus), other fields kept. Of opts, Type applies and Link:
// LinkReferrer makes source the manifest's subject (LinkMergeIndex
// concerns indexes, not manifests).
func ConvertedManifest(opts *Options, source v1.Descriptor, srcConfig []byte, layers []v1.Descriptor, diffIDs []v1.Hash) (manifest, config []byte, err error) {
	c, err := NewConverter(opts)
	if err != nil {
		return nil, nil, err
	}
	if len(layers) != len(diffIDs) {
		return nil, nil, fmt.Errorf("convert: %d layers and %d diff IDs", len(layers), len(diffIDs))
	}
	var subject *v1.Descriptor
	if c.opts.Link == LinkReferrer {
		subject = &source
	}
	if c.opts.Type == TypeNydus {
		history := []v1.History{{CreatedBy: nydusHistoryCreatedBy, Comment: nydusHistoryComment}}
		ann := map[string]string{
			AnnotationNydusSourceDigest: source.Digest.String(),
			AnnotationNydusFsVersion:    nydusFsVersion,
		}
		return assembleManifest(subject, srcConfig, layers, diffIDs, nil, history, ann)
	}
	return assembleManifest(subject, srcConfig, layers, diffIDs, []string{OSFeatureEROFS}, nil, nil)
}
