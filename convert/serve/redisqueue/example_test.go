package redisqueue_test

import (
	"context"
	"log"
	"time"

	"github.com/rafs-dev/rafs/convert/serve/queue"
	"github.com/rafs-dev/rafs/convert/serve/redisqueue"
)

// Two replicas open the same store; each claims tasks under a lease it
// renews while converting. Had this process died, another replica's Claim
// would take its task over once the lease expired.
func Example() {
	ctx := context.Background()
	q, err := redisqueue.Open(ctx, "redis://127.0.0.1:6379/0", &redisqueue.Options{Prefix: "rafs"})
	if err != nil {
		log.Fatal(err)
	}
	defer q.Close()

	if _, _, err := q.Enqueue(ctx, queue.Task{ID: "t1", Source: "registry.example/library/debian@sha256:..."}); err != nil {
		log.Fatal(err)
	}
	const lease = 30 * time.Second
	t, err := q.Claim(ctx, "replica-1", lease)
	if err != nil {
		log.Fatal(err)
	}
	// Renew every lease/3 while converting...
	if err := q.Renew(ctx, t.ID, "replica-1", lease); err != nil {
		log.Fatal(err) // ErrLeaseLost: another replica took the task; stop
	}
	if err := q.Complete(ctx, t.ID, "replica-1", queue.Result{BytesIn: 100, BytesOut: 80}); err != nil {
		log.Fatal(err)
	}
}
