//go:build linux

package image_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/match"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rafs-dev/rafs/convert/image"
)

// verifyTar returns a tar of regular files given as name, content pairs.
func verifyTar(t testing.TB, files ...string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for i := 0; i+1 < len(files); i += 2 {
		h := &tar.Header{Name: files[i], Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(files[i+1])), ModTime: time.Unix(1700000000, 0)}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(files[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// storedGzip gzips b in stored (uncompressed) deflate blocks, so that its
// size depends only on len(b): another tar of the same length gives a
// different valid gzip stream of the same size.
func storedGzip(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := gzip.NewWriterLevel(&out, gzip.NoCompression)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// The fixture's layers and the stand-ins swapped in for layer 1.
func verifyLayer0(t testing.TB) []byte {
	return storedGzip(t, verifyTar(t, "etc/hostname", "base\n", "etc/motd", "hello"))
}
func verifyLayer1(t testing.TB) []byte {
	return storedGzip(t, verifyTar(t, "app/main", "print('hi')\n"))
}
func sameSizeLayer1(t testing.TB) []byte {
	return storedGzip(t, verifyTar(t, "app/main", "print('ho')\n"))
}
func otherSizeLayer1(t testing.TB) []byte {
	return storedGzip(t, verifyTar(t, "app/main", "print('hi')\n", "app/extra", "more"))
}

// vlayout is an OCI layout that the tests break by editing its files.
type vlayout struct {
	t   *testing.T
	dir string
}

// newVLayout writes an OCI layout whose index.json holds one entry tagged
// src: the two-layer fixture image for amd64, or with nested an index of
// it and an arm64 image whose second layer differs.
func newVLayout(t *testing.T, nested bool) *vlayout {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "src")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	tag := layout.WithAnnotations(map[string]string{image.AnnotationImageRefName: "src"})
	amd := imageOf(t, "amd64", verifyLayer0(t), verifyLayer1(t)).img
	if !nested {
		err = p.AppendImage(amd, tag)
	} else {
		arm := imageOf(t, "arm64", verifyLayer0(t), storedGzip(t, verifyTar(t, "app/arm", "arm64 only"))).img
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		idx = mutate.AppendManifests(idx,
			mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
			mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
		)
		err = p.AppendIndex(idx, tag)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &vlayout{t: t, dir: dir}
}

func (l *vlayout) path(h v1.Hash) string { return filepath.Join(l.dir, "blobs", h.Algorithm, h.Hex) }

func (l *vlayout) read(h v1.Hash) []byte {
	l.t.Helper()
	b, err := os.ReadFile(l.path(h))
	if err != nil {
		l.t.Fatal(err)
	}
	return b
}

// replace overwrites blob h with b (its digest is then wrong).
func (l *vlayout) replace(h v1.Hash, b []byte) {
	l.t.Helper()
	if err := os.WriteFile(l.path(h), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// put stores b as a blob under its own digest.
func (l *vlayout) put(b []byte) v1.Descriptor {
	l.t.Helper()
	d := v1.Descriptor{Digest: sha256Of(b), Size: int64(len(b))}
	if err := os.WriteFile(l.path(d.Digest), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
	return d
}

func (l *vlayout) indexJSON() *v1.IndexManifest {
	l.t.Helper()
	b, err := os.ReadFile(filepath.Join(l.dir, "index.json"))
	if err != nil {
		l.t.Fatal(err)
	}
	im, err := v1.ParseIndexManifest(bytes.NewReader(b))
	if err != nil {
		l.t.Fatal(err)
	}
	return im
}

func (l *vlayout) setIndexJSON(im *v1.IndexManifest) {
	l.t.Helper()
	b, err := json.Marshal(im)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.dir, "index.json"), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// entry returns the descriptor of index.json's entry.
func (l *vlayout) entry() v1.Descriptor { return l.indexJSON().Manifests[0] }

// setEntry points index.json's entry at d's digest and size.
func (l *vlayout) setEntry(d v1.Descriptor) {
	im := l.indexJSON()
	im.Manifests[0].Digest, im.Manifests[0].Size = d.Digest, d.Size
	l.setIndexJSON(im)
}

// manifest returns the image manifest index.json lists.
func (l *vlayout) manifest() *v1.Manifest {
	l.t.Helper()
	m, err := v1.ParseManifest(bytes.NewReader(l.read(l.entry().Digest)))
	if err != nil {
		l.t.Fatal(err)
	}
	return m
}

// reseal stores m and points index.json at it, so that only what the
// test changed in m is wrong.
func (l *vlayout) reseal(m *v1.Manifest) v1.Hash {
	l.t.Helper()
	b, err := json.Marshal(m)
	if err != nil {
		l.t.Fatal(err)
	}
	d := l.put(b)
	l.setEntry(d)
	return d.Digest
}

// editConfig rewrites the config of index.json's image and reseals its
// manifest.
func (l *vlayout) editConfig(fn func(*v1.ConfigFile)) v1.Hash {
	l.t.Helper()
	m := l.manifest()
	cfg, err := v1.ParseConfigFile(bytes.NewReader(l.read(m.Config.Digest)))
	if err != nil {
		l.t.Fatal(err)
	}
	fn(cfg)
	b, err := json.Marshal(cfg)
	if err != nil {
		l.t.Fatal(err)
	}
	d := l.put(b)
	m.Config.Digest, m.Config.Size = d.Digest, d.Size
	return l.reseal(m)
}

// nestedIndex returns the nested index's manifest (nested layouts).
func (l *vlayout) nestedIndex() *v1.IndexManifest {
	l.t.Helper()
	im, err := v1.ParseIndexManifest(bytes.NewReader(l.read(l.entry().Digest)))
	if err != nil {
		l.t.Fatal(err)
	}
	return im
}

// blobs lists the layout's blob files.
func (l *vlayout) blobs() []string {
	var out []string
	filepath.WalkDir(filepath.Join(l.dir, "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func sha256Of(b []byte) v1.Hash { return v1.Hash{Algorithm: "sha256", Hex: sha256Hex(b)} }

// swapJSON returns b with the first from replaced by to, of the same
// length, so that b keeps its size.
func swapJSON(t *testing.T, b []byte, from, to string) []byte {
	t.Helper()
	if len(from) != len(to) || !bytes.Contains(b, []byte(from)) {
		t.Fatalf("cannot replace %q with %q in %s", from, to, b)
	}
	return bytes.Replace(b, []byte(from), []byte(to), 1)
}

// pushLog is an in-memory registry that records completed blob uploads
// and manifest pushes.
type pushLog struct {
	host      string
	mu        sync.Mutex
	blobs     []string // digests of completed uploads
	manifests []string // references pushed to
}

// state returns the uploads completed and the manifests pushed.
func (p *pushLog) state() (blobs, manifests []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.blobs), slices.Clone(p.manifests)
}

func startPushLog(t *testing.T) *pushLog {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	pl := &pushLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			pl.mu.Lock()
			if dg := r.URL.Query().Get("digest"); strings.Contains(r.URL.Path, "/blobs/uploads/") && dg != "" {
				pl.blobs = append(pl.blobs, dg)
			}
			if i := strings.Index(r.URL.Path, "/manifests/"); i >= 0 {
				pl.manifests = append(pl.manifests, r.URL.Path[i+len("/manifests/"):])
			}
			pl.mu.Unlock()
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	pl.host = strings.TrimPrefix(srv.URL, "http://")
	return pl
}

// verifyResult is what convertLayout did.
type verifyResult struct {
	conv, push, write error
	digest            v1.Hash
	reg               *pushLog
	dst               *vlayout // the destination layout (with one image before)
	dstIndex          []byte   // its index.json before
	dstBlobs          []string // its blobs before
}

// convertLayout converts the entry of the layout at dir as rafs convert
// does: the layout's index verified (VerifyIndex), each layer pushed to
// an in-memory registry while it is converted; after a successful
// conversion the result is pushed there (tag conv) and stored in a
// destination layout that already holds an image.
func convertLayout(t *testing.T, dir string, o image.Options) *verifyResult {
	t.Helper()
	ctx := context.Background()
	res := &verifyResult{reg: startPushLog(t)}
	dstDir := filepath.Join(t.TempDir(), "dst")
	dp, err := layout.Write(dstDir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	keep := imageOf(t, "amd64", verifyLayer0(t)).img
	if err := dp.AppendImage(keep, layout.WithAnnotations(map[string]string{image.AnnotationImageRefName: "keep"})); err != nil {
		t.Fatal(err)
	}
	res.dst = &vlayout{t: t, dir: dstDir}
	res.dstIndex, _ = os.ReadFile(filepath.Join(dstDir, "index.json"))
	res.dstBlobs = res.dst.blobs()

	ref, err := name.ParseReference(res.reg.host+"/out:conv", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	pusher, err := remote.NewPusher()
	if err != nil {
		t.Fatal(err)
	}
	o.Push = image.RemotePush(pusher, ref.Context())
	conv := newConverter(t, o)

	var out interface {
		remote.Taggable
		Digest() (v1.Hash, error)
	}
	convertEntry := func() error {
		root, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			return err
		}
		root = image.VerifyIndex(root)
		im, err := root.IndexManifest()
		if err != nil {
			return err
		}
		d := im.Manifests[0]
		if d.MediaType.IsIndex() {
			idx, err := root.ImageIndex(d.Digest)
			if err != nil {
				return err
			}
			ci, err := conv.Index(ctx, idx)
			out = ci
			return err
		}
		img, err := root.Image(d.Digest)
		if err != nil {
			return err
		}
		if o.Link == image.LinkMergeIndex {
			idx, err := image.IndexOf(img)
			if err != nil {
				return err
			}
			ci, err := conv.Index(ctx, idx)
			out = ci
			return err
		}
		ci, err := conv.Image(ctx, img)
		out = ci
		return err
	}
	if res.conv = convertEntry(); res.conv != nil {
		return res
	}
	if res.digest, err = out.Digest(); err != nil {
		t.Fatal(err)
	}
	res.push = pusher.Push(ctx, ref, out)
	m := match.Annotation(image.AnnotationImageRefName, "conv")
	tag := layout.WithAnnotations(map[string]string{image.AnnotationImageRefName: "conv"})
	switch x := out.(type) {
	case v1.ImageIndex:
		res.write = dp.ReplaceIndex(x, m, tag)
	case v1.Image:
		res.write = dp.ReplaceImage(x, m, tag)
	}
	return res
}

// checkNothingStored checks that a failed conversion pushed no manifest,
// completed no upload but of the allowed blobs, and left the destination
// layout as it was.
func (r *verifyResult) checkNothingStored(t *testing.T, allowed map[string]bool) {
	t.Helper()
	blobs, manifests := r.reg.state()
	if len(manifests) != 0 {
		t.Errorf("manifests pushed: %v", manifests)
	}
	for _, b := range blobs {
		if !allowed[b] {
			t.Errorf("upload of %s completed, which no valid conversion makes", b)
		}
	}
	if after, _ := os.ReadFile(filepath.Join(r.dst.dir, "index.json")); !bytes.Equal(after, r.dstIndex) {
		t.Errorf("destination index.json changed:\n%s", after)
	}
	if after := r.dst.blobs(); !slices.Equal(after, r.dstBlobs) {
		t.Errorf("destination blobs changed: %d before, %d after", len(r.dstBlobs), len(after))
	}
}

// validLayers returns the digests of the layers a valid conversion of the
// fixture gives with o: the uploads a failed one may complete.
func validLayers(t *testing.T, nested bool, o image.Options) map[string]bool {
	t.Helper()
	r := convertLayout(t, newVLayout(t, nested).dir, o)
	if r.conv != nil || r.push != nil || r.write != nil {
		t.Fatalf("valid layout: %v, %v, %v", r.conv, r.push, r.write)
	}
	blobs, _ := r.reg.state()
	return setOf(blobs)
}

func setOf(s []string) map[string]bool {
	m := map[string]bool{}
	for _, x := range s {
		m[x] = true
	}
	return m
}

// TestImageVerifyValidLayout converts the fixture layout: it converts to
// exactly what the same image converts to when it is not read from a
// layout, is pushed and stored.
func TestImageVerifyValidLayout(t *testing.T) {
	for _, nested := range []bool{false, true} {
		for _, typ := range []image.Type{image.TypeNydus, image.TypeEROFS} {
			r := convertLayout(t, newVLayout(t, nested).dir, image.Options{Type: typ})
			if r.conv != nil || r.push != nil || r.write != nil {
				t.Fatalf("%s nested=%t: %v, %v, %v", typ, nested, r.conv, r.push, r.write)
			}
			if _, manifests := r.reg.state(); len(manifests) == 0 {
				t.Errorf("%s nested=%t: nothing pushed", typ, nested)
			}
			if nested {
				continue
			}
			direct := convertImage(t, imageOf(t, "amd64", verifyLayer0(t), verifyLayer1(t)).img, image.Options{Type: typ})
			if digestOf(t, direct) != r.digest {
				t.Errorf("%s: the layout converts to %s, the image itself to %s", typ, r.digest, digestOf(t, direct))
			}
		}
	}
}

// verifyCase is a broken layout: brk breaks a fresh fixture and returns a
// fragment the error must contain.
type verifyCase struct {
	name   string
	nested bool
	brk    func(l *vlayout) string
	is     error // errors.Is target, if any
	// bothTypes runs the case for TypeEROFS too (cases of layer bytes).
	bothTypes bool
	opts      image.Options
}

func layerName(l *vlayout, i int) string {
	m := l.manifest()
	return "layer " + strconv.Itoa(i) + " " + m.Layers[i].Digest.String() + " of manifest " + l.entry().Digest.String()
}

func verifyCases() []verifyCase {
	return []verifyCase{
		{name: "layer swapped, same size", bothTypes: true, is: image.ErrDigestMismatch, brk: func(l *vlayout) string {
			m := l.manifest()
			if int64(len(sameSizeLayer1(l.t))) != m.Layers[1].Size {
				l.t.Fatal("the stand-in layer has another size")
			}
			l.replace(m.Layers[1].Digest, sameSizeLayer1(l.t))
			return layerName(l, 1) + ": digest mismatch: read " + sha256Of(sameSizeLayer1(l.t)).String()
		}},
		{name: "layer swapped for xz data", bothTypes: true, is: image.ErrDigestMismatch, brk: func(l *vlayout) string {
			d := l.manifest().Layers[1]
			xz := make([]byte, d.Size)
			copy(xz, "\xfd7zXZ\x00")
			l.replace(d.Digest, xz)
			return layerName(l, 1) + ": digest mismatch"
		}},
		{name: "layer swapped, other size", bothTypes: true, is: image.ErrSizeMismatch, brk: func(l *vlayout) string {
			l.replace(l.manifest().Layers[1].Digest, otherSizeLayer1(l.t))
			return layerName(l, 1) + ": size mismatch: more than"
		}},
		{name: "layer truncated", bothTypes: true, is: image.ErrSizeMismatch, brk: func(l *vlayout) string {
			d := l.manifest().Layers[1]
			l.replace(d.Digest, l.read(d.Digest)[:d.Size/2])
			return layerName(l, 1) + ": size mismatch: " + itoa(d.Size/2) + " bytes, want " + itoa(d.Size)
		}},
		{name: "layer with bytes appended", bothTypes: true, is: image.ErrSizeMismatch, brk: func(l *vlayout) string {
			d := l.manifest().Layers[1]
			l.replace(d.Digest, append(l.read(d.Digest), "trailing junk"...))
			return layerName(l, 1) + ": size mismatch: more than " + itoa(d.Size) + " bytes"
		}},
		{name: "layer descriptor size too large", bothTypes: true, is: image.ErrSizeMismatch, brk: func(l *vlayout) string {
			m := l.manifest()
			m.Layers[1].Size += 3
			l.reseal(m)
			return layerName(l, 1) + ": size mismatch: " + itoa(m.Layers[1].Size-3) + " bytes, want " + itoa(m.Layers[1].Size)
		}},
		{name: "layer descriptor size too small", bothTypes: true, is: image.ErrSizeMismatch, brk: func(l *vlayout) string {
			m := l.manifest()
			m.Layers[1].Size -= 3
			l.reseal(m)
			return layerName(l, 1) + ": size mismatch: more than"
		}},
		{name: "layer missing", bothTypes: true, is: fs.ErrNotExist, brk: func(l *vlayout) string {
			os.Remove(l.path(l.manifest().Layers[1].Digest))
			return layerName(l, 1)
		}},
		{name: "layer media type unknown", brk: func(l *vlayout) string {
			m := l.manifest()
			m.Layers[1].MediaType = "application/vnd.example.unknown"
			l.reseal(m)
			return "not a tar layer"
		}},
		{name: "config altered", is: image.ErrDigestMismatch, brk: func(l *vlayout) string {
			m := l.manifest()
			l.replace(m.Config.Digest, swapJSON(l.t, l.read(m.Config.Digest), `"amd64"`, `"arm64"`))
			return "config " + m.Config.Digest.String() + " of manifest " + l.entry().Digest.String() + ": digest mismatch"
		}},
		{name: "config size wrong", is: image.ErrSizeMismatch, brk: func(l *vlayout) string {
			m := l.manifest()
			m.Config.Size++
			l.reseal(m)
			return "config " + m.Config.Digest.String() + " of manifest " + l.entry().Digest.String() + ": size mismatch"
		}},
		{name: "config missing", is: fs.ErrNotExist, brk: func(l *vlayout) string {
			m := l.manifest()
			os.Remove(l.path(m.Config.Digest))
			return "config " + m.Config.Digest.String()
		}},
		{name: "diff ID not the layer's", is: image.ErrDigestMismatch, bothTypes: true, brk: func(l *vlayout) string {
			l.editConfig(func(c *v1.ConfigFile) { c.RootFS.DiffIDs[1] = sha256Of([]byte("another layer")) })
			return "uncompressed " + layerName(l, 1) + ": digest mismatch"
		}},
		{name: "diff IDs missing", brk: func(l *vlayout) string {
			l.editConfig(func(c *v1.ConfigFile) { c.RootFS.DiffIDs = c.RootFS.DiffIDs[:1] })
			return "1 diff IDs for 2 layers"
		}},
		{name: "manifest layers reordered", is: image.ErrDigestMismatch, brk: func(l *vlayout) string {
			d := l.entry()
			m := l.manifest()
			b := l.read(d.Digest)
			a, c := m.Layers[0].Digest.String(), m.Layers[1].Digest.String()
			b = swapJSON(l.t, b, a, "sha256:"+strings.Repeat("x", 64))
			b = swapJSON(l.t, b, c, a)
			b = swapJSON(l.t, b, "sha256:"+strings.Repeat("x", 64), c)
			l.replace(d.Digest, b)
			return "manifest " + d.Digest.String() + ": digest mismatch: read " + sha256Of(b).String()
		}},
		{name: "manifest annotated", is: image.ErrSizeMismatch, brk: func(l *vlayout) string {
			d := l.entry()
			b := l.read(d.Digest)
			b = append(b[:len(b)-1], `,"annotations":{"x":"y"}}`...)
			l.replace(d.Digest, b)
			return "manifest " + d.Digest.String() + ": size mismatch: " + itoa(int64(len(b))) + " bytes, want " + itoa(d.Size)
		}},
		{name: "manifest size wrong in index.json", is: image.ErrSizeMismatch, brk: func(l *vlayout) string {
			d := l.entry()
			d.Size--
			l.setEntry(d)
			return "manifest " + d.Digest.String() + ": size mismatch"
		}},
		{name: "manifest missing", is: fs.ErrNotExist, brk: func(l *vlayout) string {
			d := l.entry()
			os.Remove(l.path(d.Digest))
			return "manifest " + d.Digest.String()
		}},
		{name: "manifest not JSON", brk: func(l *vlayout) string {
			l.setEntry(l.put([]byte(`{"schemaVersion": 2, "layers": [}`)))
			return "manifest " + l.entry().Digest.String() + ": invalid character"
		}},
		{name: "manifest media type not its descriptor's", brk: func(l *vlayout) string {
			m := l.manifest()
			m.MediaType = types.DockerManifestSchema2
			l.reseal(m)
			return "manifest " + l.entry().Digest.String() + ": media type " + string(types.DockerManifestSchema2)
		}},
		{name: "nested index altered", nested: true, is: image.ErrDigestMismatch, brk: func(l *vlayout) string {
			d := l.entry()
			b := swapJSON(l.t, l.read(d.Digest), `"amd64"`, `"arm64"`)
			l.replace(d.Digest, b)
			return "index " + d.Digest.String() + ": digest mismatch"
		}},
		{name: "nested index's manifest altered", nested: true, is: image.ErrDigestMismatch, brk: func(l *vlayout) string {
			d := l.nestedIndex().Manifests[0]
			l.replace(d.Digest, swapJSON(l.t, l.read(d.Digest), `"schemaVersion":2`, `"schemaVersion":3`))
			return "manifest " + d.Digest.String() + " of index " + l.entry().Digest.String() + ": digest mismatch"
		}},
		{name: "nested index's manifest size wrong", nested: true, is: image.ErrSizeMismatch, brk: func(l *vlayout) string {
			ni := l.nestedIndex()
			ni.Manifests[1].Size += 10
			b, _ := json.Marshal(ni)
			l.setEntry(l.put(b))
			return "manifest " + ni.Manifests[1].Digest.String() + " of index " + l.entry().Digest.String() + ": size mismatch"
		}},
		{name: "nested index's manifest missing", nested: true, is: fs.ErrNotExist, brk: func(l *vlayout) string {
			d := l.nestedIndex().Manifests[1]
			os.Remove(l.path(d.Digest))
			return "manifest " + d.Digest.String() + " of index " + l.entry().Digest.String()
		}},
		{name: "referrer of a swapped layer", bothTypes: true, is: image.ErrDigestMismatch, opts: image.Options{Link: image.LinkReferrer}, brk: func(l *vlayout) string {
			l.replace(l.manifest().Layers[1].Digest, sameSizeLayer1(l.t))
			return layerName(l, 1) + ": digest mismatch"
		}},
		{name: "merge index, unselected manifest's config altered", nested: true, is: image.ErrDigestMismatch,
			opts: image.Options{Link: image.LinkMergeIndex, Platforms: []v1.Platform{{OS: "linux", Architecture: "arm64"}}},
			brk: func(l *vlayout) string {
				d := l.nestedIndex().Manifests[0]
				m, _ := v1.ParseManifest(bytes.NewReader(l.read(d.Digest)))
				l.replace(m.Config.Digest, swapJSON(l.t, l.read(m.Config.Digest), `"amd64"`, `"arm64"`))
				return "config " + m.Config.Digest.String() + " of manifest " + d.Digest.String() + ": digest mismatch"
			}},
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestImageVerifyBrokenLayouts converts broken layouts: each fails with an
// error naming the blob (errors.Is its kind and ErrBlobMismatch), and
// nothing is pushed or stored.
func TestImageVerifyBrokenLayouts(t *testing.T) {
	allowed := map[bool]map[image.Type]map[string]bool{}
	for _, nested := range []bool{false, true} {
		allowed[nested] = map[image.Type]map[string]bool{}
		for _, typ := range []image.Type{image.TypeNydus, image.TypeEROFS} {
			allowed[nested][typ] = validLayers(t, nested, image.Options{Type: typ})
		}
	}
	for _, tc := range verifyCases() {
		types := []image.Type{image.TypeNydus}
		if tc.bothTypes {
			types = append(types, image.TypeEROFS)
		}
		for _, typ := range types {
			t.Run(tc.name+"/"+string(typ), func(t *testing.T) {
				l := newVLayout(t, tc.nested)
				want := tc.brk(l)
				o := tc.opts
				o.Type = typ
				r := convertLayout(t, l.dir, o)
				if r.conv == nil {
					t.Fatalf("converted to %s (push: %v, write: %v), want an error with %q", r.digest, r.push, r.write, want)
				}
				if !strings.Contains(r.conv.Error(), want) {
					t.Errorf("error %q\nwant %q in it", r.conv, want)
				}
				if tc.is != nil {
					if !errors.Is(r.conv, tc.is) {
						t.Errorf("error %q is not %v", r.conv, tc.is)
					}
					if tc.is != fs.ErrNotExist && !errors.Is(r.conv, image.ErrBlobMismatch) {
						t.Errorf("error %q is not ErrBlobMismatch", r.conv)
					}
				}
				r.checkNothingStored(t, allowed[tc.nested][typ])
			})
		}
	}
}

// layoutOf writes img to a new layout and returns it with the image's
// entry opened through VerifyIndex (what rafs convert reads) and as the
// layout package gives it.
func layoutOf(t *testing.T, img v1.Image) (*vlayout, func() (verified, plain v1.Image)) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	l := &vlayout{t: t, dir: dir}
	return l, func() (v1.Image, v1.Image) {
		t.Helper()
		root, err := layout.ImageIndexFromPath(dir)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := root.Image(l.entry().Digest)
		if err != nil {
			t.Fatal(err)
		}
		verified, err := image.VerifyIndex(root).Image(l.entry().Digest)
		if err != nil {
			t.Fatal(err)
		}
		return verified, plain
	}
}

// storeConverted pushes out to a new in-memory registry and stores it in
// a layout that already holds an image, and returns the errors; it checks
// that no manifest was pushed and index.json did not change when both
// fail.
func storeConverted(t *testing.T, out v1.Image) (push, write error) {
	t.Helper()
	reg := startPushLog(t)
	ref, err := name.ParseReference(reg.host+"/out:conv", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	push = remote.Write(ref, out)
	dst, _ := layoutOf(t, imageOf(t, "amd64", verifyLayer0(t)).img)
	before, _ := os.ReadFile(filepath.Join(dst.dir, "index.json"))
	p, err := layout.FromPath(dst.dir)
	if err != nil {
		t.Fatal(err)
	}
	write = p.AppendImage(out)
	if _, manifests := reg.state(); push != nil && len(manifests) != 0 {
		t.Errorf("the push failed (%v), but pushed manifests %v", push, manifests)
	}
	if after, _ := os.ReadFile(filepath.Join(dst.dir, "index.json")); write != nil && !bytes.Equal(before, after) {
		t.Errorf("storing failed (%v), but index.json changed", write)
	}
	return push, write
}

func checkMismatch(t *testing.T, what string, err error, is error, want string) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s: no error, want one with %q", what, want)
	case !errors.Is(err, is) || !errors.Is(err, image.ErrBlobMismatch):
		t.Errorf("%s: error %q is not %v", what, err, is)
	case !strings.Contains(err.Error(), want):
		t.Errorf("%s: error %q\nwant %q in it", what, err, want)
	}
}

// TestImageVerifyChunkDict breaks a chunk dictionary image in a layout:
// a swapped bootstrap layer fails LoadChunkDict; a swapped blob layer,
// which LoadChunkDict does not read, fails storing the image that lists
// it.
func TestImageVerifyChunkDict(t *testing.T) {
	dictImg := convertImage(t, imageOf(t, "amd64", verifyLayer0(t)).img, image.Options{})
	other := convertImage(t, imageOf(t, "amd64", verifyLayer1(t)).img, image.Options{})
	om, _ := other.Manifest()
	otherBoot, err := other.LayerByDigest(om.Layers[len(om.Layers)-1].Digest)
	if err != nil {
		t.Fatal(err)
	}
	rc, _ := otherBoot.Compressed()
	otherBootBlob := readAll(t, rc)
	rc.Close()

	t.Run("bootstrap swapped", func(t *testing.T) {
		l, open := layoutOf(t, dictImg)
		m := l.manifest()
		boot := m.Layers[len(m.Layers)-1]
		l.replace(boot.Digest, otherBootBlob)
		verified, plain := open()
		want := "layer 1 " + boot.Digest.String() + " of manifest " + l.entry().Digest.String()
		for what, img := range map[string]v1.Image{"verified": verified, "plain": plain} {
			d, err := image.LoadChunkDict(img)
			if d != nil {
				t.Errorf("%s: LoadChunkDict gave a dictionary", what)
			}
			checkMismatch(t, what, err, image.ErrBlobMismatch, want)
		}
	})

	t.Run("blob swapped", func(t *testing.T) {
		l, open := layoutOf(t, dictImg)
		m := l.manifest()
		blob := m.Layers[0]
		b := l.read(blob.Digest)
		for i := range b {
			b[i] ^= 0xa5
		}
		l.replace(blob.Digest, b)
		verified, _ := open()
		dict, err := image.LoadChunkDict(verified)
		if err != nil {
			t.Fatal(err)
		}
		// The image's first layer is the dictionary's: its chunks stay in
		// the dictionary's blob, which the converted manifest lists.
		out := convertImage(t, imageOf(t, "amd64", verifyLayer0(t), verifyLayer1(t)).img, image.Options{ChunkDict: dict})
		cm, _ := out.Manifest()
		if !slices.ContainsFunc(cm.Layers, func(d v1.Descriptor) bool { return d.Digest == blob.Digest }) {
			t.Fatalf("the converted manifest does not list the dictionary's blob %s", blob.Digest)
		}
		push, write := storeConverted(t, out)
		want := "layer 0 " + blob.Digest.String() + " of manifest " + l.entry().Digest.String() + ": digest mismatch"
		checkMismatch(t, "push", push, image.ErrDigestMismatch, want)
		checkMismatch(t, "layout", write, image.ErrDigestMismatch, want)
	})
}

// TestImageVerifyCache breaks a layer cache kept in a layout: a swapped
// bootstrap fails NewCache; a swapped layer, which it does not read,
// fails storing an image converted with it.
func TestImageVerifyCache(t *testing.T) {
	src := imageOf(t, "amd64", verifyLayer0(t), verifyLayer1(t)).img
	cache, _ := image.NewCache(nil)
	newConverter(t, image.Options{Cache: cache}).Image(context.Background(), src)
	ci, err := cache.Image()
	if err != nil {
		t.Fatal(err)
	}
	// The cache lists each layer, then its bootstrap.
	roleOf := func(d v1.Descriptor) string { return d.Annotations["dev.rafs.cache.role"] }

	t.Run("bootstrap swapped", func(t *testing.T) {
		l, open := layoutOf(t, ci)
		m := l.manifest()
		if roleOf(m.Layers[1]) != "bootstrap" || roleOf(m.Layers[3]) != "bootstrap" {
			t.Fatalf("cache layers %+v", m.Layers)
		}
		// Each bootstrap is a valid one, of the other layer.
		b1, b3 := l.read(m.Layers[1].Digest), l.read(m.Layers[3].Digest)
		l.replace(m.Layers[1].Digest, b3)
		l.replace(m.Layers[3].Digest, b1)
		verified, plain := open()
		for what, img := range map[string]v1.Image{"verified": verified, "plain": plain} {
			c, err := image.NewCache(img)
			if c != nil {
				t.Errorf("%s: NewCache gave a cache", what)
			}
			checkMismatch(t, what, err, image.ErrBlobMismatch, "layer 1 "+m.Layers[1].Digest.String()+" of manifest "+l.entry().Digest.String())
		}
	})

	t.Run("manifest altered", func(t *testing.T) {
		l, open := layoutOf(t, ci)
		d := l.entry()
		l.replace(d.Digest, swapJSON(t, l.read(d.Digest), `"layer"`, `"LAYER"`))
		verified, _ := open()
		_, err := image.NewCache(verified)
		checkMismatch(t, "verified", err, image.ErrDigestMismatch, "manifest "+d.Digest.String()+": digest mismatch")
	})

	t.Run("layer swapped", func(t *testing.T) {
		l, open := layoutOf(t, ci)
		m := l.manifest()
		layer := m.Layers[0]
		b := l.read(layer.Digest)
		for i := range b {
			b[i] ^= 0x5a
		}
		l.replace(layer.Digest, b)
		verified, _ := open()
		again, err := image.NewCache(verified)
		if err != nil {
			t.Fatal(err)
		}
		c := newConverter(t, image.Options{Cache: again})
		out, err := c.Image(context.Background(), src)
		if err != nil {
			t.Fatal(err)
		}
		if st := c.Stats(); st.Cached != 2 {
			t.Fatalf("stats %+v, want both layers from the cache", st)
		}
		push, write := storeConverted(t, out)
		want := "layer 0 " + layer.Digest.String() + " of manifest " + l.entry().Digest.String() + ": digest mismatch"
		checkMismatch(t, "push", push, image.ErrDigestMismatch, want)
		checkMismatch(t, "layout", write, image.ErrDigestMismatch, want)
	})
}

// TestImageVerifyMergeIndexCopy merges an index whose unselected arm64
// manifest has a swapped layer: the layer is copied as it is, so the
// conversion succeeds and storing the merged index fails, with no tag
// pushed and index.json unchanged.
func TestImageVerifyMergeIndexCopy(t *testing.T) {
	l := newVLayout(t, true)
	d := l.nestedIndex().Manifests[1]
	m, err := v1.ParseManifest(bytes.NewReader(l.read(d.Digest)))
	if err != nil {
		t.Fatal(err)
	}
	swapped := storedGzip(t, verifyTar(t, "app/arm", "ARM64 ONLY"))
	if int64(len(swapped)) != m.Layers[1].Size {
		t.Fatal("the stand-in layer has another size")
	}
	l.replace(m.Layers[1].Digest, swapped)
	r := convertLayout(t, l.dir, image.Options{Link: image.LinkMergeIndex, Platforms: []v1.Platform{{OS: "linux", Architecture: "amd64"}}})
	if r.conv != nil {
		t.Fatal(r.conv)
	}
	want := "layer 1 " + m.Layers[1].Digest.String() + " of manifest " + d.Digest.String() + ": digest mismatch"
	checkMismatch(t, "push", r.push, image.ErrDigestMismatch, want)
	checkMismatch(t, "layout", r.write, image.ErrDigestMismatch, want)
	if _, manifests := r.reg.state(); slices.Contains(manifests, "conv") {
		t.Error("the merged index was pushed")
	}
	if after, _ := os.ReadFile(filepath.Join(r.dst.dir, "index.json")); !bytes.Equal(after, r.dstIndex) {
		t.Error("index.json changed")
	}
}

// rawIndex is an index manifest given as bytes, to push as it is.
type rawIndex []byte

func (r rawIndex) RawManifest() ([]byte, error)        { return r, nil }
func (r rawIndex) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }

// TestImageVerifyRegistrySource converts an index from a registry whose
// entry gives the image's manifest another size: go-containerregistry
// fetches the manifest by digest and checks that, and the Converter the
// size.
func TestImageVerifyRegistrySource(t *testing.T) {
	reg := startPushLog(t)
	img := imageOf(t, "amd64", verifyLayer0(t), verifyLayer1(t)).img
	repo, err := name.NewRepository(reg.host+"/src", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(repo.Tag("img"), img); err != nil {
		t.Fatal(err)
	}
	d, err := partial.Descriptor(img)
	if err != nil {
		t.Fatal(err)
	}
	d.Size += 5
	d.Platform = &v1.Platform{OS: "linux", Architecture: "amd64"}
	raw, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: []v1.Descriptor{*d}})
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(repo.Tag("idx"), rawIndex(raw)); err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Get(repo.Tag("idx"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := desc.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	_, err = newConverter(t, image.Options{}).Index(context.Background(), idx)
	checkMismatch(t, "index", err, image.ErrSizeMismatch, "manifest "+d.Digest.String()+": size mismatch: "+itoa(d.Size-5)+" bytes, want "+itoa(d.Size))
	// The image itself converts.
	src, err := remote.Image(repo.Tag("img"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newConverter(t, image.Options{}).Image(context.Background(), src); err != nil {
		t.Fatal(err)
	}
}
