package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// rafsBinary builds the CLI, once per test run, and returns its path.
func rafsBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the CLI")
	}
	binOnce.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			binErr = err
			return
		}
		if binDir, binErr = os.MkdirTemp("", "rafs-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "rafs")
		if out, err := exec.Command(goBin, "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// slowTar is an uncompressed tar of one 4 MiB file of random bytes, to be
// fed in two halves.
func slowTar(t *testing.T) []byte {
	t.Helper()
	data := make([]byte, 4<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "big", Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(data)
	tw.Close()
	return buf.Bytes()
}

// started is a started rafs process.
type started struct {
	cmd    *exec.Cmd
	stderr *lineWaiter
}

// startRafs starts the CLI with TMPDIR set to tmp and standard input
// stdin (may be nil).
func startRafs(t *testing.T, tmp string, stdin io.Reader, args ...string) *started {
	t.Helper()
	return startProgram(t, tmp, stdin, rafsBinary(t), args...)
}

// startProgram is startRafs for any program.
func startProgram(t *testing.T, tmp string, stdin io.Reader, prog string, args ...string) *started {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Stdin = stdin
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	s := &started{cmd: cmd, stderr: newLineWaiter(pr)}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return s
}

// wait waits for the process and returns its exit status (-1 if a signal
// killed it) and standard error.
func (s *started) wait(t *testing.T) (int, string) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		s.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		s.cmd.Process.Kill()
		<-done
		t.Fatalf("%s did not end", s.cmd)
	}
	return s.cmd.ProcessState.ExitCode(), s.stderr.all()
}

// lineWaiter collects what a process writes and lets tests wait for a
// text.
type lineWaiter struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  strings.Builder
	eof  bool
}

func newLineWaiter(r io.ReadCloser) *lineWaiter {
	w := &lineWaiter{}
	w.cond = sync.NewCond(&w.mu)
	go func() {
		defer r.Close()
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			w.mu.Lock()
			w.buf.WriteString(line)
			w.eof = err != nil
			w.cond.Broadcast()
			w.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return w
}

// waitFor waits until the text contains s, and reports whether it does.
func (w *lineWaiter) waitFor(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for !strings.Contains(w.buf.String(), s) && !w.eof {
		w.cond.Wait()
	}
	return strings.Contains(w.buf.String(), s)
}

func (w *lineWaiter) all() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for !w.eof {
		w.cond.Wait()
	}
	return w.buf.String()
}

// waitUntil polls cond for up to 30 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for start := time.Now(); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Since(start) > 30*time.Second {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// globAll returns the files matching pattern.
func globAll(pattern string) []string {
	m, _ := filepath.Glob(pattern)
	return m
}

var testSignals = []syscall.Signal{syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM}

// TestSignalMidBuild interrupts builds of both types, reading standard
// input that stops half way, with each signal: the process exits with
// 128+N, leaving the old outputs as they were and no temporary file,
// next to the outputs or in TMPDIR.
func TestSignalMidBuild(t *testing.T) {
	input := slowTar(t)
	for _, typ := range []string{"erofs", "nydus"} {
		for _, sig := range testSignals {
			t.Run(typ+"/"+unix.SignalName(sig), func(t *testing.T) {
				dir, tmp := t.TempDir(), t.TempDir()
				out, boot := filepath.Join(dir, "out"), filepath.Join(dir, "boot")
				os.WriteFile(out, []byte("old output"), 0o644)
				args := []string{"build", "--type", typ, "-o", out, "-"}
				if typ == "nydus" {
					os.WriteFile(boot, []byte("old bootstrap"), 0o644)
					args = append(args, "--bootstrap", boot)
				}
				before := dirState(t, dir)
				pr, pw, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer pw.Close()
				p := startRafs(t, tmp, pr, args...)
				pr.Close()
				// A pipe holds 64 KiB: once this write returns, rafs has
				// read most of the first half, and it waits for the rest.
				if _, err := pw.Write(input[:len(input)/2]); err != nil {
					t.Fatal(err)
				}
				if len(globAll(filepath.Join(dir, ".out.tmp-*"))) != 1 {
					t.Fatalf("no temporary output while the build runs: %s", dirState(t, dir))
				}
				p.cmd.Process.Signal(sig)
				code, stderr := p.wait(t)
				if code != 128+int(sig) || !strings.Contains(stderr, "removed the unfinished output") {
					t.Errorf("exit status %d, want %d: %s", code, 128+int(sig), stderr)
				}
				if after := dirState(t, dir); after != before {
					t.Errorf("after the signal:\n%s\nwant\n%s", after, before)
				}
				if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
					t.Errorf("left in TMPDIR: %v", ents)
				}
			})
		}
	}
}

// TestSignalIgnored: a signal the process was started with ignored
// (nohup, a background job of a script) stays ignored, and the build
// completes.
func TestSignalIgnored(t *testing.T) {
	bin := rafsBinary(t)
	input := slowTar(t)
	dir, tmp := t.TempDir(), t.TempDir()
	out := filepath.Join(dir, "out")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	p := startProgram(t, tmp, pr, "/bin/sh", "-c", `trap "" HUP; exec "$0" "$@"`, bin, "build", "-o", out, "-")
	pr.Close()
	if _, err := pw.Write(input[:len(input)/2]); err != nil {
		t.Fatal(err)
	}
	p.cmd.Process.Signal(syscall.SIGHUP)
	if _, err := pw.Write(input[len(input)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	if code, stderr := p.wait(t); code != 0 {
		t.Fatalf("exit status %d after an ignored SIGHUP: %s", code, stderr)
	}
	if fi, err := os.Stat(out); err != nil || fi.Size() < int64(len(input))/2 {
		t.Errorf("output: %v %v", fi, err)
	}
}

// stallingRegistry serves a registry that sends only the first half of
// one blob, and then waits until the request is cancelled or the test
// ends.
type stallingRegistry struct {
	host    string
	reached chan struct{} // closed once the first half is sent
}

func startStallingRegistry(t *testing.T, stall v1.Hash) *stallingRegistry {
	t.Helper()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	sr := &stallingRegistry{reached: make(chan struct{})}
	release := make(chan struct{})
	var once sync.Once
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.HasSuffix(r.URL.Path, "/blobs/"+stall.String()) {
			reg.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		reg.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		once.Do(func() { close(sr.reached) })
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(func() {
		close(release)
		srv.Close()
	})
	sr.host = strings.TrimPrefix(srv.URL, "http://")
	return sr
}

// leaseFile takes a write lease on path (fcntl(2) F_SETLEASE): another
// process opening it blocks until release is called, and this one gets
// SIGIO, which the returned channel reports.
func leaseFile(t *testing.T, path string) (opened <-chan os.Signal, release func()) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGIO)
	if _, err := unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_WRLCK); err != nil {
		signal.Stop(ch)
		f.Close()
		t.Skipf("no file lease on %s: %v", path, err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			unix.FcntlInt(f.Fd(), unix.F_SETLEASE, unix.F_UNLCK)
			f.Close()
			signal.Stop(ch)
		})
	}
	t.Cleanup(release)
	return ch, release
}

// TestSignalMidConvert interrupts conversions of the sample image with
// each signal, while its first layer cannot be read: from an OCI layout
// whose layer blob is leased, so that opening it blocks until the test
// lets it go, into an existing layout and into a new one; and from a
// registry that sends half the layer and then stalls. Meanwhile the
// second layer is converted into a spool file. The process exits with
// 128+N, the existing layout is as it was, the new one is not made, and
// TMPDIR is empty: the Converter's spool files are removed.
func TestSignalMidConvert(t *testing.T) {
	m, _, _ := checkImage(t, layoutImage(t, sampleImageDir, "latest"))
	stalled := m.Layers[0].Digest
	sr := startStallingRegistry(t, stalled)
	srcRef := sr.host + "/sample:latest"
	ref, err := name.ParseReference(srcRef, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, layoutImage(t, sampleImageDir, "latest")); err != nil {
		t.Fatal(err)
	}
	for _, sig := range testSignals {
		for _, c := range []string{"layout-existing", "layout-new", "registry-existing"} {
			t.Run(unix.SignalName(sig)+"/"+c, func(t *testing.T) {
				dir, tmp := t.TempDir(), t.TempDir()
				dst := filepath.Join(dir, "dst")
				if strings.HasSuffix(c, "-existing") {
					mustRun(t, "convert", "--progress", "none", sampleSrc, "oci:"+dst+":old")
				}
				src := srcRef
				if strings.HasPrefix(c, "layout") {
					copyDir(t, sampleImageDir, filepath.Join(dir, "src"))
					src = "oci:" + filepath.Join(dir, "src")
				}
				before := dirState(t, dir)
				var opened <-chan os.Signal
				var release func()
				if strings.HasPrefix(c, "layout") {
					// (Reading the leased file would block this process
					// too.)
					opened, release = leaseFile(t, filepath.Join(dir, "src", "blobs", stalled.Algorithm, stalled.Hex))
				}
				p := startRafs(t, tmp, nil, "convert", "--progress", "none", "--jobs", "2", src, "oci:"+dst+":new")
				if opened != nil {
					select {
					case <-opened:
					case <-time.After(30 * time.Second):
						t.Fatal("rafs did not open the first layer")
					}
				} else {
					<-sr.reached
				}
				waitUntil(t, "a spool file", func() bool {
					return len(globAll(filepath.Join(tmp, "rafs-layer-*")))+len(globAll(filepath.Join(tmp, "*", "rafs-layer-*"))) > 0
				})
				p.cmd.Process.Signal(sig)
				if !p.stderr.waitFor("stopping") {
					t.Error("rafs did not say it was stopping")
				}
				if release != nil {
					release() // the blocked open returns
				}
				code, stderr := p.wait(t)
				if code != 128+int(sig) || !strings.Contains(stderr, "interrupted by "+unix.SignalName(sig)) {
					t.Errorf("exit status %d, want %d: %s", code, 128+int(sig), stderr)
				}
				if after := dirState(t, dir); after != before {
					t.Errorf("after the signal:\n%s\nwant\n%s", after, before)
				}
				if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
					t.Errorf("left in TMPDIR: %v", ents)
				}
			})
		}
	}
}
