package scscf

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/ifc"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/binding"
)

// Session routing (TS 24.229 §5.4.3, TS 23.218 §6, RFC 5502).
//
// A request that is not a REGISTER is classified by the own Route entry
// sipproxy popped (Txn.RemovedRoute) and by its To tag:
//
//   - To tag present (in-dialog, also every ACK): forwarded along its Route
//     (own Record-Route entries removed); addressed to us with no Route left:
//     the reg-event hook or 481.
//   - popped user "odi-<token>": an AS sends the request back; the iFC chain
//     of the token resumes after the iFC that chose that AS.
//   - popped user "orig" (our Service-Route): originating for the served
//     user of P-Asserted-Identity.
//   - anything else (our Server-Name as Route from the I-CSCF, or no Route):
//     terminating for the Request-URI.

// odiPrefix starts the user part of the ODI Route entry of ISC requests.
const odiPrefix = "odi-"

// sescase is the session case of an iFC chain.
type iscState struct {
	served     string // canonical IMPU of the served user
	sescase    userdata.SessionCase
	registered bool
	ifcs       []userdata.InitialFilterCriteria
	after      int // Priority of the last iFC used
}

func (st *iscState) orig() bool {
	return st.sescase == userdata.SessionCaseOriginating || st.sescase == userdata.SessionCaseOriginatingUnregistered
}

// odiEntry is one ISC round trip in flight: the chain to resume when the AS
// sends the request back with the token.
type odiEntry struct {
	token    string
	st       iscState
	as       string
	expires  time.Time
	returned atomic.Bool
}

type odiTable struct {
	mu sync.Mutex
	m  map[string]*odiEntry
}

func (o *odiTable) add(e *odiEntry) {
	o.mu.Lock()
	o.m[e.token] = e
	o.mu.Unlock()
}

func (o *odiTable) get(token string, now time.Time) *odiEntry {
	o.mu.Lock()
	defer o.mu.Unlock()
	e := o.m[token]
	if e == nil || now.After(e.expires) {
		return nil
	}
	return e
}

func (o *odiTable) remove(token string) {
	o.mu.Lock()
	delete(o.m, token)
	o.mu.Unlock()
}

func (o *odiTable) sweep(now time.Time) {
	o.mu.Lock()
	for k, e := range o.m {
		if now.After(e.expires) {
			delete(o.m, k)
		}
	}
	o.mu.Unlock()
}

func (o *odiTable) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.m)
}

// session holds the session-routing state of a Server.
type session struct {
	icscf    sip.Uri
	breakout *sip.Uri
	shared   map[uint32][]userdata.InitialFilterCriteria
	eval     *ifc.Evaluator
	odi      odiTable
	requests *prometheus.CounterVec
	isc      *prometheus.CounterVec
}

// RegEventHandler is the reg event notifier (RFC 3680, TS 24.229
// §5.4.2.1) as the session router sees it; *RegEventNotifier implements it.
type RegEventHandler interface {
	// Handles reports whether req (any method but REGISTER) is a
	// reg-event SUBSCRIBE for the notifier.
	Handles(req *sip.Request) bool
	// HandleSubscribe answers such a request.
	HandleSubscribe(ctx context.Context, t *sipproxy.Txn)
}

// SetRegEventHandler installs the reg event notifier; call it before
// Start. Without one, a reg-event SUBSCRIBE for a registered IMPU is
// answered 489 and an in-dialog request addressed to the S-CSCF 481.
func (s *Server) SetRegEventHandler(h RegEventHandler) { s.regEvent = h }

func newSession(cfg Config, log *zap.Logger, r prometheus.Registerer) (*session, error) {
	ss := &session{eval: ifc.NewEvaluator(func(err error) { log.Warn("iFC not evaluable", zap.Error(err)) }),
		odi: odiTable{m: map[string]*odiEntry{}}}
	var err error
	if ss.icscf, err = routeURI(cfg.ICSCF); err != nil {
		return nil, fmt.Errorf("icscf: %w", err)
	}
	if cfg.Breakout != "" {
		b, err := routeURI(cfg.Breakout)
		if err != nil {
			return nil, fmt.Errorf("breakout: %w", err)
		}
		ss.breakout = &b
	}
	if ss.shared, err = loadSharedIFCSets(cfg.SharedIFCSetsFile); err != nil {
		return nil, err
	}
	ss.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scscf_session_requests_total",
		Help: "Requests other than REGISTER, by case (orig, term, odi, in_dialog) and method."}, []string{"case", "method"})
	ss.isc = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scscf_isc_total",
		Help: "Requests sent to application servers by iFC, by outcome (answered, returned, continued, terminated)."}, []string{"outcome"})
	odi := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scscf_odi_tokens",
		Help: "ODI tokens waiting for a request back from an AS."}, func() float64 { return float64(ss.odi.len()) })
	for _, c := range []prometheus.Collector{ss.requests, ss.isc, odi} {
		if err := r.Register(c); err != nil {
			return nil, err
		}
	}
	return ss, nil
}

// routeURI parses a sip:/sips: URI used as a loose Route (I-CSCF, breakout,
// AS Server-Name) and adds ;lr when missing.
func routeURI(s string) (sip.Uri, error) {
	var u sip.Uri
	v := strings.TrimSpace(s)
	v = strings.TrimSuffix(strings.TrimPrefix(v, "<"), ">")
	if err := sip.ParseUri(v, &u); err != nil {
		return u, fmt.Errorf("%q: %w", s, err)
	}
	if u.Scheme != "sip" && u.Scheme != "sips" {
		return u, fmt.Errorf("%q: want a sip: URI", s)
	}
	if u.Host == "" {
		return u, fmt.Errorf("%q: no host", s)
	}
	if u.UriParams == nil {
		u.UriParams = sip.NewParams()
	}
	if !u.UriParams.Has("lr") {
		u.UriParams.Add("lr", "")
	}
	return u, nil
}

func newToken() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// dialogForming reports whether the S-CSCF Record-Routes method (RFC 3261
// §16.6 step 4; TS 24.229 §5.4.3.2: so that in-dialog requests and
// responses come back through it).
func dialogForming(m sip.RequestMethod) bool {
	switch m {
	case sip.INVITE, sip.SUBSCRIBE, sip.REFER, sip.NOTIFY:
		return true
	}
	return false
}

func hasToTag(req *sip.Request) bool {
	to := req.To()
	if to == nil || to.Params == nil {
		return false
	}
	tag, ok := to.Params.Get("tag")
	return ok && tag != ""
}

// handleSession serves every request except REGISTER.
func (s *Server) handleSession(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	popped := t.RemovedRoute()
	method := string(req.Method)
	if s.regEvent != nil && !req.IsAck() && s.regEvent.Handles(req) {
		s.sess.requests.WithLabelValues("reg_event", method).Inc()
		s.regEvent.HandleSubscribe(ctx, t)
		return
	}
	if req.IsAck() || hasToTag(req) {
		s.sess.requests.WithLabelValues("in_dialog", method).Inc()
		s.inDialog(ctx, t, popped)
		return
	}
	switch {
	case popped != nil && strings.HasPrefix(popped.User, odiPrefix):
		s.sess.requests.WithLabelValues("odi", method).Inc()
		s.resumeISC(ctx, t, strings.TrimPrefix(popped.User, odiPrefix))
	case IsRegEvent(req) && (s.servesRegistered(req.Recipient) || s.proxy.IsSelf(req.Recipient)):
		// No notifier installed (SetRegEventHandler).
		_ = t.Respond(489, "Bad Event - reg event package not available here")
	case popped != nil && popped.User == ServiceRouteUser:
		s.sess.requests.WithLabelValues("orig", method).Inc()
		s.originating(ctx, t)
	case req.Method == sip.OPTIONS && (req.Recipient.User == "" && s.proxy.IsSelf(req.Recipient)):
		_ = t.Respond(200, "OK", sip.NewHeader("Allow", allowed))
	default:
		s.sess.requests.WithLabelValues("term", method).Inc()
		s.terminating(ctx, t)
	}
}

const allowed = "INVITE, ACK, CANCEL, BYE, REGISTER, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, UPDATE, PRACK, INFO, REFER, PUBLISH"

func (s *Server) servesRegistered(u sip.Uri) bool {
	_, ok := s.reg.Served(u.String())
	return ok
}

// inDialog forwards a request with a To tag (and every ACK) along its Route
// (RFC 3261 §16.12). Own entries left on top (the same S-CSCF Record-Routed
// on the originating and the terminating side) are removed first. A request
// addressed to the S-CSCF itself goes to the reg-event hook or gets 481.
func (s *Server) inDialog(ctx context.Context, t *sipproxy.Txn, popped *sip.Uri) {
	req := t.Request()
	for {
		rt := req.Route()
		if rt == nil || !s.proxy.IsSelf(rt.Address) {
			break
		}
		req.RemoveHeader("Route")
		if popped == nil {
			popped = rt.Address.Clone()
		}
	}
	if req.Route() == nil && s.proxy.IsSelf(req.Recipient) {
		// Addressed to the S-CSCF as a UA: only the reg-event dialogs
		// (asked above) exist.
		if !req.IsAck() {
			_ = t.Respond(481, "Call/Transaction Does Not Exist")
		}
		return
	}
	if popped == nil {
		if !req.IsAck() {
			_ = t.Respond(403, "Forbidden - in-dialog request not routed through this S-CSCF")
		}
		return
	}
	if _, err := t.Forward(ctx, sipproxy.ForwardOptions{}); err != nil && req.IsAck() {
		s.log.Debug("ACK not forwarded", zap.Error(err))
	}
}

// ifcsFor returns the iFCs of the service profile serving impu, with the
// shared iFC sets it references (TS 29.228 §6.6.3).
func (s *Server) ifcsFor(p *userdata.IMSSubscription, impu string) []userdata.InitialFilterCriteria {
	if p == nil {
		return nil
	}
	sp, _ := p.ProfileFor(impu)
	return s.profileIFCs(sp, impu)
}

// profileIFCs returns the iFCs of service profile sp (nil: none) with the
// shared iFC sets it references (TS 29.228 §6.6.3), in a new slice; impu
// is the served user, for the warning about an unknown set.
func (s *Server) profileIFCs(sp *userdata.ServiceProfile, impu string) []userdata.InitialFilterCriteria {
	if sp == nil {
		return nil
	}
	out := append([]userdata.InitialFilterCriteria(nil), sp.InitialFilterCriteria...)
	for _, id := range sp.SharedIFCSetIDs {
		set, ok := s.sess.shared[id]
		if !ok {
			s.log.Warn("profile references an unknown shared iFC set", zap.Uint32("set", id), zap.String("impu", impu))
			continue
		}
		out = append(out, set...)
	}
	return out
}

// originating serves a request that came in on our Service-Route
// (TS 24.229 §5.4.3.2): served user from P-Asserted-Identity (From only if
// configured), registered and not barred, then the originating iFCs, then
// the target.
func (s *Server) originating(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	var ids []string
	pai, err := imsheader.GetPAssertedIdentity(req)
	if err != nil {
		_ = t.Respond(400, "Bad Request - malformed P-Asserted-Identity")
		return
	}
	for _, n := range pai {
		ids = append(ids, n.URI)
	}
	if len(ids) == 0 {
		if !s.cfg.OrigIdentityFromHeader || req.From() == nil {
			_ = t.Respond(403, "Forbidden - no P-Asserted-Identity")
			return
		}
		ids = append(ids, req.From().Address.String())
	}
	var u binding.Served
	found := false
	for _, id := range ids {
		if x, ok := s.reg.Served(id); ok {
			u, found = x, true
			break
		}
	}
	switch {
	case !found || !u.Registered:
		s.log.Info("originating request from an unregistered user", zap.Strings("identity", ids), zap.String("method", string(req.Method)))
		_ = t.Respond(403, "Forbidden - originating user not registered")
		return
	case u.Barred:
		_ = t.Respond(403, "Forbidden - public identity barred")
		return
	}
	st := &iscState{served: u.IMPU, sescase: userdata.SessionCaseOriginating, registered: true,
		ifcs: s.ifcsFor(u.Profile, u.IMPU), after: math.MinInt}
	s.runISC(ctx, t, st)
}

// terminating serves a request for a user of this S-CSCF (TS 24.229
// §5.4.3.3): registered → terminating-registered iFCs, then the contacts;
// not registered here → SAR UNREGISTERED_USER, terminating-unregistered
// iFCs, then 480; unknown → 404.
func (s *Server) terminating(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	target := req.Recipient.String()
	u, ok := s.reg.Served(target)
	if ok && u.Registered {
		if u.Barred {
			_ = t.Respond(404, "Not Found - public identity barred")
			return
		}
		st := &iscState{served: u.IMPU, sescase: userdata.SessionCaseTerminatingRegistered, registered: true,
			ifcs: s.ifcsFor(u.Profile, u.IMPU), after: math.MinInt}
		s.runISC(ctx, t, st)
		return
	}
	if !s.isHome(req.Recipient) {
		_ = t.Respond(404, "Not Found - not a user of this network")
		return
	}
	impu := binding.CanonURI(target)
	profile, ok := s.reg.AssignUnregistered(ctx, t, impu)
	if !ok {
		return
	}
	if profile != nil {
		if _, pi := profile.ProfileFor(impu); pi != nil && bool(pi.BarringIndication) {
			_ = t.Respond(404, "Not Found - public identity barred")
			return
		}
	}
	st := &iscState{served: impu, sescase: userdata.SessionCaseTerminatingUnregistered, registered: false,
		ifcs: s.ifcsFor(profile, impu), after: math.MinInt}
	s.runISC(ctx, t, st)
}

// resumeISC continues the chain of an ODI token with the request the AS
// sent back (TS 24.229 §5.4.3.2 step 4 / §5.4.3.3).
func (s *Server) resumeISC(ctx context.Context, t *sipproxy.Txn, token string) {
	e := s.sess.odi.get(token, time.Now())
	if e == nil {
		_ = t.Respond(403, "Forbidden - unknown or expired original dialog identifier")
		return
	}
	e.returned.Store(true)
	st := e.st
	s.runISC(ctx, t, &st)
}

// runISC sends the request to the AS of each matching iFC in priority order
// (TS 23.218 §6) and, when the chain is done, routes it on.
func (s *Server) runISC(ctx context.Context, t *sipproxy.Txn, st *iscState) {
	req := t.Request()
	for len(st.ifcs) > 0 {
		r := ifc.FromSIP(req, st.sescase)
		r.Registered = st.registered
		f, ok := s.sess.eval.Next(st.ifcs, r, st.after)
		if !ok {
			break
		}
		st.after = f.Priority
		if s.sendToAS(ctx, t, st, f) {
			return
		}
	}
	imsheader.RemoveHeaders(req, imsheader.HeaderPServedUser)
	switch {
	case st.orig():
		s.routeToTarget(ctx, t)
	case !s.isServedTarget(req.Recipient, st.served):
		// An AS retargeted the request (TS 24.229 §5.4.3.3 step 8).
		s.routeToTarget(ctx, t)
	case st.registered:
		s.deliver(ctx, t, st.served)
	default:
		_ = t.Respond(480, "Temporarily Unavailable")
	}
}

func (s *Server) isServedTarget(ru sip.Uri, served string) bool {
	k := binding.CanonURI(ru.String())
	if k == served {
		return true
	}
	return s.reg.SameSet(k, served)
}

// sendToAS forwards the request to the AS of f with the ODI route and
// P-Served-User (RFC 5502). It reports true when the request is answered
// (by the AS, by whatever the AS sent it on to, or by default handling
// SESSION_TERMINATED) and false when the chain goes on without this AS
// (SESSION_CONTINUED after a failure).
func (s *Server) sendToAS(ctx context.Context, t *sipproxy.Txn, st *iscState, f *userdata.InitialFilterCriteria) bool {
	req := t.Request()
	name := f.ApplicationServer.ServerName
	asURI, err := routeURI(name)
	if err != nil {
		return s.asFailed(t, f, "has an unusable Server-Name", 500)
	}
	e := &odiEntry{token: newToken(), st: *st, as: name, expires: time.Now().Add(s.cfg.ODILifetime)}
	s.sess.odi.add(e)
	odi := sip.Uri{Scheme: "sip", User: odiPrefix + e.token, Host: s.cfg.SIPHost, Port: s.SIPAddr().Port, UriParams: sip.NewParams()}
	odi.UriParams.Add("lr", "")

	sescase, regstate := "term", "reg"
	if st.orig() {
		sescase = "orig"
	}
	if !st.registered {
		regstate = "unreg"
	}
	psu := imsheader.PServedUser{NameAddr: imsheader.NameAddr{URI: st.served}}
	psu.Params.Set("sescase", sescase)
	psu.Params.Set("regstate", regstate)
	imsheader.SetPServedUser(req, psu)

	asCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var answered, silent atomic.Bool
	timer := time.AfterFunc(s.cfg.ASTimeout, func() {
		if !e.returned.Load() && !answered.Load() {
			silent.Store(true)
			cancel()
		}
	})
	res, ferr := t.Forward(asCtx, sipproxy.ForwardOptions{RecordRoute: dialogForming(req.Method),
		OnResponse: func(sipproxy.Target, *sip.Response) { answered.Store(true) }},
		sipproxy.Target{Route: []sip.Uri{asURI, odi}})
	timer.Stop()
	if t.Canceled() || ctx.Err() != nil {
		return true
	}
	if e.returned.Load() {
		s.sess.isc.WithLabelValues("returned").Inc()
		return true
	}
	switch {
	case silent.Load():
		return s.asFailed(t, f, fmt.Sprintf("did not answer within %v", s.cfg.ASTimeout), 408)
	case errors.Is(ferr, sipproxy.ErrTimeout):
		return s.asFailed(t, f, "timed out", 408)
	case ferr != nil:
		return s.asFailed(t, f, "unreachable ("+ferr.Error()+")", 500)
	case res != nil && (res.StatusCode == 408 || res.StatusCode >= 500 && res.StatusCode < 600):
		return s.asFailed(t, f, fmt.Sprintf("answered %d", res.StatusCode), 500)
	}
	s.sess.isc.WithLabelValues("answered").Inc()
	s.sess.odi.remove(e.token)
	return true
}

// asFailed applies the DefaultHandling of f (TS 24.229 §5.4.3.2 step 4 c,
// TS 29.228 Annex B.2.3) after its AS failed: SESSION_CONTINUED goes on
// with the next iFC; SESSION_TERMINATED answers code with a Warning naming
// the AS.
func (s *Server) asFailed(t *sipproxy.Txn, f *userdata.InitialFilterCriteria, why string, code int) bool {
	as := f.ApplicationServer.ServerName
	if f.ApplicationServer.Handling() == userdata.SessionContinued {
		s.sess.isc.WithLabelValues("continued").Inc()
		s.log.Info("AS failed; SESSION_CONTINUED", zap.String("as", as), zap.String("why", why), zap.Int("priority", f.Priority))
		return false
	}
	s.sess.isc.WithLabelValues("terminated").Inc()
	s.log.Info("AS failed; SESSION_TERMINATED", zap.String("as", as), zap.String("why", why), zap.Int("priority", f.Priority))
	reason := "Server Internal Error"
	if code == 408 {
		reason = "Request Timeout"
	}
	_ = t.Respond(code, reason, s.warning("application server "+as+" "+why))
	return true
}

// isHome reports whether u is a target of the home network: a sip:/sips:
// URI of the home domain, or a tel: URI (or sip: with user=phone) when
// TelURIs is TelHome.
func (s *Server) isHome(u sip.Uri) bool {
	switch strings.ToLower(u.Scheme) {
	case "tel":
		return s.cfg.TelURIs == TelHome
	case "sip", "sips":
		if u.UriParams != nil {
			if v, ok := u.UriParams.Get("user"); ok && strings.EqualFold(v, "phone") {
				return s.cfg.TelURIs == TelHome
			}
		}
		return strings.EqualFold(u.Host, s.cfg.Domain)
	}
	return false
}

// routeToTarget sends an originating request (after its iFCs) on: home
// targets to the I-CSCF, others to the breakout route, else 404
// (TS 24.229 §5.4.3.2 step 10).
func (s *Server) routeToTarget(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	var next sip.Uri
	switch {
	case s.isHome(req.Recipient):
		next = s.sess.icscf
	case s.sess.breakout != nil:
		next = *s.sess.breakout
	default:
		_ = t.Respond(404, "Not Found - no route to "+req.Recipient.Host)
		return
	}
	_, _ = t.Forward(ctx, sipproxy.ForwardOptions{RecordRoute: dialogForming(req.Method)},
		sipproxy.Target{Route: []sip.Uri{*next.Clone()}})
}

// deliver forks the request to every contact of impu (TS 24.229 §5.4.3.3
// steps 9-10): Request-URI = contact, Route = the contact's Path,
// P-Called-Party-ID = the original Request-URI. sipproxy CANCELs the other
// INVITE branches on a 2xx.
func (s *Server) deliver(ctx context.Context, t *sipproxy.Txn, impu string) {
	req := t.Request()
	u, ok := s.reg.Served(impu)
	if !ok || !u.Registered {
		_ = t.Respond(480, "Temporarily Unavailable")
		return
	}
	var targets []sipproxy.Target
	for _, c := range u.Contacts {
		var ru sip.Uri
		if err := sip.ParseUri(strings.Trim(c.URI, "<>"), &ru); err != nil {
			s.log.Warn("stored contact does not parse", zap.String("contact", c.URI), zap.Error(err))
			continue
		}
		tg := sipproxy.Target{RequestURI: &ru}
		for _, p := range c.Path {
			entries, err := imsheader.ParsePath(p)
			if err != nil {
				s.log.Warn("stored Path does not parse", zap.String("path", p), zap.Error(err))
				continue
			}
			for _, n := range entries {
				if pu, err := n.SIPURI(); err == nil {
					tg.Route = append(tg.Route, pu)
				}
			}
		}
		targets = append(targets, tg)
	}
	if len(targets) == 0 {
		_ = t.Respond(480, "Temporarily Unavailable")
		return
	}
	if len(imsheader.Values(req, "P-Called-Party-ID")) == 0 {
		imsheader.SetHeader(req, "P-Called-Party-ID", "<"+req.Recipient.String()+">")
	}
	_, _ = t.Forward(ctx, sipproxy.ForwardOptions{RecordRoute: dialogForming(req.Method)}, targets...)
}
