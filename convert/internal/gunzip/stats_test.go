package gunzip

import (
	"io"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestLayerStats is a measuring aid, skipped unless GUNZIP_LAYER names a
// .tar.gz: it reports decode throughput and CPU time on 1, 2 and 4 cores
// (the consumer and up to 3 workers) and sequentially, and how many
// chunks the parallel path used.
func TestLayerStats(t *testing.T) {
	path := os.Getenv("GUNZIP_LAYER")
	if path == "" {
		t.Skip("GUNZIP_LAYER not set")
	}
	buf := make([]byte, 256<<10)
	for _, c := range layerConfigs {
		in, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		t0, c0 := time.Now(), cpuTime()
		z, err := newReader(in, c)
		if err != nil {
			t.Fatal(err)
		}
		p := z.p
		n, err := io.CopyBuffer(io.Discard, z, buf)
		d, cpu := time.Since(t0), cpuTime()-c0
		in.Close()
		if err != nil {
			t.Fatal(err)
		}
		if p == nil {
			t.Logf("sequential: %d bytes, %v, %.0f MB/s, CPU %v", n, d.Round(time.Millisecond), float64(n)/d.Seconds()/1e6, cpu.Round(time.Millisecond))
			continue
		}
		t.Logf("workers %d: %d bytes, %v, %.0f MB/s, CPU %v; chunks used %d (%d after a gap), decoded again %d, taken by the consumer %d, finished by the consumer %d", c.workers, n, d.Round(time.Millisecond), float64(n)/d.Seconds()/1e6, cpu.Round(time.Millisecond), p.accepted, p.bridged, p.fallbacks, p.stolen, p.resumed)
	}
}

// layerConfigs are the configurations TestLayerStats measures; with
// GUNZIP_WORKERS=n only n cores (0: sequential), so that a process's
// peak RSS is that of one configuration; with GUNZIP_CHUNK=n chunks of
// n KiB; with GUNZIP_MARKED=n a marked region of at most n KiB; with
// GUNZIP_NOSTEAL set the consumer leaves all chunks to the
// workers.
var layerConfigs = []config{{sequential: true}, {workers: 1, force: true}, {workers: 2, force: true}, {workers: 4, force: true}}

func init() {
	for i := range layerConfigs {
		layerConfigs[i].noSteal = os.Getenv("GUNZIP_NOSTEAL") != ""
	}
	if m, err := strconv.Atoi(os.Getenv("GUNZIP_MARKED")); err == nil {
		for i := range layerConfigs {
			layerConfigs[i].maxMarked = m << 10
		}
	}
	if m, err := strconv.Atoi(os.Getenv("GUNZIP_MAXOUT")); err == nil {
		for i := range layerConfigs {
			layerConfigs[i].maxOut = m << 10
		}
	}
	if cs, err := strconv.Atoi(os.Getenv("GUNZIP_CHUNK")); err == nil {
		for i := range layerConfigs {
			layerConfigs[i].chunkSize = cs << 10
		}
	}
	switch os.Getenv("GUNZIP_WORKERS") {
	case "0":
		layerConfigs = layerConfigs[:1]
	case "1":
		layerConfigs = layerConfigs[1:2]
	case "2":
		layerConfigs = layerConfigs[2:3]
	case "4":
		layerConfigs = layerConfigs[3:4]
	}
}
