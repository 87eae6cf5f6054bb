package imsue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/aka"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/ipsec"
)

// RegisterOptions tune Register.
type RegisterOptions struct {
	// Retries sends the initial REGISTER that many more times, each after
	// the 401 to the previous one, with the same ports and (unless the
	// UE draws fresh ones) the same SPIs, as a UE does whose 401 was lost
	// or that restarts the procedure; the last challenge is answered.
	Retries int
	// FreshSPIs draws new SPIs for each retry (default: keep them).
	FreshSPIs bool
}

// Register runs the initial registration (TS 24.229 §5.1.1.2, TS 33.203
// §6.1, §7): an unprotected REGISTER with Security-Client, the 401 with
// the AKA challenge (answered with AUTS and registered again when the
// SQN is not fresh, §5.1.1.5.3), the SAs from the P-CSCF's
// Security-Server, then the REGISTER with the response over them. It
// returns when the 200 has arrived; a UE already registered starts over
// (a phone that lost its SAs), and the SAs of its old registration are
// replaced.
func (u *UE) Register(ctx context.Context, opts ...RegisterOptions) error {
	var o RegisterOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	u.regMu.Lock()
	defer u.regMu.Unlock()
	offers, err := u.offers(true)
	if err != nil {
		return err
	}
	res, err := u.register(ctx, "register", regRequest{expires: u.cfg.Expires, authz: u.emptyAuthz(), offers: offers})
	if err != nil {
		return err
	}
	for i := 0; i < o.Retries && res.StatusCode == sip.StatusUnauthorized; i++ {
		if offers, err = u.offers(o.FreshSPIs); err != nil {
			return err
		}
		if res, err = u.register(ctx, "register-retry", regRequest{expires: u.cfg.Expires, authz: u.emptyAuthz(), offers: offers}); err != nil {
			return err
		}
	}
	return u.complete(ctx, res, offers, nil, u.cfg.Expires)
}

// complete finishes a registration procedure from the response to its
// first REGISTER (see answer401) and records the registration.
func (u *UE) complete(ctx context.Context, res *sip.Response, offers []imsheader.SecurityMechanism, over *ipsec.SecAssoc, expires int) error {
	res, sa, server, err := u.answer401(ctx, res, offers, over, expires)
	if err != nil {
		return err
	}
	return u.registered(res, sa, server)
}

// SendOptions tune how a request leaves.
type SendOptions struct {
	// Unprotected sends the request from port-c to the P-CSCF's
	// unprotected port, outside the SA, with the headers it would have
	// over the SA (Security-Verify included): what the P-CSCF must not
	// take for protected (tests).
	Unprotected bool
}

// Reregister refreshes the registration over the SA (TS 24.229
// §5.1.1.4). When the S-CSCF challenges it again (re-authentication), a
// new SA set is agreed and the old one removed after the 200.
func (u *UE) Reregister(ctx context.Context, opts ...SendOptions) error {
	u.regMu.Lock()
	defer u.regMu.Unlock()
	sa := u.SA()
	if len(opts) > 0 && opts[0].Unprotected {
		verify := u.verify()
		offers, err := u.offers(false)
		if err != nil {
			return err
		}
		res, err := u.register(ctx, "reregister-unprotected", regRequest{expires: u.cfg.Expires, authz: u.lastAuthz(), offers: offers, verify: verify})
		if err != nil {
			return err
		}
		if res.StatusCode != sip.StatusOK {
			return statusError("REGISTER outside the SA", res)
		}
		return nil
	}
	if !u.Registered() {
		return fmt.Errorf("%w: re-registration needs a registration", ErrNotReg)
	}
	offers, err := u.offers(true)
	if err != nil {
		return err
	}
	res, err := u.register(ctx, "reregister", regRequest{expires: u.cfg.Expires, authz: u.lastAuthz(), offers: offers, verify: u.verify(), sa: sa})
	if err != nil {
		return err
	}
	return u.complete(ctx, res, offers, sa, u.cfg.Expires)
}

// SetTransport switches the transport of the next requests ("udp" or
// "tcp"), e.g. before a re-registration.
func (u *UE) SetTransport(tr string) error {
	tr = strings.ToLower(tr)
	if tr != "udp" && tr != "tcp" {
		return fmt.Errorf("%w: transport %q", ErrConfig, tr)
	}
	u.mu.Lock()
	u.tr = tr
	u.mu.Unlock()
	return nil
}

// DeregisterGrace bounds how long a de-registered UE with a reg event
// subscription keeps its SAs waiting for the NOTIFY that ends it.
const DeregisterGrace = 10 * time.Second

// Deregister ends the registration with a REGISTER with Expires 0 over
// the SA (TS 24.229 §5.1.1.6), then removes the SAs (once the reg event
// NOTIFY that ends the UE's subscription has come, when it has one).
func (u *UE) Deregister(ctx context.Context) error {
	u.regMu.Lock()
	defer u.regMu.Unlock()
	sa := u.SA()
	offers, err := u.offers(false)
	if err != nil {
		return err
	}
	u.mu.Lock()
	u.deregging = true
	u.mu.Unlock()
	defer func() {
		u.mu.Lock()
		u.deregging = false
		u.mu.Unlock()
	}()
	res, err := u.register(ctx, "deregister", regRequest{expires: 0, authz: u.lastAuthz(), offers: offers, verify: u.verify(), sa: sa})
	if err != nil {
		return err
	}
	// Without integrity protection the S-CSCF challenges it too.
	res, pend, _, err := u.answer401(ctx, res, offers, sa, 0)
	if err != nil {
		return fmt.Errorf("de-registration: %w", err)
	}
	_ = res
	u.mu.Lock()
	u.regState = regState{}
	drop := []*ipsec.SecAssoc{u.sa}
	if pend != nil && pend != u.sa {
		drop = append(drop, pend)
	}
	u.sa, u.pend, u.server = nil, nil, ""
	sub := u.sub
	u.mu.Unlock()
	if sub != nil && u.be != nil {
		// The S-CSCF's NOTIFY ending the reg event subscription still
		// comes through the SAs (TS 24.229 §5.1.1.6): they go once it
		// has, or after a grace.
		u.bg.Add(1)
		go func() {
			defer u.bg.Done()
			select {
			case <-sub.ended:
			case <-time.After(DeregisterGrace):
			case <-u.ctx.Done():
			}
			for _, x := range drop {
				if x != nil {
					_ = u.be.Remove(*x)
				}
			}
		}()
		return nil
	}
	var errs []error
	for _, x := range drop {
		if x != nil {
			if err := u.be.Remove(*x); err != nil {
				errs = append(errs, fmt.Errorf("%w: remove SAs: %v", ErrSecAgree, err))
			}
		}
	}
	return errors.Join(errs...)
}

// regRequest is one REGISTER to send.
type regRequest struct {
	expires int
	authz   string
	offers  []imsheader.SecurityMechanism
	verify  []imsheader.SecurityMechanism
	sa      *ipsec.SecAssoc // nil: unprotected
}

// register sends one REGISTER of the registration dialog (same Call-ID,
// next CSeq) and reports it as step.
func (u *UE) register(ctx context.Context, step string, r regRequest) (*sip.Response, error) {
	ruri := sip.Uri{Scheme: "sip", Host: u.domain}
	var impu sip.Uri
	_ = sip.ParseUri(u.cfg.IMPU, &impu)
	req := sip.NewRequest(sip.REGISTER, ruri)
	fp := sip.NewParams()
	fp.Add("tag", u.fromTag)
	req.AppendHeader(&sip.FromHeader{Address: impu, Params: fp})
	req.AppendHeader(&sip.ToHeader{Address: impu, Params: sip.NewParams()})
	u.mu.Lock()
	u.cseq++
	cseq := u.cseq
	tr := u.tr
	u.mu.Unlock()
	cid := sip.CallIDHeader(u.callID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: sip.REGISTER})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	cp := sip.NewParams()
	cp.Add("+sip.instance", `"`+u.cfg.InstanceID+`"`)
	cp.Add("+g.3gpp.icsi-ref", `"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel"`)
	cp.Add("expires", strconv.Itoa(r.expires))
	req.AppendHeader(&sip.ContactHeader{Address: u.contactURI(tr), Params: cp})
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(r.expires)))
	req.AppendHeader(sip.NewHeader("Authorization", r.authz))
	req.AppendHeader(sip.NewHeader("Supported", "path, gruu, sec-agree"))
	if len(r.offers) > 0 {
		req.AppendHeader(sip.NewHeader("Require", "sec-agree"))
		req.AppendHeader(sip.NewHeader("Proxy-Require", "sec-agree"))
		imsheader.SetSecurityClient(req, r.offers...)
		if len(r.verify) > 0 {
			imsheader.SetSecurityVerify(req, r.verify...)
		}
	}
	req.AppendHeader(sip.NewHeader("User-Agent", u.cfg.UserAgent))
	start := time.Now()
	res, err := u.do(ctx, req, r.sa, nil)
	detail := map[string]any{"cseq": cseq, "transport": strings.ToLower(req.Transport()), "protected": r.sa != nil, "expires": r.expires}
	u.step(step, start, res, err, detail)
	return res, err
}

// answer401 completes a registration from the response to the first
// REGISTER: 200 (no challenge: a protected re-registration or a digest
// network), or 401 with the AKA challenge, answered (resynchronising
// first when needed) over the SAs it agrees. over is the SA set the
// challenged REGISTER went over (nil: unprotected).
func (u *UE) answer401(ctx context.Context, res *sip.Response, offers []imsheader.SecurityMechanism, over *ipsec.SecAssoc, expires int) (*sip.Response, *ipsec.SecAssoc, string, error) {
	for round := 0; ; round++ {
		switch {
		case res.StatusCode == sip.StatusOK:
			return res, over, "", nil
		case res.StatusCode != sip.StatusUnauthorized:
			if res.StatusCode == 494 {
				return nil, nil, "", fmt.Errorf("%w: 494 Security Agreement Required: the P-CSCF did not accept the Security-Verify or the request did not come over the SA (Security-Server %q)", ErrSecAgree, headerValues(res, "Security-Server"))
			}
			return nil, nil, "", statusError("REGISTER", res)
		case round >= 3:
			return nil, nil, "", fmt.Errorf("%w: still challenged after %d rounds", ErrAuth, round)
		}
		ch, err := digest.GetWWWAuthenticate(res)
		if err != nil || ch == nil {
			return nil, nil, "", fmt.Errorf("%w: 401 without a usable WWW-Authenticate: %v", ErrAuth, err)
		}
		rnd, autn, err := digest.SplitAKANonce(ch.Nonce())
		if err != nil {
			return nil, nil, "", fmt.Errorf("%w: 401 nonce is not RAND‖AUTN (is the subscriber provisioned for AKA, not SIP digest?): %v", ErrAuth, err)
		}
		resp, ck, ik, auts, err := u.usim.Authenticate(rnd, autn)
		switch {
		case errors.Is(err, aka.ErrMACAMismatch):
			u.emit(Event{Step: "authenticate", Error: "AUTN MAC check failed"})
			return nil, nil, "", fmt.Errorf("%w: the network's AUTN does not verify (MAC-A): K or OP/OPc differ from the HSS's", ErrAuth)
		case errors.Is(err, aka.ErrSQNNotFresh):
			// SQN failure: AUTS over the SA in use, if any (TS 24.229
			// §5.1.1.5.3); the new challenge is answered on the next round.
			enc, _ := digest.EncodeAUTS(auts)
			authz := fmt.Sprintf(`Digest username="%s", realm="%s", uri="sip:%s", nonce="%s", response="", algorithm=%s, auts="%s"`,
				u.cfg.IMPI, ch.Realm(), u.domain, ch.Nonce(), algOr(ch.Algorithm()), enc)
			u.emit(Event{Step: "resync", Detail: map[string]any{"sqn_ms": u.usim.SQNMS()}})
			if res, err = u.register(ctx, "register-auts", regRequest{expires: expires, authz: authz, offers: offers, verify: u.verifyFor(over), sa: over}); err != nil {
				return nil, nil, "", err
			}
			continue
		case err != nil:
			return nil, nil, "", fmt.Errorf("%w: %v", ErrAuth, err)
		}
		authz := u.responseAuthz(ch, resp, ik, ck)
		// The SAs (TS 33.203 §7.2): from the Security-Server of the 401.
		var sa *ipsec.SecAssoc
		var verify []imsheader.SecurityMechanism
		server, _ := imsheader.GetSecurityServer(res)
		switch {
		case len(offers) > 0 && len(server) > 0:
			m, alg, ealg, err := u.chooseServer(server)
			if err != nil {
				return nil, nil, "", err
			}
			if sa, err = u.newSA(m, alg, ealg, ik, ck); err != nil {
				return nil, nil, "", err
			}
			u.emit(Event{Step: "sa-installed", Detail: saDetail(sa)})
			verify = server
		case len(offers) > 0 && u.cfg.IPsec == IPsecOn:
			return nil, nil, "", fmt.Errorf("%w: the P-CSCF's 401 has no Security-Server (its IPsec is off, or its kernel has no ESP)", ErrSecAgree)
		}
		step := "register-auth"
		if expires == 0 {
			step = "deregister-auth"
		}
		next, err := u.register(ctx, step, regRequest{expires: expires, authz: authz, offers: offers, verify: verify, sa: sa})
		if err != nil {
			u.dropSA(sa)
			return nil, nil, "", err
		}
		switch next.StatusCode {
		case sip.StatusOK:
			return next, sa, imsheader.FormatSecurity(server), nil
		case sip.StatusUnauthorized:
			u.dropSA(sa)
			return nil, nil, "", fmt.Errorf("%w: 401 again after the response: K or OP differ from the HSS? (or RES was refused)", ErrAuth)
		case sip.StatusForbidden:
			u.dropSA(sa)
			return nil, nil, "", fmt.Errorf("%w: 403 after the response: the S-CSCF refused RES, K or OP differ from the HSS? %v", ErrAuth, statusError("REGISTER", next))
		default:
			u.dropSA(sa)
			if next.StatusCode == 494 {
				return nil, nil, "", fmt.Errorf("%w: 494 to the protected REGISTER: the P-CSCF did not see it arrive over the SA it offered", ErrSecAgree)
			}
			return nil, nil, "", statusError("REGISTER with the response", next)
		}
	}
}

// registered records a 200: Service-Route, P-Associated-URI, expiry,
// the SA set in use and the credentials for re-registrations.
func (u *UE) registered(res *sip.Response, sa *ipsec.SecAssoc, server string) error {
	exp := u.cfg.Expires
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			exp = n
		}
	}
	for _, h := range res.GetHeaders("Contact") {
		if ch, ok := h.(*sip.ContactHeader); ok && ch.Address.Port == u.portS && ch.Address.Host == u.ip.String() {
			if v, ok := ch.Params.Get("expires"); ok {
				if n, err := strconv.Atoi(v); err == nil {
					exp = n
				}
			}
		}
	}
	var sr, assoc []string
	if rs, err := imsheader.GetServiceRoute(res); err == nil {
		for _, r := range rs {
			sr = append(sr, r.URI)
		}
	}
	if as, err := imsheader.GetPAssociatedURI(res); err == nil {
		for _, a := range as {
			assoc = append(assoc, a.URI)
		}
	}
	if sa != nil && server != "" {
		u.useSA(sa, server)
	}
	u.mu.Lock()
	u.regState = regState{registered: true, expires: time.Now().Add(time.Duration(exp) * time.Second), serviceRoute: sr, associated: assoc}
	cur := u.sa
	u.mu.Unlock()
	d := map[string]any{"expires": exp, "service_route": sr, "associated": assoc}
	for k, v := range saDetail(cur) {
		d[k] = v
	}
	u.emit(Event{Step: "registered", Detail: d})
	return nil
}

// Associated returns the P-Associated-URI of the last 200.
func (u *UE) Associated() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.regState.associated...)
}

func (u *UE) emptyAuthz() string {
	return fmt.Sprintf(`Digest username="%s", realm="%s", uri="sip:%s", nonce="", response=""`, u.cfg.IMPI, u.domain, u.domain)
}

// lastAuthz is the Authorization of a re-registration: the credentials
// of the last challenge (TS 24.229 §5.1.1.4.1).
func (u *UE) lastAuthz() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.lastNonce == "" {
		return fmt.Sprintf(`Digest username="%s", realm="%s", uri="sip:%s", nonce="", response=""`, u.cfg.IMPI, u.domain, u.domain)
	}
	return fmt.Sprintf(`Digest username="%s", realm="%s", uri="sip:%s", nonce="%s", response="%s", algorithm=AKAv1-MD5`, u.cfg.IMPI, u.domain, u.domain, u.lastNonce, u.lastResp)
}

// responseAuthz answers a challenge with RES (AKAv1-MD5: RES is the
// password, RFC 3310; AKAv2: RFC 4169).
func (u *UE) responseAuthz(ch *digest.Header, res, ik, ck []byte) string {
	alg := algOr(ch.Algorithm())
	pw := digest.AKAv1Password(res)
	if strings.EqualFold(alg, "AKAv2-MD5") {
		pw = digest.AKAv2Password(res, ik, ck)
	}
	uri := "sip:" + u.domain
	ha1 := digest.HA1(u.cfg.IMPI, ch.Realm(), string(pw))
	qop := ""
	for _, q := range ch.QOPOptions() {
		if strings.EqualFold(q, "auth") {
			qop = "auth"
		}
	}
	var authz, resp string
	if qop != "" {
		cnonce := sip.GenerateTagN(8)
		resp = digest.Response(ha1, "REGISTER", uri, ch.Nonce(), "00000001", cnonce, qop)
		authz = fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=00000001, cnonce="%s"`,
			u.cfg.IMPI, ch.Realm(), ch.Nonce(), uri, resp, alg, cnonce)
	} else {
		resp = digest.Response(ha1, "REGISTER", uri, ch.Nonce(), "", "", "")
		authz = fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s`,
			u.cfg.IMPI, ch.Realm(), ch.Nonce(), uri, resp, alg)
	}
	if op := ch.Opaque(); op != "" {
		authz += fmt.Sprintf(`, opaque="%s"`, op)
	}
	u.mu.Lock()
	u.lastNonce, u.lastResp = ch.Nonce(), resp
	u.mu.Unlock()
	return authz
}

func algOr(a string) string {
	if a == "" {
		return "AKAv1-MD5"
	}
	return a
}

// verify is the Security-Verify of requests over the SA in use: the
// Security-Server it was agreed with (RFC 3329 §2.3.1).
func (u *UE) verify() []imsheader.SecurityMechanism {
	u.mu.Lock()
	s := u.server
	u.mu.Unlock()
	if s == "" {
		return nil
	}
	l, _ := imsheader.ParseSecurity(imsheader.HeaderSecurityVerify, s)
	return l
}

// verifyFor is verify when sa is the set in use, else nothing.
func (u *UE) verifyFor(sa *ipsec.SecAssoc) []imsheader.SecurityMechanism {
	if sa == nil {
		return nil
	}
	return u.verify()
}
