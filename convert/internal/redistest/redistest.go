// Package redistest runs a real Redis server (Debian's redis-server) on
// 127.0.0.1 for tests of rafs serve's Redis task store and of several rafs
// serve replicas sharing it.
//
// redis-server is an external program. When it is not on PATH, the test
// using it is skipped, unless the environment variable RAFS_E2E is
// "require", in which case the test fails instead (for CI machines that
// must run it).
//
// The server keeps its data in a temporary directory with the append-only
// file on and fsynced before each reply (appendonly yes, appendfsync
// always), so killing the server (Restart) loses no write a client saw
// acknowledged. (With appendfsync everysec, Redis's default, a write can
// reach the file up to two seconds after its reply while an fsync is
// slow.)
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert/internal/e2eenv"
)

// EnvVar names the environment variable that turns skips into failures
// when set to "require".
const EnvVar = e2eenv.EnvVar

const (
	serverBin    = "redis-server"
	startTimeout = 10 * time.Second
	pollInterval = 20 * time.Millisecond
	portAttempts = 5
	logTailBytes = 4 << 10
)

// Server is a running redis-server. It is killed by a t.Cleanup
// registered by Start.
type Server struct {
	// URL is the server's address for go-redis's ParseURL and rafs
	// serve's --queue: "redis://127.0.0.1:PORT/0".
	URL string
	// Addr is "127.0.0.1:PORT".
	Addr string
	// Dir is the server's working directory, holding its append-only
	// file and its log (redis.log).
	Dir string

	bin  string
	proc *process
}

// process is one run of the server binary.
type process struct {
	cmd    *exec.Cmd
	done   chan struct{} // closed when cmd.Wait returned
	exitEr error
}

// errPortTaken reports that the server could not listen on its port
// because another process took it after freePort released it.
var errPortTaken = errors.New("port taken")

// Start starts a redis-server on a free port of 127.0.0.1, keeping its
// data in a temporary directory, and waits until it answers. The server is
// killed when the test and its subtests finish. Start skips t (or fails it
// under RAFS_E2E=require) when redis-server is not on PATH, and fails t
// when the server does not come up within 10 seconds.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath(serverBin)
	if err != nil {
		skipOrFail(t, serverBin+" not found on PATH (Debian package redis-server)")
		return nil
	}
	for range portAttempts {
		port, err := e2eenv.FreePort()
		if err != nil {
			t.Fatalf("redistest: finding a free port: %v", err)
		}
		s := &Server{
			Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			Dir:  t.TempDir(),
			bin:  bin,
		}
		s.URL = "redis://" + s.Addr + "/0"
		// Registered after t.TempDir, so it runs before the directory
		// is removed.
		t.Cleanup(s.kill)
		err = s.start()
		if err == nil {
			return s
		}
		if !errors.Is(err, errPortTaken) {
			t.Fatalf("redistest: %v", err)
		}
		t.Logf("redistest: %v; trying another port", err)
	}
	t.Fatalf("redistest: %d ports in a row were taken before redis-server could listen", portAttempts)
	return nil
}

// Restart kills the server with SIGKILL (as a crash would) and starts it
// again on the same port and directory, so that it reloads its
// append-only file. It fails t (the calling test, which may be a subtest
// of the one that started the server) when the server does not come
// back.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.kill()
	if err := s.start(); err != nil {
		t.Fatalf("redistest: restarting: %v", err)
	}
}

// Log returns the end of the server's log, for failure messages.
func (s *Server) Log() string {
	return logTail(filepath.Join(s.Dir, "redis.log"))
}

// kill stops the running server, if any, with SIGKILL and waits for it.
func (s *Server) kill() {
	p := s.proc
	if p == nil {
		return
	}
	s.proc = nil
	select {
	case <-p.done:
	default:
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// start runs the server binary on s.Addr in s.Dir and waits until the
// server answering there reports s.Dir as its directory. It returns an
// error wrapping errPortTaken when the port was in use.
func (s *Server) start() error {
	host, port, _ := net.SplitHostPort(s.Addr)
	cfg := filepath.Join(s.Dir, "redis.conf")
	logName := filepath.Join(s.Dir, "redis.log")
	q := strconv.Quote
	conf := strings.Join([]string{
		"bind " + host,
		"port " + port,
		"dir " + q(s.Dir),
		"logfile " + q(logName),
		"daemonize no",
		"appendonly yes",
		"appendfsync always",
		`save ""`,
		"",
	}, "\n")
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("writing redis.conf: %w", err)
	}
	before := fileSize(logName)
	cmd := exec.Command(s.bin, cfg)
	cmd.Dir = s.Dir
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", s.bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { p.exitEr = cmd.Wait(); close(p.done) }()
	s.proc = p

	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-p.done:
			s.proc = nil
			tail := logTail(logName)
			if strings.Contains(logSince(logName, before), "Address already in use") {
				return fmt.Errorf("%s: %w", s.Addr, errPortTaken)
			}
			return fmt.Errorf("%s exited before answering on %s: %v; log tail:\n%s", s.bin, s.Addr, p.exitEr, tail)
		default:
		}
		if ours(s.Addr, s.Dir) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer on %s within %v; log tail:\n%s", s.bin, s.Addr, startTimeout, logTail(logName))
		}
		time.Sleep(pollInterval)
	}
}

// ours reports whether the Redis server at addr has dir as its directory
// (so it is the one this package started, not another process that took
// the port) and is done loading its data.
func ours(addr, dir string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	// CONFIG GET dir answers *2 $3 dir $N DIR (even while loading); PING
	// answers +PONG once the append-only file is loaded, -LOADING before.
	if _, err := io.WriteString(c, "*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$3\r\ndir\r\n*1\r\n$4\r\nPING\r\n"); err != nil {
		return false
	}
	r := bufio.NewReader(c)
	var lines []string
	for range 6 {
		l, err := r.ReadString('\n')
		if err != nil {
			return false
		}
		l = strings.TrimSuffix(l, "\r\n")
		lines = append(lines, l)
		if strings.HasPrefix(l, "-") {
			return false
		}
	}
	return lines[0] == "*2" && lines[2] == "dir" && lines[4] == dir && lines[5] == "+PONG"
}

func fileSize(name string) int64 {
	fi, err := os.Stat(name)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logSince returns the log written after its first off bytes.
func logSince(name string, off int64) string {
	b, err := os.ReadFile(name)
	if err != nil || off > int64(len(b)) {
		return ""
	}
	return string(b[off:])
}

// logTail returns the end of the log file name.
func logTail(name string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return fmt.Sprintf("(reading log: %v)", err)
	}
	if len(b) > logTailBytes {
		b = b[len(b)-logTailBytes:]
	}
	return string(b)
}

func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	e2eenv.SkipOrFail(t, "redistest", reason)
}
