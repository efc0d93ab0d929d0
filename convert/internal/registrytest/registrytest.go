// Package registrytest runs a real OCI registry (the distribution project's
// docker-registry) on 127.0.0.1 for end-to-end tests, and inspects and copies
// what tests push to it with skopeo.
//
// Both tools are external programs. When one is not on PATH, the test using
// it is skipped, unless the environment variable RAFS_E2E is "require", in
// which case the test fails instead (for CI machines that must run it).
//
// The registry serves plain HTTP without authentication; the skopeo helpers
// pass the flags that allow that. StartWith can make it send its event
// notifications to an endpoint, as a registry configured to notify a
// conversion service does. The registry logs every request it answers (as
// JSON lines); Requests and ManifestPuts read that log.
package registrytest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert/internal/e2eenv"
)

// EnvVar names the environment variable that turns skips into failures
// when set to "require".
const EnvVar = e2eenv.EnvVar

const (
	registryBin   = "docker-registry"
	skopeoBin     = "skopeo"
	startTimeout  = 10 * time.Second
	pollInterval  = 20 * time.Millisecond
	portAttempts  = 5
	skopeoTimeout = 5 * time.Minute
	logTailBytes  = 4 << 10
	// tokenHeader is a response header the registry is configured to send
	// with a per-instance value, so that Start knows the server answering
	// on its port is the one it started.
	tokenHeader = "X-Registrytest-Token"
)

// Registry is a running registry. It is stopped by a t.Cleanup registered
// by Start.
type Registry struct {
	// Host is the registry's address, "127.0.0.1:PORT", as used in image
	// references and in http://HOST/v2/ URLs.
	Host string
	// Dir is the root directory of the registry's filesystem storage.
	Dir string
	// Log is the registry's log file: its standard output and error, one
	// JSON object a line (logrus's JSON formatter), with a "response
	// completed" line for every request answered.
	Log string
}

// Options configures the registry StartWith starts. The zero value starts
// the registry Start does.
type Options struct {
	// Notify, when not nil, makes the registry send its notifications to
	// an endpoint.
	Notify *Endpoint
}

// Endpoint is where a registry sends its notifications: POST requests whose
// body is an envelope of events ({"events":[...]}, media type
// application/vnd.docker.distribution.events.v1+json), one for every blob
// or manifest pushed, pulled, mounted or deleted. The registry queues the
// events in memory and delivers them in order, one request at a time; it
// retries a delivery that fails (an error, or an answer other than 2xx or
// 3xx) until it succeeds, waiting Backoff after Threshold failures in a row.
// It gives up on nothing while it runs, and loses what is queued when it
// stops.
type Endpoint struct {
	// URL is the endpoint, e.g. "http://127.0.0.1:8080/api/v1/notifications".
	URL string
	// Headers are sent with every request, e.g. Authorization.
	Headers http.Header
	// Timeout is how long a delivery may take; 1s when zero.
	Timeout time.Duration
	// Threshold is the number of failed deliveries in a row after which
	// the registry waits Backoff before the next; 3 when zero.
	Threshold int
	// Backoff is that wait; 100ms when zero.
	Backoff time.Duration
	// IgnoredActions are actions ("pull", "push", "mount", "delete") whose
	// events are not sent. docker-registry 2.8.2 applies them only along
	// with IgnoredMediaTypes, so StartWith refuses them alone.
	IgnoredActions []string
	// IgnoredMediaTypes are target media types whose events are not sent,
	// e.g. "application/octet-stream" for blobs.
	IgnoredMediaTypes []string
}

// errPortTaken reports that the registry could not listen on its port
// because another process took it after freePort released it.
var errPortTaken = errors.New("port taken")

// Start starts a registry on a free port of 127.0.0.1, storing into a
// temporary directory, and waits until it answers GET /v2/. The registry
// is killed when the test and its subtests finish. Start skips t (or fails
// it under RAFS_E2E=require) when docker-registry is not on PATH, and fails
// t when the registry does not come up within 10 seconds.
func Start(t testing.TB) *Registry {
	t.Helper()
	return StartWith(t, Options{})
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts Options) *Registry {
	t.Helper()
	if n := opts.Notify; n != nil {
		if n.URL == "" {
			t.Fatalf("registrytest: Options.Notify has no URL")
			return nil
		}
		if n.Timeout < 0 || n.Threshold < 0 || n.Backoff < 0 {
			t.Fatalf("registrytest: Options.Notify has a negative timeout, threshold or backoff: %+v", *n)
			return nil
		}
		if len(n.IgnoredActions) > 0 && len(n.IgnoredMediaTypes) == 0 {
			t.Fatalf("registrytest: Options.Notify has IgnoredActions without IgnoredMediaTypes, which docker-registry 2.8.2 ignores")
			return nil
		}
	}
	bin, err := exec.LookPath(registryBin)
	if err != nil {
		skipOrFail(t, registryBin+" not found on PATH (Debian package docker-registry)")
		return nil
	}
	for range portAttempts {
		port, err := e2eenv.FreePort()
		if err != nil {
			t.Fatalf("registrytest: finding a free port: %v", err)
		}
		r, err := start(t, bin, port, opts)
		if err == nil {
			return r
		}
		if !errors.Is(err, errPortTaken) {
			t.Fatalf("registrytest: %v", err)
		}
		t.Logf("registrytest: %v; trying another port", err)
	}
	t.Fatalf("registrytest: %d ports in a row were taken before the registry could listen", portAttempts)
	return nil
}

// start runs the registry binary bin on port and waits for it. It returns
// an error wrapping errPortTaken when the port was in use.
func start(t testing.TB, bin string, port int, opts Options) (*Registry, error) {
	t.Helper()
	tmp := t.TempDir()
	r := &Registry{
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Dir:  filepath.Join(tmp, "storage"),
		Log:  filepath.Join(tmp, "registry.log"),
	}
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("random token: %w", err)
	}
	token := hex.EncodeToString(tok[:])
	cfg := filepath.Join(tmp, "config.yml")
	if err := os.WriteFile(cfg, []byte(config(r, token, opts)), 0o644); err != nil {
		return nil, fmt.Errorf("writing registry config: %w", err)
	}
	logName := r.Log
	logFile, err := os.Create(logName)
	if err != nil {
		return nil, fmt.Errorf("creating registry log: %w", err)
	}
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	err = cmd.Start()
	logFile.Close() // the child has its own descriptor
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	exited := false
	var exitErr error
	// Registered after t.TempDir, so it runs before the directory is
	// removed.
	t.Cleanup(func() {
		if !exited {
			cmd.Process.Kill()
			<-done
		}
	})

	client := &http.Client{Timeout: time.Second}
	url := "http://" + r.Host + "/v2/"
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case exitErr = <-done:
			exited = true
			tail := logTail(logName)
			if strings.Contains(tail, "address already in use") {
				return nil, fmt.Errorf("%s: %w", r.Host, errPortTaken)
			}
			return nil, fmt.Errorf("%s exited before answering %s: %v; log tail:\n%s", bin, url, exitErr, tail)
		default:
		}
		if ready(client, url, token) {
			return r, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not answer %s within %v; log tail:\n%s", bin, url, startTimeout, logTail(logName))
		}
		time.Sleep(pollInterval)
	}
}

// config returns the registry's configuration file. The log level is info,
// the level of the lines that record requests.
func config(r *Registry, token string, opts Options) string {
	q := strconv.Quote
	return `version: 0.1
log:
  level: info
  formatter: json
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: ` + q(r.Dir) + `
  delete:
    enabled: true
http:
  addr: ` + q(r.Host) + `
  secret: ` + q(token) + `
  headers:
    ` + tokenHeader + `: [` + q(token) + `]
` + notifications(opts.Notify)
}

// notifications returns the configuration's notifications section for n
// (none when n is nil). Strings are quoted as JSON, which YAML reads.
func notifications(n *Endpoint) string {
	if n == nil {
		return ""
	}
	q := strconv.Quote
	list := func(l []string) string {
		if len(l) == 0 {
			return "[]"
		}
		b, _ := json.Marshal(l)
		return string(b)
	}
	timeout, threshold, backoff := n.Timeout, n.Threshold, n.Backoff
	if timeout == 0 {
		timeout = time.Second
	}
	if threshold == 0 {
		threshold = 3
	}
	if backoff == 0 {
		backoff = 100 * time.Millisecond
	}
	var b strings.Builder
	b.WriteString("notifications:\n  endpoints:\n")
	b.WriteString("    - name: registrytest\n")
	b.WriteString("      url: " + q(n.URL) + "\n")
	b.WriteString("      timeout: " + q(timeout.String()) + "\n")
	b.WriteString("      threshold: " + strconv.Itoa(threshold) + "\n")
	b.WriteString("      backoff: " + q(backoff.String()) + "\n")
	if len(n.Headers) > 0 {
		b.WriteString("      headers:\n")
		for _, k := range slices.Sorted(maps.Keys(n.Headers)) {
			b.WriteString("        " + q(k) + ": " + list(n.Headers[k]) + "\n")
		}
	}
	b.WriteString("      ignore:\n")
	b.WriteString("        mediatypes: " + list(n.IgnoredMediaTypes) + "\n")
	b.WriteString("        actions: " + list(n.IgnoredActions) + "\n")
	return b.String()
}

// ready reports whether GET url answers 200 from the registry started with
// token.
func ready(client *http.Client, url, token string) bool {
	resp, err := client.Get(url)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK && resp.Header.Get(tokenHeader) == token
}

// logTail returns the end of the log file name.
func logTail(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Sprintf("(reading log: %v)", err)
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
	}
	return string(b)
}

// Ref returns the reference of repoAndTag ("repo:tag" or "repo@digest")
// in the registry: "HOST/" + repoAndTag.
func (r *Registry) Ref(repoAndTag string) string {
	return r.Host + "/" + repoAndTag
}

// Skopeo runs skopeo with args and returns its standard output. It fails t
// with skopeo's standard error when skopeo fails (or runs longer than five
// minutes), and skips t (or fails it under RAFS_E2E=require) when skopeo is
// not on PATH. args are passed as they are: the caller adds the TLS and
// policy flags the command needs.
func Skopeo(t testing.TB, args ...string) []byte {
	t.Helper()
	out, err := runSkopeo(t, args...)
	if err != nil && !errors.Is(err, exec.ErrNotFound) { // not found: skipped
		t.Fatalf("registrytest: %v", err)
	}
	return out
}

// runSkopeo runs skopeo and returns its standard output, or an error
// carrying its standard error. Without skopeo it skips (or fails) t and
// returns an error wrapping exec.ErrNotFound.
func runSkopeo(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	bin, err := exec.LookPath(skopeoBin)
	if err != nil {
		skipOrFail(t, skopeoBin+" not found on PATH (Debian package skopeo)")
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), skopeoTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (timed out after %v)", err, skopeoTimeout)
		}
		return nil, fmt.Errorf("skopeo %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return stdout.Bytes(), nil
}

// InspectRaw returns the manifest (or index) stored under repoAndTag
// ("repo:tag"), byte for byte, as skopeo inspect --raw reads it.
func (r *Registry) InspectRaw(t testing.TB, repoAndTag string) []byte {
	t.Helper()
	return Skopeo(t, "inspect", "--raw", "--tls-verify=false", "docker://"+r.Ref(repoAndTag))
}

// InspectRawDigest is InspectRaw for the manifest of repo with digest
// ("sha256:...").
func (r *Registry) InspectRawDigest(t testing.TB, repo, digest string) []byte {
	t.Helper()
	return r.InspectRaw(t, repo+"@"+digest)
}

// CopyToLayout copies the image repoAndTag ("repo:tag") from the registry
// into the OCI image layout dir (created if missing), under the reference
// name tag, keeping manifests byte for byte (skopeo --preserve-digests).
// With all set, it copies every manifest an index lists (skopeo --all);
// otherwise skopeo picks the one for the host's platform. dir must not
// contain a colon, which skopeo's oci: transport cannot express.
func (r *Registry) CopyToLayout(t testing.TB, repoAndTag, dir, tag string, all bool) {
	t.Helper()
	if strings.Contains(dir, ":") {
		t.Fatalf("registrytest: OCI layout directory %q contains a colon", dir)
	}
	args := []string{"--insecure-policy", "copy"}
	if all {
		args = append(args, "--all")
	}
	args = append(args, "--src-tls-verify=false", "--preserve-digests", "docker://"+r.Ref(repoAndTag), "oci:"+dir+":"+tag)
	_, err := runSkopeo(t, args...)
	if err != nil && all && strings.Contains(err.Error(), "we cannot modify it") {
		// skopeo 1.9.3 re-encodes an index whose entries carry fields it
		// does not know (artifactType, which go-containerregistry
		// writes), and so refuses --preserve-digests with --all. The
		// manifests are still copied unchanged without the flag; only the
		// index's own digest changes.
		args = slices.DeleteFunc(args, func(a string) bool { return a == "--preserve-digests" })
		_, err = runSkopeo(t, args...)
	}
	if err != nil && !errors.Is(err, exec.ErrNotFound) { // not found: skipped
		t.Fatalf("registrytest: %v", err)
	}
}

// Tags returns the tags of repo, sorted (the registry lists them in the
// order its storage directory happens to return them).
func (r *Registry) Tags(t testing.TB, repo string) []string {
	t.Helper()
	out := Skopeo(t, "list-tags", "--tls-verify=false", "docker://"+r.Ref(repo))
	var list struct {
		Tags []string
	}
	if err := json.Unmarshal(out, &list); err != nil {
		t.Fatalf("registrytest: parsing skopeo list-tags output %q: %v", out, err)
	}
	slices.Sort(list.Tags)
	return list.Tags
}

// Push copies the image (or index) named tag in the OCI layout dir into
// the registry as repoAndTag ("repo:tag"), with skopeo copy, keeping its
// manifests byte for byte (--preserve-digests), as a user pushing an image
// does: blobs first, then the manifest. With all set, it copies every
// manifest an index lists (skopeo --all).
func (r *Registry) Push(t testing.TB, dir, tag, repoAndTag string, all bool) {
	t.Helper()
	if strings.Contains(dir, ":") {
		t.Fatalf("registrytest: OCI layout directory %q contains a colon", dir)
	}
	args := []string{"--insecure-policy", "copy"}
	if all {
		args = append(args, "--all")
	}
	args = append(args, "--dest-tls-verify=false", "--preserve-digests", "oci:"+dir+":"+tag, "docker://"+r.Ref(repoAndTag))
	Skopeo(t, args...)
}

// Request is a request the registry answered, as its log records it.
type Request struct {
	Method string // "PUT"
	URI    string // "/v2/REPO/manifests/REF", query included
	Status int    // 201
}

// Requests returns the requests the registry has answered so far, in the
// order it logged them (when it finished answering each). A request whose
// answer a client just received may not be logged yet.
func (r *Registry) Requests(t testing.TB) []Request {
	t.Helper()
	b, err := os.ReadFile(r.Log)
	if err != nil {
		t.Fatalf("registrytest: %v", err)
	}
	reqs, err := parseLog(b)
	if err != nil {
		t.Fatalf("registrytest: %s: %v", r.Log, err)
	}
	return reqs
}

// parseLog returns the requests the registry log b records. Lines that are
// not JSON (the registry writes none, but a crash would) are skipped, as
// are JSON lines that record no request; a JSON line that records a
// request malformed is an error.
func parseLog(b []byte) ([]Request, error) {
	var reqs []Request
	for i, line := range bytes.Split(b, []byte("\n")) {
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var e struct {
			Msg    string          `json:"msg"`
			Method string          `json:"http.request.method"`
			URI    string          `json:"http.request.uri"`
			Status json.RawMessage `json:"http.response.status"`
		}
		if err := json.Unmarshal(line, &e); err != nil {
			continue // a partly written last line
		}
		if !strings.HasPrefix(e.Msg, "response completed") {
			continue
		}
		status, err := strconv.Atoi(string(e.Status))
		if err != nil || e.Method == "" || e.URI == "" {
			return nil, fmt.Errorf("line %d records a request without a method, URI or numeric status: %s", i+1, line)
		}
		reqs = append(reqs, Request{Method: e.Method, URI: e.URI, Status: status})
	}
	return reqs, nil
}

// ManifestPuts counts the manifest PUTs the registry has answered 201
// Created, per reference as the pusher named it: "REPO:TAG" for a PUT by
// tag, "REPO@DIGEST" for one by digest. A converter that pushes an image
// once puts its manifest once under its tag (and, for an index, each
// manifest it lists once by digest).
func (r *Registry) ManifestPuts(t testing.TB) map[string]int {
	t.Helper()
	return manifestPuts(r.Requests(t))
}

func manifestPuts(reqs []Request) map[string]int {
	n := map[string]int{}
	for _, q := range reqs {
		if q.Method != http.MethodPut || q.Status != http.StatusCreated {
			continue
		}
		path, _, _ := strings.Cut(q.URI, "?")
		path, ok := strings.CutPrefix(path, "/v2/")
		if !ok {
			continue
		}
		i := strings.LastIndex(path, "/manifests/")
		if i < 0 {
			continue
		}
		repo, ref := path[:i], path[i+len("/manifests/"):]
		if ref == "" || strings.Contains(ref, "/") {
			continue
		}
		if u, err := url.PathUnescape(ref); err == nil {
			ref = u
		}
		sep := ":"
		if strings.Contains(ref, ":") {
			sep = "@"
		}
		n[repo+sep+ref]++
	}
	return n
}

func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	e2eenv.SkipOrFail(t, "registrytest", reason)
}
