package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rafs-dev/rafs/convert/serve"
	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// TestServeFlags checks the command line's refusals: each is a usage
// error (exit status 2) before anything listens.
func TestServeFlags(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(cfg, []byte(`{"rules":[{"types":["erofs"],"options":["-z","lz4"]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	badCfg := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(badCfg, []byte(`{"rules":[{"types":["nydus"],"options":["-z","lz4"]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", cfg, "--type", "erofs"}, "--type makes a rule"},
		{[]string{"--config", cfg, "--", "-z", "lz4"}, "rafs convert flags after --"},
		{[]string{"--config", badCfg}, "-z is for --type erofs"},
		{[]string{"--", "-z", "lz4"}, "-z is for --type erofs"},
		{[]string{"--type", "erofs", "--", "--progress", "none"}, "--progress is not a conversion flag"},
		{[]string{"--", "--referrer"}, "referrer"},
		{[]string{"--", "--no-such-flag"}, "no-such-flag"},
		{[]string{"--", "SRC"}, `"SRC" is not a flag`},
		{[]string{"--type", "squashfs"}, "squashfs"},
		{[]string{"--link", "sideways"}, "sideways"},
		{[]string{"--jobs", "0"}, "--jobs 0"},
		{[]string{"--temp-limit", "lots"}, "--temp-limit"},
		{[]string{"--lease", "1s"}, "--lease"},
		{[]string{"--tls-cert", "c.pem"}, "--tls-key"},
		{[]string{"--queue", "redis://127.0.0.1:1/0", "--state-dir", "x"}, "--state-dir"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		code, err := runServe(context.Background(), func() {}, c.args, io.Discard, nil)
		if code != 2 || err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: exit %d, %v; want 2 and %q", c.args, code, err, c.want)
		}
	}
}

// TestServeConversionOptions checks that rafs serve reads conversion
// flags with rafs convert's parser: the same flags give the same options.
func TestServeConversionOptions(t *testing.T) {
	for _, args := range [][]string{
		{"--type", "erofs", "-z", "lz4hc,level=9", "-C", "65536", "--referrer"},
		{"--type", "erofs", "--tar-index", "--verity"},
		{"--type", "nydus", "--compressor", "lz4_block", "--chunk-size", "0x10000", "--merge-index", "--cache", "c"},
		{"--type", "erofs", "-z", "lz4", "-E", "dedupe", "--platform", "linux/arm64", "--erofs-media-type", "spec"},
	} {
		got, cache, err := conversionOptions(args)
		if err != nil {
			t.Fatalf("%q: %v", args, err)
		}
		f, _, err := parseConvertFlags(append(args, "SRC", "DST"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := f.imageOptions()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) || cache != f.cache {
			t.Errorf("%q: serve reads %+v, cache %q; convert %+v, cache %q", args, got, cache, want, f.cache)
		}
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "512": 512, "4K": 4096, "20G": 20 << 30, "1.5G": -1, "3MiB": 3 << 20, "2t": 2 << 40, "": -1, "-1": -1, "G": -1} {
		got, err := parseSize(in)
		if want < 0 && err == nil || want >= 0 && (err != nil || got != want) {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// TestServe runs rafs serve against an in-process registry: a
// notification of a push is answered 202 with its task, the task
// completes, the target is a Nydus image annotated with its source, the
// same notification again makes no second task, and the command exits 0
// when its context ends.
func TestServe(t *testing.T) {
	host := startRegistry(t)
	src := pushSample(t, host) // host/sample:latest
	srcDigest := sampleDigest(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrc := make(chan net.Addr, 1)
	var logBuf syncBuffer
	done := make(chan int, 1)
	go func() {
		code, err := runServe(ctx, func() {}, []string{"--listen", "127.0.0.1:0", "--state-dir", t.TempDir(), "--tmpdir", t.TempDir(),
			"--auth", "Bearer t0ken", "--plain-http", "--repo", "sample", "--", "--workers", "2"}, &logBuf, func(a net.Addr) { addrc <- a })
		if err != nil {
			t.Errorf("rafs serve: %v", err)
		}
		done <- code
	}()
	var base string
	select {
	case a := <-addrc:
		base = "http://" + a.String()
	case code := <-done:
		t.Fatalf("rafs serve exited %d\n%s", code, logBuf.String())
	}

	envelope := fmt.Sprintf(`{"events":[{"id":"e1","timestamp":"2026-01-01T00:00:00Z","action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","size":1,"digest":%q,"length":1,"repository":"sample","url":"http://%s/v2/sample/manifests/%s","tag":"latest"},"request":{"id":"r","addr":"127.0.0.1:1","host":%q,"method":"PUT","useragent":"test"},"actor":{},"source":{"addr":"h:1","instanceID":"i"}}]}`,
		srcDigest, host, srcDigest, host)
	post := func() (int, serve.Accepted) {
		req, _ := http.NewRequest("POST", base+"/api/v1/notifications", strings.NewReader(envelope))
		req.Header.Set("Authorization", "Bearer t0ken")
		req.Header.Set("Content-Type", "application/vnd.docker.distribution.events.v1+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a serve.Accepted
		json.NewDecoder(resp.Body).Decode(&a)
		return resp.StatusCode, a
	}
	code, a := post()
	if code != http.StatusAccepted || len(a.Tasks) != 1 || a.Tasks[0].Targets[0] != host+"/sample:latest-nydus" {
		t.Fatalf("notification: %d %+v", code, a)
	}
	id := a.Tasks[0].ID
	var task queue.Task
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest("GET", base+"/api/v1/conversions", nil)
		req.Header.Set("Authorization", "Bearer t0ken")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var tasks []queue.Task
		err = json.NewDecoder(resp.Body).Decode(&tasks)
		resp.Body.Close()
		if err != nil || len(tasks) != 1 || tasks[0].ID != id {
			t.Fatalf("listing: %v %+v", err, tasks)
		}
		if task = tasks[0]; task.Status == queue.Completed || task.Status == queue.Failed {
			break
		}
	}
	if task.Status != queue.Completed || task.BytesOut == 0 {
		t.Fatalf("task %+v\n%s", task, logBuf.String())
	}
	img := remoteImage(t, host+"/sample:latest-nydus")
	checkConverted(t, "nydus", img)
	m, _ := img.Manifest()
	if m.Annotations[serve.AnnotationSource] != strings.TrimSuffix(src, ":latest")+"@"+srcDigest.String() || m.Annotations[serve.AnnotationTask] != id {
		t.Errorf("target annotations %v", m.Annotations)
	}
	if code, a := post(); code != http.StatusAccepted || len(a.Tasks) != 1 || a.Tasks[0].ID != id || a.Tasks[0].Status != queue.Completed {
		t.Errorf("the same notification again: %d %+v", code, a)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit status %d\n%s", code, logBuf.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("rafs serve did not stop")
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
