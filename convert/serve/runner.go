package serve

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/rafs-dev/rafs/convert/image"
	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// Annotations rafs serve puts on the manifests (and indexes) it pushes,
// through image.Options.Annotations.
const (
	// AnnotationSource is the source the target was converted from,
	// REGISTRY/REPO@DIGEST. A source carrying it is a converted image,
	// which is not converted again.
	AnnotationSource = "dev.rafs.serve.source"
	// AnnotationTask is the ID of the task that converted the target. A
	// target already carrying the task's ID is not converted again.
	AnnotationTask = "dev.rafs.serve.task"
)

// RunnerOptions configure a Runner. Only Queue must be set.
type RunnerOptions struct {
	// Queue is the store tasks are claimed from.
	Queue queue.Queue
	// Owner names this process to the store (leases); default
	// HOSTNAME-PID.
	Owner string
	// Jobs is the number of tasks converted at a time (default 1).
	Jobs int
	// Lease is how long a claimed task stays this owner's without
	// renewal (default 30 s); it is renewed every Lease/3 while the
	// conversion runs, and a conversion whose lease is lost (another
	// owner took the task over) is cancelled.
	Lease time.Duration
	// Retries is how many times a task failing with a registry error
	// (a transport error, 408, 429 or 5xx) is tried again, after
	// Backoff, 2×Backoff, ... up to MaxBackoff; then it is FAILED with
	// the error. Other errors fail a task at once.
	Retries int
	// Backoff is the first retry's delay (default 2 s); MaxBackoff
	// caps the delay (default 5 min).
	Backoff, MaxBackoff time.Duration
	// ShutdownTimeout is how long running conversions may go on once
	// Run's context is done (default 30 s); those still running then
	// are cancelled and released (PENDING again).
	ShutdownTimeout time.Duration
	// TempDir holds the conversions' temporary files, a directory per
	// task named after Owner ("" means os.TempDir()). Run first removes
	// the directories an earlier process of the same Owner left there.
	TempDir string
	// TempLimit, when positive, caps the bytes of temporary files: no
	// task is claimed while they are at the cap, the latest started
	// conversion is put back (retried later) when they exceed it, and a
	// task that needs more than the cap alone fails.
	TempLimit int64
	// Keychain gives registry credentials (authn.DefaultKeychain when
	// nil).
	Keychain authn.Keychain
	// PlainHTTP reports whether a registry host is reached over plain
	// HTTP (nil: none is, except localhost as go-containerregistry
	// allows).
	PlainHTTP func(host string) bool
	// Transport carries registry requests (remote.DefaultTransport when
	// nil).
	Transport http.RoundTripper
	// RequestBackoff is how each registry request is retried on a
	// network error, 408, 429 or 5xx before the attempt fails (zero:
	// go-containerregistry's default, 3 tries over about 4 s).
	RequestBackoff remote.Backoff
	// ConversionOptions turns a task's rafs convert flags (its Options,
	// then --type and the link's flag) into converter options and a
	// cache tag (rafs serve passes rafs convert's own flag parser).
	// When nil, a task with Options fails, and others get the
	// converter's defaults for their type and link.
	ConversionOptions func(flags []string) (opts *image.Options, cacheTag string, err error)
	// Metrics, when set, count the attempts and bytes.
	Metrics *Metrics
	// Log receives a line per attempt (slog.Default() when nil).
	Log *slog.Logger
}

// A Runner converts the tasks of a queue: Jobs workers claim tasks,
// convert each source into its targets (registry to registry, with
// image.ConvertToRegistry) and report the result to the queue.
type Runner struct {
	o RunnerOptions

	mu      sync.Mutex
	running map[string]*tempUse // by task ID
}

// tempUse is a running task's temporary space.
type tempUse struct {
	dir     string
	started time.Time
	bytes   int64
}

// NewRunner returns a Runner.
func NewRunner(o RunnerOptions) (*Runner, error) {
	if o.Queue == nil {
		return nil, errors.New("serve: RunnerOptions.Queue must be set")
	}
	if o.Jobs < 0 || o.Retries < 0 || o.Lease < 0 || o.TempLimit < 0 {
		return nil, errors.New("serve: RunnerOptions.Jobs, Retries, Lease and TempLimit must not be negative")
	}
	if o.Owner == "" {
		o.Owner = DefaultOwner()
	}
	if o.Jobs == 0 {
		o.Jobs = 1
	}
	if o.Lease == 0 {
		o.Lease = 30 * time.Second
	}
	if o.Backoff <= 0 {
		o.Backoff = 2 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.Keychain == nil {
		o.Keychain = authn.DefaultKeychain
	}
	if o.Transport == nil {
		o.Transport = remote.DefaultTransport
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Runner{o: o, running: map[string]*tempUse{}}, nil
}

// DefaultOwner is HOSTNAME-PID, a replica's default owner name.
func DefaultOwner() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "rafs"
	}
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

// tempPrefix begins the names of this owner's temporary directories.
func (r *Runner) tempPrefix() string {
	safe := strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' {
			return c
		}
		return '_'
	}, r.o.Owner)
	return "rafs-serve-" + safe + "-"
}

// removeStale removes the temporary directories an earlier process of
// the same owner name left (killed mid-conversion).
func (r *Runner) removeStale() {
	dir := r.o.TempDir
	if dir == "" {
		dir = os.TempDir()
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), r.tempPrefix()) {
			p := filepath.Join(dir, e.Name())
			if err := os.RemoveAll(p); err != nil {
				r.o.Log.Warn("removing an earlier run's temporary directory", "dir", p, "err", err)
			} else {
				r.o.Log.Info("removed an earlier run's temporary directory", "dir", p)
			}
		}
	}
}

// Run converts tasks until ctx is done. It then claims no more, lets the
// running conversions finish within ShutdownTimeout, cancels and
// releases those still running, and returns nil. It returns an error
// only when the queue is closed under it.
func (r *Runner) Run(ctx context.Context) error {
	r.removeStale()
	hard, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	go func() {
		select {
		case <-ctx.Done():
		case <-hard.Done():
			return
		}
		t := time.NewTimer(r.o.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-t.C:
			stop()
		case <-hard.Done():
		}
	}()
	errs := make([]error, r.o.Jobs)
	var wg sync.WaitGroup
	for i := range r.o.Jobs {
		wg.Go(func() { errs[i] = r.worker(ctx, hard) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// worker claims and converts tasks until ctx is done; hard cancels the
// running conversion.
func (r *Runner) worker(ctx, hard context.Context) error {
	for ctx.Err() == nil {
		if !r.waitTempSpace(ctx) {
			return nil
		}
		t, err := r.o.Queue.Claim(ctx, r.o.Owner, r.o.Lease)
		switch {
		case ctx.Err() != nil:
			if err == nil {
				// Claimed as ctx ended: hand it back.
				r.report(t, "released", 0, func(c context.Context) error { return r.o.Queue.Release(c, t.ID, r.o.Owner) })
			}
			return nil
		case errors.Is(err, queue.ErrClosed):
			return err
		case err != nil:
			r.o.Log.Error("claiming a task", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		r.run(hard, t)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Causes of a conversion's cancellation.
var (
	errTempFull    = errors.New("temporary space full (--temp-limit): put back to make room")
	errTempTooBig  = errors.New("the conversion needs more temporary space than the limit (--temp-limit)")
	errShutdown    = errors.New("shutting down")
	errAttemptDone = errors.New("attempt done")
)

// run converts one claimed task and reports the result.
func (r *Runner) run(hard context.Context, t queue.Task) {
	start := time.Now()
	log := r.o.Log.With("task", t.ID, "source", t.Source, "attempt", t.Attempts)
	log.Info("converting", "targets", t.Targets)
	ctx, cancel := context.WithCancelCause(hard)
	defer cancel(errAttemptDone)
	dir, err := os.MkdirTemp(r.o.TempDir, r.tempPrefix()+"*")
	if err != nil {
		// The temporary directory is the machine's problem, not the
		// task's: try again later.
		r.finish(log, t, start, queue.Result{}, fmt.Errorf("temporary directory: %w", err), true)
		return
	}
	defer os.RemoveAll(dir)
	r.mu.Lock()
	r.running[t.ID] = &tempUse{dir: dir, started: start}
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.running, t.ID)
		r.mu.Unlock()
	}()

	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Go(func() { r.heartbeat(ctx, t.ID, cancel, stop) })
	if r.o.TempLimit > 0 {
		wg.Go(func() { r.watchTemp(ctx, t.ID, cancel, stop) })
	}
	res, err := r.convert(ctx, t, dir)
	close(stop)
	wg.Wait()
	cause := context.Cause(ctx)
	switch {
	case errors.Is(cause, queue.ErrLeaseLost):
		log.Warn("lease lost: another owner has the task", "err", err)
		r.o.Metrics.attempt(strings.Join(t.Types, "+"), "lease_lost", time.Since(start))
		return
	case err != nil && hard.Err() != nil:
		r.report(t, "released", time.Since(start), func(c context.Context) error { return r.o.Queue.Release(c, t.ID, r.o.Owner) })
		log.Info("released at shutdown", "err", err)
		return
	case err != nil && errors.Is(cause, errTempFull):
		err = errTempFull
	case err != nil && errors.Is(cause, errTempTooBig):
		err = errTempTooBig
	}
	r.finish(log, t, start, res, err, errors.Is(err, errTempFull))
}

// finish reports an attempt's end: COMPLETED, PENDING again after a
// backoff (a registry error with retries left, or again when retry is
// set), or FAILED.
func (r *Runner) finish(log *slog.Logger, t queue.Task, start time.Time, res queue.Result, err error, retry bool) {
	d := time.Since(start)
	switch {
	case err == nil:
		result := "completed"
		if res.Skipped != "" {
			result = "skipped"
		}
		if r.report(t, result, d, func(c context.Context) error { return r.o.Queue.Complete(c, t.ID, r.o.Owner, res) }) {
			r.o.Metrics.bytes(res.BytesIn, res.BytesOut)
			log.Info("completed", "seconds", d.Seconds(), "bytesIn", res.BytesIn, "bytesOut", res.BytesOut, "skipped", res.Skipped)
		}
	case retry || Retryable(err) && t.Attempts <= r.o.Retries:
		at := time.Now().Add(r.backoff(t.Attempts))
		if r.report(t, "retry", d, func(c context.Context) error { return r.o.Queue.Fail(c, t.ID, r.o.Owner, err, at) }) {
			log.Warn("failed, will retry", "at", at.Format(time.RFC3339), "err", err)
		}
	default:
		if r.report(t, "failed", d, func(c context.Context) error { return r.o.Queue.Fail(c, t.ID, r.o.Owner, err, time.Time{}) }) {
			log.Error("failed", "err", err)
		}
	}
}

// report calls a queue operation ending an attempt, with a context of
// its own (the conversion's may be cancelled), and counts the attempt.
func (r *Runner) report(t queue.Task, result string, d time.Duration, op func(context.Context) error) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := op(ctx); err != nil {
		if errors.Is(err, queue.ErrLeaseLost) {
			result = "lease_lost"
		}
		r.o.Log.Error("reporting the task", "task", t.ID, "result", result, "err", err)
		r.o.Metrics.attempt(strings.Join(t.Types, "+"), result, d)
		return false
	}
	r.o.Metrics.attempt(strings.Join(t.Types, "+"), result, d)
	return true
}

// backoff is the delay before the attempt after attempt n (1-based):
// Backoff×2^(n-1), capped at MaxBackoff, ±10%.
func (r *Runner) backoff(n int) time.Duration {
	d := r.o.Backoff
	for i := 1; i < n && d < r.o.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, r.o.MaxBackoff)
	return time.Duration(float64(d) * (0.9 + 0.2*rand.Float64()))
}

// heartbeat renews the lease every Lease/3 until stop is closed; a lost
// lease cancels the conversion with queue.ErrLeaseLost.
func (r *Runner) heartbeat(ctx context.Context, id string, cancel context.CancelCauseFunc, stop <-chan struct{}) {
	every := r.o.Lease / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), every)
		err := r.o.Queue.Renew(rctx, id, r.o.Owner, r.o.Lease)
		rcancel()
		switch {
		case errors.Is(err, queue.ErrLeaseLost), errors.Is(err, queue.ErrNotFound):
			cancel(fmt.Errorf("renewing the lease: %w", queue.ErrLeaseLost))
			return
		case err != nil:
			// The store may be back before the lease ends; if not,
			// the next renewal says the lease is lost.
			r.o.Log.Warn("renewing the lease", "task", id, "err", err)
		}
	}
}

// watchTemp measures the task's temporary directory every second and
// cancels the conversion when it alone exceeds TempLimit, or when all
// of them do and it is the latest started.
func (r *Runner) watchTemp(ctx context.Context, id string, cancel context.CancelCauseFunc, stop <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		r.mu.Lock()
		u := r.running[id]
		r.mu.Unlock()
		n := dirBytes(u.dir)
		r.mu.Lock()
		u.bytes = n
		var total int64
		latest := true
		for oid, o := range r.running {
			total += o.bytes
			if oid != id && o.started.After(u.started) {
				latest = false
			}
		}
		r.mu.Unlock()
		switch {
		case n > r.o.TempLimit:
			cancel(errTempTooBig)
			return
		case total > r.o.TempLimit && latest:
			cancel(errTempFull)
			return
		}
	}
}

// waitTempSpace waits until the temporary files are under TempLimit; it
// returns false when ctx is done first.
func (r *Runner) waitTempSpace(ctx context.Context) bool {
	if r.o.TempLimit <= 0 {
		return true
	}
	for {
		r.mu.Lock()
		var total int64
		for _, u := range r.running {
			total += u.bytes
		}
		r.mu.Unlock()
		if total < r.o.TempLimit {
			return true
		}
		sleep(ctx, time.Second)
		if ctx.Err() != nil {
			return false
		}
	}
}

// dirBytes is the size of the files under dir.
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// Retryable reports whether err is a registry error worth retrying: a
// network error, an HTTP status 408, 429 or 5xx, or a manifest PUT
// refused because the registry does not (yet) see one of its blobs
// (MANIFEST_BLOB_UNKNOWN or DIGEST_INVALID: the distribution registry's
// filesystem storage answers so while a concurrent push of the same
// blob to the repository rewrites its link, as happens when images that
// share layers are converted at once).
func Retryable(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusRequestTimeout || te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500 {
			return true
		}
		if te.Request != nil && te.Request.Method == http.MethodPut && strings.Contains(te.Request.URL.Path, "/manifests/") {
			for _, d := range te.Errors {
				if d.Code == transport.ManifestBlobUnknownErrorCode || d.Code == transport.DigestInvalidErrorCode {
					return true
				}
			}
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// nameOptions are the reference options for host.
func (r *Runner) nameOptions(host string) []name.Option {
	if r.o.PlainHTTP != nil && r.o.PlainHTTP(host) {
		return []name.Option{name.Insecure}
	}
	return nil
}

func (r *Runner) remoteOptions(ctx context.Context) []remote.Option {
	o := []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(r.o.Keychain),
		remote.WithTransport(r.o.Transport),
		remote.WithUserAgent("rafs-serve"),
	}
	if r.o.RequestBackoff != (remote.Backoff{}) {
		o = append(o, remote.WithRetryBackoff(r.o.RequestBackoff))
	}
	return o
}

// convert converts t's source into each of its targets not converted
// before, in dir.
func (r *Runner) convert(ctx context.Context, t queue.Task, dir string) (queue.Result, error) {
	var res queue.Result
	if len(t.Types) == 0 || len(t.Targets) != len(t.Types) {
		return res, fmt.Errorf("task %s: %d targets for %d types", t.ID, len(t.Targets), len(t.Types))
	}
	host, _, _ := strings.Cut(t.Source, "/")
	src, err := name.NewDigest(t.Source, r.nameOptions(host)...)
	if err != nil {
		return res, fmt.Errorf("source %q: %w", t.Source, err)
	}
	ropts := r.remoteOptions(ctx)
	desc, err := remote.Get(src, ropts...)
	if err != nil {
		return res, fmt.Errorf("source %s: %w", src, err)
	}
	if why := convertedSource(desc); why != "" {
		res.Skipped = "the source is " + why
		return res, nil
	}
	var in any
	if desc.MediaType.IsIndex() {
		in, err = desc.ImageIndex()
	} else {
		in, err = desc.Image()
	}
	if err != nil {
		return res, fmt.Errorf("source %s: %w", src, err)
	}

	converted := 0
	for i, typ := range t.Types {
		thost, _, _ := strings.Cut(t.Targets[i], "/")
		tag, err := name.NewTag(t.Targets[i], r.nameOptions(thost)...)
		if err != nil {
			return res, fmt.Errorf("target %q: %w", t.Targets[i], err)
		}
		done, err := targetHolds(tag, t.ID, ropts)
		if err != nil {
			return res, fmt.Errorf("target %s: %w", tag, err)
		}
		if done {
			continue
		}
		opts, cacheTag, err := r.options(t, typ)
		if err != nil {
			return res, fmt.Errorf("%s conversion options %q: %w", typ, t.Options, err)
		}
		opts.Annotations = map[string]string{AnnotationSource: t.Source, AnnotationTask: t.ID}
		opts.TempDir = dir
		if opts.Type == image.TypeEROFS {
			opts.EROFS.Image.TempDir = dir
		}
		out, err := image.ConvertToRegistry(ctx, in, *opts, image.RegistryTarget{Tag: tag, CacheTag: cacheTag, Remote: ropts})
		if err != nil {
			return res, fmt.Errorf("converting %s to %s: %w", src, tag, err)
		}
		res.BytesIn += out.Stats.BytesIn
		res.BytesOut += out.Stats.BytesOut
		converted++
	}
	if converted == 0 {
		res.Skipped = "already converted: every target holds the task's ID (" + AnnotationTask + ")"
	}
	return res, nil
}

// options returns the converter options of t for type typ.
func (r *Runner) options(t queue.Task, typ string) (*image.Options, string, error) {
	var link []string
	var l image.Link
	switch t.Link {
	case "", "none":
	case "referrer":
		link, l = []string{"--referrer"}, image.LinkReferrer
	case "merge-index":
		link, l = []string{"--merge-index"}, image.LinkMergeIndex
	default:
		return nil, "", fmt.Errorf("link %q: want none, referrer or merge-index", t.Link)
	}
	if r.o.ConversionOptions == nil {
		if len(t.Options) > 0 {
			return nil, "", errors.New("no conversion flag parser (RunnerOptions.ConversionOptions) for the task's options")
		}
		switch image.Type(typ) {
		case image.TypeNydus, image.TypeEROFS:
		default:
			return nil, "", fmt.Errorf("type %q: want nydus or erofs", typ)
		}
		return &image.Options{Type: image.Type(typ), Link: l}, "", nil
	}
	return r.o.ConversionOptions(slices.Concat(t.Options, []string{"--type", typ}, link))
}

// manifestHead is what rafs serve reads of a manifest or an index.
type manifestHead struct {
	Annotations map[string]string `json:"annotations"`
	Layers      []v1.Descriptor   `json:"layers"`
	Manifests   []v1.Descriptor   `json:"manifests"`
}

// convertedSource says why a source is itself a converted image, or "".
func convertedSource(desc *remote.Descriptor) string {
	var m manifestHead
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return "" // the conversion reports the error
	}
	for _, a := range []string{AnnotationSource, image.AnnotationNydusSourceDigest} {
		if _, ok := m.Annotations[a]; ok {
			return "a converted image (annotation " + a + ")"
		}
	}
	for _, l := range m.Layers {
		switch {
		case l.MediaType == image.MediaTypeNydusBlob || l.Annotations[image.AnnotationNydusBootstrap] == "true":
			return "a Nydus image (layer " + l.Digest.String() + ")"
		case l.MediaType == image.MediaTypeEROFSLayer || l.MediaType == image.MediaTypeEROFS:
			return "an EROFS image (layer " + l.Digest.String() + ")"
		}
	}
	for _, d := range m.Manifests {
		if d.ArtifactType == image.ArtifactTypeNydusManifest ||
			d.Platform != nil && (slices.Contains(d.Platform.OSFeatures, image.OSFeatureNydus) || slices.Contains(d.Platform.OSFeatures, image.OSFeatureEROFS)) {
			return "an index of converted images (manifest " + d.Digest.String() + ")"
		}
	}
	return ""
}

// targetHolds reports whether the manifest at tag was made by task id.
func targetHolds(tag name.Tag, id string, ropts []remote.Option) (bool, error) {
	desc, err := remote.Get(tag, ropts...)
	if image.IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var m manifestHead
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return false, nil // something else is there: convert over it
	}
	return m.Annotations[AnnotationTask] == id, nil
}
