// Package e2e holds the end-to-end tests of rafs serve; it has no code
// but its tests. They run the rafs binary (built once per test run) as a
// subprocess, so that they can SIGKILL and restart it, with real
// components the tests start: Debian's docker-registry configured to
// notify rafs serve, skopeo pushing images to it, redis-server for the
// replicas, and the kernel mounting the converted images. They skip with
// the reason when a component is missing, and fail instead under
// RAFS_E2E=require.
//
// Every test reaches the registry through a proxy of its own: images are
// pushed through it, so the registry's notifications name the proxy's
// address and rafs serve pulls and pushes through it too. The proxy can
// hold the download of chosen blobs, which stops a conversion in the
// middle for as long as a test needs: to kill rafs serve there, stop it
// with SIGTERM, or kill one replica of two.
//
// BenchmarkServeThroughput measures images converted per minute with one
// replica and with two (go test -bench ServeThroughput -benchtime 1x).
package e2e
