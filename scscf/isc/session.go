// Package isc is the S-CSCF's session routing with iFC evaluation and ISC
// towards application servers (TS 24.229 §5.4.3, TS 23.218 §6, RFC 5502;
// session.go), the shared iFC sets (TS 29.228 §6.6.3; sharedifc.go) and
// third-party registration (TS 24.229 §5.4.1.7; thirdparty.go).
//
// It reads the registrar through the Registrar interface and sends from
// the S-CSCF's SIP socket (Sender); reg-event SUBSCRIBEs go to the
// RegEventHandler installed with SetRegEventHandler.
package isc

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

	"github.com/imscore/imscore/pkg/gruu"
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
//     user of P-Asserted-Identity, who must be registered.
//   - popped entry with the "orig" parameter (from the I-CSCF or an AS,
//     TS 24.229 §5.3.2.1A): originating for the served user of
//     P-Served-User or P-Asserted-Identity, registered or not
//     (ORIGINATING_UNREGISTERED, SAR UNREGISTERED_USER).
//   - anything else (our Server-Name as Route from the I-CSCF, or no Route):
//     terminating for the Request-URI.

// odiPrefix starts the user part of the ODI Route entry of ISC requests.
const odiPrefix = "odi-"

// origParam is the Route URI parameter of an originating request sent by
// the I-CSCF or an AS (TS 24.229 §5.3.2.1A, §5.4.3.2).
const origParam = "orig"

// sescase is the session case of an iFC chain.
type iscState struct {
	served     string // canonical IMPU of the served user
	sescase    userdata.SessionCase
	registered bool
	ifcs       []userdata.InitialFilterCriteria
	after      int // Priority of the last iFC used
	// charging is the served user's P-Charging-Function-Addresses
	// (from the HSS's Charging-Information), empty when unknown.
	charging imsheader.PChargingFunctionAddresses
	// origIOI is, in a terminating chain, the orig-ioi the request
	// arrived with (type 2, the originating network's), returned in the
	// responses (TS 24.229 §5.4.3.3; see charging.go).
	origIOI string
}

// orig reports an originating session case (ORIGINATING,
// ORIGINATING_UNREGISTERED, ORIGINATING_CDIV): the request goes to its
// target when the chain is done.
func (st *iscState) orig() bool {
	switch st.sescase {
	case userdata.SessionCaseOriginating, userdata.SessionCaseOriginatingUnregistered, userdata.SessionCaseOriginatingCDIV:
		return true
	}
	return false
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

// Values of Config.TelURIs.
const (
	TelHome     = "home"
	TelBreakout = "breakout"
)

// Config configures a Router; the S-CSCF fills it from its own
// configuration (scscf.Config documents the values and defaults).
type Config struct {
	// Domain is the home domain; SIPHost the S-CSCF's host in ODI routes
	// and Call-IDs; ServerName its Server-Name (From and Contact of
	// third-party REGISTERs).
	Domain, SIPHost, ServerName string
	// ICSCF and Breakout are the loose Routes of originating requests to
	// home and to other targets; TelURIs is TelHome or TelBreakout.
	ICSCF, Breakout, TelURIs string
	// SharedIFCSetsFile names the shared iFC sets file; "" means none.
	SharedIFCSetsFile string
	// OrigIdentityFromHeader serves an originating request without
	// P-Asserted-Identity as its From identity.
	OrigIdentityFromHeader bool
	// ASTimeout is how long an AS may stay silent; ODILifetime how long
	// an ODI token routes a request back into the iFC chain.
	ASTimeout, ODILifetime time.Duration
	// GRUU opens the temporary GRUUs of Request-URIs (gruu.go); nil:
	// they get 404.
	GRUU *gruu.Codec
	// Warning builds the Warning header of an error answer.
	Warning func(text string) sip.Header

	Logger   *zap.Logger
	Registry prometheus.Registerer
}

// Registrar is what session routing and third-party registration read of
// the registrar (*registrar.Registrar implements it).
type Registrar interface {
	// Served is what the registrar knows of impu; false: no registration
	// holds it.
	Served(impu string) (binding.Served, bool)
	// SameSet reports whether a and b are IMPUs of one registered set.
	SameSet(a, b string) bool
	// AssignUnregistered is SAR UNREGISTERED_USER for impu (TS 24.229
	// §5.4.3.3); on false it has answered t.
	AssignUnregistered(ctx context.Context, t *sipproxy.Txn, impu string) (binding.Unregistered, bool)
	// Profile is the user profile of the set holding impu.
	Profile(impu string) (*userdata.IMSSubscription, bool)
}

// Sender gives the S-CSCF's SIP element, from whose socket the requests
// this package originates leave (third-party REGISTERs); nil until the
// S-CSCF has started.
type Sender interface {
	SIPProxy() *sipproxy.Proxy
}

// RegEventHandler is the reg event notifier (RFC 3680, TS 24.229
// §5.4.2.1) as the session router sees it; *regevent.Notifier implements
// it.
type RegEventHandler interface {
	// Handles reports whether req (any method but REGISTER) is a
	// reg-event SUBSCRIBE for the notifier.
	Handles(req *sip.Request) bool
	// HandleSubscribe answers such a request.
	HandleSubscribe(ctx context.Context, t *sipproxy.Txn)
}

// Router routes the requests other than REGISTER and holds the ISC
// chains in flight (ODI tokens).
type Router struct {
	cfg    Config
	log    *zap.Logger
	reg    Registrar
	sender Sender

	icscf    sip.Uri
	breakout *sip.Uri
	shared   map[uint32][]userdata.InitialFilterCriteria
	eval     *ifc.Evaluator
	odi      odiTable
	requests *prometheus.CounterVec
	isc      *prometheus.CounterVec
	privacy  *prometheus.CounterVec // scscf_privacy_total (privacy.go)

	// regEvent, when set with SetRegEventHandler, is asked first about
	// every request (RFC 3680 SUBSCRIBEs).
	regEvent RegEventHandler
}

// SetRegEventHandler installs the reg event notifier; call it before the
// S-CSCF starts. Without one, a reg-event SUBSCRIBE for a registered IMPU
// is answered 489 and an in-dialog request addressed to the S-CSCF 481.
func (s *Router) SetRegEventHandler(h RegEventHandler) { s.regEvent = h }

// New builds the Router: the I-CSCF and breakout routes and the shared
// iFC sets are checked (errors name the flag), its metrics registered.
func New(cfg Config, reg Registrar, sender Sender) (*Router, error) {
	log := cfg.Logger
	ss := &Router{cfg: cfg, log: log, reg: reg, sender: sender,
		eval: ifc.NewEvaluator(func(err error) { log.Warn("iFC not evaluable", zap.Error(err)) }),
		odi:  odiTable{m: map[string]*odiEntry{}}}
	var err error
	if ss.icscf, err = RouteURI(cfg.ICSCF); err != nil {
		return nil, fmt.Errorf("icscf: %w", err)
	}
	if cfg.Breakout != "" {
		b, err := RouteURI(cfg.Breakout)
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
	ss.privacy = newPrivacyCounter()
	for _, c := range []prometheus.Collector{ss.requests, ss.isc, ss.privacy, odi} {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	return ss, nil
}

// Sweep forgets the ODI tokens older than ODILifetime (the S-CSCF's
// timer calls it).
func (s *Router) Sweep(now time.Time) { s.odi.sweep(now) }

func (s *Router) warning(text string) sip.Header { return s.cfg.Warning(text) }

// RouteURI parses a sip:/sips: URI used as a loose Route (I-CSCF, breakout,
// AS Server-Name) and adds ;lr when missing.
func RouteURI(s string) (sip.Uri, error) {
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

// Handle serves every request except REGISTER.
func (s *Router) Handle(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	popped := t.RemovedRoute()
	method := string(req.Method)
	if s.regEvent != nil && !req.IsAck() && s.regEvent.Handles(req) {
		s.requests.WithLabelValues("reg_event", method).Inc()
		s.regEvent.HandleSubscribe(ctx, t)
		return
	}
	if req.IsAck() || hasToTag(req) {
		s.requests.WithLabelValues("in_dialog", method).Inc()
		s.inDialog(ctx, t, popped)
		return
	}
	switch {
	case popped != nil && strings.HasPrefix(popped.User, odiPrefix):
		s.requests.WithLabelValues("odi", method).Inc()
		s.resumeISC(ctx, t, strings.TrimPrefix(popped.User, odiPrefix))
	case binding.IsRegEvent(req) && (s.servesRegistered(req.Recipient) || t.Proxy().IsSelf(req.Recipient)):
		// No notifier installed (SetRegEventHandler).
		_ = t.Respond(489, "Bad Event - reg event package not available here")
	case popped != nil && popped.UriParams != nil && popped.UriParams.Has(origParam):
		// From the I-CSCF or an AS (TS 24.229 §5.4.3.2): the served user
		// may be unregistered.
		s.requests.WithLabelValues("orig", method).Inc()
		s.originating(ctx, t, true)
	case popped != nil && popped.User == binding.ServiceRouteUser:
		s.requests.WithLabelValues("orig", method).Inc()
		s.originating(ctx, t, false)
	case req.Method == sip.OPTIONS && (req.Recipient.User == "" && t.Proxy().IsSelf(req.Recipient)):
		_ = t.Respond(200, "OK", sip.NewHeader("Allow", allowed))
	default:
		s.requests.WithLabelValues("term", method).Inc()
		s.terminating(ctx, t)
	}
}

const allowed = "INVITE, ACK, CANCEL, BYE, REGISTER, OPTIONS, MESSAGE, SUBSCRIBE, NOTIFY, UPDATE, PRACK, INFO, REFER, PUBLISH"

func (s *Router) servesRegistered(u sip.Uri) bool {
	_, ok := s.reg.Served(u.String())
	return ok
}

// inDialog forwards a request with a To tag (and every ACK) along its Route
// (RFC 3261 §16.12). Own entries left on top (the same S-CSCF Record-Routed
// on the originating and the terminating side) are removed first. A request
// addressed to the S-CSCF itself goes to the reg-event hook or gets 481.
func (s *Router) inDialog(ctx context.Context, t *sipproxy.Txn, popped *sip.Uri) {
	req := t.Request()
	for {
		rt := req.Route()
		if rt == nil || !t.Proxy().IsSelf(rt.Address) {
			break
		}
		req.RemoveHeader("Route")
		if popped == nil {
			popped = rt.Address.Clone()
		}
	}
	if req.Route() == nil && t.Proxy().IsSelf(req.Recipient) {
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
	s.retargetGRUU(req)
	if _, err := t.Forward(ctx, sipproxy.ForwardOptions{}); err != nil && req.IsAck() {
		s.log.Debug("ACK not forwarded", zap.Error(err))
	}
}

// ifcsFor returns the iFCs of the service profile serving impu, with the
// shared iFC sets it references (TS 29.228 §6.6.3).
func (s *Router) ifcsFor(p *userdata.IMSSubscription, impu string) []userdata.InitialFilterCriteria {
	if p == nil {
		return nil
	}
	sp, _ := p.ProfileFor(impu)
	return s.profileIFCs(sp, impu)
}

// profileIFCs returns the iFCs of service profile sp (nil: none) with the
// shared iFC sets it references (TS 29.228 §6.6.3), in a new slice; impu
// is the served user, for the warning about an unknown set.
func (s *Router) profileIFCs(sp *userdata.ServiceProfile, impu string) []userdata.InitialFilterCriteria {
	if sp == nil {
		return nil
	}
	out := append([]userdata.InitialFilterCriteria(nil), sp.InitialFilterCriteria...)
	for _, id := range sp.SharedIFCSetIDs {
		set, ok := s.shared[id]
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
// the target. With viaOrig (the "orig" Route parameter of the I-CSCF or an
// AS) P-Served-User names the served user first, and a home user who is
// not registered is served too: SAR UNREGISTERED_USER, then the
// ORIGINATING_UNREGISTERED iFCs (TS 24.229 §5.4.3.2, TS 29.228 §6.1.2).
func (s *Router) originating(ctx context.Context, t *sipproxy.Txn, viaOrig bool) {
	req := t.Request()
	ids, ok := s.originatingIdentities(t, viaOrig)
	if !ok {
		return
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
	case (!found || !u.Registered) && viaOrig:
		s.originatingUnregistered(ctx, t, ids[0])
		return
	case !found || !u.Registered:
		s.log.Info("originating request from an unregistered user", zap.Strings("identity", ids), zap.String("method", string(req.Method)))
		_ = t.Respond(403, "Forbidden - originating user not registered")
		return
	case u.Barred:
		_ = t.Respond(403, "Forbidden - public identity barred")
		return
	}
	st := &iscState{served: u.IMPU, sescase: userdata.SessionCaseOriginating, registered: true,
		ifcs: s.ifcsFor(u.Profile, u.IMPU), after: math.MinInt, charging: u.Charging}
	s.runISC(ctx, t, st)
}

// originatingIdentities returns the candidate served identities of an
// originating request, at least one: P-Served-User when viaOrig (RFC 5502;
// an AS originating on behalf of a user), then P-Asserted-Identity, then
// From when OrigIdentityFromHeader is set. When it reports false it has
// answered t (400 for a malformed header, 403 without an identity).
func (s *Router) originatingIdentities(t *sipproxy.Txn, viaOrig bool) ([]string, bool) {
	req := t.Request()
	var ids []string
	if viaOrig {
		psu, err := imsheader.GetPServedUser(req)
		if err != nil {
			_ = t.Respond(400, "Bad Request - malformed P-Served-User")
			return nil, false
		}
		if psu != nil {
			ids = append(ids, psu.URI)
		}
	}
	pai, err := imsheader.GetPAssertedIdentity(req)
	if err != nil {
		_ = t.Respond(400, "Bad Request - malformed P-Asserted-Identity")
		return nil, false
	}
	for _, n := range pai {
		ids = append(ids, n.URI)
	}
	if len(ids) == 0 {
		if !s.cfg.OrigIdentityFromHeader || req.From() == nil {
			_ = t.Respond(403, "Forbidden - no P-Asserted-Identity")
			return nil, false
		}
		ids = append(ids, req.From().Address.String())
	}
	return ids, true
}

// originatingUnregistered serves an originating request of a home user
// not registered here (TS 24.229 §5.4.3.2, session case
// ORIGINATING_UNREGISTERED): SAR UNREGISTERED_USER for served, 403 when
// served is barred or not of the home network, then its
// ORIGINATING_UNREGISTERED iFCs and the target.
func (s *Router) originatingUnregistered(ctx context.Context, t *sipproxy.Txn, served string) {
	var su sip.Uri
	if err := sip.ParseUri(served, &su); err != nil || !s.isHome(su) {
		_ = t.Respond(403, "Forbidden - originating user not served by this network")
		return
	}
	impu := binding.CanonURI(served)
	un, ok := s.reg.AssignUnregistered(ctx, t, impu)
	if !ok {
		return
	}
	if un.Profile != nil {
		if _, pi := un.Profile.ProfileFor(impu); pi != nil && bool(pi.BarringIndication) {
			_ = t.Respond(403, "Forbidden - public identity barred")
			return
		}
	}
	st := &iscState{served: impu, sescase: userdata.SessionCaseOriginatingUnregistered, registered: false,
		ifcs: s.ifcsFor(un.Profile, impu), after: math.MinInt, charging: un.Charging}
	s.runISC(ctx, t, st)
}

// terminating serves a request for a user of this S-CSCF (TS 24.229
// §5.4.3.3): registered → terminating-registered iFCs, then the contacts;
// not registered here → SAR UNREGISTERED_USER, terminating-unregistered
// iFCs, then 480; unknown → 404.
func (s *Router) terminating(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	if gruu.IsTemp(req.Recipient) {
		s.terminatingTempGRUU(ctx, t)
		return
	}
	target := req.Recipient.String()
	u, ok := s.reg.Served(target)
	if ok && u.Registered {
		if u.Barred {
			_ = t.Respond(404, "Not Found - public identity barred")
			return
		}
		st := &iscState{served: u.IMPU, sescase: userdata.SessionCaseTerminatingRegistered, registered: true,
			ifcs: s.ifcsFor(u.Profile, u.IMPU), after: math.MinInt, charging: u.Charging}
		st.origIOI = receivedOrigIOI(req)
		s.runISC(ctx, t, st)
		return
	}
	if !s.isHome(req.Recipient) {
		_ = t.Respond(404, "Not Found - not a user of this network")
		return
	}
	impu := binding.CanonURI(target)
	un, ok := s.reg.AssignUnregistered(ctx, t, impu)
	if !ok {
		return
	}
	if un.Profile != nil {
		if _, pi := un.Profile.ProfileFor(impu); pi != nil && bool(pi.BarringIndication) {
			_ = t.Respond(404, "Not Found - public identity barred")
			return
		}
	}
	st := &iscState{served: impu, sescase: userdata.SessionCaseTerminatingUnregistered, registered: false,
		ifcs: s.ifcsFor(un.Profile, impu), after: math.MinInt, charging: un.Charging}
	st.origIOI = receivedOrigIOI(req)
	s.runISC(ctx, t, st)
}

// resumeISC continues the chain of an ODI token with the request the AS
// sent back (TS 24.229 §5.4.3.2 step 4 / §5.4.3.3).
func (s *Router) resumeISC(ctx context.Context, t *sipproxy.Txn, token string) {
	e := s.odi.get(token, time.Now())
	if e == nil {
		_ = t.Respond(403, "Forbidden - unknown or expired original dialog identifier")
		return
	}
	e.returned.Store(true)
	st := e.st
	s.runISC(ctx, t, &st)
}

// runISC sends the request to the AS of each matching iFC in priority order
// (TS 23.218 §6) and, when the chain is done, routes it on. A terminating
// request whose Request-URI an AS changed to another user (call
// diversion) leaves the terminating chain (TS 24.229 §5.4.3.3 step 4) and
// gets the served user's ORIGINATING_CDIV iFCs (TS 24.229 §5.4.3.3,
// TS 29.228 Annex B, RFC 8498) before it goes to its new target.
func (s *Router) runISC(ctx context.Context, t *sipproxy.Txn, st *iscState) {
	req := t.Request()
	for {
		if !st.orig() && !s.isServedTarget(req.Recipient, st.served) {
			st = &iscState{served: st.served, sescase: userdata.SessionCaseOriginatingCDIV,
				registered: st.registered, ifcs: st.ifcs, after: math.MinInt, charging: st.charging}
		}
		if len(st.ifcs) == 0 {
			break
		}
		r := ifc.FromSIP(req, st.sescase)
		r.Registered = st.registered
		f, ok := s.eval.Next(st.ifcs, r, st.after)
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
	case st.registered:
		s.deliver(ctx, t, st.served, st.origIOI)
	default:
		_ = t.Respond(480, "Temporarily Unavailable")
	}
}

func (s *Router) isServedTarget(ru sip.Uri, served string) bool {
	k := binding.CanonURI(ru.String())
	if t, ok := s.openTempGRUU(ru); ok {
		k = binding.CanonURI(t.IMPU)
	}
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
func (s *Router) sendToAS(ctx context.Context, t *sipproxy.Txn, st *iscState, f *userdata.InitialFilterCriteria) bool {
	req := t.Request()
	name := f.ApplicationServer.ServerName
	asURI, err := RouteURI(name)
	if err != nil {
		return s.asFailed(t, f, "has an unusable Server-Name", 500)
	}
	e := &odiEntry{token: newToken(), st: *st, as: name, expires: time.Now().Add(s.cfg.ODILifetime)}
	s.odi.add(e)
	odi := sip.Uri{Scheme: "sip", User: odiPrefix + e.token, Host: s.cfg.SIPHost, Port: t.Proxy().Addr("udp").Port, UriParams: sip.NewParams()}
	odi.UriParams.Add("lr", "")

	regstate := "reg"
	if !st.registered {
		regstate = "unreg"
	}
	psu := imsheader.PServedUser{NameAddr: imsheader.NameAddr{URI: st.served}}
	switch {
	case st.sescase == userdata.SessionCaseOriginatingCDIV:
		psu.Params.SetFlag("orig-cdiv") // RFC 8498 §3
	case st.orig():
		psu.Params.Set("sescase", "orig")
	default:
		psu.Params.Set("sescase", "term")
	}
	psu.Params.Set("regstate", regstate)
	imsheader.SetPServedUser(req, psu)
	s.chargingTowardsAS(req, st)

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
		OnResponse: func(_ sipproxy.Target, res *sip.Response) { answered.Store(true); s.chargingFromAS(st, req, res) }},
		sipproxy.Target{Route: []sip.Uri{asURI, odi}})
	timer.Stop()
	if t.Canceled() || ctx.Err() != nil {
		return true
	}
	if e.returned.Load() {
		s.isc.WithLabelValues("returned").Inc()
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
	s.isc.WithLabelValues("answered").Inc()
	s.odi.remove(e.token)
	return true
}

// asFailed applies the DefaultHandling of f (TS 24.229 §5.4.3.2 step 4 c,
// TS 29.228 Annex B.2.3) after its AS failed: SESSION_CONTINUED goes on
// with the next iFC; SESSION_TERMINATED answers code with a Warning naming
// the AS (a timeout's 408 is 504 to any method but INVITE, RFC 4320 §4.1).
func (s *Router) asFailed(t *sipproxy.Txn, f *userdata.InitialFilterCriteria, why string, code int) bool {
	as := f.ApplicationServer.ServerName
	if f.ApplicationServer.Handling() == userdata.SessionContinued {
		s.isc.WithLabelValues("continued").Inc()
		s.log.Info("AS failed; SESSION_CONTINUED", zap.String("as", as), zap.String("why", why), zap.Int("priority", f.Priority))
		return false
	}
	s.isc.WithLabelValues("terminated").Inc()
	s.log.Info("AS failed; SESSION_TERMINATED", zap.String("as", as), zap.String("why", why), zap.Int("priority", f.Priority))
	reason := "Server Internal Error"
	if code == 408 && t.Request().Method != sip.INVITE {
		// No 408 to a non-INVITE (RFC 4320 §4.1).
		code = 504
	}
	switch code {
	case 408:
		reason = "Request Timeout"
	case 504:
		reason = "Server Time-out"
	}
	_ = t.Respond(code, reason, s.warning("application server "+as+" "+why))
	return true
}

// isHome reports whether u is a target of the home network: a sip:/sips:
// URI of the home domain, or a tel: URI (or sip: with user=phone) when
// TelURIs is TelHome.
func (s *Router) isHome(u sip.Uri) bool {
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
func (s *Router) routeToTarget(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	var next sip.Uri
	switch {
	case s.isHome(req.Recipient):
		next = s.icscf
	case s.breakout != nil:
		next = *s.breakout
		// Leaving the home network: its charging functions stay inside
		// (TS 24.229 §5.4.3.2, RFC 7315 §5.5).
		imsheader.RemoveHeaders(req, imsheader.HeaderPChargingFunctionAddresses)
	default:
		_ = t.Respond(404, "Not Found - no route to "+req.Recipient.Host)
		return
	}
	if !s.exitPrivacy(t, !s.isHome(req.Recipient)) { // not home: --breakout
		return
	}
	s.chargingTowardsTerminatingNetwork(req)
	_, _ = t.Forward(ctx, sipproxy.ForwardOptions{RecordRoute: dialogForming(req.Method), Consume: true},
		sipproxy.Target{Route: []sip.Uri{*next.Clone()}})
}

// deliver forks the request to the contacts of impu that the caller's
// preferences select (Accept-Contact, RFC 3841; every contact without
// them) (TS 24.229 §5.4.3.3 steps 9-10): Request-URI = contact, Route = the contact's Path,
// P-Called-Party-ID = the original Request-URI; origIOI is the orig-ioi the
// request arrived with (charging.go). sipproxy CANCELs the other INVITE
// branches on a 2xx.
func (s *Router) deliver(ctx context.Context, t *sipproxy.Txn, impu, origIOI string) {
	req := t.Request()
	u, ok := s.reg.Served(impu)
	if !ok || !u.Registered {
		_ = t.Respond(480, "Temporarily Unavailable")
		return
	}
	contacts, ok := s.gruuContacts(t, u.Contacts)
	if !ok {
		return
	}
	var targets []sipproxy.Target
	for _, c := range preferredContacts(req, contacts) {
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
	onRes := s.chargingTowardsPCSCF(req, u.Charging, origIOI)
	// Its last forward: sent without a copy when it has one target.
	_, _ = t.Forward(ctx, sipproxy.ForwardOptions{RecordRoute: dialogForming(req.Method), OnResponse: onRes, Consume: true}, targets...)
}
