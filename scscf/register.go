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

func (s *Server) handleRegister(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	to := req.To()
	if to == nil || req.CallID() == nil || req.CSeq() == nil {
		_ = t.Respond(400, "Bad Request - missing To, Call-ID or CSeq")
		return
	}
	impu := binding.CanonURI(to.Address.String())
	contacts, wildcard, tooBrief, err := s.parseContacts(req)
	if err != nil {
		_ = t.Respond(400, "Bad Request - "+err.Error())
		return
	}
	if tooBrief {
		_ = t.Respond(423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(int(s.cfg.MinExpires/time.Second))))
		return
	}
	cred, err := digest.GetAuthorization(req, s.cfg.Domain)
	if err == nil && cred == nil {
		cred, err = digest.GetAuthorization(req, "")
	}
	if err != nil {
		_ = t.Respond(400, "Bad Request - malformed Authorization")
		return
	}
	impi := impiFromIMPU(impu)
	if cred != nil && cred.Username() != "" {
		impi = cred.Username()
	}
	unlock := s.locks.Lock(impi)
	defer unlock()

	rec := s.reg.lookup(impu)
	dereg := wildcard || (len(contacts) > 0 && allZero(contacts))
	alg := ""
	if cred != nil {
		alg = cred.Algorithm()
	}

	authenticated := false
	if cred != nil && s.cfg.ReauthProtected == ReauthRegistered && isProtected(cred.IntegrityProtected()) &&
		rec != nil && rec.impi == impi && (dereg || allBound(rec, contacts)) {
		authenticated = true
		s.metrics.auth.WithLabelValues("integrity_protected").Inc()
	}
	if !authenticated && cred != nil && cred.AUTS() != "" {
		s.resync(ctx, t, cred, impi, impu)
		return
	}
	stale := false
	if !authenticated && cred != nil && cred.Nonce() != "" && cred.Response() != "" {
		c := s.auth.lookup(cred.Nonce())
		switch {
		case c == nil || c.impi != impi:
			s.metrics.auth.WithLabelValues("unknown_nonce").Inc()
		case time.Since(c.created) > s.cfg.NonceLifetime:
			s.auth.consume(c)
			stale = true
			s.metrics.auth.WithLabelValues("stale_nonce").Inc()
		default:
			ok, why := s.verify(c, cred, req)
			if !s.auth.consume(c) {
				s.metrics.auth.WithLabelValues("nonce_reused").Inc()
				break
			}
			if !ok {
				s.metrics.authFailures.WithLabelValues(why).Inc()
				s.log.Info("authentication failed", zapStr("impi", impi), zapStr("impu", impu), zapStr("cause", why))
				s.sarAsync(impi, impu, diameter.SATAuthenticationFailure)
				_ = t.Respond(403, "Forbidden - Authentication failed")
				return
			}
			authenticated = true
			s.metrics.auth.WithLabelValues("ok").Inc()
		}
	}
	if !authenticated {
		s.challenge(ctx, t, impi, impu, alg, stale, nil)
		return
	}
	s.register(ctx, t, impi, impu, rec, contacts, wildcard, dereg)
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
// §5.4.1.4; RFC 3261 §10.3).
// undoFirstSAR tells the HSS that a first registration it has just
// recorded (SAR REGISTRATION answered) did not happen after all, because
// the S-CSCF answered the REGISTER with a 500 (unusable User-Data, binding
// not stored): SAR USER_DEREGISTRATION (TS 29.228 §6.1.2), in the
// background, so that the HSS does not keep the IMPU registered at an
// S-CSCF that has no binding for it. Re-registrations keep their earlier
// binding and state, so nothing is undone for them.
func (s *Server) undoFirstSAR(first bool, impi, impu string) {
	if first {
		s.sarAsync(impi, impu, diameter.SATUserDeregistration)
	}
}

func (s *Server) register(ctx context.Context, t *sipproxy.Txn, impi, impu string, rec *record, contacts []reqContact, wildcard, dereg bool) {
	req := t.Request()
	callID := req.CallID().Value()
	cseq := req.CSeq().SeqNo
	now := time.Now()

	// RFC 3261 §10.3 step 7: same Call-ID with a CSeq not higher is stale.
	if rec != nil {
		for _, rc := range contacts {
			for _, b := range rec.contacts {
				if b.Key() == rc.c.Key() && b.CallID == callID && cseq <= b.CSeq {
					_ = t.Respond(500, "Server Internal Error - REGISTER out of order")
					return
				}
			}
		}
	}

	if len(contacts) == 0 && !wildcard { // query of the bindings
		if rec == nil {
			_ = t.Respond(200, "OK")
			return
		}
		s.respondOK(t, rec.snapshot(), nil)
		return
	}

	if dereg {
		if rec == nil {
			_ = t.Respond(200, "OK")
			return
		}
		var keep []*binding.Contact
		var removed []binding.Contact
		for _, b := range rec.contacts {
			drop := wildcard
			for _, rc := range contacts {
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
		res := s.respondOK(t, snap, nil)
		ev := binding.Event{Kind: binding.EventDeregistered, After: snap, Changed: removed}
		s.emit(ev)
		s.afterRegister(ev, req, res)
		return
	}

	sat := diameter.SATRegistration
	if rec != nil {
		sat = diameter.SATReRegistration
	}
	ud, err := s.sar(ctx, impi, impu, sat, rec != nil && rec.userData != nil)
	if err != nil {
		s.respondHSSError(t, err, "", impi)
		return
	}
	var profile *userdata.IMSSubscription
	switch {
	case ud != nil:
		profile, err = userdata.Parse(ud)
		if err != nil {
			s.log.Warn("SAA User-Data rejected", zapStr("impi", impi), zap.Error(err))
			_ = t.Respond(500, "Server Internal Error", s.warning("HSS sent invalid User-Data"))
			s.undoFirstSAR(rec == nil, impi, impu)
			return
		}
	case rec != nil && rec.profile != nil:
		profile, ud = rec.profile, rec.userData
	default:
		_ = t.Respond(500, "Server Internal Error", s.warning("HSS sent no User-Data"))
		s.undoFirstSAR(rec == nil, impi, impu)
		return
	}
	impus, barred := binding.IRS(profile, impu)
	if barred[binding.CanonURI(impu)] {
		s.metrics.authFailures.WithLabelValues("barred").Inc()
		if rec == nil {
			s.sarAsync(impi, impu, diameter.SATUserDeregistration)
		}
		_ = t.Respond(403, "Forbidden - public identity barred")
		return
	}

	// Merge the bindings.
	var old []*binding.Contact
	if rec != nil {
		old = rec.contacts
	}
	next := make([]*binding.Contact, 0, len(old)+len(contacts))
	changed := make([]binding.Contact, 0, len(contacts))
	byKey := map[string]int{}
	for _, b := range old {
		if !b.Expires.After(now) {
			continue
		}
		byKey[b.Key()] = len(next)
		next = append(next, b)
	}
	path := imsheader.Values(req, imsheader.HeaderPath)
	pvni := strings.Join(imsheader.Values(req, imsheader.HeaderPVisitedNetworkID), ", ")
	pcv := strings.Join(imsheader.Values(req, imsheader.HeaderPChargingVector), ", ")
	ua := ""
	if h := req.GetHeader("User-Agent"); h != nil {
		ua = h.Value()
	}
	var removedN int
	for _, rc := range contacts {
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
			removedN++
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
	next = compact

	first := rec == nil
	if first {
		rec = &record{aor: impu, impi: impi}
	}
	newRec := &record{aor: rec.aor, impi: impi, impus: impus, barred: barred, userData: ud, profile: profile, contacts: next}
	snap := newRec.snapshot()
	if err := s.persist(ctx, snap); err != nil {
		s.log.Error("storing binding", zapStr("impu", impu), zap.Error(err))
		_ = t.Respond(500, "Server Internal Error", s.warning("registration store failed"))
		s.undoFirstSAR(first, impi, impu)
		return
	}
	s.reg.mu.Lock()
	if first {
		s.reg.mu.Unlock()
		s.reg.put(newRec)
	} else {
		irsChanged := !sameStrings(rec.impus, impus) || rec.impi != impi
		rec.impi, rec.impus, rec.barred, rec.userData, rec.profile, rec.contacts = impi, impus, barred, ud, profile, next
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
	res := s.respondOK(t, snap, path)
	ev := binding.Event{Kind: kind, After: snap, Changed: changed, Profile: profile}
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

// respondOK sends the 200 to REGISTER (TS 24.229 §5.4.1.2.2):
// Contact with granted expiries, Service-Route, P-Associated-URI (the
// non-barred IMPUs, the registered one first), Path echoed and Require: path.
func (s *Server) respondOK(t *sipproxy.Txn, snap binding.Registration, path []string) *sip.Response {
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
