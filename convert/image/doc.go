// Package image converts whole container images: an image or an index,
// read from a registry, an OCI layout or anything else go-containerregistry
// reads, becomes a Nydus RAFS v6 image or an EROFS-native image, each
// layer converted by package convert.
//
// A Converter converts images (Converter.Image) and indexes
// (Converter.Index) with one set of Options: the output Type, the layer
// options of package convert (convert.NydusOptions, convert.EROFSOptions),
// a chunk dictionary taken from another Nydus image (LoadChunkDict), the
// manifests of an index to convert (Platforms), how the result is linked
// to its source (Link: an OCI referrer or one merged index), a layer cache
// (LayerCache; Cache keeps one in an image), and Push, which uploads each
// converted layer while it is made (RemotePush). Layers are converted
// several at a time; a layer shared by several images is converted once.
//
// Every blob of the source is checked against the descriptor it was
// reached by, and each layer's uncompressed bytes against its diff ID, as
// the layer is converted (VerifyImage and VerifyIndex give the same checks
// to other readers); a mismatch is an error matching ErrBlobMismatch.
//
// Single layers convert with the same bytes as in an image:
// Converter.Layer takes a go-containerregistry v1.Layer, ConvertLayer a
// stream and its descriptor (the per-layer step for containerd's image
// converter; the module github.com/rafs-dev/rafs/convert/containerd has
// the containerd ConvertFuncs). A Nydus image's bootstrap layer is made
// from its converted blob layers with MergeNydusLayers and
// NydusBootstrapLayer. IsNydusBlob, IsNydusBootstrap and IsEROFSLayer
// tell converted layers by their descriptors.
// The media types, annotations and platform features of the images made
// are the constants of this package.
//
// Package convert, which converts single layers, has no network code;
// this package holds everything that reads or writes images.
package image
