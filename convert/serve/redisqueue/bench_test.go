package redisqueue

import (
	"context"
	"testing"

	"github.com/rafs-dev/rafs/convert/internal/redistest"
	"github.com/rafs-dev/rafs/convert/serve/queue/queuetest"
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
	queuetest.Benchmark(b, q)
}
