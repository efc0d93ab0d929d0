//go:build linux

package e2e

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rafs-dev/rafs/convert/internal/imagetest"
	"github.com/rafs-dev/rafs/convert/internal/redistest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// balancer spreads requests over backends round robin, as a load
// balancer in front of rafs serve replicas does, and passes a request to
// the next backend when one does not answer (it died).
type balancer struct {
	backends []string
	mu       sync.Mutex
	next     int
}

func startBalancer(t testing.TB, addr string, backends ...string) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("balancer: %v", err)
	}
	b := &balancer{backends: backends}
	srv := &http.Server{Handler: b}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
}

func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	b.mu.Lock()
	first := b.next
	b.next = (b.next + 1) % len(b.backends)
	b.mu.Unlock()
	client := &http.Client{Timeout: 30 * time.Second}
	for i := range b.backends {
		be := b.backends[(first+i)%len(b.backends)]
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+be+r.URL.RequestURI(), bytes.NewReader(body))
		req.Header = r.Header.Clone()
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	http.Error(w, "no backend answered", http.StatusBadGateway)
}

// replicaArgs returns the flags of a replica named name on the Redis
// store at url, with its temporary files in tmp.
func replicaArgs(url, name, tmp string) []string {
	return []string{"--type", "nydus", "--type", "erofs", "--plain-http", "--auth", e2eAuth,
		"--queue", url, "--name", name, "--lease", "3s", "--retries", "3", "--tmpdir", tmp, "--jobs", "1"}
}

// startReplicas starts redis-server and n rafs serve replicas sharing it
// behind a balancer on e.notify.
func startReplicas(t testing.TB, e *e2eEnv, n int) []*e2eServe {
	t.Helper()
	rs := redistest.Start(t)
	var addrs []string
	var replicas []*e2eServe
	for i := range n {
		addr := freeAddr(t)
		args := replicaArgs(rs.URL, fmt.Sprintf("replica-%d", i), t.TempDir())
		replicas = append(replicas, startServe(t, e.bin, addr, args...))
		addrs = append(addrs, addr)
	}
	startBalancer(t, e.notify, addrs...)
	return replicas
}

// testReplicas: two replicas on one redis-server behind a balancer, the
// registry notifying the balancer. Five pushed images (no layer in
// common: see distinctImage) are each converted exactly once (one
// attempt, one manifest PUT per target in the registry's log). Then one replica is killed in the middle of a
// conversion, and the other takes the task over once its lease expires
// and completes it.
func testReplicas(t *testing.T, bin string) {
	e := newEnv(t, bin, false)
	reps := startReplicas(t, e, 2)
	const n = 5
	var sources, targets []string
	for i := range n {
		img, _ := distinctImage(t, fmt.Sprintf("replica-%d", i))
		d, _ := e.push(t, img, "lib/rep", fmt.Sprintf("v%d", i))
		sources = append(sources, e.source("lib/rep", d))
		targets = append(targets, fmt.Sprintf("lib/rep:v%d-nydus", i), fmt.Sprintf("lib/rep:v%d-erofs", i))
	}
	for _, src := range sources {
		if tk := reps[0].waitTask(src, queue.Completed); tk.Attempts != 1 {
			t.Errorf("task %s of %s: %d attempts, want 1", tk.ID, src, tk.Attempts)
		}
	}
	if ts := reps[1].tasks(); len(ts) != n {
		t.Errorf("replica 1 lists %d tasks, want %d", len(ts), n)
	}
	wantPuts(t, e.manifestPuts(t), targets...)

	img, _, held := heldImage(t, "replica-kill")
	e.proxy.hold(held)
	d, _ := e.push(t, img, "lib/rep", "kill")
	src := e.source("lib/rep", d)
	tk := reps[0].waitTask(src, queue.Running)
	e.proxy.waitHeld(t, held)
	victim, survivor := reps[0], reps[1]
	if tk.Owner == "replica-1" {
		victim, survivor = reps[1], reps[0]
	} else if tk.Owner != "replica-0" {
		t.Fatalf("RUNNING task owned by %q, want replica-0 or replica-1", tk.Owner)
	}
	killed := time.Now()
	victim.kill()
	e.proxy.release(held)
	done := survivor.waitTask(src, queue.Completed)
	t.Logf("replica killed mid-task: the other completed it %.2fs later", time.Since(killed).Seconds())
	if done.Attempts != 2 {
		t.Errorf("task taken over: %+v; want 2 attempts (the killed one and the other replica's)", done)
	}
	wantPuts(t, e.manifestPuts(t), "lib/rep:kill-nydus", "lib/rep:kill-erofs")
}

// throughputImage returns distinctImage(name) topped with a 16 MiB layer
// of text-like files unique to name, so that converting it takes CPU
// time as real layers do.
func throughputImage(t testing.TB, name string) v1.Image {
	t.Helper()
	var entries []tartest.Entry
	for i := range 64 {
		h := tar.Header{Name: fmt.Sprintf("data/%s/%02d.txt", name, i), Typeflag: tar.TypeReg, Mode: 0o644, ModTime: time.Unix(1700000000, 0)}
		entries = append(entries, tartest.Entry{Header: h, Data: tartest.Text(fmt.Sprintf("%s-%d", name, i), 256<<10)})
	}
	_, layers := distinctImage(t, name)
	layers = append(layers, tartest.Gzip(tartest.Tar(entries...)))
	return imagetest.Image(t, "amd64", layers...)
}

// BenchmarkServeThroughput converts the same 8 images with 1 and with 2
// replicas (--jobs 1 each) on one redis-server, and reports images per
// minute. The images are pushed before the replicas start (the registry
// retries its notifications until the balancer answers); the time runs
// from the replicas' start to the last conversion completed. Run it with
// -benchtime 1x.
func BenchmarkServeThroughput(b *testing.B) {
	bin := rafsBinary(b)
	const n = 8
	imgs := make([]v1.Image, n)
	for i := range n {
		imgs[i] = throughputImage(b, fmt.Sprintf("img%d", i))
	}
	for _, replicas := range []int{1, 2} {
		b.Run(fmt.Sprintf("replicas=%d", replicas), func(b *testing.B) {
			var elapsed time.Duration
			iters := 0
			for b.Loop() {
				b.StopTimer()
				e := newEnv(b, bin, false)
				repo := fmt.Sprintf("lib/tp%d", iters)
				var sources []string
				for i, img := range imgs {
					d, _ := e.push(b, img, repo, fmt.Sprintf("v%d", i))
					sources = append(sources, e.source(repo, d))
				}
				b.StartTimer()
				start := time.Now()
				reps := startReplicas(b, e, replicas)
				for _, src := range sources {
					reps[0].waitTask(src, queue.Completed)
				}
				elapsed += time.Since(start)
				iters++
			}
			b.ReportMetric(float64(n*iters)/elapsed.Minutes(), "images/min")
			b.ReportMetric(elapsed.Seconds()/float64(iters), "s/batch")
		})
	}
}
