//go:build linux

package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/rafs-dev/rafs/blob"
	"github.com/rafs-dev/rafs/convert"
	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

// smallImage is the three-layer stack of the Nydus tests as an image, the
// first layer gzip-compressed.
func smallImage(t testing.TB, arch string) testImage {
	l := tartest.Stack()
	l[0] = tartest.Gzip(l[0])
	return imageOf(t, arch, l...)
}

func newConverter(t testing.TB, o image.Options) *image.Converter {
	t.Helper()
	if o.TempDir == "" {
		o.TempDir = t.TempDir()
	}
	c, err := image.NewConverter(&o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func convertImage(t testing.TB, img v1.Image, o image.Options) v1.Image {
	t.Helper()
	out, err := newConverter(t, o).Image(context.Background(), img)
	if err != nil {
		t.Fatal(err)
	}
	// Layer contents are not validated: go-containerregistry skips layers
	// of media types it does not know and then miscounts the diff IDs.
	if err := validate.Image(out, validate.Fast); err != nil {
		t.Fatalf("converted image does not validate: %v", err)
	}
	return out
}

func digestOf(t testing.TB, d interface{ Digest() (v1.Hash, error) }) v1.Hash {
	t.Helper()
	h, err := d.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestImageDeterministic converts the same image with one and several
// jobs and workers: the manifests must be identical.
func TestImageDeterministic(t *testing.T) {
	src := smallImage(t, "amd64").img
	for _, typ := range []image.Type{image.TypeNydus, image.TypeEROFS} {
		oa, ob := image.Options{Type: typ, Jobs: 1}, image.Options{Type: typ, Jobs: 4}
		if typ == image.TypeNydus {
			oa.Nydus.Workers, ob.Nydus.Workers = 1, 3
		}
		a, b := convertImage(t, src, oa), convertImage(t, src, ob)
		if digestOf(t, a) != digestOf(t, b) {
			t.Errorf("%s: 1 job gives %s, 4 jobs %s", typ, digestOf(t, a), digestOf(t, b))
		}
	}
}

// TestImageNydusLayout checks the Nydus manifest and config: blob layers
// in source order, the bootstrap layer last, diff IDs and history.
func TestImageNydusLayout(t *testing.T) {
	src := smallImage(t, "amd64").img
	out := convertImage(t, src, image.Options{})
	m, err := out.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Layers) != 4 {
		t.Fatalf("%d layers, want 3 blobs and the bootstrap", len(m.Layers))
	}
	for _, l := range m.Layers[:3] {
		if l.MediaType != image.MediaTypeNydusBlob || l.Annotations[image.AnnotationNydusBlob] != "true" {
			t.Errorf("blob layer %s %v", l.MediaType, l.Annotations)
		}
	}
	last := m.Layers[3]
	if last.MediaType != types.OCILayer || last.Annotations[image.AnnotationNydusBootstrap] != "true" || last.Annotations[image.AnnotationNydusFsVersion] != "6" {
		t.Errorf("bootstrap layer %s %v", last.MediaType, last.Annotations)
	}
	if m.Annotations[image.AnnotationNydusSourceDigest] != digestOf(t, src).String() {
		t.Errorf("manifest annotations %v lack the source digest", m.Annotations)
	}
	cfg, err := out.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	srcCfg, _ := src.ConfigFile()
	if len(cfg.History) != len(srcCfg.History)+1 || cfg.History[len(cfg.History)-1].CreatedBy != "Nydus Converter" {
		t.Errorf("history %+v", cfg.History)
	}
	if cfg.Architecture != "amd64" || !slices.Equal(cfg.Config.Env, srcCfg.Config.Env) {
		t.Errorf("config not carried over: %+v", cfg)
	}
	// Each blob layer's bootstrap names the blob by its digest, and the
	// merged bootstrap uses exactly the blobs that hold chunks.
	bl, err := out.LayerByDigest(last.Digest)
	if err != nil {
		t.Fatal(err)
	}
	boot := readBoot(t, bl)
	diffID, err := bl.DiffID()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RootFS.DiffIDs[3] != diffID {
		t.Errorf("bootstrap diff ID %s, want %s", cfg.RootFS.DiffIDs[3], diffID)
	}
	for i, d := range m.Layers[:3] {
		if cfg.RootFS.DiffIDs[i] != d.Digest {
			t.Errorf("blob %d diff ID %s, want its digest %s", i, cfg.RootFS.DiffIDs[i], d.Digest)
		}
	}
	for _, bi := range boot.Blobs {
		if !slices.ContainsFunc(m.Layers, func(d v1.Descriptor) bool { return d.Digest.Hex == bi.ID }) {
			t.Errorf("merged bootstrap uses blob %s, not a layer", bi.ID)
		}
	}
	if boot.Lookup("usr/lib/big.so") != nil || boot.Lookup("etc/hostname") == nil || boot.Lookup("usr/lib/again") == nil {
		t.Errorf("merged bootstrap did not apply the whiteouts")
	}
}

func readBoot(t testing.TB, l v1.Layer) *rafs.Bootstrap {
	t.Helper()
	rc, err := l.Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var raw []byte
	tr := newTarReader(rc)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("no image/image.boot: %v", err)
		}
		if h.Name == "image/image.boot" {
			raw = readAll(t, tr)
			break
		}
	}
	b, err := rafs.Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImageEROFSLayout checks the EROFS manifest: one layer per source
// layer with the chosen media type, diff IDs equal to the digests, erofs
// in os.features, and the UUID derived from the source diff ID.
func TestImageEROFSLayout(t *testing.T) {
	src := smallImage(t, "arm64").img
	for _, mt := range []types.MediaType{image.MediaTypeEROFSLayer, image.MediaTypeEROFS} {
		out := convertImage(t, src, image.Options{Type: image.TypeEROFS, EROFSMediaType: mt})
		m, _ := out.Manifest()
		cfg, _ := out.ConfigFile()
		if len(m.Layers) != 3 || len(cfg.RootFS.DiffIDs) != 3 {
			t.Fatalf("%d layers, %d diff IDs", len(m.Layers), len(cfg.RootFS.DiffIDs))
		}
		if !slices.Contains(cfg.OSFeatures, image.OSFeatureEROFS) {
			t.Errorf("os.features %v", cfg.OSFeatures)
		}
		uuids := map[string]bool{}
		for i, l := range m.Layers {
			if l.MediaType != mt || cfg.RootFS.DiffIDs[i] != l.Digest {
				t.Errorf("layer %d: %s, diff ID %s digest %s", i, l.MediaType, cfg.RootFS.DiffIDs[i], l.Digest)
			}
			layer, _ := out.LayerByDigest(l.Digest)
			rc, _ := layer.Compressed()
			b := readAll(t, rc)
			rc.Close()
			uuid := string(b[1024+48 : 1024+64])
			uuids[uuid] = true
		}
		if len(uuids) != 3 {
			t.Errorf("%d distinct UUIDs for 3 layers", len(uuids))
		}
	}
}

// TestImageEROFSTarIndex converts to EROFS layers that are tar indexes
// with their tars appended: each reads alone, with chunk-based files and
// 512-byte blocks, and ends with the source layer's uncompressed tar.
func TestImageEROFSTarIndex(t *testing.T) {
	src := smallImage(t, "arm64").img
	out := convertImage(t, src, image.Options{Type: image.TypeEROFS, EROFSTarIndex: true})
	plain := convertImage(t, src, image.Options{Type: image.TypeEROFS})
	m, _ := out.Manifest()
	pm, _ := plain.Manifest()
	srcLayers, _ := src.Layers()
	if len(m.Layers) != len(srcLayers) {
		t.Fatalf("%d layers, want %d", len(m.Layers), len(srcLayers))
	}
	for i, l := range m.Layers {
		if l.MediaType != image.MediaTypeEROFSLayer || l.Digest == pm.Layers[i].Digest {
			t.Errorf("layer %d: %s %s: want an EROFS layer unlike the plain conversion", i, l.MediaType, l.Digest)
		}
		layer, _ := out.LayerByDigest(l.Digest)
		rc, _ := layer.Compressed()
		b := readAll(t, rc)
		rc.Close()
		urc, _ := srcLayers[i].Uncompressed()
		tarData := readAll(t, urc)
		urc.Close()
		if !bytes.HasSuffix(b, tarData) {
			t.Errorf("layer %d: does not end with the source's tar", i)
		}
		fsys, err := erofs.Open(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		if sb := fsys.Superblock(); sb.BlockSize != 512 || len(sb.Devices) != 1 {
			t.Errorf("layer %d: block size %d, %d devices", i, sb.BlockSize, len(sb.Devices))
		}
		regular := 0
		err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.Type().IsRegular() {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			if st := fi.Sys().(*erofs.Stat); fi.Size() > 0 && st.Layout != erofs.LayoutChunkBased {
				t.Errorf("layer %d: %s: layout %d", i, p, st.Layout)
			}
			_, err = fs.ReadFile(fsys, p)
			regular++
			return err
		})
		if err != nil || regular == 0 {
			t.Errorf("layer %d: %d regular files, %v", i, regular, err)
		}
	}
}

// TestImageLinks checks LinkReferrer (subjects) and LinkMergeIndex (one
// index, sources first) and platform selection.
func TestImageLinks(t *testing.T) {
	amd, arm := smallImage(t, "amd64").img, smallImage(t, "arm64").img
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	ctx := context.Background()

	ref := convertImage(t, amd, image.Options{Link: image.LinkReferrer})
	m, _ := ref.Manifest()
	if m.Subject == nil || m.Subject.Digest != digestOf(t, amd) {
		t.Errorf("subject %+v, want %s", m.Subject, digestOf(t, amd))
	}

	ci, err := newConverter(t, image.Options{Type: image.TypeEROFS, Link: image.LinkReferrer}).Index(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := ci.IndexManifest()
	if im.Subject == nil || im.Subject.Digest != digestOf(t, idx) || len(im.Manifests) != 2 {
		t.Errorf("index subject %+v, %d manifests", im.Subject, len(im.Manifests))
	}
	for i, d := range im.Manifests {
		child, err := ci.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cm, _ := child.Manifest()
		srcIdx, _ := idx.IndexManifest()
		if cm.Subject == nil || cm.Subject.Digest != srcIdx.Manifests[i].Digest {
			t.Errorf("manifest %d subject %+v", i, cm.Subject)
		}
		if !slices.Contains(d.Platform.OSFeatures, image.OSFeatureEROFS) {
			t.Errorf("manifest %d platform %+v lacks erofs", i, d.Platform)
		}
	}
	if err := validate.Index(ci, validate.Fast); err != nil {
		t.Errorf("converted index does not validate: %v", err)
	}

	merged, err := newConverter(t, image.Options{Link: image.LinkMergeIndex, Platforms: []v1.Platform{{OS: "linux", Architecture: "arm64"}}}).Index(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	mm, _ := merged.IndexManifest()
	srcIdx, _ := idx.IndexManifest()
	if len(mm.Manifests) != 3 || mm.Manifests[0].Digest != srcIdx.Manifests[0].Digest || mm.Manifests[1].Digest != srcIdx.Manifests[1].Digest {
		t.Fatalf("merged index %+v", mm.Manifests)
	}
	p := mm.Manifests[2].Platform
	if p == nil || p.Architecture != "arm64" || !slices.Contains(p.OSFeatures, image.OSFeatureNydus) || mm.Manifests[2].ArtifactType != image.ArtifactTypeNydusManifest {
		t.Errorf("converted entry %+v", mm.Manifests[2])
	}
	// (validate.Index is not used on the merged index: it rejects the
	// source manifests go-containerregistry's mutate made, and the index
	// platform's os.features, which nydusify also sets in the index only.)

	if _, err := newConverter(t, image.Options{Platforms: []v1.Platform{{OS: "linux", Architecture: "s390x"}}}).Index(ctx, idx); err == nil {
		t.Error("no platform matched, but no error")
	}
}

// TestImageCache converts an image, keeps the cache as an image, and
// converts again with a cache read from it: nothing is converted and the
// manifest is the same.
func TestImageCache(t *testing.T) {
	src := smallImage(t, "amd64").img
	ctx := context.Background()
	for _, typ := range []image.Type{image.TypeNydus, image.TypeEROFS} {
		cache, _ := image.NewCache(nil)
		c1 := newConverter(t, image.Options{Type: typ, Cache: cache})
		first, err := c1.Image(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		if st := c1.Stats(); st.Layers != 3 || st.Cached != 0 {
			t.Errorf("%s first: %+v", typ, st)
		}
		ci, err := cache.Image()
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(ci, validate.Fast); err != nil {
			t.Fatalf("cache image: %v", err)
		}
		again, err := image.NewCache(ci)
		if err != nil {
			t.Fatal(err)
		}
		if again.Len() != 3 {
			t.Errorf("cache read back holds %d layers", again.Len())
		}
		c2 := newConverter(t, image.Options{Type: typ, Cache: again})
		second, err := c2.Image(ctx, src)
		if err != nil {
			t.Fatal(err)
		}
		if st := c2.Stats(); st.Layers != 0 || st.Cached != 3 {
			t.Errorf("%s second: %+v", typ, st)
		}
		if digestOf(t, first) != digestOf(t, second) {
			t.Errorf("%s: cached conversion gives %s, first %s", typ, digestOf(t, second), digestOf(t, first))
		}
		// Other options do not hit.
		o3 := image.Options{Type: typ, Cache: again}
		if typ == image.TypeNydus {
			o3.Nydus.ChunkSize = 64 << 10
		} else {
			o3.EROFS.Whiteouts = convert.WhiteoutKeep
		}
		c3 := newConverter(t, o3)
		if _, err := c3.Image(ctx, src); err != nil {
			t.Fatal(err)
		}
		if st := c3.Stats(); st.Cached != 0 {
			t.Errorf("%s with other options: %+v", typ, st)
		}
	}
}

// TestImageChunkDict converts an image against the chunk dictionary of
// another Nydus image: the shared chunks stay in the dictionary's blob,
// which the new manifest lists.
func TestImageChunkDict(t *testing.T) {
	layers := tartest.Stack()
	base := imageOf(t, "amd64", layers[0])
	dictImg := convertImage(t, base.img, image.Options{})
	dict, err := image.LoadChunkDict(dictImg)
	if err != nil {
		t.Fatal(err)
	}
	// A new image whose first layer repeats the dictionary's files.
	other := imageOf(t, "amd64", layers[0], layers[1])
	out := convertImage(t, other.img, image.Options{ChunkDict: dict})
	m, _ := out.Manifest()
	dm, _ := dictImg.Manifest()
	if len(m.Layers) != 4 {
		t.Fatalf("%d layers, want 2 blobs, the dictionary blob and the bootstrap", len(m.Layers))
	}
	if m.Layers[2].Digest != dm.Layers[0].Digest {
		t.Errorf("layer 2 is %s, want the dictionary's blob %s", m.Layers[2].Digest, dm.Layers[0].Digest)
	}
	own, _ := out.LayerByDigest(m.Layers[0].Digest)
	rc, _ := own.Compressed()
	data := readAll(t, rc)
	br, err := blob.Open(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if n := br.ChunkCount(); n != 0 {
		t.Errorf("the new blob stores %d chunks, want none (all in the dictionary)", n)
	}
	cfg, _ := out.ConfigFile()
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		t.Errorf("%d diff IDs for %d layers", len(cfg.RootFS.DiffIDs), len(m.Layers))
	}
	if _, err := image.LoadChunkDict(base.img); err == nil {
		t.Error("a plain image was accepted as a chunk dictionary")
	}
}

// TestImageErrors: a corrupt layer fails naming it, an already converted
// image is refused, and Close removes every temporary file.
func TestImageErrors(t *testing.T) {
	good := tartest.Stack()
	bad := good[1][:len(good[1])/2+100]
	src := imageOf(t, "amd64", good[0], bad)
	for _, typ := range []image.Type{image.TypeNydus, image.TypeEROFS} {
		tmp := t.TempDir()
		c, err := image.NewConverter(&image.Options{Type: typ, TempDir: tmp})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Image(context.Background(), src.img)
		if err == nil || !strings.Contains(err.Error(), "layer 1") {
			t.Errorf("%s: corrupt layer 1 gave %v", typ, err)
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("%s: %d temporary files left after Close", typ, len(ents))
		}
	}
	converted := convertImage(t, smallImage(t, "amd64").img, image.Options{})
	if _, err := newConverter(t, image.Options{}).Image(context.Background(), converted); err == nil || !strings.Contains(err.Error(), "not a tar layer") {
		t.Errorf("converting a Nydus image again: %v", err)
	}
	if _, err := image.NewConverter(&image.Options{Type: "squashfs"}); err == nil {
		t.Error("unknown type accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := newConverter(t, image.Options{}).Image(ctx, smallImage(t, "amd64").img); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
}

func newTarReader(r io.Reader) *tar.Reader { return tar.NewReader(r) }

func readAll(t testing.TB, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestImageAnnotations checks Options.Annotations: added to every
// converted manifest and index, the conversion's own annotations kept,
// and nothing changed without them.
func TestImageAnnotations(t *testing.T) {
	amd, arm := smallImage(t, "amd64").img, smallImage(t, "arm64").img
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	idx = mutate.AppendManifests(idx,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	extra := map[string]string{"dev.rafs.test": "x", image.AnnotationNydusFsVersion: "not this"}
	plain := convertImage(t, amd, image.Options{})
	annotated := convertImage(t, amd, image.Options{Annotations: extra})
	pm, _ := plain.Manifest()
	am, _ := annotated.Manifest()
	if am.Annotations["dev.rafs.test"] != "x" || am.Annotations[image.AnnotationNydusFsVersion] != pm.Annotations[image.AnnotationNydusFsVersion] {
		t.Errorf("annotated manifest's annotations %v (plain %v)", am.Annotations, pm.Annotations)
	}
	if _, ok := pm.Annotations["dev.rafs.test"]; ok || len(pm.Annotations) != len(am.Annotations)-1 {
		t.Errorf("plain manifest's annotations %v", pm.Annotations)
	}
	if digestOf(t, plain) == digestOf(t, annotated) {
		t.Error("the annotations do not change the manifest")
	}
	// Erofs images have no annotations of their own: nil stays nil.
	em, _ := convertImage(t, amd, image.Options{Type: image.TypeEROFS}).Manifest()
	if em.Annotations != nil {
		t.Errorf("EROFS manifest without Options.Annotations has %v", em.Annotations)
	}

	ctx := context.Background()
	ci, err := newConverter(t, image.Options{Type: image.TypeEROFS, Annotations: extra}).Index(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := ci.IndexManifest()
	if im.Annotations["dev.rafs.test"] != "x" {
		t.Errorf("index annotations %v", im.Annotations)
	}
	for _, d := range im.Manifests {
		child, err := ci.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cm, _ := child.Manifest()
		if cm.Annotations["dev.rafs.test"] != "x" {
			t.Errorf("manifest %s annotations %v", d.Digest, cm.Annotations)
		}
	}
	pi, err := newConverter(t, image.Options{Type: image.TypeEROFS}).Index(ctx, idx)
	if err != nil {
		t.Fatal(err)
	}
	if pim, _ := pi.IndexManifest(); pim.Annotations != nil {
		t.Errorf("index without Options.Annotations has %v", pim.Annotations)
	}
}
