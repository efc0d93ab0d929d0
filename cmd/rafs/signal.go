package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// handledSignals are the signals every command handles alike: each ends
// the command, removing what it has not committed, with exit status
// 128+N (129, 130, 143), as a shell reports a process a signal killed.
var handledSignals = []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM}

// errInterrupted is what beginCommit returns once a signal has arrived.
var errInterrupted = errors.New("interrupted")

// guard handles SIGHUP, SIGINT and SIGTERM for one command run. It keeps
// what a signal must undo: the temporary files the command made (created
// through createTemp, under the guard's lock, so that none appears after
// the handler has removed the others) and cleanup functions.
//
// Without a cancel function (build, merge, unpack, whose work cannot be
// cancelled part way), a signal removes the temporary files, runs the
// cleanups and exits at once. With one (convert, push), the first signal
// cancels the command's context and lets it unwind, removing its own
// files, and the command then exits with 128+N (see interrupted); a
// second signal exits at once after the cleanups.
//
// Once beginCommit has let the command commit its outputs, signals are
// ignored: the commit (a few renames) is finished and the command ends as
// it would have, so that an exit status of 128+N always means the outputs
// are as they were.
type guard struct {
	cmd    string // "rafs build", for messages
	cancel context.CancelFunc
	exit   func(int) // os.Exit; tests replace it
	stderr io.Writer

	mu        sync.Mutex
	sig       syscall.Signal // the first signal, when it came before the commit
	committed bool
	temps     map[string]bool
	cleanups  []*func()

	ch   chan os.Signal
	done chan struct{}
	wg   sync.WaitGroup
}

// startGuard starts handling the signals for a command. cancel, if not
// nil, is called on the first signal instead of exiting. Signals the
// process was started with ignored (nohup, a background job of a
// non-interactive shell) stay ignored.
func startGuard(cmd string, cancel context.CancelFunc) *guard {
	g := newGuard(cmd, cancel)
	var sigs []os.Signal
	for _, s := range handledSignals {
		if !signal.Ignored(s) {
			sigs = append(sigs, s)
		}
	}
	g.ch = make(chan os.Signal, len(handledSignals))
	g.done = make(chan struct{})
	signal.Notify(g.ch, sigs...)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		for {
			select {
			case s := <-g.ch:
				g.handle(s.(syscall.Signal))
			case <-g.done:
				return
			}
		}
	}()
	return g
}

// newGuard returns a guard that receives no signals by itself (tests
// call handle).
func newGuard(cmd string, cancel context.CancelFunc) *guard {
	return &guard{cmd: cmd, cancel: cancel, exit: os.Exit, stderr: os.Stderr, temps: map[string]bool{}}
}

// stop stops handling signals.
func (g *guard) stop() {
	if g.ch == nil {
		return
	}
	signal.Stop(g.ch)
	close(g.done)
	g.wg.Wait()
}

// handle acts on signal s (see guard).
func (g *guard) handle(s syscall.Signal) {
	g.mu.Lock()
	if g.committed {
		g.mu.Unlock()
		return
	}
	if g.cancel != nil && g.sig == 0 {
		g.sig = s
		g.mu.Unlock()
		fmt.Fprintf(g.stderr, "\n%s: %s: stopping (again to stop at once)\n", g.cmd, unix.SignalName(s))
		g.cancel()
		return
	}
	if g.sig != 0 {
		s = g.sig
	}
	// The lock stays held: no commit starts and no temporary file is made
	// between here and the exit.
	g.cleanupLocked()
	fmt.Fprintf(g.stderr, "\n%s: %s: removed the unfinished output\n", g.cmd, unix.SignalName(s))
	g.exit(128 + int(s))
}

// cleanupLocked removes the temporary files, then runs the cleanups, the
// last registered first.
func (g *guard) cleanupLocked() {
	for name := range g.temps {
		os.Remove(name)
	}
	g.temps = map[string]bool{}
	for _, fn := range slices.Backward(g.cleanups) {
		(*fn)()
	}
	g.cleanups = nil
}

// createTemp creates a temporary file as os.CreateTemp does and keeps its
// name until forget, to remove it on a signal.
func (g *guard) createTemp(dir, pattern string) (*os.File, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	f, err := os.CreateTemp(dir, pattern)
	if err == nil {
		g.temps[f.Name()] = true
	}
	return f, err
}

// forget drops name from the files a signal removes.
func (g *guard) forget(name string) {
	g.mu.Lock()
	delete(g.temps, name)
	g.mu.Unlock()
}

// onSignal registers fn to run when a signal ends the command at once,
// and returns the function that unregisters it.
func (g *guard) onSignal(fn func()) (remove func()) {
	p := &fn
	g.mu.Lock()
	g.cleanups = append(g.cleanups, p)
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		g.cleanups = slices.DeleteFunc(g.cleanups, func(q *func()) bool { return q == p })
		g.mu.Unlock()
	}
}

// beginCommit marks the start of the commit: from now on signals are
// ignored. It fails if a signal has already arrived.
func (g *guard) beginCommit() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sig != 0 {
		return fmt.Errorf("%w by %s", errInterrupted, unix.SignalName(g.sig))
	}
	g.committed = true
	return nil
}

// interrupted returns the signal that interrupted the command, or 0.
func (g *guard) interrupted() syscall.Signal {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.sig
}
