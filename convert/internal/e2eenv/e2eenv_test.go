package e2eenv

import (
	"net"
	"strconv"
	"testing"
)

func TestFreePort(t *testing.T) {
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	if p < freeFrom || p >= ephemeralLow() {
		t.Errorf("port %d is outside %d-%d", p, freeFrom, ephemeralLow()-1)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("port %d was not free: %v", p, err)
	}
	l.Close()
}

type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper()                       {}
func (f *fakeTB) Skipf(format string, a ...any) { f.skipped = format }
func (f *fakeTB) Fatalf(format string, a ...any) {
	f.failed = format
}

func TestSkipOrFail(t *testing.T) {
	t.Setenv(EnvVar, "")
	f := &fakeTB{}
	SkipOrFail(f, "x", "missing")
	if f.skipped == "" || f.failed != "" {
		t.Errorf("without %s: skipped %q failed %q; want a skip", EnvVar, f.skipped, f.failed)
	}
	t.Setenv(EnvVar, "require")
	f = &fakeTB{}
	SkipOrFail(f, "x", "missing")
	if f.failed == "" || f.skipped != "" {
		t.Errorf("with %s=require: skipped %q failed %q; want a failure", EnvVar, f.skipped, f.failed)
	}
}
