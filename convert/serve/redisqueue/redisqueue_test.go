package redisqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert/internal/redistest"
	"github.com/rafs-dev/rafs/convert/serve/queue"
	"github.com/rafs-dev/rafs/convert/serve/queue/queuetest"
)

// open opens the store prefix of srv, closed when the test ends.
func open(t *testing.T, srv *redistest.Server, prefix string) *Queue {
	t.Helper()
	q, err := Open(context.Background(), srv.URL, &Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// TestConformance runs the conformance suite, each test on a store of its
// own prefix in one server; the durability test restarts the server
// (SIGKILL, then reloading its append-only file) between close and reopen.
func TestConformance(t *testing.T) {
	srv := redistest.Start(t)
	var n atomic.Int64
	prefixes := map[queue.Queue]string{}
	queuetest.Run(t,
		func(t *testing.T) queue.Queue {
			p := fmt.Sprintf("t%d", n.Add(1))
			q := open(t, srv, p)
			prefixes[q] = p
			return q
		},
		func(t *testing.T, old queue.Queue) queue.Queue {
			srv.Restart(t)
			return open(t, srv, prefixes[old])
		})
}

// TestTwoProcesses has two stores on one server, as two rafs serve
// replicas would: a task is converted by one of them at a time, and when
// the one holding a task stops renewing its lease (its process died), the
// other takes the task over after the lease.
func TestTwoProcesses(t *testing.T) {
	srv := redistest.Start(t)
	a, b := open(t, srv, "shared"), open(t, srv, "shared")
	ctx := context.Background()
	const lease = 200 * time.Millisecond
	for i := range 4 {
		if _, _, err := a.Enqueue(ctx, queue.Task{ID: fmt.Sprint(i), Source: "r/x@sha256:0"}); err != nil {
			t.Fatal(err)
		}
	}
	// Enqueued through a, seen by b.
	if _, added, err := b.Enqueue(ctx, queue.Task{ID: "0"}); err != nil || added {
		t.Fatalf("Enqueue through the other store = %v, %v; want false, nil", added, err)
	}
	claim := func(q *Queue, owner string, within time.Duration) (queue.Task, error) {
		cctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		return q.Claim(cctx, owner, lease)
	}
	// Each store claims two different tasks.
	seen := map[string]string{}
	for _, c := range []struct {
		q     *Queue
		owner string
	}{{a, "replica-a"}, {b, "replica-b"}, {a, "replica-a"}, {b, "replica-b"}} {
		tk, err := claim(c.q, c.owner, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := seen[tk.ID]; ok {
			t.Fatalf("task %s claimed by %s and %s", tk.ID, prev, c.owner)
		}
		seen[tk.ID] = c.owner
	}
	// b keeps renewing its tasks; a stops (dies).
	stop := make(chan struct{})
	renewErr := make(chan error, 1)
	go func() {
		tick := time.NewTicker(lease / 4)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				renewErr <- nil
				return
			case <-tick.C:
				for id, owner := range seen {
					if owner == "replica-b" {
						if err := b.Renew(ctx, id, owner, 2*lease); err != nil { // a margin for a loaded machine
							renewErr <- err
							return
						}
					}
				}
			}
		}
	}()
	var taken []string
	start := time.Now()
	for range 2 {
		tk, err := claim(b, "replica-b2", 3*time.Second)
		if err != nil {
			t.Fatalf("taking over the dead replica's tasks: %v", err)
		}
		if seen[tk.ID] != "replica-a" || tk.Attempts != 2 {
			t.Errorf("took over %s (held by %s, attempts %d); want one of replica-a's, attempts 2", tk.ID, seen[tk.ID], tk.Attempts)
		}
		taken = append(taken, tk.ID)
	}
	if d := time.Since(start); d < lease/2 {
		t.Errorf("took over after %v, before the lease %v could expire", d, lease)
	}
	// The dead replica's late report is refused.
	for _, id := range taken {
		if err := a.Complete(ctx, id, "replica-a", queue.Result{}); !errors.Is(err, queue.ErrLeaseLost) {
			t.Errorf("Complete by the dead replica = %v, want ErrLeaseLost", err)
		}
		if err := b.Complete(ctx, id, "replica-b2", queue.Result{}); err != nil {
			t.Errorf("Complete by the new owner: %v", err)
		}
	}
	if _, err := claim(b, "replica-b2", 2*lease); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a renewed task was taken over: %v", err)
	}
	close(stop)
	if err := <-renewErr; err != nil {
		t.Fatalf("renewing: %v", err)
	}
	counts, err := a.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[queue.Completed] != 2 || counts[queue.Running] != 2 {
		t.Errorf("Counts = %v, want 2 COMPLETED, 2 RUNNING", counts)
	}
	// The stream holds only the open tasks' entries.
	if n, err := a.client.XLen(ctx, a.stream()).Result(); err != nil || n != 2 {
		t.Errorf("stream length %d (%v), want 2", n, err)
	}
}

// TestOpenErrors checks Open's refusals.
func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := Open(ctx, "http://127.0.0.1:1/0", nil); err == nil {
		t.Error("a non-redis URL was accepted")
	}
	start := time.Now()
	if _, err := Open(ctx, "redis://127.0.0.1:1/0?dial_timeout=100ms&max_retries=-1", nil); err == nil {
		t.Error("Open with no server succeeded")
	}
	t.Logf("Open with no server failed after %v", time.Since(start))
	srv := redistest.Start(t)
	if _, err := Open(ctx, srv.URL, &Options{Prefix: "a}b"}); err == nil {
		t.Error("a prefix with a brace was accepted")
	}
	q := open(t, srv, "")
	if q.keys != "{rafs}:" || q.group != "rafs" {
		t.Errorf("defaults: keys %q group %q", q.keys, q.group)
	}
	if _, err := q.Claim(ctx, "", time.Second); err == nil {
		t.Error("Claim without an owner succeeded")
	}
	if _, err := q.List(ctx, "DONE"); err == nil {
		t.Error("List of an unknown status succeeded")
	}
	if _, _, err := q.Enqueue(ctx, queue.Task{ID: "x", Created: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}); err == nil {
		t.Error("a Created out of range was accepted")
	}
}

func TestCheckDurability(t *testing.T) {
	srv := redistest.Start(t)
	q := open(t, srv, "")
	ctx := context.Background()
	if err := q.CheckDurability(ctx); err != nil {
		t.Errorf("appendonly yes, appendfsync always: %v", err)
	}
	for _, c := range []struct{ key, value, want string }{
		{"appendfsync", "everysec", `appendfsync is "everysec"`},
		{"appendonly", "no", `appendonly is "no"`},
	} {
		if err := q.client.ConfigSet(ctx, c.key, c.value).Err(); err != nil {
			t.Fatal(err)
		}
		err := q.CheckDurability(ctx)
		if !errors.Is(err, ErrNotDurable) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s: %v; want ErrNotDurable saying %s", c.key, c.value, err, c.want)
		}
	}
}

// TestStreamLost deletes the stream under a blocked Claim (as a server
// restarted without persistence would lose it): Claim makes it again and
// takes the next task enqueued.
func TestStreamLost(t *testing.T) {
	srv := redistest.Start(t)
	q := open(t, srv, "")
	ctx := context.Background()
	got := make(chan error, 1)
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		tk, err := q.Claim(cctx, "w", time.Second)
		if err == nil && tk.ID != "after" {
			err = fmt.Errorf("claimed %q", tk.ID)
		}
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := q.client.Del(ctx, q.stream()).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // the Claim's blocked read ends and finds no group
	if _, _, err := q.Enqueue(ctx, queue.Task{ID: "after"}); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Claim across the stream's loss: %v", err)
	}
}

// TestTwoProcessesExactlyOnce has workers of two stores (two replicas,
// each with its own connections) drain one queue: every task is claimed
// once and completed once.
func TestTwoProcessesExactlyOnce(t *testing.T) {
	srv := redistest.Start(t)
	stores := []*Queue{open(t, srv, "shared"), open(t, srv, "shared")}
	ctx := context.Background()
	const tasks, workersEach = 80, 3
	for i := range tasks {
		if _, _, err := stores[i%2].Enqueue(ctx, queue.Task{ID: fmt.Sprintf("t%03d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claims := map[string]int{}
	var wg sync.WaitGroup
	for r, q := range stores {
		for range workersEach {
			owner := fmt.Sprintf("replica-%d", r) // one owner per replica, as rafs serve's workers share it
			wg.Go(func() {
				for {
					cctx, cancel := context.WithTimeout(ctx, time.Second)
					tk, err := q.Claim(cctx, owner, time.Minute)
					cancel()
					if errors.Is(err, context.DeadlineExceeded) {
						return // drained
					}
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					claims[tk.ID]++
					mu.Unlock()
					if err := q.Complete(ctx, tk.ID, owner, queue.Result{}); err != nil {
						t.Errorf("Complete(%s): %v", tk.ID, err)
					}
				}
			})
		}
	}
	wg.Wait()
	if len(claims) != tasks {
		t.Errorf("%d tasks claimed, want %d", len(claims), tasks)
	}
	for id, n := range claims {
		if n != 1 {
			t.Errorf("%s claimed %d times", id, n)
		}
	}
	counts, err := stores[0].Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[queue.Completed] != tasks {
		t.Errorf("Counts = %v, want %d COMPLETED", counts, tasks)
	}
	if n, err := stores[0].client.XLen(ctx, stores[0].stream()).Result(); err != nil || n != 0 {
		t.Errorf("stream length %d (%v) after all tasks finished, want 0", n, err)
	}
}
