package boltqueue

import (
	"path/filepath"
	"testing"

	"github.com/rafs-dev/rafs/convert/serve/queue/queuetest"
)

// BenchmarkCycle measures one task's Enqueue, Claim and Complete (three
// fsynced transactions), with completed tasks piling up.
func BenchmarkCycle(b *testing.B) {
	q, err := Open(filepath.Join(b.TempDir(), "tasks.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	queuetest.Benchmark(b, q)
}
