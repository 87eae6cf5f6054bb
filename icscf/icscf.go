package icscf

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
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/admission"
	"github.com/imscore/imscore/pkg/authguard"
	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/gruu"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// Server is a running I-CSCF: a SIP proxy on Config.SIPListen (UDP and
// TCP) and a Diameter Cx client of the HSS. It keeps no registration state
// (TS 24.229 §5.3): every REGISTER is routed by a fresh UAR and every
// terminating request by a fresh LIR, so a restart loses nothing.
type Server struct {
	cfg       Config
	log       *zap.Logger
	node      *diameter.Node
	cx        *cxclient.Client // UAR and LIR to the HSS
	proxy     *sipproxy.Proxy
	metrics   *metrics
	warnAgent string
	started   sync.Map // *sipproxy.Txn → time.Time the request arrived
	admission overload
	decoy     *concealer  // answers for identities the HSS does not know
	gruu      *gruu.Codec // temporary GRUUs; nil without Config.GRUUSecret

	mu     sync.Mutex
	peer   *diameter.Peer
	cancel context.CancelFunc
	closed bool
}

// New validates cfg and builds a Server without opening sockets. Errors:
// missing domain, no S-CSCF, bad addresses, Diameter/SIP set-up errors.
func New(cfg Config) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	if cfg.GRUUSecret != "" {
		c, err := gruu.NewCodec([]byte(cfg.GRUUSecret))
		if err != nil {
			return nil, fmt.Errorf("icscf: gruu-secret: %w", err)
		}
		s.gruu = c
	}
	s.decoy = newConcealer(authguard.New(authguard.Config{Burst: max(cfg.AuthFailureBurst, 0), Every: cfg.AuthFailureEvery,
		OnLockout: func(impi string, d time.Duration) {
			s.log.Warn("authentication throttled: unknown IMPI locked out after repeated failures", zap.String("impi", impi), zap.Duration("for", d))
		}}))
	s.admission.limiter = admission.New(cfg.MaxPendingRegister, cfg.RegisterAdmission)
	s.metrics = newMetrics(cfg.Registerer, func() float64 { return float64(s.admission.limiter.Pending()) },
		func() float64 { return float64(s.admission.limiter.Limit()) })
	node, err := diameter.New(diameter.Config{
		OriginHost:   cfg.OriginHost,
		OriginRealm:  cfg.Domain,
		Apps:         []diameter.App{diameter.AppCx},
		ReconnectMin: 200 * time.Millisecond,
		ReconnectMax: 5 * time.Second,
		Logger:       cfg.Logger.Named("cx"),
	})
	if err != nil {
		return nil, fmt.Errorf("icscf: diameter: %w", err)
	}
	s.node = node
	if s.cx, err = cxclient.New(cxclient.Config{Node: node, Realm: cfg.Domain, Timeout: cfg.CxTimeout, Observe: s.observeCx}); err != nil {
		return nil, err
	}
	aliases := append([]string{cfg.OriginHost}, cfg.Aliases...)
	p, err := sipproxy.New(sipproxy.Config{
		ListenAddr:   cfg.SIPListen,
		Host:         cfg.SIPHost,
		Aliases:      aliases,
		Handler:      s.handle,
		HideWarnings: cfg.HideWarnings,
		Logger:       cfg.Logger.Named("sip"),
		Limits:       cfg.SIPLimits,
		Registerer:   cfg.Registerer,
	})
	if err != nil {
		return nil, fmt.Errorf("icscf: sip: %w", err)
	}
	s.proxy = p
	s.warnAgent = cfg.SIPHost
	if s.warnAgent == "" {
		s.warnAgent = cfg.OriginHost
	}
	return s, nil
}

// Start connects to the HSS in the background (reconnecting after losses)
// and opens the SIP sockets. It returns once SIP listens; use Ready or
// WaitReady for the HSS.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("icscf: closed")
	}
	pctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	peer, err := s.node.Connect(pctx, diameter.PeerConfig{Addr: s.cfg.HSSAddr, Host: s.cfg.HSSHost, Realm: s.cfg.Domain})
	if err != nil {
		cancel()
		return fmt.Errorf("icscf: connect HSS: %w", err)
	}
	s.peer = peer
	if s.cfg.HSSStandbyAddr != "" {
		if _, err := s.node.Connect(pctx, diameter.PeerConfig{Addr: s.cfg.HSSStandbyAddr, Host: s.cfg.HSSStandbyHost,
			Realm: s.cfg.Domain, Priority: 1}); err != nil {
			cancel()
			return fmt.Errorf("icscf: connect standby HSS: %w", err)
		}
	}
	if err := s.proxy.Start(ctx); err != nil {
		cancel()
		return fmt.Errorf("icscf: %w", err)
	}
	s.log.Info("I-CSCF started",
		zap.String("sip", s.cfg.SIPListen), zap.String("hss", s.cfg.HSSAddr),
		zap.String("origin-host", s.cfg.OriginHost), zap.Int("scscfs", len(s.cfg.SCSCFs)))
	return nil
}

// Ready reports nil when an HSS (the primary, or the standby while the
// primary is down) can take a Cx request (for /readyz).
func (s *Server) Ready(context.Context) error {
	if s.node.Routable(s.cfg.Domain, diameter.AppCx) {
		return nil
	}
	s.mu.Lock()
	p := s.peer
	s.mu.Unlock()
	if p != nil && p.LastError() != nil {
		return fmt.Errorf("HSS %s at %s not connected: %v", s.cfg.HSSHost, s.cfg.HSSAddr, p.LastError())
	}
	return fmt.Errorf("HSS %s at %s not connected", s.cfg.HSSHost, s.cfg.HSSAddr)
}

// WaitReady waits until the HSS peer is open or ctx ends.
func (s *Server) WaitReady(ctx context.Context) error {
	s.mu.Lock()
	p := s.peer
	s.mu.Unlock()
	if p == nil {
		return errors.New("icscf: not started")
	}
	return p.WaitOpen(ctx)
}

// SIPAddr returns the bound SIP address for "udp" or "tcp" (nil before Start).
func (s *Server) SIPAddr(network string) *net.TCPAddr { return s.proxy.Addr(network) }

// Close stops SIP, sends DPR to the HSS and releases everything. Safe to
// call twice.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cancel := s.cancel
	s.mu.Unlock()
	err := s.proxy.Close()
	ctx, c := context.WithTimeout(context.Background(), 2*time.Second)
	defer c()
	if derr := s.node.Close(ctx); err == nil && derr != nil && !errors.Is(derr, diameter.ErrNodeClosed) {
		err = derr
	}
	if cancel != nil {
		cancel()
	}
	return err
}

// handle is the sipproxy handler of every new server transaction.
func (s *Server) handle(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	if req.IsAck() {
		// ACK for a 2xx: forwarded statelessly along its Route.
		if _, err := t.Forward(ctx, sipproxy.ForwardOptions{}); err != nil {
			s.log.Debug("ACK not forwarded", zap.Error(err))
		}
		return
	}
	s.started.Store(t, time.Now())
	defer s.started.Delete(t)
	if req.Method == sip.REGISTER {
		// Admission control (docs/icscf.md, "Overload"): the slot is held
		// until the handler returns, i.e. after the final response was
		// sent, and released on every path, a recovered panic included.
		kind := registerKind(req)
		release, pending, ok := s.admission.admitRegister(kind)
		if !ok {
			s.refuseOverload(t, kind, pending)
			return
		}
		defer release()
	}
	s.dispatch(ctx, t)
}

func (s *Server) dispatch(ctx context.Context, t *sipproxy.Txn) int {
	req := t.Request()
	switch {
	case isOriginating(t.RemovedRoute()) && req.Method != sip.REGISTER && !hasToTag(req):
		return s.originating(ctx, t)
	case req.Route() != nil:
		// A Route not pointing at us (ours was popped): in-dialog or
		// pre-loaded route, forwarded along it (RFC 3261 §16.6).
		return s.forwardAsIs(ctx, t)
	case req.Method == sip.REGISTER:
		return s.register(ctx, t)
	case hasToTag(req) && req.Recipient.User == "" &&
		(strings.EqualFold(req.Recipient.Host, s.cfg.Domain) || t.Proxy().IsSelf(req.Recipient)):
		// In-dialog request aimed at the home domain or at us with no
		// route set: it belongs to no dialog anything here holds (e.g. a
		// UA's BYE after a failed REGISTER). Forwarding would loop.
		return s.relay(t, t.NewResponse(481, "Call/Transaction Does Not Exist"))
	case hasToTag(req):
		// In-dialog request without a route set: to its Request-URI.
		return s.forwardAsIs(ctx, t)
	case req.Method == sip.OPTIONS && req.Recipient.User == "" && t.Proxy().IsSelf(req.Recipient):
		return s.relay(t, t.NewResponse(200, "OK", sip.NewHeader("Allow", "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, REGISTER, SUBSCRIBE, NOTIFY, UPDATE, PRACK, INFO, REFER, PUBLISH")))
	default:
		return s.terminating(ctx, t)
	}
}

// startOf is when t's request arrived (now if unknown).
func (s *Server) startOf(t *sipproxy.Txn) time.Time {
	if v, ok := s.started.Load(t); ok {
		return v.(time.Time)
	}
	return time.Now()
}

func hasToTag(req *sip.Request) bool {
	to := req.To()
	if to == nil {
		return false
	}
	tag, ok := to.Params.Get("tag")
	return ok && tag != ""
}

func (s *Server) forwardAsIs(ctx context.Context, t *sipproxy.Txn) int {
	res, err := t.Forward(ctx, sipproxy.ForwardOptions{})
	if res == nil {
		s.log.Info("forward failed", zap.Error(err))
		return 0
	}
	return s.relay(t, res)
}

// relay sends the final response res upstream, counting it first.
func (s *Server) relay(t *sipproxy.Txn, res *sip.Response) int {
	method := methodLabel(string(t.Request().Method))
	s.metrics.sipResults.WithLabelValues(method, codeLabel(res.StatusCode)).Inc()
	if v, ok := s.started.Load(t); ok {
		s.metrics.sipDuration.WithLabelValues(method).Observe(time.Since(v.(time.Time)).Seconds())
	}
	if err := t.Relay(res); err != nil {
		s.log.Info("sending response failed", zap.Int("code", res.StatusCode), zap.Error(err))
	}
	return res.StatusCode
}

// reply answers with e, adding "Warning: 399 <agent> "text"" (RFC 3261
// §20.43) when e has a text.
func (s *Server) reply(t *sipproxy.Txn, e *sipError) int {
	var hdrs []sip.Header
	if e.warning != "" {
		hdrs = append(hdrs, s.warning(e.warning))
	}
	req := t.Request()
	s.log.Info("request refused", zap.String("method", string(req.Method)),
		zap.String("ruri", req.Recipient.String()), zap.Int("code", e.code), zap.String("why", e.warning))
	return s.relay(t, t.NewResponse(e.code, e.reason, hdrs...))
}

// warning is "Warning: 399 <agent> "text"" (RFC 3261 §20.43), the agent
// being --sip-host, else the Diameter origin host.
func (s *Server) warning(text string) sip.Header {
	return sip.NewHeader("Warning", "399 "+s.warnAgent+" "+imsheader.Quote(text))
}

func (s *Server) target(c candidate) sipproxy.Target {
	return sipproxy.Target{Route: []sip.Uri{c.route}, NextHop: c.hop}
}

// scscfFailed is true for an outcome after which another S-CSCF is tried
// (TS 24.229 §5.3.1.3): no answer (timeout), transport failure, or a 5xx
// from the S-CSCF when downstream5xx is set.
func scscfFailed(res *sip.Response, err error, downstream5xx bool) bool {
	if err != nil {
		return errors.Is(err, sipproxy.ErrTimeout) || errors.Is(err, sipproxy.ErrTransport)
	}
	return downstream5xx && res.StatusCode >= 500 && res.StatusCode < 600
}

// exhausted answers after every S-CSCF that could be tried failed: the
// last S-CSCF's own 5xx when it sent one, else 504 naming those tried.
func (s *Server) exhausted(t *sipproxy.Txn, lastDownstream *sip.Response, tried []string, a *cxclient.Assignment) int {
	if lastDownstream != nil {
		return s.relay(t, lastDownstream)
	}
	if len(tried) > 0 {
		return s.reply(t, &sipError{504, "Server Time-out", "no answer from S-CSCF " + strings.Join(tried, ", ")})
	}
	return s.reply(t, &sipError{500, "Server Internal Error", fmt.Sprintf(
		"no configured S-CSCF has the mandatory capabilities %v (HSS %s)", a.Mandatory(), s.cfg.HSSHost)})
}

// register handles a REGISTER (TS 24.229 §5.3.1.2, §5.3.1.3; TS 29.228
// §6.1.1).
func (s *Server) register(ctx context.Context, t *sipproxy.Txn) int {
	req := t.Request()
	impu := publicIdentity(req.To().Address)
	impi := authUsername(req)
	if impi == "" {
		impi = deriveIMPI(req.To().Address, s.cfg.Domain)
	}
	vnid := s.visitedNetwork(req)
	uat := registrationType(req)
	exclude := map[string]bool{}
	var tried []string
	var lastDownstream *sip.Response
	var a *cxclient.Assignment
	for attempt := 0; attempt <= len(s.cfg.SCSCFs); attempt++ {
		var err error
		a, err = s.cx.UAR(ctx, impu, impi, vnid, uat)
		if err != nil {
			if ce, ok := cxclient.AsError(err); ok && !s.cfg.RevealUnknownUsers && unknownIdentity(ce) {
				if uat == diameter.UATDeRegistration {
					// As for a known IMPU that is not registered (5003).
					return s.reply(t, s.uaaError(&cxclient.Error{Code: diameter.DiameterErrorIdentityNotRegistered, Experimental: true}))
				}
				return s.conceal(ctx, t, impi, s.startOf(t))
			}
			return s.reply(t, s.cxFailure("UAR", err, s.uaaError))
		}
		if uat == diameter.UATDeRegistration && a.ServerName == "" {
			// No S-CSCF holds the user (e.g. 2004 SERVER_NAME_NOT_STORED):
			// nothing to remove, as RFC 3261 §10.3 answers for no bindings.
			return s.relay(t, t.NewResponse(200, "OK"))
		}
		cands := s.selectSCSCF(a, exclude)
		if len(cands) == 0 {
			break
		}
		c := cands[0]
		s.log.Debug("REGISTER to S-CSCF", zap.String("impu", impu), zap.String("scscf", c.name), zap.Uint32("uat", uat))
		res, ferr := t.Forward(ctx, sipproxy.ForwardOptions{Timeout: s.cfg.SIPTimeout}, s.target(c))
		if !scscfFailed(res, ferr, true) || uat == diameter.UATDeRegistration {
			if ferr == nil {
				s.decoy.observe(req, res, time.Since(s.startOf(t)))
			}
			return s.relay(t, res)
		}
		s.metrics.failovers.Inc()
		s.log.Info("S-CSCF failed, selecting another", zap.String("scscf", c.name), zap.Int("code", res.StatusCode), zap.Error(ferr))
		exclude[c.key] = true
		tried = append(tried, c.name)
		lastDownstream = nil
		if ferr == nil {
			lastDownstream = res
		}
		uat = diameter.UATRegistrationAndCapabilities
	}
	return s.exhausted(t, lastDownstream, tried, a)
}

// terminating handles a request to a home public identity (TS 24.229
// §5.3.2.1; TS 29.228 §6.1.4): LIR for the Request-URI, then a Route to
// the S-CSCF, Request-URI unchanged, no Record-Route.
func (s *Server) terminating(ctx context.Context, t *sipproxy.Txn) int {
	ru := t.Request().Recipient
	if gruu.IsTemp(ru) {
		impu, e := s.tempGRUUIdentity(ru)
		if e != nil {
			return s.reply(t, e)
		}
		return s.locate(ctx, t, impu, false)
	}
	return s.locate(ctx, t, publicIdentity(ru), false)
}

// locate sends the LIR for impu (originating: with Originating-Request) and
// forwards the request to the S-CSCF it names or the I-CSCF selects,
// trying the next S-CSCF while none has answered (TS 24.229 §5.3.1.3).
// An originating request's Route entry keeps the "orig" parameter
// (TS 24.229 §5.3.2.1A) so that the S-CSCF serves its originating side.
func (s *Server) locate(ctx context.Context, t *sipproxy.Txn, impu string, originating bool) int {
	req := t.Request()
	var provisional atomic.Bool
	opts := sipproxy.ForwardOptions{OnResponse: func(_ sipproxy.Target, res *sip.Response) {
		if res.StatusCode < 200 {
			provisional.Store(true)
		}
	}}
	if !req.IsInvite() {
		opts.Timeout = s.cfg.SIPTimeout
	}
	exclude := map[string]bool{}
	var tried []string
	var a *cxclient.Assignment
	capabilities := false
	for attempt := 0; attempt <= len(s.cfg.SCSCFs); attempt++ {
		var err error
		a, err = s.cx.LIR(ctx, impu, capabilities, originating)
		if err != nil {
			return s.reply(t, s.cxFailure("LIR", err, s.liaError))
		}
		cands := s.selectSCSCF(a, exclude)
		if len(cands) == 0 {
			break
		}
		c := cands[0]
		tg := s.target(c)
		if originating {
			tg.Route[0] = *tg.Route[0].Clone()
			tg.Route[0].UriParams.Add(origParam, "")
		}
		res, ferr := t.Forward(ctx, opts, tg)
		// Only a request no S-CSCF has seen is sent elsewhere.
		if !scscfFailed(res, ferr, false) || provisional.Load() {
			return s.relay(t, res)
		}
		s.metrics.failovers.Inc()
		s.log.Info("S-CSCF failed, selecting another", zap.String("scscf", c.name), zap.Error(ferr))
		exclude[c.key] = true
		tried = append(tried, c.name)
		capabilities = true
	}
	return s.exhausted(t, nil, tried, a)
}

// publicIdentity returns the IMPU of a To or Request-URI: for sip:/sips:
// scheme:user@host without port, parameters or headers; any other scheme
// (tel:) as written.
func publicIdentity(u sip.Uri) string {
	if u.Scheme == "sip" || u.Scheme == "sips" {
		if u.User != "" {
			return u.Scheme + ":" + u.User + "@" + u.Host
		}
		return u.Scheme + ":" + u.Host
	}
	return u.String()
}

// deriveIMPI is the User-Name of a REGISTER without Authorization: for a
// sip: IMPU user@host (TS 23.003 §13.3 form); for a tel: IMPU the number
// without parameters @ the home domain.
func deriveIMPI(u sip.Uri, domain string) string {
	if u.Scheme == "sip" || u.Scheme == "sips" {
		if u.User != "" {
			return u.User + "@" + u.Host
		}
		return u.Host
	}
	s := u.String()
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[i+1:]
	}
	if i := strings.IndexByte(s, ';'); i >= 0 {
		s = s[:i]
	}
	return s + "@" + domain
}

// visitedNetwork returns the first P-Visited-Network-ID (RFC 7315 §4.3)
// without quotes, else the home domain.
func (s *Server) visitedNetwork(req *sip.Request) string {
	list, err := imsheader.GetPVisitedNetworkID(req)
	if err != nil || len(list) == 0 || list[0].Text() == "" {
		return s.cfg.Domain
	}
	return list[0].Text()
}

// registrationType returns the User-Authorization-Type of a REGISTER (TS
// 29.228 §6.1.1.1): DE_REGISTRATION when every Contact expires now (its
// expires parameter, else the Expires header; "*" with Expires: 0),
// REGISTRATION otherwise (also for a query without Contact).
func registrationType(req *sip.Request) uint32 {
	headerExp := -1
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			headerExp = n
		}
	}
	contacts := req.GetHeaders("Contact")
	if len(contacts) == 0 {
		return diameter.UATRegistration
	}
	for _, h := range contacts {
		exp := headerExp
		if c, ok := h.(*sip.ContactHeader); ok {
			if v, ok := c.Params.Get("expires"); ok {
				if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
					exp = n
				}
			}
		}
		if exp != 0 {
			return diameter.UATRegistration
		}
	}
	return diameter.UATDeRegistration
}

// authUsername returns the username parameter of the first Digest
// Authorization header (the IMPI, TS 24.229 §5.3.1.2), "" if none or when
// the header does not parse.
func authUsername(req *sip.Request) string {
	hs, err := digest.GetAll(req, digest.HeaderAuthorization)
	if err != nil {
		return ""
	}
	for _, h := range hs {
		if u := h.Username(); u != "" {
			return u
		}
	}
	return ""
}
