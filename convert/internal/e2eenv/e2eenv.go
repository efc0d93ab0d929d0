// Package e2eenv holds what the end-to-end test helpers (mounttest,
// registrytest, redistest) share: the environment switch that turns
// their skips into failures on machines that must run them, and a free
// loopback port for the servers they start.
package e2eenv

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
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

// FreePort returns a TCP port of 127.0.0.1 that was free a moment ago,
// below the kernel's range of ephemeral ports (ip_local_port_range(7)):
// a port the kernel hands out (listening on port 0) is also what it
// gives the local end of outgoing connections, so that until the server
// a test starts binds it, any client connection of the tests running
// beside it can take it (seen: "rafs serve: bind: address already in
// use" while registries and Redis servers were busy).
func FreePort() (int, error) {
	low := ephemeralLow()
	var err error
	for range 100 {
		port := freeFrom + rand.IntN(low-freeFrom)
		var l net.Listener
		if l, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
			continue // taken
		}
		if err = l.Close(); err != nil {
			return 0, err
		}
		return port, nil
	}
	return 0, fmt.Errorf("e2eenv: no free port in %d-%d: %w", freeFrom, low-1, err)
}

// freeFrom is the lowest port FreePort returns, above the ports
// services commonly listen on.
const freeFrom = 20000

// ephemeralLow is the first port of the kernel's ephemeral range, or
// 32768 (Linux's default) where it cannot be read or leaves no room.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low <= freeFrom+1000 {
		return 32768
	}
	return low
}
