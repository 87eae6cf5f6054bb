// Package api is the HSS's provisioning REST API and web console, served
// on their own listener by the hss binary (--api-listen): JSON resources
// for subscribers, service profiles, iFCs, shared iFC sets, application
// servers and S-CSCFs, the registration state, the operations deregister
// (RTR) and push-profile (PPR), bulk CSV import and export, an OpenAPI 3
// document generated from the route table at /openapi.json, and a
// server-rendered console under /console/. Every read and write goes
// through hss/provision, the code imsctl uses. Errors are RFC 9457
// problem+json; access takes a bearer token of role read or admin.
package api

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/hss/provision"
)

// Operations are the HSS-initiated Cx procedures the API runs (the hss
// package implements them on its Diameter node).
type Operations interface {
	// Deregister sends RTR for impu's implicit registration set
	// (TS 29.228 §6.1.3) with reason (an operator text, see
	// cx.ReasonCode) and reports the outcome.
	Deregister(ctx context.Context, impu, reason string) Outcome
	// PushProfile sends PPR with the current user data of impu's
	// implicit registration set (TS 29.228 §6.2.2).
	PushProfile(ctx context.Context, impu string) Outcome
}

// Outcome is the result of one RTR or PPR.
type Outcome struct {
	IMPU string `json:"impu" required:"true" doc:"IMPU of the implicit registration set"`
	// Result: answered (the S-CSCF answered with success), not_registered
	// (no S-CSCF assigned: nothing to send), queued (the S-CSCF is not
	// connected or asked to retry: hss_command keeps it and the HSS
	// sends it later), refused (the S-CSCF answered with a permanent
	// failure).
	Result string `json:"result" required:"true" doc:"answered, not_registered, queued or refused"`
	Detail string `json:"detail,omitempty" doc:"the S-CSCF's Diameter result or why the request is queued"`
	// Err, when set, is a back-end failure (answered 500).
	Err error `json:"-"`
}

// Config configures a Server.
type Config struct {
	DB     provision.DB // a pool: every request takes its connections from it
	Ops    Operations   // nil: the operations answer 503
	Tokens *Tokens
	Log    *zap.Logger
	// Registry receives hss_api_requests_total and
	// hss_api_request_seconds (per route); nil: not registered.
	Registry prometheus.Registerer
	// Secure marks the console's cookie Secure (the listener has TLS).
	Secure bool
}

// Server serves the API and the console.
type Server struct {
	cfg      Config
	log      *zap.Logger
	key      []byte // HMAC key of ETags and console form tokens
	routes   []*route
	mux      *http.ServeMux
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	console  *console
}

// New builds the server.
func New(cfg Config) (*Server, error) {
	if cfg.DB == nil {
		return nil, errors.New("api: no database")
	}
	if cfg.Tokens == nil || cfg.Tokens.Len() == 0 {
		return nil, errors.New("api: no bearer token configured (a token file or the admin/read tokens)")
	}
	if cfg.Log == nil {
		cfg.Log = zap.NewNop()
	}
	s := &Server{cfg: cfg, log: cfg.Log, key: make([]byte, 32), mux: http.NewServeMux()}
	if _, err := rand.Read(s.key); err != nil {
		return nil, err
	}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hss_api_requests_total", Help: "Provisioning API and console requests, by route, method and status code.",
	}, []string{"route", "method", "code"})
	s.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "hss_api_request_seconds", Help: "Time to answer a provisioning API or console request, by route.",
		Buckets: []float64{.001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 10, 60},
	}, []string{"route"})
	if cfg.Registry != nil {
		for _, c := range []prometheus.Collector{s.requests, s.latency} {
			if err := cfg.Registry.Register(c); err != nil {
				return nil, err
			}
		}
	}
	s.routes = s.apiRoutes()
	for _, rt := range s.routes {
		s.mux.Handle(rt.method+" "+rt.path, s.instrument(rt.method+" "+rt.path, s.apiHandler(rt)))
	}
	doc, err := json.MarshalIndent(s.OpenAPI(), "", "  ")
	if err != nil {
		return nil, err
	}
	s.mux.Handle("GET /openapi.json", s.instrument("GET /openapi.json", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})))
	s.console = newConsole(s)
	s.console.register(s.mux)
	s.mux.Handle("/", s.instrument("other", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			http.Redirect(w, r, "/console/", http.StatusSeeOther)
			return
		}
		writeProblem(w, r, toProblem(problem(404, "", "no resource at %s", r.URL.Path)))
	})))
	return s, nil
}

// Handler is the HTTP handler of the API and the console.
func (s *Server) Handler() http.Handler { return s.mux }

// Serve serves on ln until ctx ends; with certFile and keyFile, over TLS.
func (s *Server) Serve(ctx context.Context, ln net.Listener, certFile, keyFile string) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: zap.NewStdLog(s.log)}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	var err error
	if certFile != "" {
		err = srv.ServeTLS(ln, certFile, keyFile)
	} else {
		err = srv.Serve(ln)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// statusWriter records the status code for metrics.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = 200
	}
	return w.ResponseWriter.Write(b)
}

func (s *Server) instrument(route string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		if sw.code == 0 {
			sw.code = 200
		}
		s.requests.WithLabelValues(route, r.Method, strconv.Itoa(sw.code)).Inc()
		s.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// authorize returns the role of the request's bearer token, or the
// problem to answer (401 without or with an unknown token, 403 when the
// role is below need).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, need Role) (Role, error) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if h == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hss"`)
		return RoleNone, problem(401, "", "a bearer token is required (Authorization: Bearer TOKEN)")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hss", error="invalid_request"`)
		return RoleNone, problem(401, "", "the Authorization header must be Bearer TOKEN")
	}
	role, name := s.cfg.Tokens.Lookup(strings.TrimSpace(tok))
	if role == RoleNone {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hss", error="invalid_token"`)
		return RoleNone, problem(401, "", "the bearer token is not valid")
	}
	if role < need {
		w.Header().Set("WWW-Authenticate", `Bearer realm="hss", error="insufficient_scope"`)
		return role, problem(403, ProblemRole, "token %s has role %s; this request needs %s", name, role, need)
	}
	return role, nil
}

// handlerFunc is an API handler: it returns the status and body (JSON)
// or an error answered as a Problem.
type handlerFunc func(w http.ResponseWriter, r *http.Request) (int, any, error)

func (s *Server) apiHandler(rt *route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := s.authorize(w, r, rt.role); err != nil {
			writeProblem(w, r, toProblem(err))
			return
		}
		status, body, err := rt.h(w, r)
		if err != nil {
			p := toProblem(err)
			if p.Status >= 500 {
				s.log.Warn("api request failed", zap.String("route", rt.path), zap.String("method", r.Method), zap.Error(err))
			}
			writeProblem(w, r, p)
			return
		}
		if body == nil {
			w.WriteHeader(status)
			return
		}
		if _, ok := body.(streamed); ok {
			if !wroteBody(w) { // nothing to export: an empty 200
				w.WriteHeader(status)
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(body)
	})
}

// streamed is the body of a handler that wrote its response itself.
type streamed struct{}

// maxJSONBody bounds a JSON request body.
const maxJSONBody = 1 << 20

func decodeJSON(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return problem(415, "", "send application/json, not %s", ct)
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxJSONBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if err == io.EOF {
			return problem(400, ProblemInvalid, "the request needs a JSON body")
		}
		return decodeError(err)
	}
	if dec.More() {
		return problem(400, ProblemInvalid, "the body holds more than one JSON value")
	}
	return nil
}

// etag returns the strong entity tag of v: a MAC of its JSON and of the
// secrets stored with it (so that a change of K or a password changes it
// too, without revealing anything about them).
func (s *Server) etag(v any, secrets []byte) string {
	b, _ := json.Marshal(v)
	m := hmac.New(sha256.New, s.key)
	m.Write(b)
	m.Write([]byte{0})
	m.Write(secrets)
	return `"` + base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18]) + `"`
}

// ifMatch returns the check of an If-Match header (nil when absent): the
// stored object's entity tag must be one of those listed, or the header
// "*". A mismatch is 412.
func ifMatch[T any](s *Server, r *http.Request, secrets func(T) []byte) provision.Check[T] {
	h := r.Header.Get("If-Match")
	if h == "" {
		return nil
	}
	return func(cur T) error {
		if strings.TrimSpace(h) == "*" {
			return nil
		}
		var sec []byte
		if secrets != nil {
			sec = secrets(cur)
		}
		now := s.etag(cur, sec)
		for _, t := range strings.Split(h, ",") {
			if strings.TrimSpace(t) == now {
				return nil
			}
		}
		return problem(412, ProblemETag, "the stored object changed since it was read (If-Match %s, now %s): read it again", h, now)
	}
}

// listOptions reads limit, after and q.
func listOptions(r *http.Request) (provision.ListOptions, error) {
	q := r.URL.Query()
	o := provision.ListOptions{After: q.Get("after"), Query: q.Get("q")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > provision.MaxLimit {
			return o, &problemError{Problem{Type: ProblemInvalid, Title: http.StatusText(400), Status: 400,
				Detail: fmt.Sprintf("limit %q: want 1..%d", v, provision.MaxLimit),
				Errors: []FieldError{{Pointer: "/limit", Detail: "want 1.." + strconv.Itoa(provision.MaxLimit)}}}}
		}
		o.Limit = n
	}
	return o, nil
}

// List is one page of a list.
type List[T any] struct {
	Items []T `json:"items" required:"true" doc:"this page"`
	// Next is the after value of the next page; absent on the last one.
	Next string `json:"next,omitempty" doc:"value of the after parameter for the next page (absent on the last page)"`
}

func page[T any](w http.ResponseWriter, r *http.Request, items []T, more bool, key func(T) string) (int, any, error) {
	l := List[T]{Items: items}
	if more && len(items) > 0 {
		l.Next = key(items[len(items)-1])
		u := *r.URL
		q := u.Query()
		q.Set("after", l.Next)
		u.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s>; rel="next"`, (&url.URL{Path: u.Path, RawQuery: u.RawQuery}).String()))
	}
	return 200, l, nil
}
