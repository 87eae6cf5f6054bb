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
	offers, err := imsheader.GetSecurityClient(req)
	if err != nil {
		_ = t.Respond(sip.StatusBadRequest, "Bad Security-Client")
		return
	}
	verify, err := imsheader.GetSecurityVerify(req)
	if err != nil {
		_ = t.Respond(sip.StatusBadRequest, "Bad Security-Verify")
		return
	}
	ueOffersIPsec := false
	for _, o := range offers {
		if strings.EqualFold(o.Name, imsheader.MechanismIPsec3GPP) {
			ueOffersIPsec = true
		}
	}

	// Is this REGISTER protected: did it come through an SA set we set
	// up (pending from a 401, or the set of a registered contact)? Where
	// it came from alone does not tell (see secagree.go).
	integrity := digest.IntegrityNo
	switch {
	case over != nil:
		offered, _ := imsheader.ParseSecurity(imsheader.HeaderSecurityServer, over.server)
		if !imsheader.EquivalentSecurityLists(verify, offered) {
			s.m.rejected.WithLabelValues("security_verify").Inc()
			s.log.Info("Security-Verify differs from the Security-Server offered", zap.Stringer("flow", src), zap.String("sa", describeSet(over)))
			_ = t.Respond(494, "Security Agreement Required", sip.NewHeader("Security-Server", over.server), sip.NewHeader("Require", "sec-agree"))
			return
		}
		integrity = digest.IntegrityIPsec3GPP
	case len(verify) > 0 && s.ipsecOK:
		// Security-Verify outside any SA: not sent over the agreed SA.
		s.m.rejected.WithLabelValues("unprotected_verify").Inc()
		_ = t.Respond(sip.StatusForbidden, "Forbidden - Security-Verify outside the security association")
		return
	case s.cfg.IPsec == IPsecOn && !ueOffersIPsec:
		_ = t.Respond(421, "Extension Required", sip.NewHeader("Require", "sec-agree"))
		return
	}

	// Request edits (TS 24.229 §5.2.2.1).
	s.markAuthorization(req, integrity)
	imsheader.RemoveHeaders(req, imsheader.HeaderSecurityClient)
	imsheader.RemoveHeaders(req, imsheader.HeaderSecurityVerify)
	removeOptionTag(req, "Require", "sec-agree")
	removeOptionTag(req, "Proxy-Require", "sec-agree")
	addOptionTag(req, "Require", "path")
	addOptionTag(req, "Supported", "path")
	pathURI := s.pathURI(src, nil)
	imsheader.PrependPath(req, imsheader.NameAddr{URI: pathURI})
	imsheader.SetPVisitedNetworkID(req, imsheader.NewVisitedNetwork(s.cfg.VisitedNetworkID))
	pcv := imsheader.NewPChargingVector(imsheader.NewICID(), hostRef(s.cfg.SIPHost))
	pcv.SetOrigIOI(s.cfg.Domain)
	imsheader.SetPChargingVector(req, pcv)

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
		s.on401(t, res, offers, src)
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

// on401 takes ik/ck out of the challenge and, when the UE offered
// ipsec-3gpp and IPsec is usable, installs the SAs and adds
// Security-Server (TS 33.203 §7.2, TS 24.229 §5.2.2.1).
func (s *PCSCF) on401(t *sipproxy.Txn, res *sip.Response, offers []imsheader.SecurityMechanism, src contacts.Flow) {
	ch, err := digest.GetWWWAuthenticate(res)
	if err != nil || ch == nil {
		return
	}
	ik, ck, kerr := ch.Keys()
	hs, _ := digest.GetAll(res, digest.HeaderWWWAuthenticate)
	for _, h := range hs {
		h.Del("ik")
		h.Del("ck")
	}
	digest.Set(res, digest.HeaderWWWAuthenticate, hs...)
	if !s.ipsecOK || len(offers) == 0 {
		return
	}
	m, alg, ealg, ok := ipsec.ChooseAlgs(offers, s.cfg.Algs, s.cfg.EAlgs)
	if !ok {
		s.log.Info("no common ipsec-3gpp algorithm with the UE", zap.Stringer("flow", src))
		return
	}
	if kerr != nil {
		s.log.Warn("401 without usable ik/ck: no SAs", zap.Error(kerr))
		return
	}
	uePortC, _ := m.PortC()
	uePortS, _ := m.PortS()
	ueSPIC, _ := m.SPIC()
	ueSPIS, _ := m.SPIS()
	ue := ipsec.Endpoint{IP: parseIP(src.Host), PortC: uePortC, PortS: uePortS, SPIC: ueSPIC, SPIS: ueSPIS}
	if v4 := ue.IP.To4(); v4 != nil {
		ue.IP = v4
	}
	key := pendingKey(src.Host, int(uePortC))
	set, err := s.newSet(ue, alg, ealg, ik, ck, key)
	if err != nil {
		s.log.Error("install SAs", zap.Error(err))
		res.StatusCode, res.Reason = sip.StatusInternalServerError, "Server Internal Error - IPsec SA setup failed"
		return
	}
	server := serverOf(set.sa)
	set.server = imsheader.FormatSecurity(server)
	imsheader.SetSecurityServer(res, server...)
	// A newer challenge replaces the set pending for the same UE port-c
	// (a retried REGISTER, a resynchronisation).
	s.mu.Lock()
	old := s.pending[key]
	s.pending[key] = set
	s.mu.Unlock()
	if old != nil && old != set {
		s.dropSet(old)
	}
	s.log.Info("SAs installed for sec-agree", zap.String("ue", src.Host), zap.String("sa", describeSet(set)), zap.String("alg", alg), zap.String("ealg", ealg))
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
		prev := s.store.Get(key)
		// The contact this registration renews: the same key, or, over
		// an SA, the contact of that SA set even when the UE switched
		// between UDP and TCP (its flow, so its key, changed; its SA, its
		// Security-Server and its Rx sessions did not).
		carried := ""
		if prev == nil && over != nil {
			s.mu.Lock()
			k := over.contact
			s.mu.Unlock()
			if k != "" && k != key {
				if prev = s.store.Get(k); prev != nil {
					carried = k
				}
			}
		}
		c := &contacts.Contact{
			AOR: aor, Flow: src, IMPUs: impus, ServiceRoute: sr,
			Expires: time.Now().Add(time.Duration(exp) * time.Second), Registered: time.Now(),
		}
		if prev != nil {
			c.Registered, c.RxSessions, c.RxSignalling, c.RegSubscription, c.SA, c.SecurityServer = prev.Registered, prev.RxSessions, prev.RxSignalling, prev.RegSubscription, prev.SA, prev.SecurityServer
		}
		c.ChargingAddresses = s.storedChargingAddresses(res, prev)
		var oldSets []*saSet
		if over != nil {
			if o := s.setOf(c.SA); o != nil && o != over {
				oldSets = append(oldSets, o) // replaced only now that the new registration succeeded
			}
			sa := over.sa
			c.SA, c.SecurityServer = &sa, over.server
		}
		if carried != "" {
			_, _ = s.store.Delete(ctx, carried)
		}
		// A contact registered before over another flow of the same UE
		// (e.g. unprotected, then over the SA) is replaced; what it held
		// ends (its SA set, its Rx sessions).
		for _, o := range s.store.ByAOR(aor) {
			if o.Key() != key && sameHost(o.Flow.Host, src.Host) {
				if d, _ := s.store.Delete(ctx, o.Key()); d != nil {
					if over != nil && s.setOf(d.SA) == over {
						d.SA = nil // the set goes on with the new contact
					}
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
		if over != nil {
			s.activate(over, key)
		}
		for _, o := range oldSets {
			s.dropSet(o)
		}
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

// pendingKey is the key of a pending SA set in PCSCF.pending: the UE's
// address (normalised as sameHost compares it) and its protected client
// port, from which the REGISTER answering the 401 comes.
func pendingKey(host string, portC int) string {
	if ip := parseIP(host); ip != nil {
		host = ip.String()
	}
	return strings.ToLower(host) + "|" + strconv.Itoa(portC)
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
