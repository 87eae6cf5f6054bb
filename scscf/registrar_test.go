package scscf

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/aka"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/scscf/binding"
)

func akaSub(user string, more ...string) *testSub {
	impus := []string{"sip:" + user + "@" + testDomain}
	impus = append(impus, more...)
	return &testSub{impi: user + "@" + testDomain, impus: impus, scheme: "aka"}
}

func hdr(res *sip.Response, name string) string {
	var v []string
	for _, h := range res.GetHeaders(name) {
		v = append(v, h.Value())
	}
	return strings.Join(v, ", ")
}

func TestAKARegistration(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("alice", "tel:+15551234", "sip:alice.barred@"+testDomain))
	h.subs["alice@"+testDomain].barred["sip:alice.barred@"+testDomain] = true
	var events []binding.Event
	var evMu sync.Mutex
	s := newTestServer(t, h, "", func(c *Config) {
		c.OnRegistrationChange = func(ev binding.Event) { evMu.Lock(); events = append(events, ev); evMu.Unlock() }
	})
	u := newTestUE(t, "alice")
	u.path = "<sip:term@pcscf." + testDomain + ":5060;lr>"

	res := u.send(t, s, 600000, u.initialAuthz(), sip.NewHeader("P-Visited-Network-ID", `"visited.example.net"`),
		sip.NewHeader("P-Charging-Vector", "icid-value=abc123;orig-ioi=visited.example.net"))
	ch := challengeOf(t, res)
	if ch.Algorithm() != digest.AlgAKAv1 || ch.QOP() != "auth" || ch.Realm() != testDomain {
		t.Errorf("challenge %s", ch)
	}
	rnd, autn, err := digest.SplitAKANonce(ch.Nonce())
	if err != nil {
		t.Fatal(err)
	}
	opc, _ := aka.ComputeOPc(set1K, set1OP)
	_, ck, ik, _, err := aka.CheckAUTN(set1K, opc, rnd, autn)
	if err != nil {
		t.Fatalf("AUTN of the nonce: %v", err)
	}
	if ch.IK() != hex.EncodeToString(ik) || ch.CK() != hex.EncodeToString(ck) {
		t.Errorf("ik/ck %s/%s, want %x/%x", ch.IK(), ch.CK(), ik, ck)
	}
	mar := h.requests()[0]
	if mar.cmd != diameter.CmdMultimediaAuth || mar.scheme != SchemeUnknown || mar.n != 2 || mar.impi != u.impi || mar.impu != u.impu || mar.server != s.cfg.ServerName {
		t.Errorf("MAR %+v", mar)
	}

	res = u.send(t, s, 600000, u.answer(t, res, true), sip.NewHeader("P-Visited-Network-ID", `"visited.example.net"`),
		sip.NewHeader("P-Charging-Vector", "icid-value=abc123;orig-ioi=visited.example.net"))
	if res.StatusCode != 200 {
		t.Fatalf("got %d %s", res.StatusCode, res.Reason)
	}
	sr := h.waitSAR(t, diameter.SATRegistration, time.Second)
	if sr.uda != diameter.UserDataNotAvailable || sr.server != s.cfg.ServerName || sr.impu != u.impu {
		t.Errorf("SAR %+v", sr)
	}
	wantSR := "<sip:orig@" + s.hostport + ";lr>"
	if got := hdr(res, "Service-Route"); got != wantSR {
		t.Errorf("Service-Route %q, want %q", got, wantSR)
	}
	if got := hdr(res, "P-Associated-URI"); got != "<"+u.impu+">, <tel:+15551234>" {
		t.Errorf("P-Associated-URI %q", got)
	}
	if got := hdr(res, "Path"); got != u.path {
		t.Errorf("Path %q", got)
	}
	if !strings.Contains(hdr(res, "Require"), "path") {
		t.Error("no Require: path")
	}
	contact := hdr(res, "Contact")
	if !strings.Contains(contact, `+sip.instance="<urn:gsma:imei:35-000000-000000-0>"`) || !strings.Contains(contact, "reg-id=1") ||
		!strings.Contains(contact, `+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel"`) || !strings.Contains(contact, "expires=3600") {
		t.Errorf("Contact %q", contact)
	}
	reg, ok := s.Lookup("tel:+15551234")
	if !ok || len(reg.Contacts) != 1 || reg.IMPI != u.impi || reg.Contacts[0].VisitedNetwork != `"visited.example.net"` ||
		!strings.Contains(reg.Contacts[0].ChargingVector, "icid-value=abc123") || reg.Contacts[0].Path[0] != u.path {
		t.Errorf("Lookup %+v %v", reg, ok)
	}

	// Re-registration: the spare vector of the first MAR, no new MAR.
	res = u.send(t, s, 600, u.initialAuthz())
	res = u.send(t, s, 600, u.answer(t, res, true))
	if res.StatusCode != 200 {
		t.Fatalf("re-registration: %d", res.StatusCode)
	}
	marCount := 0
	for _, r := range h.requests() {
		if r.cmd == diameter.CmdMultimediaAuth {
			marCount++
		}
	}
	if marCount != 1 {
		t.Errorf("%d MARs, want 1 (second vector cached)", marCount)
	}
	rr := h.waitSAR(t, diameter.SATReRegistration, time.Second)
	if rr.uda != diameter.UserDataAlreadyAvailable {
		t.Errorf("re-registration SAR User-Data-Already-Available %d", rr.uda)
	}
	if !strings.Contains(hdr(res, "Contact"), "expires=600") {
		t.Errorf("Contact %q", hdr(res, "Contact"))
	}
	// A third: the cache is empty, a new MAR.
	u.registerAKA(t, s, 600)
	// The event is emitted right after the 200 is sent.
	waitFor(t, "three registration events", func() bool {
		evMu.Lock()
		defer evMu.Unlock()
		return len(events) >= 3
	})
	evMu.Lock()
	defer evMu.Unlock()
	if len(events) != 3 || events[0].Kind != binding.EventRegistered || events[1].Kind != binding.EventRefreshed {
		t.Errorf("events %+v", events)
	}
}

func TestWrongRESGets403AndSARAuthenticationFailure(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("bob"))
	s := newTestServer(t, h, "", nil)
	u := newTestUE(t, "bob")
	res := u.send(t, s, 600, u.initialAuthz())
	ch := challengeOf(t, res)
	res = u.send(t, s, 600, u.credentials(ch, "\x00\x01\x02\x03\x04\x05\x06\x07", true))
	if res.StatusCode != 403 || !strings.Contains(res.Reason, "Authentication failed") {
		t.Fatalf("got %d %s", res.StatusCode, res.Reason)
	}
	h.waitSAR(t, diameter.SATAuthenticationFailure, 2*time.Second)
	if _, ok := s.Lookup(u.impu); ok {
		t.Error("registered after a wrong response")
	}
}

func TestRESWithZeroBytesIsThePassword(t *testing.T) {
	// RES as raw bytes, zero bytes included (RFC 3310 §3.3): a challenge
	// with a known XRES containing 0x00 verifies only with those bytes.
	c := &challenge{realm: testDomain, v: &vector{alg: digest.AlgAKAv1, xres: []byte{0x12, 0x00, 0x34, 0x00, 0, 0, 0x56, 0x78}}}
	u := &testUE{impi: "z@" + testDomain}
	ch := digest.NewAKAChallenge(testDomain, "bm9uY2U=", digest.AlgAKAv1, make([]byte, 16), make([]byte, 16))
	s := &Server{auth: newAuthState()}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: testDomain})
	good, _ := digest.Parse(u.credentials(ch, string(c.v.xres), false))
	if ok, why := s.verify(c, good, req); !ok {
		t.Errorf("RES with zero bytes rejected: %s", why)
	}
	trunc, _ := digest.Parse(u.credentials(ch, "\x12", false)) // what a C-string bug would use
	if ok, _ := s.verify(c, trunc, req); ok {
		t.Error("truncated RES accepted")
	}
}

func TestMD5WithAndWithoutQop(t *testing.T) {
	h := newTestHSS(t)
	h.add(&testSub{impi: "carol@" + testDomain, impus: []string{"sip:carol@" + testDomain}, scheme: "md5", password: "secret"})
	s := newTestServer(t, h, "", nil)
	for _, qop := range []bool{true, false} {
		u := newTestUE(t, "carol")
		u.password = "secret"
		u.contact = "<sip:carol@127.0.0.1:6000>"
		res := u.send(t, s, 600, "")
		ch := challengeOf(t, res)
		if ch.Algorithm() != digest.AlgMD5 || ch.QOP() != "auth" || ch.Has("ik") {
			t.Errorf("MD5 challenge %s", ch)
		}
		if _, _, err := digest.SplitAKANonce(ch.Nonce()); err != nil && len(ch.Nonce()) < 16 {
			t.Errorf("nonce %q too short", ch.Nonce())
		}
		res = u.send(t, s, 600, u.answer(t, res, qop))
		if res.StatusCode != 200 {
			t.Fatalf("qop=%v: %d %s", qop, res.StatusCode, res.Reason)
		}
		// Wrong password.
		res = u.send(t, s, 600, "")
		u.password = "wrong"
		res = u.send(t, s, 600, u.answer(t, res, qop))
		if res.StatusCode != 403 {
			t.Fatalf("qop=%v wrong password: %d", qop, res.StatusCode)
		}
	}
	if h.requests()[0].scheme != SchemeUnknown {
		t.Errorf("first MAR scheme %q", h.requests()[0].scheme)
	}
}

func TestNonceReplayRejected(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("dave"))
	s := newTestServer(t, h, "", nil)
	u := newTestUE(t, "dave")
	res := u.send(t, s, 600, u.initialAuthz())
	authz := u.answer(t, res, true)
	if res = u.send(t, s, 600, authz); res.StatusCode != 200 {
		t.Fatalf("%d", res.StatusCode)
	}
	// The same credentials again (new CSeq): the nonce is used up.
	res = u.send(t, s, 600, authz)
	if res.StatusCode != 401 {
		t.Fatalf("replayed nonce: %d, want 401", res.StatusCode)
	}
	if challengeOf(t, res).Nonce() == mustNonce(t, authz) {
		t.Error("the replayed nonce was offered again")
	}
	// Another IMPI cannot use a nonce issued to dave.
	h.add(akaSub("eve"))
	e := newTestUE(t, "eve")
	res = e.send(t, s, 600, e.initialAuthz())
	ch := challengeOf(t, res)
	other := strings.Replace(e.answer(t, res, true), "eve@", "dave@", 1)
	_ = ch
	if res = e.send(t, s, 600, other); res.StatusCode == 200 {
		t.Fatal("dave's identity accepted with eve's nonce")
	}
}

func mustNonce(t *testing.T, authz string) string {
	h, err := digest.Parse(authz)
	if err != nil {
		t.Fatal(err)
	}
	return h.Nonce()
}

func TestResyncWithAUTS(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("frank"))
	s := newTestServer(t, h, "", nil)
	u := newTestUE(t, "frank")
	opc, _ := aka.ComputeOPc(set1K, set1OP)
	// The USIM has seen a much higher SQN than the HSS will use.
	usim, _ := aka.NewUE(set1K, opc, 1<<30)
	u.usim = usim
	res := u.send(t, s, 600, u.initialAuthz())
	ch := challengeOf(t, res)
	rnd, autn, _ := digest.SplitAKANonce(ch.Nonce())
	_, _, _, auts, err := usim.Authenticate(rnd, autn)
	if err == nil || auts == nil {
		t.Fatalf("USIM accepted a stale SQN: %v", err)
	}
	enc, _ := digest.EncodeAUTS(auts)
	authz := `Digest username="` + u.impi + `", realm="` + testDomain + `", nonce="` + ch.Nonce() + `", uri="sip:` + testDomain +
		`", response="", algorithm=AKAv1-MD5, auts="` + enc + `"`
	res = u.send(t, s, 600, authz)
	ch2 := challengeOf(t, res)
	var resyncMAR *cxReq
	for _, r := range h.requests() {
		if r.resync != nil {
			r := r
			resyncMAR = &r
		}
	}
	if resyncMAR == nil || !bytes.Equal(resyncMAR.resync, append(rnd, auts...)) {
		t.Fatalf("no MAR with SIP-Authorization = RAND‖AUTS: %+v", resyncMAR)
	}
	if ch2.Nonce() == ch.Nonce() {
		t.Fatal("same nonce after resync")
	}
	res = u.send(t, s, 600, u.answer(t, res, true))
	if res.StatusCode != 200 {
		t.Fatalf("after resync: %d %s", res.StatusCode, res.Reason)
	}
}

func TestIntervalTooBrief(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("gina"))
	s := newTestServer(t, h, "", nil)
	u := newTestUE(t, "gina")
	res := u.send(t, s, 10, u.initialAuthz())
	if res.StatusCode != 423 || hdr(res, "Min-Expires") != "60" {
		t.Fatalf("got %d Min-Expires %q", res.StatusCode, hdr(res, "Min-Expires"))
	}
	if len(h.requests()) != 0 {
		t.Error("423 cost a MAR")
	}
}

func TestDeregistration(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("hank"))
	var mu sync.Mutex
	var last binding.Event
	s := newTestServer(t, h, "", func(c *Config) {
		c.OnRegistrationChange = func(ev binding.Event) { mu.Lock(); last = ev; mu.Unlock() }
	})
	u := newTestUE(t, "hank")
	u.registerAKA(t, s, 600)
	res := u.send(t, s, 0, u.initialAuthz())
	res = u.send(t, s, 0, u.answer(t, res, true))
	if res.StatusCode != 200 || hdr(res, "Contact") != "" {
		t.Fatalf("de-registration: %d Contact %q", res.StatusCode, hdr(res, "Contact"))
	}
	h.waitSAR(t, diameter.SATUserDeregistration, time.Second)
	if _, ok := s.Lookup(u.impu); ok {
		t.Error("still registered")
	}
	// The hook runs after the change is stored, which may be after the SAR
	// went out: wait for it rather than sampling once.
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		ev := last
		mu.Unlock()
		if ev.Kind == binding.EventDeregistered {
			if len(ev.Changed) != 1 || len(ev.After.Contacts) != 0 {
				t.Errorf("event %+v", ev)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no deregistered event; last %v", ev.Kind)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Contact: * with Expires: 0 removes every binding.
	u.registerAKA(t, s, 600)
	u2 := *u
	u2.contact = "<sip:hank@127.0.0.1:7000>"
	u2.registerAKA(t, s, 600)
	if reg, _ := s.Lookup(u.impu); len(reg.Contacts) != 2 {
		t.Fatalf("%d contacts", len(reg.Contacts))
	}
	u2.contact = "*"
	res = u2.send(t, s, 0, u.initialAuthz())
	res = u2.send(t, s, 0, u2.answer(t, res, true))
	if res.StatusCode != 200 {
		t.Fatalf("Contact *: %d", res.StatusCode)
	}
	if _, ok := s.Lookup(u.impu); ok {
		t.Error("still registered after Contact: *")
	}
}

func TestExpiryAndChallengeTimeout(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("ivan"))
	h.add(akaSub("jane"))
	s := newTestServer(t, h, "", func(c *Config) {
		c.MinExpires, c.DefaultExpires = time.Second, time.Second
		c.ChallengeTimeout, c.NonceLifetime = 300*time.Millisecond, 300*time.Millisecond
	})
	u := newTestUE(t, "ivan")
	u.registerAKA(t, s, 1)
	if _, ok := s.Lookup(u.impu); !ok {
		t.Fatal("not registered")
	}
	sar := h.waitSAR(t, diameter.SATTimeoutDeregistration, 3*time.Second)
	if sar.impu != u.impu {
		t.Errorf("SAR %+v", sar)
	}
	if _, ok := s.Lookup(u.impu); ok {
		t.Error("binding outlived its expiry")
	}
	// A challenge nobody answers.
	j := newTestUE(t, "jane")
	challengeOf(t, j.send(t, s, 600, j.initialAuthz()))
	sar = h.waitSAR(t, diameter.SATAuthenticationTimeout, 3*time.Second)
	if sar.impi != j.impi {
		t.Errorf("SAR %+v", sar)
	}
}

func TestRTR(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("kate", "sip:kate2@"+testDomain))
	h.add(akaSub("leo"))
	var mu sync.Mutex
	var kinds []binding.EventKind
	s := newTestServer(t, h, "", func(c *Config) {
		c.OnRegistrationChange = func(ev binding.Event) { mu.Lock(); kinds = append(kinds, ev.Kind); mu.Unlock() }
	})
	k, l := newTestUE(t, "kate"), newTestUE(t, "leo")
	k.registerAKA(t, s, 600)
	l.registerAKA(t, s, 600)

	// IMPU-list form naming the second IMPU of kate's set.
	rtr := h.node.NewRequest(diameter.CmdRegistrationTermination, diameter.AppCx, testDomain, s.cfg.OriginHost)
	rtr.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(k.impi)))
	rtr.AddAVP(diameter.NewAVP(diameter.AVPPublicIdentity, datatype.UTF8String("sip:kate2@"+testDomain)))
	rtr.AddAVP(diameter.Grouped(diameter.AVPDeregistrationReason,
		diameter.NewAVP(diameter.AVPReasonCode, datatype.Enumerated(diameter.ReasonPermanentTermination)),
		diameter.NewAVP(diameter.AVPReasonInfo, datatype.UTF8String("operator"))))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := h.node.Send(ctx, rtr)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := diameter.Result(a); code != diameter.DiameterSuccess {
		t.Fatalf("RTA %d", code)
	}
	if _, ok := s.Lookup(k.impu); ok {
		t.Error("kate still registered")
	}
	if _, ok := s.Lookup(l.impu); !ok {
		t.Error("leo lost his registration")
	}
	// IMPI-only form.
	rtr = h.node.NewRequest(diameter.CmdRegistrationTermination, diameter.AppCx, testDomain, s.cfg.OriginHost)
	rtr.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(l.impi)))
	rtr.AddAVP(diameter.Grouped(diameter.AVPDeregistrationReason,
		diameter.NewAVP(diameter.AVPReasonCode, datatype.Enumerated(diameter.ReasonPermanentTermination))))
	if a, err = h.node.Send(ctx, rtr); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := diameter.Result(a); code != diameter.DiameterSuccess {
		t.Fatalf("RTA %d", code)
	}
	if _, ok := s.Lookup(l.impu); ok {
		t.Error("leo still registered")
	}
	if n := h.sars(diameter.SATUserDeregistration) + h.sars(diameter.SATTimeoutDeregistration); n != 0 {
		t.Errorf("%d SARs after RTR", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(kinds) != 4 || kinds[2] != binding.EventTerminated || kinds[3] != binding.EventTerminated {
		t.Errorf("events %v", kinds)
	}
}

func TestPPRReplacesProfile(t *testing.T) {
	h := newTestHSS(t)
	sub := akaSub("mia")
	h.add(sub)
	s := newTestServer(t, h, "", nil)
	u := newTestUE(t, "mia")
	u.registerAKA(t, s, 600)
	h.mu.Lock() // the scripted HSS writes sub.sqn
	newSub := *sub
	h.mu.Unlock()
	newSub.impus = append([]string{}, sub.impus...)
	newSub.impus = append(newSub.impus, "tel:+4930123")
	ppr := h.node.NewRequest(diameter.CmdPushProfile, diameter.AppCx, testDomain, s.cfg.OriginHost)
	ppr.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(u.impi)))
	ppr.AddAVP(diameter.NewAVP(diameter.AVPUserData, datatype.OctetString(userDataFor(t, &newSub))))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := h.node.Send(ctx, ppr)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := diameter.Result(a); code != diameter.DiameterSuccess {
		t.Fatalf("PPA %d", code)
	}
	reg, ok := s.Lookup("tel:+4930123")
	if !ok || len(reg.IMPUs) != 2 {
		t.Fatalf("after PPR: %+v %v", reg, ok)
	}
	// Bad User-Data: 5009, profile unchanged.
	ppr = h.node.NewRequest(diameter.CmdPushProfile, diameter.AppCx, testDomain, s.cfg.OriginHost)
	ppr.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(u.impi)))
	ppr.AddAVP(diameter.NewAVP(diameter.AVPUserData, datatype.OctetString("<nope")))
	a, err = h.node.Send(ctx, ppr)
	if err != nil {
		t.Fatal(err)
	}
	if code, exp, _ := diameter.Result(a); code != diameter.DiameterErrorNotSupportedUserData || !exp {
		t.Errorf("bad User-Data: %d", code)
	}
	// Unknown IMPI: 5001.
	ppr = h.node.NewRequest(diameter.CmdPushProfile, diameter.AppCx, testDomain, s.cfg.OriginHost)
	ppr.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String("nobody@"+testDomain)))
	a, _ = h.node.Send(ctx, ppr)
	if code, _, _ := diameter.Result(a); code != diameter.DiameterErrorUserUnknown {
		t.Errorf("unknown IMPI: %d", code)
	}
}

func TestRestartKeepsBindings(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("nina"))
	h.add(akaSub("omar"))
	s1 := newTestServer(t, h, "", func(c *Config) { c.MinExpires = time.Second })
	dsn := s1.cfg.DatabaseURL
	n, o := newTestUE(t, "nina"), newTestUE(t, "omar")
	n.registerAKA(t, s1, 600)
	o.registerAKA(t, s1, 1)
	_ = s1.Close()
	time.Sleep(1200 * time.Millisecond) // omar's binding expires while down

	s2 := newTestServer(t, h, dsn, func(c *Config) { c.MinExpires = time.Second })
	reg, ok := s2.Lookup(n.impu)
	if !ok || len(reg.Contacts) != 1 || reg.Contacts[0].Instance != "<urn:gsma:imei:35-000000-000000-0>" {
		t.Fatalf("after restart: %+v %v", reg, ok)
	}
	sar := h.waitSAR(t, diameter.SATTimeoutDeregistration, 3*time.Second)
	if sar.impu != o.impu {
		t.Errorf("SAR %+v", sar)
	}
	// The reloaded registration is a re-registration for the HSS.
	n.registerAKA(t, s2, 600)
	h.waitSAR(t, diameter.SATReRegistration, time.Second)
	st, _ := s2.Status(context.Background())
	if regs := st.(Status).Registrations; len(regs) != 1 || regs[0].AOR != n.impu {
		t.Errorf("status %+v", regs)
	}
}

func TestHSSErrors(t *testing.T) {
	h := newTestHSS(t)
	h.add(&testSub{impi: "pat@" + testDomain, impus: []string{"sip:pat@" + testDomain}, scheme: "md5", password: "x"})
	h.add(akaSub("quinn", "sip:quinn.barred@"+testDomain))
	h.subs["quinn@"+testDomain].barred["sip:quinn.barred@"+testDomain] = true
	s := newTestServer(t, h, "", nil)

	u := newTestUE(t, "nobody")
	if res := u.send(t, s, 600, u.initialAuthz()); res.StatusCode != 403 || !strings.Contains(res.Reason, "unknown") {
		t.Errorf("unknown user: %d %s", res.StatusCode, res.Reason)
	}
	// An AKA answer for an MD5-only subscriber: 5006 names the algorithm.
	p := newTestUE(t, "pat")
	authz := `Digest username="` + p.impi + `", realm="` + testDomain + `", uri="sip:` + testDomain + `", nonce="", response="", algorithm=AKAv1-MD5`
	if res := p.send(t, s, 600, authz); res.StatusCode != 403 || !strings.Contains(res.Reason, "AKAv1-MD5") {
		t.Errorf("scheme not supported: %d %s", res.StatusCode, res.Reason)
	}
	// A barred IMPU of an IRS cannot register.
	q := newTestUE(t, "quinn")
	q.impu = "sip:quinn.barred@" + testDomain
	res := q.sendTo(t, s, "quinn.barred")
	if res.StatusCode != 403 || !strings.Contains(res.Reason, "barred") {
		t.Errorf("barred: %d %s", res.StatusCode, res.Reason)
	}
	// MAR 5012 and a dead HSS: 5xx with Warning, never 403.
	h.add(akaSub("rob"))
	h.mu.Lock()
	h.marFail = diameter.DiameterUnableToComply
	h.mu.Unlock()
	r := newTestUE(t, "rob")
	res = r.send(t, s, 600, "")
	if res.StatusCode < 500 || !strings.Contains(hdr(res, "Warning"), "399 127.0.0.1 \"HSS") {
		t.Errorf("MAR 5012: %d Warning %q", res.StatusCode, hdr(res, "Warning"))
	}
	// HSS unreachable.
	s2 := newTestServer(t, h, "", nil)
	_ = h.node.Close(context.Background())
	deadline := time.Now().Add(3 * time.Second)
	for s2.Ready(context.Background()) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	res = r.send(t, s2, 600, "")
	if res.StatusCode < 500 || !strings.Contains(hdr(res, "Warning"), "HSS") {
		t.Errorf("HSS down: %d Warning %q", res.StatusCode, hdr(res, "Warning"))
	}
}

// sendTo registers the IMPU user@domain (To) with the UE's IMPI.
func (u *testUE) sendTo(t *testing.T, s *Server, user string) *sip.Response {
	t.Helper()
	// Authenticate as the IMPI with To naming the other IMPU.
	orig := u.impi
	defer func() { u.impi = orig }()
	saveTo := u.impu
	_ = saveTo
	res := u.sendAs(t, s, user, u.initialAuthz())
	return u.sendAs(t, s, user, u.answer(t, res, true))
}

func (u *testUE) sendAs(t *testing.T, s *Server, toUser, authz string) *sip.Response {
	t.Helper()
	return u.send(t, s, 600, authz, toOverride(toUser))
}

// toOverride is a marker header the send helper turns into the To user.
func toOverride(user string) sip.Header { return sip.NewHeader("X-Test-To", user) }

func TestIntegrityProtectedReRegister(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("rita"))
	for _, policy := range []string{ReauthRegistered, ReauthAlways} {
		s := newTestServer(t, h, "", func(c *Config) { c.ReauthProtected = policy })
		u := newTestUE(t, "rita")
		u.protect = "no"
		u.registerAKA(t, s, 600)
		u.protect = "yes"
		authz := u.initialAuthz() + `, integrity-protected="yes"`
		res := u.send(t, s, 600, authz)
		want := 200
		if policy == ReauthAlways {
			want = 401
		}
		if res.StatusCode != want {
			t.Errorf("policy %s: %d, want %d", policy, res.StatusCode, want)
		}
		// A new contact is always challenged.
		u.contact = "<sip:rita@127.0.0.1:7002>"
		if res := u.send(t, s, 600, authz); res.StatusCode != 401 {
			t.Errorf("policy %s, new contact: %d", policy, res.StatusCode)
		}
		// Unprotected: challenged.
		if res := u.send(t, s, 600, u.initialAuthz()+`, integrity-protected="no"`); res.StatusCode != 401 {
			t.Errorf("unprotected: %d", res.StatusCode)
		}
	}
}

var _ = imsheader.HeaderPath
