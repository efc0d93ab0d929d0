//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rafs-dev/rafs/convert/internal/imagetest"
	"github.com/rafs-dev/rafs/convert/internal/registrytest"
	"github.com/rafs-dev/rafs/convert/serve/queue"
)

const (
	// e2eAuth is the Authorization header rafs serve requires in the
	// tests, and the registry sends with its notifications.
	e2eAuth = "Bearer e2e-secret"
	// e2eWait bounds every wait for rafs serve to finish something.
	e2eWait = 3 * time.Minute
	// annotations rafs serve puts on converted manifests.
	annoSource = "dev.rafs.serve.source"
	annoTask   = "dev.rafs.serve.task"
)

// rafsBinary builds the rafs CLI into a directory t removes when it ends.
// The end-to-end tests are subtests of one test, which builds it once.
func rafsBinary(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the rafs CLI with a registry; skipped with -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("building rafs: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "rafs")
	out, err := exec.Command(goBin, "build", "-o", bin, "github.com/rafs-dev/rafs/cmd/rafs").CombinedOutput()
	if err != nil {
		t.Fatalf("go build rafs: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a 127.0.0.1 address that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// e2eProxy forwards HTTP requests to the registry, keeping the Host
// header (so the registry names the proxy in its notifications and
// upload locations), and holds GET requests for held blobs until they
// are released or their client goes away.
type e2eProxy struct {
	srv *http.Server
	// Host is the proxy's address, "127.0.0.1:PORT".
	Host string

	mu      sync.Mutex
	held    map[string]chan struct{} // blob digest → closed on release
	waiting map[string]int           // blob digest → requests held now
	blobGET map[string]int           // blob digest → GETs answered
}

func startProxy(t testing.TB, registryHost string) *e2eProxy {
	t.Helper()
	target := &url.URL{Scheme: "http", Host: registryHost}
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = log.New(io.Discard, "", 0) // a killed client's request ends in an error
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &e2eProxy{Host: l.Addr().String(), held: map[string]chan struct{}{}, waiting: map[string]int{}, blobGET: map[string]int{}}
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if d, ok := blobDigest(r); ok {
			if !p.wait(r.Context(), d) {
				return // the client went away (killed)
			}
		}
		rp.ServeHTTP(w, r)
	})}
	go p.srv.Serve(l)
	t.Cleanup(func() {
		p.releaseAll()
		p.srv.Close()
	})
	return p
}

// blobDigest returns the digest of a GET of a blob.
func blobDigest(r *http.Request) (string, bool) {
	if r.Method != http.MethodGet {
		return "", false
	}
	i := strings.LastIndex(r.URL.Path, "/blobs/")
	if !strings.HasPrefix(r.URL.Path, "/v2/") || i < 0 {
		return "", false
	}
	d := r.URL.Path[i+len("/blobs/"):]
	return d, strings.HasPrefix(d, "sha256:")
}

// wait blocks while blob d is held; it reports false when ctx ended
// first.
func (p *e2eProxy) wait(ctx context.Context, d string) bool {
	p.mu.Lock()
	p.blobGET[d]++
	ch, ok := p.held[d]
	if ok {
		p.waiting[d]++
	}
	p.mu.Unlock()
	if !ok {
		return true
	}
	defer func() {
		p.mu.Lock()
		p.waiting[d]--
		p.mu.Unlock()
	}()
	select {
	case <-ch:
		return true
	case <-ctx.Done():
		return false
	}
}

// hold makes GETs of blob d wait until release.
func (p *e2eProxy) hold(d v1.Hash) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.held[d.String()]; !ok {
		p.held[d.String()] = make(chan struct{})
	}
}

// release lets GETs of blob d through again.
func (p *e2eProxy) release(d v1.Hash) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ch, ok := p.held[d.String()]; ok {
		close(ch)
		delete(p.held, d.String())
	}
}

func (p *e2eProxy) releaseAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for d, ch := range p.held {
		close(ch)
		delete(p.held, d)
	}
}

// waitHeld waits until a GET of blob d is being held.
func (p *e2eProxy) waitHeld(t testing.TB, d v1.Hash) {
	t.Helper()
	waitFor(t, "a download of blob "+d.String()+" to reach the proxy", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.waiting[d.String()] > 0
	})
}

// waitFor polls cond every 20ms until it holds, failing t after e2eWait.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(e2eWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", e2eWait, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// e2eEnv is a registry notifying an address where a test runs rafs serve
// (or a balancer in front of replicas), reached through a proxy.
type e2eEnv struct {
	bin string
	// reg is the registry itself (its log); via is the same registry
	// reached through the proxy, which pushes and reads use.
	reg, via *registrytest.Registry
	proxy    *e2eProxy
	// notify is the address the registry sends notifications to.
	notify string
	tmp    string
}

// newEnv starts a registry notifying a free address, and its proxy. With
// quiet set the registry notifies nobody (tests that send notifications
// themselves).
func newEnv(t testing.TB, bin string, quiet bool) *e2eEnv {
	t.Helper()
	e := &e2eEnv{bin: bin, notify: freeAddr(t), tmp: t.TempDir()}
	var opts registrytest.Options
	if !quiet {
		opts.Notify = &registrytest.Endpoint{
			URL:     "http://" + e.notify + "/api/v1/notifications",
			Headers: http.Header{"Authorization": {e2eAuth}},
			Timeout: 10 * time.Second,
			Backoff: 100 * time.Millisecond,
		}
	}
	e.reg = registrytest.StartWith(t, opts)
	e.proxy = startProxy(t, e.reg.Host)
	via := *e.reg
	via.Host = e.proxy.Host
	e.via = &via
	return e
}

// push writes img to an OCI layout and pushes it with skopeo to repo:tag
// through the proxy. It returns the image's digest and when the push
// ended.
func (e *e2eEnv) push(t testing.TB, img v1.Image, repo, tag string) (v1.Hash, time.Time) {
	t.Helper()
	dir, err := os.MkdirTemp(e.tmp, "layout-")
	if err != nil {
		t.Fatal(err)
	}
	imagetest.WriteLayout(t, dir, "img", img)
	e.via.Push(t, dir, "img", repo+":"+tag, false)
	end := time.Now()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d, end
}

// source returns the task source rafs serve makes of a push of repo at
// digest d: PROXY/REPO@DIGEST.
func (e *e2eEnv) source(repo string, d v1.Hash) string {
	return e.proxy.Host + "/" + repo + "@" + d.String()
}

// manifestPuts waits briefly for the registry log to settle and returns
// its manifest PUT counts.
func (e *e2eEnv) manifestPuts(t testing.TB) map[string]int {
	t.Helper()
	var prev map[string]int
	for range 10 { // the registry logs a request after answering it
		cur := e.reg.ManifestPuts(t)
		if maps.Equal(cur, prev) {
			return cur
		}
		prev = cur
		time.Sleep(50 * time.Millisecond)
	}
	return prev
}

// manifestVisible reports whether the registry serves a manifest for
// repo:tag.
func (e *e2eEnv) manifestVisible(repo, tag string) bool {
	req, _ := http.NewRequest(http.MethodHead, "http://"+e.reg.Host+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// e2eServe is a rafs serve process.
type e2eServe struct {
	t    testing.TB
	bin  string
	addr string
	args []string // after serve --listen ADDR
	log  string   // standard output and error, appended across restarts

	cmd  *exec.Cmd
	done chan struct{}
}

// startServe runs rafs serve --listen addr with args and waits until it
// answers /healthz. It is SIGKILLed when the test ends, if still running.
func startServe(t testing.TB, bin, addr string, args ...string) *e2eServe {
	t.Helper()
	s := &e2eServe{t: t, bin: bin, addr: addr, args: args, log: filepath.Join(t.TempDir(), "serve.log")}
	t.Cleanup(func() {
		s.kill()
		if t.Failed() {
			t.Logf("rafs serve %s log:\n%s", addr, s.logTail())
		}
	})
	s.start()
	return s
}

// serveArgs returns the usual flags: both types, the tests' auth, a
// short lease and few retries, the embedded store in stateDir.
func serveArgs(stateDir string, more ...string) []string {
	return append([]string{"--type", "nydus", "--type", "erofs", "--plain-http", "--auth", e2eAuth,
		"--state-dir", stateDir, "--lease", "3s", "--retries", "3"}, more...)
}

func (s *e2eServe) start() {
	s.t.Helper()
	f, err := os.OpenFile(s.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	fmt.Fprintf(f, "=== %s: rafs serve --listen %s %s\n", time.Now().Format(time.RFC3339Nano), s.addr, strings.Join(s.args, " "))
	cmd := exec.Command(s.bin, append([]string{"serve", "--listen", s.addr}, s.args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Dir(s.log))
	err = cmd.Start()
	f.Close()
	if err != nil {
		s.t.Fatal(err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-s.done:
			s.t.Fatalf("rafs serve exited at start (%v); log:\n%s", cmd.ProcessState, s.logTail())
		default:
		}
		if code, _ := s.request(http.MethodGet, "/healthz", nil, ""); code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("rafs serve did not answer /healthz within 30s; log:\n%s", s.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running reports whether the process has not exited.
func (s *e2eServe) running() bool {
	if s.done == nil {
		return false
	}
	select {
	case <-s.done:
		return false
	default:
		return true
	}
}

// kill SIGKILLs the process (if running) and waits for it.
func (s *e2eServe) kill() {
	if s.running() {
		s.cmd.Process.Signal(syscall.SIGKILL)
		<-s.done
	}
}

// restart starts the process again with the same arguments.
func (s *e2eServe) restart() {
	s.t.Helper()
	s.kill()
	s.start()
}

// terminate sends SIGTERM (a second one kills rafs serve) and returns
// the exit code, failing t if the process does not exit within limit.
func (s *e2eServe) terminate(limit time.Duration) int {
	s.t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	return s.wait(limit)
}

// wait waits for the process to exit and returns its exit code, failing
// t if it does not exit within limit.
func (s *e2eServe) wait(limit time.Duration) int {
	s.t.Helper()
	select {
	case <-s.done:
	case <-time.After(limit):
		s.t.Fatalf("rafs serve still running %v after SIGTERM", limit)
	}
	return s.cmd.ProcessState.ExitCode()
}

// peakRSS returns the process's peak resident set size (VmHWM) in bytes.
func (s *e2eServe) peakRSS() int64 {
	s.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		s.t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				s.t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	s.t.Fatalf("no VmHWM in /proc/PID/status")
	return 0
}

func (s *e2eServe) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 8<<10 {
		b = b[len(b)-8<<10:]
	}
	return string(b)
}

// request sends a request to rafs serve with the Authorization header
// auth (none when empty) and returns the status and body; status 0 when
// the request failed.
func (s *e2eServe) request(method, path string, body []byte, auth string) (int, []byte) {
	req, err := http.NewRequest(method, "http://"+s.addr+path, bytes.NewReader(body))
	if err != nil {
		return 0, []byte(err.Error())
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v1+json")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// tasks lists rafs serve's tasks.
func (s *e2eServe) tasks() []queue.Task {
	s.t.Helper()
	code, body := s.request(http.MethodGet, "/api/v1/conversions", nil, e2eAuth)
	if code != http.StatusOK {
		s.t.Fatalf("GET /api/v1/conversions: %d %s", code, body)
	}
	var ts []queue.Task
	if err := json.Unmarshal(body, &ts); err != nil {
		s.t.Fatalf("GET /api/v1/conversions: %v in %s", err, body)
	}
	return ts
}

// task returns the task of source, if there is one (and fails t if there
// are several).
func (s *e2eServe) task(source string) (queue.Task, bool) {
	s.t.Helper()
	var found []queue.Task
	for _, tk := range s.tasks() {
		if tk.Source == source {
			found = append(found, tk)
		}
	}
	if len(found) > 1 {
		s.t.Fatalf("%d tasks of %s: %+v", len(found), source, found)
	}
	if len(found) == 0 {
		return queue.Task{}, false
	}
	return found[0], true
}

// waitTask waits until the task of source has one of the states and
// returns it. A FAILED task that is not awaited fails t at once.
func (s *e2eServe) waitTask(source string, states ...queue.Status) queue.Task {
	s.t.Helper()
	var tk queue.Task
	waitFor(s.t, fmt.Sprintf("the task of %s to be %v", source, states), func() bool {
		var ok bool
		tk, ok = s.task(source)
		if ok && tk.Status == queue.Failed && !slices.Contains(states, queue.Failed) {
			s.t.Fatalf("task %s FAILED: %s", tk.ID, tk.Error)
		}
		return ok && slices.Contains(states, tk.Status)
	})
	return tk
}

// notify posts a notification envelope.
func (s *e2eServe) notify(body []byte) (int, []byte) {
	return s.request(http.MethodPost, "/api/v1/notifications", body, e2eAuth)
}

// notifyResponse is the answer to a notification.
type notifyResponse struct {
	Tasks   []queue.Task `json:"tasks"`
	Ignored []struct {
		Push   json.RawMessage `json:"push"`
		Reason string          `json:"reason"`
	} `json:"ignored"`
}

func parseNotifyResponse(t testing.TB, body []byte) notifyResponse {
	t.Helper()
	var r notifyResponse
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("notification response %s: %v", body, err)
	}
	return r
}

// pushEnvelope returns a notification envelope with one event: a push of
// the OCI manifest d to repo:tag of host, as distribution 2.8 writes it.
func pushEnvelope(host, repo, tag string, d v1.Hash, size int64) []byte {
	ev := map[string]any{
		"id":        fmt.Sprintf("e2e-%s-%s", tag, d.Hex[:12]),
		"timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"action":    "push",
		"target": map[string]any{
			"mediaType":  "application/vnd.oci.image.manifest.v1+json",
			"size":       size,
			"digest":     d.String(),
			"length":     size,
			"repository": repo,
			"url":        "http://" + host + "/v2/" + repo + "/manifests/" + d.String(),
			"tag":        tag,
		},
		"request": map[string]any{"id": "e2e", "addr": "127.0.0.1:1", "host": host, "method": "PUT", "useragent": "e2e"},
		"actor":   map[string]any{},
		"source":  map[string]any{"addr": "e2e:5000", "instanceID": "e2e"},
	}
	b, _ := json.Marshal(map[string]any{"events": []any{ev}})
	return b
}

// manifestOf returns the manifest stored as repo:tag.
func manifestOf(t testing.TB, r *registrytest.Registry, repoAndTag string) *v1.Manifest {
	t.Helper()
	m, err := v1.ParseManifest(bytes.NewReader(r.InspectRaw(t, repoAndTag)))
	if err != nil {
		t.Fatalf("%s: %v", repoAndTag, err)
	}
	return m
}

// checkAnnotations checks that the converted manifest repo:tag records
// its source and task.
func checkAnnotations(t testing.TB, r *registrytest.Registry, repoAndTag string, tk queue.Task) {
	t.Helper()
	m := manifestOf(t, r, repoAndTag)
	if m.Annotations[annoSource] != tk.Source || m.Annotations[annoTask] != tk.ID {
		t.Errorf("%s annotations %v; want %s=%s and %s=%s", repoAndTag, m.Annotations, annoSource, tk.Source, annoTask, tk.ID)
	}
}

// wantPuts checks that each of refs ("repo:tag") was PUT exactly once.
func wantPuts(t testing.TB, puts map[string]int, refs ...string) {
	t.Helper()
	for _, ref := range refs {
		if puts[ref] != 1 {
			t.Errorf("registry log: %d manifest PUTs of %s, want 1 (all PUTs: %v)", puts[ref], ref, puts)
		}
	}
}
