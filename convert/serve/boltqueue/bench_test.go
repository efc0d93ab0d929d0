package boltqueue

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// BenchmarkCycle measures one task's Enqueue, Claim and Complete (three
// fsynced transactions), with completed tasks piling up.
func BenchmarkCycle(b *testing.B) {
	q, err := Open(filepath.Join(b.TempDir(), "tasks.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
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
