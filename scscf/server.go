package scscf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/keylock"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/binding"
)

// Server is the S-CSCF registrar: SIP on sipproxy, Cx client to the HSS
// (MAR/SAR out, RTR/PPR in on the same connection), bindings in memory and
// written through to PostgreSQL.
type Server struct {
	cfg      Config
	log      *zap.Logger
	node     *diameter.Node
	cx       *cxclient.Client // MAR and SAR to the HSS
	hss      *diameter.Peer
	proxy    *sipproxy.Proxy
	store    *store
	reg      *registrar
	auth     *authState
	locks    keylock.Mutex // per IMPI
	metrics  *metrics
	hostport string
	sess     *session

	// regEvent, when set with SetRegEventHandler, is asked first about
	// every request other than REGISTER (RFC 3680 SUBSCRIBEs).
	regEvent RegEventHandler
	// listeners and answered: see AddRegistrationListener,
	// AddRegisterAnsweredHook.
	listeners []func(binding.Event)
	answered  []func(binding.Event, *sip.Request, *sip.Response)

	ctx     context.Context
	cancel  context.CancelFunc
	bg      sync.WaitGroup
	closed  sync.Once
	started atomic.Bool
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

func newMetrics(r prometheus.Registerer, s *Server) (*metrics, error) {
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

// New validates cfg (after WithDefaults) and builds a Server; Start opens
// the sockets, the database and the HSS connection.
func New(cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, reg: newRegistrar(), auth: newAuthState()}
	m, err := newMetrics(cfg.Registry, s)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if s.sess, err = newSession(cfg, cfg.Logger, cfg.Registry); err != nil {
		return nil, err
	}
	node, err := diameter.New(diameter.Config{
		OriginHost: cfg.OriginHost, OriginRealm: cfg.Domain, Apps: []diameter.App{diameter.AppCx},
		AllowedPeers: []string{cfg.HSSHost}, Logger: cfg.Logger.Named("diameter"),
		ReconnectMin: 200 * time.Millisecond, ReconnectMax: 5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	s.node = node
	if s.cx, err = cxclient.New(cxclient.Config{Node: node, Realm: cfg.Domain, HSSHost: cfg.HSSHost,
		ServerName: cfg.ServerName, Timeout: cfg.HSSTimeout, Observe: s.observeCx}); err != nil {
		return nil, err
	}
	node.Handle(diameter.CmdRegistrationTermination, diameter.AppCx, s.handleRTR)
	node.Handle(diameter.CmdPushProfile, diameter.AppCx, s.handlePPR)
	return s, nil
}

// Start opens the database (migrating it and reloading the bindings),
// connects to the HSS (in the background, reconnecting), starts SIP and
// the expiry timer. ctx bounds the start-up only; Close stops the server.
func (s *Server) Start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.cfg.DatabaseURL != "" {
		st, err := openStore(ctx, s.cfg.DatabaseURL)
		if err != nil {
			return err
		}
		s.store = st
		if err := s.reload(ctx); err != nil {
			st.close()
			return err
		}
	}
	peer, err := s.node.Connect(s.ctx, diameter.PeerConfig{Addr: s.cfg.HSSAddr, Host: s.cfg.HSSHost, Realm: s.cfg.Domain})
	if err != nil {
		return err
	}
	s.hss = peer
	p, err := sipproxy.New(sipproxy.Config{ListenAddr: s.cfg.SIPListen, Host: s.cfg.SIPHost, Handler: s.handle,
		Logger: s.log.Named("sip"), Aliases: []string{"scscf." + s.cfg.Domain}})
	if err != nil {
		return err
	}
	if err := p.Start(s.ctx); err != nil {
		return err
	}
	s.proxy = p
	port := p.Addr("udp").Port
	s.hostport = net.JoinHostPort(s.cfg.SIPHost, strconv.Itoa(port))
	s.bg.Add(1)
	go s.sweeper()
	s.started.Store(true)
	s.log.Info("S-CSCF started", zap.String("sip", s.hostport), zap.String("server-name", s.cfg.ServerName),
		zap.String("hss", s.cfg.HSSAddr), zap.Bool("database", s.store != nil))
	return nil
}

// Close stops SIP, the timers and the HSS connection (DPR) and closes the
// database. The bindings stay in the database.
func (s *Server) Close() error {
	s.closed.Do(func() {
		if s.proxy != nil {
			_ = s.proxy.Close()
		}
		if s.cancel != nil {
			s.cancel()
		}
		s.bg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.node.Close(ctx)
		cancel()
		if s.store != nil {
			s.store.close()
		}
	})
	return nil
}

// SIPAddr is the bound SIP address (UDP and TCP share the port).
func (s *Server) SIPAddr() *net.TCPAddr { return s.proxy.Addr("udp") }

// Config returns the effective configuration.
func (s *Server) Config() Config { return s.cfg }

// Ready reports nil when the HSS connection is open.
func (s *Server) Ready(context.Context) error {
	if !s.started.Load() {
		return errors.New("starting")
	}
	if !s.node.Ready() {
		return errors.New("HSS peer not open")
	}
	return nil
}

// Lookup returns the registration that holds impu (any IMPU of the set).
func (s *Server) Lookup(impu string) (binding.Registration, bool) {
	s.reg.mu.RLock()
	defer s.reg.mu.RUnlock()
	r := s.reg.byIMPU[binding.CanonURI(impu)]
	if r == nil {
		return binding.Registration{}, false
	}
	return r.snapshot(), true
}

// Profile returns the parsed user profile of the set holding impu.
func (s *Server) Profile(impu string) (*userdata.IMSSubscription, bool) {
	s.reg.mu.RLock()
	defer s.reg.mu.RUnlock()
	r := s.reg.byIMPU[binding.CanonURI(impu)]
	if r == nil {
		return nil, false
	}
	return r.profile, true
}

// Status is the JSON of /status/registrar.
type Status struct {
	Registrations   []StatusRegistration  `json:"registrations"`
	CachedVectors   int                   `json:"cached_vectors"`
	OpenChallenges  int                   `json:"open_challenges"`
	HSS             []diameter.PeerStatus `json:"hss"`
	DatabaseEnabled bool                  `json:"database"`
}

// StatusRegistration is one registered set on /status/registrar.
type StatusRegistration struct {
	binding.Registration
	Contacts []StatusContact `json:"contacts"`
}

// StatusContact is a binding with its remaining lifetime in seconds.
type StatusContact struct {
	binding.Contact
	ExpiresIn int `json:"expires_in"`
}

// Status returns the registrar status.
func (s *Server) Status(context.Context) (any, error) {
	now := time.Now()
	st := Status{Registrations: []StatusRegistration{}, DatabaseEnabled: s.store != nil, HSS: s.node.Status()}
	for _, r := range s.reg.all() {
		s.reg.mu.RLock()
		snap := r.snapshot()
		s.reg.mu.RUnlock()
		sr := StatusRegistration{Registration: snap}
		for _, c := range snap.Contacts {
			sr.Contacts = append(sr.Contacts, StatusContact{Contact: c, ExpiresIn: int(c.Expires.Sub(now) / time.Second)})
		}
		st.Registrations = append(st.Registrations, sr)
	}
	st.CachedVectors, st.OpenChallenges = s.auth.counts()
	return st, nil
}

func (s *Server) emit(ev binding.Event) {
	if s.cfg.OnRegistrationChange != nil {
		s.cfg.OnRegistrationChange(ev)
	}
	for _, f := range s.listeners {
		f(ev)
	}
}

// AddRegistrationListener adds f to the functions called after every
// registration change, after Config.OnRegistrationChange and in the order
// added (e.g. the reg-event notifier's and the third-party registrar's
// OnRegistrationChange). Call it before Start; it is not synchronised.
func (s *Server) AddRegistrationListener(f func(binding.Event)) {
	s.listeners = append(s.listeners, f)
}

// AddRegisterAnsweredHook adds f to the functions called after the
// registrar answered a REGISTER with 200 and emitted ev (registered,
// refreshed or deregistered): req is the REGISTER as received, res the 200
// sent (e.g. ThirdPartyRegistrar.AfterRegister). Call it before Start.
func (s *Server) AddRegisterAnsweredHook(f func(ev binding.Event, req *sip.Request, res *sip.Response)) {
	s.answered = append(s.answered, f)
}

func (s *Server) afterRegister(ev binding.Event, req *sip.Request, res *sip.Response) {
	for _, f := range s.answered {
		f(ev, req, res)
	}
}

func (s *Server) persist(ctx context.Context, r binding.Registration) error {
	if s.store == nil {
		return nil
	}
	return s.store.save(ctx, r)
}

func (s *Server) unpersist(ctx context.Context, aor string) error {
	if s.store == nil {
		return nil
	}
	return s.store.delete(ctx, aor)
}

// reload reads the stored registrations (start-up). Bindings that expired
// while the S-CSCF was down are removed by the first sweep, which sends
// SAR TIMEOUT_DEREGISTRATION once the HSS is connected.
func (s *Server) reload(ctx context.Context) error {
	regs, err := s.store.loadAll(ctx)
	if err != nil {
		return fmt.Errorf("scscf: loading registrations: %w", err)
	}
	for _, r := range regs {
		rec := &record{aor: r.AOR, impi: r.IMPI, impus: r.IMPUs, barred: map[string]bool{}, userData: r.UserData}
		for _, b := range r.Barred {
			rec.barred[binding.CanonURI(b)] = true
		}
		if len(r.UserData) > 0 {
			if p, err := userdata.Parse(r.UserData); err == nil {
				rec.profile = p
			} else {
				s.log.Warn("stored User-Data does not parse; next SAR fetches it again", zapStr("aor", r.AOR), zap.Error(err))
				rec.userData = nil
			}
		}
		for i := range r.Contacts {
			c := r.Contacts[i]
			rec.contacts = append(rec.contacts, &c)
		}
		s.reg.put(rec)
	}
	s.log.Info("registrations reloaded", zap.Int("sets", len(regs)))
	return nil
}

// sweeper runs the expiry and challenge timers every SweepInterval, once
// the HSS is connected (so that de-registrations reach it).
func (s *Server) sweeper() {
	defer s.bg.Done()
	if err := s.hss.WaitOpen(s.ctx); err != nil {
		return
	}
	tick := time.NewTicker(s.cfg.SweepInterval)
	defer tick.Stop()
	for {
		s.sweep(time.Now())
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (s *Server) sweep(now time.Time) {
	s.sess.odi.sweep(now)
	for _, c := range s.auth.sweep(now, s.cfg.ChallengeTimeout, s.cfg.NonceLifetime, s.cfg.VectorLifetime) {
		s.metrics.auth.WithLabelValues("timeout").Inc()
		s.log.Info("challenge unanswered", zapStr("impi", c.impi), zapStr("impu", c.impu))
		s.sarAsync(c.impi, c.impu, diameter.SATAuthenticationTimeout)
	}
	for _, r := range s.reg.all() {
		s.reg.mu.RLock()
		expired := false
		for _, c := range r.contacts {
			if !c.Expires.After(now) {
				expired = true
				break
			}
		}
		impi := r.impi
		s.reg.mu.RUnlock()
		if expired {
			s.expire(r, impi, now)
		}
	}
}

func (s *Server) expire(r *record, impi string, now time.Time) {
	unlock := s.locks.Lock(impi)
	defer unlock()
	if s.reg.lookup(r.aor) != r {
		return
	}
	var keep []*binding.Contact
	var gone []binding.Contact
	for _, c := range r.contacts {
		if c.Expires.After(now) {
			keep = append(keep, c)
		} else {
			gone = append(gone, *c)
		}
	}
	if len(gone) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	snap := s.setContacts(ctx, r, keep)
	s.metrics.deregistrations.WithLabelValues("timeout").Add(float64(len(gone)))
	if len(keep) == 0 {
		s.log.Info("registration expired", zapStr("aor", r.aor))
		if _, err := s.sar(ctx, impi, r.aor, diameter.SATTimeoutDeregistration, true); err != nil {
			s.log.Warn("SAR TIMEOUT_DEREGISTRATION failed", zapStr("aor", r.aor), zap.Error(err))
		}
	}
	s.emit(binding.Event{Kind: binding.EventExpired, After: snap, Changed: gone})
}

// handleRTR serves Registration-Termination-Request (TS 29.228 §6.2.1,
// TS 29.229 §6.1.9): with Public-Identity AVPs the sets holding them are
// removed, otherwise every set of User-Name (the IMPI). Answered 2001.
func (s *Server) handleRTR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	impi := diameter.String(req, diameter.AVPUserName)
	var impus []string
	for _, a := range diameter.FindAll(req, diameter.AVPPublicIdentity) {
		if v, ok := diameter.AsString(a); ok {
			impus = append(impus, v)
		}
	}
	if impi == "" && len(impus) == 0 {
		return nil, diameter.MissingAVP(diameter.AVPUserName)
	}
	reason := diameter.String(req, diameter.AVPDeregistrationReason, diameter.AVPReasonInfo)
	var targets []*record
	seen := map[*record]bool{}
	if len(impus) > 0 {
		for _, u := range impus {
			if r := s.reg.lookup(u); r != nil && !seen[r] {
				seen[r] = true
				targets = append(targets, r)
			}
		}
	} else {
		targets = s.reg.ofIMPI(impi)
	}
	// Associated-Identities: other IMPIs whose sets go too.
	for _, a := range diameter.FindAll(req, diameter.AVPAssociatedIdentities, diameter.AVPUserName) {
		if v, ok := diameter.AsString(a); ok && len(impus) == 0 {
			for _, r := range s.reg.ofIMPI(v) {
				if !seen[r] {
					seen[r] = true
					targets = append(targets, r)
				}
			}
		}
	}
	for _, r := range targets {
		s.terminate(ctx, r, reason)
	}
	s.log.Info("RTR", zapStr("impi", impi), zap.Strings("impus", impus), zap.Int("sets", len(targets)), zapStr("reason", reason))
	return s.node.Answer(req, diameter.DiameterSuccess), nil
}

func (s *Server) terminate(ctx context.Context, r *record, reason string) {
	s.reg.mu.RLock()
	impi := r.impi
	s.reg.mu.RUnlock()
	unlock := s.locks.Lock(impi)
	defer unlock()
	if s.reg.lookup(r.aor) != r {
		return
	}
	s.reg.mu.RLock()
	gone := r.snapshot().Contacts
	s.reg.mu.RUnlock()
	snap := s.setContacts(ctx, r, nil)
	s.metrics.deregistrations.WithLabelValues("administrative").Add(float64(len(gone)))
	s.emit(binding.Event{Kind: binding.EventTerminated, After: snap, Changed: gone, Reason: reason})
}

// handlePPR serves Push-Profile-Request (TS 29.228 §6.2.2, TS 29.229
// §6.1.11): the User-Data replaces the cached profile of every set of the
// IMPI. PPA 2001; 5001 (experimental) when the IMPI has no registration
// here; 5009 DIAMETER_ERROR_NOT_SUPPORTED_USER_DATA for User-Data that
// does not parse.
func (s *Server) handlePPR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	impi := diameter.String(req, diameter.AVPUserName)
	if impi == "" {
		return nil, diameter.MissingAVP(diameter.AVPUserName)
	}
	recs := s.reg.ofIMPI(impi)
	if len(recs) == 0 {
		return s.node.AnswerExperimental(req, diameter.DiameterErrorUserUnknown), nil
	}
	a := diameter.Find(req, diameter.AVPUserData)
	if a == nil { // only Charging-Information or SIP-Auth-Data-Item changed
		return s.node.Answer(req, diameter.DiameterSuccess), nil
	}
	ud, _ := diameter.AsBytes(a)
	profile, err := userdata.Parse(ud)
	if err != nil {
		s.log.Warn("PPR User-Data rejected", zapStr("impi", impi), zap.Error(err))
		return s.node.AnswerExperimental(req, diameter.DiameterErrorNotSupportedUserData), nil
	}
	unlock := s.locks.Lock(impi)
	defer unlock()
	for _, r := range recs {
		if s.reg.lookup(r.aor) != r {
			continue
		}
		impus, barred := binding.IRS(profile, r.aor)
		s.reg.mu.Lock()
		r.userData, r.profile, r.impus, r.barred = ud, profile, impus, barred
		snap := r.snapshot()
		s.reg.mu.Unlock()
		s.reg.put(r)
		if err := s.persist(ctx, snap); err != nil {
			s.log.Error("storing profile", zapStr("aor", r.aor), zap.Error(err))
			return nil, err
		}
		s.emit(binding.Event{Kind: binding.EventProfileUpdated, After: snap})
	}
	return s.node.Answer(req, diameter.DiameterSuccess), nil
}

func zapStr(k, v string) zap.Field        { return zap.String(k, v) }
func zapU32(k string, v uint32) zap.Field { return zap.Uint32(k, v) }
func zapErr(err error) zap.Field          { return zap.Error(err) }
