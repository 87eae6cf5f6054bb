package scscf

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/gruu"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/pgbatch"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/binding"
	"github.com/imscore/imscore/scscf/isc"
	"github.com/imscore/imscore/scscf/registrar"
)

// Server is the S-CSCF: SIP on sipproxy, the Diameter node towards the
// HSS (MAR/SAR out, RTR/PPR in on the same connection), the registrar
// (scscf/registrar) with its bindings in memory and written through to
// PostgreSQL, and session routing; it dispatches REGISTER to the
// registrar and every other request to session routing.
type Server struct {
	cfg      Config
	log      *zap.Logger
	node     *diameter.Node
	hss      *diameter.Peer
	proxy    *sipproxy.Proxy
	pool     *pgxpool.Pool // nil without a database
	writer   *pgbatch.Batcher
	reg      *registrar.Registrar
	hostport string
	sess     *isc.Router
	gruu     *gruu.Codec // nil without Config.GRUUSecret
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

// New validates cfg (after WithDefaults) and builds a Server; Start opens
// the sockets, the database and the HSS connection.
func New(cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if cfg.GRUUSecret != "" {
		c, err := gruu.NewCodec([]byte(cfg.GRUUSecret))
		if err != nil {
			return nil, err
		}
		s.gruu = c
	}
	peers := []string{cfg.HSSHost}
	if cfg.HSSStandbyHost != "" {
		peers = append(peers, cfg.HSSStandbyHost)
	}
	node, err := diameter.New(diameter.Config{
		OriginHost: cfg.OriginHost, OriginRealm: cfg.Domain, Apps: []diameter.App{diameter.AppCx},
		AllowedPeers: peers, Logger: cfg.Logger.Named("diameter"),
		ReconnectMin: 200 * time.Millisecond, ReconnectMax: 5 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	s.node = node
	if s.reg, err = registrar.New(registrar.Config{
		Domain: cfg.Domain, ServerName: cfg.ServerName, HSSHost: destinationHost(cfg), HSSTimeout: cfg.HSSTimeout, Node: node,
		MinExpires: cfg.MinExpires, MaxExpires: cfg.MaxExpires, DefaultExpires: cfg.DefaultExpires,
		VectorsPerMAR: cfg.VectorsPerMAR, NonceLifetime: cfg.NonceLifetime, ChallengeTimeout: cfg.ChallengeTimeout,
		VectorLifetime: cfg.VectorLifetime, ReauthProtected: cfg.ReauthProtected,
		AuthFailureBurst: max(cfg.AuthFailureBurst, 0), AuthFailureEvery: cfg.AuthFailureEvery,
		ServiceRoute: s.ServiceRoute, Warning: s.warning, OnChange: s.emit, OnAnswered: s.afterRegister, GRUU: s.gruu,
		Logger: cfg.Logger, Registry: cfg.Registry,
	}); err != nil {
		return nil, err
	}
	if s.sess, err = isc.New(isc.Config{
		Domain: cfg.Domain, SIPHost: cfg.SIPHost, ServerName: cfg.ServerName,
		ICSCF: cfg.ICSCF, Breakout: cfg.Breakout, TelURIs: cfg.TelURIs, SharedIFCSetsFile: cfg.SharedIFCSetsFile,
		OrigIdentityFromHeader: cfg.OrigIdentityFromHeader, ASTimeout: cfg.ASTimeout, ODILifetime: cfg.ODILifetime, GRUU: s.gruu,
		Warning: s.warning, Logger: cfg.Logger, Registry: cfg.Registry,
	}, s.reg, s); err != nil {
		return nil, err
	}
	node.Handle(diameter.CmdRegistrationTermination, diameter.AppCx, s.reg.HandleRTR)
	node.Handle(diameter.CmdPushProfile, diameter.AppCx, s.reg.HandlePPR)
	return s, nil
}

// Start opens the database (migrating it and reloading the bindings),
// connects to the HSS (in the background, reconnecting), starts SIP and
// the expiry timer. ctx bounds the start-up only; Close stops the server.
func (s *Server) Start(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if s.cfg.DatabaseURL != "" {
		pool, err := openStore(ctx, s.cfg.DatabaseURL)
		if err != nil {
			return err
		}
		w := pgbatch.New(pool)
		if err := pgbatch.Register(s.cfg.Registry, "scscf", w); err != nil {
			pool.Close()
			return err
		}
		s.pool, s.writer = pool, w
		if err := s.reg.Load(ctx, pool, w); err != nil {
			pool.Close()
			return err
		}
	}
	peer, err := s.node.Connect(s.ctx, diameter.PeerConfig{Addr: s.cfg.HSSAddr, Host: s.cfg.HSSHost, Realm: s.cfg.Domain})
	if err != nil {
		return err
	}
	s.hss = peer
	if s.cfg.HSSStandbyAddr != "" {
		if _, err := s.node.Connect(s.ctx, diameter.PeerConfig{Addr: s.cfg.HSSStandbyAddr, Host: s.cfg.HSSStandbyHost,
			Realm: s.cfg.Domain, Priority: 1}); err != nil {
			return err
		}
	}
	p, err := sipproxy.New(sipproxy.Config{ListenAddr: s.cfg.SIPListen, Host: s.cfg.SIPHost, Handler: s.handle,
		Logger: s.log.Named("sip"), Aliases: []string{"scscf." + s.cfg.Domain}, HideWarnings: s.cfg.HideWarnings,
		Limits: s.cfg.SIPLimits, Registerer: s.cfg.Registry})
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
		zap.String("hss", s.cfg.HSSAddr), zap.Bool("database", s.pool != nil))
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
		s.reg.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.node.Close(ctx)
		cancel()
		if s.pool != nil {
			s.pool.Close()
		}
	})
	return nil
}

// handle is the sipproxy handler: REGISTER goes to the registrar
// (scscf/registrar), every other request to session routing (scscf/isc).
func (s *Server) handle(ctx context.Context, t *sipproxy.Txn) {
	if t.Request().Method == sip.REGISTER {
		s.reg.HandleRegister(ctx, t)
		return
	}
	s.sess.Handle(ctx, t)
}

// SetRegEventHandler installs the reg event notifier in session routing
// (isc.Router.SetRegEventHandler); call it before Start. Without one, a
// reg-event SUBSCRIBE for a registered IMPU is answered 489 and an
// in-dialog request addressed to the S-CSCF 481.
func (s *Server) SetRegEventHandler(h isc.RegEventHandler) { s.sess.SetRegEventHandler(h) }

// DB is the S-CSCF's database pool (its scscf_* tables), nil without a
// database or before Start: the reg-event notifier keeps its
// subscriptions there.
func (s *Server) DB() *pgxpool.Pool { return s.pool }

// DBWriter returns the group-commit writer on DB() (pgbatch): the
// registrar's and the reg-event notifier's writes share its batches. Nil
// before Start or without a database.
func (s *Server) DBWriter() *pgbatch.Batcher { return s.writer }

// SIPProxy is the S-CSCF's SIP element, nil until Start has finished: the
// reg-event notifier and the third-party registrar send from its socket.
func (s *Server) SIPProxy() *sipproxy.Proxy {
	if !s.started.Load() {
		return nil
	}
	return s.proxy
}

// SIPAddr is the bound SIP address (UDP and TCP share the port).
func (s *Server) SIPAddr() *net.TCPAddr { return s.proxy.Addr("udp") }

// Config returns the effective configuration.
func (s *Server) Config() Config { return s.cfg }

// Ready reports nil when an HSS (the primary, or the standby while the
// primary is down) can take a MAR or SAR.
func (s *Server) Ready(context.Context) error {
	if !s.started.Load() {
		return errors.New("starting")
	}
	if !s.node.Routable(s.cfg.Domain, diameter.AppCx) {
		return errors.New("HSS peer not open")
	}
	return nil
}

// destinationHost is the Destination-Host of MAR and SAR: the HSS's
// identity, or none when a standby with another identity may answer (the
// node then routes by realm, RFC 6733 §6.1).
func destinationHost(cfg Config) string {
	if cfg.HSSStandbyAddr != "" && !strings.EqualFold(cfg.HSSStandbyHost, cfg.HSSHost) {
		return ""
	}
	return cfg.HSSHost
}

// Lookup returns the registration that holds impu (any IMPU of the set).
func (s *Server) Lookup(impu string) (binding.Registration, bool) { return s.reg.Lookup(impu) }

// Profile returns the parsed user profile of the set holding impu.
func (s *Server) Profile(impu string) (*userdata.IMSSubscription, bool) { return s.reg.Profile(impu) }

// NetworkDeregister ends the registration of the set holding impu as the
// S-CSCF's own decision (registrar.Registrar.NetworkDeregister: bindings
// removed as EventTerminated with reason, SAR
// ADMINISTRATIVE_DEREGISTRATION). It is the deregister callback of
// NewThirdPartyRegistrar; it must not be called with the IMPI's lock held.
func (s *Server) NetworkDeregister(impu, reason string) { s.reg.NetworkDeregister(impu, reason) }

// ServiceRoute returns the URI this S-CSCF puts in Service-Route:
// sip:orig@<sip host>:<port>;lr. A request whose popped Route had user
// part "orig" is an originating request of a registered user.
func (s *Server) ServiceRoute() string {
	return fmt.Sprintf("sip:%s@%s;lr", ServiceRouteUser, s.hostport)
}

// ServiceRouteUser is the user part of the Service-Route URI.
const ServiceRouteUser = binding.ServiceRouteUser

// warning is the Warning header of the S-CSCF's error answers (RFC 3261
// §20.43: code 399, the SIP host as agent).
func (s *Server) warning(text string) sip.Header {
	return sip.NewHeader("Warning", "399 "+s.cfg.SIPHost+" "+imsheader.Quote(text))
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
	st := Status{Registrations: []StatusRegistration{}, DatabaseEnabled: s.pool != nil, HSS: s.node.Status()}
	for _, snap := range s.reg.Registrations() {
		sr := StatusRegistration{Registration: snap}
		for _, c := range snap.Contacts {
			sr.Contacts = append(sr.Contacts, StatusContact{Contact: c, ExpiresIn: int(c.Expires.Sub(now) / time.Second)})
		}
		st.Registrations = append(st.Registrations, sr)
	}
	st.CachedVectors, st.OpenChallenges = s.reg.AuthCounts()
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

// sweeper runs the expiry and challenge timers every SweepInterval, once
// the HSS is connected (so that de-registrations reach it).
func (s *Server) sweeper() {
	defer s.bg.Done()
	for !s.node.Routable(s.cfg.Domain, diameter.AppCx) {
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
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
	s.sess.Sweep(now)
	s.reg.Sweep(now)
}
