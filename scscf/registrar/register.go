package registrar

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/intern"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/binding"
)

// reqContact is one Contact of a REGISTER with its requested expiry.
type reqContact struct {
	c       binding.Contact
	expires time.Duration
}

// parseContacts reads the Contact headers and the expiry each asks for
// (RFC 3261 §10.2.1.1, §10.3 step 6); wildcard reports "Contact: *".
func (s *Registrar) parseContacts(req *sip.Request) (list []reqContact, wildcard bool, minTooBrief bool, err error) {
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
		// The parameters are slices of the Contact header's text (a few
		// hundred bytes with the feature tags VoLTE UEs send): copied, so
		// the binding kept for the registration does not hold all of it.
		if v, ok := params.Get("+sip.instance"); ok {
			rc.c.Instance = strings.Clone(imsheader.Unquote(v))
		}
		if v, ok := params.Get("reg-id"); ok {
			rc.c.RegID = strings.Clone(v)
		}
		if v, ok := params.Get("q"); ok {
			rc.c.Q = strings.Clone(v)
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

// impiOf is the IMPI of a REGISTER: the username of its Authorization
// (cred, nil without one), else derived from the IMPU (impiFromIMPU).
// The username is a slice of the Authorization header's text (some 350
// bytes with an AKA response); the registration keeps the IMPI, so it
// gets a copy of its own.
func impiOf(cred *digest.Header, impu string) string {
	if cred != nil && cred.Username() != "" {
		return strings.Clone(cred.Username())
	}
	return impiFromIMPU(impu)
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
// HandleRegister.
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

// HandleRegister serves a REGISTER (TS 24.229 §5.4.1.2): readRegister,
// then, under the lock of the IMPI, authenticate (401 challenge or
// checked response) and register: assign (SAR), bind, answer (200).
func (s *Registrar) HandleRegister(ctx context.Context, t *sipproxy.Txn) {
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
// the To IMPU (impiFromIMPU).
func (s *Registrar) readRegister(t *sipproxy.Txn) (*regRequest, bool) {
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
	r.impi = impiOf(r.cred, r.impu)
	r.dereg = r.wildcard || (len(r.contacts) > 0 && allZero(r.contacts))
	return r, true
}

func allZero(cs []reqContact) bool {
	for _, c := range cs {
		if c.expires != 0 {
			return false
		}
	}
	return true
}

// register applies an authenticated REGISTER (TS 24.229 §5.4.1.2.2,
// §5.4.1.4; RFC 3261 §10.3 steps 7-8): a REGISTER older than the
// bindings it names gets 500; one without Contact is a query of the
// bindings; a de-registration unbinds (deregister); anything else goes
// through assign (SAR), bind and answer (200), and is then reported to
// the registration listeners and the register-answered hooks.
func (s *Registrar) register(ctx context.Context, r *regRequest) {
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
		res := s.answer(r.t, b.snap, a.profile, b.path)
		s.report(binding.Event{Kind: b.kind, After: b.snap, Changed: b.changed, Profile: a.profile}, r.req, res)
	}
}

// outOfOrder reports whether the REGISTER refreshes a binding it has the
// Call-ID of with a CSeq not higher than the binding's (RFC 3261 §10.3
// step 7).
func (s *Registrar) outOfOrder(r *regRequest) bool {
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
func (s *Registrar) answerQuery(r *regRequest) {
	if r.rec == nil {
		_ = r.t.Respond(200, "OK")
		return
	}
	s.answer(r.t, r.rec.snapshot(), r.rec.profile, nil)
}

// deregister is user-initiated de-registration (TS 24.229 §5.4.1.4): the
// Contacts with expiry 0 (every one for "Contact: *") are unbound; when
// none is left the HSS gets SAR USER_DEREGISTRATION; the 200 lists the
// bindings left.
func (s *Registrar) deregister(ctx context.Context, r *regRequest) {
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
			if b.Key() == rc.c.Key() || binding.Supersedes(&rc.c, b) {
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
			s.log.Warn("SAR USER_DEREGISTRATION failed", zap.String("impu", rec.aor), zap.Error(err))
		}
	}
	s.metrics.deregistrations.WithLabelValues("user").Add(float64(len(removed)))
	res := s.answer(r.t, snap, rec.profile, nil)
	s.report(binding.Event{Kind: binding.EventDeregistered, After: snap, Changed: removed, Profile: rec.profile}, r.req, res)
}

// assignment is what the assign stage learnt from the HSS: the user
// profile and the implicit registration set it gives.
type assignment struct {
	userData []byte // User-Data of the SAA, nil when the cached profile stands
	profile  *userdata.IMSSubscription
	charging imsheader.PChargingFunctionAddresses
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
func (s *Registrar) assign(ctx context.Context, r *regRequest) (assignment, bool) {
	t, rec := r.t, r.rec
	sat := diameter.SATRegistration
	if rec != nil {
		sat = diameter.SATReRegistration
	}
	sa, err := s.sar(ctx, r.impi, r.impu, sat, rec != nil && rec.profile != nil)
	if err != nil {
		s.respondHSSError(t, err, "", r.impi)
		return assignment{}, false
	}
	ud := sa.UserData
	charging := sa.Charging.Header()
	if sa.Charging == nil && rec != nil {
		charging = rec.charging // not sent again with the profile cached
	}
	var profile *userdata.IMSSubscription
	switch {
	case ud != nil:
		profile, err = userdata.Parse(ud)
		if err != nil {
			s.log.Warn("SAA User-Data rejected", zap.String("impi", r.impi), zap.Error(err))
			_ = t.Respond(500, "Server Internal Error", s.warning("HSS sent invalid User-Data"))
			s.undoFirstSAR(rec == nil, r.impi, r.impu)
			return assignment{}, false
		}
	case rec != nil && rec.profile != nil:
		profile = rec.profile
	default:
		_ = t.Respond(500, "Server Internal Error", s.warning("HSS sent no User-Data"))
		s.undoFirstSAR(rec == nil, r.impi, r.impu)
		return assignment{}, false
	}
	impus, barred := binding.IRS(profile, r.impu)
	if len(barred) >= len(impus) {
		// Every IMPU of the set is barred. A barred IMPU with non-barred
		// ones beside it registers (TS 24.229 §5.4.1.2.2, TS 23.003
		// §13.4B: a USIM-only UE's temporary IMPU); the barred ones are
		// left out of P-Associated-URI and can neither originate nor
		// terminate sessions (session routing).
		s.metrics.authFailures.WithLabelValues("barred").Inc()
		s.undoFirstSAR(rec == nil, r.impi, r.impu)
		_ = t.Respond(403, "Forbidden - public identity barred")
		return assignment{}, false
	}
	return assignment{userData: ud, profile: profile, charging: charging, impus: impus, barred: barred}, true
}

// undoFirstSAR tells the HSS that a first registration it has just
// recorded (SAR REGISTRATION answered) did not happen after all, because
// the S-CSCF answered the REGISTER with an error (unusable User-Data,
// barred IMPU, binding not stored): SAR USER_DEREGISTRATION (TS 29.228
// §6.1.2), in the background, so that the HSS does not keep the IMPU
// registered at an S-CSCF that has no binding for it. Re-registrations
// keep their earlier binding and state, so nothing is undone for them.
func (s *Registrar) undoFirstSAR(first bool, impi, impu string) {
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
func (s *Registrar) bind(ctx context.Context, r *regRequest, a assignment, now time.Time) (bound, bool) {
	next, changed, removedN, path := r.mergeContacts(now)
	rec := r.rec
	first := rec == nil
	if first {
		rec = &record{aor: r.impu, impi: r.impi}
	}
	newRec := &record{aor: rec.aor, impi: r.impi, impus: a.impus, barred: a.barred, profile: a.profile, charging: a.charging, contacts: next}
	snap := newRec.snapshot()
	snap.UserData = a.userData
	if err := s.persist(ctx, snap); err != nil {
		s.log.Error("storing binding", zap.String("impu", r.impu), zap.Error(err))
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
		rec.impi, rec.impus, rec.barred, rec.profile, rec.contacts = r.impi, a.impus, a.barred, a.profile, next
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
	path = intern.Strings(imsheader.Values(req, imsheader.HeaderPath))
	pvni := intern.String(strings.Join(imsheader.Values(req, imsheader.HeaderPVisitedNetworkID), ", "))
	pcv := strings.Join(imsheader.Values(req, imsheader.HeaderPChargingVector), ", ")
	ua := ""
	if h := req.GetHeader("User-Agent"); h != nil {
		ua = intern.String(h.Value())
	}
	for _, rc := range r.contacts {
		c := rc.c
		c.CallID, c.CSeq, c.Path, c.VisitedNetwork, c.ChargingVector, c.UserAgent = callID, cseq, path, pvni, pcv, ua
		c.Source = req.Source()
		c.Expires = now.Add(rc.expires)
		c.Registered = now
		i, exists := byKey[c.Key()]
		c.FirstCSeq = cseq
		if exists {
			c.Registered = next[i].Registered
			if o := next[i]; o.CallID == callID && o.FirstCSeq != 0 {
				c.FirstCSeq = o.FirstCSeq // same Call-ID: its temp GRUUs stay valid
			}
		}
		for j, b := range next {
			if b != nil && (!exists || j != i) && binding.Supersedes(&c, b) {
				// The device at this address restarted with a new
				// +sip.instance: its old binding goes (removed, reported).
				next[j] = nil
				removed++
				gone := *b
				gone.Expires = now
				changed = append(changed, gone)
			}
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
func (s *Registrar) report(ev binding.Event, req *sip.Request, res *sip.Response) {
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

// answer sends the 200 to a REGISTER (TS 24.229 §5.4.1.2.2):
// Contact with granted expiries, Service-Route, P-Associated-URI (the
// non-barred IMPUs of the implicit registration set, the default public
// user identity first: the first the HSS lists in profile, which the P-CSCF
// then asserts for the UE), Path echoed and Require: path.
func (s *Registrar) answer(t *sipproxy.Txn, snap binding.Registration, profile *userdata.IMSSubscription, path []string) *sip.Response {
	now := time.Now()
	var hdrs []sip.Header
	gruuAOR := gruuAOROf(t.Request(), snap, profile)
	for _, c := range snap.Contacts {
		left := int(c.Expires.Sub(now).Round(time.Second) / time.Second)
		if left < 0 {
			left = 0
		}
		hdrs = append(hdrs, sip.NewHeader("Contact", c.Value+s.gruuParams(gruuAOR, c, left)+";expires="+strconv.Itoa(left)))
	}
	if len(snap.Contacts) > 0 {
		hdrs = append(hdrs, sip.NewHeader(imsheader.HeaderServiceRoute, "<"+s.cfg.ServiceRoute()+">"))
		barred := map[string]bool{}
		for _, b := range snap.Barred {
			barred[binding.CanonURI(b)] = true
		}
		var pau []string
		for _, u := range binding.HSSOrder(profile, snap.IMPUs) {
			if !barred[binding.CanonURI(u)] {
				pau = append(pau, "<"+u+">")
			}
		}
		hdrs = append(hdrs, sip.NewHeader(imsheader.HeaderPAssociatedURI, strings.Join(pau, ", ")))
		hdrs = append(hdrs, s.chargingHeaders(t.Request(), snap)...)
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
