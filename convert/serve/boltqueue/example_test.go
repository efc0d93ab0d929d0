package boltqueue_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/rafs-dev/rafs/convert/serve/boltqueue"
	"github.com/rafs-dev/rafs/convert/serve/queue"
)

func Example() {
	dir, err := os.MkdirTemp("", "boltqueue")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	q, err := boltqueue.Open(filepath.Join(dir, "tasks.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()

	// The HTTP front end stores a task; the same push again is no new task.
	t := queue.Task{ID: "t1", Source: "registry.example/library/debian@sha256:...", Types: []string{"nydus"}}
	_, added, err := q.Enqueue(ctx, t)
	fmt.Println("added:", added, err)
	_, added, err = q.Enqueue(ctx, t)
	fmt.Println("added again:", added, err)

	// A worker claims it under a 30s lease and completes it.
	c, err := q.Claim(ctx, "worker-1", 30*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("claimed:", c.ID, c.Status, c.Attempts)
	if err := q.Complete(ctx, c.ID, "worker-1", queue.Result{BytesIn: 100, BytesOut: 80}); err != nil {
		log.Fatal(err)
	}
	counts, _ := q.Counts(ctx)
	fmt.Println("completed:", counts[queue.Completed])
	// Output:
	// added: true <nil>
	// added again: false <nil>
	// claimed: t1 RUNNING 1
	// completed: 1
}
