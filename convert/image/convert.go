package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"reflect"
	"runtime"
	"slices"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/erofs/verity"
	"github.com/rafs-dev/rafs/rafs"
)

// Type selects what an image is converted into.
type Type string

const (
	// TypeNydus converts to a Nydus RAFS v6 image: one Nydus blob layer
	// per source layer and the merged bootstrap layer last.
	TypeNydus Type = "nydus"
	// TypeEROFS converts to an EROFS-native image: one EROFS layer per
	// source layer.
	TypeEROFS Type = "erofs"
)

// Link selects how a converted image is linked to its source.
type Link int

const (
	// LinkNone gives the converted image alone.
	LinkNone Link = iota
	// LinkReferrer sets each converted manifest's subject to its source
	// manifest (and a converted index's to the source index), so that the
	// OCI referrers API finds the conversion from the source.
	LinkReferrer
	// LinkMergeIndex gives one index that lists the source manifests
	// first and the converted ones after them, marked by their platform's
	// os.features (as nydusify --merge-platform does).
	LinkMergeIndex
)

// Options configure a Converter. The zero value converts to Nydus
// with nydus-image's defaults.
type Options struct {
	// Type is the output format; "" means TypeNydus.
	Type Type

	// Nydus configures each layer's Nydus conversion (TypeNydus); it
	// must be zero for TypeEROFS (NewConverter refuses it). Its
	// ChunkDict must be nil (NewConverter refuses it); set ChunkDict
	// here instead.
	Nydus convert.NydusOptions
	// ChunkDict is a chunk dictionary taken from another Nydus image
	// (LoadChunkDict): chunks it has are referenced, not stored again, and
	// its blobs the result uses are listed in the converted manifest.
	ChunkDict *ChunkDict

	// EROFS configures each layer's EROFS conversion (TypeEROFS); it
	// must be zero for TypeNydus (NewConverter refuses it). The image
	// UUID is derived from the source layer's diff ID, so Image.UUID
	// must be nil (NewConverter refuses it).
	EROFS convert.EROFSOptions
	// EROFSMediaType is the media type of EROFS layers:
	// MediaTypeEROFSLayer (containerd, the default when empty) or
	// MediaTypeEROFS (the IANA-registered application/vnd.erofs). It
	// must be empty for TypeNydus (NewConverter refuses it).
	EROFSMediaType types.MediaType
	// EROFSTarIndex makes each EROFS layer a tar index with its tar
	// appended (convert.TarToEROFSIndex with Append): 512-byte blocks,
	// the files' data the layer's own tar after the metadata. The blob
	// is one EROFS image that mounts alone, as containerd's EROFS differ
	// makes its layers with enable_tar_index, under the same media type
	// as other EROFS layers: containerd has none that says "tar index".
	// It must be false for TypeNydus (NewConverter refuses it).
	EROFSTarIndex bool
	// EROFSVerity, when set, appends a dm-verity hash tree to each EROFS
	// layer (verity.Append) and records its root hash and hash offset on
	// the layer's descriptor, in the annotation AnnotationDmverity. Its
	// BlockSize 0 means 4096, or the image's block size when smaller (512
	// for EROFSTarIndex), which the kernel needs to mount the layer
	// through the verity device. NoSuperblock is refused: the annotation
	// is containerd's metadata, which needs the superblock.
	EROFSVerity *verity.Options

	// Platforms selects the manifests of an index to convert: those whose
	// platform satisfies one of these (v1.Platform.Satisfies). Empty
	// means all, except attestation manifests (platform unknown/unknown).
	Platforms []v1.Platform

	// Link links the converted image to its source.
	Link Link

	// Annotations are added to the annotations of every converted
	// manifest and index (rafs serve records there what a target was
	// converted from). An annotation the conversion sets itself keeps
	// the conversion's value. Nil adds none and leaves the output as
	// it was.
	Annotations map[string]string

	// Cache, when set, is asked for each layer before converting it and
	// told of each layer converted, so a layer converted before (with the
	// same options) is not converted again.
	Cache LayerCache

	// Jobs is the number of layers converted at a time (0: one per CPU,
	// at least 2). Each layer's conversion uses every CPU on its own, but
	// for decoding gzip, where the layers converted at a time share them;
	// more jobs overlap pulling, converting and pushing.
	Jobs int

	// TempDir holds converted layers until they are stored ("" means
	// os.TempDir()). Each takes the size of its converted output.
	TempDir string

	// Push, when set, is called in a goroutine of its own for each
	// converted layer as soon as its bytes start to exist: at once for a
	// Nydus blob, which can be read while it is written, and when its
	// image is complete for an EROFS layer. Reading the layer blocks until
	// more of it is written; its Digest and Size return
	// stream.ErrNotComputed until it is complete. A registry pusher can
	// upload it with remote.WriteLayer while the conversion goes on. The
	// conversion waits for Push to return and fails with its error.
	Push func(ctx context.Context, layer v1.Layer) error

	// Progress, when set, is called as layers are pulled and converted.
	// It may be called from several goroutines at once.
	Progress func(LayerProgress)
}

// LayerProgress reports the state of one layer's conversion.
type LayerProgress struct {
	// Source is the digest of the source layer.
	Source v1.Hash
	// Size is the source layer's (compressed) size.
	Size int64
	// Read is how many bytes of the source layer have been read.
	Read int64
	// Written is how many bytes of converted output exist.
	Written int64
	// Done is set in the last report of a layer; Cached when the layer was
	// found in the cache and not converted.
	Done, Cached bool
}

// Stats counts what a Converter did.
type Stats struct {
	Layers   int   // layers converted
	Cached   int   // layers taken from the cache
	BytesIn  int64 // source layer bytes read
	BytesOut int64 // converted layer bytes written (cached ones excluded)
}

// A Converter converts images and indexes with one set of options. It
// keeps converted layers in temporary files until Close, so that the
// images it returns can be stored (remote.Write, layout.Write) after the
// conversion; with Options.Push they are stored as they are made.
// A layer shared by several images is converted once. Its methods are
// safe for concurrent use.
type Converter struct {
	opts Options
	sem  chan struct{}

	mu     sync.Mutex
	layers map[string]*layerJob // by source layer key
	spools []*spool
	stats  Stats
	closed bool
}

// NewConverter returns a Converter. opts may be nil.
func NewConverter(opts *Options) (*Converter, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Type == "" {
		o.Type = TypeNydus
	}
	switch o.Type {
	case TypeNydus, TypeEROFS:
	default:
		return nil, fmt.Errorf("convert: unknown image type %q (want nydus or erofs)", o.Type)
	}
	switch {
	case o.Type == TypeNydus && !reflect.ValueOf(o.EROFS).IsZero():
		return nil, errors.New("convert: Options.EROFS is set, but the type is nydus: EROFS options would be ignored")
	case o.Type == TypeNydus && (o.EROFSMediaType != "" || o.EROFSTarIndex):
		return nil, errors.New("convert: Options.EROFSMediaType or EROFSTarIndex is set, but the type is nydus: it would be ignored")
	case o.Type == TypeEROFS && o.Nydus != (convert.NydusOptions{}):
		return nil, errors.New("convert: Options.Nydus is set, but the type is erofs: Nydus options would be ignored")
	case o.EROFS.Image.UUID != nil:
		return nil, errors.New("convert: Options.EROFS.Image.UUID is set, but each layer's UUID is derived from its diff ID")
	}
	if o.EROFSMediaType == "" {
		o.EROFSMediaType = MediaTypeEROFSLayer
	}
	o.Annotations = maps.Clone(o.Annotations)
	if o.EROFSMediaType != MediaTypeEROFSLayer && o.EROFSMediaType != MediaTypeEROFS {
		return nil, fmt.Errorf("convert: EROFS layer media type %q is neither %s nor %s", o.EROFSMediaType, MediaTypeEROFSLayer, MediaTypeEROFS)
	}
	if im := o.EROFS.Image; im.BlobDev != nil || len(im.Devices) > 0 || im.DevicesAppended {
		return nil, errors.New("convert: EROFS layers are one blob each: no BlobDev or Devices (EROFSTarIndex makes the tar index's own)")
	}
	if v := o.EROFSVerity; v != nil {
		if o.Type != TypeEROFS {
			return nil, errors.New("convert: a dm-verity tree (EROFSVerity) is for EROFS layers")
		}
		if v.NoSuperblock {
			return nil, errors.New("convert: EROFSVerity.NoSuperblock: a layer's dm-verity annotation (containerd's metadata) needs the superblock")
		}
		vo := *v
		if vo.BlockSize == 0 {
			bs := o.EROFS.Image.BlockSize
			switch {
			case o.EROFSTarIndex:
				bs = convert.TarIndexBlockSize
			case bs == 0:
				bs = erofs.DefaultBlockSize
			}
			vo.BlockSize = min(verity.DefaultBlockSize, bs)
		}
		if err := vo.Validate(); err != nil {
			return nil, fmt.Errorf("convert: EROFSVerity: %w", err)
		}
		o.EROFSVerity = &vo
	}
	if o.Nydus.ChunkDict != nil {
		return nil, errors.New("convert: set Options.ChunkDict (LoadChunkDict), not Options.Nydus.ChunkDict")
	}
	if o.ChunkDict != nil && o.Type != TypeNydus {
		return nil, errors.New("convert: a chunk dictionary needs the nydus type")
	}
	if o.Link < LinkNone || o.Link > LinkMergeIndex {
		return nil, fmt.Errorf("convert: unknown link %d", o.Link)
	}
	if o.Jobs <= 0 {
		o.Jobs = max(runtime.NumCPU(), 2)
	}
	o.Nydus.ChunkDict = nil
	if o.ChunkDict != nil {
		o.Nydus.ChunkDict = o.ChunkDict.Dict
	}
	if o.Type == TypeNydus {
		if err := o.Nydus.Validate(); err != nil {
			return nil, err
		}
	}
	return &Converter{opts: o, sem: make(chan struct{}, o.Jobs), layers: map[string]*layerJob{}}, nil
}

// Stats returns what the Converter has done so far.
func (c *Converter) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

// Close removes the temporary files of converted layers. Images returned
// before must not be read after Close.
func (c *Converter) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for _, s := range c.spools {
		if err := s.remove(); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	c.spools = nil
	return errors.Join(errs...)
}

// Image converts img: each of its layers, then its config and manifest.
// With LinkReferrer the result's subject is img's manifest. (LinkMergeIndex
// needs an index: see Index and IndexOf.)
//
// Every blob of img read is checked as VerifyImage does: its manifest
// against img's Digest and Size (or the index entry it was reached by,
// when img comes from VerifyIndex), its config and each layer against the
// manifest, and each layer's uncompressed bytes against the config's
// diff ID. A layer is checked as it is converted, before its converted
// layer is stored or its upload (Options.Push) completes; a mismatch
// is an error that matches ErrBlobMismatch and names the blob.
func (c *Converter) Image(ctx context.Context, img v1.Image) (v1.Image, error) {
	ci, err := c.image(ctx, img)
	if err != nil {
		return nil, err
	}
	return ci, nil
}

// image converts one image (see Image).
func (c *Converter) image(ctx context.Context, img v1.Image) (*convertedImage, error) {
	src, err := readSourceImage(img)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]*layerResult, len(src.layers))
	errs := make([]error, len(src.layers))
	var wg sync.WaitGroup
	for i := range src.layers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.layer(ctx, src, i)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	if i, err := firstError(errs); err != nil {
		if namesBlob(err) {
			return nil, err
		}
		return nil, fmt.Errorf("convert: layer %d (%s): %w", i, src.digests[i], err)
	}
	var ci *convertedImage
	if c.opts.Type == TypeNydus {
		ci, err = c.nydusImage(src, results)
	} else {
		ci, err = c.erofsImage(src, results)
	}
	for i, r := range results {
		if r.finish == nil {
			continue
		}
		if ferr := r.finish(); ferr != nil && err == nil {
			err = fmt.Errorf("convert: layer %d (%s): %w", i, src.digests[i], ferr)
		}
	}
	if err != nil {
		return nil, err
	}
	return ci, nil
}

// firstError returns the first error of errs that is not a cancellation
// (which the first failure causes in the others), or else the first error,
// and its index.
func firstError(errs []error) (int, error) {
	for i, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return i, err
		}
	}
	for i, err := range errs {
		if err != nil {
			return i, err
		}
	}
	return -1, nil
}

// sourceImage is what conversion needs of a source image.
type sourceImage struct {
	manifest *v1.Manifest
	desc     v1.Descriptor // of the manifest
	rawCfg   []byte
	layers   []*verifiedLayer
	digests  []v1.Hash // compressed digests
	diffIDs  []v1.Hash
	chainIDs []v1.Hash
}

// readSourceImage reads img's manifest and config, checked against the
// descriptors they were reached by (VerifyImage); its layers are checked
// as they are converted. Errors from img name the blob.
func readSourceImage(img v1.Image) (*sourceImage, error) {
	vi := verifyImage(img)
	m, err := vi.Manifest()
	if err != nil {
		return nil, err
	}
	s := &sourceImage{manifest: m}
	mt, err := vi.MediaType()
	if err != nil {
		return nil, err
	}
	if mt.IsSchema1() {
		return nil, fmt.Errorf("convert: source manifest has the Docker schema 1 media type %s, which has no config to convert", mt)
	}
	dg, err := vi.Digest()
	if err != nil {
		return nil, err
	}
	size, err := vi.Size()
	if err != nil {
		return nil, err
	}
	s.desc = v1.Descriptor{MediaType: mt, Digest: dg, Size: size}
	if s.rawCfg, err = vi.RawConfigFile(); err != nil {
		return nil, err
	}
	cfg, err := vi.ConfigFile()
	if err != nil {
		return nil, err
	}
	if s.layers, err = vi.verifiedLayers(); err != nil {
		return nil, err
	}
	if len(cfg.RootFS.DiffIDs) != len(s.layers) {
		return nil, fmt.Errorf("convert: source config lists %d diff IDs for %d layers", len(cfg.RootFS.DiffIDs), len(s.layers))
	}
	for i, l := range s.layers {
		if !isTarLayer(l.desc.MediaType) {
			return nil, fmt.Errorf("convert: layer %d has media type %s, not a tar layer (is the image converted already?)", i, l.desc.MediaType)
		}
		s.digests = append(s.digests, l.desc.Digest)
	}
	s.diffIDs = slices.Clone(cfg.RootFS.DiffIDs)
	s.chainIDs = chainIDs(s.diffIDs)
	return s, nil
}

// isTarLayer reports whether mt is a layer media type whose blob is a tar,
// plain or compressed.
func isTarLayer(mt types.MediaType) bool {
	switch mt {
	case types.DockerLayer, types.DockerUncompressedLayer, types.DockerForeignLayer,
		types.OCILayer, types.OCILayerZStd, types.OCIUncompressedLayer,
		types.OCIRestrictedLayer, types.OCIUncompressedRestrictedLayer,
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd":
		return true
	}
	return false
}

// chainIDs computes the OCI chain IDs of a stack of diff IDs.
func chainIDs(diffIDs []v1.Hash) []v1.Hash {
	out := make([]v1.Hash, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		sum := sha256.Sum256([]byte(out[i-1].String() + " " + d.String()))
		out[i] = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	}
	return out
}

// layerResult is a converted layer.
type layerResult struct {
	layer  v1.Layer
	digest v1.Hash
	size   int64
	// boot is the layer's bootstrap (TypeNydus), with its real blob id.
	boot *rafs.Bootstrap
	// annotations go on the layer's descriptor (the dm-verity metadata).
	annotations map[string]string
	// finish, if set, waits for the layer's upload to end; the layer is
	// not stored before it returns nil.
	finish func() error
}

// layerJob is one source layer's conversion, shared by every image that
// has the layer.
type layerJob struct {
	done chan struct{}
	res  *layerResult
	err  error
}
