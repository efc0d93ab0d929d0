package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rafs-dev/rafs/convert/serve"
	"github.com/rafs-dev/rafs/convert/serve/boltqueue"
	"github.com/rafs-dev/rafs/convert/serve/queue"
	"github.com/rafs-dev/rafs/convert/serve/redisqueue"
)

const serveUsage = `Usage: rafs serve [flags] [-- RAFS-CONVERT-FLAGS...]

Converts images as they are pushed: a registry notifies rafs serve of
each push (the distribution registry's notifications, or Harbor's
webhook), rafs serve stores a task per push and rule, and converts the
source into a target per type, pushed beside it (tag TAG-nydus,
TAG-erofs by default). Tasks are kept in a store that outlives the
process: a bbolt file in --state-dir, or Redis (--queue), which several
rafs serve replicas share.

The rules come from --config FILE, or from the rule flags (--repo, --tag,
--type, --suffix, --target-repo, --link, --plain-http) and the rafs
convert flags after --, as one rule.

HTTP endpoints:
  POST /api/v1/notifications            a distribution notification envelope
  POST /api/v1/conversions[?sync=true]  a Harbor webhook payload
  GET  /api/v1/conversions[?status=S]   the tasks, as JSON
  GET  /healthz                         "ok"
  GET  /metrics                         Prometheus metrics (rafs_*)

SIGTERM or SIGINT: stop taking tasks, let the running ones finish within
--shutdown-timeout, put back those still running, and exit 0.

Flags:
`

// serveFlags are rafs serve's flags.
type serveFlags struct {
	listen     string
	config     string
	repos      pathList
	tags       pathList
	types      pathList
	suffix     string
	targetRepo string
	link       string
	plainHTTP  bool
	stateDir   string
	queueURL   string
	name       string
	jobs       int
	tmpDir     string
	tempLimit  string
	auth       string
	tlsCert    string
	tlsKey     string
	lease      time.Duration
	retries    int
	shutdown   time.Duration

	convertFlags []string // after --
	set          map[string]bool
}

// ruleFlags are the flags that make the single rule, which --config
// excludes.
var ruleFlags = []string{"repo", "tag", "type", "suffix", "target-repo", "link", "plain-http"}

func parseServeFlags(args []string) (*serveFlags, error) {
	f := &serveFlags{}
	if i := slices.Index(args, "--"); i >= 0 {
		args, f.convertFlags = args[:i], args[i+1:]
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(os.Stderr, serveUsage)
		fs.PrintDefaults()
	}
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8080", "`address` to listen on (host:port)")
	fs.StringVar(&f.config, "config", "", "JSON configuration `file`: rules, registries (excludes the rule flags)")
	fs.Var(&f.repos, "repo", "convert pushes to repositories matching `GLOB` (repeatable; default all)")
	fs.Var(&f.tags, "tag", "convert pushes of tags matching `GLOB` (repeatable; default all)")
	fs.Var(&f.types, "type", "convert to `TYPE`, nydus or erofs (repeatable; default nydus)")
	fs.StringVar(&f.suffix, "suffix", "-{type}", "target tag: the source tag with this `suffix` ({type} stands for the type)")
	fs.StringVar(&f.targetRepo, "target-repo", "", "push targets to this `repository` of the source's registry ({repo} stands for the source repository)")
	fs.StringVar(&f.link, "link", "none", "link targets to their source: referrer, merge-index or none")
	fs.BoolVar(&f.plainHTTP, "plain-http", false, "reach every registry over plain HTTP")
	fs.StringVar(&f.stateDir, "state-dir", "", "`directory` of the embedded task store (default $XDG_STATE_HOME/rafs-serve or ~/.local/state/rafs-serve)")
	fs.StringVar(&f.queueURL, "queue", "", "keep tasks in Redis, redis://HOST:PORT/DB, shared by replicas (instead of --state-dir)")
	fs.StringVar(&f.name, "name", "", "this replica's `name` as a task owner (default HOSTNAME-PID)")
	fs.IntVar(&f.jobs, "jobs", 1, "convert `N` tasks at a time")
	fs.StringVar(&f.tmpDir, "tmpdir", "", "`directory` for the conversions' temporary files (default: the system's)")
	fs.StringVar(&f.tempLimit, "temp-limit", "", "cap the temporary files at `SIZE` bytes (suffix K, M, G or T: 20G)")
	fs.StringVar(&f.auth, "auth", "", "require this Authorization header `value` on /api/ and /metrics (e.g. \"Bearer TOKEN\")")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "serve HTTPS with this certificate `file` (PEM, with --tls-key)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "the TLS private key `file` (PEM)")
	fs.DurationVar(&f.lease, "lease", 30*time.Second, "a running task is another replica's to take over after this `duration` without renewal")
	fs.IntVar(&f.retries, "retries", 5, "retry a task failing with a registry error `N` times, with exponential backoff")
	fs.DurationVar(&f.shutdown, "shutdown-timeout", 30*time.Second, "on SIGTERM, let running conversions finish within this `duration`")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, usagef("unexpected argument %q (rafs convert flags go after --)", pos[0])
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	return f, nil
}

// serveConfig returns the configuration: --config's file, or the one
// rule of the flags.
func (f *serveFlags) serveConfig() (*serve.Config, error) {
	if f.config != "" {
		for _, n := range ruleFlags {
			if f.set[n] {
				return nil, usagef("--%s makes a rule, and --config gives the rules: set it in the config file", n)
			}
		}
		if len(f.convertFlags) > 0 {
			return nil, usagef("rafs convert flags after -- make a rule, and --config gives the rules: set them in the rule's options")
		}
		return serve.LoadConfig(f.config)
	}
	r := serve.Rule{
		Name:             "flags",
		Repositories:     f.repos,
		Tags:             f.tags,
		Types:            f.types,
		TargetRepository: f.targetRepo,
		Link:             f.link,
	}
	if f.set["suffix"] {
		r.Suffix = &f.suffix
	}
	// A --cache among the rafs convert flags is the rule's cache.
	var opts []string
	for i := 0; i < len(f.convertFlags); i++ {
		a := f.convertFlags[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "cache" {
			if !hasVal {
				if i+1 == len(f.convertFlags) {
					return nil, usagef("flag needs an argument: --cache")
				}
				i++
				val = f.convertFlags[i]
			}
			r.Cache = val
			continue
		}
		opts = append(opts, a)
	}
	r.Options = opts
	c := &serve.Config{Rules: []serve.Rule{r}, AllPlainHTTP: f.plainHTTP}
	if err := c.Validate(); err != nil {
		return nil, usagef("%v", err)
	}
	return c, nil
}

// checkRuleOptions parses each rule's rafs convert flags for each of its
// types and its link, as the tasks will, so that a bad flag is an error
// at start and not a FAILED task per push.
func checkRuleOptions(c *serve.Config) error {
	for i, r := range c.Rules {
		types := r.Types
		if len(types) == 0 {
			types = []string{"nydus"}
		}
		link := []string{}
		switch r.Link {
		case "referrer":
			link = []string{"--referrer"}
		case "merge-index":
			link = []string{"--merge-index"}
		}
		opts := slices.Clone(r.Options)
		if r.Cache != "" {
			opts = append(opts, "--cache", r.Cache)
		}
		for _, typ := range types {
			if _, _, err := conversionOptions(slices.Concat(opts, []string{"--type", typ}, link)); err != nil {
				name := r.Name
				if name == "" {
					name = "rule-" + strconv.Itoa(i+1)
				}
				return usagef("rule %q, type %s: rafs convert flags %q: %v", name, typ, r.Options, err)
			}
		}
	}
	return nil
}

// parseSize parses a byte count with an optional K, M, G or T suffix
// (powers of 1024; a trailing B or iB is allowed).
func parseSize(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(strings.TrimSpace(s)), "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		if i := strings.IndexByte("KMGT", t[n-1]); i >= 0 {
			mult, t = int64(1)<<(10*(i+1)), t[:n-1]
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<62)/mult {
		return 0, fmt.Errorf("%q: want a size in bytes, with an optional K, M, G or T suffix", s)
	}
	return v * mult, nil
}

// openQueue opens the task store: Redis for --queue, else the bbolt
// file in the state directory.
func (f *serveFlags) openQueue(ctx context.Context) (queue.Queue, string, error) {
	if f.queueURL != "" {
		if !strings.HasPrefix(f.queueURL, "redis://") && !strings.HasPrefix(f.queueURL, "rediss://") {
			return nil, "", usagef("--queue %q: want redis://HOST:PORT/DB", f.queueURL)
		}
		q, err := redisqueue.Open(ctx, f.queueURL, nil)
		if err != nil {
			return nil, "", fmt.Errorf("--queue: %w", err)
		}
		return q, redactURL(f.queueURL), nil
	}
	dir := f.stateDir
	if dir == "" {
		base := os.Getenv("XDG_STATE_HOME")
		if base == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return nil, "", fmt.Errorf("no --state-dir and no home directory: %w", err)
			}
			base = filepath.Join(home, ".local", "state")
		}
		dir = filepath.Join(base, "rafs-serve")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, "", err
	}
	path := filepath.Join(dir, "queue.db")
	q, err := boltqueue.Open(path, nil)
	return q, path, err
}

// redactURL hides a password in a store URL for the log.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func cmdServe(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	code, err := runServe(ctx, stop, args, os.Stderr, nil)
	if err == flag.ErrHelp {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rafs serve:", err)
	}
	return code
}

// runServe runs rafs serve until ctx is done (SIGTERM or SIGINT) and
// returns the exit status; it then calls stop, so that a second signal
// kills. ready, when not nil, is called with the address listened on.
func runServe(ctx context.Context, stop func(), args []string, stderr io.Writer, ready func(net.Addr)) (int, error) {
	f, err := parseServeFlags(args)
	if err != nil {
		return 2, err
	}
	cfg, err := f.serveConfig()
	if err == nil {
		err = checkRuleOptions(cfg)
	}
	var tempLimit int64
	if err == nil && f.tempLimit != "" {
		if tempLimit, err = parseSize(f.tempLimit); err != nil {
			err = usagef("--temp-limit %v", err)
		}
	}
	switch {
	case err != nil:
	case f.jobs < 1:
		err = usagef("--jobs %d: want 1 or more", f.jobs)
	case f.retries < 0:
		err = usagef("--retries %d: want 0 or more", f.retries)
	case f.lease < 3*time.Second:
		err = usagef("--lease %v: want 3s or more", f.lease)
	case f.shutdown <= 0:
		err = usagef("--shutdown-timeout %v: want a positive duration", f.shutdown)
	case (f.tlsCert == "") != (f.tlsKey == ""):
		err = usagef("--tls-cert and --tls-key go together")
	case f.queueURL != "" && f.set["state-dir"]:
		err = usagef("--state-dir is the embedded store's, and --queue names Redis: give one")
	}
	if err != nil {
		return exitStatus(err), err
	}
	if f.name == "" {
		f.name = serve.DefaultOwner()
	}

	log := slog.New(slog.NewTextHandler(stderr, nil))
	q, where, err := f.openQueue(ctx)
	if err != nil {
		return exitStatus(err), err
	}
	defer q.Close()
	if rq, ok := q.(*redisqueue.Queue); ok {
		// A notification is answered 2xx once its task is stored; a
		// Redis that may drop acknowledged writes breaks that promise.
		if err := rq.CheckDurability(ctx); err != nil {
			log.Warn("the Redis store may lose tasks in a crash", "err", err)
		}
	}
	metrics := serve.NewMetrics(q)
	srv, err := serve.NewServer(serve.ServerOptions{Queue: q, Tasks: cfg.Tasks, Auth: f.auth, Metrics: metrics, Log: log})
	if err != nil {
		return 1, err
	}
	runner, err := serve.NewRunner(serve.RunnerOptions{
		Queue: q, Owner: f.name, Jobs: f.jobs, Lease: f.lease, Retries: f.retries,
		ShutdownTimeout: f.shutdown, TempDir: f.tmpDir, TempLimit: tempLimit,
		Keychain: cfg.Keychain(), PlainHTTP: cfg.PlainHTTP,
		ConversionOptions: conversionOptions, Metrics: metrics, Log: log,
	})
	if err != nil {
		return 1, err
	}

	listenErr := make(chan error, 1)
	listening := func(a net.Addr) {
		log.Info("rafs serve listening", "addr", a.String(), "store", where, "owner", f.name, "jobs", f.jobs, "rules", len(cfg.Rules))
		if ready != nil {
			ready(a)
		}
	}
	httpCtx, httpCancel := context.WithCancel(context.Background())
	defer httpCancel()
	go func() {
		listenErr <- serve.Listen(httpCtx, f.listen, f.tlsCert, f.tlsKey, srv, f.shutdown, listening)
	}()
	var wg sync.WaitGroup
	var runErr error
	runCtx, runCancel := context.WithCancel(ctx)
	defer runCancel()
	wg.Go(func() { runErr = runner.Run(runCtx) })

	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing the running conversions", "timeout", f.shutdown.String())
	case err = <-listenErr:
		// The listener failed (address in use, bad certificate).
		runCancel()
		wg.Wait()
		return 1, err
	}
	stop() // a second signal kills
	srv.Shutdown()
	runCancel()
	wg.Wait()
	httpCancel()
	if err := <-listenErr; err != nil && !errors.Is(err, context.Canceled) {
		log.Warn("stopping the HTTP server", "err", err)
	}
	if runErr != nil {
		return 1, runErr
	}
	log.Info("stopped")
	return 0, nil
}
