// Package registrar is the S-CSCF's registrar and authenticator (TS 24.229
// §5.4.1, TS 29.228 §6.1.2 and §6.3, TS 33.203): REGISTER in named stages
// (register.go: readRegister, authenticate, assign, bind, answer), the
// authentication stage with IMS AKA and SIP digest (authenticate.go) on
// vectors fetched by MAR and cached with the open challenges (auth.go),
// the use of the Cx client (pkg/cxclient) for MAR and SAR with the one
// mapping of HSS errors to SIP answers (cx.go), the bindings in memory
// (table.go) written through to PostgreSQL (store.go), their expiry
// (expiry.go), HSS-initiated RTR and S-CSCF-initiated de-registration
// (rtr.go) and PPR (ppr.go).
//
// It reports every change of a registration to Config.OnChange as a
// binding.Event, and serves the bindings to the other S-CSCF packages
// through Lookup, Profile, Served and SameSet.
package registrar

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/authguard"
	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/gruu"
	"github.com/imscore/imscore/pkg/intern"
	"github.com/imscore/imscore/pkg/keylock"
	"github.com/imscore/imscore/pkg/pgbatch"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/binding"
)

// Re-authentication policies for REGISTER requests the P-CSCF marks as
// integrity protected (TS 24.229 §5.4.1.2.1: the S-CSCF "may" skip the
// challenge for an already registered UE).
const (
	// ReauthAlways challenges every REGISTER, protected or not.
	ReauthAlways = "always"
	// ReauthRegistered accepts a REGISTER with integrity-protected "yes",
	// "ipsec-3gpp", "tls-yes" or "ip-assoc-yes" without a new challenge when
	// the IMPI already has a binding for the To IMPU and every Contact of
	// the request is already bound (or the request only de-registers).
	ReauthRegistered = "registered"
)

// Config configures a Registrar; the S-CSCF fills it from its own
// configuration (scscf.Config documents the values and defaults).
type Config struct {
	// Domain is the home domain: digest realm and Diameter realm.
	Domain string
	// ServerName is the Server-Name of MAR/SAR (TS 29.229 §6.3.4).
	ServerName string
	// HSSHost is the HSS's Origin-Host (Destination-Host of MAR/SAR);
	// HSSTimeout bounds one MAR/SAR exchange.
	HSSHost    string
	HSSTimeout time.Duration
	// Node is the S-CSCF's Diameter node: MAR/SAR leave through it, and
	// RTA/PPA are built with it (HandleRTR, HandlePPR).
	Node *diameter.Node

	// MinExpires, MaxExpires, DefaultExpires bound registration lifetimes
	// (RFC 3261 §10.2.8, §10.3 step 7).
	MinExpires, MaxExpires, DefaultExpires time.Duration
	// VectorsPerMAR is SIP-Number-Auth-Items of each MAR.
	VectorsPerMAR int
	// NonceLifetime is how long a 401's nonce is accepted;
	// ChallengeTimeout how long an unanswered challenge waits before SAR
	// AUTHENTICATION_TIMEOUT; VectorLifetime how long unused vectors are
	// cached.
	NonceLifetime, ChallengeTimeout, VectorLifetime time.Duration
	// ReauthProtected is ReauthRegistered or ReauthAlways.
	ReauthProtected string
	// AuthFailureBurst wrong responses in a row lock an IMPI out; one is
	// forgiven every AuthFailureEvery (pkg/authguard). 0 disables.
	AuthFailureBurst int
	AuthFailureEvery time.Duration

	// ServiceRoute returns the URI of the Service-Route of a 200
	// (TS 24.229 §5.4.1.2.2).
	ServiceRoute func() string
	// Warning builds the Warning header of an error answer (text in
	// quotes, the S-CSCF as agent).
	Warning func(text string) sip.Header
	// OnChange is called after every change of a registration, once it is
	// stored, on the goroutine that made it.
	OnChange func(binding.Event)
	// OnAnswered is called after OnChange for a REGISTER answered 200 that
	// registered, refreshed or de-registered: the event, the REGISTER as
	// received and the 200 sent.
	OnAnswered func(ev binding.Event, req *sip.Request, res *sip.Response)
	// GRUU seals the temporary GRUUs of the 200 (gruu.go); nil: public
	// GRUUs only.
	GRUU *gruu.Codec

	Logger   *zap.Logger
	Registry prometheus.Registerer
}

// Registrar holds the registrations of the S-CSCF and serves REGISTER,
// RTR and PPR.
type Registrar struct {
	cfg     Config
	log     *zap.Logger
	cx      *cxclient.Client // MAR and SAR to the HSS
	store   *store           // nil: bindings in memory only
	reg     *table
	auth    *authState
	locks   keylock.Mutex // per IMPI
	metrics *metrics
	guard   *authguard.Guard // failed authentication per IMPI

	// ctx bounds the background SARs (sarAsync) and expiry; Close
	// cancels it and waits for them.
	ctx    context.Context
	cancel context.CancelFunc
	bg     sync.WaitGroup
}

type metrics struct {
	registrations   *prometheus.CounterVec
	deregistrations *prometheus.CounterVec
	authFailures    *prometheus.CounterVec
	auth            *prometheus.CounterVec
	challenges      *prometheus.CounterVec
	cxLatency       *prometheus.HistogramVec
	cxErrors        *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer, s *Registrar) (*metrics, error) {
	m := &metrics{
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scscf_registrations_total",
			Help: "Successful REGISTERs that bound contacts, by type (initial, re)."}, []string{"type"}),
		deregistrations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scscf_deregistrations_total",
			Help: "Bindings removed, by cause (user, timeout, administrative)."}, []string{"cause"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scscf_auth_failures_total",
			Help: "REGISTERs refused by authentication, by cause."}, []string{"cause"}),
		auth: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scscf_auth_events_total",
			Help: "Authentication outcomes other than failures (ok, integrity_protected, resync, stale_nonce, unknown_nonce, nonce_reused, timeout)."}, []string{"event"}),
		challenges: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scscf_challenges_total",
			Help: "401 challenges sent, by algorithm."}, []string{"algorithm"}),
		cxLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "scscf_cx_request_duration_seconds",
			Help:    "Time from sending a Cx request to its answer (or failure), by command.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5}}, []string{"command"}),
		cxErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scscf_cx_errors_total",
			Help: "Cx requests without success answer, by command and result (no_answer or the result code)."}, []string{"command", "result"}),
	}
	regs := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scscf_registered_sets",
		Help: "Implicit registration sets currently registered."}, func() float64 {
		s.reg.mu.RLock()
		defer s.reg.mu.RUnlock()
		return float64(len(s.reg.byAOR))
	})
	for _, c := range []prometheus.Collector{m.registrations, m.deregistrations, m.authFailures, m.auth, m.challenges, m.cxLatency, m.cxErrors, regs} {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// New builds a Registrar with its metrics and its Cx client on cfg.Node.
func New(cfg Config) (*Registrar, error) {
	s := &Registrar{cfg: cfg, log: cfg.Logger, reg: newTable(), auth: newAuthState()}
	m, err := newMetrics(cfg.Registry, s)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if s.guard, err = s.newGuard(); err != nil {
		return nil, err
	}
	if s.cx, err = cxclient.New(cxclient.Config{Node: cfg.Node, Realm: cfg.Domain, HSSHost: cfg.HSSHost,
		ServerName: cfg.ServerName, Timeout: cfg.HSSTimeout, Observe: s.observeCx}); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Close cancels the background SARs and waits for them.
func (s *Registrar) Close() {
	s.cancel()
	s.bg.Wait()
}

// Lookup returns the registration that holds impu (any IMPU of the set).
func (s *Registrar) Lookup(impu string) (binding.Registration, bool) {
	s.reg.mu.RLock()
	defer s.reg.mu.RUnlock()
	r := s.reg.byIMPU[binding.CanonURI(impu)]
	if r == nil {
		return binding.Registration{}, false
	}
	return r.snapshot(), true
}

// Profile returns the parsed user profile of the set holding impu.
func (s *Registrar) Profile(impu string) (*userdata.IMSSubscription, bool) {
	s.reg.mu.RLock()
	defer s.reg.mu.RUnlock()
	r := s.reg.byIMPU[binding.CanonURI(impu)]
	if r == nil {
		return nil, false
	}
	return r.profile, true
}

// Served returns what the registrar knows of impu for session routing:
// whether its set has an unexpired binding, whether it is barred, the
// profile and the unexpired bindings; false when no set holds it.
func (s *Registrar) Served(impu string) (binding.Served, bool) {
	key := binding.CanonURI(impu)
	now := time.Now()
	s.reg.mu.RLock()
	defer s.reg.mu.RUnlock()
	r := s.reg.byIMPU[key]
	if r == nil {
		return binding.Served{}, false
	}
	out := binding.Served{IMPU: key, Barred: r.barred[key], Profile: r.profile, Charging: r.charging}
	for _, c := range r.contacts {
		if c.Expires.After(now) {
			cc := *c
			cc.Path = append([]string(nil), c.Path...)
			out.Contacts = append(out.Contacts, cc)
		}
	}
	out.Registered = len(out.Contacts) > 0
	return out, true
}

// SameSet reports whether a and b are IMPUs of the same registered
// implicit registration set.
func (s *Registrar) SameSet(a, b string) bool {
	r := s.reg.lookup(a)
	return r != nil && r == s.reg.lookup(b)
}

// Registrations returns a snapshot of every registration, by AOR.
func (s *Registrar) Registrations() []binding.Registration {
	var out []binding.Registration
	for _, r := range s.reg.all() {
		s.reg.mu.RLock()
		out = append(out, r.snapshot())
		s.reg.mu.RUnlock()
	}
	return out
}

// AuthCounts returns how many vectors are cached and challenges open.
func (s *Registrar) AuthCounts() (vectors, challenges int) { return s.auth.counts() }

// Load attaches the registrar to the S-CSCF's database (table
// scscf_registration; writes through w, which runs on pool) and reloads
// the stored registrations (start-up).
// Bindings that expired while the S-CSCF was down are removed by the
// first Sweep, which sends SAR TIMEOUT_DEREGISTRATION.
func (s *Registrar) Load(ctx context.Context, pool *pgxpool.Pool, w *pgbatch.Batcher) error {
	s.store = &store{pool: pool, batch: w}
	regs, err := s.store.loadAll(ctx)
	if err != nil {
		return fmt.Errorf("scscf: loading registrations: %w", err)
	}
	for _, r := range regs {
		rec := &record{aor: r.AOR, impi: r.IMPI, impus: r.IMPUs, barred: map[string]bool{}, charging: r.Charging}
		for _, b := range r.Barred {
			rec.barred[binding.CanonURI(b)] = true
		}
		if len(r.UserData) > 0 {
			if p, err := userdata.Parse(r.UserData); err == nil {
				rec.profile = p
			} else {
				s.log.Warn("stored User-Data does not parse; next SAR fetches it again", zap.String("aor", r.AOR), zap.Error(err))
			}
		}
		for i := range r.Contacts {
			c := r.Contacts[i]
			intern.Strings(c.Path)
			c.VisitedNetwork, c.UserAgent = intern.String(c.VisitedNetwork), intern.String(c.UserAgent)
			rec.contacts = append(rec.contacts, &c)
		}
		s.reg.put(rec)
	}
	s.log.Info("registrations reloaded", zap.Int("sets", len(regs)))
	return nil
}

func (s *Registrar) persist(ctx context.Context, r binding.Registration) error {
	if s.store == nil {
		return nil
	}
	return s.store.save(ctx, r)
}

func (s *Registrar) unpersist(ctx context.Context, aor string) error {
	if s.store == nil {
		return nil
	}
	return s.store.delete(ctx, aor)
}

// setContacts replaces the bindings of rec (removing the record when none
// is left), stores the change and returns the new snapshot.
func (s *Registrar) setContacts(ctx context.Context, rec *record, keep []*binding.Contact) binding.Registration {
	s.reg.mu.Lock()
	rec.contacts = keep
	snap := rec.snapshot()
	s.reg.mu.Unlock()
	if len(keep) == 0 {
		s.reg.remove(rec)
		if err := s.unpersist(ctx, rec.aor); err != nil {
			s.log.Error("deleting binding", zap.String("impu", rec.aor), zap.Error(err))
		}
	} else if err := s.persist(ctx, snap); err != nil {
		s.log.Error("storing binding", zap.String("impu", rec.aor), zap.Error(err))
	}
	return snap
}

func (s *Registrar) emit(ev binding.Event) {
	if s.cfg.OnChange != nil {
		s.cfg.OnChange(ev)
	}
}

func (s *Registrar) afterRegister(ev binding.Event, req *sip.Request, res *sip.Response) {
	if s.cfg.OnAnswered != nil {
		s.cfg.OnAnswered(ev, req, res)
	}
}

func (s *Registrar) warning(text string) sip.Header { return s.cfg.Warning(text) }
