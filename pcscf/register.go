package pcscf

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pcscf/contacts"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/ipsec"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// handleRegister implements TS 24.229 §5.2.2 (REGISTER from the UE).
func (s *PCSCF) handleRegister(ctx context.Context, t *sipproxy.Txn, over *saSet) {
	req := t.Request()
	src := flowOf(req)
	if s.sourceThrottled(t, src.Host) {
		return
	}
	offers, integrity, ok := s.checkSecAgree(t, over)
	if !ok {
		return
	}

	// Request edits (TS 24.229 §5.2.2.1).
	s.markAuthorization(req, integrity)
	stripSecAgree(req)
	addOptionTag(req, "Require", "path")
	addOptionTag(req, "Supported", "path")
	pathURI := s.pathURI(src, nil)
	imsheader.PrependPath(req, imsheader.NameAddr{URI: pathURI})
	imsheader.SetPVisitedNetworkID(req, imsheader.NewVisitedNetwork(s.cfg.VisitedNetworkID))
	pcv := imsheader.NewPChargingVector(imsheader.NewICID(), hostRef(s.cfg.SIPHost))
	pcv.SetOrigIOI(s.cfg.Domain)
	imsheader.SetPChargingVector(req, pcv)
	// The charging function addresses come from the home network's 200,
	// never from the UE (TS 24.229 §5.2.2.1).
	imsheader.RemoveHeaders(req, imsheader.HeaderPChargingFunctionAddresses)

	nh := s.icscf
	// The I-CSCF is the only way on: its overload 503 with Retry-After
	// reaches the UE, which waits that long (RFC 3261 §20.33).
	res, err := t.Forward(ctx, sipproxy.ForwardOptions{PassOverload503: true}, sipproxy.Target{NextHop: &nh})
	if err != nil || res == nil {
		if res != nil {
			_ = t.Relay(res)
		}
		return
	}
	switch {
	case res.StatusCode == sip.StatusUnauthorized:
		s.challengeSecAgree(res, offers, src)
	case res.StatusCode >= 200 && res.StatusCode < 300:
		s.on200(ctx, req, res, src, over)
	}
	s.countAuthFailure(req, res, src.Host)
	chargingTowardsUE(res)
	_ = t.Relay(res)
}

// pathURI is this P-CSCF's Path entry: the address the S-CSCF sends
// terminating requests to, with the "term" marker user part.
func (s *PCSCF) pathURI(src contacts.Flow, _ *ipsec.SecAssoc) string {
	a := s.proxy.Addr("udp")
	u := "sip:" + TermUser + "@" + joinHostPort(s.cfg.SIPHost, a.Port) + ";lr"
	return u
}

func joinHostPort(h string, p int) string {
	if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
		h = "[" + h + "]"
	}
	return h + ":" + strconv.Itoa(p)
}

// markAuthorization sets integrity-protected in Authorization, adding an
// Authorization when the UE sent none (TS 24.229 §5.2.2.1: username is the
// private identity derived from the public one in To, realm and uri the
// home domain, empty nonce and response).
func (s *PCSCF) markAuthorization(req *sip.Request, integrity string) {
	hs, err := digest.GetAll(req, digest.HeaderAuthorization)
	if err != nil {
		return // leave a malformed header for the S-CSCF to reject
	}
	if len(hs) == 0 {
		impu := ""
		if to := req.To(); to != nil {
			impu = to.Address.User + "@" + to.Address.Host
			if to.Address.User == "" {
				impu = to.Address.Host
			}
		}
		realm := req.Recipient.Host
		if to := req.To(); to != nil && to.Address.Host != "" {
			realm = to.Address.Host
		}
		h := &digest.Header{Scheme: digest.Scheme}
		h.Set("username", impu)
		h.Set("realm", realm)
		h.Set("uri", "sip:"+realm)
		h.Set("nonce", "")
		h.Set("response", "")
		hs = []*digest.Header{h}
	}
	for _, h := range hs {
		h.Set("integrity-protected", integrity)
	}
	digest.Set(req, digest.HeaderAuthorization, hs...)
}

// on200 stores (or removes, on de-registration) the contact.
func (s *PCSCF) on200(ctx context.Context, req *sip.Request, res *sip.Response, src contacts.Flow, over *saSet) {
	impus := []string{}
	if as, err := imsheader.GetPAssociatedURI(res); err == nil {
		for _, a := range as {
			impus = append(impus, a.URI)
		}
	}
	if len(impus) == 0 && req.To() != nil {
		impus = append(impus, req.To().Address.String())
	}
	var sr []string
	if rs, err := imsheader.GetServiceRoute(res); err == nil {
		for _, r := range rs {
			sr = append(sr, r.URI)
		}
	}
	defExp := -1
	if e := res.GetHeader("Expires"); e != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(e.Value())); err == nil {
			defExp = n
		}
	}
	if defExp < 0 {
		if e := req.GetHeader("Expires"); e != nil {
			if n, err := strconv.Atoi(strings.TrimSpace(e.Value())); err == nil {
				defExp = n
			}
		}
	}
	// The contacts of the request, with expiry from the 200's matching
	// Contact (the registrar's word) or the Expires header.
	resExp := map[string]int{}
	for _, h := range res.GetHeaders("Contact") {
		if ch, ok := h.(*sip.ContactHeader); ok {
			if v, ok := ch.Params.Get("expires"); ok {
				if n, err := strconv.Atoi(v); err == nil {
					resExp[uriKey(ch.Address)] = n
				}
			}
		}
	}
	for _, h := range req.GetHeaders("Contact") {
		ch, ok := h.(*sip.ContactHeader)
		if !ok || ch.Address.Wildcard {
			continue
		}
		exp := defExp
		if v, ok := ch.Params.Get("expires"); ok {
			if n, err := strconv.Atoi(v); err == nil {
				exp = n
			}
		}
		if n, ok := resExp[uriKey(ch.Address)]; ok {
			exp = n
		} else if len(resExp) > 0 {
			exp = 0 // the registrar no longer lists it
		}
		if exp < 0 {
			exp = 3600
		}
		aor := ch.Address.String()
		key := contacts.Key(aor, src)
		if exp == 0 {
			s.deregister(ctx, key)
			continue
		}
		// The contact this registration renews: the same key, or the
		// contact of the SA set it came over (a transport switch).
		prev := s.store.Get(key)
		carried := ""
		if prev == nil {
			prev, carried = s.contactOfSet(over, key)
		}
		c := &contacts.Contact{
			AOR: aor, Flow: src, IMPUs: impus, ServiceRoute: sr,
			Expires: time.Now().Add(time.Duration(exp) * time.Second), Registered: time.Now(),
		}
		if prev != nil {
			c.Registered, c.RxSessions, c.RxSignalling, c.RegSubscription, c.SA, c.SecurityServer = prev.Registered, prev.RxSessions, prev.RxSignalling, prev.RegSubscription, prev.SA, prev.SecurityServer
		}
		c.ChargingAddresses = s.storedChargingAddresses(res, prev)
		replaced := s.takeSet(c, over)
		if carried != "" {
			_, _ = s.store.Delete(ctx, carried)
		}
		// A contact registered before over another flow of the same UE
		// (e.g. unprotected, then over the SA) is replaced; what it held
		// ends (its SA set, its Rx sessions).
		for _, o := range s.store.ByAOR(aor) {
			if o.Key() != key && sameHost(o.Flow.Host, src.Host) {
				if d, _ := s.store.Delete(ctx, o.Key()); d != nil {
					s.keepSetOf(d, over)
					s.dropContactState(ctx, d, false)
				}
			}
		}
		// A first registration's reg-event subscription: its Call-ID goes
		// to PostgreSQL with the contact, in this one write (ADR 0004).
		var sub *regSub
		if c.RegSubscription == "" && len(impus) > 0 {
			if sub = s.newRegSub(key, c); sub != nil {
				c.RegSubscription = sub.callID
			}
		}
		if err := s.store.PutKeyed(ctx, key, c); err != nil {
			s.log.Error("store contact", zap.Error(err))
		}
		if carried != "" {
			s.moveCalls(carried, c)
		}
		s.commitSet(over, key, replaced)
		s.log.Debug("contact registered", zap.String("aor", aor), zap.Stringer("flow", src), zap.Strings("impus", impus), zap.Int("expires", exp), zap.Bool("ipsec", c.SA != nil))
		if sub != nil {
			s.startRegSub(sub)
		}
		if s.rx != nil && c.RxSignalling == "" {
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.rxRegister(key) }()
		}
	}
	s.updateGauges()
}

// deregister removes a contact, its Rx sessions and (after
// Config.RetireGrace,
// see dropContactState) its SA set.
func (s *PCSCF) deregister(ctx context.Context, key string) {
	// Reachable among the retired before it leaves the store: the
	// S-CSCF's NOTIFY to the UE may come at any moment.
	if c := s.store.Get(key); c != nil && c.SA != nil {
		r := c.Clone()
		r.Expires = time.Now().Add(s.cfg.RetireGrace)
		_ = s.retired.Put(ctx, r)
	}
	c, err := s.store.Delete(ctx, key)
	if err != nil {
		s.log.Warn("delete contact", zap.Error(err))
	}
	if c == nil {
		return
	}
	s.log.Info("contact de-registered", zap.String("aor", c.AOR), zap.Stringer("flow", c.Flow))
	s.dropContactState(ctx, c, true)
	s.updateGauges()
}

func uriKey(u sip.Uri) string {
	return strings.ToLower(u.User + "@" + u.Host + ":" + strconv.Itoa(portOr(u.Port)))
}

func sameHost(a, b string) bool {
	ia, ib := parseIP(a), parseIP(b)
	if ia != nil && ib != nil {
		return ia.Equal(ib)
	}
	return strings.EqualFold(a, b)
}

// optionTags returns the comma-separated tokens of every header name.
func optionTags(msg imsheader.Editable, name string) []string {
	var out []string
	for _, v := range imsheader.Values(msg, name) {
		for _, tok := range strings.Split(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				out = append(out, tok)
			}
		}
	}
	return out
}

func removeOptionTag(msg imsheader.Editable, name, tag string) {
	tags := optionTags(msg, name)
	var keep []string
	for _, t := range tags {
		if !strings.EqualFold(t, tag) {
			keep = append(keep, t)
		}
	}
	if len(keep) == len(tags) {
		return
	}
	imsheader.RemoveHeaders(msg, name)
	if len(keep) > 0 {
		imsheader.SetHeader(msg, name, strings.Join(keep, ", "))
	}
}

func addOptionTag(msg imsheader.Editable, name, tag string) {
	tags := optionTags(msg, name)
	for _, t := range tags {
		if strings.EqualFold(t, tag) {
			return
		}
	}
	tags = append(tags, tag)
	imsheader.SetHeader(msg, name, strings.Join(tags, ", "))
}
