package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/rafs-dev/rafs/convert/serve"
	"github.com/rafs-dev/rafs/convert/serve/boltqueue"
	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// Convert on push: a registry (here go-containerregistry's, in process)
// holds the sample image of testdata; its push is notified to the
// Server, which stores a task by the config's rule; a Runner converts it
// into the Nydus image sample:v1-nydus.
func Example() {
	reg := httptest.NewServer(registry.New(registry.Logger(stdlog.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")
	digest := pushSample(host + "/sample:v1")

	dir, err := os.MkdirTemp("", "rafs-serve")
	if err != nil {
		stdlog.Fatal(err)
	}
	defer os.RemoveAll(dir)
	q, err := boltqueue.Open(filepath.Join(dir, "queue.db"), nil)
	if err != nil {
		stdlog.Fatal(err)
	}
	defer q.Close()
	cfg, err := serve.ParseConfig([]byte(`{"rules":[{"repositories":["sample"],"types":["nydus"]}]}`))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		stdlog.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	srv, err := serve.NewServer(serve.ServerOptions{Queue: q, Tasks: cfg.Tasks, Log: quiet})
	if err != nil {
		stdlog.Fatal(err)
	}
	front := httptest.NewServer(srv)
	defer front.Close()

	// The registry's notification of the push.
	envelope := fmt.Sprintf(`{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":%q,"repository":"sample","tag":"v1"},"request":{"host":%q}}]}`, digest, host)
	resp, err := http.Post(front.URL+"/api/v1/notifications", "application/json", strings.NewReader(envelope))
	if err != nil {
		stdlog.Fatal(err)
	}
	var accepted serve.Accepted
	json.NewDecoder(resp.Body).Decode(&accepted)
	resp.Body.Close()
	fmt.Println(resp.Status, len(accepted.Tasks), "task:", strings.TrimPrefix(accepted.Tasks[0].Targets[0], host))

	// The runner converts it.
	runner, err := serve.NewRunner(serve.RunnerOptions{Queue: q, TempDir: dir, Log: quiet})
	if err != nil {
		stdlog.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- runner.Run(ctx) }()
	var t queue.Task
	for t.Status != queue.Completed && t.Status != queue.Failed {
		time.Sleep(10 * time.Millisecond)
		if t, err = q.Get(ctx, accepted.Tasks[0].ID); err != nil {
			stdlog.Fatal(err)
		}
	}
	cancel()
	<-done
	fmt.Println(t.Status)
	if t.Error != "" {
		fmt.Println(t.Error)
	}
	tag, err := name.NewTag(host + "/sample:v1-nydus")
	if err != nil {
		stdlog.Fatal(err)
	}
	target, err := remote.Get(tag)
	if err != nil {
		stdlog.Fatal(err)
	}
	var m struct {
		Annotations map[string]string `json:"annotations"`
	}
	json.Unmarshal(target.Manifest, &m)
	fmt.Println("converted from", strings.TrimPrefix(m.Annotations[serve.AnnotationSource], host))
	// Output:
	// 202 Accepted 1 task: /sample:v1-nydus
	// COMPLETED
	// converted from /sample@sha256:1902c8cb0dabfc331dd32bc65e759d12fe67038b44ca723395e05f86e0095454
}

// pushSample pushes the sample image of testdata to ref and returns its
// digest.
func pushSample(ref string) string {
	idx, err := layout.ImageIndexFromPath("../../testdata/sample-image")
	if err != nil {
		stdlog.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		stdlog.Fatal(err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		stdlog.Fatal(err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		stdlog.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		stdlog.Fatal(err)
	}
	return im.Manifests[0].Digest.String()
}
