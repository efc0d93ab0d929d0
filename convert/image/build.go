package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/rafs"
)

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

// imageCore is an image whose manifest and config are in memory and
// whose layers are given by digest: what partial.CompressedToImage needs.
type imageCore struct {
	manifest  []byte
	config    []byte
	mediaType types.MediaType
	layers    map[v1.Hash]v1.Layer
}

func (i *imageCore) RawConfigFile() ([]byte, error)      { return i.config, nil }
func (i *imageCore) MediaType() (types.MediaType, error) { return i.mediaType, nil }
func (i *imageCore) RawManifest() ([]byte, error)        { return i.manifest, nil }
func (i *imageCore) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if l, ok := i.layers[h]; ok {
		return l, nil
	}
	if h == sha256Hash(i.config) {
		return partial.ConfigLayer(i)
	}
	return nil, fmt.Errorf("convert: image has no blob %s", h)
}

// convertedImage is a converted image and what an index entry for it
// needs.
type convertedImage struct {
	v1.Image
	desc v1.Descriptor // MediaType, Size, Digest
}

// layerDesc is a layer descriptor for the converted manifest.
type layerDesc struct {
	desc  v1.Descriptor
	layer v1.Layer
	// diffID is the digest of the layer's uncompressed content.
	diffID v1.Hash
}

// assemble writes the converted config and manifest of src with the given
// layers. features are added to the config's os.features; history to its
// history.
func (c *Converter) assemble(src *sourceImage, layers []layerDesc, features []string, history []v1.History, annotations map[string]string) (*convertedImage, error) {
	descs := make([]v1.Descriptor, len(layers))
	diffIDs := make([]v1.Hash, len(layers))
	core := &imageCore{mediaType: types.OCIManifestSchema1, layers: map[v1.Hash]v1.Layer{}}
	for i, l := range layers {
		descs[i], diffIDs[i] = l.desc, l.diffID
		core.layers[l.desc.Digest] = l.layer
	}
	var subject *v1.Descriptor
	if c.opts.Link == LinkReferrer {
		subject = &src.desc
	}
	var err error
	if core.manifest, core.config, err = assembleManifest(subject, src.rawCfg, descs, diffIDs, features, history, c.withAnnotations(annotations)); err != nil {
		return nil, err
	}
	img, err := partial.CompressedToImage(core)
	if err != nil {
		return nil, err
	}
	return &convertedImage{
		Image: img,
		desc:  v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: int64(len(core.manifest)), Digest: sha256Hash(core.manifest)},
	}, nil
}

// withAnnotations returns own with Options.Annotations added (own's
// values win), or own unchanged when there are none to add.
func (c *Converter) withAnnotations(own map[string]string) map[string]string {
	if len(c.opts.Annotations) == 0 {
		return own
	}
	m := make(map[string]string, len(own)+len(c.opts.Annotations))
	maps.Copy(m, c.opts.Annotations)
	maps.Copy(m, own)
	return m
}

// assembleManifest writes the converted config (editConfig of rawCfg)
// and the OCI manifest listing it and the layers, with the annotations
// and, when set, the subject (its media type, size and digest).
func assembleManifest(subject *v1.Descriptor, rawCfg []byte, layers []v1.Descriptor, diffIDs []v1.Hash, features []string, history []v1.History, annotations map[string]string) (manifest, config []byte, err error) {
	cfg, err := editConfig(rawCfg, diffIDs, features, history)
	if err != nil {
		return nil, nil, err
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        v1.Descriptor{MediaType: types.OCIConfigJSON, Size: int64(len(cfg)), Digest: sha256Hash(cfg)},
		Layers:        append([]v1.Descriptor{}, layers...),
		Annotations:   annotations,
	}
	if subject != nil {
		m.Subject = &v1.Descriptor{MediaType: subject.MediaType, Size: subject.Size, Digest: subject.Digest}
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, nil, err
	}
	return b, cfg, nil
}

// editConfig returns the source config with the converted layers' diff
// IDs, features added to os.features and entries appended to history.
// Fields rafs does not know are kept as they are.
func editConfig(raw []byte, diffIDs []v1.Hash, features []string, history []v1.History) ([]byte, error) {
	var cfg map[string]json.RawMessage
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("convert: source config: %w", err)
	}
	var rootfs map[string]json.RawMessage
	if r, ok := cfg["rootfs"]; ok {
		if err := json.Unmarshal(r, &rootfs); err != nil {
			return nil, fmt.Errorf("convert: source config rootfs: %w", err)
		}
	}
	if rootfs == nil {
		rootfs = map[string]json.RawMessage{}
	}
	var err error
	if rootfs["type"], err = json.Marshal("layers"); err != nil {
		return nil, err
	}
	if rootfs["diff_ids"], err = json.Marshal(diffIDs); err != nil {
		return nil, err
	}
	if cfg["rootfs"], err = json.Marshal(rootfs); err != nil {
		return nil, err
	}
	if len(features) > 0 {
		var have []string
		if f, ok := cfg["os.features"]; ok {
			if err := json.Unmarshal(f, &have); err != nil {
				return nil, fmt.Errorf("convert: source config os.features: %w", err)
			}
		}
		for _, f := range features {
			if !slices.Contains(have, f) {
				have = append(have, f)
			}
		}
		if cfg["os.features"], err = json.Marshal(have); err != nil {
			return nil, err
		}
	}
	if len(history) > 0 {
		var have []json.RawMessage
		if h, ok := cfg["history"]; ok {
			if err := json.Unmarshal(h, &have); err != nil {
				return nil, fmt.Errorf("convert: source config history: %w", err)
			}
		}
		for _, h := range history {
			// v1.History would write a zero "created" time.
			b, err := json.Marshal(map[string]string{"created_by": h.CreatedBy, "comment": h.Comment})
			if err != nil {
				return nil, err
			}
			have = append(have, b)
		}
		if cfg["history"], err = json.Marshal(have); err != nil {
			return nil, err
		}
	}
	return json.Marshal(cfg)
}

// erofsImage assembles an EROFS-native image: one EROFS layer per source
// layer, and erofs in the config's os.features.
func (c *Converter) erofsImage(src *sourceImage, results []*layerResult) (*convertedImage, error) {
	layers := make([]layerDesc, len(results))
	for i, r := range results {
		layers[i] = layerDesc{
			desc:   v1.Descriptor{MediaType: c.opts.EROFSMediaType, Size: r.size, Digest: r.digest, Annotations: r.annotations},
			layer:  r.layer,
			diffID: r.digest,
		}
	}
	return c.assemble(src, layers, []string{OSFeatureEROFS}, nil, nil)
}

// nydusImage merges the layers' bootstraps and assembles a Nydus image:
// the blob layers in source order, the chunk-dictionary blobs the merged
// bootstrap uses, and the bootstrap layer last.
func (c *Converter) nydusImage(src *sourceImage, results []*layerResult) (*convertedImage, error) {
	boots := make([]*rafs.Bootstrap, len(results))
	for i, r := range results {
		boots[i] = r.boot
	}
	merged, err := convert.MergeNydus(boots, nil)
	if err != nil {
		return nil, err
	}
	raw, err := merged.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("convert: merged bootstrap: %w", err)
	}
	blobAnn := func() map[string]string { return map[string]string{AnnotationNydusBlob: "true"} }
	var layers []layerDesc
	have := map[string]bool{}
	for _, r := range results {
		layers = append(layers, layerDesc{
			desc:   v1.Descriptor{MediaType: MediaTypeNydusBlob, Size: r.size, Digest: r.digest, Annotations: blobAnn()},
			layer:  r.layer,
			diffID: r.digest,
		})
		have[r.digest.Hex] = true
	}
	for _, bi := range merged.Blobs {
		if have[bi.ID] {
			continue
		}
		var l v1.Layer
		if c.opts.ChunkDict != nil {
			l = c.opts.ChunkDict.Blobs[bi.ID]
		}
		if l == nil {
			return nil, fmt.Errorf("convert: merged bootstrap uses blob %s, which no layer and no chunk dictionary image has", bi.ID)
		}
		size, err := l.Size()
		if err != nil {
			return nil, fmt.Errorf("convert: chunk dictionary blob %s: %w", bi.ID, err)
		}
		d := v1.Hash{Algorithm: "sha256", Hex: bi.ID}
		layers = append(layers, layerDesc{
			desc:   v1.Descriptor{MediaType: MediaTypeNydusBlob, Size: size, Digest: d, Annotations: blobAnn()},
			layer:  l,
			diffID: d,
		})
		have[bi.ID] = true
	}
	bl, diffID, err := bootstrapLayer(raw)
	if err != nil {
		return nil, err
	}
	bd, err := partial.Descriptor(bl)
	if err != nil {
		return nil, err
	}
	layers = append(layers, layerDesc{
		desc: v1.Descriptor{MediaType: types.OCILayer, Size: bd.Size, Digest: bd.Digest, Annotations: map[string]string{
			AnnotationNydusBootstrap: "true",
			AnnotationNydusFsVersion: nydusFsVersion,
		}},
		layer:  bl,
		diffID: diffID,
	})
	history := []v1.History{{CreatedBy: nydusHistoryCreatedBy, Comment: nydusHistoryComment}}
	ann := map[string]string{
		AnnotationNydusSourceDigest: src.desc.Digest.String(),
		AnnotationNydusFsVersion:    nydusFsVersion,
	}
	return c.assemble(src, layers, nil, history, ann)
}

// bootstrapLayer makes the bootstrap layer: a gzip-compressed tar holding
// the directory image and the file image/image.boot, as nydus-snapshotter
// unpacks it. It returns the layer and its diff ID. The bytes depend only
// on the bootstrap.
func bootstrapLayer(boot []byte) (v1.Layer, v1.Hash, error) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	epoch := time.Unix(0, 0)
	if err := tw.WriteHeader(&tar.Header{Name: "image/", Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return nil, v1.Hash{}, err
	}
	if err := tw.WriteHeader(&tar.Header{Name: nydusBootPath, Typeflag: tar.TypeReg, Mode: 0o444, Size: int64(len(boot)), ModTime: epoch, Format: tar.FormatPAX}); err != nil {
		return nil, v1.Hash{}, err
	}
	if _, err := tw.Write(boot); err != nil {
		return nil, v1.Hash{}, err
	}
	if err := tw.Close(); err != nil {
		return nil, v1.Hash{}, err
	}
	diffID := sha256Hash(tb.Bytes())
	var gz bytes.Buffer
	zw, err := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	if err != nil {
		return nil, v1.Hash{}, err
	}
	if _, err := zw.Write(tb.Bytes()); err != nil {
		return nil, v1.Hash{}, err
	}
	if err := zw.Close(); err != nil {
		return nil, v1.Hash{}, err
	}
	l, err := partial.CompressedToLayer(&memLayer{b: gz.Bytes(), mt: types.OCILayer})
	return l, diffID, err
}

// memLayer is a small compressed layer held in memory.
type memLayer struct {
	b  []byte
	mt types.MediaType
}

func (l *memLayer) Digest() (v1.Hash, error)            { return sha256Hash(l.b), nil }
func (l *memLayer) Size() (int64, error)                { return int64(len(l.b)), nil }
func (l *memLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
func (l *memLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.b)), nil
}

// ChunkDict is a chunk dictionary taken from a Nydus image: the
// chunks its merged bootstrap lists and the blob layers that hold them.
type ChunkDict struct {
	// Dict is the dictionary of the image's chunks.
	Dict *rafs.ChunkDict
	// Blobs are the image's blob layers by blob id (hex digest).
	Blobs map[string]v1.Layer
	// Digest is the digest of the image's manifest.
	Digest v1.Hash
}

// LoadChunkDict reads the merged bootstrap of a Nydus image (its last
// layer, annotated nydus-bootstrap) and returns it as a chunk dictionary
// for converting other images. Its blobs are checked as VerifyImage
// does: the bootstrap layer here, the blob layers when the converted
// image that lists them is stored.
func LoadChunkDict(img v1.Image) (*ChunkDict, error) {
	img = verifyImage(img)
	m, err := img.Manifest()
	if err != nil {
		return nil, fmt.Errorf("convert: chunk dictionary image: %w", err)
	}
	if len(m.Layers) == 0 || m.Layers[len(m.Layers)-1].Annotations[AnnotationNydusBootstrap] != "true" {
		return nil, errors.New("convert: chunk dictionary image is not a Nydus image (its last layer is not annotated " + AnnotationNydusBootstrap + ")")
	}
	dg, err := img.Digest()
	if err != nil {
		return nil, err
	}
	last := m.Layers[len(m.Layers)-1]
	bl, err := img.LayerByDigest(last.Digest)
	if err != nil {
		return nil, fmt.Errorf("convert: chunk dictionary bootstrap layer: %w", err)
	}
	raw, err := readBootstrapLayer(bl)
	if err != nil {
		return nil, fmt.Errorf("convert: chunk dictionary bootstrap layer %s: %w", last.Digest, err)
	}
	boot, err := rafs.Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("convert: chunk dictionary bootstrap: %w", err)
	}
	dict, err := rafs.NewChunkDict(boot)
	if err != nil {
		return nil, fmt.Errorf("convert: chunk dictionary: %w", err)
	}
	d := &ChunkDict{Dict: dict, Blobs: map[string]v1.Layer{}, Digest: dg}
	for _, ld := range m.Layers[:len(m.Layers)-1] {
		if ld.MediaType != MediaTypeNydusBlob {
			continue
		}
		l, err := img.LayerByDigest(ld.Digest)
		if err != nil {
			return nil, fmt.Errorf("convert: chunk dictionary blob %s: %w", ld.Digest, err)
		}
		d.Blobs[ld.Digest.Hex] = l
	}
	for _, bi := range dict.Blobs() {
		if d.Blobs[bi.ID] == nil {
			return nil, fmt.Errorf("convert: chunk dictionary bootstrap uses blob %s, which is not a layer of its image", bi.ID)
		}
	}
	return d, nil
}

// readBootstrapLayer returns image/image.boot (or the legacy image.boot)
// from a bootstrap layer. It reads the compressed blob to its end, so
// that a verified layer (VerifyImage) is checked before the bootstrap is
// used.
func readBootstrapLayer(l v1.Layer) ([]byte, error) {
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	boot, err := findBootstrap(rc)
	// The blob's own error (a mismatch) comes first: it is the cause.
	if _, derr := io.Copy(io.Discard, rc); derr != nil {
		return nil, derr
	}
	return boot, err
}

// findBootstrap returns image/image.boot (or image.boot) of a bootstrap
// layer's blob.
func findBootstrap(r io.Reader) ([]byte, error) {
	dr, _, err := convert.Decompress(r)
	if err != nil {
		return nil, err
	}
	defer dr.Close()
	tr := tar.NewReader(dr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, errors.New("no image/image.boot in the layer")
		}
		if err != nil {
			return nil, err
		}
		name := h.Name
		for len(name) > 2 && name[:2] == "./" {
			name = name[2:]
		}
		if name != nydusBootPath && name != "image.boot" {
			continue
		}
		if h.Size > 1<<30 {
			return nil, fmt.Errorf("%s is %d bytes", h.Name, h.Size)
		}
		return io.ReadAll(tr)
	}
}

// Index converts the image manifests of idx that Options.Platforms
// selects (nested indexes are converted too) and returns an index of the
// results, each with its source's platform (plus os.features erofs for
// EROFS images). With LinkReferrer every converted manifest's subject is
// its source manifest and the index's subject is idx; with LinkMergeIndex
// the result lists every manifest of idx first, then the converted ones,
// marked by os.features (nydus.remoteimage.v1 or erofs).
//
// Every blob of idx read is checked against the descriptor it was reached
// by, as VerifyIndex does; with LinkMergeIndex the manifests, indexes and
// configs of idx that are not converted are checked before Index returns,
// their layers when the result is stored.
func (c *Converter) Index(ctx context.Context, idx v1.ImageIndex) (v1.ImageIndex, error) {
	src := verifyIndex(idx)
	im, err := src.IndexManifest()
	if err != nil {
		return nil, err
	}
	type job struct {
		src  v1.Descriptor
		img  *convertedImage
		sub  v1.ImageIndex
		desc v1.Descriptor
	}
	var jobs []*job
	for _, d := range im.Manifests {
		switch {
		case d.MediaType.IsIndex():
			jobs = append(jobs, &job{src: d})
		case d.MediaType.IsImage():
			if d.MediaType.IsSchema1() {
				continue
			}
			ok, err := c.wanted(src, d)
			if err != nil {
				return nil, err
			}
			if ok {
				jobs = append(jobs, &job{src: d})
			}
		}
	}
	if len(jobs) == 0 {
		return nil, errors.New("convert: no manifest of the index matches the platforms asked for")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.indexEntry(ctx, src, j.src, &j.img, &j.sub, &j.desc)
			if errs[i] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	if _, err := firstError(errs); err != nil {
		return nil, err
	}

	out := &indexImpl{
		mediaType: types.OCIImageIndex,
		images:    map[v1.Hash]v1.Image{},
		indexes:   map[v1.Hash]v1.ImageIndex{},
	}
	m := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{}}
	if c.opts.Link == LinkMergeIndex {
		for _, d := range im.Manifests {
			m.Manifests = append(m.Manifests, d)
			if err := out.addChild(src, d); err != nil {
				return nil, err
			}
		}
	}
	for _, j := range jobs {
		d := j.desc
		if j.img != nil {
			out.images[d.Digest] = j.img
		} else {
			out.indexes[d.Digest] = j.sub
		}
		if c.opts.Link == LinkMergeIndex && d.Platform != nil && c.opts.Type == TypeNydus {
			d.Platform.OSFeatures = appendNew(d.Platform.OSFeatures, OSFeatureNydus)
			d.ArtifactType = ArtifactTypeNydusManifest
		}
		m.Manifests = append(m.Manifests, d)
	}
	if c.opts.Link == LinkReferrer {
		dg, err := src.Digest()
		if err != nil {
			return nil, err
		}
		size, err := src.Size()
		if err != nil {
			return nil, err
		}
		mt, err := src.MediaType()
		if err != nil {
			return nil, err
		}
		m.Subject = &v1.Descriptor{MediaType: mt, Size: size, Digest: dg}
	}
	m.Annotations = c.withAnnotations(nil)
	if out.raw, err = json.Marshal(m); err != nil {
		return nil, err
	}
	out.manifest = m
	return out, nil
}

// indexEntry converts one entry of an index.
func (c *Converter) indexEntry(ctx context.Context, idx *verifiedIndex, src v1.Descriptor, img **convertedImage, sub *v1.ImageIndex, desc *v1.Descriptor) error {
	if src.MediaType.IsIndex() {
		child, err := idx.index(src)
		if err != nil {
			return err
		}
		ci, err := c.Index(ctx, child)
		if err != nil {
			return err
		}
		*sub = ci
		d, err := partial.Descriptor(ci)
		if err != nil {
			return err
		}
		*desc = v1.Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest, Platform: clonePlatform(src.Platform)}
		return nil
	}
	child, err := idx.image(src)
	if err != nil {
		return err
	}
	ci, err := c.image(ctx, child)
	if err != nil {
		if namesBlob(err) {
			return err
		}
		return fmt.Errorf("convert: manifest %s: %w", src.Digest, err)
	}
	*img = ci
	d := ci.desc
	d.Platform = clonePlatform(src.Platform)
	if d.Platform == nil {
		cfg, err := child.ConfigFile()
		if err != nil {
			return err
		}
		d.Platform = cfg.Platform()
	}
	if c.opts.Type == TypeEROFS && d.Platform != nil {
		d.Platform.OSFeatures = appendNew(d.Platform.OSFeatures, OSFeatureEROFS)
	}
	*desc = d
	return nil
}

// wanted reports whether the image manifest d of idx is to be converted.
func (c *Converter) wanted(idx *verifiedIndex, d v1.Descriptor) (bool, error) {
	p := d.Platform
	if p == nil && len(c.opts.Platforms) > 0 {
		img, err := idx.image(d)
		if err != nil {
			return false, err
		}
		cfg, err := img.ConfigFile()
		if err != nil {
			return false, err
		}
		p = cfg.Platform()
	}
	if len(c.opts.Platforms) == 0 {
		// Attestations and other non-runnable manifests are left out.
		return p == nil || (p.OS != "unknown" && p.Architecture != "unknown"), nil
	}
	if p == nil {
		return false, nil
	}
	for _, want := range c.opts.Platforms {
		if p.Satisfies(want) {
			return true, nil
		}
	}
	return false, nil
}

func clonePlatform(p *v1.Platform) *v1.Platform {
	if p == nil {
		return nil
	}
	q := *p
	q.OSFeatures = slices.Clone(p.OSFeatures)
	q.Features = slices.Clone(p.Features)
	return &q
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// IndexOf returns an index holding img alone, with the platform its
// config gives: how to convert a single image with LinkMergeIndex.
func IndexOf(img v1.Image) (v1.ImageIndex, error) {
	img = verifyImage(img)
	raw, err := img.RawManifest()
	if err != nil {
		return nil, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	d := v1.Descriptor{MediaType: mt, Size: int64(len(raw)), Digest: sha256Hash(raw), Platform: cfg.Platform()}
	m := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{d}}
	out := &indexImpl{mediaType: types.OCIImageIndex, manifest: m, images: map[v1.Hash]v1.Image{d.Digest: img}, indexes: map[v1.Hash]v1.ImageIndex{}}
	if out.raw, err = json.Marshal(m); err != nil {
		return nil, err
	}
	return out, nil
}

// indexImpl is an index whose manifest is in memory.
type indexImpl struct {
	raw       []byte
	mediaType types.MediaType
	manifest  v1.IndexManifest
	images    map[v1.Hash]v1.Image
	indexes   map[v1.Hash]v1.ImageIndex
}

// addChild adds entry d of src, an entry copied as it is (LinkMergeIndex).
// Its manifests and configs are checked here; its layers are read, and
// checked, only when the index is stored.
func (x *indexImpl) addChild(src *verifiedIndex, d v1.Descriptor) error {
	switch {
	case d.MediaType.IsIndex():
		ci, err := src.index(d)
		if err != nil {
			return err
		}
		if err := ci.checkJSON(); err != nil {
			return err
		}
		x.indexes[d.Digest] = ci
	case d.MediaType.IsImage():
		ci, err := src.image(d)
		if err != nil {
			return err
		}
		if _, err := ci.RawConfigFile(); err != nil {
			return err
		}
		x.images[d.Digest] = ci
	}
	return nil
}

// MediaType implements v1.ImageIndex.
func (x *indexImpl) MediaType() (types.MediaType, error) { return x.mediaType, nil }

// Digest implements v1.ImageIndex.
func (x *indexImpl) Digest() (v1.Hash, error) { return sha256Hash(x.raw), nil }

// Size implements v1.ImageIndex.
func (x *indexImpl) Size() (int64, error) { return int64(len(x.raw)), nil }

// RawManifest implements v1.ImageIndex.
func (x *indexImpl) RawManifest() ([]byte, error) { return x.raw, nil }

// IndexManifest implements v1.ImageIndex.
func (x *indexImpl) IndexManifest() (*v1.IndexManifest, error) {
	var m v1.IndexManifest
	if err := json.Unmarshal(x.raw, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Image implements v1.ImageIndex.
func (x *indexImpl) Image(h v1.Hash) (v1.Image, error) {
	if img, ok := x.images[h]; ok {
		return img, nil
	}
	return nil, fmt.Errorf("convert: index has no image %s", h)
}

// ImageIndex implements v1.ImageIndex.
func (x *indexImpl) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	if ii, ok := x.indexes[h]; ok {
		return ii, nil
	}
	return nil, fmt.Errorf("convert: index has no index %s", h)
}
