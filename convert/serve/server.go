package serve

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/rafs-dev/rafs/convert/serve/queue"
)

// DefaultMaxBody is the largest request body the server reads when
// ServerOptions.MaxBody is zero.
const DefaultMaxBody = 1 << 20

// ServerOptions configure a Server.
type ServerOptions struct {
	// Queue stores the tasks. It must be set.
	Queue queue.Queue
	// Tasks makes the tasks of a push, or says why it is ignored
	// (Config.Tasks). It must be set.
	Tasks func(Push) (tasks []queue.Task, ignored string)
	// Auth, when not empty, is the Authorization header value that
	// requests to /api/ and /metrics must carry (compared in constant
	// time); others are answered 401.
	Auth string
	// MaxBody caps a request body (DefaultMaxBody when zero); a larger
	// one is answered 413.
	MaxBody int64
	// MaxInFlight caps the POST requests read and stored at a time (16
	// when zero), and so the memory their bodies take; more wait for a
	// turn, as long as their client does.
	MaxInFlight int
	// PollInterval is how often a ?sync=true request looks at its tasks
	// (250 ms when zero).
	PollInterval time.Duration
	// Metrics, when set, count requests and serve /metrics.
	Metrics *Metrics
	// Log receives a line per request that changes something or fails
	// (slog.Default() when nil).
	Log *slog.Logger
}

// Server is rafs serve's HTTP front end, an http.Handler:
//
//	POST /api/v1/notifications          a distribution registry's notification envelope
//	POST /api/v1/conversions[?sync=true] a Harbor webhook payload (sync: wait for the tasks)
//	GET  /api/v1/conversions[?status=S]  the tasks, as a JSON array of queue.Task
//	GET  /healthz                        "ok"
//	GET  /metrics                        Prometheus metrics
//
// A POST is answered 202 only once its tasks are stored, with
// {"tasks":[...],"ignored":[{"push":...,"reason":...}]}; a body that does
// not parse gets 400 with the reason, and every POST gets 503 once
// Shutdown was called.
type Server struct {
	o        ServerOptions
	authSum  [sha256.Size]byte
	inflight chan struct{}
	closing  atomic.Bool
	mux      *http.ServeMux
}

// NewServer returns a Server.
func NewServer(o ServerOptions) (*Server, error) {
	if o.Queue == nil || o.Tasks == nil {
		return nil, errors.New("serve: ServerOptions.Queue and Tasks must be set")
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 16
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	s := &Server{o: o, authSum: sha256.Sum256([]byte(o.Auth)), inflight: make(chan struct{}, o.MaxInFlight), mux: http.NewServeMux()}
	s.mux.HandleFunc("/api/v1/notifications", s.api(s.notifications))
	s.mux.HandleFunc("/api/v1/conversions", s.api(s.conversions))
	s.mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			methodNotAllowed(w, http.MethodGet, http.MethodHead)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	if o.Metrics != nil {
		h := o.Metrics.Handler()
		s.mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
			if !s.authorized(r) {
				unauthorized(w)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	return s, nil
}

// ServeHTTP serves a request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Shutdown makes every later POST 503 (Service Unavailable), so that a
// registry sends its notifications to another replica or again later.
func (s *Server) Shutdown() { s.closing.Store(true) }

// authorized compares the Authorization header with Auth in constant
// time (of their SHA-256 sums, so that not even the length shows).
func (s *Server) authorized(r *http.Request) bool {
	if s.o.Auth == "" {
		return true
	}
	got := sha256.Sum256([]byte(r.Header.Get("Authorization")))
	return subtle.ConstantTimeCompare(got[:], s.authSum[:]) == 1
}

func unauthorized(w http.ResponseWriter) {
	httpError(w, http.StatusUnauthorized, errors.New("wrong or missing Authorization header"))
}

func methodNotAllowed(w http.ResponseWriter, allow ...string) {
	for _, m := range allow {
		w.Header().Add("Allow", m)
	}
	httpError(w, http.StatusMethodNotAllowed, errors.New("method not allowed"))
}

// errorBody is the JSON of an error answer.
type errorBody struct {
	Error string `json:"error"`
}

func httpError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, errorBody{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// api wraps an API handler with the authorization check.
func (s *Server) api(h func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.authorized(r) {
			unauthorized(w)
			return
		}
		h(w, r)
	}
}

// turn waits for one of MaxInFlight turns to read and store a POST, as
// long as the client waits; release gives it back.
func (s *Server) turn(ctx context.Context) (release func(), ok bool) {
	select {
	case s.inflight <- struct{}{}:
		return func() { <-s.inflight }, true
	case <-ctx.Done():
		return nil, false
	}
}

// Accepted is the answer to a POST: the tasks stored (new ones PENDING,
// known ones as they are) and the pushes ignored, with the reason.
type Accepted struct {
	Tasks   []queue.Task `json:"tasks"`
	Ignored []Ignored    `json:"ignored"`
}

// Ignored is a push that made no task.
type Ignored struct {
	Push   Push   `json:"push"`
	Reason string `json:"reason"`
}

// readBody reads a POST body of at most MaxBody bytes; it answers the
// request itself and returns false when it cannot.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, endpoint string) ([]byte, bool) {
	if s.closing.Load() {
		s.fail(w, endpoint, http.StatusServiceUnavailable, errors.New("shutting down"))
		return nil, false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.o.MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		s.fail(w, endpoint, http.StatusRequestEntityTooLarge, fmt.Errorf("request body over %d bytes", tooBig.Limit))
		return nil, false
	case err != nil:
		s.fail(w, endpoint, http.StatusBadRequest, fmt.Errorf("reading the body: %w", err))
		return nil, false
	}
	return body, true
}

func (s *Server) fail(w http.ResponseWriter, endpoint string, code int, err error) {
	s.o.Metrics.notification(endpoint, code)
	if code >= 500 && code != http.StatusServiceUnavailable {
		s.o.Log.Error("request failed", "endpoint", endpoint, "code", code, "err", err)
	}
	httpError(w, code, err)
}

// enqueue stores the tasks of pushes.
func (s *Server) enqueue(ctx context.Context, pushes []Push) (Accepted, error) {
	a := Accepted{Tasks: []queue.Task{}, Ignored: []Ignored{}}
	for _, p := range pushes {
		tasks, reason := s.o.Tasks(p)
		if len(tasks) == 0 {
			if reason == "" {
				reason = "no rule matches"
			}
			a.Ignored = append(a.Ignored, Ignored{Push: p, Reason: reason})
			s.o.Metrics.push("ignored")
			continue
		}
		for _, t := range tasks {
			stored, added, err := s.o.Queue.Enqueue(ctx, t)
			if err != nil {
				return a, fmt.Errorf("storing task %s of %s: %w", t.ID, p.Ref(), err)
			}
			if added {
				s.o.Metrics.push("queued")
				s.o.Log.Info("task queued", "task", stored.ID, "source", stored.Source, "targets", stored.Targets)
			} else {
				s.o.Metrics.push("duplicate")
			}
			a.Tasks = append(a.Tasks, stored)
		}
	}
	return a, nil
}

// storeError answers a failed Enqueue: 503 when the store is closed
// (shutting down), else 500.
func (s *Server) storeError(w http.ResponseWriter, endpoint string, err error) {
	code := http.StatusInternalServerError
	if errors.Is(err, queue.ErrClosed) {
		code = http.StatusServiceUnavailable
	}
	s.fail(w, endpoint, code, err)
}

func (s *Server) notifications(w http.ResponseWriter, r *http.Request) {
	const endpoint = "notifications"
	if r.Method != http.MethodPost {
		methodNotAllowed(w, http.MethodPost)
		return
	}
	a, ok := s.store(w, r, endpoint, ParseNotifications)
	if !ok {
		return
	}
	s.o.Metrics.notification(endpoint, http.StatusAccepted)
	writeJSON(w, http.StatusAccepted, a)
}

func (s *Server) conversions(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.list(w, r)
		return
	case http.MethodPost:
	default:
		methodNotAllowed(w, http.MethodGet, http.MethodHead, http.MethodPost)
		return
	}
	const endpoint = "conversions"
	var wait bool
	switch v := r.URL.Query().Get("sync"); v {
	case "", "false", "0":
	case "true", "1":
		wait = true
	default:
		s.fail(w, endpoint, http.StatusBadRequest, fmt.Errorf("sync=%q: want true or false", v))
		return
	}
	a, ok := s.store(w, r, endpoint, ParseHarborWebhook)
	if !ok {
		return
	}
	if !wait {
		s.o.Metrics.notification(endpoint, http.StatusAccepted)
		writeJSON(w, http.StatusAccepted, a)
		return
	}
	// Wait for every task to finish, for as long as the client waits:
	// nothing outlives the request, and the wait holds no turn.
	code, err := s.wait(r.Context(), a.Tasks)
	if err != nil {
		if r.Context().Err() == nil {
			s.storeError(w, endpoint, err)
		}
		return
	}
	s.o.Metrics.notification(endpoint, code)
	writeJSON(w, code, a)
}

// store reads a POST's body in a turn, parses it with parse and stores
// the tasks its pushes make. It answers the request itself, and returns
// false, when it cannot.
func (s *Server) store(w http.ResponseWriter, r *http.Request, endpoint string, parse func([]byte) ([]Push, error)) (Accepted, bool) {
	release, ok := s.turn(r.Context())
	if !ok {
		return Accepted{}, false
	}
	defer release()
	body, ok := s.readBody(w, r, endpoint)
	if !ok {
		return Accepted{}, false
	}
	pushes, err := parse(body)
	if err != nil {
		s.fail(w, endpoint, http.StatusBadRequest, err)
		return Accepted{}, false
	}
	a, err := s.enqueue(r.Context(), pushes)
	if err != nil {
		s.storeError(w, endpoint, err)
		return Accepted{}, false
	}
	return a, true
}

// wait polls tasks until each is COMPLETED or FAILED, updating them in
// place, and returns 200, or 500 when one FAILED.
func (s *Server) wait(ctx context.Context, tasks []queue.Task) (int, error) {
	t := time.NewTicker(s.o.PollInterval)
	defer t.Stop()
	for {
		done, failed := true, false
		for i := range tasks {
			if tasks[i].Status != queue.Completed && tasks[i].Status != queue.Failed {
				got, err := s.o.Queue.Get(ctx, tasks[i].ID)
				if err != nil {
					return 0, err
				}
				tasks[i] = got
			}
			switch tasks[i].Status {
			case queue.Completed:
			case queue.Failed:
				failed = true
			default:
				done = false
			}
		}
		if done {
			if failed {
				return http.StatusInternalServerError, nil
			}
			return http.StatusOK, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-t.C:
		}
	}
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	st := queue.Status(r.URL.Query().Get("status"))
	if st != "" && !st.Valid() {
		httpError(w, http.StatusBadRequest, fmt.Errorf("status=%q: want PENDING, RUNNING, COMPLETED or FAILED", st))
		return
	}
	tasks, err := s.o.Queue.List(r.Context(), st)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, queue.ErrClosed) {
			code = http.StatusServiceUnavailable
		}
		httpError(w, code, err)
		return
	}
	if tasks == nil {
		tasks = []queue.Task{}
	}
	writeJSON(w, http.StatusOK, tasks)
}

// Listen serves h on addr until ctx is done, over TLS when certFile and
// keyFile are set, then stops accepting and waits up to timeout for the
// requests in progress. It calls ready (when not nil) with the address
// listened on once it accepts connections.
func Listen(ctx context.Context, addr, certFile, keyFile string, h http.Handler, timeout time.Duration, ready func(net.Addr)) error {
	if (certFile == "") != (keyFile == "") {
		return errors.New("serve: TLS needs both a certificate and a key")
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return fmt.Errorf("TLS certificate and key: %w", err)
		}
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	if ready != nil {
		ready(ln.Addr())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	<-errc
	return err
}
