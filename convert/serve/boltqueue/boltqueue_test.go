package boltqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/rafs-dev/rafs/convert/serve/queue"
	"github.com/rafs-dev/rafs/convert/serve/queue/queuetest"
)

func TestConformance(t *testing.T) {
	queuetest.Run(t,
		func(t *testing.T) queue.Queue {
			q, err := Open(filepath.Join(t.TempDir(), "tasks.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			return q
		},
		func(t *testing.T, old queue.Queue) queue.Queue {
			q, err := Open(old.(*Queue).Path(), nil)
			if err != nil {
				t.Fatal(err)
			}
			return q
		})
}

// TestInUse opens a file a first Queue holds: the second Open fails
// within its lock timeout with ErrInUse, and succeeds once the first
// Queue is closed.
func TestInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.db")
	first, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	second, err := Open(path, &Options{LockTimeout: 200 * time.Millisecond})
	took := time.Since(start)
	if err == nil {
		second.Close()
		t.Fatal("a second Open of a held file succeeded")
	}
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), path) {
		t.Errorf("second Open: %v; want ErrInUse naming %s", err, path)
	}
	if took > 2*time.Second {
		t.Errorf("second Open took %v with a 200ms lock timeout", took)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	second, err = Open(path, nil)
	if err != nil {
		t.Fatalf("Open after the holder closed: %v", err)
	}
	second.Close()
}

func TestOptions(t *testing.T) {
	dir := t.TempDir()
	if _, err := Open(filepath.Join(dir, "a.db"), &Options{LockTimeout: -1}); err == nil {
		t.Error("a negative lock timeout was accepted")
	}
	q, err := Open(filepath.Join(dir, "b.db"), &Options{Mode: 0o640})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	fi, err := os.Stat(filepath.Join(dir, "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("file mode %v, want 0640", fi.Mode().Perm())
	}
	ctx := context.Background()
	if _, err := q.Claim(ctx, "", time.Second); err == nil {
		t.Error("Claim without an owner succeeded")
	}
	if _, err := q.Claim(ctx, "w", 0); err == nil {
		t.Error("Claim with a zero lease succeeded")
	}
	if _, err := q.List(ctx, "DONE"); err == nil {
		t.Error("List of an unknown status succeeded")
	}
}

// TestOpenIndex checks that finished tasks leave the index Claim scans,
// so that claiming does not slow down as COMPLETED tasks pile up.
func TestOpenIndex(t *testing.T) {
	q, err := Open(filepath.Join(t.TempDir(), "tasks.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	const n = 50
	for i := range n {
		if _, _, err := q.Enqueue(ctx, queue.Task{ID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n - 1 {
		c, err := q.Claim(ctx, "w", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			err = q.Complete(ctx, c.ID, "w", queue.Result{})
		} else {
			err = q.Fail(ctx, c.ID, "w", errors.New("x"), time.Time{})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	var open, all int
	err = q.db.View(func(tx *bolt.Tx) error {
		open = tx.Bucket(bucketOpen).Stats().KeyN
		all = tx.Bucket(bucketTasks).Stats().KeyN
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if open != 1 || all != n {
		t.Errorf("open index holds %d tasks of %d, want 1", open, all)
	}
}

// TestCorruptRecord checks that a damaged record is an error naming the
// task, not a panic.
func TestCorruptRecord(t *testing.T) {
	q, err := Open(filepath.Join(t.TempDir(), "tasks.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	if _, _, err := q.Enqueue(ctx, queue.Task{ID: "x"}); err != nil {
		t.Fatal(err)
	}
	err = q.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketTasks).Put([]byte("x"), []byte(`{"seq":1,"task":{"id":"x","status":"WEIRD"}}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Get(ctx, "x"); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("Get of a damaged record: %v", err)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := q.Claim(cctx, "w", time.Second); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Claim over a damaged record: %v", err)
	}
}
