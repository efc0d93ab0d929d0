package redistest

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// command sends one command to the server at addr and returns the first
// line of its reply and, for a bulk string, the string.
func command(t *testing.T, addr string, args ...string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(c)
	l, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	l = strings.TrimSuffix(l, "\r\n")
	if strings.HasPrefix(l, "$") && l != "$-1" {
		v, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSuffix(v, "\r\n")
	}
	return l
}

func TestStartRestart(t *testing.T) {
	s := Start(t)
	if !strings.HasPrefix(s.URL, "redis://127.0.0.1:") || !strings.HasSuffix(s.URL, "/0") {
		t.Errorf("URL = %q", s.URL)
	}
	if got := command(t, s.Addr, "SET", "k", "survives"); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	s.Restart(t)
	if got := command(t, s.Addr, "GET", "k"); got != "survives" {
		t.Fatalf("GET after a kill and restart = %q, want %q; log:\n%s", got, "survives", s.Log())
	}
}

// TestTwoServers checks that two servers get different ports and
// directories and each answers as itself.
func TestTwoServers(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr == b.Addr || a.Dir == b.Dir {
		t.Fatalf("two servers share %s / %s", a.Addr, a.Dir)
	}
	command(t, a.Addr, "SET", "k", "a")
	if got := command(t, b.Addr, "GET", "k"); got != "$-1" {
		t.Fatalf("second server sees the first one's key: %q", got)
	}
}

func TestMissingSkips(t *testing.T) {
	skipped := false
	t.Run("missing", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		t.Setenv(EnvVar, "")
		defer func() { skipped = t.Skipped() }()
		Start(t)
		t.Error("Start returned without redis-server on PATH")
	})
	if !skipped {
		t.Error("Start did not skip without redis-server on PATH")
	}
}
