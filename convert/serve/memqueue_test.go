package serve_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// memQueue is an in-memory queue.Queue for the tests of the server and
// the runner (the real stores have their own conformance tests).
type memQueue struct {
	mu     sync.Mutex
	tasks  map[string]*queue.Task
	order  []string
	closed bool
	// renewErr, when set, is what Renew returns.
	renewErr error
	// failEnqueue, when set, is what Enqueue returns.
	failEnqueue error
}

func newMemQueue() *memQueue { return &memQueue{tasks: map[string]*queue.Task{}} }

func (q *memQueue) Enqueue(ctx context.Context, t queue.Task) (queue.Task, bool, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return queue.Task{}, false, queue.ErrClosed
	}
	if q.failEnqueue != nil {
		return queue.Task{}, false, q.failEnqueue
	}
	if old, ok := q.tasks[t.ID]; ok {
		if old.Status != queue.Failed {
			return *old, false, nil
		}
		old.Status, old.Attempts, old.Error = queue.Pending, 0, ""
		return *old, true, nil
	}
	t.Status = queue.Pending
	if t.Created.IsZero() {
		t.Created = time.Now()
	}
	q.tasks[t.ID] = &t
	q.order = append(q.order, t.ID)
	return t, true, nil
}

func (q *memQueue) Claim(ctx context.Context, owner string, lease time.Duration) (queue.Task, error) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return queue.Task{}, queue.ErrClosed
		}
		now := time.Now()
		for _, id := range q.order {
			t := q.tasks[id]
			if t.Status == queue.Pending && !t.NotBefore.After(now) || t.Status == queue.Running && t.LeaseUntil.Before(now) {
				t.Status, t.Owner, t.LeaseUntil, t.Started = queue.Running, owner, now.Add(lease), now
				t.Attempts++
				c := *t
				q.mu.Unlock()
				return c, nil
			}
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return queue.Task{}, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

func (q *memQueue) held(id, owner string) (*queue.Task, error) {
	if q.closed {
		return nil, queue.ErrClosed
	}
	t, ok := q.tasks[id]
	if !ok {
		return nil, queue.ErrNotFound
	}
	if t.Status != queue.Running || t.Owner != owner {
		return nil, queue.ErrLeaseLost
	}
	return t, nil
}

func (q *memQueue) Renew(ctx context.Context, id, owner string, lease time.Duration) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.renewErr != nil {
		return q.renewErr
	}
	t, err := q.held(id, owner)
	if err == nil {
		t.LeaseUntil = time.Now().Add(lease)
	}
	return err
}

func (q *memQueue) Complete(ctx context.Context, id, owner string, r queue.Result) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	t, err := q.held(id, owner)
	if err == nil {
		t.Status, t.Owner, t.BytesIn, t.BytesOut, t.Skipped, t.Finished, t.Error = queue.Completed, "", r.BytesIn, r.BytesOut, r.Skipped, time.Now(), ""
	}
	return err
}

func (q *memQueue) Fail(ctx context.Context, id, owner string, cause error, retryAt time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	t, err := q.held(id, owner)
	if err != nil {
		return err
	}
	t.Error, t.Owner = cause.Error(), ""
	if retryAt.IsZero() {
		t.Status, t.Finished = queue.Failed, time.Now()
	} else {
		t.Status, t.NotBefore = queue.Pending, retryAt
	}
	return nil
}

func (q *memQueue) Release(ctx context.Context, id, owner string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	t, err := q.held(id, owner)
	if err == nil {
		t.Status, t.Owner = queue.Pending, ""
		t.Attempts--
	}
	return err
}

func (q *memQueue) Get(ctx context.Context, id string) (queue.Task, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return queue.Task{}, queue.ErrClosed
	}
	t, ok := q.tasks[id]
	if !ok {
		return queue.Task{}, queue.ErrNotFound
	}
	return *t, nil
}

func (q *memQueue) List(ctx context.Context, s queue.Status) ([]queue.Task, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, queue.ErrClosed
	}
	var out []queue.Task
	for _, id := range q.order {
		if t := q.tasks[id]; s == "" || t.Status == s {
			out = append(out, *t)
		}
	}
	return out, nil
}

func (q *memQueue) Counts(ctx context.Context) (map[queue.Status]int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return nil, queue.ErrClosed
	}
	m := map[queue.Status]int{}
	for _, t := range q.tasks {
		m[t.Status]++
	}
	return m, nil
}

func (q *memQueue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return errors.New("closed twice")
	}
	q.closed = true
	return nil
}

// waitStatus waits up to 30 s for task id to reach one of the states.
func (q *memQueue) waitStatus(id string, want ...queue.Status) (queue.Task, bool) {
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
