package boltqueue

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert/serve/queue"
)

const crashEnv = "BOLTQUEUE_CRASH_CHILD"

// TestCrashChild is the process TestKilled kills; it does nothing in a
// normal test run.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("run by TestKilled")
	}
	q, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 20 {
		if _, _, err := q.Enqueue(ctx, queue.Task{ID: fmt.Sprintf("t%02d", i), Source: "r/x@sha256:0"}); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := q.Claim(ctx, "child", time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Complete(ctx, "t00", "child", queue.Result{BytesOut: 7}); err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute) // killed here, holding the file
}

// TestKilled kills (SIGKILL) a process holding the store mid-task, then
// opens the store: every task it stored is there, the finished one
// finished, and the one it was running PENDING again, claimable at once.
func TestKilled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tasks.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	ready := make(chan bool, 1)
	go func() {
		s := bufio.NewScanner(out)
		for s.Scan() {
			if s.Text() == "ready" {
				ready <- true
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the child exited before it was ready")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not get ready")
	}
	// While the child holds the file, it is in use.
	if _, err := Open(path, &Options{LockTimeout: 100 * time.Millisecond}); err == nil {
		t.Fatal("opened a file the child holds")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	q, err := Open(path, nil)
	if err != nil {
		t.Fatalf("Open after the holder was killed: %v", err)
	}
	defer q.Close()
	ctx := context.Background()
	counts, err := q.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[queue.Completed] != 1 || counts[queue.Pending] != 19 || counts[queue.Running] != 0 {
		t.Errorf("Counts after the kill: %v; want 1 COMPLETED, 19 PENDING", counts)
	}
	if tk, err := q.Get(ctx, "t00"); err != nil || tk.Status != queue.Completed || tk.BytesOut != 7 {
		t.Errorf("t00: %+v, %v", tk, err)
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	tk, err := q.Claim(cctx, "restarted", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if tk.ID != "t01" || tk.Attempts != 2 {
		t.Errorf("first claim after the kill: %s attempts %d; want the interrupted t01, attempt 2", tk.ID, tk.Attempts)
	}
}
