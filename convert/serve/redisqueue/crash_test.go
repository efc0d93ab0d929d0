package redisqueue

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert/internal/redistest"
	"github.com/rafs-dev/rafs/convert/serve/queue"
)

const (
	crashEnv   = "REDISQUEUE_CRASH_CHILD"
	crashLease = 300 * time.Millisecond
)

// TestCrashChild is the replica TestKilledReplica kills; it does nothing
// in a normal test run.
func TestCrashChild(t *testing.T) {
	url := os.Getenv(crashEnv)
	if url == "" {
		t.Skip("run by TestKilledReplica")
	}
	ctx := context.Background()
	q, err := Open(ctx, url, &Options{Prefix: "crash"})
	if err != nil {
		t.Fatal(err)
	}
	tk, err := q.Claim(ctx, "child", crashLease)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready", tk.ID)
	for { // renew until killed
		time.Sleep(crashLease / 4)
		if err := q.Renew(ctx, tk.ID, "child", crashLease); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKilledReplica kills (SIGKILL) a replica holding a task; the task is
// not taken over while the replica renews its lease, and is once the
// lease has expired after the kill.
func TestKilledReplica(t *testing.T) {
	srv := redistest.Start(t)
	q := open(t, srv, "crash")
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if _, _, err := q.Enqueue(ctx, queue.Task{ID: id, Source: "r/x@sha256:0"}); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), crashEnv+"="+srv.URL)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ready := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			var id string
			if _, err := fmt.Sscanf(s.Text(), "ready %s", &id); err == nil {
				ready <- id
				return
			}
		}
		ready <- ""
	}()
	var held string
	select {
	case held = <-ready:
		if held != "a" {
			t.Fatalf("the child claimed %q, want a", held)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not get ready")
	}
	claim := func(within time.Duration) (queue.Task, error) {
		cctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		// The same lease as the child's, as replicas are configured: a
		// claimer takes over entries idle for its own lease.
		return q.Claim(cctx, "survivor", crashLease)
	}
	if tk, err := claim(time.Second); err != nil || tk.ID != "b" {
		t.Fatalf("claimed %q, %v; want b", tk.ID, err)
	}
	if err := q.Complete(ctx, "b", "survivor", queue.Result{}); err != nil {
		t.Fatal(err)
	}
	if tk, err := claim(3 * crashLease); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("took %q from a live replica (%v)", tk.ID, err)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	killed := time.Now()
	tk, err := claim(5 * time.Second)
	if err != nil {
		t.Fatalf("the killed replica's task was not taken over: %v", err)
	}
	t.Logf("taken over %v after the kill (lease %v)", time.Since(killed), crashLease)
	if tk.ID != "a" || tk.Attempts != 2 || tk.Owner != "survivor" {
		t.Errorf("taken over: %s attempts %d owner %q; want a, 2, survivor", tk.ID, tk.Attempts, tk.Owner)
	}
}
