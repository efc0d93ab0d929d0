package image

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rafs-dev/rafs/convert"
)

// Every blob the Converter reads of a source image — index, manifest,
// config, layer — is checked against the descriptor it was reached by,
// digest and size, as its bytes go by. go-containerregistry's layout
// package reads blobs as they are on disk, unchecked; its remote package
// checks a layer or config blob and a manifest fetched by digest against
// the digest, but not a manifest's size against the index entry that
// named it. The JSON blobs are small and are read whole, then checked. A
// layer is hashed as it streams into the conversion, never read further
// than one byte past its size, and checked at its end, before its
// converted layer is committed (see Converter.runLayer).

var (
	// ErrBlobMismatch is matched (errors.Is) by every error about a blob
	// whose bytes are not what the descriptor it was reached by says.
	ErrBlobMismatch = errors.New("blob does not match its descriptor")
	// ErrDigestMismatch is matched by a blob whose bytes hash to another
	// digest than its descriptor's, or a layer whose uncompressed bytes
	// hash to another diff ID than its config's.
	ErrDigestMismatch = errors.New("digest mismatch")
	// ErrSizeMismatch is matched by a blob longer or shorter than its
	// descriptor's size.
	ErrSizeMismatch = errors.New("size mismatch")
)

// A BlobMismatchError is a blob read from an image source that is not
// what its descriptor says. It matches ErrBlobMismatch and either
// ErrSizeMismatch or ErrDigestMismatch.
type BlobMismatchError struct {
	// Blob names the blob and where it was reached from, as in "layer 2
	// sha256:… of manifest sha256:…".
	Blob string
	// Digest and Size are what the descriptor says (Size is -1 when only
	// the digest is known, as for a diff ID).
	Digest v1.Hash
	Size   int64
	// Got is the digest of the bytes read, for a digest mismatch. GotSize
	// is how many bytes were read: a stream is read no further than
	// Size+1, which then means "more than Size".
	Got     v1.Hash
	GotSize int64
}

func (e *BlobMismatchError) sizeWrong() bool { return e.Size >= 0 && e.GotSize != e.Size }

// Error implements error.
func (e *BlobMismatchError) Error() string {
	if e.sizeWrong() {
		if e.GotSize == e.Size+1 {
			return fmt.Sprintf("convert: %s: size mismatch: more than %d bytes, want %d", e.Blob, e.Size, e.Size)
		}
		return fmt.Sprintf("convert: %s: size mismatch: %d bytes, want %d", e.Blob, e.GotSize, e.Size)
	}
	return fmt.Sprintf("convert: %s: digest mismatch: read %s, want %s", e.Blob, e.Got, e.Digest)
}

// Is reports whether target is ErrBlobMismatch.
func (e *BlobMismatchError) Is(target error) bool { return target == ErrBlobMismatch }

// Unwrap returns ErrSizeMismatch or ErrDigestMismatch.
func (e *BlobMismatchError) Unwrap() error {
	if e.sizeWrong() {
		return ErrSizeMismatch
	}
	return ErrDigestMismatch
}

// blobError is an error reading a source blob, prefixed with the blob's
// name.
type blobError struct {
	blob string
	err  error
}

func (e *blobError) Error() string { return "convert: " + e.blob + ": " + e.err.Error() }
func (e *blobError) Unwrap() error { return e.err }

// namesBlob reports whether err is one of the errors above, which name
// the blob (and so need no other prefix naming it).
func namesBlob(err error) bool {
	switch err.(type) {
	case *BlobMismatchError, *blobError:
		return true
	}
	return false
}

// newHasher returns a hash for a digest algorithm (OCI image-spec,
// descriptor.md: sha256 and sha512 are registered).
func newHasher(alg string) (hash.Hash, error) {
	switch alg {
	case "sha256":
		return sha256.New(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("digest algorithm %q is not supported", alg)
}

func sumOf(alg string, h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: alg, Hex: hex.EncodeToString(h.Sum(nil))}
}

// checkBlob checks b, a whole blob, against d.
func checkBlob(b []byte, d v1.Descriptor, blob string) error {
	if d.Size < 0 {
		return &blobError{blob, fmt.Errorf("its descriptor has size %d", d.Size)}
	}
	if int64(len(b)) != d.Size {
		return &BlobMismatchError{Blob: blob, Digest: d.Digest, Size: d.Size, GotSize: int64(len(b))}
	}
	h, err := newHasher(d.Digest.Algorithm)
	if err != nil {
		return &blobError{blob, err}
	}
	h.Write(b)
	if got := sumOf(d.Digest.Algorithm, h); got != d.Digest {
		return &BlobMismatchError{Blob: blob, Digest: d.Digest, Size: d.Size, Got: got, GotSize: d.Size}
	}
	return nil
}

// verifyReader reads a blob, hashing it, and fails at its end if the
// blob is not what its descriptor says. It reads at most one byte past
// the descriptor's size and hands on no byte past it.
type verifyReader struct {
	rc   io.ReadCloser
	r    io.Reader // rc, limited to size+1 bytes
	d    v1.Descriptor
	blob string
	h    hash.Hash
	n    int64
	err  error // the first failure, returned from then on
	ok   bool  // read to its end and verified
}

func newVerifyReader(rc io.ReadCloser, d v1.Descriptor, blob string) (*verifyReader, error) {
	if d.Size < 0 {
		rc.Close()
		return nil, &blobError{blob, fmt.Errorf("its descriptor has size %d", d.Size)}
	}
	h, err := newHasher(d.Digest.Algorithm)
	if err != nil {
		rc.Close()
		return nil, &blobError{blob, err}
	}
	return &verifyReader{rc: rc, r: io.LimitReader(rc, d.Size+1), d: d, blob: blob, h: h}, nil
}

func (v *verifyReader) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.ok {
		return 0, io.EOF
	}
	n, err := v.r.Read(p)
	if v.n+int64(n) > v.d.Size {
		n = int(v.d.Size - v.n)
		v.h.Write(p[:n])
		v.n = v.d.Size + 1
		v.err = &BlobMismatchError{Blob: v.blob, Digest: v.d.Digest, Size: v.d.Size, GotSize: v.n}
		return n, v.err
	}
	v.h.Write(p[:n])
	v.n += int64(n)
	switch {
	case err == io.EOF:
		if v.n != v.d.Size {
			v.err = &BlobMismatchError{Blob: v.blob, Digest: v.d.Digest, Size: v.d.Size, GotSize: v.n}
		} else if got := sumOf(v.d.Digest.Algorithm, v.h); got != v.d.Digest {
			v.err = &BlobMismatchError{Blob: v.blob, Digest: v.d.Digest, Size: v.d.Size, Got: got, GotSize: v.n}
		} else {
			v.ok = true
			return n, io.EOF
		}
		return n, v.err
	case err != nil:
		v.err = &blobError{v.blob, err}
		return n, v.err
	}
	return n, nil
}

// finish reads the rest of the blob (at most to one byte past its size)
// and returns nil if it is what its descriptor says.
func (v *verifyReader) finish() error {
	if _, err := io.Copy(io.Discard, v); err != nil {
		return err
	}
	return v.err
}

func (v *verifyReader) Close() error { return v.rc.Close() }

// VerifyIndex returns idx with every blob read through it checked against
// the descriptor it was reached by, digest and size: each manifest and
// index it lists (against its entry), each image's config (against the
// manifest's config descriptor) and layers (against the manifest's layer
// descriptors, and uncompressed against the config's diff IDs when read
// with Uncompressed). idx's own manifest is checked against idx's Digest
// and Size. A mismatch is an error that matches ErrBlobMismatch and names
// the blob. Converter.Index, Converter.Image, LoadChunkDict and
// NewCache verify what they are given this way; VerifyIndex also
// covers the entry of an OCI layout's index.json that a caller opens
// itself, as layout.ImageIndexFromPath(dir) followed by Image(digest)
// does not check the manifest against its index.json entry.
func VerifyIndex(idx v1.ImageIndex) v1.ImageIndex { return verifyIndex(idx) }

// VerifyImage returns img with every blob read through it checked, as
// VerifyIndex does: its manifest against img's Digest and Size, its
// config and layers against the manifest.
func VerifyImage(img v1.Image) v1.Image { return verifyImage(img) }

func verifyIndex(idx v1.ImageIndex) *verifiedIndex {
	if v, ok := idx.(*verifiedIndex); ok {
		return v
	}
	return newVerifiedIndex(idx, nil, "")
}

func verifyImage(img v1.Image) *verifiedImage {
	if v, ok := img.(*verifiedImage); ok {
		return v
	}
	return newVerifiedImage(img, nil, "")
}

// verifiedIndex is an index whose blobs are checked (VerifyIndex).
type verifiedIndex struct {
	verifiedManifest
	inner v1.ImageIndex
	im    *v1.IndexManifest
}

func newVerifiedIndex(idx v1.ImageIndex, desc *v1.Descriptor, from string) *verifiedIndex {
	v := &verifiedIndex{inner: idx}
	v.src, v.kind, v.desc, v.from = idx, "index", desc, from
	v.parse = func(raw []byte) (types.MediaType, error) {
		im, err := v1.ParseIndexManifest(bytes.NewReader(raw))
		if err != nil {
			return "", err
		}
		v.im = im
		return im.MediaType, nil
	}
	return v
}

// verifiedManifest is what a verified index and a verified image share:
// their raw manifest, read once and checked against the descriptor it was
// reached by, and the methods that report it.
type verifiedManifest struct {
	src   manifestSource
	kind  string                                // "index" or "manifest", for errors
	parse func([]byte) (types.MediaType, error) // keeps the parsed manifest; returns its own mediaType
	desc  *v1.Descriptor                        // what it was reached by; nil: its own Digest and Size
	from  string                                // the index it was reached from, if any

	once sync.Once
	d    v1.Descriptor
	name string
	raw  []byte
	err  error
}

// manifestSource is what v1.Image and v1.ImageIndex have in common.
type manifestSource interface {
	Digest() (v1.Hash, error)
	Size() (int64, error)
	MediaType() (types.MediaType, error)
	RawManifest() ([]byte, error)
}

// load reads and checks the manifest, once.
func (v *verifiedManifest) load() error {
	v.once.Do(func() {
		if v.desc != nil {
			v.d = *v.desc
		} else if v.d, v.err = ownDescriptor(v.src); v.err != nil {
			v.err = fmt.Errorf("convert: source %s: %w", v.kind, v.err)
			return
		}
		v.name = entryName(v.kind, v.d, v.from)
		raw, err := v.src.RawManifest()
		if err != nil {
			v.err = &blobError{v.name, err}
			return
		}
		if v.err = checkBlob(raw, v.d, v.name); v.err != nil {
			return
		}
		own, err := v.parse(raw)
		if err != nil {
			v.err = &blobError{v.name, err}
			return
		}
		if v.err = checkMediaType(own, v.desc, v.name); v.err != nil {
			return
		}
		v.raw = raw
	})
	return v.err
}

// MediaType implements v1.Image and v1.ImageIndex.
func (v *verifiedManifest) MediaType() (types.MediaType, error) {
	if err := v.load(); err != nil {
		return "", err
	}
	return v.d.MediaType, nil
}

// Digest implements v1.Image and v1.ImageIndex.
func (v *verifiedManifest) Digest() (v1.Hash, error) {
	if err := v.load(); err != nil {
		return v1.Hash{}, err
	}
	return v.d.Digest, nil
}

// Size implements v1.Image and v1.ImageIndex.
func (v *verifiedManifest) Size() (int64, error) {
	if err := v.load(); err != nil {
		return 0, err
	}
	return v.d.Size, nil
}

// RawManifest implements v1.Image and v1.ImageIndex.
func (v *verifiedManifest) RawManifest() ([]byte, error) {
	if err := v.load(); err != nil {
		return nil, err
	}
	return v.raw, nil
}

// ownDescriptor is what an image or index given by a caller says of
// itself.
func ownDescriptor(x manifestSource) (d v1.Descriptor, err error) {
	if d.Digest, err = x.Digest(); err != nil {
		return d, err
	}
	if d.Size, err = x.Size(); err != nil {
		return d, err
	}
	d.MediaType, err = x.MediaType()
	return d, err
}

// checkMediaType checks a manifest's own mediaType field, when it has
// one, against the descriptor it was reached by (OCI image-spec,
// manifest.md and image-index.md: it is the descriptor's media type).
func checkMediaType(own types.MediaType, desc *v1.Descriptor, blob string) error {
	if desc == nil || own == "" || desc.MediaType == "" || own == desc.MediaType {
		return nil
	}
	return &blobError{blob, fmt.Errorf("media type %s, but its descriptor says %s", own, desc.MediaType)}
}

// IndexManifest implements v1.ImageIndex.
func (v *verifiedIndex) IndexManifest() (*v1.IndexManifest, error) {
	if err := v.load(); err != nil {
		return nil, err
	}
	return v.im.DeepCopy(), nil
}

// entry returns the first entry of the index with digest h.
func (v *verifiedIndex) entry(h v1.Hash) (v1.Descriptor, error) {
	if err := v.load(); err != nil {
		return v1.Descriptor{}, err
	}
	for _, d := range v.im.Manifests {
		if d.Digest == h {
			return d, nil
		}
	}
	return v1.Descriptor{}, fmt.Errorf("convert: %s lists no manifest %s", v.name, h)
}

// Image implements v1.ImageIndex.
func (v *verifiedIndex) Image(h v1.Hash) (v1.Image, error) {
	d, err := v.entry(h)
	if err != nil {
		return nil, err
	}
	return v.image(d)
}

// ImageIndex implements v1.ImageIndex.
func (v *verifiedIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	d, err := v.entry(h)
	if err != nil {
		return nil, err
	}
	return v.index(d)
}

// childOf names v in the names of its entries: a caller's own index
// (an OCI layout's index.json) goes without saying.
func (v *verifiedIndex) childOf() string {
	if v.desc == nil {
		return ""
	}
	return "index " + v.d.Digest.String()
}

// entryName names entry d of the index from.
func entryName(kind string, d v1.Descriptor, from string) string {
	if from == "" {
		return kind + " " + d.Digest.String()
	}
	return kind + " " + d.Digest.String() + " of " + from
}

// image returns the image of entry d, checked against d.
func (v *verifiedIndex) image(d v1.Descriptor) (*verifiedImage, error) {
	if err := v.load(); err != nil {
		return nil, err
	}
	from := v.childOf()
	img, err := v.inner.Image(d.Digest)
	if err != nil {
		return nil, &blobError{entryName("manifest", d, from), err}
	}
	if vi, ok := img.(*verifiedImage); ok {
		img = vi.inner // checked once, against d
	}
	return newVerifiedImage(img, &d, from), nil
}

// index returns the index of entry d, checked against d.
func (v *verifiedIndex) index(d v1.Descriptor) (*verifiedIndex, error) {
	if err := v.load(); err != nil {
		return nil, err
	}
	from := v.childOf()
	idx, err := v.inner.ImageIndex(d.Digest)
	if err != nil {
		return nil, &blobError{entryName("index", d, from), err}
	}
	if vi, ok := idx.(*verifiedIndex); ok {
		idx = vi.inner
	}
	return newVerifiedIndex(idx, &d, from), nil
}

// checkJSON checks every manifest, index and config reachable from the
// index (not the layers), so that an index copied as it is fails before
// anything of it is stored.
func (v *verifiedIndex) checkJSON() error {
	if err := v.load(); err != nil {
		return err
	}
	for _, d := range v.im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := v.index(d)
			if err != nil {
				return err
			}
			if err := child.checkJSON(); err != nil {
				return err
			}
		case d.MediaType.IsImage():
			child, err := v.image(d)
			if err != nil {
				return err
			}
			if _, err := child.RawConfigFile(); err != nil {
				return err
			}
		}
	}
	return nil
}

// verifiedImage is an image whose blobs are checked (VerifyImage).
type verifiedImage struct {
	verifiedManifest
	inner v1.Image
	m     *v1.Manifest

	cfgOnce sync.Once
	cfgRaw  []byte
	cfgErr  error
}

func newVerifiedImage(img v1.Image, desc *v1.Descriptor, from string) *verifiedImage {
	v := &verifiedImage{inner: img}
	v.src, v.kind, v.desc, v.from = img, "manifest", desc, from
	v.parse = func(raw []byte) (types.MediaType, error) {
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return "", err
		}
		v.m = m
		return m.MediaType, nil
	}
	return v
}

// Manifest implements v1.Image.
func (v *verifiedImage) Manifest() (*v1.Manifest, error) {
	if err := v.load(); err != nil {
		return nil, err
	}
	return v.m.DeepCopy(), nil
}

// configName names the config blob in errors.
func (v *verifiedImage) configName() string {
	return "config " + v.m.Config.Digest.String() + " of manifest " + v.d.Digest.String()
}

// RawConfigFile implements v1.Image.
func (v *verifiedImage) RawConfigFile() ([]byte, error) {
	if err := v.load(); err != nil {
		return nil, err
	}
	v.cfgOnce.Do(func() {
		raw, err := v.inner.RawConfigFile()
		if err != nil {
			v.cfgErr = &blobError{v.configName(), err}
			return
		}
		if v.cfgErr = checkBlob(raw, v.m.Config, v.configName()); v.cfgErr == nil {
			v.cfgRaw = raw
		}
	})
	return v.cfgRaw, v.cfgErr
}

// ConfigFile implements v1.Image.
func (v *verifiedImage) ConfigFile() (*v1.ConfigFile, error) {
	raw, err := v.RawConfigFile()
	if err != nil {
		return nil, err
	}
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil {
		return nil, &blobError{v.configName(), err}
	}
	return cfg, nil
}

// ConfigName implements v1.Image.
func (v *verifiedImage) ConfigName() (v1.Hash, error) {
	if err := v.load(); err != nil {
		return v1.Hash{}, err
	}
	return v.m.Config.Digest, nil
}

// diffIDs returns the config's diff IDs if it lists one per layer.
func (v *verifiedImage) diffIDs() ([]v1.Hash, error) {
	raw, err := v.RawConfigFile()
	if err != nil {
		return nil, err
	}
	// The config of an artifact need not be an image config.
	cfg, err := v1.ParseConfigFile(bytes.NewReader(raw))
	if err != nil || len(cfg.RootFS.DiffIDs) != len(v.m.Layers) {
		return nil, nil
	}
	return cfg.RootFS.DiffIDs, nil
}

// verifiedLayers returns the image's layers, checked against the
// manifest and, uncompressed, against the config's diff IDs.
func (v *verifiedImage) verifiedLayers() ([]*verifiedLayer, error) {
	if err := v.load(); err != nil {
		return nil, err
	}
	diffIDs, err := v.diffIDs()
	if err != nil {
		return nil, err
	}
	out := make([]*verifiedLayer, len(v.m.Layers))
	for i := range v.m.Layers {
		var diffID v1.Hash
		if diffIDs != nil {
			diffID = diffIDs[i]
		}
		if out[i], err = v.layer(i, diffID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// layer returns layer i.
func (v *verifiedImage) layer(i int, diffID v1.Hash) (*verifiedLayer, error) {
	d := v.m.Layers[i]
	name := fmt.Sprintf("layer %d %s of manifest %s", i, d.Digest, v.d.Digest)
	l, err := v.inner.LayerByDigest(d.Digest)
	if err != nil {
		return nil, &blobError{name, err}
	}
	vl := &verifiedLayer{inner: l, desc: d, name: name, diffID: diffID}
	if ml, ok := l.(*remote.MountableLayer); ok {
		// A registry can mount it into the target repository.
		vl.inner, vl.mount = ml.Layer, ml
	}
	if inner := verifiedOf(vl.inner); inner != nil {
		vl.inner = inner.inner // checked once, against d
		if vl.mount == nil {
			vl.mount = inner.mount
		}
	}
	return vl, nil
}

// Layers implements v1.Image.
func (v *verifiedImage) Layers() ([]v1.Layer, error) {
	vls, err := v.verifiedLayers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(vls))
	for i, l := range vls {
		out[i] = l.outer()
	}
	return out, nil
}

// LayerByDigest implements v1.Image.
func (v *verifiedImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	if err := v.load(); err != nil {
		return nil, err
	}
	if h == v.m.Config.Digest {
		return partial.ConfigLayer(v)
	}
	for i, d := range v.m.Layers {
		if d.Digest == h {
			diffIDs, err := v.diffIDs()
			if err != nil {
				return nil, err
			}
			var diffID v1.Hash
			if diffIDs != nil {
				diffID = diffIDs[i]
			}
			l, err := v.layer(i, diffID)
			if err != nil {
				return nil, err
			}
			return l.outer(), nil
		}
	}
	return nil, fmt.Errorf("convert: %s has no layer %s", v.name, h)
}

// LayerByDiffID implements v1.Image.
func (v *verifiedImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	if err := v.load(); err != nil {
		return nil, err
	}
	diffIDs, err := v.diffIDs()
	if err != nil {
		return nil, err
	}
	for i, d := range diffIDs {
		if d == h {
			l, err := v.layer(i, d)
			if err != nil {
				return nil, err
			}
			return l.outer(), nil
		}
	}
	return nil, fmt.Errorf("convert: %s has no layer with diff ID %s", v.name, h)
}

// verifiedLayer is a layer read through a verifyReader.
type verifiedLayer struct {
	inner  v1.Layer
	mount  *remote.MountableLayer // inner as the registry gave it, if mountable
	desc   v1.Descriptor          // in the manifest
	name   string
	diffID v1.Hash // from the config, if known
}

// verifiedOf returns the verifiedLayer l is, or wraps for mounting.
func verifiedOf(l v1.Layer) *verifiedLayer {
	switch x := l.(type) {
	case *verifiedLayer:
		return x
	case *remote.MountableLayer:
		return verifiedOf(x.Layer)
	}
	return nil
}

// outer returns the layer as an image gives it: mountable into another
// repository of its registry when the source layer was.
func (l *verifiedLayer) outer() v1.Layer {
	if l.mount != nil {
		return &remote.MountableLayer{Layer: l, Reference: l.mount.Reference}
	}
	return l
}

// Digest implements v1.Layer.
func (l *verifiedLayer) Digest() (v1.Hash, error) { return l.desc.Digest, nil }

// Size implements v1.Layer.
func (l *verifiedLayer) Size() (int64, error) { return l.desc.Size, nil }

// MediaType implements v1.Layer.
func (l *verifiedLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }

// Descriptor returns the layer's descriptor in the manifest (see
// partial.Descriptor).
func (l *verifiedLayer) Descriptor() (*v1.Descriptor, error) {
	d := l.desc
	return &d, nil
}

// open returns a verifying reader of the compressed blob.
func (l *verifiedLayer) open() (*verifyReader, error) {
	rc, err := l.inner.Compressed()
	if err != nil {
		return nil, &blobError{l.name, err}
	}
	return newVerifyReader(rc, l.desc, l.name)
}

// Compressed implements v1.Layer: reading it to its end fails if the
// blob is not what the manifest says.
func (l *verifiedLayer) Compressed() (io.ReadCloser, error) { return l.open() }

// Uncompressed implements v1.Layer: reading it to its end fails if the
// blob is not what the manifest says, or its uncompressed bytes not what
// the config's diff ID says.
func (l *verifiedLayer) Uncompressed() (io.ReadCloser, error) {
	vr, err := l.open()
	if err != nil {
		return nil, err
	}
	dr, _, err := convert.Decompress(vr)
	if err != nil {
		vr.Close()
		return nil, &blobError{l.name, err}
	}
	u := &uncompressedReader{l: l, vr: vr, dr: dr}
	if l.diffID.Hex != "" {
		if u.h, err = newHasher(l.diffID.Algorithm); err != nil {
			u.Close()
			return nil, &blobError{"uncompressed " + l.name, err}
		}
	}
	return u, nil
}

// DiffID implements v1.Layer: the config's diff ID, or the digest of the
// uncompressed layer.
func (l *verifiedLayer) DiffID() (v1.Hash, error) {
	if l.diffID.Hex != "" {
		return l.diffID, nil
	}
	rc, err := l.Uncompressed()
	if err != nil {
		return v1.Hash{}, err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.Copy(h, rc); err != nil {
		return v1.Hash{}, err
	}
	return sumOf("sha256", h), nil
}

// uncompressedReader reads a verified layer uncompressed.
type uncompressedReader struct {
	l  *verifiedLayer
	vr *verifyReader
	dr io.ReadCloser
	h  hash.Hash // of the uncompressed bytes, when the diff ID is known
}

func (u *uncompressedReader) Read(p []byte) (int, error) {
	n, err := u.dr.Read(p)
	if u.h != nil {
		u.h.Write(p[:n])
	}
	if err != io.EOF {
		return n, err
	}
	if err := u.vr.finish(); err != nil {
		return n, err
	}
	if u.h != nil {
		if got := sumOf(u.l.diffID.Algorithm, u.h); got != u.l.diffID {
			return n, &BlobMismatchError{Blob: "uncompressed " + u.l.name, Digest: u.l.diffID, Size: -1, Got: got}
		}
		u.h = nil
	}
	return n, io.EOF
}

func (u *uncompressedReader) Close() error {
	u.dr.Close()
	return u.vr.Close()
}
