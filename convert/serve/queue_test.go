package serve_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert/serve/boltqueue"
	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// testQueue is the embedded store (boltqueue) with faults the tests can
// inject.
type testQueue struct {
	*boltqueue.Queue

	mu         sync.Mutex
	renewErr   error // what Renew returns, when set
	enqueueErr error // what Enqueue returns, when set
}

func newTestQueue(t *testing.T) *testQueue {
	t.Helper()
	q, err := boltqueue.Open(filepath.Join(t.TempDir(), "queue.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return &testQueue{Queue: q}
}

func (q *testQueue) failRenew(err error) {
	q.mu.Lock()
	q.renewErr = err
	q.mu.Unlock()
}

func (q *testQueue) failEnqueue(err error) {
	q.mu.Lock()
	q.enqueueErr = err
	q.mu.Unlock()
}

func (q *testQueue) Renew(ctx context.Context, id, owner string, lease time.Duration) error {
	q.mu.Lock()
	err := q.renewErr
	q.mu.Unlock()
	if err != nil {
		return err
	}
	return q.Queue.Renew(ctx, id, owner, lease)
}

func (q *testQueue) Enqueue(ctx context.Context, t queue.Task) (queue.Task, bool, error) {
	q.mu.Lock()
	err := q.enqueueErr
	q.mu.Unlock()
	if err != nil {
		return queue.Task{}, false, err
	}
	return q.Queue.Enqueue(ctx, t)
}

// waitStatus waits up to 30 s for task id to reach one of the states.
func (q *testQueue) waitStatus(id string, want ...queue.Status) (queue.Task, bool) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		t, err := q.Get(context.Background(), id)
		if err == nil && slices.Contains(want, t.Status) {
			return t, true
		}
		time.Sleep(10 * time.Millisecond)
	}
	t, _ := q.Get(context.Background(), id)
	return t, false
}
