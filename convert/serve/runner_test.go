package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	stdlog "log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/convert/serve"
	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// testRegistry is go-containerregistry's in-process registry behind a
// hook that may fail or stall requests, counting manifest PUTs.
type testRegistry struct {
	host string
	puts atomic.Int64
	// hook, when set, may answer a request itself (returning true).
	mu   sync.Mutex
	hook func(w http.ResponseWriter, r *http.Request) bool
}

func startRegistry(t *testing.T) *testRegistry {
	t.Helper()
	tr := &testRegistry{}
	reg := registry.New(registry.Logger(stdlog.New(io.Discard, "", 0)))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.mu.Lock()
		hook := tr.hook
		tr.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			tr.puts.Add(1)
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	tr.host = strings.TrimPrefix(ts.URL, "http://")
	return tr
}

func (tr *testRegistry) setHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	tr.mu.Lock()
	tr.hook = h
	tr.mu.Unlock()
}

// push writes a small two-layer image to repo:tag and returns its
// REGISTRY/REPO@DIGEST.
func (tr *testRegistry) push(t *testing.T, repoTag string) string {
	t.Helper()
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cfg, _ := img.ConfigFile()
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", "amd64"
	img, err := mutate.ConfigFile(img, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range tartest.Stack()[:2] {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}, tarball.WithMediaType(types.OCIUncompressedLayer))
		if err != nil {
			t.Fatal(err)
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			t.Fatal(err)
		}
	}
	ref, err := name.NewTag(tr.host + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	dg, _ := img.Digest()
	return ref.Context().Name() + "@" + dg.String()
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// manifestAnnotations reads the annotations of the manifest at ref.
func manifestAnnotations(t *testing.T, ref string) (map[string]string, v1.Hash) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Get(r)
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	if err := json.Unmarshal(d.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	return m.Annotations, d.Digest
}

// testLog collects log lines (for the registry's logger and slog).
type testLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startRunner runs a runner on q until the test ends (or stop is called).
func startRunner(t *testing.T, o serve.RunnerOptions) (stop func(), log *testLog) {
	t.Helper()
	log = &testLog{}
	o.Log = slog.New(slog.NewTextHandler(log, nil))
	if o.Lease == 0 {
		o.Lease = 5 * time.Second
	}
	o.Backoff, o.TempDir = 10*time.Millisecond, t.TempDir()
	o.RequestBackoff = remote.Backoff{Duration: time.Millisecond, Factor: 1, Steps: 2}
	r, err := serve.NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("Run did not return")
			}
		})
	}
	t.Cleanup(stop)
	return stop, log
}

func enqueue(t *testing.T, q queue.Queue, task queue.Task) {
	t.Helper()
	if _, _, err := q.Enqueue(context.Background(), task); err != nil {
		t.Fatal(err)
	}
}

func waitDone(t *testing.T, q *testQueue, id string, log *testLog) queue.Task {
	t.Helper()
	task, ok := q.waitStatus(id, queue.Completed, queue.Failed)
	if !ok {
		t.Fatalf("task %s: %+v, not done\n%s", id, task, log)
	}
	return task
}

// TestRunnerConvert converts a source into a Nydus and an EROFS target,
// then checks idempotence (the same task again pushes nothing) and loop
// prevention (a target as a source is skipped).
func TestRunnerConvert(t *testing.T) {
	reg := startRegistry(t)
	src := reg.push(t, "lib/a:v1")
	q := newTestQueue(t)
	metrics := serve.NewMetrics(q)
	_, log := startRunner(t, serve.RunnerOptions{Queue: q, Jobs: 2, Metrics: metrics})
	task := queue.Task{
		ID: "task-1", Source: src, SourceTag: "v1",
		Targets: []string{reg.host + "/lib/a:v1-nydus", reg.host + "/lib/a:v1-erofs"},
		Types:   []string{"nydus", "erofs"},
	}
	putsBefore := reg.puts.Load()
	enqueue(t, q, task)
	got := waitDone(t, q, "task-1", log)
	if got.Status != queue.Completed || got.Skipped != "" || got.BytesIn <= 0 || got.BytesOut <= 0 || got.Attempts != 1 {
		t.Fatalf("task %+v\n%s", got, log)
	}
	if n := reg.puts.Load() - putsBefore; n != 2 {
		t.Errorf("%d manifest PUTs, want 2", n)
	}
	for i, target := range task.Targets {
		ann, _ := manifestAnnotations(t, target)
		if ann[serve.AnnotationSource] != src || ann[serve.AnnotationTask] != "task-1" {
			t.Errorf("target %d annotations %v", i, ann)
		}
	}

	// The same task in another store (a store lost, or another rule
	// with the same options): the targets hold its ID, nothing is pushed.
	q2 := newTestQueue(t)
	_, log2 := startRunner(t, serve.RunnerOptions{Queue: q2})
	putsBefore = reg.puts.Load()
	enqueue(t, q2, task)
	got = waitDone(t, q2, "task-1", log2)
	if got.Status != queue.Completed || !strings.Contains(got.Skipped, "already converted") {
		t.Errorf("again: %+v", got)
	}
	// A converted image as the source: skipped.
	_, dg := manifestAnnotations(t, task.Targets[0])
	loop := queue.Task{ID: "loop", Source: reg.host + "/lib/a@" + dg.String(), SourceTag: "v1-nydus",
		Targets: []string{reg.host + "/lib/a:v1-nydus-nydus"}, Types: []string{"nydus"}}
	enqueue(t, q2, loop)
	got = waitDone(t, q2, "loop", log2)
	if got.Status != queue.Completed || !strings.Contains(got.Skipped, "converted image") {
		t.Errorf("loop: %+v", got)
	}
	if n := reg.puts.Load() - putsBefore; n != 0 {
		t.Errorf("%d manifest PUTs, want none", n)
	}

	// The metrics of the first runner.
	mfs, err := metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
		if mf.GetName() == "rafs_bytes_in_total" && mf.GetMetric()[0].GetCounter().GetValue() != float64(got.BytesIn) && mf.GetMetric()[0].GetCounter().GetValue() <= 0 {
			t.Errorf("rafs_bytes_in_total %v", mf.GetMetric()[0])
		}
	}
	for _, want := range []string{"rafs_conversion_seconds", "rafs_bytes_in_total", "rafs_bytes_out_total", "rafs_attempts_total", "rafs_tasks", "rafs_queue_depth"} {
		if !strings.Contains(" "+strings.Join(names, " ")+" ", " "+want+" ") {
			t.Errorf("no metric %s in %v", want, names)
		}
	}
}

// TestRunnerRetry checks registry errors: retried with backoff until
// they pass, FAILED with the error once the retries are spent; and a
// permanent error (no such manifest) FAILED at once.
func TestRunnerRetry(t *testing.T) {
	reg := startRegistry(t)
	src := reg.push(t, "lib/r:v1")
	var failing atomic.Int64
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/lib/r/manifests/sha256:") && failing.Add(-1) >= 0 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	q := newTestQueue(t)
	_, log := startRunner(t, serve.RunnerOptions{Queue: q, Retries: 3})
	// Two requests per attempt (RequestBackoff's 2 steps): the third
	// attempt passes.
	failing.Store(4)
	enqueue(t, q, queue.Task{ID: "flaky", Source: src, Targets: []string{reg.host + "/lib/r:v1-nydus"}, Types: []string{"nydus"}})
	got := waitDone(t, q, "flaky", log)
	if got.Status != queue.Completed || got.Attempts != 3 {
		t.Errorf("flaky: %+v\n%s", got, log)
	}

	failing.Store(1 << 40)
	enqueue(t, q, queue.Task{ID: "down", Source: src, Targets: []string{reg.host + "/lib/r:v1-erofs"}, Types: []string{"erofs"}})
	got = waitDone(t, q, "down", log)
	if got.Status != queue.Failed || got.Attempts != 4 || !strings.Contains(got.Error, "503") {
		t.Errorf("down: %+v", got)
	}
	failing.Store(0)

	missing := reg.host + "/lib/r@sha256:" + strings.Repeat("0", 64)
	enqueue(t, q, queue.Task{ID: "missing", Source: missing, Targets: []string{reg.host + "/lib/r:x-nydus"}, Types: []string{"nydus"}})
	got = waitDone(t, q, "missing", log)
	if got.Status != queue.Failed || got.Attempts != 1 || got.Error == "" {
		t.Errorf("missing: %+v", got)
	}
	enqueue(t, q, queue.Task{ID: "badflags", Source: src, Targets: []string{reg.host + "/lib/r:y-nydus"}, Types: []string{"nydus"}, Options: []string{"-z", "lz4"}})
	got = waitDone(t, q, "badflags", log)
	if got.Status != queue.Failed || got.Attempts != 1 || !strings.Contains(got.Error, "conversion options") {
		t.Errorf("badflags: %+v", got)
	}
}

// TestRunnerLeaseLost checks that a conversion whose lease cannot be
// renewed is cancelled and not reported.
func TestRunnerLeaseLost(t *testing.T) {
	reg := startRegistry(t)
	src := reg.push(t, "lib/l:v1")
	stall := make(chan struct{})
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
			select {
			case <-stall:
			case <-r.Context().Done():
			}
		}
		return false
	})
	defer close(stall)
	q := newTestQueue(t)
	q.failRenew(queue.ErrLeaseLost)
	stop, log := startRunner(t, serve.RunnerOptions{Queue: q, Lease: 150 * time.Millisecond})
	enqueue(t, q, queue.Task{ID: "lost", Source: src, Targets: []string{reg.host + "/lib/l:v1-nydus"}, Types: []string{"nydus"}})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(log.String(), "lease lost") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if !strings.Contains(log.String(), "lease lost") {
		t.Fatalf("no lease lost\n%s", log)
	}
	got, _ := q.Get(context.Background(), "lost")
	if got.Status != queue.Running || got.Error != "" {
		t.Errorf("a task whose lease was lost was reported: %+v", got)
	}
	if _, err := remote.Get(mustRef(t, reg.host+"/lib/l:v1-nydus")); err == nil {
		t.Error("the target was pushed")
	}
}

// TestRunnerShutdown checks SIGTERM's path: a conversion that does not
// finish within ShutdownTimeout is cancelled and its task released.
func TestRunnerShutdown(t *testing.T) {
	reg := startRegistry(t)
	src := reg.push(t, "lib/s:v1")
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.Contains(r.URL.Path, "/blobs/") && r.Method == http.MethodGet {
			<-r.Context().Done()
			return true
		}
		return false
	})
	q := newTestQueue(t)
	r, err := serve.NewRunner(serve.RunnerOptions{Queue: q, ShutdownTimeout: 200 * time.Millisecond, TempDir: t.TempDir(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	enqueue(t, q, queue.Task{ID: "slow", Source: src, Targets: []string{reg.host + "/lib/s:v1-nydus"}, Types: []string{"nydus"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	if got, ok := q.waitStatus("slow", queue.Running); !ok {
		t.Fatalf("not running: %+v", got)
	}
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Errorf("Run returned after %v, before the shutdown timeout", d)
	}
	got, _ := q.Get(context.Background(), "slow")
	if got.Status != queue.Pending || got.Attempts != 0 {
		t.Errorf("after shutdown: %+v", got)
	}
}

// TestRunnerConversionOptions checks that the task's flags, type and
// link reach ConversionOptions, and its result the converter.
func TestRunnerConversionOptions(t *testing.T) {
	reg := startRegistry(t)
	src := reg.push(t, "lib/o:v1")
	q := newTestQueue(t)
	var mu sync.Mutex
	var seen [][]string
	_, log := startRunner(t, serve.RunnerOptions{Queue: q, ConversionOptions: func(flags []string) (*image.Options, string, error) {
		mu.Lock()
		seen = append(seen, flags)
		mu.Unlock()
		return &image.Options{Type: image.TypeEROFS, Link: image.LinkReferrer}, "cache", nil
	}})
	enqueue(t, q, queue.Task{ID: "o", Source: src, Targets: []string{reg.host + "/lib/o:v1-erofs"}, Types: []string{"erofs"}, Link: "referrer", Options: []string{"-z", "lz4"}})
	if got := waitDone(t, q, "o", log); got.Status != queue.Completed {
		t.Fatalf("%+v\n%s", got, log)
	}
	mu.Lock()
	if len(seen) != 1 || strings.Join(seen[0], " ") != "-z lz4 --type erofs --referrer" {
		t.Errorf("flags %q", seen)
	}
	mu.Unlock()
	d, err := remote.Get(mustRef(t, reg.host+"/lib/o:v1-erofs"))
	if err != nil {
		t.Fatal(err)
	}
	var m v1.Manifest
	if err := json.Unmarshal(d.Manifest, &m); err != nil || m.Subject == nil || m.Subject.Digest.String() != src[strings.Index(src, "@")+1:] {
		t.Errorf("no subject: %s", d.Manifest)
	}
	if _, err := remote.Get(mustRef(t, reg.host+"/lib/o:cache")); err != nil {
		t.Errorf("cache not pushed: %v", err)
	}
}

// TestRunnerTempLimit checks the temp-space cap: a conversion whose
// temporary files alone pass it fails (here, its uploads are held back
// so that the converted layer waits on disk).
func TestRunnerTempLimit(t *testing.T) {
	reg := startRegistry(t)
	src := reg.push(t, "lib/tl:v1")
	release := make(chan struct{})
	t.Cleanup(func() { close(release) }) // before the registry closes
	reg.setHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPatch || r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
			// Read the body (so that the server notices the client
			// going away), store nothing, answer late.
			io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-release:
			}
			http.Error(w, "held back", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	q := newTestQueue(t)
	_, log := startRunner(t, serve.RunnerOptions{Queue: q, TempLimit: 64 << 10})
	enqueue(t, q, queue.Task{ID: "big", Source: src, Targets: []string{reg.host + "/lib/tl:v1-erofs"}, Types: []string{"erofs"}})
	got := waitDone(t, q, "big", log)
	if got.Status != queue.Failed || got.Attempts != 1 || !strings.Contains(got.Error, "temp-limit") {
		t.Errorf("%+v\n%s", got, log)
	}
}

// TestRunnerRemovesStale checks that Run removes the temporary
// directories an earlier process of the same owner left, and only those.
func TestRunnerRemovesStale(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"rafs-serve-host_1-123", "rafs-serve-host_2-123", "other"} {
		if err := os.MkdirAll(filepath.Join(dir, d, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r, err := serve.NewRunner(serve.RunnerOptions{Queue: newTestQueue(t), Owner: "host/1", TempDir: dir, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Run(ctx); err != nil {
		t.Fatal(err)
	}
	var left []string
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != "other rafs-serve-host_2-123" {
		t.Errorf("left %v", left)
	}
}
