//go:build linux

package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/convert/internal/fstree"
	"github.com/rafs-dev/rafs/convert/internal/imagetest"
	"github.com/rafs-dev/rafs/convert/internal/mounttest"
	"github.com/rafs-dev/rafs/convert/internal/registrytest"
	"github.com/rafs-dev/rafs/convert/internal/tartest"
	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// TestServeEndToEnd runs rafs serve against a real registry that notifies
// it. The subtests share the rafs binary; each starts its own registry
// and rafs serve.
func TestServeEndToEnd(t *testing.T) {
	bin := rafsBinary(t)
	t.Run("Push", func(t *testing.T) { testPush(t, bin) })
	t.Run("KillRestart", func(t *testing.T) { testKillRestart(t, bin) })
	t.Run("KillAnywhere", func(t *testing.T) { testKillAnywhere(t, bin) })
	t.Run("Replicas", func(t *testing.T) { testReplicas(t, bin) })
	t.Run("Loop", func(t *testing.T) { testLoop(t, bin) })
	t.Run("Harbor", func(t *testing.T) { testHarbor(t, bin) })
	t.Run("BadRequests", func(t *testing.T) { testBadRequests(t, bin) })
	t.Run("Storm", func(t *testing.T) { testStorm(t, bin) })
	t.Run("SIGTERM", func(t *testing.T) { testSIGTERM(t, bin) })
}

// smallImage returns an image of the test layer stack (every entry type,
// whiteouts, an opaque directory, hard links, xattrs) topped with a layer
// unique to name, and its layers.
func smallImage(t testing.TB, name string) (v1.Image, [][]byte) {
	t.Helper()
	top := tartest.Gzip(tartest.Tar(tartest.Entry{
		Header: tar.Header{Name: "etc/image-name", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: time.Unix(1700000000, 0)},
		Data:   []byte(name + "\n"),
	}))
	layers := append(tartest.Stack(), top)
	return imagetest.Image(t, "amd64", layers...), layers
}

// distinctImage returns a three-layer image none of whose layers another
// name's image has: files, a symbolic and a hard link, then a whiteout
// and changed files, then the name. Tests converting several images at
// once use it: docker-registry 2.8's filesystem storage rewrites a
// blob's link file in place (truncated, then written) when the same blob
// is pushed to the same repository again, and a manifest PUT that reads
// it meanwhile fails with DIGEST_INVALID and MANIFEST_BLOB_UNKNOWN, which
// rafs serve does not retry (a 400).
func distinctImage(t testing.TB, name string) (v1.Image, [][]byte) {
	t.Helper()
	mt := time.Unix(1700000000, 0)
	dir := func(p string) tartest.Entry {
		return tartest.Entry{Header: tar.Header{Name: p, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mt}}
	}
	file := func(p string, data []byte) tartest.Entry {
		return tartest.Entry{Header: tar.Header{Name: p, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: mt}, Data: data}
	}
	l1 := tartest.Tar(dir("etc/"), file("etc/config", tartest.Text(name+"/config", 20000)),
		dir("usr/"), dir("usr/bin/"), file("usr/bin/tool", tartest.Content(name+"/tool", 300000)),
		tartest.Entry{Header: tar.Header{Name: "usr/bin/tool-link", Typeflag: tar.TypeSymlink, Linkname: "tool", ModTime: mt}},
		tartest.Entry{Header: tar.Header{Name: "usr/bin/tool-hard", Typeflag: tar.TypeLink, Linkname: "usr/bin/tool", ModTime: mt}})
	l2 := tartest.Tar(dir("etc/"), file("etc/.wh.config", nil), dir("etc/config.d/"), file("etc/config.d/"+name, tartest.Text(name+"/d", 5000)),
		dir("usr/"), dir("usr/bin/"), file("usr/bin/tool", tartest.Content(name+"/tool2", 100000)))
	l3 := tartest.Tar(dir("etc/"), file("etc/image-name", []byte(name+"\n")))
	layers := [][]byte{tartest.Gzip(l1), tartest.Gzip(l2), tartest.Gzip(l3)}
	return imagetest.Image(t, "amd64", layers...), layers
}

// heldImage is smallImage with the digest of its top layer, which a test
// holds at the proxy to stop the image's conversion in the middle.
func heldImage(t testing.TB, name string) (v1.Image, [][]byte, v1.Hash) {
	t.Helper()
	img, layers := smallImage(t, name)
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	d, err := ls[len(ls)-1].Digest()
	if err != nil {
		t.Fatal(err)
	}
	return img, layers, d
}

// checkMounts copies the converted images repo:tag-nydus and
// repo:tag-erofs into OCI layouts and mounts them with the kernel: each
// must match layers applied in order. It runs as a subtest, skipped (or
// failed under RAFS_E2E=require) when the kernel cannot mount them.
func checkMounts(t *testing.T, e *e2eEnv, repo, tag string, layers [][]byte) {
	t.Helper()
	t.Run("Mount "+strings.ReplaceAll(repo+":"+tag, "/", "-"), func(t *testing.T) {
		mounttest.Require(t)
		mountAndCompare(t, e, repo, tag, layers)
	})
}

func mountAndCompare(t *testing.T, e *e2eEnv, repo, tag string, layers [][]byte) {
	t.Helper()
	want, err := fstree.FromLayers(layers...)
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []image.Type{image.TypeNydus, image.TypeEROFS} {
		ref := repo + ":" + tag + "-" + string(typ)
		raw := e.reg.InspectRaw(t, ref)
		d, _, err := v1.SHA256(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		lay := imagetest.Layout(filepath.Join(t.TempDir(), "layout"))
		e.reg.CopyToLayout(t, ref, string(lay), "conv", false)
		imagetest.CheckConverted(t, typ, lay, d, want)
	}
}

// testPush: skopeo pushes an image of the Debian layer and a small
// multi-layer one to a registry that notifies rafs serve; the converted
// images appear under the source tag plus -nydus and -erofs, record their
// source and task, were pushed once each, and the kernel mounts them
// matching the source layers. It logs the seconds from the end of the
// push to each converted image being visible.
func testPush(t *testing.T, bin string) {
	base, err := os.ReadFile(tartest.DebianLayer(t))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, bin, false)
	s := startServe(t, bin, e.notify, serveArgs(t.TempDir())...)

	deb := imagetest.Image(t, "amd64", base)
	dd, pushed := e.push(t, deb, "library/debian", "v1")
	visible := map[string]time.Duration{}
	waitFor(t, "the converted Debian images to appear", func() bool {
		for _, typ := range []string{"nydus", "erofs"} {
			if _, ok := visible[typ]; !ok && e.manifestVisible("library/debian", "v1-"+typ) {
				visible[typ] = time.Since(pushed)
			}
		}
		return len(visible) == 2
	})
	t.Logf("push to converted image visible, Debian layer (%.1f MB gzipped): nydus %.2fs, erofs %.2fs",
		float64(len(base))/1e6, visible["nydus"].Seconds(), visible["erofs"].Seconds())
	debTask := s.waitTask(e.source("library/debian", dd), queue.Completed)

	small, smallLayers := smallImage(t, "small")
	sd, _ := e.push(t, small, "lib/small", "v1")
	smallTask := s.waitTask(e.source("lib/small", sd), queue.Completed)

	for _, c := range []struct {
		repo string
		tk   queue.Task
	}{{"library/debian", debTask}, {"lib/small", smallTask}} {
		if c.tk.Skipped != "" || c.tk.Attempts != 1 || c.tk.BytesIn <= 0 || c.tk.BytesOut <= 0 ||
			!slices.Equal(c.tk.Types, []string{"nydus", "erofs"}) || len(c.tk.Targets) != 2 || c.tk.SourceTag != "v1" {
			t.Errorf("task %+v; want one attempt converting v1 to nydus and erofs, bytes counted", c.tk)
		}
		for _, typ := range []string{"nydus", "erofs"} {
			checkAnnotations(t, e.reg, c.repo+":v1-"+typ, c.tk)
		}
	}
	checkMounts(t, e, "library/debian", "v1", [][]byte{base})
	checkMounts(t, e, "lib/small", "v1", smallLayers)

	// The converted images' own pushes were notified too, and ignored.
	for _, repo := range []string{"library/debian", "lib/small"} {
		if got := e.reg.Tags(t, repo); !slices.Equal(got, []string{"v1", "v1-erofs", "v1-nydus"}) {
			t.Errorf("%s tags %v, want v1 and its two conversions", repo, got)
		}
	}
	if ts := s.tasks(); len(ts) != 2 {
		t.Errorf("%d tasks, want 2: %+v", len(ts), ts)
	}
	wantPuts(t, e.manifestPuts(t), "library/debian:v1-nydus", "library/debian:v1-erofs", "lib/small:v1-nydus", "lib/small:v1-erofs")

	code, body := s.request(http.MethodGet, "/metrics", nil, e2eAuth)
	for _, m := range []string{"rafs_tasks", "rafs_queue_depth", "rafs_conversion_seconds_count", "rafs_bytes_in_total", "rafs_bytes_out_total", "rafs_notifications_total"} {
		if code != http.StatusOK || !bytes.Contains(body, []byte(m)) {
			t.Errorf("GET /metrics: %d, no %s in:\n%s", code, m, body)
			break
		}
	}
}

// testKillRestart: rafs serve is killed with SIGKILL in the middle of a
// conversion (one layer held at the proxy) five times in a row, each time
// with the next image pushed while it is down (the registry retries its
// notification); after each restart the interrupted conversion completes.
// No task is lost or done twice: five tasks, two attempts each, each
// converted image pushed once, and the first mounts matching its source.
func testKillRestart(t *testing.T, bin string) {
	e := newEnv(t, bin, false)
	s := startServe(t, bin, e.notify, serveArgs(t.TempDir(), "--jobs", "1")...)
	const n = 5
	imgs := make([]v1.Image, n)
	held := make([]v1.Hash, n)
	var firstLayers [][]byte
	for i := range n {
		var layers [][]byte
		imgs[i], layers, held[i] = heldImage(t, fmt.Sprintf("kill-%d", i))
		if i == 0 {
			firstLayers = layers
		}
		e.proxy.hold(held[i])
	}
	digests := make([]v1.Hash, n)
	digests[0], _ = e.push(t, imgs[0], "lib/kill", "v0")
	for i := range n {
		src := e.source("lib/kill", digests[i])
		s.waitTask(src, queue.Running)
		e.proxy.waitHeld(t, held[i])
		s.kill()
		if i+1 < n {
			digests[i+1], _ = e.push(t, imgs[i+1], "lib/kill", fmt.Sprintf("v%d", i+1))
		}
		s.start()
		e.proxy.release(held[i])
		s.waitTask(src, queue.Completed)
	}
	ts := s.tasks()
	if len(ts) != n {
		t.Errorf("%d tasks after %d kills, want %d: %+v", len(ts), n, n, ts)
	}
	var targets []string
	for i := range n {
		tk, _ := s.task(e.source("lib/kill", digests[i]))
		if tk.Status != queue.Completed || tk.Attempts != 2 || tk.Skipped != "" {
			t.Errorf("task of v%d: %s after %d attempts (skipped %q); want COMPLETED after 2 (killed, then done)", i, tk.Status, tk.Attempts, tk.Skipped)
		}
		targets = append(targets, fmt.Sprintf("lib/kill:v%d-nydus", i), fmt.Sprintf("lib/kill:v%d-erofs", i))
	}
	wantPuts(t, e.manifestPuts(t), targets...)
	checkMounts(t, e, "lib/kill", "v0", firstLayers)
}

// testKillAnywhere: five images (with no layer in common) pushed one
// after the other, rafs serve (--jobs 2) SIGKILLed and restarted at a random moment after each push:
// while it stores a notification, converts, pushes a converted manifest,
// or starts. Whatever the moment, every image ends converted, once: five
// tasks COMPLETED, each converted manifest PUT once, the first mounting
// as its layers applied. (Pushes made while
// it is down are delivered when it is back: the registry retries.)
func testKillAnywhere(t *testing.T, bin string) {
	e := newEnv(t, bin, false)
	s := startServe(t, bin, e.notify, serveArgs(t.TempDir(), "--jobs", "2")...)
	const n = 5
	var sources, targets []string
	var delays []string
	var firstLayers [][]byte
	for i := range n {
		img, layers := distinctImage(t, fmt.Sprintf("anywhere-%d", i))
		if i == 0 {
			firstLayers = layers
		}
		d, _ := e.push(t, img, "lib/anywhere", fmt.Sprintf("v%d", i))
		sources = append(sources, e.source("lib/anywhere", d))
		targets = append(targets, fmt.Sprintf("lib/anywhere:v%d-nydus", i), fmt.Sprintf("lib/anywhere:v%d-erofs", i))
		delay := time.Duration(rand.N(600)) * time.Millisecond
		delays = append(delays, delay.String())
		time.Sleep(delay)
		s.restart()
	}
	attempts := 0
	for _, src := range sources {
		tk := s.waitTask(src, queue.Completed)
		attempts += tk.Attempts
	}
	if ts := s.tasks(); len(ts) != n {
		t.Errorf("%d tasks, want %d: %+v", len(ts), n, ts)
	}
	t.Logf("killed %v after the pushes; %d attempts for %d tasks", delays, attempts, n)
	wantPuts(t, e.manifestPuts(t), targets...)
	checkMounts(t, e, "lib/anywhere", "v0", firstLayers)
}

// testLoop: converted images are not converted again, whether their push
// is recognised by the tag suffix (the registry notifies the pushes rafs
// serve makes) or by the annotation (a converted image copied under
// another tag); the same push notified again is the same task and
// converts nothing; and with its state lost, rafs serve finds the
// targets already converted by the same task and skips it.
func testLoop(t *testing.T, bin string) {
	e := newEnv(t, bin, false)
	s := startServe(t, bin, e.notify, serveArgs(t.TempDir())...)
	img, _ := smallImage(t, "loop")
	d, _ := e.push(t, img, "lib/loop", "v1")
	tk := s.waitTask(e.source("lib/loop", d), queue.Completed)

	// A converted image copied under another tag (its notification comes
	// after those of the converted images' pushes).
	conv := manifestOf(t, e.via, "lib/loop:v1-nydus")
	raw := e.via.InspectRaw(t, "lib/loop:v1-nydus")
	cd, _, _ := v1.SHA256(bytes.NewReader(raw))
	registrytest.Skopeo(t, "--insecure-policy", "copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--preserve-digests",
		"docker://"+e.via.Ref("lib/loop:v1-nydus"), "docker://"+e.via.Ref("lib/copy:c1"))
	ct := s.waitTask(e.source("lib/copy", cd), queue.Completed)
	if ct.Skipped == "" || ct.BytesOut != 0 {
		t.Errorf("task of a copied converted image (annotations %v): %+v; want skipped", conv.Annotations, ct)
	}
	if got := e.reg.Tags(t, "lib/copy"); !slices.Equal(got, []string{"c1"}) {
		t.Errorf("lib/copy tags %v, want only c1", got)
	}
	if got := e.reg.Tags(t, "lib/loop"); !slices.Equal(got, []string{"v1", "v1-erofs", "v1-nydus"}) {
		t.Errorf("lib/loop tags %v, want v1 and its two conversions", got)
	}
	if ts := s.tasks(); len(ts) != 2 {
		t.Errorf("%d tasks, want the source's and the copy's: %+v", len(ts), ts)
	}

	// A push whose tag has a rule's suffix is ignored with the reason.
	code, body := s.notify(pushEnvelope(e.proxy.Host, "lib/loop", "v2-nydus", d, 100))
	r := parseNotifyResponse(t, body)
	if code != http.StatusAccepted || len(r.Tasks) != 0 || len(r.Ignored) != 1 || r.Ignored[0].Reason == "" {
		t.Errorf("push of a -nydus tag: %d %s; want 202 with it ignored and why", code, body)
	}

	// The same push, notified twice more: the same task, nothing new.
	size, err := img.Size()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		code, body := s.notify(pushEnvelope(e.proxy.Host, "lib/loop", "v1", d, size))
		r := parseNotifyResponse(t, body)
		if code != http.StatusAccepted || len(r.Tasks) != 1 || r.Tasks[0].ID != tk.ID {
			t.Errorf("the same push again: %d %s; want 202 with task %s", code, body, tk.ID)
		}
	}
	time.Sleep(500 * time.Millisecond) // a conversion it started would be running now
	if got, _ := s.task(e.source("lib/loop", d)); got.Attempts != 1 || got.Status != queue.Completed {
		t.Errorf("task after the same push again: %+v; want still COMPLETED after 1 attempt", got)
	}

	// State lost: a new store, the same push. The task is new to the
	// store, but the targets already hold its ID.
	s.kill()
	s = startServe(t, bin, e.notify, serveArgs(t.TempDir())...)
	code, body = s.notify(pushEnvelope(e.proxy.Host, "lib/loop", "v1", d, size))
	if code != http.StatusAccepted {
		t.Fatalf("the same push to a new store: %d %s", code, body)
	}
	again := s.waitTask(e.source("lib/loop", d), queue.Completed)
	if again.ID != tk.ID || again.Skipped == "" {
		t.Errorf("the same push to a new store: %+v; want task %s skipped (targets already converted)", again, tk.ID)
	}
	wantPuts(t, e.manifestPuts(t), "lib/loop:v1-nydus", "lib/loop:v1-erofs")
}

// e2eHarborPayload returns Harbor's webhook payload for a push of repo:tag
// (digest d) through host, as Harbor 2 sends it.
func e2eHarborPayload(host, repo, tag string, d v1.Hash) []byte {
	ns, name, _ := strings.Cut(repo, "/")
	b, _ := json.Marshal(map[string]any{
		"type":     "PUSH_ARTIFACT",
		"occur_at": time.Now().Unix(),
		"operator": "admin",
		"event_data": map[string]any{
			"resources": []any{map[string]any{"digest": d.String(), "tag": tag, "resource_url": host + "/" + repo + ":" + tag}},
			"repository": map[string]any{"date_created": time.Now().Unix(), "name": name, "namespace": ns,
				"repo_full_name": repo, "repo_type": "private"},
		},
	})
	return b
}

// testHarbor: Harbor's webhook with ?sync=true answers once the
// conversion is done: 200 with the task COMPLETED and the converted
// images there; 500 with the task FAILED and its error when the pushed
// artifact cannot be converted (it is not in the registry).
func testHarbor(t *testing.T, bin string) {
	e := newEnv(t, bin, true) // the registry notifies nobody: Harbor's webhook is the trigger
	s := startServe(t, bin, e.notify, serveArgs(t.TempDir())...)
	img, _ := smallImage(t, "harbor")
	d, _ := e.push(t, img, "proj/app", "v1")
	code, body := s.request(http.MethodPost, "/api/v1/conversions?sync=true", e2eHarborPayload(e.proxy.Host, "proj/app", "v1", d), e2eAuth)
	r := parseNotifyResponse(t, body)
	if code != http.StatusOK || len(r.Tasks) != 1 || r.Tasks[0].Status != queue.Completed || r.Tasks[0].Source != e.source("proj/app", d) {
		t.Errorf("Harbor push, sync: %d %s; want 200 with its task COMPLETED", code, body)
	}
	if got := e.reg.Tags(t, "proj/app"); !slices.Equal(got, []string{"v1", "v1-erofs", "v1-nydus"}) {
		t.Errorf("proj/app tags %v after a synchronous conversion, want v1 and its two conversions", got)
	}

	absent, _, _ := v1.SHA256(strings.NewReader("absent"))
	code, body = s.request(http.MethodPost, "/api/v1/conversions?sync=true", e2eHarborPayload(e.proxy.Host, "proj/app", "v2", absent), e2eAuth)
	r = parseNotifyResponse(t, body)
	if code != http.StatusInternalServerError || len(r.Tasks) != 1 || r.Tasks[0].Status != queue.Failed || r.Tasks[0].Error == "" {
		t.Errorf("Harbor push of a missing artifact, sync: %d %s; want 500 with its task FAILED and the error", code, body)
	}
}

// testBadRequests: malformed payloads get 400 with the reason, a wrong
// or missing Authorization 401, and neither makes a task; /healthz needs
// no Authorization; events other than manifest pushes make none either.
func testBadRequests(t *testing.T, bin string) {
	e := newEnv(t, bin, true)
	s := startServe(t, bin, e.notify, serveArgs(t.TempDir())...)
	good := pushEnvelope(e.proxy.Host, "lib/x", "v1", v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("ab", 32)}, 100)

	for _, c := range []struct{ name, path, body string }{
		{"not JSON", "/api/v1/notifications", "not json"},
		{"empty", "/api/v1/notifications", ""},
		{"no events", "/api/v1/notifications", `{}`},
		{"events not a list", "/api/v1/notifications", `{"events":{}}`},
		{"no action", "/api/v1/notifications", `{"events":[{"target":{"mediaType":"application/vnd.oci.image.manifest.v1+json"}}]}`},
		{"bad digest", "/api/v1/notifications", strings.Replace(string(good), "sha256:abab", "sha256:zzab", 1)},
		{"no repository", "/api/v1/notifications", strings.Replace(string(good), `"repository":"lib/x"`, `"repository":""`, 1)},
		{"truncated", "/api/v1/notifications", string(good[:len(good)/2])},
		{"harbor not JSON", "/api/v1/conversions", "not json"},
		{"harbor no resources", "/api/v1/conversions", `{"type":"PUSH_ARTIFACT","event_data":{}}`},
	} {
		code, body := s.request(http.MethodPost, c.path, []byte(c.body), e2eAuth)
		if code != http.StatusBadRequest || len(bytes.TrimSpace(body)) == 0 {
			t.Errorf("%s: %d %q; want 400 with the reason", c.name, code, body)
		}
	}
	// A body far larger than any envelope.
	huge := append([]byte(`{"events":[`), bytes.Repeat([]byte(`{"action":"pull"},`), 2<<20)...)
	if code, body := s.request(http.MethodPost, "/api/v1/notifications", huge, e2eAuth); code != http.StatusBadRequest && code != http.StatusRequestEntityTooLarge {
		t.Errorf("a %d MB body: %d %.200s; want 400 or 413", len(huge)>>20, code, body)
	}
	// Pulls, blob pushes and deletes make no task.
	other := `{"events":[
		{"action":"pull","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","repository":"lib/x","digest":"sha256:` + strings.Repeat("ab", 32) + `","tag":"v1"},"request":{"host":"` + e.proxy.Host + `"}},
		{"action":"push","target":{"mediaType":"application/octet-stream","repository":"lib/x","digest":"sha256:` + strings.Repeat("cd", 32) + `"},"request":{"host":"` + e.proxy.Host + `"}},
		{"action":"delete","target":{"repository":"lib/x","digest":"sha256:` + strings.Repeat("ab", 32) + `"},"request":{"host":"` + e.proxy.Host + `"}}]}`
	if code, body := s.notify([]byte(other)); code != http.StatusAccepted || len(parseNotifyResponse(t, body).Tasks) != 0 {
		t.Errorf("pull, blob push and delete: %d %s; want 202 and no task", code, body)
	}

	// (HTTP drops a header value's trailing spaces: no case for them.)
	for _, auth := range []string{"", "Bearer e2e-secreT", "Bearer  e2e-secret", "Basic e2e-secret", e2eAuth + "x", "bearer e2e-secret"} {
		for _, r := range []struct{ method, path string }{
			{http.MethodPost, "/api/v1/notifications"},
			{http.MethodPost, "/api/v1/conversions"},
			{http.MethodGet, "/api/v1/conversions"},
			{http.MethodGet, "/metrics"},
		} {
			var body []byte
			if r.method == http.MethodPost {
				body = good
			}
			if code, b := s.request(r.method, r.path, body, auth); code != http.StatusUnauthorized {
				t.Errorf("%s %s with Authorization %q: %d %.200s; want 401", r.method, r.path, auth, code, b)
			}
		}
	}
	if code, body := s.request(http.MethodGet, "/healthz", nil, ""); code != http.StatusOK {
		t.Errorf("GET /healthz without Authorization: %d %s", code, body)
	}
	if ts := s.tasks(); len(ts) != 0 {
		t.Errorf("bad requests made tasks: %+v", ts)
	}
}

// testStorm: 200 notifications in 2 seconds, 40 for each of 5 pushed
// images, in 40 rounds of 5 sent at once, to rafs serve with --jobs 1: every
// one is answered 202 at once; they make 10 tasks, never more than one
// RUNNING; all complete. It logs the time taken and rafs serve's peak
// RSS (VmHWM), which must stay under 512 MiB.
func testStorm(t *testing.T, bin string) {
	const images, rounds = 5, 40
	e := newEnv(t, bin, true)
	envs := make([][]byte, images)
	sources := make([]string, images)
	for i := range images {
		img, _ := smallImage(t, fmt.Sprintf("storm-%d", i))
		d, _ := e.push(t, img, "lib/storm", fmt.Sprintf("v%d", i))
		size, err := img.Size()
		if err != nil {
			t.Fatal(err)
		}
		envs[i] = pushEnvelope(e.proxy.Host, "lib/storm", fmt.Sprintf("v%d", i), d, size)
		sources[i] = e.source("lib/storm", d)
	}
	s := startServe(t, bin, e.notify, serveArgs(t.TempDir(), "--jobs", "1")...)
	idleRSS := s.peakRSS()

	var maxRunning, polls atomic.Int64
	stop := make(chan struct{})
	var watcher sync.WaitGroup
	watcher.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			code, body := s.request(http.MethodGet, "/api/v1/conversions?status=RUNNING", nil, e2eAuth)
			if code != http.StatusOK {
				continue
			}
			n := int64(bytes.Count(body, []byte(`"id"`)))
			polls.Add(1)
			for {
				m := maxRunning.Load()
				if n <= m || maxRunning.CompareAndSwap(m, n) {
					break
				}
			}
		}
	})

	start := time.Now()
	var slowest atomic.Int64
	var senders sync.WaitGroup
	errs := make(chan string, images*rounds)
	for round := range rounds {
		at := start.Add(time.Duration(round) * 2 * time.Second / rounds)
		time.Sleep(time.Until(at))
		for i := range images {
			senders.Go(func() {
				t0 := time.Now()
				code, body := s.notify(envs[i])
				if d := int64(time.Since(t0)); d > slowest.Load() {
					slowest.Store(d)
				}
				if code != http.StatusAccepted {
					errs <- fmt.Sprintf("notification %d of image %d: %d %s", round, i, code, body)
				}
			})
		}
	}
	senders.Wait()
	sent := time.Since(start)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, src := range sources {
		s.waitTask(src, queue.Completed)
	}
	total := time.Since(start)
	close(stop)
	watcher.Wait()

	ts := s.tasks()
	if len(ts) != images {
		t.Errorf("%d notifications of %d pushes made %d tasks", images*rounds, images, len(ts))
	}
	if maxRunning.Load() > 1 {
		t.Errorf("%d tasks RUNNING at once with --jobs 1", maxRunning.Load())
	}
	if sent > 10*time.Second {
		t.Errorf("answering %d notifications took %v", images*rounds, sent)
	}
	peak := s.peakRSS()
	t.Logf("storm: %d notifications sent in %.2fs (slowest answer %.0fms), %d tasks, all converted after %.2fs; at most %d RUNNING (%d polls); peak RSS %.1f MiB (%.1f MiB idle)",
		images*rounds, sent.Seconds(), time.Duration(slowest.Load()).Seconds()*1000, len(ts), total.Seconds(), maxRunning.Load(), polls.Load(),
		float64(peak)/(1<<20), float64(idleRSS)/(1<<20))
	if peak > 512<<20 {
		t.Errorf("peak RSS %.1f MiB, want under 512 MiB", float64(peak)/(1<<20))
	}
}

// testSIGTERM: SIGTERM in the middle of a conversion stops taking
// notifications (503) and lets the conversion finish within
// --shutdown-timeout, exiting 0; when the conversion cannot finish in
// time, it is handed back (PENDING, its attempt not counted) and exits 0,
// and the next start completes it.
func testSIGTERM(t *testing.T, bin string) {
	e := newEnv(t, bin, false)
	state := t.TempDir()
	s := startServe(t, bin, e.notify, serveArgs(state, "--shutdown-timeout", "60s")...)

	img, _, held := heldImage(t, "term-1")
	e.proxy.hold(held)
	d, _ := e.push(t, img, "lib/term", "v1")
	src := e.source("lib/term", d)
	s.waitTask(src, queue.Running)
	e.proxy.waitHeld(t, held)
	s.cmd.Process.Signal(syscall.SIGTERM)
	// A push rafs serve would ignore (a -nydus tag): a request sent just
	// before the signal took effect makes no task.
	waitFor(t, "rafs serve to refuse notifications after SIGTERM", func() bool {
		code, _ := s.notify(pushEnvelope(e.proxy.Host, "lib/term", "v1-nydus", d, 100))
		return code == http.StatusServiceUnavailable
	})
	if !s.running() {
		t.Fatalf("rafs serve exited before its running conversion finished")
	}
	e.proxy.release(held)
	if code := s.wait(time.Minute); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0", code)
	}
	s.start()
	if tk := s.waitTask(src, queue.Completed); tk.Attempts != 1 {
		t.Errorf("task finished during shutdown: %+v; want COMPLETED after 1 attempt", tk)
	}
	s.kill()

	s = startServe(t, bin, e.notify, serveArgs(state, "--shutdown-timeout", "500ms")...)
	img, _, held = heldImage(t, "term-2")
	e.proxy.hold(held)
	d, _ = e.push(t, img, "lib/term", "v2")
	src = e.source("lib/term", d)
	s.waitTask(src, queue.Running)
	e.proxy.waitHeld(t, held)
	t0 := time.Now()
	if code := s.terminate(30 * time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM with a conversion held, want 0", code)
	}
	if took := time.Since(t0); took > 10*time.Second {
		t.Errorf("shutdown took %v with --shutdown-timeout 500ms", took)
	}
	e.proxy.release(held)
	s.start()
	if tk := s.waitTask(src, queue.Completed); tk.Attempts != 1 {
		t.Errorf("task handed back at shutdown, then completed: %+v; want 1 attempt counted", tk)
	}
	wantPuts(t, e.manifestPuts(t), "lib/term:v1-nydus", "lib/term:v1-erofs", "lib/term:v2-nydus", "lib/term:v2-erofs")
}
