// Package boltqueue is rafs serve's embedded task store: a queue.Queue
// kept in one bbolt file (go.etcd.io/bbolt), for a single rafs serve
// process.
//
// Every change is one bbolt transaction, fsynced before the method
// returns, so a crash (even kill -9 or a power cut) between any two calls
// loses nothing. The file is locked while open: a second process opening
// it gets an error wrapping ErrInUse after Options.LockTimeout instead of
// waiting. Since only one process uses the file, the tasks found RUNNING
// when it is opened belonged to a process that died; Open makes them
// PENDING again (their attempt stays counted).
//
// The file holds four buckets: the tasks by ID (JSON records), the IDs
// by creation sequence (List's order), an index of the open (PENDING and
// RUNNING) tasks by creation sequence, which Claim scans oldest first so
// that its cost does not grow with the COMPLETED and FAILED tasks kept,
// and the count of tasks in each state.
package boltqueue

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// ErrInUse is wrapped by Open's error when another process (or another
// Open in this one) holds the file.
var ErrInUse = errors.New("boltqueue: store in use")

// DefaultLockTimeout is how long Open waits for the file's lock when
// Options.LockTimeout is zero.
const DefaultLockTimeout = time.Second

// Options tunes Open. The zero value works.
type Options struct {
	// LockTimeout is how long Open waits for another holder of the file
	// to release it before failing with ErrInUse. Zero means
	// DefaultLockTimeout; a negative value is an error.
	LockTimeout time.Duration
	// Mode is the permission of a newly created file; zero means 0600.
	Mode os.FileMode
}

// Bucket names.
var (
	bucketTasks  = []byte("tasks")  // ID → record JSON
	bucketOrder  = []byte("order")  // sequence → ID, every task
	bucketOpen   = []byte("open")   // sequence → ID, PENDING and RUNNING tasks
	bucketCounts = []byte("counts") // status → count (uint64, big endian)
)

// record is a task as stored: the task and its creation sequence.
type record struct {
	Seq  uint64     `json:"seq"`
	Task queue.Task `json:"task"`
}

// Queue is a queue.Queue in a bbolt file. Its methods are safe for
// concurrent use.
type Queue struct {
	db   *bolt.DB
	path string

	mu     sync.Mutex
	wake   chan struct{} // closed (and replaced) when a task may have become claimable
	closed chan struct{}
	once   sync.Once
}

var _ queue.Queue = (*Queue)(nil)

// errNone rolls back a Claim transaction that found nothing to claim.
var errNone = errors.New("no claimable task")

// Open opens (creating it when missing) the store in the bbolt file path.
// It fails with an error wrapping ErrInUse when another holder keeps the
// file locked for longer than opts.LockTimeout. Tasks RUNNING in the file
// are made PENDING (their owner's process is gone). opts may be nil.
func Open(path string, opts *Options) (*Queue, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.LockTimeout < 0 {
		return nil, fmt.Errorf("boltqueue: negative lock timeout %v", o.LockTimeout)
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Mode == 0 {
		o.Mode = 0o600
	}
	db, err := bolt.Open(path, o.Mode, &bolt.Options{Timeout: o.LockTimeout, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s is locked by another rafs serve (or another process) and was not released within %v: %w",
			ErrInUse, path, o.LockTimeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("boltqueue: opening %s: %w", path, err)
	}
	q := &Queue{db: db, path: path, wake: make(chan struct{}), closed: make(chan struct{})}
	if err := db.Update(q.recover); err != nil {
		db.Close()
		return nil, fmt.Errorf("boltqueue: opening %s: %w", path, err)
	}
	return q, nil
}

// recover creates the buckets and makes RUNNING tasks PENDING.
func (q *Queue) recover(tx *bolt.Tx) error {
	for _, b := range [][]byte{bucketTasks, bucketOrder, bucketOpen, bucketCounts} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return fmt.Errorf("creating bucket %s: %w", b, err)
		}
	}
	var running []*record
	err := tx.Bucket(bucketOpen).ForEach(func(k, id []byte) error {
		rec, err := load(tx, string(id))
		if err != nil {
			return err
		}
		if rec.Task.Status == queue.Running {
			running = append(running, rec)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, rec := range running {
		rec.Task.Status = queue.Pending
		rec.Task.Owner, rec.Task.LeaseUntil = "", time.Time{}
		if err := store(tx, rec, queue.Running); err != nil {
			return err
		}
	}
	return nil
}

// Path returns the file's path.
func (q *Queue) Path() string { return q.path }

// Close closes the file; later calls return queue.ErrClosed and blocked
// Claims return it.
func (q *Queue) Close() error {
	err := queue.ErrClosed
	q.once.Do(func() {
		close(q.closed)
		err = q.db.Close()
		if err != nil {
			err = fmt.Errorf("boltqueue: closing %s: %w", q.path, err)
		}
	})
	return err
}

// notify wakes the blocked Claims.
func (q *Queue) notify() {
	q.mu.Lock()
	close(q.wake)
	q.wake = make(chan struct{})
	q.mu.Unlock()
}

func (q *Queue) waitChan() <-chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.wake
}

func (q *Queue) isClosed() bool {
	select {
	case <-q.closed:
		return true
	default:
		return false
	}
}

// update runs fn in a write transaction, mapping a closed database to
// queue.ErrClosed.
func (q *Queue) update(fn func(tx *bolt.Tx) error) error {
	if q.isClosed() {
		return queue.ErrClosed
	}
	err := q.db.Update(fn)
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return queue.ErrClosed
	}
	return err
}

func (q *Queue) view(fn func(tx *bolt.Tx) error) error {
	if q.isClosed() {
		return queue.ErrClosed
	}
	err := q.db.View(fn)
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		return queue.ErrClosed
	}
	return err
}

func seqKey(seq uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, seq)
}

// load reads the record of id, or returns queue.ErrNotFound.
func load(tx *bolt.Tx, id string) (*record, error) {
	v := tx.Bucket(bucketTasks).Get([]byte(id))
	if v == nil {
		return nil, fmt.Errorf("task %q: %w", id, queue.ErrNotFound)
	}
	var rec record
	if err := json.Unmarshal(v, &rec); err != nil {
		return nil, fmt.Errorf("task %q: decoding its record: %w", id, err)
	}
	if rec.Task.ID != id || !rec.Task.Status.Valid() {
		return nil, fmt.Errorf("task %q: record holds task %q in state %q", id, rec.Task.ID, rec.Task.Status)
	}
	return &rec, nil
}

// store writes rec, whose task was in state old ("" for a new task),
// keeping the open index and the counts in step.
func store(tx *bolt.Tx, rec *record, old queue.Status) error {
	v, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("task %q: encoding: %w", rec.Task.ID, err)
	}
	id := []byte(rec.Task.ID)
	if err := tx.Bucket(bucketTasks).Put(id, v); err != nil {
		return fmt.Errorf("task %q: storing: %w", rec.Task.ID, err)
	}
	key := seqKey(rec.Seq)
	if old == "" {
		if err := tx.Bucket(bucketOrder).Put(key, id); err != nil {
			return fmt.Errorf("task %q: storing its order: %w", rec.Task.ID, err)
		}
	}
	isOpen := func(s queue.Status) bool { return s == queue.Pending || s == queue.Running }
	idx := tx.Bucket(bucketOpen)
	switch {
	case isOpen(rec.Task.Status) && !isOpen(old):
		err = idx.Put(key, id)
	case !isOpen(rec.Task.Status) && isOpen(old):
		err = idx.Delete(key)
	}
	if err != nil {
		return fmt.Errorf("task %q: updating the open index: %w", rec.Task.ID, err)
	}
	if old != rec.Task.Status {
		if old != "" {
			if err := addCount(tx, old, -1); err != nil {
				return err
			}
		}
		return addCount(tx, rec.Task.Status, 1)
	}
	return nil
}

func addCount(tx *bolt.Tx, s queue.Status, delta int64) error {
	b := tx.Bucket(bucketCounts)
	var n uint64
	if v := b.Get([]byte(s)); len(v) == 8 {
		n = binary.BigEndian.Uint64(v)
	}
	n = uint64(int64(n) + delta)
	if err := b.Put([]byte(s), binary.BigEndian.AppendUint64(nil, n)); err != nil {
		return fmt.Errorf("counting %s tasks: %w", s, err)
	}
	return nil
}

// norm drops t's monotonic clock reading and location, as storing does.
func norm(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.Round(0).UTC()
}

func now() time.Time { return time.Now().Round(0).UTC() }

// Enqueue implements queue.Queue.
func (q *Queue) Enqueue(ctx context.Context, t queue.Task) (queue.Task, bool, error) {
	if t.ID == "" {
		return queue.Task{}, false, errors.New("boltqueue: enqueue: task without an ID")
	}
	if err := ctx.Err(); err != nil {
		return queue.Task{}, false, err
	}
	var stored queue.Task
	added := false
	err := q.update(func(tx *bolt.Tx) error {
		rec, err := load(tx, t.ID)
		switch {
		case err == nil && rec.Task.Status != queue.Failed:
			stored = rec.Task
			return nil
		case err == nil: // FAILED: retry from scratch
			old := rec.Task.Status
			rec.Task = reset(rec.Task)
			rec.Task.NotBefore = norm(t.NotBefore)
			stored, added = rec.Task, true
			return store(tx, rec, old)
		case !errors.Is(err, queue.ErrNotFound):
			return err
		}
		seq, err := tx.Bucket(bucketOrder).NextSequence()
		if err != nil {
			return fmt.Errorf("task %q: numbering: %w", t.ID, err)
		}
		t = reset(t)
		t.Created = norm(t.Created)
		if t.Created.IsZero() {
			t.Created = now()
		}
		t.NotBefore = norm(t.NotBefore)
		stored, added = t, true
		return store(tx, &record{Seq: seq, Task: t}, "")
	})
	if err != nil {
		return queue.Task{}, false, fmt.Errorf("boltqueue: enqueue %q: %w", t.ID, err)
	}
	if added {
		q.notify()
	}
	return stored, added, nil
}

// reset returns t PENDING with no attempt, outcome or owner.
func reset(t queue.Task) queue.Task {
	t.Status = queue.Pending
	t.Error, t.Skipped = "", ""
	t.Attempts = 0
	t.BytesIn, t.BytesOut = 0, 0
	t.Started, t.Finished, t.LeaseUntil = time.Time{}, time.Time{}, time.Time{}
	t.Owner = ""
	return t
}

// Claim implements queue.Queue.
func (q *Queue) Claim(ctx context.Context, owner string, lease time.Duration) (queue.Task, error) {
	if owner == "" || lease <= 0 {
		return queue.Task{}, fmt.Errorf("boltqueue: claim: owner %q and lease %v (want a name and a positive lease)", owner, lease)
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return queue.Task{}, err
		}
		wake := q.waitChan()
		t, next, err := q.tryClaim(owner, lease)
		if err == nil {
			return t, nil
		}
		if !errors.Is(err, errNone) {
			return queue.Task{}, fmt.Errorf("boltqueue: claim: %w", err)
		}
		var due <-chan time.Time
		if !next.IsZero() {
			d := time.Until(next)
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			due = timer.C
		}
		select {
		case <-ctx.Done():
			return queue.Task{}, ctx.Err()
		case <-q.closed:
			return queue.Task{}, queue.ErrClosed
		case <-wake:
		case <-due:
		}
	}
}

// tryClaim claims the oldest claimable open task, or returns errNone and
// the earliest time one of the open tasks becomes claimable (zero when
// none will by itself).
func (q *Queue) tryClaim(owner string, lease time.Duration) (queue.Task, time.Time, error) {
	var claimed queue.Task
	var next time.Time
	err := q.update(func(tx *bolt.Tx) error {
		t := now()
		c := tx.Bucket(bucketOpen).Cursor()
		for _, id := c.First(); id != nil; _, id = c.Next() {
			rec, err := load(tx, string(id))
			if err != nil {
				return err
			}
			var at time.Time
			switch rec.Task.Status {
			case queue.Pending:
				at = rec.Task.NotBefore
			case queue.Running:
				at = rec.Task.LeaseUntil
			default:
				return fmt.Errorf("task %q: %s in the open index", rec.Task.ID, rec.Task.Status)
			}
			if at.After(t) {
				if next.IsZero() || at.Before(next) {
					next = at
				}
				continue
			}
			old := rec.Task.Status
			rec.Task.Status = queue.Running
			rec.Task.Owner = owner
			rec.Task.Attempts++
			rec.Task.Started = t
			rec.Task.LeaseUntil = t.Add(lease)
			claimed = rec.Task
			return store(tx, rec, old)
		}
		return errNone
	})
	return claimed, next, err
}

// change applies fn to the task id that owner holds, in one transaction.
func (q *Queue) change(op, id, owner string, fn func(t *queue.Task)) error {
	err := q.update(func(tx *bolt.Tx) error {
		rec, err := load(tx, id)
		if err != nil {
			return err
		}
		if rec.Task.Status != queue.Running || rec.Task.Owner != owner {
			return fmt.Errorf("task %q is %s (owner %q), not held by %q: %w", id, rec.Task.Status, rec.Task.Owner, owner, queue.ErrLeaseLost)
		}
		old := rec.Task.Status
		fn(&rec.Task)
		return store(tx, rec, old)
	})
	if err != nil {
		return fmt.Errorf("boltqueue: %s %q: %w", op, id, err)
	}
	return nil
}

// Renew implements queue.Queue.
func (q *Queue) Renew(ctx context.Context, id, owner string, lease time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("boltqueue: renew %q: lease %v is not positive", id, lease)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return q.change("renew", id, owner, func(t *queue.Task) {
		t.LeaseUntil = now().Add(lease)
	})
}

// Complete implements queue.Queue.
func (q *Queue) Complete(ctx context.Context, id, owner string, r queue.Result) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return q.change("complete", id, owner, func(t *queue.Task) {
		t.Status = queue.Completed
		t.BytesIn, t.BytesOut, t.Skipped = r.BytesIn, r.BytesOut, r.Skipped
		t.Error = ""
		t.Finished = now()
		t.Owner, t.LeaseUntil = "", time.Time{}
	})
}

// Fail implements queue.Queue.
func (q *Queue) Fail(ctx context.Context, id, owner string, cause error, retryAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	msg := "unknown error"
	if cause != nil {
		msg = cause.Error()
	}
	err := q.change("fail", id, owner, func(t *queue.Task) {
		t.Error = msg
		t.Owner, t.LeaseUntil = "", time.Time{}
		if retryAt.IsZero() {
			t.Status = queue.Failed
			t.Finished = now()
			return
		}
		t.Status = queue.Pending
		t.NotBefore = norm(retryAt)
	})
	if err == nil && !retryAt.IsZero() {
		q.notify()
	}
	return err
}

// Release implements queue.Queue.
func (q *Queue) Release(ctx context.Context, id, owner string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := q.change("release", id, owner, func(t *queue.Task) {
		t.Status = queue.Pending
		t.Owner, t.LeaseUntil = "", time.Time{}
		if t.Attempts > 0 {
			t.Attempts--
		}
	})
	if err == nil {
		q.notify()
	}
	return err
}

// Get implements queue.Queue.
func (q *Queue) Get(ctx context.Context, id string) (queue.Task, error) {
	if err := ctx.Err(); err != nil {
		return queue.Task{}, err
	}
	var t queue.Task
	err := q.view(func(tx *bolt.Tx) error {
		rec, err := load(tx, id)
		if err == nil {
			t = rec.Task
		}
		return err
	})
	if err != nil {
		return queue.Task{}, fmt.Errorf("boltqueue: get: %w", err)
	}
	return t, nil
}

// List implements queue.Queue. Listing PENDING or RUNNING tasks reads
// only the open index.
func (q *Queue) List(ctx context.Context, status queue.Status) ([]queue.Task, error) {
	if status != "" && !status.Valid() {
		return nil, fmt.Errorf("boltqueue: list: unknown status %q", status)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	index := bucketOrder
	if status == queue.Pending || status == queue.Running {
		index = bucketOpen
	}
	list := []queue.Task{}
	err := q.view(func(tx *bolt.Tx) error {
		return tx.Bucket(index).ForEach(func(_, id []byte) error {
			rec, err := load(tx, string(id))
			if err != nil {
				return err
			}
			if status == "" || rec.Task.Status == status {
				list = append(list, rec.Task)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("boltqueue: list: %w", err)
	}
	return list, nil
}

// Counts implements queue.Queue.
func (q *Queue) Counts(ctx context.Context) (map[queue.Status]int, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	counts := map[queue.Status]int{}
	err := q.view(func(tx *bolt.Tx) error {
		for _, s := range []queue.Status{queue.Pending, queue.Running, queue.Completed, queue.Failed} {
			v := tx.Bucket(bucketCounts).Get([]byte(s))
			switch len(v) {
			case 0:
				counts[s] = 0
			case 8:
				counts[s] = int(binary.BigEndian.Uint64(v))
			default:
				return fmt.Errorf("count of %s tasks: %d-byte value", s, len(v))
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltqueue: counts: %w", err)
	}
	return counts, nil
}
