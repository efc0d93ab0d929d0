package registrytest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert/internal/e2eenv"
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
	r, err := start(t, bin, l.Addr().(*net.TCPAddr).Port, Options{})
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
	port, err := e2eenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	_, err = start(t, bin, port, Options{})
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

// notice is one notification request an endpoint received.
type notice struct {
	header http.Header
	body   []byte
	ok     bool // answered 200
}

// listener is a notification endpoint that records what it receives and
// answers status to the first fail requests and 200 after.
type listener struct {
	mu      sync.Mutex
	notices []notice
	fail    int
	status  int
}

func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	l.mu.Lock()
	defer l.mu.Unlock()
	n := notice{r.Header.Clone(), b, l.fail == 0}
	l.notices = append(l.notices, n)
	if !n.ok {
		l.fail--
		w.WriteHeader(l.status)
	}
}

// event is the part of a notification event the tests read.
type event struct {
	Action string
	Target struct {
		MediaType  string
		Digest     string
		Repository string
		Tag        string
	}
	Request struct{ Host, Method string }
}

// events returns the events delivered so far (in requests answered 200),
// with the headers of the request each came in, and the number of
// requests answered otherwise.
func (l *listener) events(t *testing.T) ([]event, []http.Header, int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var evs []event
	var hs []http.Header
	failed := 0
	for _, n := range l.notices {
		if !n.ok {
			failed++
			continue
		}
		var env struct{ Events []event }
		if err := json.Unmarshal(n.body, &env); err != nil {
			t.Fatalf("notification body %s: %v", n.body, err)
		}
		for _, e := range env.Events {
			evs = append(evs, e)
			hs = append(hs, n.header)
		}
	}
	return evs, hs, failed
}

// waitEvent waits up to 10 seconds for a delivered event that match
// accepts.
func (l *listener) waitEvent(t *testing.T, what string, match func(event) bool) (event, http.Header) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, hs, _ := l.events(t)
		for i, e := range evs {
			if match(e) {
				return e, hs[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notification of %s within 10s; got %+v", what, evs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNotify checks that a registry started with Options.Notify sends its
// events to the endpoint with the headers, retries a failing endpoint, and
// leaves out the ignored media types and actions.
func TestNotify(t *testing.T) {
	l := &listener{fail: 2, status: http.StatusServiceUnavailable}
	srv := httptest.NewServer(l)
	defer srv.Close()
	r := StartWith(t, Options{Notify: &Endpoint{
		URL:               srv.URL + "/events",
		Headers:           http.Header{"Authorization": {"Bearer secret"}},
		Backoff:           10 * time.Millisecond,
		IgnoredActions:    []string{"pull"},
		IgnoredMediaTypes: []string{"application/octet-stream"},
	}})
	c := newClient(t, r)
	m := pushImage(c, "notify/img", "v1", mtConfig, mtLayerGzip, nil)
	e, h := l.waitEvent(t, "the manifest push", func(e event) bool { return e.Target.MediaType == mtManifest })
	if e.Action != "push" || e.Target.Repository != "notify/img" || e.Target.Tag != "v1" || e.Target.Digest != digest(m) ||
		e.Request.Host != r.Host || e.Request.Method != "PUT" {
		t.Errorf("manifest event %+v; want a push of notify/img:v1 %s by PUT to %s", e, digest(m), r.Host)
	}
	if got := h.Get("Authorization"); got != "Bearer secret" {
		t.Errorf("Authorization header %q", got)
	}
	if got := h.Get("Content-Type"); got != "application/vnd.docker.distribution.events.v1+json" {
		t.Errorf("Content-Type %q", got)
	}
	r.InspectRaw(t, "notify/img:v1") // a pull: ignored
	pushImage(c, "notify/img", "v2", mtConfig, mtLayerGzip, nil)
	l.waitEvent(t, "the second push", func(e event) bool { return e.Target.Tag == "v2" })
	evs, _, failed := l.events(t)
	if len(evs) != 2 || evs[0].Target.Tag != "v1" || evs[1].Target.Tag != "v2" {
		t.Errorf("delivered events %+v; want the two manifest pushes only, in order", evs)
	}
	if failed != 2 {
		t.Errorf("%d failed deliveries, want 2 (then retried)", failed)
	}
}

// TestNotifyIgnoredActionsAlone checks that StartWith refuses
// IgnoredActions without IgnoredMediaTypes, which the registry would not
// apply.
func TestNotifyIgnoredActionsAlone(t *testing.T) {
	f := &fakeTB{TB: t}
	r := StartWith(f, Options{Notify: &Endpoint{URL: "http://127.0.0.1:1/", IgnoredActions: []string{"pull"}}})
	if r != nil || !strings.Contains(f.failed, "IgnoredActions without IgnoredMediaTypes") {
		t.Errorf("failed with %q", f.failed)
	}
}

// TestNotifyConfig checks the notifications section written for an
// endpoint: every option is there, quoted.
func TestNotifyConfig(t *testing.T) {
	got := notifications(&Endpoint{
		URL:               "http://127.0.0.1:1/x",
		Headers:           http.Header{"Authorization": {"Bearer a: b"}, "X-Two": {"1", "2"}},
		Timeout:           2 * time.Second,
		Threshold:         4,
		Backoff:           50 * time.Millisecond,
		IgnoredActions:    []string{"pull"},
		IgnoredMediaTypes: []string{"application/octet-stream"},
	})
	want := `notifications:
  endpoints:
    - name: registrytest
      url: "http://127.0.0.1:1/x"
      timeout: "2s"
      threshold: 4
      backoff: "50ms"
      headers:
        "Authorization": ["Bearer a: b"]
        "X-Two": ["1","2"]
      ignore:
        mediatypes: ["application/octet-stream"]
        actions: ["pull"]
`
	if got != want {
		t.Errorf("notifications section:\n%s\nwant:\n%s", got, want)
	}
	if got := notifications(nil); got != "" {
		t.Errorf("no endpoint: %q", got)
	}
}

// TestParseLog checks the reading of request lines from a registry log
// as distribution 2.8.2 writes them.
func TestParseLog(t *testing.T) {
	log := `{"level":"info","msg":"listening on 127.0.0.1:5000","time":"2026-12-04T03:44:20Z"}
not json
{"http.request.method":"PUT","http.request.uri":"/v2/lib/x/manifests/v1","http.response.status":201,"level":"info","msg":"response completed"}
{"err.code":"blob unknown","http.request.method":"HEAD","http.request.uri":"/v2/lib/x/blobs/sha256:33","http.response.status":404,"level":"error","msg":"response completed with error"}
{"http.request.method":"PUT","http.request.uri":"/v2/a/b/c/manifests/sha256:abcd","http.response.status":201,"msg":"response completed"}
{"http.request.method":"PUT","http.request.uri":"/v2/lib/x/manifests/v1","http.response.status":201,"msg":"response completed"}
{"http.request.method":"PUT","http.request.uri":"/v2/lib/x/manifests/v2","http.response.status":400,"msg":"response completed with error"}
{"http.request.method":"PUT","http.request.uri":"/v2/lib/x/blobs/uploads/u?digest=sha256%3A1","http.response.status":201,"msg":"response completed"}
{"http.request.method":"PUT","http.request.uri":"/v2/lib/x/manif`
	reqs, err := parseLog([]byte(log))
	if err != nil {
		t.Fatal(err)
	}
	if len(reqs) != 6 || reqs[1] != (Request{"HEAD", "/v2/lib/x/blobs/sha256:33", 404}) {
		t.Errorf("requests %+v", reqs)
	}
	got := manifestPuts(reqs)
	want := map[string]int{"lib/x:v1": 2, "a/b/c@sha256:abcd": 1}
	if !maps.Equal(got, want) {
		t.Errorf("manifest puts %v, want %v", got, want)
	}
	if _, err := parseLog([]byte(`{"msg":"response completed","http.request.method":"GET"}`)); err == nil {
		t.Error("a request line without URI or status parsed")
	}
}

// TestPushAndManifestPuts pushes an image from an OCI layout with Push and
// checks that the registry holds it byte for byte and that its log counts
// one manifest PUT for it.
func TestPushAndManifestPuts(t *testing.T) {
	r := Start(t)
	c := newClient(t, r)
	m := pushImage(c, "orig", "v1", mtConfig, mtLayerGzip, nil)
	dir := filepath.Join(t.TempDir(), "layout")
	r.CopyToLayout(t, "orig:v1", dir, "img", false)
	r.Push(t, dir, "img", "copy/a:x", false)
	r.Push(t, dir, "img", "copy/a:x", false)
	r.Push(t, dir, "img", "copy/b:y", false)
	if got := r.InspectRaw(t, "copy/a:x"); !bytes.Equal(got, m) {
		t.Errorf("pushed manifest %s, want %s", got, m)
	}
	want := map[string]int{"orig:v1": 1, "copy/a:x": 2, "copy/b:y": 1}
	var got map[string]int
	for range 50 { // the log line follows the answer
		if got = r.ManifestPuts(t); maps.Equal(got, want) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !maps.Equal(got, want) {
		t.Errorf("manifest puts %v, want %v", got, want)
	}
}
