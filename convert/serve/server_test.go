package serve_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert/serve"
	"github.com/rafs-dev/rafs/convert/serve/queue"
)

const testDigest = "sha256:4a1e1a0bd5a2ae5bc8b4c8d9e1b5c2f6e0a3b8c7d6e5f4a3b2c1d0e9f8a7b6c5"

// testTasks is a one-rule router: every tag of every repository to
// TAG-nydus; a tag ending in -nydus is a converted image.
func testTasks(p serve.Push) ([]queue.Task, string) {
	switch {
	case p.Tag == "":
		return nil, "a push by digest: no tag to name the target after"
	case strings.HasSuffix(p.Tag, "-nydus"):
		return nil, "a converted image: tag ends in -nydus"
	}
	t := queue.Task{
		Source: p.Ref(), SourceTag: p.Tag, Types: []string{"nydus"},
		Targets: []string{p.Registry + "/" + p.Repository + ":" + p.Tag + "-nydus"},
	}
	t.ID = "t-" + p.Digest[len("sha256:"):][:12] + "-" + p.Tag
	return []queue.Task{t}, ""
}

// envelope is a distribution notification envelope of manifest pushes
// (repository:tag pairs), with a blob push that must be dropped.
func envelope(host string, refs ...string) []byte {
	var events []string
	events = append(events, fmt.Sprintf(`{"id":"b0","timestamp":"2026-01-01T00:00:00Z","action":"push","target":{"mediaType":"application/octet-stream","size":10,"digest":%q,"length":10,"repository":"x","url":"http://%s/v2/x/blobs/%s"},"request":{"id":"r","addr":"127.0.0.1:1","host":%q,"method":"PUT","useragent":"skopeo"},"actor":{},"source":{"addr":"h:5000","instanceID":"i"}}`, testDigest, host, testDigest, host))
	for i, r := range refs {
		repo, tag, _ := strings.Cut(r, ":")
		events = append(events, fmt.Sprintf(`{"id":"e%d","timestamp":"2026-01-01T00:00:00Z","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":500,"digest":%q,"length":500,"repository":%q,"url":"http://%s/v2/%s/manifests/%s","tag":%q},"request":{"id":"r%d","addr":"127.0.0.1:1","host":%q,"method":"PUT","useragent":"skopeo"},"actor":{},"source":{"addr":"h:5000","instanceID":"i"}}`, i, testDigest, repo, host, repo, testDigest, tag, i, host))
	}
	return []byte(`{"events":[` + strings.Join(events, ",") + `]}`)
}

// harborPayload is a Harbor PUSH_ARTIFACT webhook payload.
func harborPayload(host, repo, tag string) []byte {
	return []byte(fmt.Sprintf(`{"type":"PUSH_ARTIFACT","occur_at":1700000000,"operator":"admin","event_data":{"resources":[{"digest":%q,"tag":%q,"resource_url":"%s/%s:%s"}],"repository":{"date_created":1700000000,"name":%q,"namespace":"library","repo_full_name":%q,"repo_type":"private"}}}`,
		testDigest, tag, host, repo, tag, repo[strings.LastIndexByte(repo, '/')+1:], repo))
}

func newTestServer(t *testing.T, q queue.Queue, auth string) (*serve.Server, *httptest.Server) {
	t.Helper()
	s, err := serve.NewServer(serve.ServerOptions{
		Queue: q, Tasks: testTasks, Auth: auth, MaxBody: 64 << 10, PollInterval: 5 * time.Millisecond,
		Metrics: serve.NewMetrics(q), Log: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

func do(t *testing.T, method, url, auth string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func TestServerNotifications(t *testing.T) {
	q := newTestQueue(t)
	_, ts := newTestServer(t, q, "")
	code, body := do(t, "POST", ts.URL+"/api/v1/notifications", "", envelope("reg:5000", "lib/a:v1", "lib/a:v1-nydus", "lib/b:v2"))
	if code != http.StatusAccepted {
		t.Fatalf("%d %s", code, body)
	}
	var a serve.Accepted
	if err := json.Unmarshal(body, &a); err != nil {
		t.Fatal(err)
	}
	if len(a.Tasks) != 2 || len(a.Ignored) != 1 || a.Ignored[0].Push.Tag != "v1-nydus" || a.Ignored[0].Reason == "" {
		t.Fatalf("answer %s", body)
	}
	if a.Tasks[0].Status != queue.Pending || a.Tasks[0].Targets[0] != "reg:5000/lib/a:v1-nydus" {
		t.Errorf("task %+v", a.Tasks[0])
	}
	// The same push again: the same task, not a second one.
	if code, body := do(t, "POST", ts.URL+"/api/v1/notifications", "", envelope("reg:5000", "lib/a:v1")); code != http.StatusAccepted {
		t.Fatalf("%d %s", code, body)
	}
	tasks, _ := q.List(context.Background(), "")
	if len(tasks) != 2 {
		t.Errorf("%d tasks stored, want 2", len(tasks))
	}

	code, body = do(t, "GET", ts.URL+"/api/v1/conversions?status=PENDING", "", nil)
	var list []queue.Task
	if code != http.StatusOK || json.Unmarshal(body, &list) != nil || len(list) != 2 {
		t.Errorf("list: %d %s", code, body)
	}
	code, body = do(t, "GET", ts.URL+"/api/v1/conversions?status=COMPLETED", "", nil)
	if code != http.StatusOK || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("list of none: %d %s", code, body)
	}

	code, body = do(t, "GET", ts.URL+"/metrics", "", nil)
	for _, want := range []string{`rafs_tasks{status="PENDING"} 2`, "rafs_queue_depth 2", `rafs_pushes_total{outcome="queued"} 2`,
		`rafs_pushes_total{outcome="duplicate"} 1`, `rafs_pushes_total{outcome="ignored"} 1`, `rafs_notifications_total{code="202",endpoint="notifications"} 2`, "go_goroutines", "process_resident_memory_bytes"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if code != http.StatusOK {
		t.Errorf("metrics: %d", code)
	}
}

func TestServerErrors(t *testing.T) {
	q := newTestQueue(t)
	s, ts := newTestServer(t, q, "Bearer s3cret")
	const auth = "Bearer s3cret"
	for _, c := range []struct {
		name, method, path, auth string
		body                     []byte
		want                     int
	}{
		{"no auth", "POST", "/api/v1/notifications", "", envelope("r", "a:v1"), 401},
		{"wrong auth", "POST", "/api/v1/notifications", "Bearer s3creT", envelope("r", "a:v1"), 401},
		{"longer auth", "POST", "/api/v1/notifications", auth + "x", envelope("r", "a:v1"), 401},
		{"metrics no auth", "GET", "/metrics", "", nil, 401},
		{"list no auth", "GET", "/api/v1/conversions", "", nil, 401},
		{"healthz needs none", "GET", "/healthz", "", nil, 200},
		{"bad json", "POST", "/api/v1/notifications", auth, []byte(`{"events":[`), 400},
		{"bad harbor", "POST", "/api/v1/conversions", auth, []byte(`[1,2]`), 400},
		{"bad sync", "POST", "/api/v1/conversions?sync=maybe", auth, harborPayload("r", "a/b", "v1"), 400},
		{"bad status", "GET", "/api/v1/conversions?status=DONE", auth, nil, 400},
		{"too big", "POST", "/api/v1/notifications", auth, bytes.Repeat([]byte(" "), 65<<10), 413},
		{"GET notifications", "GET", "/api/v1/notifications", auth, nil, 405},
		{"DELETE conversions", "DELETE", "/api/v1/conversions", auth, nil, 405},
		{"metrics", "GET", "/metrics", auth, nil, 200},
		{"good", "POST", "/api/v1/notifications", auth, envelope("r", "a:v1"), 202},
	} {
		if code, body := do(t, c.method, ts.URL+c.path, c.auth, c.body); code != c.want {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.want)
		} else if code >= 400 && code != 405 && !strings.Contains(string(body), `"error"`) {
			t.Errorf("%s: no reason in %s", c.name, body)
		}
	}
	q.failEnqueue(errors.New("disk full"))
	if code, _ := do(t, "POST", ts.URL+"/api/v1/notifications", auth, envelope("r", "a:v2")); code != 500 {
		t.Errorf("store failing: %d, want 500", code)
	}
	q.failEnqueue(nil)
	s.Shutdown()
	if code, _ := do(t, "POST", ts.URL+"/api/v1/notifications", auth, envelope("r", "a:v3")); code != 503 {
		t.Errorf("shutting down: %d, want 503", code)
	}
	if code, _ := do(t, "GET", ts.URL+"/api/v1/conversions", auth, nil); code != 200 {
		t.Errorf("list while shutting down: %d, want 200", code)
	}
}

// TestServerSync checks ?sync=true: the answer waits for the tasks, 200
// when they completed, 500 when one failed, and a client giving up ends
// the wait.
func TestServerSync(t *testing.T) {
	q := newTestQueue(t)
	_, ts := newTestServer(t, q, "")
	// A worker that completes tasks of tag v1 and fails the others.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for {
			task, err := q.Claim(ctx, "w", time.Minute)
			if err != nil {
				return
			}
			if task.SourceTag == "v1" {
				q.Complete(ctx, task.ID, "w", queue.Result{BytesIn: 1})
			} else {
				q.Fail(ctx, task.ID, "w", errors.New("broken"), time.Time{})
			}
		}
	}()
	code, body := do(t, "POST", ts.URL+"/api/v1/conversions?sync=true", "", harborPayload("reg", "library/a", "v1"))
	var a serve.Accepted
	if code != 200 || json.Unmarshal(body, &a) != nil || len(a.Tasks) != 1 || a.Tasks[0].Status != queue.Completed {
		t.Errorf("sync v1: %d %s", code, body)
	}
	code, body = do(t, "POST", ts.URL+"/api/v1/conversions?sync=true", "", harborPayload("reg", "library/a", "v2"))
	if code != 500 || !strings.Contains(string(body), "broken") {
		t.Errorf("sync v2: %d %s", code, body)
	}
	code, body = do(t, "POST", ts.URL+"/api/v1/conversions", "", harborPayload("reg", "library/a", "v3"))
	if code != 202 {
		t.Errorf("async v3: %d %s", code, body)
	}

	// Nobody converts: the client's deadline ends the wait.
	cancel()
	time.Sleep(20 * time.Millisecond)
	rctx, rcancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer rcancel()
	req, _ := http.NewRequestWithContext(rctx, "POST", ts.URL+"/api/v1/conversions?sync=true", bytes.NewReader(harborPayload("reg", "library/a", "v4")))
	start := time.Now()
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("sync with nobody converting: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the wait took %v", d)
	}
	if task, err := q.Get(context.Background(), "t-4a1e1a0bd5a2-v4"); err != nil || task.Status != queue.Pending {
		t.Errorf("the task of the abandoned request: %+v %v", task, err)
	}
}

// TestListenTLS serves over HTTPS with a self-signed certificate and
// stops when the context ends.
func TestListenTLS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)

	q := newTestQueue(t)
	s, err := serve.NewServer(serve.ServerOptions{Queue: q, Tasks: testTasks, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Listen(context.Background(), "127.0.0.1:0", filepath.Join(dir, "none.pem"), keyFile, s, time.Second, nil); err == nil {
		t.Error("a missing certificate, but no error")
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve.Listen(ctx, "127.0.0.1:0", certFile, keyFile, s, time.Second, func(a net.Addr) { addrc <- a })
	}()
	var addr net.Addr
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(must(x509.ParseCertificate(der)))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + addr.String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "ok\n" {
		t.Errorf("healthz over TLS: %d %q", resp.StatusCode, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Listen: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
