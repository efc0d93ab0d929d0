package redisqueue

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert/internal/redistest"
	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// BenchmarkCycle measures one task's Enqueue, Claim and Complete against
// a local redis-server fsyncing its append-only file before each reply.
func BenchmarkCycle(b *testing.B) {
	srv := redistest.Start(b)
	q, err := Open(context.Background(), srv.URL, nil)
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
