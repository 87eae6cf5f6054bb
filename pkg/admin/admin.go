// Package admin serves the admin HTTP port every function exposes:
// /metrics (Prometheus), /healthz (the process is alive), /readyz (ready only
// when every registered readiness check passes, e.g. the Diameter peers are
// up) and JSON status pages such as the P-CSCF contact store.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/pgxpoolprometheus"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// ReadyCheck reports nil when the component it checks is ready.
type ReadyCheck func(ctx context.Context) error

// Server is the admin HTTP server of one binary.
type Server struct {
	// Registry holds the binary's Prometheus collectors; register metrics here
	// rather than on the global default registry, so that tests can run
	// several functions in one process.
	Registry *prometheus.Registry

	log    *zap.Logger
	mux    *http.ServeMux
	mu     sync.RWMutex
	checks map[string]ReadyCheck
	srv    *http.Server
	ln     net.Listener

	// started is set by MarkStarted once the function is serving; until
	// then /readyz is 503, whatever checks are (not yet) registered.
	started atomic.Bool
}

// New returns a server with /metrics, /healthz and /readyz routes and the Go
// runtime and process collectors registered.
func New(log *zap.Logger) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{
		Registry: prometheus.NewRegistry(),
		log:      log,
		mux:      http.NewServeMux(),
		checks:   map[string]ReadyCheck{},
	}
	s.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.Registry, promhttp.HandlerOpts{Registry: s.Registry}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /readyz", s.serveReady)
	return s
}

// AddReadyCheck registers a named readiness check; /readyz answers 503 while
// any check fails and names the failing ones.
func (s *Server) AddReadyCheck(name string, check ReadyCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = check
}

// MarkStarted tells /readyz that the function has finished starting (its
// listeners are up and its status pages registered). Before that /readyz
// answers 503 with the check "start-up": "starting", so that a readiness
// probe or a test never sees a half-started process as ready.
func (s *Server) MarkStarted() { s.started.Store(true) }

// HandleJSON serves GET path with the JSON encoding of what status returns
// (e.g. "/status/contacts").
func (s *Server) HandleJSON(path string, status func(ctx context.Context) (any, error)) {
	s.mux.HandleFunc("GET "+path, func(w http.ResponseWriter, r *http.Request) {
		v, err := status(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(v)
	})
}

// EnablePprof serves the Go runtime profiles (net/http/pprof) under
// /debug/pprof/ for `go tool pprof http://ADMIN/debug/pprof/profile`.
// Off unless asked for: a profile costs CPU and shows internals.
func (s *Server) EnablePprof() {
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// Handle adds any other handler (e.g. a POST that resets counters).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	s.mu.RLock()
	names := make([]string, 0, len(s.checks))
	for n := range s.checks {
		names = append(names, n)
	}
	checks := make(map[string]ReadyCheck, len(s.checks))
	for n, c := range s.checks {
		checks[n] = c
	}
	s.mu.RUnlock()
	sort.Strings(names)

	result := map[string]string{}
	ready := s.started.Load()
	if !ready {
		result["start-up"] = "starting"
	}
	for _, n := range names {
		if err := checks[n](ctx); err != nil {
			ready = false
			result[n] = err.Error()
		} else {
			result[n] = "ok"
		}
	}
	w.Header().Set("Content-Type", "application/json")
	if !ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ready": ready, "checks": result})
}

// Start listens on addr ("127.0.0.1:9060"; port 0 picks a free port) and
// serves in the background until Shutdown.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin HTTP listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("admin HTTP server stopped", zap.Error(err))
		}
	}()
	s.log.Info("admin HTTP listening", zap.String("addr", ln.Addr().String()))
	return nil
}

// Addr is the bound address after Start.
func (s *Server) Addr() string {
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops the server, waiting for in-flight requests until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.srv == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

// RegisterPool adds the PostgreSQL connection pool's statistics to reg as
// the pgxpool_* metrics of github.com/IBM/pgxpoolprometheus (connections
// total, idle, acquired and being made, the pool's maximum, acquire count
// and cumulative wait in nanoseconds, acquires that had to wait for a
// connection, cancelled acquires), labelled pool=name. It errors when reg
// already holds a pool of that name.
func RegisterPool(reg prometheus.Registerer, name string, pool *pgxpool.Pool) error {
	return reg.Register(pgxpoolprometheus.NewCollector(pool, map[string]string{"pool": name}))
}
