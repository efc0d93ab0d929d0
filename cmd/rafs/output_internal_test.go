package main

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// setCommitHook sets commitHook for the test.
func setCommitHook(t *testing.T, fn func()) {
	commitHook = fn
	t.Cleanup(func() { commitHook = nil })
}

// removeTemp removes the one temporary file of the output named base in
// dir.
func removeTemp(t *testing.T, dir, base string) {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "."+base+".tmp-*"))
	if len(m) != 1 {
		t.Fatalf("temporary files of %s: %v, want one", base, m)
	}
	if err := os.Remove(m[0]); err != nil {
		t.Fatal(err)
	}
}

// TestCommitBothOrNeither makes the last of a command's outputs fail to
// be put in place after the others were: they are taken back, whether
// they replaced a file or created one.
func TestCommitBothOrNeither(t *testing.T) {
	for _, c := range []struct {
		name           string
		oldBlob, oldBt bool
	}{
		{"both exist", true, true},
		{"new blob", false, true},
		{"new bootstrap", true, false},
		{"both new", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			blob, boot := filepath.Join(dir, "l.blob"), filepath.Join(dir, "l.boot")
			if c.oldBlob {
				os.WriteFile(blob, []byte("old blob"), 0o600)
			}
			if c.oldBt {
				os.WriteFile(boot, []byte("old bootstrap"), 0o640)
			}
			before := dirState(t, dir)
			setCommitHook(t, func() { removeTemp(t, dir, "l.boot") })
			code, _, stderr := rafsCmd(t, "build", "--type", "nydus", "-q", "-o", blob, "--bootstrap", boot, sample)
			if code != 1 || !strings.Contains(stderr, "l.boot") {
				t.Errorf("exit code %d, want 1 naming the bootstrap (%s)", code, stderr)
			}
			if after := dirState(t, dir); after != before {
				t.Errorf("after the failed commit:\n%s\nwant\n%s", after, before)
			}
		})
	}
	// unpack: the tar, then the cache file.
	dir := t.TempDir()
	blob := filepath.Join(dir, "l.blob")
	if code, _, stderr := rafsCmd(t, "build", "--type", "nydus", "-q", "-o", blob, sample); code != 0 {
		t.Fatal(stderr)
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	os.WriteFile(filepath.Join(out, "l.tar"), []byte("old tar"), 0o644)
	before := dirState(t, out)
	cacheFile := fileSHA256(t, blob) + ".blob.data"
	setCommitHook(t, func() { removeTemp(t, filepath.Join(out, "cache"), cacheFile) })
	if code, _, stderr := rafsCmd(t, "unpack", "-q", "-o", filepath.Join(out, "l.tar"), "--cache-dir", filepath.Join(out, "cache"), blob); code != 1 {
		t.Errorf("unpack: exit code %d, want 1 (%s)", code, stderr)
	}
	if after := dirState(t, out); after != before {
		t.Errorf("after the failed unpack:\n%s\nwant\n%s", after, before)
	}
}

// newTestGuard returns a guard whose exit records the exit status.
func newTestGuard(cancel context.CancelFunc) (*guard, *int) {
	g := newGuard("rafs test", cancel)
	g.stderr = io.Discard
	code := new(int)
	g.exit = func(c int) { *code = c }
	return g, code
}

// TestSignalBeforeCommit: a signal before the commit removes the
// temporary files and the directories made for outputs, and exits with
// 128+N.
func TestSignalBeforeCommit(t *testing.T) {
	dir := t.TempDir()
	g, code := newTestGuard(nil)
	outs := newOutputs(g)
	os.WriteFile(filepath.Join(dir, "a"), []byte("old"), 0o644)
	before := dirState(t, dir)
	for _, n := range []string{"a", "b"} {
		f, err := outs.add(filepath.Join(dir, n), true)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("new")
	}
	if err := outs.mkdirAll(filepath.Join(dir, "c", "d")); err != nil {
		t.Fatal(err)
	}
	if _, err := outs.add(filepath.Join(dir, "c", "d", "e"), true); err != nil {
		t.Fatal(err)
	}
	g.handle(syscall.SIGHUP)
	if *code != 129 {
		t.Errorf("exit status %d, want 129", *code)
	}
	if after := dirState(t, dir); after != before {
		t.Errorf("after the signal:\n%s\nwant\n%s", after, before)
	}
	// The guard stays locked, as the process would have exited: outs is
	// not touched again.
}

// TestSignalDuringCommit: a signal arriving while the outputs are put in
// place waits for the commit, which completes, and then no longer ends
// the command.
func TestSignalDuringCommit(t *testing.T) {
	dir := t.TempDir()
	g, code := newTestGuard(nil)
	outs := newOutputs(g)
	defer outs.abort()
	for _, n := range []string{"a", "b"} {
		os.WriteFile(filepath.Join(dir, n), []byte("old"), 0o644)
		f, err := outs.add(filepath.Join(dir, n), true)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString("new " + n)
	}
	setCommitHook(t, func() { g.handle(syscall.SIGTERM) })
	if err := outs.commit(); err != nil {
		t.Fatal(err)
	}
	g.handle(syscall.SIGINT)
	if *code != 0 {
		t.Errorf("a signal during the commit exited with %d", *code)
	}
	for _, n := range []string{"a", "b"} {
		if b, _ := os.ReadFile(filepath.Join(dir, n)); string(b) != "new "+n {
			t.Errorf("%s holds %q, want the new output", n, b)
		}
	}
	checkNoTemp(t, dir)
}

// TestSignalCancels: with a cancel function, the first signal cancels
// and no commit may begin; the second exits at once after the cleanups.
func TestSignalCancels(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, code := newTestGuard(cancel)
	outs := newOutputs(g)
	if _, err := outs.add(filepath.Join(dir, "a"), false); err != nil {
		t.Fatal(err)
	}
	cleaned := false
	g.onSignal(func() { cleaned = true })
	removed := false
	unregister := g.onSignal(func() { removed = true })
	unregister()
	g.handle(syscall.SIGINT)
	if ctx.Err() == nil || *code != 0 || g.interrupted() != syscall.SIGINT {
		t.Fatalf("first signal: context %v, exit %d, interrupted %v", ctx.Err(), *code, g.interrupted())
	}
	if err := outs.commit(); !errors.Is(err, errInterrupted) {
		t.Errorf("commit after a signal: %v", err)
	}
	outs.abort()
	if _, err := outs.add(filepath.Join(dir, "b"), false); err != nil {
		t.Fatal(err)
	}
	g.handle(syscall.SIGTERM)
	if *code != 130 || !cleaned || removed {
		t.Errorf("second signal: exit %d (want 130, the first signal's), cleanup ran %v, unregistered cleanup ran %v", *code, cleaned, removed)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("left %v", ents)
	}
}

// TestOutputRelative replaces outputs named relative to the working
// directory: their temporary files are next to them, not in TMPDIR.
func TestOutputRelative(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "out"), []byte("old"), 0o644)
	src, err := filepath.Abs(sample)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, c := range []struct {
		args []string
		want int // outputs
	}{
		{[]string{"build", "-q", "-o", "out", src}, 1},
		{[]string{"build", "--type", "nydus", "-q", "-o", "out", "--bootstrap", "boot", src}, 2},
	} {
		args := c.args
		var temps []string
		setCommitHook(t, func() { temps = globAll(filepath.Join(dir, ".*.tmp-*")) })
		if code, _, stderr := rafsCmd(t, args...); code != 0 {
			t.Errorf("rafs %s: exit code %d: %s", strings.Join(args, " "), code, stderr)
		}
		if want := c.want; len(temps) != want {
			t.Errorf("rafs %s: temporary files %v next to the outputs at the commit, want %d", strings.Join(args, " "), temps, want)
		}
	}
	checkNoTemp(t, dir)
}
