// Package registrytest runs a real OCI registry (the distribution project's
// docker-registry) on 127.0.0.1 for end-to-end tests, and inspects and copies
// what tests push to it with skopeo.
//
// Both tools are external programs. When one is not on PATH, the test using
// it is skipped, unless the environment variable RAFS_E2E is "require", in
// which case the test fails instead (for CI machines that must run it).
//
// The registry serves plain HTTP without authentication; the skopeo helpers
// pass the flags that allow that.
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
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// EnvVar names the environment variable that turns skips into failures
// when set to "require".
const EnvVar = "RAFS_E2E"

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
	bin, err := exec.LookPath(registryBin)
	if err != nil {
		skipOrFail(t, registryBin+" not found on PATH (Debian package docker-registry)")
		return nil
	}
	for range portAttempts {
		port, err := freePort()
		if err != nil {
			t.Fatalf("registrytest: finding a free port: %v", err)
		}
		r, err := start(t, bin, port)
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

// freePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}

// start runs the registry binary bin on port and waits for it. It returns
// an error wrapping errPortTaken when the port was in use.
func start(t testing.TB, bin string, port int) (*Registry, error) {
	t.Helper()
	tmp := t.TempDir()
	r := &Registry{
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Dir:  filepath.Join(tmp, "storage"),
	}
	var tok [16]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, fmt.Errorf("random token: %w", err)
	}
	token := hex.EncodeToString(tok[:])
	cfg := filepath.Join(tmp, "config.yml")
	if err := os.WriteFile(cfg, []byte(config(r, token)), 0o644); err != nil {
		return nil, fmt.Errorf("writing registry config: %w", err)
	}
	logName := filepath.Join(tmp, "registry.log")
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

// config returns the registry's configuration file.
func config(r *Registry, token string) string {
	q := strconv.Quote
	return `version: 0.1
log:
  level: warn
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
`
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

func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(EnvVar) == "require" {
		t.Fatalf("registrytest: %s (and %s=require)", reason, EnvVar)
		return
	}
	t.Skipf("registrytest: %s", reason)
}
