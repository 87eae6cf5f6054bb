package scscf

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/binding"
)

// handle is the sipproxy handler: REGISTER goes to the registrar, every
// other request to session routing (session.go).
func (s *Server) handle(ctx context.Context, t *sipproxy.Txn) {
	if t.Request().Method == sip.REGISTER {
		s.handleRegister(ctx, t)
		return
	}
	s.handleSession(ctx, t)
}

// reqContact is one Contact of a REGISTER with its requested expiry.
type reqContact struct {
	c       binding.Contact
	expires time.Duration
}

// parseContacts reads the Contact headers and the expiry each asks for
// (RFC 3261 §10.2.1.1, §10.3 step 6); wildcard reports "Contact: *".
func (s *Server) parseContacts(req *sip.Request) (list []reqContact, wildcard bool, minTooBrief bool, err error) {
	var hdrExp *time.Duration
	if h := req.GetHeader("Expires"); h != nil {
		n, perr := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if perr != nil {
			return nil, false, false, fmt.Errorf("bad Expires %q", h.Value())
		}
		d := time.Duration(n) * time.Second
		hdrExp = &d
	}
	for _, h := range req.GetHeaders("Contact") {
		ch, ok := h.(*sip.ContactHeader)
		if !ok {
			return nil, false, false, fmt.Errorf("bad Contact %q", h.Value())
		}
		if ch.Address.Wildcard {
			wildcard = true
			continue
		}
		params := ch.Params.Clone()
		exp := s.cfg.DefaultExpires
		if hdrExp != nil {
			exp = *hdrExp
		}
		if v, ok := params.Get("expires"); ok {
			n, perr := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if perr != nil {
				return nil, false, false, fmt.Errorf("bad Contact expires %q", v)
			}
			exp = time.Duration(n) * time.Second
		}
		params.Remove("expires")
		val := (&sip.ContactHeader{DisplayName: ch.DisplayName, Address: ch.Address, Params: params}).Value()
		rc := reqContact{c: binding.Contact{URI: ch.Address.String(), Value: val}, expires: exp}
		if v, ok := params.Get("+sip.instance"); ok {
			rc.c.Instance = imsheader.Unquote(v)
		}
		if v, ok := params.Get("reg-id"); ok {
			rc.c.RegID = v
		}
		if v, ok := params.Get("q"); ok {
			rc.c.Q = v
		}
		if exp > 0 && exp < s.cfg.MinExpires {
			minTooBrief = true
		}
		if exp > s.cfg.MaxExpires {
			rc.expires = s.cfg.MaxExpires
		}
		list = append(list, rc)
	}
	if wildcard {
		if len(list) > 0 || hdrExp == nil || *hdrExp != 0 {
			return nil, false, false, errors.New(`"Contact: *" needs Expires: 0 and no other Contact`)
		}
	}
	return list, wildcard, minTooBrief, nil
}

func isProtected(v string) bool {
	switch strings.ToLower(v) {
	case digest.IntegrityYes, digest.IntegrityIPsec3GPP, digest.IntegrityTLSYes, digest.IntegrityIPAssocYes:
		return true
	}
	return false
}

// impiFromIMPU derives the IMPI for a REGISTER without credentials
// (TS 23.003 §13.3 style: user@host of a sip: IMPU).
func impiFromIMPU(impu string) string {
	c := binding.CanonURI(impu)
	if i := strings.IndexByte(c, ':'); i >= 0 {
		c = c[i+1:]
	}
	return c
}

// regRequest is one REGISTER on its way through the stages of
// handleRegister.
type regRequest struct {
	t    *sipproxy.Txn
	req  *sip.Request
	impu string         // To, in comparison form
	impi string         // Authorization username, else derived from impu
	cred *digest.Header // the Authorization for the home realm (else any); nil without one
	// contacts are the Contacts with their requested expiries; wildcard
	// is "Contact: *"; dereg: every Contact (or *) asks for expiry 0.
	contacts []reqContact
	wildcard bool
	dereg    bool
	// rec is the registration of impu before this REGISTER, nil if none;
	// looked up under the IMPI's lock.
	rec *record
}

// handleRegister serves a REGISTER (TS 24.229 §5.4.1.2): readRegister,
// then, under the lock of the IMPI, authenticate (401 challenge or
// checked response) and register: assign (SAR), bind, answer (200).
func (s *Server) handleRegister(ctx context.Context, t *sipproxy.Txn) {
	r, ok := s.readRegister(t)
	if !ok {
		return
	}
	unlock := s.locks.Lock(r.impi)
	defer unlock()
	r.rec = s.reg.lookup(r.impu)
	if !s.authenticate(ctx, r) {
		return
	}
	s.register(ctx, r)
}

// readRegister reads what the stages need from a REGISTER (RFC 3261
// §10.3 steps 1-6) and answers the ones that go no further: 400 without
// To, Call-ID or CSeq, or with a malformed Contact, Expires or
// Authorization; 423 with Min-Expires for a non-zero expiry below
// MinExpires. The IMPI is the Authorization username, else derived from
// the To IMPU (TS 24.229 §5.4.1.2.1).
func (s *Server) readRegister(t *sipproxy.Txn) (*regRequest, bool) {
	req := t.Request()
	to := req.To()
	if to == nil || req.CallID() == nil || req.CSeq() == nil {
		_ = t.Respond(400, "Bad Request - missing To, Call-ID or CSeq")
		return nil, false
	}
	r := &regRequest{t: t, req: req, impu: binding.CanonURI(to.Address.String())}
	var tooBrief bool
	var err error
	r.contacts, r.wildcard, tooBrief, err = s.parseContacts(req)
	if err != nil {
		_ = t.Respond(400, "Bad Request - "+err.Error())
		return nil, false
	}
	if tooBrief {
		_ = t.Respond(423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(int(s.cfg.MinExpires/time.Second))))
		return nil, false
	}
	r.cred, err = digest.GetAuthorization(req, s.cfg.Domain)
	if err == nil && r.cred == nil {
		r.cred, err = digest.GetAuthorization(req, "")
	}
	if err != nil {
		_ = t.Respond(400, "Bad Request - malformed Authorization")
		return nil, false
	}
	r.impi = impiFromIMPU(r.impu)
	if r.cred != nil && r.cred.Username() != "" {
		r.impi = r.cred.Username()
	}
	r.dereg = r.wildcard || (len(r.contacts) > 0 && allZero(r.contacts))
	return r, true
}

// authenticate is the authentication stage (TS 24.229 §5.4.1.2.1,
// §5.4.1.2.2, §5.4.1.2.3; TS 33.203 §6.1). It reports true when the
// REGISTER is authenticated and may be registered; otherwise it has
// answered it:
//   - an integrity-protected REGISTER the registration already covers
//     (reauthWaived) is authenticated without a challenge;
//   - auts in the credentials: SQN resynchronisation, a new 401
//     (§5.4.1.2.3, resync);
//   - a response to a nonce issued to this IMPI, unused and younger than
//     NonceLifetime: checked (verify); a wrong one gets 403 and SAR
//     AUTHENTICATION_FAILURE (§5.4.1.2.3);
//   - anything else gets a 401 challenge (§5.4.1.2.1), with stale=TRUE
//     when the nonce answered had expired.
func (s *Server) authenticate(ctx context.Context, r *regRequest) bool {
	cred := r.cred
	if cred == nil {
		s.challenge(ctx, r.t, r.impi, r.impu, "", false, nil)
		return false
	}
	if s.reauthWaived(r) {
		s.metrics.auth.WithLabelValues("integrity_protected").Inc()
		return true
	}
	if cred.AUTS() != "" {
		s.resync(ctx, r.t, cred, r.impi, r.impu)
		return false
	}
	stale := false
	if cred.Nonce() != "" && cred.Response() != "" {
		c := s.auth.lookup(cred.Nonce())
		switch {
		case c == nil || c.impi != r.impi:
			s.metrics.auth.WithLabelValues("unknown_nonce").Inc()
		case time.Since(c.created) > s.cfg.NonceLifetime:
			s.auth.consume(c)
			stale = true
			s.metrics.auth.WithLabelValues("stale_nonce").Inc()
		default:
			ok, why := s.verify(c, cred, r.req)
			if !s.auth.consume(c) {
				s.metrics.auth.WithLabelValues("nonce_reused").Inc()
				break
			}
			if !ok {
				s.metrics.authFailures.WithLabelValues(why).Inc()
				s.log.Info("authentication failed", zapStr("impi", r.impi), zapStr("impu", r.impu), zapStr("cause", why))
				s.sarAsync(r.impi, r.impu, diameter.SATAuthenticationFailure)
				_ = r.t.Respond(403, "Forbidden - Authentication failed")
				return false
			}
			s.metrics.auth.WithLabelValues("ok").Inc()
			return true
		}
	}
	s.challenge(ctx, r.t, r.impi, r.impu, cred.Algorithm(), stale, nil)
	return false
}

// reauthWaived reports whether a REGISTER needs no new challenge (TS
// 24.229 §5.4.1.2.1: the S-CSCF may skip authentication of a REGISTER
// that is integrity protected): with ReauthRegistered, the P-CSCF marked
// it integrity-protected "yes", "ipsec-3gpp", "tls-yes" or "ip-assoc-yes",
// and its IMPI already has the registration of the To IMPU with every
// Contact of the request bound (or the request only de-registers).
func (s *Server) reauthWaived(r *regRequest) bool {
	return s.cfg.ReauthProtected == ReauthRegistered && isProtected(r.cred.IntegrityProtected()) &&
		r.rec != nil && r.rec.impi == r.impi && (r.dereg || allBound(r.rec, r.contacts))
}

func allZero(cs []reqContact) bool {
	for _, c := range cs {
		if c.expires != 0 {
			return false
		}
	}
	return true
}

func allBound(rec *record, cs []reqContact) bool {
	for _, c := range cs {
		found := false
		for _, b := range rec.contacts {
			if b.Key() == c.c.Key() {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// verify checks credentials against challenge c: AKAv1-MD5 with RES as the
// password (RFC 3310 §3.3), AKAv2-MD5 (RFC 4169), MD5 with the HSS's HA1
// (RFC 2617 with or without qop). It returns the failure cause for metrics.
func (s *Server) verify(c *challenge, cred *digest.Header, req *sip.Request) (bool, string) {
	if !strings.EqualFold(cred.Realm(), c.realm) {
		return false, "wrong_realm"
	}
	got := cred.Algorithm()
	if got == "" {
		got = digest.AlgMD5
	}
	if !strings.EqualFold(got, c.v.alg) {
		return false, "wrong_algorithm"
	}
	if cred.QOP() != "" && !s.auth.checkNC(c, cred.NC()) {
		return false, "nonce_count"
	}
	var ok bool
	var err error
	switch c.v.alg {
	case digest.AlgAKAv1:
		ok, err = digest.VerifyPassword(cred, string(req.Method), digest.AKAv1Password(c.v.xres), req.Body())
	case digest.AlgAKAv2:
		ok, err = digest.VerifyPassword(cred, string(req.Method), digest.AKAv2Password(c.v.xres, c.v.ik, c.v.ck), req.Body())
	default:
		ok, err = digest.VerifyHA1(cred, string(req.Method), c.v.ha1, req.Body())
	}
	if err != nil {
		return false, "malformed_credentials"
	}
	if !ok {
		return false, "wrong_response"
	}
	return true, ""
}

// challenge answers 401 with a fresh vector (TS 24.229 §5.4.1.2.1),
// fetching vectors with MAR when the cache has none for impi. resync is
// RAND‖AUTS for a resynchronisation MAR.
func (s *Server) challenge(ctx context.Context, t *sipproxy.Txn, impi, impu, alg string, stale bool, resync []byte) {
	want := ""
	if a, ok := algFor(schemeFor(alg)); ok {
		want = a
	}
	now := time.Now()
	var v *vector
	if resync == nil {
		v = s.auth.takeVector(impi, want, s.cfg.VectorLifetime, now)
	}
	if v == nil {
		scheme := schemeFor(alg)
		if resync != nil && scheme == SchemeUnknown {
			scheme = SchemeAKAv1
		}
		vs, err := s.mar(ctx, impi, impu, scheme, s.cfg.VectorsPerMAR, resync)
		if err != nil {
			s.respondHSSError(t, err, alg, impi)
			return
		}
		v = vs[0]
		s.auth.putVectors(impi, vs[1:])
	}
	realm := s.cfg.Domain
	c, err := s.auth.newChallenge(impi, impu, realm, v, now)
	if err != nil {
		s.log.Error("challenge", zap.Error(err))
		_ = t.Respond(500, "Server Internal Error")
		return
	}
	var h *digest.Header
	if v.alg == digest.AlgMD5 {
		h = digest.NewChallenge(realm, c.nonce, digest.AlgMD5, digest.QOPAuth)
	} else {
		h = digest.NewAKAChallenge(realm, c.nonce, v.alg, v.ik, v.ck)
	}
	if stale {
		h.Set("stale", "TRUE")
	}
	s.metrics.challenges.WithLabelValues(v.alg).Inc()
	_ = t.Respond(401, "Unauthorized", sip.NewHeader(digest.HeaderWWWAuthenticate, h.String()))
}

// resync handles credentials with auts (RFC 3310 §3.4, TS 33.203 §6.1.2):
// MAR with SIP-Authorization = RAND‖AUTS, then a new 401.
func (s *Server) resync(ctx context.Context, t *sipproxy.Txn, cred *digest.Header, impi, impu string) {
	rnd, _, err := digest.SplitAKANonce(cred.Nonce())
	if err != nil {
		_ = t.Respond(400, "Bad Request - auts with a nonce that is not an AKA nonce")
		return
	}
	auts, err := digest.DecodeAUTS(cred.AUTS())
	if err != nil {
		_ = t.Respond(400, "Bad Request - malformed auts")
		return
	}
	if c := s.auth.lookup(cred.Nonce()); c != nil {
		s.auth.consume(c)
	}
	s.auth.dropVectors(impi)
	s.metrics.auth.WithLabelValues("resync").Inc()
	s.log.Info("SQN resynchronisation", zapStr("impi", impi), zapStr("rand", base64.StdEncoding.EncodeToString(rnd)))
	s.challenge(ctx, t, impi, impu, cred.Algorithm(), false, append(rnd, auts...))
}

// respondHSSError maps a failed MAR/SAR to the SIP answer: user errors of
// the HSS become 403 with a reason; a missing or failed HSS becomes 500
// (504 on timeout) with a Warning, never 403.
func (s *Server) respondHSSError(t *sipproxy.Txn, err error, alg, impi string) {
	he, ok := cxclient.AsError(err)
	if !ok {
		s.log.Error("HSS exchange", zap.Error(err))
		_ = t.Respond(500, "Server Internal Error", s.warning("HSS exchange failed"))
		return
	}
	s.log.Info("HSS error", zapStr("impi", impi), zap.Error(err))
	if he.Err == nil && he.Experimental {
		switch he.Code {
		case diameter.DiameterErrorUserUnknown:
			s.metrics.authFailures.WithLabelValues("user_unknown").Inc()
			_ = t.Respond(403, "Forbidden - user unknown")
			return
		case diameter.DiameterErrorIdentitiesDontMatch:
			s.metrics.authFailures.WithLabelValues("identities_dont_match").Inc()
			_ = t.Respond(403, "Forbidden - identities don't match")
			return
		case diameter.DiameterErrorAuthSchemeNotSupported:
			s.metrics.authFailures.WithLabelValues("scheme_not_supported").Inc()
			name := alg
			if name == "" {
				name = "Unknown"
			}
			_ = t.Respond(403, "Forbidden - authentication scheme "+name+" not supported")
			return
		case diameter.DiameterErrorRoamingNotAllowed:
			_ = t.Respond(403, "Forbidden - roaming not allowed")
			return
		}
	}
	if he.Err == nil && !he.Experimental && (he.Code == diameter.DiameterAuthorizationRejected || he.Code == diameter.DiameterAuthenticationRejected) {
		s.metrics.authFailures.WithLabelValues("hss_rejected").Inc()
		_ = t.Respond(403, "Forbidden - authorization rejected by the HSS")
		return
	}
	if he.TimedOut() {
		_ = t.Respond(504, "Server Time-out", s.warning("HSS did not answer "+he.Command))
		return
	}
	if he.Err != nil {
		_ = t.Respond(500, "Server Internal Error", s.warning("HSS unreachable: "+he.Command+" failed"))
		return
	}
	_ = t.Respond(500, "Server Internal Error", s.warning(fmt.Sprintf("HSS answered %s with %d", he.Command, he.Code)))
}

func (s *Server) warning(text string) sip.Header {
	return sip.NewHeader("Warning", "399 "+s.cfg.SIPHost+" "+imsheader.Quote(text))
}

// register applies an authenticated REGISTER (TS 24.229 §5.4.1.2.2,
// §5.4.1.4; RFC 3261 §10.3 steps 7-8): a REGISTER older than the
// bindings it names gets 500; one without Contact is a query of the
// bindings; a de-registration unbinds (deregister); anything else goes
// through assign (SAR), bind and answer (200), and is then reported to
// the registration listeners and the register-answered hooks.
func (s *Server) register(ctx context.Context, r *regRequest) {
	now := time.Now()
	switch {
	case s.outOfOrder(r):
		_ = r.t.Respond(500, "Server Internal Error - REGISTER out of order")
	case len(r.contacts) == 0 && !r.wildcard:
		s.answerQuery(r)
	case r.dereg:
		s.deregister(ctx, r)
	default:
		a, ok := s.assign(ctx, r)
		if !ok {
			return
		}
		b, ok := s.bind(ctx, r, a, now)
		if !ok {
			return
		}
		res := s.answer(r.t, b.snap, b.path)
		s.report(binding.Event{Kind: b.kind, After: b.snap, Changed: b.changed, Profile: a.profile}, r.req, res)
	}
}

// outOfOrder reports whether the REGISTER refreshes a binding it has the
// Call-ID of with a CSeq not higher than the binding's (RFC 3261 §10.3
// step 7).
func (s *Server) outOfOrder(r *regRequest) bool {
	if r.rec == nil {
		return false
	}
	callID, cseq := r.req.CallID().Value(), r.req.CSeq().SeqNo
	for _, rc := range r.contacts {
		for _, b := range r.rec.contacts {
			if b.Key() == rc.c.Key() && b.CallID == callID && cseq <= b.CSeq {
				return true
			}
		}
	}
	return false
}

// answerQuery answers a REGISTER without Contact with the current
// bindings (RFC 3261 §10.3 step 8).
func (s *Server) answerQuery(r *regRequest) {
	if r.rec == nil {
		_ = r.t.Respond(200, "OK")
		return
	}
	s.answer(r.t, r.rec.snapshot(), nil)
}

// deregister is user-initiated de-registration (TS 24.229 §5.4.1.4): the
// Contacts with expiry 0 (every one for "Contact: *") are unbound; when
// none is left the HSS gets SAR USER_DEREGISTRATION; the 200 lists the
// bindings left.
func (s *Server) deregister(ctx context.Context, r *regRequest) {
	rec := r.rec
	if rec == nil {
		_ = r.t.Respond(200, "OK")
		return
	}
	var keep []*binding.Contact
	var removed []binding.Contact
	for _, b := range rec.contacts {
		drop := r.wildcard
		for _, rc := range r.contacts {
			if b.Key() == rc.c.Key() {
				drop = true
			}
		}
		if drop {
			removed = append(removed, *b)
		} else {
			keep = append(keep, b)
		}
	}
	snap := s.setContacts(ctx, rec, keep)
	if len(keep) == 0 {
		if _, err := s.sar(ctx, rec.impi, rec.aor, diameter.SATUserDeregistration, true); err != nil {
			s.log.Warn("SAR USER_DEREGISTRATION failed", zapStr("impu", rec.aor), zap.Error(err))
		}
	}
	s.metrics.deregistrations.WithLabelValues("user").Add(float64(len(removed)))
	res := s.answer(r.t, snap, nil)
	s.report(binding.Event{Kind: binding.EventDeregistered, After: snap, Changed: removed}, r.req, res)
}

// assignment is what the assign stage learnt from the HSS: the user
// profile and the implicit registration set it gives.
type assignment struct {
	userData []byte
	profile  *userdata.IMSSubscription
	impus    []string        // the set, the registered IMPU first
	barred   map[string]bool // comparison form -> barred
}

// assign is the S-CSCF registration procedure with the HSS (TS 24.229
// §5.4.1.2.2; TS 29.228 §6.1.2): SAR REGISTRATION for a first
// registration, RE_REGISTRATION otherwise (User-Data-Already-Available
// when the profile is cached). The User-Data of the SAA (else the cached
// profile) gives the implicit registration set. A failed SAR is answered
// by respondHSSError; User-Data that does not parse or is missing gets
// 500 with a Warning, a barred To IMPU 403; for a first registration the
// HSS is then told it did not happen (undoFirstSAR).
func (s *Server) assign(ctx context.Context, r *regRequest) (assignment, bool) {
	t, rec := r.t, r.rec
	sat := diameter.SATRegistration
	if rec != nil {
		sat = diameter.SATReRegistration
	}
	ud, err := s.sar(ctx, r.impi, r.impu, sat, rec != nil && rec.userData != nil)
	if err != nil {
		s.respondHSSError(t, err, "", r.impi)
		return assignment{}, false
	}
	var profile *userdata.IMSSubscription
	switch {
	case ud != nil:
		profile, err = userdata.Parse(ud)
		if err != nil {
			s.log.Warn("SAA User-Data rejected", zapStr("impi", r.impi), zap.Error(err))
			_ = t.Respond(500, "Server Internal Error", s.warning("HSS sent invalid User-Data"))
			s.undoFirstSAR(rec == nil, r.impi, r.impu)
			return assignment{}, false
		}
	case rec != nil && rec.profile != nil:
		profile, ud = rec.profile, rec.userData
	default:
		_ = t.Respond(500, "Server Internal Error", s.warning("HSS sent no User-Data"))
		s.undoFirstSAR(rec == nil, r.impi, r.impu)
		return assignment{}, false
	}
	impus, barred := binding.IRS(profile, r.impu)
	if barred[binding.CanonURI(r.impu)] {
		s.metrics.authFailures.WithLabelValues("barred").Inc()
		s.undoFirstSAR(rec == nil, r.impi, r.impu)
		_ = t.Respond(403, "Forbidden - public identity barred")
		return assignment{}, false
	}
	return assignment{userData: ud, profile: profile, impus: impus, barred: barred}, true
}

// undoFirstSAR tells the HSS that a first registration it has just
// recorded (SAR REGISTRATION answered) did not happen after all, because
// the S-CSCF answered the REGISTER with an error (unusable User-Data,
// barred IMPU, binding not stored): SAR USER_DEREGISTRATION (TS 29.228
// §6.1.2), in the background, so that the HSS does not keep the IMPU
// registered at an S-CSCF that has no binding for it. Re-registrations
// keep their earlier binding and state, so nothing is undone for them.
func (s *Server) undoFirstSAR(first bool, impi, impu string) {
	if first {
		s.sarAsync(impi, impu, diameter.SATUserDeregistration)
	}
}

// bound is the outcome of the bind stage.
type bound struct {
	kind    binding.EventKind    // EventRegistered or EventRefreshed
	snap    binding.Registration // the registration as stored
	changed []binding.Contact    // the bindings the REGISTER added, refreshed or removed
	path    []string             // Path of the REGISTER, echoed in the 200
}

// bind stores the Contacts of the REGISTER (TS 24.229 §5.4.1.2.2: the
// binding with its Path, P-Visited-Network-ID, P-Charging-Vector and the
// user profile; RFC 3261 §10.3 step 7), merged by mergeContacts. The
// registration is written through to the store before it is indexed;
// when that fails the REGISTER gets 500 with a Warning and nothing is
// bound (undoFirstSAR). Expiries count from now, when the REGISTER was
// taken up.
func (s *Server) bind(ctx context.Context, r *regRequest, a assignment, now time.Time) (bound, bool) {
	next, changed, removedN, path := r.mergeContacts(now)
	rec := r.rec
	first := rec == nil
	if first {
		rec = &record{aor: r.impu, impi: r.impi}
	}
	newRec := &record{aor: rec.aor, impi: r.impi, impus: a.impus, barred: a.barred, userData: a.userData, profile: a.profile, contacts: next}
	snap := newRec.snapshot()
	if err := s.persist(ctx, snap); err != nil {
		s.log.Error("storing binding", zapStr("impu", r.impu), zap.Error(err))
		_ = r.t.Respond(500, "Server Internal Error", s.warning("registration store failed"))
		s.undoFirstSAR(first, r.impi, r.impu)
		return bound{}, false
	}
	s.reg.mu.Lock()
	if first {
		s.reg.mu.Unlock()
		s.reg.put(newRec)
	} else {
		irsChanged := !sameStrings(rec.impus, a.impus) || rec.impi != r.impi
		rec.impi, rec.impus, rec.barred, rec.userData, rec.profile, rec.contacts = r.impi, a.impus, a.barred, a.userData, a.profile, next
		s.reg.mu.Unlock()
		if irsChanged {
			s.reg.put(rec)
		}
	}
	kind := binding.EventRefreshed
	if first {
		kind = binding.EventRegistered
		s.metrics.registrations.WithLabelValues("initial").Inc()
	} else {
		s.metrics.registrations.WithLabelValues("re").Inc()
	}
	if removedN > 0 {
		s.metrics.deregistrations.WithLabelValues("user").Add(float64(removedN))
	}
	return bound{kind: kind, snap: snap, changed: changed, path: path}, true
}

// mergeContacts merges the Contacts of the REGISTER into the unexpired
// bindings of its registration: a Contact whose key (+sip.instance and
// reg-id, else URI) is bound refreshes that binding (keeping when it was
// first registered), a new one is added, expiry 0 removes one. It
// returns the bindings after the REGISTER, the Contacts as bound (the
// removed ones included), how many bindings were removed, and the Path
// of the REGISTER.
func (r *regRequest) mergeContacts(now time.Time) (next []*binding.Contact, changed []binding.Contact, removed int, path []string) {
	req := r.req
	callID := req.CallID().Value()
	cseq := req.CSeq().SeqNo
	var old []*binding.Contact
	if r.rec != nil {
		old = r.rec.contacts
	}
	next = make([]*binding.Contact, 0, len(old)+len(r.contacts))
	changed = make([]binding.Contact, 0, len(r.contacts))
	byKey := map[string]int{}
	for _, b := range old {
		if !b.Expires.After(now) {
			continue
		}
		byKey[b.Key()] = len(next)
		next = append(next, b)
	}
	path = imsheader.Values(req, imsheader.HeaderPath)
	pvni := strings.Join(imsheader.Values(req, imsheader.HeaderPVisitedNetworkID), ", ")
	pcv := strings.Join(imsheader.Values(req, imsheader.HeaderPChargingVector), ", ")
	ua := ""
	if h := req.GetHeader("User-Agent"); h != nil {
		ua = h.Value()
	}
	for _, rc := range r.contacts {
		c := rc.c
		c.CallID, c.CSeq, c.Path, c.VisitedNetwork, c.ChargingVector, c.UserAgent = callID, cseq, path, pvni, pcv, ua
		c.Source = req.Source()
		c.Expires = now.Add(rc.expires)
		c.Registered = now
		i, exists := byKey[c.Key()]
		if exists {
			c.Registered = next[i].Registered
		}
		switch {
		case rc.expires == 0 && exists:
			next[i] = nil
			removed++
		case rc.expires == 0:
		case exists:
			next[i] = &c
		default:
			byKey[c.Key()] = len(next)
			next = append(next, &c)
		}
		changed = append(changed, c)
	}
	compact := next[:0]
	for _, b := range next {
		if b != nil {
			compact = append(compact, b)
		}
	}
	return compact, changed, removed, path
}

// report tells the registration listeners of ev (emit) and then the
// register-answered hooks, with the REGISTER and the 200 sent.
func (s *Server) report(ev binding.Event, req *sip.Request, res *sip.Response) {
	s.emit(ev)
	s.afterRegister(ev, req, res)
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// setContacts replaces the bindings of rec (removing the record when none
// is left), stores the change and returns the new snapshot.
func (s *Server) setContacts(ctx context.Context, rec *record, keep []*binding.Contact) binding.Registration {
	s.reg.mu.Lock()
	rec.contacts = keep
	snap := rec.snapshot()
	s.reg.mu.Unlock()
	if len(keep) == 0 {
		s.reg.remove(rec)
		if err := s.unpersist(ctx, rec.aor); err != nil {
			s.log.Error("deleting binding", zapStr("impu", rec.aor), zap.Error(err))
		}
	} else if err := s.persist(ctx, snap); err != nil {
		s.log.Error("storing binding", zapStr("impu", rec.aor), zap.Error(err))
	}
	return snap
}

// answer sends the 200 to a REGISTER (TS 24.229 §5.4.1.2.2):
// Contact with granted expiries, Service-Route, P-Associated-URI (the
// non-barred IMPUs, the registered one first), Path echoed and Require: path.
func (s *Server) answer(t *sipproxy.Txn, snap binding.Registration, path []string) *sip.Response {
	now := time.Now()
	var hdrs []sip.Header
	for _, c := range snap.Contacts {
		left := int(c.Expires.Sub(now).Round(time.Second) / time.Second)
		if left < 0 {
			left = 0
		}
		hdrs = append(hdrs, sip.NewHeader("Contact", c.Value+";expires="+strconv.Itoa(left)))
	}
	if len(snap.Contacts) > 0 {
		hdrs = append(hdrs, sip.NewHeader(imsheader.HeaderServiceRoute, "<"+s.ServiceRoute()+">"))
		barred := map[string]bool{}
		for _, b := range snap.Barred {
			barred[binding.CanonURI(b)] = true
		}
		var pau []string
		for _, u := range snap.IMPUs {
			if !barred[binding.CanonURI(u)] {
				pau = append(pau, "<"+u+">")
			}
		}
		hdrs = append(hdrs, sip.NewHeader(imsheader.HeaderPAssociatedURI, strings.Join(pau, ", ")))
	}
	if len(path) > 0 {
		for _, p := range path {
			hdrs = append(hdrs, sip.NewHeader(imsheader.HeaderPath, p))
		}
		hdrs = append(hdrs, sip.NewHeader("Require", "path"), sip.NewHeader("Supported", "path"))
	}
	res := t.NewResponse(200, "OK", hdrs...)
	_ = t.Relay(res)
	return res
}

// ServiceRoute returns the URI this S-CSCF puts in Service-Route:
// sip:orig@<sip host>:<port>;lr. A request whose popped Route had user
// part "orig" is an originating request of a registered user.
func (s *Server) ServiceRoute() string {
	return fmt.Sprintf("sip:%s@%s;lr", ServiceRouteUser, s.hostport)
}

// ServiceRouteUser is the user part of the Service-Route URI.
const ServiceRouteUser = "orig"
