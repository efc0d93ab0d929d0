// Package e2eenv holds what the end-to-end test helpers (mounttest,
// registrytest, redistest) share: the environment switch that turns
// their skips into failures on machines that must run them, and a free
// loopback port for the servers they start.
package e2eenv

import (
	"net"
	"os"
	"testing"
)

// EnvVar names the environment variable that turns skips into failures
// when set to "require" (.ci/run sets it).
const EnvVar = "RAFS_E2E"

// SkipOrFail skips t with reason, prefixed by the helper's name, or
// fails it when EnvVar is "require".
func SkipOrFail(t testing.TB, helper, reason string) {
	t.Helper()
	if os.Getenv(EnvVar) == "require" {
		t.Fatalf("%s: %s (and %s=require)", helper, reason, EnvVar)
		return
	}
	t.Skipf("%s: %s", helper, reason)
}

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}
