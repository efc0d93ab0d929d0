package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/erofs"
	"github.com/rafs-dev/rafs/rafs"
)

// sampleSrc is the sample image as a convert source.
const sampleSrc = "oci:" + sampleImageDir

// startRegistry starts an in-memory registry and returns its host:port.
func startRegistry(t *testing.T) string {
	host, _ := startRegistryLog(t)
	return host
}

// uploadLog records the blobs uploaded to a registry.
type uploadLog struct {
	mu      sync.Mutex
	digests []string // of completed uploads, in order
}

func (u *uploadLog) take() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	d := u.digests
	u.digests = nil
	return d
}

// startRegistryLog starts an in-memory registry that records completed
// blob uploads.
func startRegistryLog(t *testing.T) (string, *uploadLog) {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	ul := &uploadLog{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if dg := r.URL.Query().Get("digest"); r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") && dg != "" {
			ul.mu.Lock()
			ul.digests = append(ul.digests, dg)
			ul.mu.Unlock()
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), ul
}

// rafsCmd runs the CLI with args and returns its exit code and what it
// printed on standard output and standard error.
func rafsCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	dir := t.TempDir()
	outF, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	errF, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	oldOut, oldErr := os.Stdout, os.Stderr
	os.Stdout, os.Stderr = outF, errF
	code := run(args)
	os.Stdout, os.Stderr = oldOut, oldErr
	outF.Close()
	errF.Close()
	stdout, _ := os.ReadFile(outF.Name())
	stderr, _ := os.ReadFile(errF.Name())
	return code, string(stdout), string(stderr)
}

// mustRun runs the CLI, fails the test unless it exits 0, and returns the
// one line it printed on standard output and its standard error.
func mustRun(t *testing.T, args ...string) (string, string) {
	t.Helper()
	code, stdout, stderr := rafsCmd(t, args...)
	if code != 0 {
		t.Fatalf("rafs %s: exit code %d\n%s", strings.Join(args, " "), code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("rafs %s printed %q, want one line", strings.Join(args, " "), stdout)
	}
	return lines[0], stderr
}

var digestLine = regexp.MustCompile(`^(.*)@(sha256:[0-9a-f]{64})$`)

// splitDigest splits a printed REF@DIGEST line, checking REF.
func splitDigest(t *testing.T, line, wantRef string) v1.Hash {
	t.Helper()
	m := digestLine.FindStringSubmatch(line)
	if m == nil || m[1] != wantRef {
		t.Fatalf("printed %q, want %s@sha256:...", line, wantRef)
	}
	h, err := v1.NewHash(m[2])
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func sha(b []byte) v1.Hash {
	s := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(s[:])}
}

// readAll reads a layer's blob.
func readBlob(t *testing.T, l v1.Layer) []byte {
	t.Helper()
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkImage validates an image as go-containerregistry's validate
// package would (which needs go-cmp, not in go.sum): the manifest, config
// and every blob match their descriptors' digests and sizes, and the
// config's diff IDs are the layers' uncompressed digests. It returns the
// manifest, the config and the layers' blobs.
func checkImage(t *testing.T, img v1.Image) (*v1.Manifest, map[string]any, [][]byte) {
	t.Helper()
	raw, err := img.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if dg, err := img.Digest(); err != nil || dg != sha(raw) {
		t.Errorf("manifest digest %v (%v), want %v", dg, err, sha(raw))
	}
	var m v1.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	if m.SchemaVersion != 2 || m.MediaType != types.OCIManifestSchema1 {
		t.Errorf("manifest schema %d media type %s", m.SchemaVersion, m.MediaType)
	}
	rawCfg, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if m.Config.Digest != sha(rawCfg) || m.Config.Size != int64(len(rawCfg)) || m.Config.MediaType != types.OCIConfigJSON {
		t.Errorf("config descriptor %+v does not match the config (%d bytes)", m.Config, len(rawCfg))
	}
	var cfg map[string]any
	if err := json.Unmarshal(rawCfg, &cfg); err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		t.Fatalf("%d diff IDs for %d layers", len(cf.RootFS.DiffIDs), len(m.Layers))
	}
	var blobs [][]byte
	for i, d := range m.Layers {
		l, err := img.LayerByDigest(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		b := readBlob(t, l)
		if sha(b) != d.Digest || int64(len(b)) != d.Size {
			t.Errorf("layer %d: blob of %d bytes with digest %s, descriptor says %d bytes, %s", i, len(b), sha(b), d.Size, d.Digest)
		}
		diffID := sha(b)
		if d.MediaType == types.OCILayer || d.MediaType == types.DockerLayer {
			zr, err := gzip.NewReader(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			u, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			diffID = sha(u)
		}
		if cf.RootFS.DiffIDs[i] != diffID {
			t.Errorf("layer %d: diff ID %s, config says %s", i, diffID, cf.RootFS.DiffIDs[i])
		}
		blobs = append(blobs, b)
	}
	return &m, cfg, blobs
}

// checkIndex validates an index and every manifest in it (recursively)
// and returns its manifest.
func checkIndex(t *testing.T, idx v1.ImageIndex) *v1.IndexManifest {
	t.Helper()
	raw, err := idx.RawManifest()
	if err != nil {
		t.Fatal(err)
	}
	if dg, err := idx.Digest(); err != nil || dg != sha(raw) {
		t.Errorf("index digest %v (%v), want %v", dg, err, sha(raw))
	}
	var im v1.IndexManifest
	if err := json.Unmarshal(raw, &im); err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		var childRaw []byte
		switch {
		case d.MediaType.IsIndex():
			c, err := idx.ImageIndex(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkIndex(t, c)
			childRaw, _ = c.RawManifest()
		case d.MediaType.IsImage():
			c, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkImage(t, c)
			childRaw, _ = c.RawManifest()
		default:
			t.Errorf("index entry %s has media type %s", d.Digest, d.MediaType)
		}
		if sha(childRaw) != d.Digest || int64(len(childRaw)) != d.Size {
			t.Errorf("index entry %s (%d bytes) does not match its manifest", d.Digest, d.Size)
		}
	}
	return &im
}

// checkNydus checks a converted Nydus image of the sample and returns its
// merged bootstrap.
func checkNydus(t *testing.T, img v1.Image) *rafs.Bootstrap {
	t.Helper()
	m, _, blobs := checkImage(t, img)
	if len(m.Layers) < 3 {
		t.Fatalf("%d layers, want blobs and the bootstrap", len(m.Layers))
	}
	for i, d := range m.Layers[:len(m.Layers)-1] {
		if d.MediaType != image.MediaTypeNydusBlob || d.Annotations[image.AnnotationNydusBlob] != "true" {
			t.Errorf("layer %d: media type %s, annotations %v", i, d.MediaType, d.Annotations)
		}
	}
	last := m.Layers[len(m.Layers)-1]
	if last.Annotations[image.AnnotationNydusBootstrap] != "true" {
		t.Errorf("last layer annotations %v, want %s", last.Annotations, image.AnnotationNydusBootstrap)
	}
	zr, err := gzip.NewReader(bytes.NewReader(blobs[len(blobs)-1]))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var boot []byte
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("bootstrap layer: %v", err)
		}
		if h.Name == "image/image.boot" {
			boot, _ = io.ReadAll(tr)
			break
		}
	}
	b, err := rafs.Read(bytes.NewReader(boot), int64(len(boot)))
	if err != nil {
		t.Fatal(err)
	}
	// The merged tree: layer 2's whiteout, opaque directory, new files.
	for _, p := range []string{"etc/motd", "home/user/notes.txt", "etc/.wh.motd", "home/user/.wh..wh..opq"} {
		if b.Lookup(p) != nil {
			t.Errorf("merged bootstrap has %s", p)
		}
	}
	for _, p := range []string{"etc/hostname", "home/user/todo.txt", "usr/bin/greet", "usr/bin/greet-again", "usr/lib/libsample.so.1"} {
		if b.Lookup(p) == nil {
			t.Errorf("merged bootstrap lacks %s", p)
		}
	}
	if n := b.Lookup("usr/bin/greet"); n != nil && string(n.Xattrs["user.comment"]) != "rafs sample" {
		t.Errorf("usr/bin/greet xattrs %q", n.Xattrs)
	}
	// Every blob the bootstrap needs is a layer of the image.
	for _, bi := range b.Blobs {
		if !slices.ContainsFunc(m.Layers, func(d v1.Descriptor) bool { return d.Digest.Hex == bi.ID }) {
			t.Errorf("bootstrap blob %s is not a layer", bi.ID)
		}
	}
	return b
}

// checkEROFS checks a converted EROFS image of the sample.
func checkEROFS(t *testing.T, img v1.Image, mt types.MediaType) {
	t.Helper()
	m, cfg, blobs := checkImage(t, img)
	if len(m.Layers) != 2 {
		t.Fatalf("%d layers, want 2", len(m.Layers))
	}
	for i, d := range m.Layers {
		if d.MediaType != mt {
			t.Errorf("layer %d: media type %s, want %s", i, d.MediaType, mt)
		}
	}
	if f, _ := cfg["os.features"].([]any); !slices.Contains(f, any(image.OSFeatureEROFS)) {
		t.Errorf("config os.features %v, want erofs", cfg["os.features"])
	}
	fsys, err := erofs.Open(bytes.NewReader(blobs[1]))
	if err != nil {
		t.Fatal(err)
	}
	stat := func(p string) *erofs.Stat {
		fi, err := fsys.Lstat(p)
		if err != nil {
			t.Fatalf("layer 2: %v", err)
		}
		return fi.Sys().(*erofs.Stat)
	}
	if fi, err := fsys.Lstat("etc/motd"); err != nil || fi.Mode()&fs.ModeCharDevice == 0 {
		t.Errorf("layer 2: etc/motd is not an overlayfs whiteout: %v %v", fi, err)
	}
	if st := stat("home/user"); st.Xattrs["trusted.overlay.opaque"] != "y" {
		t.Errorf("layer 2: home/user xattrs %q, want opaque", st.Xattrs)
	}
	if st := stat("usr/bin/greet"); st.Nlink != 2 || st.Xattrs["user.comment"] != "rafs sample" {
		t.Errorf("layer 2: usr/bin/greet nlink %d xattrs %q", st.Nlink, st.Xattrs)
	}
	if b, err := fs.ReadFile(fsys, "etc/hostname"); err != nil || string(b) != "rafs-sample-2\n" {
		t.Errorf("layer 2: etc/hostname %q %v", b, err)
	}
}

// checkConverted checks a converted image of the sample of either type.
func checkConverted(t *testing.T, typ string, img v1.Image) {
	t.Helper()
	if typ == "nydus" {
		checkNydus(t, img)
		if m, _ := img.Manifest(); len(m.Layers) != 3 {
			t.Errorf("%d layers, want 2 blobs and the bootstrap", len(m.Layers))
		}
	} else {
		checkEROFS(t, img, image.MediaTypeEROFSLayer)
	}
}

// layoutImage returns the image tagged tag in the layout at dir.
func layoutEntry(t *testing.T, dir, tag string) (v1.Descriptor, v1.ImageIndex) {
	t.Helper()
	root, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, err := root.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range im.Manifests {
		if d.Annotations[image.AnnotationImageRefName] == tag {
			return d, root
		}
	}
	t.Fatalf("no entry tagged %q in %s", tag, dir)
	return v1.Descriptor{}, nil
}

func layoutImage(t *testing.T, dir, tag string) v1.Image {
	t.Helper()
	d, root := layoutEntry(t, dir, tag)
	img, err := root.Image(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func sampleDigest(t *testing.T) v1.Hash {
	t.Helper()
	d, _ := layoutEntry(t, sampleImageDir, "latest")
	return d.Digest
}

// pushSample pushes the sample image to host/sample:latest and returns
// the reference.
func pushSample(t *testing.T, host string) string {
	t.Helper()
	ref := host + "/sample:latest"
	line, _ := mustRun(t, "push", "--plain-http", sampleImageDir, ref)
	if dg := splitDigest(t, line, ref); dg != sampleDigest(t) {
		t.Errorf("pushed %s, the layout has %s", dg, sampleDigest(t))
	}
	return ref
}

func remoteImage(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestConvertLayout(t *testing.T) {
	for _, typ := range []string{"nydus", "erofs"} {
		t.Run(typ, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			line, stderr := mustRun(t, "convert", "--type", typ, "--progress", "plain", sampleSrc, "oci:"+out+":conv")
			dg := splitDigest(t, line, "oci:"+out+":conv")
			if !strings.HasPrefix(stderr, "converted 2 layers (0 cached) of 1 image: ") {
				t.Errorf("stderr %q, want the summary line", stderr)
			}
			img := layoutImage(t, out, "conv")
			if got, _ := img.Digest(); got != dg {
				t.Errorf("layout has %s, printed %s", got, dg)
			}
			checkConverted(t, typ, img)
			// Again, untagged, into the same layout: the same image is
			// added without a tag, next to the tagged one.
			line, _ = mustRun(t, "convert", "--type", typ, "--progress", "none", sampleSrc, "oci:"+out)
			if dg2 := splitDigest(t, line, "oci:"+out); dg2 != dg {
				t.Errorf("second conversion gave %s, first %s", dg2, dg)
			}
			root, _ := layout.ImageIndexFromPath(out)
			im, _ := root.IndexManifest()
			if len(im.Manifests) != 2 || im.Manifests[1].Annotations[image.AnnotationImageRefName] != "" {
				t.Errorf("index.json after an untagged conversion: %+v", im.Manifests)
			}
			// An ambiguous layout source names its tags.
			code, _, stderr := rafsCmd(t, "convert", "oci:"+out, "oci:"+out+":again")
			if code != 1 || !strings.Contains(stderr, "conv") {
				t.Errorf("ambiguous source: exit code %d, %q", code, stderr)
			}
		})
	}
}

func TestConvertRegistry(t *testing.T) {
	host, uploads := startRegistryLog(t)
	src := pushSample(t, host)
	for _, typ := range []string{"nydus", "erofs"} {
		t.Run(typ, func(t *testing.T) {
			uploads.take()
			dst := host + "/conv:" + typ
			line, _ := mustRun(t, "convert", "--plain-http", "--type", typ, src, dst)
			dg := splitDigest(t, line, dst)
			img := remoteImage(t, dst)
			if got, _ := img.Digest(); got != dg {
				t.Errorf("registry has %s, printed %s", got, dg)
			}
			checkConverted(t, typ, img)
			// Every blob (the layers, uploaded while converting, and the
			// config) was uploaded once.
			m, _ := img.Manifest()
			want := []string{m.Config.Digest.String()}
			for _, l := range m.Layers {
				want = append(want, l.Digest.String())
			}
			got := uploads.take()
			slices.Sort(want)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("uploaded %v, want each blob once: %v", got, want)
			}

			// Registry to layout gives the same image.
			out := filepath.Join(t.TempDir(), "out")
			line, _ = mustRun(t, "convert", "--plain-http", "--type", typ, src, "oci:"+out+":x")
			if dg2 := splitDigest(t, line, "oci:"+out+":x"); dg2 != dg {
				t.Errorf("registry to layout gave %s, registry to registry %s", dg2, dg)
			}
			checkConverted(t, typ, layoutImage(t, out, "x"))

			// Pushing the layout gives the same digest again.
			ref := host + "/pushed:" + typ
			line, _ = mustRun(t, "push", "--plain-http", "oci:"+out+":x", ref)
			if dg3 := splitDigest(t, line, ref); dg3 != dg {
				t.Errorf("rafs push gave %s, want %s", dg3, dg)
			}
			checkConverted(t, typ, remoteImage(t, ref))
		})
	}
	// A DST without a tag is tagged latest.
	line, _ := mustRun(t, "convert", "--plain-http", "--progress", "none", src, host+"/untagged")
	splitDigest(t, line, host+"/untagged:latest")
}

func TestConvertReferrer(t *testing.T) {
	host := startRegistry(t)
	src := pushSample(t, host)
	dst := host + "/sample:nydus"
	line, _ := mustRun(t, "convert", "--plain-http", "--referrer", src, dst)
	dg := splitDigest(t, line, dst)
	img := remoteImage(t, dst)
	m, _, _ := checkImage(t, img)
	checkNydus(t, img)
	if m.Subject == nil || m.Subject.Digest != sampleDigest(t) || m.Subject.MediaType != types.OCIManifestSchema1 {
		t.Fatalf("subject %+v, want the source manifest %s", m.Subject, sampleDigest(t))
	}
	// The registry has no referrers API; the fallback tag lists it.
	subj, _ := name.NewDigest(host+"/sample@"+sampleDigest(t).String(), name.Insecure)
	refs, err := remote.Referrers(subj)
	if err != nil {
		t.Fatal(err)
	}
	rm, _ := refs.IndexManifest()
	if len(rm.Manifests) != 1 || rm.Manifests[0].Digest != dg {
		t.Errorf("referrers of the source: %+v, want %s", rm.Manifests, dg)
	}
}

func TestConvertMergeIndex(t *testing.T) {
	for _, typ := range []string{"nydus", "erofs"} {
		t.Run(typ, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			line, stderr := mustRun(t, "convert", "--type", typ, "--merge-index", "--progress", "plain", sampleSrc, "oci:"+out+":merged")
			dg := splitDigest(t, line, "oci:"+out+":merged")
			if !strings.Contains(stderr, "of 1 image:") {
				t.Errorf("summary %q, want 1 image converted", stderr)
			}
			d, root := layoutEntry(t, out, "merged")
			if d.Digest != dg || !d.MediaType.IsIndex() {
				t.Fatalf("entry %+v, want the index %s", d, dg)
			}
			idx, err := root.ImageIndex(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			im := checkIndex(t, idx)
			if len(im.Manifests) != 2 || im.Manifests[0].Digest != sampleDigest(t) {
				t.Fatalf("merged index %+v, want the source manifest first", im.Manifests)
			}
			conv := im.Manifests[1]
			feature := map[string]string{"nydus": image.OSFeatureNydus, "erofs": image.OSFeatureEROFS}[typ]
			if conv.Platform == nil || conv.Platform.Architecture != "amd64" || !slices.Contains(conv.Platform.OSFeatures, feature) {
				t.Errorf("converted entry platform %+v, want amd64 with os.features %s", conv.Platform, feature)
			}
			img, err := idx.Image(conv.Digest)
			if err != nil {
				t.Fatal(err)
			}
			checkConverted(t, typ, img)
		})
	}
}

// twoPlatformIndex pushes an index of the sample image for linux/amd64
// and linux/arm64 (the config's architecture changed) to host/multi.
func twoPlatformIndex(t *testing.T, host string) string {
	t.Helper()
	amd := layoutImage(t, sampleImageDir, "latest")
	cf, err := amd.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Architecture = "arm64"
	arm, err := mutate.ConfigFile(amd, cf)
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	ref, err := name.ParseReference(host+"/multi:latest", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx); err != nil {
		t.Fatal(err)
	}
	return ref.Name()
}

func TestConvertPlatform(t *testing.T) {
	host := startRegistry(t)
	src := twoPlatformIndex(t, host)
	dst := host + "/multi:erofs"
	line, stderr := mustRun(t, "convert", "--plain-http", "--type", "erofs", "--platform", "linux/arm64", "--progress", "plain", src, dst)
	splitDigest(t, line, dst)
	if !strings.HasPrefix(stderr, "converted 2 layers (0 cached) of 1 image:") {
		t.Errorf("summary %q", stderr)
	}
	r, _ := name.ParseReference(dst, name.Insecure)
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	im := checkIndex(t, idx)
	if len(im.Manifests) != 1 {
		t.Fatalf("%d manifests, want the arm64 one", len(im.Manifests))
	}
	p := im.Manifests[0].Platform
	if p == nil || p.Architecture != "arm64" || !slices.Contains(p.OSFeatures, image.OSFeatureEROFS) {
		t.Errorf("platform %+v, want arm64 with os.features erofs", p)
	}
	img, _ := idx.Image(im.Manifests[0].Digest)
	if cf, _ := img.ConfigFile(); cf.Architecture != "arm64" {
		t.Errorf("config architecture %s", cf.Architecture)
	}
	checkEROFS(t, img, image.MediaTypeEROFSLayer)

	// All platforms: two images, whose layers are the same, converted once.
	line, stderr = mustRun(t, "convert", "--plain-http", "--type", "erofs", "--erofs-media-type", "spec", "--progress", "plain", src, dst+"-all")
	splitDigest(t, line, dst+"-all")
	if !strings.HasPrefix(stderr, "converted 2 layers (0 cached) of 2 images:") {
		t.Errorf("summary %q", stderr)
	}
	r, _ = name.ParseReference(dst+"-all", name.Insecure)
	if idx, err = remote.Index(r); err != nil {
		t.Fatal(err)
	}
	im = checkIndex(t, idx)
	if len(im.Manifests) != 2 {
		t.Fatalf("%d manifests, want 2", len(im.Manifests))
	}
	for _, d := range im.Manifests {
		img, _ := idx.Image(d.Digest)
		checkEROFS(t, img, image.MediaTypeEROFS)
	}

	// A platform the index does not have, and a single image that is not
	// for the platform, fail.
	if code, _, _ := rafsCmd(t, "convert", "--plain-http", "--platform", "linux/s390x", src, dst+"-none"); code != 1 {
		t.Errorf("unknown platform: exit code %d, want 1", code)
	}
	out := filepath.Join(t.TempDir(), "out")
	if code, _, _ := rafsCmd(t, "convert", "--platform", "linux/arm64", sampleSrc, "oci:"+out); code != 1 {
		t.Errorf("single image of another platform: exit code %d, want 1", code)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed conversion left %s", out)
	}
}

func TestConvertCache(t *testing.T) {
	t.Run("layout", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "out")
		dst := "oci:" + out + ":nydus"
		line, stderr := mustRun(t, "convert", "--cache", "cache", "--progress", "plain", sampleSrc, dst)
		dg := splitDigest(t, line, dst)
		if !strings.HasPrefix(stderr, "converted 2 layers (0 cached)") {
			t.Errorf("first run: %q", stderr)
		}
		line, stderr = mustRun(t, "convert", "--cache", "cache", "--progress", "plain", sampleSrc, dst)
		if dg2 := splitDigest(t, line, dst); dg2 != dg {
			t.Errorf("cached conversion gave %s, first %s", dg2, dg)
		}
		if !strings.HasPrefix(stderr, "converted 0 layers (2 cached)") {
			t.Errorf("second run: %q", stderr)
		}
		checkNydus(t, layoutImage(t, out, "nydus"))
		cache := layoutImage(t, out, "cache")
		if m, _ := cache.Manifest(); m.ArtifactType != "application/vnd.rafs.cache.v1+json" || len(m.Layers) != 4 {
			t.Errorf("cache manifest: artifact type %q, %d layers (want 2 blobs and 2 bootstraps)", m.ArtifactType, len(m.Layers))
		}
		// Another type keys its layers apart.
		_, stderr = mustRun(t, "convert", "--type", "erofs", "--cache", "cache", "--progress", "plain", sampleSrc, "oci:"+out+":erofs")
		if !strings.HasPrefix(stderr, "converted 2 layers (0 cached)") {
			t.Errorf("erofs run: %q", stderr)
		}
	})
	t.Run("registry", func(t *testing.T) {
		host := startRegistry(t)
		src := pushSample(t, host)
		dst := host + "/conv:erofs"
		args := []string{"convert", "--plain-http", "--type", "erofs", "-z", "lz4hc,level=9", "-C", "16384", "-E", "ztailpacking", "--cache", "rafs-cache", "--progress", "plain", src, dst}
		line, stderr := mustRun(t, args...)
		dg := splitDigest(t, line, dst)
		if !strings.HasPrefix(stderr, "converted 2 layers (0 cached)") {
			t.Errorf("first run: %q", stderr)
		}
		line, stderr = mustRun(t, args...)
		if dg2 := splitDigest(t, line, dst); dg2 != dg {
			t.Errorf("cached conversion gave %s, first %s", dg2, dg)
		}
		if !strings.HasPrefix(stderr, "converted 0 layers (2 cached)") {
			t.Errorf("second run: %q", stderr)
		}
		checkEROFS(t, remoteImage(t, dst), image.MediaTypeEROFSLayer)
		remoteImage(t, host+"/conv:rafs-cache")
	})
}

func TestConvertChunkDict(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	mustRun(t, "convert", "--progress", "none", sampleSrc, "oci:"+out+":dict")
	dict := checkNydus(t, layoutImage(t, out, "dict"))
	mustRun(t, "convert", "--progress", "none", "--chunk-dict", "oci:"+out+":dict", sampleSrc, "oci:"+out+":deduped")
	deduped := layoutImage(t, out, "deduped")
	b := checkNydus(t, deduped)
	if m, _ := deduped.Manifest(); len(m.Layers) != 5 {
		t.Errorf("%d layers, want the 2 converted blobs, the 2 dictionary blobs and the bootstrap", len(m.Layers))
	}
	// The same files: every chunk is the dictionary's, so the bootstrap
	// names the dictionary's blobs.
	for _, bi := range dict.Blobs {
		if !slices.ContainsFunc(b.Blobs, func(x rafs.BlobInfo) bool { return x.ID == bi.ID }) {
			t.Errorf("deduplicated image does not use dictionary blob %s", bi.ID)
		}
	}
	if code, _, _ := rafsCmd(t, "convert", "--chunk-dict", sampleSrc, sampleSrc, "oci:"+out+":bad"); code != 1 {
		t.Errorf("a chunk dictionary that is no Nydus image: exit code %d, want 1", code)
	}
}

// copyDir copies a directory tree.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestConvertFailure(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	copyDir(t, sampleImageDir, bad)
	// Corrupt the first layer's gzip stream (same size, so only the
	// content is wrong).
	m, _, _ := checkImage(t, layoutImage(t, sampleImageDir, "latest"))
	blob := filepath.Join(bad, "blobs/sha256", m.Layers[0].Digest.Hex)
	b, _ := os.ReadFile(blob)
	for i := 100; i < len(b)-100; i += 7 {
		b[i] ^= 0x55
	}
	os.WriteFile(blob, b, 0o644)

	for _, typ := range []string{"nydus", "erofs"} {
		out := filepath.Join(dir, "out-"+typ)
		if code, _, stderr := rafsCmd(t, "convert", "--type", typ, "oci:"+bad, "oci:"+out); code != 1 {
			t.Errorf("%s: corrupt layer: exit code %d, want 1 (%s)", typ, code, stderr)
		}
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: a failed conversion left %s", typ, out)
		}
	}
	// An existing layout keeps its index.json; an empty directory stays
	// empty.
	existing := filepath.Join(dir, "existing")
	mustRun(t, "convert", "--progress", "none", sampleSrc, "oci:"+existing+":good")
	before, _ := os.ReadFile(filepath.Join(existing, "index.json"))
	if code, _, _ := rafsCmd(t, "convert", "--cache", "c", "oci:"+bad, "oci:"+existing+":good"); code != 1 {
		t.Errorf("corrupt layer into an existing layout: exit code %d, want 1", code)
	}
	if after, _ := os.ReadFile(filepath.Join(existing, "index.json")); !bytes.Equal(before, after) {
		t.Error("a failed conversion changed index.json")
	}
	emptyDir := filepath.Join(dir, "empty")
	os.Mkdir(emptyDir, 0o755)
	if code, _, _ := rafsCmd(t, "convert", "oci:"+bad, "oci:"+emptyDir); code != 1 {
		t.Errorf("corrupt layer into an empty directory: exit code %d, want 1", code)
	}
	if ents, _ := os.ReadDir(emptyDir); len(ents) != 0 {
		t.Errorf("a failed conversion left %v in an empty directory", ents)
	}

	out := filepath.Join(dir, "out")
	for _, args := range [][]string{
		{"convert", "--type", "squashfs", sampleSrc, "oci:" + out},
		{"convert", sampleSrc},
		{"convert", sampleSrc, "oci:" + out, "extra"},
		{"convert", "--referrer", "--merge-index", sampleSrc, "oci:" + out},
		{"convert", "-z", "lz4", sampleSrc, "oci:" + out},
		{"convert", "--type", "erofs", "--compressor", "lz4_block", sampleSrc, "oci:" + out},
		{"convert", "--type", "erofs", "--chunk-dict", sampleSrc, sampleSrc, "oci:" + out},
		{"convert", "--type", "erofs", "-z", "gzip", sampleSrc, "oci:" + out},
		{"convert", "--type", "erofs", "-C", "16384", sampleSrc, "oci:" + out},
		{"convert", "--type", "erofs", "--erofs-media-type", "docker", sampleSrc, "oci:" + out},
		{"convert", "--chunk-size", "0x1234", sampleSrc, "oci:" + out},
		{"convert", "--platform", "linux/", sampleSrc, "oci:" + out},
		{"convert", "--progress", "fancy", sampleSrc, "oci:" + out},
		{"convert", "--retries", "-1", sampleSrc, "oci:" + out},
		{"convert", "--cache", "bad tag", sampleSrc, "oci:" + out},
		{"convert", "--cache", "x", sampleSrc, "oci:" + out + ":x"},
		{"convert", sampleSrc, "UPPER/case"},
		{"convert", sampleSrc, "127.0.0.1:5000/repo@sha256:" + strings.Repeat("0", 64)},
		{"push", sampleImageDir},
		{"push", sampleImageDir, "oci:" + out},
		{"push", "--retries", "-2", sampleImageDir, "127.0.0.1:5000/x"},
	} {
		if code, _, _ := rafsCmd(t, args...); code != 2 {
			t.Errorf("%s: exit code %d, want 2", strings.Join(args, " "), code)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("usage errors left %s", out)
	}
	for _, args := range [][]string{
		{"convert", "oci:" + filepath.Join(dir, "missing"), "oci:" + out},
		{"convert", sampleSrc + ":nosuchtag", "oci:" + out},
		{"push", filepath.Join(dir, "missing"), "127.0.0.1:1/x"},
	} {
		if code, _, _ := rafsCmd(t, args...); code != 1 {
			t.Errorf("%s: exit code %d, want 1", strings.Join(args, " "), code)
		}
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("failed conversions left %s", out)
	}
}

func TestPushIndex(t *testing.T) {
	host := startRegistry(t)
	out := filepath.Join(t.TempDir(), "out")
	line, _ := mustRun(t, "convert", "--type", "erofs", "--merge-index", "--progress", "none", sampleSrc, "oci:"+out+":merged")
	dg := splitDigest(t, line, "oci:"+out+":merged")
	ref := host + "/merged:v1"
	line, _ = mustRun(t, "push", "--plain-http", "oci:"+out+":merged", ref)
	if got := splitDigest(t, line, ref); got != dg {
		t.Errorf("pushed %s, want %s", got, dg)
	}
	r, _ := name.ParseReference(ref, name.Insecure)
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	if im := checkIndex(t, idx); len(im.Manifests) != 2 {
		t.Errorf("%d manifests, want 2", len(im.Manifests))
	}
}

func TestConvertProgressBars(t *testing.T) {
	var buf bytes.Buffer
	b := newLayerBars(&buf, time.Hour)
	h1 := sha([]byte("one"))
	h2 := sha([]byte("two"))
	b.update(image.LayerProgress{Source: h1, Size: 4e6, Read: 1e6, Written: 5e5})
	b.update(image.LayerProgress{Source: h2, Size: 2e6, Read: 2e6, Written: 3e6, Done: true, Cached: true})
	b.redraw()
	b.update(image.LayerProgress{Source: h1, Size: 4e6, Read: 4e6, Written: 2e6, Done: true})
	b.stop()
	s := buf.String()
	for _, want := range []string{
		h1.Hex[:12] + " [======                  ]  25%     1.0/4.0 MB read     0.5 MB written \n",
		h2.Hex[:12] + " [========================] 100%     2.0/2.0 MB read     3.0 MB written cached\n",
		"\x1b[2A",
		h1.Hex[:12] + " [========================] 100%     4.0/4.0 MB read     2.0 MB written done\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("bars %q lack %q", s, want)
		}
	}
	// Through the CLI: the final state of both layers.
	_, stderr := mustRun(t, "convert", "--progress", "bars", sampleSrc, "oci:"+filepath.Join(t.TempDir(), "out"))
	if strings.Count(stderr, " done\n") < 2 || !strings.Contains(stderr, "converted 2 layers") {
		t.Errorf("--progress bars wrote %q", stderr)
	}
	if s := summaryLine(image.Stats{Layers: 1, Cached: 3, BytesIn: 12345678, BytesOut: 5e6}, 2, 1500*time.Millisecond); s != "converted 1 layer (3 cached) of 2 images: 12.35 MB in, 5.00 MB out, in 1.5 s" {
		t.Errorf("summary %q", s)
	}
}

func TestParseLocation(t *testing.T) {
	for _, c := range []struct{ in, dir, tag, ref string }{
		{in: "oci:dir", dir: "dir"},
		{in: "oci:a/b:v1.2", dir: "a/b", tag: "v1.2"},
		{in: "oci:/abs/path:latest", dir: "/abs/path", tag: "latest"},
		{in: "oci:weird:dir/x", dir: "weird:dir/x"},
		{in: "example.com/repo", ref: "example.com/repo:latest"},
		{in: "127.0.0.1:5000/a/b:t", ref: "127.0.0.1:5000/a/b:t"},
	} {
		l, err := parseLocation(c.in, false)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if l.isLayout() && (l.dir != c.dir || l.tag != c.tag) || !l.isLayout() && l.ref.Name() != c.ref {
			t.Errorf("%s: parsed %+v", c.in, l)
		}
	}
	for _, in := range []string{"oci:", "oci::tag", "Bad Ref"} {
		if _, err := parseLocation(in, false); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

// TestConvertBinary runs the built CLI on the sample, offline, from the
// repository root, as the README shows.
func TestConvertBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "rafs")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "convert", "oci:testdata/sample-image", "oci:"+filepath.Join(dir, "out"))
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rafs convert: %v\n%s", err, stderr.String())
	}
	splitDigest(t, strings.TrimSpace(string(out)), "oci:"+filepath.Join(dir, "out"))
	if !strings.HasPrefix(stderr.String(), "converted 2 layers (0 cached) of 1 image: ") {
		t.Errorf("stderr %q, want the summary (stderr is not a terminal)", stderr.String())
	}
	checkNydus(t, layoutImage(t, filepath.Join(dir, "out"), ""))
}
