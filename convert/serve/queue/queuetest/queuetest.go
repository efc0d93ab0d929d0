// Package queuetest holds the conformance tests of queue.Queue: every
// promise of the interface's doc comments, checked on a real store. The
// bbolt and Redis stores run them from their own tests:
//
//	func TestConformance(t *testing.T) {
//		queuetest.Run(t, openEmptyStore, reopenStore)
//	}
//
// The tests use leases of a few hundred milliseconds and finish in
// seconds.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// Timing of the tests. lease is short so that expiry tests are fast;
// slack bounds how long a store may take to notice an event it must wake
// a blocked Claim for (an Enqueue, a NotBefore or a lease passing).
const (
	lease   = 200 * time.Millisecond
	slack   = 3 * time.Second
	quietly = 100 * time.Millisecond // how long "nothing happens" is watched
)

// Run runs the conformance tests on stores open returns (each call a new
// empty store, closed by the test or by a t.Cleanup open registers), and,
// when reopen is not nil, durability tests: reopen closes nothing itself
// but is given a store the test has closed and returns the same store
// opened again.
func Run(t *testing.T, open func(t *testing.T) queue.Queue, reopen func(t *testing.T, q queue.Queue) queue.Queue) {
	tests := []struct {
		name string
		fn   func(t *testing.T, q queue.Queue)
	}{
		{"EnqueueGet", testEnqueueGet},
		{"EnqueueIdempotent", testEnqueueIdempotent},
		{"EnqueueConcurrentSameID", testEnqueueConcurrentSameID},
		{"EnqueueFailedAgain", testEnqueueFailedAgain},
		{"EnqueueInvalid", testEnqueueInvalid},
		{"ClaimOldestFirst", testClaimOldestFirst},
		{"ClaimBlocksUntilEnqueue", testClaimBlocksUntilEnqueue},
		{"ClaimContext", testClaimContext},
		{"NotBefore", testNotBefore},
		{"LeaseExpiry", testLeaseExpiry},
		{"Renew", testRenew},
		{"Complete", testComplete},
		{"FailRetry", testFailRetry},
		{"FailFinal", testFailFinal},
		{"Release", testRelease},
		{"StaleOwner", testStaleOwner},
		{"ListAndCounts", testListAndCounts},
		{"ExactlyOnce", testExactlyOnce},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := open(t)
			t.Cleanup(func() { q.Close() })
			tc.fn(t, q)
		})
	}
	t.Run("Close", func(t *testing.T) { testClose(t, open(t)) })
	if reopen != nil {
		t.Run("Durable", func(t *testing.T) { testDurable(t, open(t), reopen) })
	}
}

// task returns a PENDING task to enqueue, with every descriptive field set.
func task(id string) queue.Task {
	return queue.Task{
		ID:        id,
		Source:    "registry.example:5000/library/debian@sha256:" + fmt.Sprintf("%064x", len(id)),
		SourceTag: "v1",
		Targets:   []string{"registry.example:5000/library/debian:v1-nydus", "registry.example:5000/library/debian:v1-erofs"},
		Types:     []string{"nydus", "erofs"},
		Rule:      "all",
		Link:      "referrer",
		Options:   []string{"-z", "lz4hc", "--tar-index"},
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustEnqueue(t *testing.T, q queue.Queue, tk queue.Task) queue.Task {
	t.Helper()
	stored, added, err := q.Enqueue(ctxT(t), tk)
	if err != nil {
		t.Fatalf("Enqueue(%s): %v", tk.ID, err)
	}
	if !added {
		t.Fatalf("Enqueue(%s): added false for a new task", tk.ID)
	}
	return stored
}

// claim claims a task under the short lease, failing the test when none
// comes within slack.
func claim(t *testing.T, q queue.Queue, owner string) queue.Task {
	t.Helper()
	return claimFor(t, q, owner, lease)
}

// claimFor is claim with another lease. Tests that claim several tasks in
// a row and must not see one taken over take them under a long lease,
// so that a stall of a loaded machine does not expire them.
func claimFor(t *testing.T, q queue.Queue, owner string, d time.Duration) queue.Task {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), slack)
	defer cancel()
	got, err := q.Claim(ctx, owner, d)
	if err != nil {
		t.Fatalf("Claim(%s): %v", owner, err)
	}
	return got
}

// claimNone checks that no task can be claimed during d.
func claimNone(t *testing.T, q queue.Queue, owner string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	got, err := q.Claim(ctx, owner, lease)
	if err == nil {
		t.Fatalf("Claim(%s) took %s (%s), want none", owner, got.ID, got.Status)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Claim(%s) = %v, want context.DeadlineExceeded", owner, err)
	}
}

func get(t *testing.T, q queue.Queue, id string) queue.Task {
	t.Helper()
	got, err := q.Get(ctxT(t), id)
	if err != nil {
		t.Fatalf("Get(%s): %v", id, err)
	}
	return got
}

// sameSpec reports the differences between the descriptive fields of
// got and want (those Enqueue stores as given).
func sameSpec(got, want queue.Task) error {
	switch {
	case got.ID != want.ID:
		return fmt.Errorf("ID %q, want %q", got.ID, want.ID)
	case got.Source != want.Source:
		return fmt.Errorf("Source %q, want %q", got.Source, want.Source)
	case got.SourceTag != want.SourceTag:
		return fmt.Errorf("SourceTag %q, want %q", got.SourceTag, want.SourceTag)
	case !slices.Equal(got.Targets, want.Targets):
		return fmt.Errorf("Targets %q, want %q", got.Targets, want.Targets)
	case !slices.Equal(got.Types, want.Types):
		return fmt.Errorf("Types %q, want %q", got.Types, want.Types)
	case got.Rule != want.Rule:
		return fmt.Errorf("Rule %q, want %q", got.Rule, want.Rule)
	case got.Link != want.Link:
		return fmt.Errorf("Link %q, want %q", got.Link, want.Link)
	case !slices.Equal(got.Options, want.Options):
		return fmt.Errorf("Options %q, want %q", got.Options, want.Options)
	}
	return nil
}

// sameTask reports the differences between got and want, all fields.
func sameTask(got, want queue.Task) error {
	if err := sameSpec(got, want); err != nil {
		return err
	}
	times := []struct {
		name      string
		got, want time.Time
	}{
		{"Created", got.Created, want.Created},
		{"Started", got.Started, want.Started},
		{"Finished", got.Finished, want.Finished},
		{"NotBefore", got.NotBefore, want.NotBefore},
		{"LeaseUntil", got.LeaseUntil, want.LeaseUntil},
	}
	for _, tm := range times {
		if !tm.got.Equal(tm.want) {
			return fmt.Errorf("%s %v, want %v", tm.name, tm.got, tm.want)
		}
	}
	switch {
	case got.Status != want.Status:
		return fmt.Errorf("Status %s, want %s", got.Status, want.Status)
	case got.Error != want.Error:
		return fmt.Errorf("Error %q, want %q", got.Error, want.Error)
	case got.Attempts != want.Attempts:
		return fmt.Errorf("Attempts %d, want %d", got.Attempts, want.Attempts)
	case got.BytesIn != want.BytesIn || got.BytesOut != want.BytesOut:
		return fmt.Errorf("Bytes %d/%d, want %d/%d", got.BytesIn, got.BytesOut, want.BytesIn, want.BytesOut)
	case got.Skipped != want.Skipped:
		return fmt.Errorf("Skipped %q, want %q", got.Skipped, want.Skipped)
	case got.Owner != want.Owner:
		return fmt.Errorf("Owner %q, want %q", got.Owner, want.Owner)
	}
	return nil
}

// near reports whether tm is within d of want.
func near(tm, want time.Time, d time.Duration) bool {
	diff := tm.Sub(want)
	return diff > -d && diff < d
}

func testEnqueueGet(t *testing.T, q queue.Queue) {
	ctx := ctxT(t)
	in := task("a")
	// Enqueue stores a task as PENDING whatever the caller's state
	// fields say.
	in.Status = queue.Completed
	in.Attempts = 3
	in.Owner = "someone"
	in.Error = "old"
	before := time.Now()
	stored, added, err := q.Enqueue(ctx, in)
	if err != nil || !added {
		t.Fatalf("Enqueue = %v, %v", added, err)
	}
	if err := sameSpec(stored, in); err != nil {
		t.Errorf("stored task: %v", err)
	}
	if stored.Status != queue.Pending || stored.Attempts != 0 || stored.Owner != "" || stored.Error != "" {
		t.Errorf("stored task: status %s, attempts %d, owner %q, error %q; want PENDING, 0, empty, empty",
			stored.Status, stored.Attempts, stored.Owner, stored.Error)
	}
	if !near(stored.Created, before, slack) {
		t.Errorf("Created = %v, want about %v (set when zero)", stored.Created, before)
	}
	got := get(t, q, "a")
	if err := sameTask(got, stored); err != nil {
		t.Errorf("Get after Enqueue: %v", err)
	}

	// A Created given is kept.
	b := task("b")
	b.Created = time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	if stored := mustEnqueue(t, q, b); !stored.Created.Equal(b.Created) {
		t.Errorf("Created = %v, want the given %v", stored.Created, b.Created)
	}
	if got := get(t, q, "b"); !got.Created.Equal(b.Created) {
		t.Errorf("Get: Created = %v, want the given %v", got.Created, b.Created)
	}

	if _, err := q.Get(ctx, "missing"); !errors.Is(err, queue.ErrNotFound) {
		t.Errorf("Get(missing) = %v, want ErrNotFound", err)
	}
}

func testEnqueueIdempotent(t *testing.T, q queue.Queue) {
	ctx := ctxT(t)
	first := mustEnqueue(t, q, task("a"))
	again := task("a")
	again.Source = "elsewhere/x@sha256:0"
	again.Created = first.Created.Add(time.Hour)
	stored, added, err := q.Enqueue(ctx, again)
	if err != nil {
		t.Fatal(err)
	}
	if added {
		t.Error("Enqueue of an existing PENDING task: added true")
	}
	if err := sameTask(stored, first); err != nil {
		t.Errorf("Enqueue of an existing task returned %v; want the first task", err)
	}

	// RUNNING and COMPLETED tasks are not touched either.
	c := claim(t, q, "w1")
	if _, added, err := q.Enqueue(ctx, task("a")); err != nil || added {
		t.Errorf("Enqueue of a RUNNING task = %v, %v; want false, nil", added, err)
	}
	if got := get(t, q, "a"); got.Status != queue.Running || got.Owner != "w1" || got.Attempts != 1 {
		t.Errorf("RUNNING task after Enqueue: %s owner %q attempts %d", got.Status, got.Owner, got.Attempts)
	}
	if err := q.Complete(ctx, c.ID, "w1", queue.Result{BytesIn: 1}); err != nil {
		t.Fatal(err)
	}
	stored, added, err = q.Enqueue(ctx, task("a"))
	if err != nil || added || stored.Status != queue.Completed {
		t.Errorf("Enqueue of a COMPLETED task = %s, %v, %v; want COMPLETED, false, nil", stored.Status, added, err)
	}
	claimNone(t, q, "w2", quietly)
	if n := len(mustList(t, q, "")); n != 1 {
		t.Errorf("List has %d tasks, want 1", n)
	}
}

func testEnqueueConcurrentSameID(t *testing.T, q queue.Queue) {
	ctx := ctxT(t)
	const n = 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	addedCount := 0
	for range n {
		wg.Go(func() {
			_, added, err := q.Enqueue(ctx, task("same"))
			if err != nil {
				t.Error(err)
			}
			if added {
				mu.Lock()
				addedCount++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if addedCount != 1 {
		t.Errorf("%d concurrent Enqueues of one ID: %d added, want 1", n, addedCount)
	}
	c := claim(t, q, "w")
	if err := q.Complete(ctx, c.ID, "w", queue.Result{}); err != nil {
		t.Fatal(err)
	}
	claimNone(t, q, "w", quietly)
}

func testEnqueueFailedAgain(t *testing.T, q queue.Queue) {
	ctx := ctxT(t)
	mustEnqueue(t, q, task("a"))
	c := claim(t, q, "w1")
	if err := q.Fail(ctx, c.ID, "w1", errors.New("registry said no"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	failed := get(t, q, "a")
	if failed.Status != queue.Failed {
		t.Fatalf("after a final Fail: %s", failed.Status)
	}
	stored, added, err := q.Enqueue(ctx, task("a"))
	if err != nil || !added {
		t.Fatalf("Enqueue of a FAILED task = %v, %v; want true, nil", added, err)
	}
	if stored.Status != queue.Pending || stored.Attempts != 0 {
		t.Errorf("FAILED task enqueued again: %s, attempts %d; want PENDING, 0", stored.Status, stored.Attempts)
	}
	if got := get(t, q, "a"); got.Status != queue.Pending || got.Attempts != 0 {
		t.Errorf("Get: %s, attempts %d; want PENDING, 0", got.Status, got.Attempts)
	}
	c = claim(t, q, "w2")
	if c.ID != "a" || c.Attempts != 1 || c.Owner != "w2" {
		t.Errorf("claimed again: %s attempts %d owner %q", c.ID, c.Attempts, c.Owner)
	}
	if n := len(mustList(t, q, "")); n != 1 {
		t.Errorf("List has %d tasks, want 1", n)
	}
}

func testEnqueueInvalid(t *testing.T, q queue.Queue) {
	if _, _, err := q.Enqueue(ctxT(t), task("")); err == nil {
		t.Error("Enqueue of a task without an ID succeeded")
	}
}

func testClaimOldestFirst(t *testing.T, q queue.Queue) {
	base := time.Now().Add(-time.Hour)
	ids := []string{"c", "a", "d", "b", "e"}
	for i, id := range ids {
		tk := task(id)
		tk.Created = base.Add(time.Duration(i) * time.Second)
		mustEnqueue(t, q, tk)
	}
	before := time.Now()
	const long = time.Hour
	for i, id := range ids {
		c := claimFor(t, q, "w", long)
		if c.ID != id {
			t.Fatalf("claim %d: %s, want %s (oldest first)", i, c.ID, id)
		}
		if c.Status != queue.Running || c.Owner != "w" || c.Attempts != 1 {
			t.Errorf("claimed %s: %s owner %q attempts %d; want RUNNING w 1", c.ID, c.Status, c.Owner, c.Attempts)
		}
		if !near(c.Started, before, slack) || !near(c.LeaseUntil, c.Started.Add(long), time.Second) {
			t.Errorf("claimed %s: Started %v LeaseUntil %v; want about now and now+%v", c.ID, c.Started, c.LeaseUntil, long)
		}
		if got := get(t, q, id); got.Status != queue.Running || got.Owner != "w" || !got.LeaseUntil.Equal(c.LeaseUntil) {
			t.Errorf("Get(%s) after Claim: %s owner %q lease %v", id, got.Status, got.Owner, got.LeaseUntil)
		}
	}
}

func testClaimBlocksUntilEnqueue(t *testing.T, q queue.Queue) {
	got := make(chan queue.Task, 1)
	errc := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), slack+time.Second)
		defer cancel()
		c, err := q.Claim(ctx, "w", lease)
		if err != nil {
			errc <- err
			return
		}
		got <- c
	}()
	select {
	case c := <-got:
		t.Fatalf("Claim on an empty queue returned %s", c.ID)
	case err := <-errc:
		t.Fatalf("Claim on an empty queue: %v", err)
	case <-time.After(quietly):
	}
	mustEnqueue(t, q, task("late"))
	select {
	case c := <-got:
		if c.ID != "late" {
			t.Errorf("Claim returned %s, want late", c.ID)
		}
	case err := <-errc:
		t.Fatalf("blocked Claim: %v", err)
	case <-time.After(slack):
		t.Fatalf("blocked Claim not woken within %v of an Enqueue", slack)
	}
}

func testClaimContext(t *testing.T, q queue.Queue) {
	start := time.Now()
	claimNone(t, q, "w", quietly)
	if d := time.Since(start); d > quietly+slack {
		t.Errorf("Claim returned %v after its context's deadline of %v", d, quietly)
	}
	// A cancelled context, not only a deadline.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := q.Claim(ctx, "w", lease)
		errc <- err
	}()
	time.Sleep(quietly)
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Claim after cancel = %v, want context.Canceled", err)
		}
	case <-time.After(slack):
		t.Fatalf("Claim not returning within %v of its context's cancel", slack)
	}
	// Nothing was claimed by the abandoned Claims.
	mustEnqueue(t, q, task("a"))
	if c := claim(t, q, "w2"); c.Owner != "w2" || c.Attempts != 1 {
		t.Errorf("claimed: owner %q attempts %d", c.Owner, c.Attempts)
	}
}

func testNotBefore(t *testing.T, q queue.Queue) {
	wait := 3 * lease / 2
	tk := task("later")
	tk.NotBefore = time.Now().Add(wait)
	stored := mustEnqueue(t, q, tk)
	if !stored.NotBefore.Equal(tk.NotBefore) {
		t.Errorf("NotBefore = %v, want %v", stored.NotBefore, tk.NotBefore)
	}
	mustEnqueue(t, q, task("now"))
	if c := claim(t, q, "w"); c.ID != "now" {
		t.Fatalf("claimed %s before the due task", c.ID)
	}
	if err := q.Complete(ctxT(t), "now", "w", queue.Result{}); err != nil {
		t.Fatal(err)
	}
	claimNone(t, q, "w", wait/2)
	// A Claim blocked before NotBefore wakes when it passes.
	c := claim(t, q, "w")
	if c.ID != "later" {
		t.Fatalf("claimed %s, want later", c.ID)
	}
	if now := time.Now(); now.Before(tk.NotBefore) {
		t.Errorf("claimed at %v, before NotBefore %v", now, tk.NotBefore)
	}
}

func testLeaseExpiry(t *testing.T, q queue.Queue) {
	ctx := ctxT(t)
	mustEnqueue(t, q, task("a"))
	first := claim(t, q, "dead")
	// Before the lease expires, nobody else takes it.
	claimNone(t, q, "alive", lease/4)
	// After it, another owner does (a Claim blocked before the expiry
	// wakes for it).
	second := claim(t, q, "alive")
	if time.Now().Before(first.LeaseUntil) {
		t.Errorf("taken over at %v, before the lease's end %v", time.Now(), first.LeaseUntil)
	}
	if second.ID != "a" || second.Owner != "alive" || second.Attempts != 2 || second.Status != queue.Running {
		t.Errorf("taken over: %s owner %q attempts %d %s; want a alive 2 RUNNING", second.ID, second.Owner, second.Attempts, second.Status)
	}
	if !second.LeaseUntil.After(first.LeaseUntil) {
		t.Errorf("new lease %v not after the expired one %v", second.LeaseUntil, first.LeaseUntil)
	}
	// The new owner finishes it; the old one has lost it.
	if err := q.Renew(ctx, "a", "dead", lease); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("Renew by the old owner = %v, want ErrLeaseLost", err)
	}
	if err := q.Complete(ctx, "a", "alive", queue.Result{BytesIn: 5, BytesOut: 6}); err != nil {
		t.Fatal(err)
	}
	if got := get(t, q, "a"); got.Status != queue.Completed || got.BytesOut != 6 {
		t.Errorf("after Complete: %s bytes out %d", got.Status, got.BytesOut)
	}
	// A completed task is never taken over.
	claimNone(t, q, "other", 2*lease)
}

func testRenew(t *testing.T, q queue.Queue) {
	ctx := ctxT(t)
	mustEnqueue(t, q, task("a"))
	c := claim(t, q, "holder")
	stop := make(chan struct{})
	renewed := make(chan error, 1)
	go func() {
		tick := time.NewTicker(lease / 4)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				renewed <- nil
				return
			case <-tick.C:
				// Renewed for two leases every quarter lease, so that a
				// slow fsync on a loaded machine does not let it lapse.
				if err := q.Renew(ctx, "a", "holder", 2*lease); err != nil {
					renewed <- err
					return
				}
			}
		}
	}()
	// Three leases long, the renewed task is not taken over.
	claimNone(t, q, "thief", 3*lease)
	close(stop)
	if err := <-renewed; err != nil {
		t.Fatalf("Renew: %v", err)
	}
	got := get(t, q, "a")
	if got.Owner != "holder" || got.Status != queue.Running || !got.LeaseUntil.After(c.LeaseUntil) {
		t.Errorf("after renewals: %s owner %q lease %v (claimed with %v)", got.Status, got.Owner, got.LeaseUntil, c.LeaseUntil)
	}
	if got.Attempts != 1 {
		t.Errorf("Attempts = %d after renewals, want 1", got.Attempts)
	}
	// A longer lease is honoured too.
	if err := q.Renew(ctx, "a", "holder", 10*lease); err != nil {
		t.Fatal(err)
	}
	if got := get(t, q, "a"); !near(got.LeaseUntil, time.Now().Add(10*lease), slack) {
		t.Errorf("LeaseUntil %v, want about now+%v", got.LeaseUntil, 10*lease)
	}
	claimNone(t, q, "thief", 2*lease)
	for _, id := range []string{"a", "missing"} {
		if err := q.Renew(ctx, id, "thief", lease); !errors.Is(err, queue.ErrLeaseLost) && !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("Renew(%s) by a non-owner = %v, want ErrLeaseLost (or ErrNotFound)", id, err)
		}
	}
}

func testComplete(t *testing.T, q queue.Queue) {
	ctx := ctxT(t)
	mustEnqueue(t, q, task("a"))
	mustEnqueue(t, q, task("b"))
	c := claim(t, q, "w")
	before := time.Now()
	if err := q.Complete(ctx, c.ID, "w", queue.Result{BytesIn: 1 << 40, BytesOut: 12345, Skipped: "already converted"}); err != nil {
		t.Fatal(err)
	}
	got := get(t, q, c.ID)
	want := c
	want.Status = queue.Completed
	want.BytesIn, want.BytesOut, want.Skipped = 1<<40, 12345, "already converted"
	want.Owner, want.LeaseUntil = "", time.Time{}
	want.Finished = got.Finished
	if err := sameTask(got, want); err != nil {
		t.Errorf("completed task: %v", err)
	}
	if !near(got.Finished, before, slack) {
		t.Errorf("Finished %v, want about %v", got.Finished, before)
	}
	if err := q.Complete(ctx, c.ID, "w", queue.Result{}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("second Complete = %v, want ErrLeaseLost", err)
	}
	// A PENDING task is nobody's to complete.
	if err := q.Complete(ctx, "b", "w", queue.Result{}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("Complete of a PENDING task = %v, want ErrLeaseLost", err)
	}
	if got := get(t, q, "b"); got.Status != queue.Pending {
		t.Errorf("PENDING task after a refused Complete: %s", got.Status)
	}
}

func testFailRetry(t *testing.T, q queue.Queue) {
	ctx := ctxT(t)
	mustEnqueue(t, q, task("a"))
	c := claim(t, q, "w")
	retryAt := time.Now().Add(lease)
	if err := q.Fail(ctx, c.ID, "w", fmt.Errorf("pushing: %w", errors.New("503 Service Unavailable")), retryAt); err != nil {
		t.Fatal(err)
	}
	got := get(t, q, "a")
	if got.Status != queue.Pending || got.Error != "pushing: 503 Service Unavailable" || got.Attempts != 1 ||
		!got.NotBefore.Equal(retryAt) || got.Owner != "" || !got.Finished.IsZero() {
		t.Errorf("after a retrying Fail: %s error %q attempts %d NotBefore %v (want %v) owner %q finished %v",
			got.Status, got.Error, got.Attempts, got.NotBefore, retryAt, got.Owner, got.Finished)
	}
	if err := q.Renew(ctx, "a", "w", lease); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("Renew after Fail = %v, want ErrLeaseLost", err)
	}
	claimNone(t, q, "w", lease/3)
	c = claim(t, q, "w2")
	if time.Now().Before(retryAt) {
		t.Errorf("claimed at %v, before retryAt %v", time.Now(), retryAt)
	}
	if c.ID != "a" || c.Attempts != 2 || c.Owner != "w2" {
		t.Errorf("retried: %s attempts %d owner %q", c.ID, c.Attempts, c.Owner)
	}
	// A retry time already passed makes the task claimable at once.
	if err := q.Fail(ctx, "a", "w2", errors.New("again"), time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if c := claim(t, q, "w3"); c.ID != "a" || c.Attempts != 3 {
		t.Errorf("retried at once: %s attempts %d", c.ID, c.Attempts)
	}
}

func testFailFinal(t *testing.T, q queue.Queue) {
	ctx := ctxT(t)
	mustEnqueue(t, q, task("a"))
	c := claim(t, q, "w")
	before := time.Now()
	if err := q.Fail(ctx, c.ID, "w", errors.New("manifest unknown"), time.Time{}); err != nil {
		t.Fatal(err)
	}
	got := get(t, q, "a")
	if got.Status != queue.Failed || got.Error != "manifest unknown" || got.Attempts != 1 || got.Owner != "" ||
		!near(got.Finished, before, slack) {
		t.Errorf("after a final Fail: %s error %q attempts %d owner %q finished %v",
			got.Status, got.Error, got.Attempts, got.Owner, got.Finished)
	}
	if err := q.Fail(ctx, "a", "w", errors.New("twice"), time.Time{}); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("second Fail = %v, want ErrLeaseLost", err)
	}
	if got := get(t, q, "a"); got.Error != "manifest unknown" {
		t.Errorf("Error %q changed by a refused Fail", got.Error)
	}
	claimNone(t, q, "w", 2*lease)
}

func testRelease(t *testing.T, q queue.Queue) {
	ctx := ctxT(t)
	mustEnqueue(t, q, task("a"))
	c := claim(t, q, "w")
	if err := q.Release(ctx, c.ID, "w"); err != nil {
		t.Fatal(err)
	}
	got := get(t, q, "a")
	if got.Status != queue.Pending || got.Attempts != 0 || got.Owner != "" {
		t.Errorf("after Release: %s attempts %d owner %q; want PENDING 0 empty", got.Status, got.Attempts, got.Owner)
	}
	// Claimable at once by another owner, well before the lease would
	// have expired.
	start := time.Now()
	ctx2, cancel := context.WithTimeout(ctx, lease/2)
	defer cancel()
	c2, err := q.Claim(ctx2, "w2", 10*lease)
	if err != nil {
		t.Fatalf("Claim after Release (within %v): %v (%v)", lease/2, err, time.Since(start))
	}
	if c2.ID != "a" || c2.Attempts != 1 {
		t.Errorf("claimed after Release: %s attempts %d, want a 1", c2.ID, c2.Attempts)
	}
	if err := q.Release(ctx, "a", "w"); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("Release by the former owner = %v, want ErrLeaseLost", err)
	}
}

// testStaleOwner checks the fencing of every owner operation: after a
// takeover, none of the old owner's calls changes the task.
func testStaleOwner(t *testing.T, q queue.Queue) {
	ctx := ctxT(t)
	mustEnqueue(t, q, task("a"))
	claim(t, q, "old")
	time.Sleep(lease)
	taken := claim(t, q, "new")
	if taken.Owner != "new" {
		t.Fatalf("not taken over: owner %q", taken.Owner)
	}
	ops := map[string]func() error{
		"Renew":    func() error { return q.Renew(ctx, "a", "old", lease) },
		"Complete": func() error { return q.Complete(ctx, "a", "old", queue.Result{BytesIn: 9}) },
		"Fail":     func() error { return q.Fail(ctx, "a", "old", errors.New("x"), time.Time{}) },
		"Retry":    func() error { return q.Fail(ctx, "a", "old", errors.New("x"), time.Now()) },
		"Release":  func() error { return q.Release(ctx, "a", "old") },
	}
	for name, op := range ops {
		if err := op(); !errors.Is(err, queue.ErrLeaseLost) {
			t.Errorf("%s by a stale owner = %v, want ErrLeaseLost", name, err)
		}
	}
	if got := get(t, q, "a"); got.Owner != "new" || got.Status != queue.Running || got.Attempts != 2 || got.Error != "" || got.BytesIn != 0 {
		t.Errorf("task changed by a stale owner: %s owner %q attempts %d error %q bytes %d",
			got.Status, got.Owner, got.Attempts, got.Error, got.BytesIn)
	}
	if err := q.Complete(ctx, "a", "new", queue.Result{}); err != nil {
		t.Errorf("Complete by the new owner: %v", err)
	}
	// Unknown IDs: the caller holds nothing.
	for name, err := range map[string]error{
		"Complete": q.Complete(ctx, "missing", "new", queue.Result{}),
		"Fail":     q.Fail(ctx, "missing", "new", errors.New("x"), time.Time{}),
		"Release":  q.Release(ctx, "missing", "new"),
	} {
		if !errors.Is(err, queue.ErrLeaseLost) && !errors.Is(err, queue.ErrNotFound) {
			t.Errorf("%s of an unknown task = %v, want ErrLeaseLost or ErrNotFound", name, err)
		}
	}
}

func mustList(t *testing.T, q queue.Queue, s queue.Status) []queue.Task {
	t.Helper()
	l, err := q.List(ctxT(t), s)
	if err != nil {
		t.Fatalf("List(%q): %v", s, err)
	}
	return l
}

func ids(l []queue.Task) []string {
	var s []string
	for _, t := range l {
		s = append(s, t.ID)
	}
	return s
}

func testListAndCounts(t *testing.T, q queue.Queue) {
	ctx := ctxT(t)
	if l := mustList(t, q, ""); len(l) != 0 {
		t.Errorf("empty store lists %v", ids(l))
	}
	base := time.Now().Add(-time.Hour)
	order := []string{"t3", "t1", "t4", "t2", "t5", "t0"}
	for i, id := range order {
		tk := task(id)
		tk.Created = base.Add(time.Duration(i) * time.Minute)
		mustEnqueue(t, q, tk)
	}
	// t3 COMPLETED, t1 FAILED, t4 RUNNING, t2 retried (PENDING), t5 and
	// t0 PENDING.
	for _, want := range []string{"t3", "t1", "t4", "t2"} {
		if c := claimFor(t, q, "w", time.Minute); c.ID != want {
			t.Fatalf("claimed %s, want %s", c.ID, want)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(q.Complete(ctx, "t3", "w", queue.Result{}))
	must(q.Fail(ctx, "t1", "w", errors.New("bad"), time.Time{}))
	must(q.Renew(ctx, "t4", "w", time.Minute))
	must(q.Fail(ctx, "t2", "w", errors.New("later"), time.Now().Add(time.Minute)))

	if got := ids(mustList(t, q, "")); !slices.Equal(got, order) {
		t.Errorf("List() = %v, want %v (creation order)", got, order)
	}
	want := map[queue.Status][]string{
		queue.Pending:   {"t2", "t5", "t0"},
		queue.Running:   {"t4"},
		queue.Completed: {"t3"},
		queue.Failed:    {"t1"},
	}
	for s, w := range want {
		l := mustList(t, q, s)
		if got := ids(l); !slices.Equal(got, w) {
			t.Errorf("List(%s) = %v, want %v", s, got, w)
		}
		for _, tk := range l {
			if tk.Status != s {
				t.Errorf("List(%s) has %s in %s", s, tk.ID, tk.Status)
			}
			if err := sameSpec(tk, task(tk.ID)); err != nil {
				t.Errorf("List(%s): %s: %v", s, tk.ID, err)
			}
		}
	}
	counts, err := q.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []queue.Status{queue.Pending, queue.Running, queue.Completed, queue.Failed} {
		if counts[s] != len(want[s]) {
			t.Errorf("Counts()[%s] = %d, want %d (all: %v)", s, counts[s], len(want[s]), counts)
		}
	}
	// Counts follow an Enqueue of a FAILED task again.
	if _, _, err := q.Enqueue(ctx, task("t1")); err != nil {
		t.Fatal(err)
	}
	counts, err = q.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[queue.Failed] != 0 || counts[queue.Pending] != 4 {
		t.Errorf("Counts after re-enqueueing the failed task: %v", counts)
	}
	if got := ids(mustList(t, q, queue.Pending)); !slices.Equal(got, []string{"t1", "t2", "t5", "t0"}) {
		t.Errorf("List(PENDING) = %v, want the re-enqueued task in its creation place", got)
	}
}

// testExactlyOnce runs several workers against many tasks: each task is
// claimed once and completed once.
func testExactlyOnce(t *testing.T, q queue.Queue) {
	ctx := ctxT(t)
	const workers, tasks = 6, 60
	// Enqueue concurrently with the workers claiming.
	var enq sync.WaitGroup
	enq.Go(func() {
		for i := range tasks {
			if _, _, err := q.Enqueue(ctx, task(fmt.Sprintf("task-%03d", i))); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var mu sync.Mutex
	claimed := map[string][]string{}
	done := 0
	var wg sync.WaitGroup
	for w := range workers {
		owner := fmt.Sprintf("worker-%d", w)
		wg.Go(func() {
			for {
				mu.Lock()
				finished := done >= tasks
				mu.Unlock()
				if finished {
					return
				}
				cctx, cancel := context.WithTimeout(ctx, 5*quietly)
				c, err := q.Claim(cctx, owner, time.Minute)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					if ctx.Err() != nil {
						t.Errorf("%s: tasks not all done in time", owner)
						return
					}
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				claimed[c.ID] = append(claimed[c.ID], owner)
				mu.Unlock()
				if err := q.Complete(ctx, c.ID, owner, queue.Result{BytesIn: 1}); err != nil {
					t.Errorf("Complete(%s) by %s: %v", c.ID, owner, err)
				}
				mu.Lock()
				done++
				mu.Unlock()
			}
		})
	}
	enq.Wait()
	wg.Wait()
	if len(claimed) != tasks {
		t.Errorf("%d tasks claimed, want %d", len(claimed), tasks)
	}
	for id, owners := range claimed {
		if len(owners) != 1 {
			t.Errorf("%s claimed %d times: %v", id, len(owners), owners)
		}
	}
	counts, err := q.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[queue.Completed] != tasks || counts[queue.Pending]+counts[queue.Running]+counts[queue.Failed] != 0 {
		t.Errorf("Counts = %v, want %d COMPLETED", counts, tasks)
	}
}

func testClose(t *testing.T, q queue.Queue) {
	ctx := ctxT(t)
	mustEnqueue(t, q, task("a"))
	claim(t, q, "w")
	if err := q.Renew(ctx, "a", "w", time.Hour); err != nil { // not to be taken over below
		t.Fatal(err)
	}
	// A Claim blocked when the store closes returns.
	errc := make(chan error, 1)
	go func() {
		_, err := q.Claim(ctx, "w2", lease*100)
		errc <- err
	}()
	time.Sleep(quietly)
	if err := q.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, queue.ErrClosed) {
			t.Errorf("Claim blocked across Close = %v, want ErrClosed", err)
		}
	case <-time.After(slack):
		t.Errorf("Claim blocked across Close still blocked after %v", slack)
	}
	checks := map[string]func() error{
		"Enqueue":  func() error { _, _, err := q.Enqueue(ctx, task("b")); return err },
		"Claim":    func() error { _, err := q.Claim(ctx, "w", lease); return err },
		"Renew":    func() error { return q.Renew(ctx, "a", "w", lease) },
		"Complete": func() error { return q.Complete(ctx, "a", "w", queue.Result{}) },
		"Fail":     func() error { return q.Fail(ctx, "a", "w", errors.New("x"), time.Time{}) },
		"Release":  func() error { return q.Release(ctx, "a", "w") },
		"Get":      func() error { _, err := q.Get(ctx, "a"); return err },
		"List":     func() error { _, err := q.List(ctx, ""); return err },
		"Counts":   func() error { _, err := q.Counts(ctx); return err },
	}
	for name, fn := range checks {
		if err := fn(); !errors.Is(err, queue.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

// testDurable closes a store holding tasks in every state and checks
// that the reopened store has them all, and that the task RUNNING at
// Close (its owner gone with the process) is claimed again: at once when
// the store gives a dead process's tasks back at open, else once its
// lease expires.
func testDurable(t *testing.T, q queue.Queue, reopen func(t *testing.T, q queue.Queue) queue.Queue) {
	ctx := ctxT(t)
	base := time.Now().Add(-time.Hour)
	for i, id := range []string{"done", "failed", "retry", "running", "pending", "delayed"} {
		tk := task(id)
		tk.Created = base.Add(time.Duration(i) * time.Second)
		if id == "delayed" {
			tk.NotBefore = time.Now().Add(time.Hour)
		}
		mustEnqueue(t, q, tk)
	}
	for _, id := range []string{"done", "failed", "retry"} {
		if c := claimFor(t, q, "w", time.Minute); c.ID != id {
			t.Fatalf("claimed %s, want %s", c.ID, id)
		}
	}
	// Claimed last, under the short lease: the reopened store may keep it
	// RUNNING until the lease ends.
	if c := claim(t, q, "w"); c.ID != "running" {
		t.Fatalf("claimed %s, want running", c.ID)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(q.Complete(ctx, "done", "w", queue.Result{BytesIn: 10, BytesOut: 20}))
	must(q.Fail(ctx, "failed", "w", errors.New("final"), time.Time{}))
	must(q.Fail(ctx, "retry", "w", errors.New("transient"), time.Now().Add(time.Hour)))
	before := mustList(t, q, "")
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}

	q = reopen(t, q)
	t.Cleanup(func() { q.Close() })
	after := mustList(t, q, "")
	if !slices.Equal(ids(after), ids(before)) {
		t.Fatalf("after reopen: %v, want %v", ids(after), ids(before))
	}
	for i, got := range after {
		want := before[i]
		if got.ID == "running" && got.Status == queue.Pending {
			// Given back at open: PENDING, no owner.
			want.Status, want.Owner, want.LeaseUntil = queue.Pending, "", time.Time{}
		}
		if err := sameTask(got, want); err != nil {
			t.Errorf("%s after reopen: %v", got.ID, err)
		}
	}
	counts, err := q.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[queue.Completed] != 1 || counts[queue.Failed] != 1 || counts[queue.Pending]+counts[queue.Running] != 4 {
		t.Errorf("Counts after reopen: %v", counts)
	}
	// The task of the dead owner, then the pending one; the retry and the
	// delayed one wait for their time. (A store that keeps the RUNNING
	// task under its lease gives it up when the lease ends.)
	for _, tk := range before {
		if tk.ID == "running" {
			time.Sleep(time.Until(tk.LeaseUntil))
		}
	}
	for _, want := range []string{"running", "pending"} {
		c := claim(t, q, "w2")
		if c.ID != want || c.Owner != "w2" {
			t.Fatalf("claimed %s by %q after reopen, want %s by w2", c.ID, c.Owner, want)
		}
		if want == "running" && c.Attempts != 2 {
			t.Errorf("task taken over after reopen: attempts %d, want 2", c.Attempts)
		}
		must(q.Complete(ctx, want, "w2", queue.Result{}))
	}
	claimNone(t, q, "w2", quietly)
	// The finished tasks stay finished.
	if _, added, err := q.Enqueue(ctx, task("done")); err != nil || added {
		t.Errorf("Enqueue(done) after reopen = %v, %v; want false, nil", added, err)
	}
}

// Benchmark measures one task's Enqueue, Claim and Complete on q per
// iteration, with completed tasks piling up.
func Benchmark(b *testing.B, q queue.Queue) {
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprint(i)
		if _, _, err := q.Enqueue(ctx, queue.Task{ID: id, Source: "r/x@sha256:0"}); err != nil {
			b.Fatal(err)
		}
		c, err := q.Claim(ctx, "w", time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		if err := q.Complete(ctx, c.ID, "w", queue.Result{}); err != nil {
			b.Fatal(err)
		}
	}
}
