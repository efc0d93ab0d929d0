package registrytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// fakeTB records Skipf and Fatalf instead of stopping the test.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                       {}
func (f *fakeTB) Skipf(format string, a ...any) { f.skipped = fmt.Sprintf(format, a...) }
func (f *fakeTB) Fatalf(format string, a ...any) {
	f.failed = fmt.Sprintf(format, a...)
}

func TestSkipOrFail(t *testing.T) {
	t.Setenv(EnvVar, "")
	f := &fakeTB{TB: t}
	skipOrFail(f, "no reason")
	if f.skipped == "" || f.failed != "" {
		t.Errorf("without %s: skipped %q, failed %q; want a skip", EnvVar, f.skipped, f.failed)
	}
	t.Setenv(EnvVar, "require")
	f = &fakeTB{TB: t}
	skipOrFail(f, "no reason")
	if f.failed == "" || f.skipped != "" {
		t.Errorf("with %s=require: skipped %q, failed %q; want a failure", EnvVar, f.skipped, f.failed)
	}
}

// TestMissingTools checks that Start and Skopeo skip, or fail under
// RAFS_E2E=require, when their program is not on PATH.
func TestMissingTools(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for _, require := range []string{"", "require"} {
		t.Setenv(EnvVar, require)
		f := &fakeTB{TB: t}
		if r := Start(f); r != nil {
			t.Errorf("%s=%q: Start without docker-registry returned %+v", EnvVar, require, r)
		}
		g := &fakeTB{TB: t}
		if out := Skopeo(g, "--version"); out != nil {
			t.Errorf("%s=%q: Skopeo without skopeo returned %q", EnvVar, require, out)
		}
		for _, x := range []*fakeTB{f, g} {
			if got := x.failed != ""; got != (require == "require") || (x.failed == "") == (x.skipped == "") {
				t.Errorf("%s=%q: skipped %q, failed %q", EnvVar, require, x.skipped, x.failed)
			}
		}
	}
}

// TestPortTaken checks that start reports a port someone else listens on
// as errPortTaken, which Start answers by trying another port.
func TestPortTaken(t *testing.T) {
	bin, err := exec.LookPath(registryBin)
	if err != nil {
		skipOrFail(t, registryBin+" not found on PATH")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // answer like a registry, to check the token is checked
		http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	}()
	r, err := start(t, bin, l.Addr().(*net.TCPAddr).Port)
	if err == nil || !strings.Contains(err.Error(), errPortTaken.Error()) {
		t.Fatalf("start on a taken port = %+v, %v; want %v", r, err, errPortTaken)
	}
}

// TestStartExits checks that start reports a registry that exits at once
// with the tail of its log, and not as a port race.
func TestStartExits(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "fake-registry")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho config is broken >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	_, err = start(t, bin, port)
	if err == nil || errors.Is(err, errPortTaken) || !strings.Contains(err.Error(), "config is broken") {
		t.Errorf("start of an exiting registry: %v; want its log in the error", err)
	}
}

// client pushes to a registry with the distribution API, using only the
// standard library.
type client struct {
	t    testing.TB
	base string // http://HOST/v2/
}

func newClient(t testing.TB, r *Registry) *client {
	return &client{t: t, base: "http://" + r.Host + "/v2/"}
}

// digest returns the sha256 digest of b, "sha256:HEX".
func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// do sends a request and returns the response with its body read.
func (c *client) do(method, u string, body []byte, contentType string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Accept", strings.Join([]string{mtManifest, mtIndex}, ", "))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading body: %v", method, u, err)
	}
	return resp, b
}

// blob uploads b to repo in a monolithic POST-then-PUT upload and returns
// its descriptor with media type mt.
func (c *client) blob(repo, mt string, b []byte) descriptor {
	c.t.Helper()
	resp, body := c.do("POST", c.base+repo+"/blobs/uploads/", nil, "")
	if resp.StatusCode != http.StatusAccepted {
		c.t.Fatalf("starting upload: %s %s", resp.Status, body)
	}
	loc, err := resp.Location()
	if err != nil {
		c.t.Fatalf("upload location: %v", err)
	}
	d := digest(b)
	q := loc.Query()
	q.Set("digest", d)
	loc.RawQuery = q.Encode()
	resp, body = c.do("PUT", loc.String(), b, "application/octet-stream")
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("finishing upload of %s: %s %s", d, resp.Status, body)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != d {
		c.t.Fatalf("upload of %s: registry says digest %q", d, got)
	}
	return descriptor{MediaType: mt, Digest: d, Size: int64(len(b))}
}

// putManifest PUTs a manifest or index of media type mt under ref (a tag
// or digest) and returns the response.
func (c *client) putManifest(repo, ref, mt string, b []byte) (*http.Response, []byte) {
	c.t.Helper()
	return c.do("PUT", c.base+repo+"/manifests/"+url.PathEscape(ref), b, mt)
}

// mustPutManifest is putManifest that fails unless the registry answers
// 201 with the manifest's digest.
func (c *client) mustPutManifest(repo, ref, mt string, b []byte) *http.Response {
	c.t.Helper()
	resp, body := c.putManifest(repo, ref, mt, b)
	if resp.StatusCode != http.StatusCreated {
		c.t.Fatalf("PUT manifest %s:%s: %s %s", repo, ref, resp.Status, body)
	}
	if got, want := resp.Header.Get("Docker-Content-Digest"), digest(b); got != want {
		c.t.Fatalf("PUT manifest %s:%s: digest %q, want %q", repo, ref, got, want)
	}
	return resp
}

// Media types.
const (
	mtManifest    = "application/vnd.oci.image.manifest.v1+json"
	mtIndex       = "application/vnd.oci.image.index.v1+json"
	mtConfig      = "application/vnd.oci.image.config.v1+json"
	mtLayerGzip   = "application/vnd.oci.image.layer.v1.tar+gzip"
	mtEmpty       = "application/vnd.oci.empty.v1+json"
	mtNydusBlob   = "application/vnd.oci.image.layer.nydus.blob.v1"
	mtNydusConfig = "application/vnd.nydus.image.config.v1+json"
	mtErofsLayer  = "application/vnd.erofs.layer.v1"
)

type platform struct {
	Architecture string   `json:"architecture"`
	OS           string   `json:"os"`
	OSFeatures   []string `json:"os.features,omitempty"`
}

type descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *platform         `json:"platform,omitempty"`
}

type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        *descriptor       `json:"config,omitempty"`
	Layers        []descriptor      `json:"layers,omitempty"`
	Manifests     []descriptor      `json:"manifests,omitempty"`
	Subject       *descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// pushImage pushes a config blob and one layer blob of media types
// configMT and layerMT to repo, then a manifest for them under tag, and
// returns the manifest bytes.
func pushImage(c *client, repo, tag, configMT, layerMT string, extra func(*manifest)) []byte {
	c.t.Helper()
	cfg := c.blob(repo, configMT, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	layer := c.blob(repo, layerMT, []byte("layer of "+repo+":"+tag))
	m := manifest{SchemaVersion: 2, MediaType: mtManifest, Config: &cfg, Layers: []descriptor{layer}}
	if extra != nil {
		extra(&m)
	}
	b := mustJSON(c.t, m)
	c.mustPutManifest(repo, tag, mtManifest, b)
	return b
}

func TestRegistry(t *testing.T) {
	r := Start(t)
	if !strings.HasPrefix(r.Host, "127.0.0.1:") {
		t.Errorf("Host = %q", r.Host)
	}
	if got, want := r.Ref("a/b:c"), r.Host+"/a/b:c"; got != want {
		t.Errorf("Ref = %q, want %q", got, want)
	}
	c := newClient(t, r)
	m := pushImage(c, "test/img", "v1", mtConfig, mtLayerGzip, nil)
	pushImage(c, "test/img", "v2", mtConfig, mtLayerGzip, nil)
	md := digest(m)

	if _, err := os.Stat(filepath.Join(r.Dir, "docker/registry/v2/repositories/test/img")); err != nil {
		t.Errorf("registry storage: %v", err)
	}
	if got := r.InspectRaw(t, "test/img:v1"); !bytes.Equal(got, m) {
		t.Errorf("InspectRaw = %s, want %s", got, m)
	}
	if got := r.InspectRawDigest(t, "test/img", md); !bytes.Equal(got, m) {
		t.Errorf("InspectRawDigest = %s, want %s", got, m)
	}
	if got := r.Tags(t, "test/img"); !slices.Equal(got, []string{"v1", "v2"}) {
		t.Errorf("Tags = %q, want [v1 v2]", got)
	}

	dir := filepath.Join(t.TempDir(), "layout")
	r.CopyToLayout(t, "test/img:v1", dir, "copied", false)
	checkLayout(t, dir, "copied", md, m)
}

// checkLayout checks that the OCI layout dir names the manifest m (of
// digest md) as tag and stores it byte for byte.
func checkLayout(t *testing.T, dir, tag, md string, m []byte) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx manifest
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	found := false
	for _, d := range idx.Manifests {
		if d.Digest == md && d.Annotations["org.opencontainers.image.ref.name"] == tag {
			found = true
		}
	}
	if !found {
		t.Errorf("index.json does not list %s as %q: %s", md, tag, b)
	}
	got, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(md, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, m) {
		t.Errorf("layout blob %s = %s, want %s", md, got, m)
	}
}

// The tests below document what docker-registry 2.8.2 (distribution) and
// skopeo 1.9.3 do with the manifests the converters produce.

// TestSubjectAndArtifactType: the registry stores an image manifest with
// subject and artifactType byte for byte, but knows nothing of referrers:
// no OCI-Subject header, no referrers API, and the subject need not exist.
func TestSubjectAndArtifactType(t *testing.T) {
	r := Start(t)
	c := newClient(t, r)
	base := pushImage(c, "subj", "base", mtConfig, mtLayerGzip, nil)
	bd := descriptor{MediaType: mtManifest, Digest: digest(base), Size: int64(len(base))}
	withSubject := func(subject descriptor) func(*manifest) {
		return func(m *manifest) {
			m.ArtifactType = "application/vnd.example.test"
			m.Subject = &subject
		}
	}
	ref := pushImage(c, "subj", "ref", mtNydusConfig, mtNydusBlob, withSubject(bd))
	resp, body := c.do("GET", c.base+"subj/manifests/ref", nil, "")
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, ref) || resp.Header.Get("Content-Type") != mtManifest {
		t.Errorf("GET manifest with subject: %s %q %s", resp.Status, resp.Header.Get("Content-Type"), body)
	}
	// pushImage checked for 201; check the PUT answer's headers too.
	resp, _ = c.putManifest("subj", "ref", mtManifest, ref)
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("OCI-Subject") != "" {
		t.Errorf("PUT manifest with subject: %s, OCI-Subject %q", resp.Status, resp.Header.Get("OCI-Subject"))
	}
	for _, q := range []string{"", "?artifactType=application%2Fvnd.example.test"} {
		resp, body = c.do("GET", c.base+"subj/referrers/"+bd.Digest+q, nil, "")
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET referrers%s: %s %s; want 404", q, resp.Status, body)
		}
	}
	ghost := descriptor{MediaType: mtManifest, Digest: digest([]byte("absent")), Size: 6}
	pushImage(c, "subj", "ghost", mtConfig, mtLayerGzip, withSubject(ghost))
	if got := r.InspectRaw(t, "subj:ref"); !bytes.Equal(got, ref) {
		t.Errorf("InspectRaw of manifest with subject = %s, want %s", got, ref)
	}
}

// TestNydusAndErofsMediaTypes: the registry accepts any layer and config
// media type, but still requires the blobs to be there.
func TestNydusAndErofsMediaTypes(t *testing.T) {
	r := Start(t)
	c := newClient(t, r)
	pushImage(c, "mt", "nydus", mtNydusConfig, mtNydusBlob, nil)
	pushImage(c, "mt", "erofs", mtConfig, mtErofsLayer, nil)
	cfg := c.blob("mt", mtNydusConfig, []byte("{}"))
	for _, mt := range []string{mtNydusBlob, mtErofsLayer} {
		m := manifest{SchemaVersion: 2, MediaType: mtManifest, Config: &cfg,
			Layers: []descriptor{{MediaType: mt, Digest: digest([]byte("absent")), Size: 6}}}
		resp, body := c.putManifest("mt", "missing", mtManifest, mustJSON(t, m))
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("MANIFEST_BLOB_UNKNOWN")) {
			t.Errorf("PUT manifest with missing %s layer: %s %s; want 400 MANIFEST_BLOB_UNKNOWN", mt, resp.Status, body)
		}
	}
	if got := r.Tags(t, "mt"); !slices.Equal(got, []string{"erofs", "nydus"}) {
		t.Errorf("Tags = %q, want [erofs nydus]", got)
	}
}

// TestIndexWithOSFeatures: the registry accepts an OCI index whose
// platforms carry os.features, once the manifests it lists are there;
// skopeo inspects and copies it (with --all) byte for byte whatever the
// layer media types, and without --all takes the first entry for the
// host's platform, os.features or not.
func TestIndexWithOSFeatures(t *testing.T) {
	r := Start(t)
	c := newClient(t, r)
	plain := pushImage(c, "idx", "plain", mtConfig, mtLayerGzip, nil)
	nydus := pushImage(c, "idx", "nydus", mtNydusConfig, mtNydusBlob, nil)
	erofs := pushImage(c, "idx", "erofs", mtConfig, mtErofsLayer, nil)
	entry := func(m []byte, features ...string) descriptor {
		return descriptor{MediaType: mtManifest, Digest: digest(m), Size: int64(len(m)),
			Platform: &platform{Architecture: runtime.GOARCH, OS: "linux", OSFeatures: features}}
	}
	idx := mustJSON(t, manifest{SchemaVersion: 2, MediaType: mtIndex, Manifests: []descriptor{
		entry(nydus, "nydus.remoteimage.v1"), entry(plain), entry(erofs, "erofs"),
	}})
	c.mustPutManifest("idx", "all", mtIndex, idx)

	missing := mustJSON(t, manifest{SchemaVersion: 2, MediaType: mtIndex, Manifests: []descriptor{
		entry(plain), entry([]byte("absent"), "nydus.remoteimage.v1"),
	}})
	resp, body := c.putManifest("idx", "missing", mtIndex, missing)
	if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte("MANIFEST_BLOB_UNKNOWN")) {
		t.Errorf("PUT index listing a missing manifest: %s %s; want 400 MANIFEST_BLOB_UNKNOWN", resp.Status, body)
	}

	if got := r.InspectRaw(t, "idx:all"); !bytes.Equal(got, idx) {
		t.Errorf("InspectRaw of index = %s, want %s", got, idx)
	}
	if got := r.InspectRawDigest(t, "idx", digest(erofs)); !bytes.Equal(got, erofs) {
		t.Errorf("InspectRawDigest of erofs manifest = %s, want %s", got, erofs)
	}

	dir := filepath.Join(t.TempDir(), "all")
	r.CopyToLayout(t, "idx:all", dir, "all", true)
	checkLayout(t, dir, "all", digest(idx), idx)
	for _, m := range [][]byte{plain, nydus, erofs} {
		var mf manifest
		if err := json.Unmarshal(m, &mf); err != nil {
			t.Fatal(err)
		}
		for _, d := range append([]descriptor{{Digest: digest(m)}, *mf.Config}, mf.Layers...) {
			if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d.Digest, "sha256:"))); err != nil {
				t.Errorf("copy --all: %v", err)
			}
		}
	}

	dir = filepath.Join(t.TempDir(), "one")
	r.CopyToLayout(t, "idx:all", dir, "one", false)
	checkLayout(t, dir, "one", digest(nydus), nydus)
}
