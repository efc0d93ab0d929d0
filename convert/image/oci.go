package image

import "github.com/google/go-containerregistry/pkg/v1/types"

// The media types, annotations and platform features of converted images:
// what nydus-snapshotter, nydusify and containerd's EROFS snapshotter look
// for, as their documentation describes them.
const (
	// MediaTypeNydusBlob is the media type of a Nydus data blob layer.
	MediaTypeNydusBlob types.MediaType = "application/vnd.oci.image.layer.nydus.blob.v1"
	// MediaTypeNydusConfig is the config media type nydusify gives a Nydus
	// image that shares an index with its source, so that containerd
	// without the Nydus snapshotter does not try to unpack it. rafs keeps
	// the OCI config media type; the constant is for readers.
	MediaTypeNydusConfig types.MediaType = "application/vnd.nydus.image.config.v1+json"
	// ArtifactTypeNydusManifest marks a Nydus manifest in an index.
	ArtifactTypeNydusManifest = "application/vnd.nydus.image.manifest.v1+json"

	// MediaTypeEROFSLayer is containerd's media type for a native EROFS
	// layer (the default for EROFS images).
	MediaTypeEROFSLayer types.MediaType = "application/vnd.erofs.layer.v1"
	// MediaTypeEROFS is the media type registered with IANA for an EROFS
	// image, used for an EROFS layer.
	MediaTypeEROFS types.MediaType = "application/vnd.erofs"

	// AnnotationNydusBlob marks a Nydus blob layer ("true").
	AnnotationNydusBlob = "containerd.io/snapshot/nydus-blob"
	// AnnotationNydusBootstrap marks the bootstrap layer ("true"), which
	// must be the last layer of a Nydus image.
	AnnotationNydusBootstrap = "containerd.io/snapshot/nydus-bootstrap"
	// AnnotationNydusFsVersion gives the RAFS version of the bootstrap
	// layer and the image ("6").
	AnnotationNydusFsVersion = "containerd.io/snapshot/nydus-fs-version"
	// AnnotationNydusSourceDigest is the digest of the manifest an image
	// was converted from.
	AnnotationNydusSourceDigest = "containerd.io/snapshot/nydus-source-digest"
	// AnnotationNydusSourceChainID is the chain ID of the source layer a
	// Nydus blob layer was converted from.
	AnnotationNydusSourceChainID = "containerd.io/snapshot/nydus-source-chainid"
	// AnnotationSourceDigest names, on a converted layer, the digest of the
	// source layer it was converted from.
	AnnotationSourceDigest = "dev.rafs.source.digest"
	// AnnotationDmverity is, on an EROFS layer with a dm-verity tree
	// appended (Options.EROFSVerity), the tree's root hash and hash offset
	// in the JSON form of containerd's dm-verity metadata file
	// ({"roothash":HEX,"hashoffset":N}, verity.Metadata): saved as
	// layer.erofs.dmverity beside the layer blob, it lets containerd's
	// EROFS snapshotter mount the layer through a verity device.
	AnnotationDmverity = "dev.rafs.dmverity"
	// AnnotationImageRefName is the OCI annotation that tags a manifest in
	// an OCI layout's index.json.
	AnnotationImageRefName = "org.opencontainers.image.ref.name"

	// OSFeatureNydus is the platform os.features entry of a Nydus manifest
	// that shares an index with other manifests.
	OSFeatureNydus = "nydus.remoteimage.v1"
	// OSFeatureEROFS is the platform os.features entry of an EROFS image,
	// in its index entry and its config.
	OSFeatureEROFS = "erofs"

	// nydusBootPath is the bootstrap's path inside the bootstrap layer.
	nydusBootPath = "image/image.boot"
	// nydusFsVersion is the RAFS version written.
	nydusFsVersion = "6"
	// nydusHistoryCreatedBy and nydusHistoryComment describe the bootstrap
	// layer in the config's history, as nydusify does.
	nydusHistoryCreatedBy = "Nydus Converter"
	nydusHistoryComment   = "Nydus Bootstrap Layer"

	// annotationCacheKey and annotationCacheRole label the layers of a
	// layer-cache manifest (Cache).
	annotationCacheKey  = "dev.rafs.cache.key"
	annotationCacheRole = "dev.rafs.cache.role"
	// artifactTypeCache is the artifact type of a layer-cache manifest.
	artifactTypeCache = "application/vnd.rafs.cache.v1+json"
)
