package registrar_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"strconv"
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
	"github.com/imscore/imscore/scscf"
	"github.com/imscore/imscore/scscf/binding"
	"github.com/imscore/imscore/scscf/internal/scscftest"
	"github.com/imscore/imscore/scscf/registrar"
)

func TestAKARegistration(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("alice", "tel:+15551234", "sip:alice.barred@"+scscftest.Domain))
	h.Bar("alice@"+scscftest.Domain, "sip:alice.barred@"+scscftest.Domain)
	var events []binding.Event
	var evMu sync.Mutex
	s := scscftest.NewServer(t, h, "", func(c *scscf.Config) {
		c.OnRegistrationChange = func(ev binding.Event) { evMu.Lock(); events = append(events, ev); evMu.Unlock() }
	})
	u := scscftest.NewUE(t, "alice")
	u.Path = "<sip:term@pcscf." + scscftest.Domain + ":5060;lr>"

	res := u.Send(t, s, 600000, u.InitialAuthz(), sip.NewHeader("P-Visited-Network-ID", `"visited.example.net"`),
		sip.NewHeader("P-Charging-Vector", "icid-value=abc123;orig-ioi=visited.example.net"))
	ch := scscftest.ChallengeOf(t, res)
	if ch.Algorithm() != digest.AlgAKAv1 || ch.QOP() != "auth" || ch.Realm() != scscftest.Domain {
		t.Errorf("challenge %s", ch)
	}
	rnd, autn, err := digest.SplitAKANonce(ch.Nonce())
	if err != nil {
		t.Fatal(err)
	}
	opc, _ := aka.ComputeOPc(scscftest.Set1K, scscftest.Set1OP)
	_, ck, ik, _, err := aka.CheckAUTN(scscftest.Set1K, opc, rnd, autn)
	if err != nil {
		t.Fatalf("AUTN of the nonce: %v", err)
	}
	if ch.IK() != hex.EncodeToString(ik) || ch.CK() != hex.EncodeToString(ck) {
		t.Errorf("ik/ck %s/%s, want %x/%x", ch.IK(), ch.CK(), ik, ck)
	}
	mar := h.Requests()[0]
	if mar.Cmd != diameter.CmdMultimediaAuth || mar.Scheme != registrar.SchemeUnknown || mar.N != 2 || mar.IMPI != u.IMPI || mar.IMPU != u.IMPU || mar.Server != s.Config().ServerName {
		t.Errorf("MAR %+v", mar)
	}

	res = u.Send(t, s, 600000, u.Answer(t, res, true), sip.NewHeader("P-Visited-Network-ID", `"visited.example.net"`),
		sip.NewHeader("P-Charging-Vector", "icid-value=abc123;orig-ioi=visited.example.net"))
	if res.StatusCode != 200 {
		t.Fatalf("got %d %s", res.StatusCode, res.Reason)
	}
	sr := h.WaitSAR(t, diameter.SATRegistration, time.Second)
	if sr.UDA != diameter.UserDataNotAvailable || sr.Server != s.Config().ServerName || sr.IMPU != u.IMPU {
		t.Errorf("SAR %+v", sr)
	}
	wantSR := "<sip:orig@" + net.JoinHostPort(s.Config().SIPHost, strconv.Itoa(s.SIPAddr().Port)) + ";lr>"
	if got := scscftest.Hdr(res, "Service-Route"); got != wantSR {
		t.Errorf("Service-Route %q, want %q", got, wantSR)
	}
	if got := scscftest.Hdr(res, "P-Associated-URI"); got != "<"+u.IMPU+">, <tel:+15551234>" {
		t.Errorf("P-Associated-URI %q", got)
	}
	if got := scscftest.Hdr(res, "Path"); got != u.Path {
		t.Errorf("Path %q", got)
	}
	if !strings.Contains(scscftest.Hdr(res, "Require"), "path") {
		t.Error("no Require: path")
	}
	contact := scscftest.Hdr(res, "Contact")
	if !strings.Contains(contact, `+sip.instance="<urn:gsma:imei:35-000000-000000-0>"`) || !strings.Contains(contact, "reg-id=1") ||
		!strings.Contains(contact, `+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel"`) || !strings.Contains(contact, "expires=3600") {
		t.Errorf("Contact %q", contact)
	}
	reg, ok := s.Lookup("tel:+15551234")
	if !ok || len(reg.Contacts) != 1 || reg.IMPI != u.IMPI || reg.Contacts[0].VisitedNetwork != `"visited.example.net"` ||
		!strings.Contains(reg.Contacts[0].ChargingVector, "icid-value=abc123") || reg.Contacts[0].Path[0] != u.Path {
		t.Errorf("Lookup %+v %v", reg, ok)
	}

	// Re-registration: the spare vector of the first MAR, no new MAR.
	res = u.Send(t, s, 600, u.InitialAuthz())
	res = u.Send(t, s, 600, u.Answer(t, res, true))
	if res.StatusCode != 200 {
		t.Fatalf("re-registration: %d", res.StatusCode)
	}
	marCount := 0
	for _, r := range h.Requests() {
		if r.Cmd == diameter.CmdMultimediaAuth {
			marCount++
		}
	}
	if marCount != 1 {
		t.Errorf("%d MARs, want 1 (second vector cached)", marCount)
	}
	rr := h.WaitSAR(t, diameter.SATReRegistration, time.Second)
	if rr.UDA != diameter.UserDataAlreadyAvailable {
		t.Errorf("re-registration SAR User-Data-Already-Available %d", rr.UDA)
	}
	if !strings.Contains(scscftest.Hdr(res, "Contact"), "expires=600") {
		t.Errorf("Contact %q", scscftest.Hdr(res, "Contact"))
	}
	// A third: the cache is empty, a new MAR.
	u.RegisterAKA(t, s, 600)
	// The event is emitted right after the 200 is sent.
	scscftest.WaitFor(t, "three registration events", func() bool {
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
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("bob"))
	s := scscftest.NewServer(t, h, "", nil)
	u := scscftest.NewUE(t, "bob")
	res := u.Send(t, s, 600, u.InitialAuthz())
	ch := scscftest.ChallengeOf(t, res)
	res = u.Send(t, s, 600, u.Credentials(ch, "\x00\x01\x02\x03\x04\x05\x06\x07", true))
	if res.StatusCode != 403 || !strings.Contains(res.Reason, "Authentication failed") {
		t.Fatalf("got %d %s", res.StatusCode, res.Reason)
	}
	h.WaitSAR(t, diameter.SATAuthenticationFailure, 2*time.Second)
	if _, ok := s.Lookup(u.IMPU); ok {
		t.Error("registered after a wrong response")
	}
}

func TestMD5WithAndWithoutQop(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(&scscftest.Sub{IMPI: "carol@" + scscftest.Domain, IMPUs: []string{"sip:carol@" + scscftest.Domain}, Scheme: "md5", Password: "secret"})
	s := scscftest.NewServer(t, h, "", nil)
	for _, qop := range []bool{true, false} {
		u := scscftest.NewUE(t, "carol")
		u.Password = "secret"
		u.Contact = "<sip:carol@127.0.0.1:6000>"
		res := u.Send(t, s, 600, "")
		ch := scscftest.ChallengeOf(t, res)
		if ch.Algorithm() != digest.AlgMD5 || ch.QOP() != "auth" || ch.Has("ik") {
			t.Errorf("MD5 challenge %s", ch)
		}
		if _, _, err := digest.SplitAKANonce(ch.Nonce()); err != nil && len(ch.Nonce()) < 16 {
			t.Errorf("nonce %q too short", ch.Nonce())
		}
		res = u.Send(t, s, 600, u.Answer(t, res, qop))
		if res.StatusCode != 200 {
			t.Fatalf("qop=%v: %d %s", qop, res.StatusCode, res.Reason)
		}
		// Wrong password.
		res = u.Send(t, s, 600, "")
		u.Password = "wrong"
		res = u.Send(t, s, 600, u.Answer(t, res, qop))
		if res.StatusCode != 403 {
			t.Fatalf("qop=%v wrong password: %d", qop, res.StatusCode)
		}
	}
	if h.Requests()[0].Scheme != registrar.SchemeUnknown {
		t.Errorf("first MAR scheme %q", h.Requests()[0].Scheme)
	}
}

func TestNonceReplayRejected(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("dave"))
	s := scscftest.NewServer(t, h, "", nil)
	u := scscftest.NewUE(t, "dave")
	res := u.Send(t, s, 600, u.InitialAuthz())
	authz := u.Answer(t, res, true)
	if res = u.Send(t, s, 600, authz); res.StatusCode != 200 {
		t.Fatalf("%d", res.StatusCode)
	}
	// The same credentials again (new CSeq): the nonce is used up.
	res = u.Send(t, s, 600, authz)
	if res.StatusCode != 401 {
		t.Fatalf("replayed nonce: %d, want 401", res.StatusCode)
	}
	if scscftest.ChallengeOf(t, res).Nonce() == mustNonce(t, authz) {
		t.Error("the replayed nonce was offered again")
	}
	// Another IMPI cannot use a nonce issued to dave.
	h.Add(scscftest.AKASub("eve"))
	e := scscftest.NewUE(t, "eve")
	res = e.Send(t, s, 600, e.InitialAuthz())
	ch := scscftest.ChallengeOf(t, res)
	other := strings.Replace(e.Answer(t, res, true), "eve@", "dave@", 1)
	_ = ch
	if res = e.Send(t, s, 600, other); res.StatusCode == 200 {
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
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("frank"))
	s := scscftest.NewServer(t, h, "", nil)
	u := scscftest.NewUE(t, "frank")
	opc, _ := aka.ComputeOPc(scscftest.Set1K, scscftest.Set1OP)
	// The USIM has seen a much higher SQN than the HSS will use.
	usim, _ := aka.NewUE(scscftest.Set1K, opc, 1<<30)
	u.USIM = usim
	res := u.Send(t, s, 600, u.InitialAuthz())
	ch := scscftest.ChallengeOf(t, res)
	rnd, autn, _ := digest.SplitAKANonce(ch.Nonce())
	_, _, _, auts, err := usim.Authenticate(rnd, autn)
	if err == nil || auts == nil {
		t.Fatalf("USIM accepted a stale SQN: %v", err)
	}
	enc, _ := digest.EncodeAUTS(auts)
	authz := `Digest username="` + u.IMPI + `", realm="` + scscftest.Domain + `", nonce="` + ch.Nonce() + `", uri="sip:` + scscftest.Domain +
		`", response="", algorithm=AKAv1-MD5, auts="` + enc + `"`
	res = u.Send(t, s, 600, authz)
	ch2 := scscftest.ChallengeOf(t, res)
	var resyncMAR *scscftest.CxReq
	for _, r := range h.Requests() {
		if r.Resync != nil {
			r := r
			resyncMAR = &r
		}
	}
	if resyncMAR == nil || !bytes.Equal(resyncMAR.Resync, append(rnd, auts...)) {
		t.Fatalf("no MAR with SIP-Authorization = RAND‖AUTS: %+v", resyncMAR)
	}
	if ch2.Nonce() == ch.Nonce() {
		t.Fatal("same nonce after resync")
	}
	res = u.Send(t, s, 600, u.Answer(t, res, true))
	if res.StatusCode != 200 {
		t.Fatalf("after resync: %d %s", res.StatusCode, res.Reason)
	}
}

func TestIntervalTooBrief(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("gina"))
	s := scscftest.NewServer(t, h, "", nil)
	u := scscftest.NewUE(t, "gina")
	res := u.Send(t, s, 10, u.InitialAuthz())
	if res.StatusCode != 423 || scscftest.Hdr(res, "Min-Expires") != "60" {
		t.Fatalf("got %d Min-Expires %q", res.StatusCode, scscftest.Hdr(res, "Min-Expires"))
	}
	if len(h.Requests()) != 0 {
		t.Error("423 cost a MAR")
	}
}

func TestDeregistration(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("hank"))
	var mu sync.Mutex
	var last binding.Event
	s := scscftest.NewServer(t, h, "", func(c *scscf.Config) {
		c.OnRegistrationChange = func(ev binding.Event) { mu.Lock(); last = ev; mu.Unlock() }
	})
	u := scscftest.NewUE(t, "hank")
	u.RegisterAKA(t, s, 600)
	res := u.Send(t, s, 0, u.InitialAuthz())
	res = u.Send(t, s, 0, u.Answer(t, res, true))
	if res.StatusCode != 200 || scscftest.Hdr(res, "Contact") != "" {
		t.Fatalf("de-registration: %d Contact %q", res.StatusCode, scscftest.Hdr(res, "Contact"))
	}
	h.WaitSAR(t, diameter.SATUserDeregistration, time.Second)
	if _, ok := s.Lookup(u.IMPU); ok {
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
	u.RegisterAKA(t, s, 600)
	u2 := *u
	u2.Contact = "<sip:hank@127.0.0.1:7000>"
	u2.RegisterAKA(t, s, 600)
	if reg, _ := s.Lookup(u.IMPU); len(reg.Contacts) != 2 {
		t.Fatalf("%d contacts", len(reg.Contacts))
	}
	u2.Contact = "*"
	res = u2.Send(t, s, 0, u.InitialAuthz())
	res = u2.Send(t, s, 0, u2.Answer(t, res, true))
	if res.StatusCode != 200 {
		t.Fatalf("Contact *: %d", res.StatusCode)
	}
	if _, ok := s.Lookup(u.IMPU); ok {
		t.Error("still registered after Contact: *")
	}
}

func TestExpiryAndChallengeTimeout(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("ivan"))
	h.Add(scscftest.AKASub("jane"))
	s := scscftest.NewServer(t, h, "", func(c *scscf.Config) {
		c.MinExpires, c.DefaultExpires = time.Second, time.Second
		c.ChallengeTimeout, c.NonceLifetime = 300*time.Millisecond, 300*time.Millisecond
	})
	u := scscftest.NewUE(t, "ivan")
	u.RegisterAKA(t, s, 1)
	if _, ok := s.Lookup(u.IMPU); !ok {
		t.Fatal("not registered")
	}
	sar := h.WaitSAR(t, diameter.SATTimeoutDeregistration, 3*time.Second)
	if sar.IMPU != u.IMPU {
		t.Errorf("SAR %+v", sar)
	}
	if _, ok := s.Lookup(u.IMPU); ok {
		t.Error("binding outlived its expiry")
	}
	// A challenge nobody answers.
	j := scscftest.NewUE(t, "jane")
	scscftest.ChallengeOf(t, j.Send(t, s, 600, j.InitialAuthz()))
	sar = h.WaitSAR(t, diameter.SATAuthenticationTimeout, 3*time.Second)
	if sar.IMPI != j.IMPI {
		t.Errorf("SAR %+v", sar)
	}
}

func TestRTR(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("kate", "sip:kate2@"+scscftest.Domain))
	h.Add(scscftest.AKASub("leo"))
	var mu sync.Mutex
	var kinds []binding.EventKind
	s := scscftest.NewServer(t, h, "", func(c *scscf.Config) {
		c.OnRegistrationChange = func(ev binding.Event) { mu.Lock(); kinds = append(kinds, ev.Kind); mu.Unlock() }
	})
	k, l := scscftest.NewUE(t, "kate"), scscftest.NewUE(t, "leo")
	k.RegisterAKA(t, s, 600)
	l.RegisterAKA(t, s, 600)
	// The events are emitted right after the 200s are sent: the RTR's
	// must come after both.
	scscftest.WaitFor(t, "two registration events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(kinds) == 2
	})

	// IMPU-list form naming the second IMPU of kate's set.
	rtr := h.Node.NewRequest(diameter.CmdRegistrationTermination, diameter.AppCx, scscftest.Domain, s.Config().OriginHost)
	rtr.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(k.IMPI)))
	rtr.AddAVP(diameter.NewAVP(diameter.AVPPublicIdentity, datatype.UTF8String("sip:kate2@"+scscftest.Domain)))
	rtr.AddAVP(diameter.Grouped(diameter.AVPDeregistrationReason,
		diameter.NewAVP(diameter.AVPReasonCode, datatype.Enumerated(diameter.ReasonPermanentTermination)),
		diameter.NewAVP(diameter.AVPReasonInfo, datatype.UTF8String("operator"))))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := h.Node.Send(ctx, rtr)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := diameter.Result(a); code != diameter.DiameterSuccess {
		t.Fatalf("RTA %d", code)
	}
	if _, ok := s.Lookup(k.IMPU); ok {
		t.Error("kate still registered")
	}
	if _, ok := s.Lookup(l.IMPU); !ok {
		t.Error("leo lost his registration")
	}
	// IMPI-only form.
	rtr = h.Node.NewRequest(diameter.CmdRegistrationTermination, diameter.AppCx, scscftest.Domain, s.Config().OriginHost)
	rtr.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(l.IMPI)))
	rtr.AddAVP(diameter.Grouped(diameter.AVPDeregistrationReason,
		diameter.NewAVP(diameter.AVPReasonCode, datatype.Enumerated(diameter.ReasonPermanentTermination))))
	if a, err = h.Node.Send(ctx, rtr); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := diameter.Result(a); code != diameter.DiameterSuccess {
		t.Fatalf("RTA %d", code)
	}
	if _, ok := s.Lookup(l.IMPU); ok {
		t.Error("leo still registered")
	}
	if n := h.SARs(diameter.SATUserDeregistration) + h.SARs(diameter.SATTimeoutDeregistration); n != 0 {
		t.Errorf("%d SARs after RTR", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(kinds) != 4 || kinds[2] != binding.EventTerminated || kinds[3] != binding.EventTerminated {
		t.Errorf("events %v", kinds)
	}
}

func TestPPRReplacesProfile(t *testing.T) {
	h := scscftest.NewHSS(t)
	sub := scscftest.AKASub("mia")
	h.Add(sub)
	s := scscftest.NewServer(t, h, "", nil)
	u := scscftest.NewUE(t, "mia")
	u.RegisterAKA(t, s, 600)
	newSub := h.Copy(sub) // the scripted HSS writes sub.SQN
	newSub.IMPUs = append([]string{}, sub.IMPUs...)
	newSub.IMPUs = append(newSub.IMPUs, "tel:+4930123")
	ppr := h.Node.NewRequest(diameter.CmdPushProfile, diameter.AppCx, scscftest.Domain, s.Config().OriginHost)
	ppr.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(u.IMPI)))
	ppr.AddAVP(diameter.NewAVP(diameter.AVPUserData, datatype.OctetString(scscftest.UserData(t, &newSub))))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := h.Node.Send(ctx, ppr)
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
	ppr = h.Node.NewRequest(diameter.CmdPushProfile, diameter.AppCx, scscftest.Domain, s.Config().OriginHost)
	ppr.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(u.IMPI)))
	ppr.AddAVP(diameter.NewAVP(diameter.AVPUserData, datatype.OctetString("<nope")))
	a, err = h.Node.Send(ctx, ppr)
	if err != nil {
		t.Fatal(err)
	}
	if code, exp, _ := diameter.Result(a); code != diameter.DiameterErrorNotSupportedUserData || !exp {
		t.Errorf("bad User-Data: %d", code)
	}
	// Unknown IMPI: 5001.
	ppr = h.Node.NewRequest(diameter.CmdPushProfile, diameter.AppCx, scscftest.Domain, s.Config().OriginHost)
	ppr.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String("nobody@"+scscftest.Domain)))
	a, _ = h.Node.Send(ctx, ppr)
	if code, _, _ := diameter.Result(a); code != diameter.DiameterErrorUserUnknown {
		t.Errorf("unknown IMPI: %d", code)
	}
}

func TestRestartKeepsBindings(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("nina"))
	h.Add(scscftest.AKASub("omar"))
	s1 := scscftest.NewServer(t, h, "", func(c *scscf.Config) { c.MinExpires = time.Second })
	dsn := s1.Config().DatabaseURL
	n, o := scscftest.NewUE(t, "nina"), scscftest.NewUE(t, "omar")
	n.RegisterAKA(t, s1, 600)
	n.RegisterAKA(t, s1, 600) // re-registration: the SAA has no User-Data, the stored one stands
	o.RegisterAKA(t, s1, 1)
	_ = s1.Close()
	time.Sleep(1200 * time.Millisecond) // omar's binding expires while down

	s2 := scscftest.NewServer(t, h, dsn, func(c *scscf.Config) { c.MinExpires = time.Second })
	reg, ok := s2.Lookup(n.IMPU)
	if !ok || len(reg.Contacts) != 1 || reg.Contacts[0].Instance != "<urn:gsma:imei:35-000000-000000-0>" {
		t.Fatalf("after restart: %+v %v", reg, ok)
	}
	if prof, _ := s2.Profile(n.IMPU); prof == nil || len(prof.PublicIdentities()) == 0 {
		t.Fatalf("after restart: no user profile reloaded (%v)", prof)
	}
	sar := h.WaitSAR(t, diameter.SATTimeoutDeregistration, 3*time.Second)
	if sar.IMPU != o.IMPU {
		t.Errorf("SAR %+v", sar)
	}
	// The reloaded registration is a re-registration for the HSS.
	n.RegisterAKA(t, s2, 600)
	h.WaitSAR(t, diameter.SATReRegistration, time.Second)
	st, _ := s2.Status(context.Background())
	if regs := st.(scscf.Status).Registrations; len(regs) != 1 || regs[0].AOR != n.IMPU {
		t.Errorf("status %+v", regs)
	}
}

func TestHSSErrors(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(&scscftest.Sub{IMPI: "pat@" + scscftest.Domain, IMPUs: []string{"sip:pat@" + scscftest.Domain}, Scheme: "md5", Password: "x"})
	h.Add(scscftest.AKASub("quinn", "sip:quinn.barred@"+scscftest.Domain))
	h.Bar("quinn@"+scscftest.Domain, "sip:quinn.barred@"+scscftest.Domain)
	s := scscftest.NewServer(t, h, "", nil)

	u := scscftest.NewUE(t, "nobody")
	if res := u.Send(t, s, 600, u.InitialAuthz()); res.StatusCode != 403 || !strings.Contains(res.Reason, "unknown") {
		t.Errorf("unknown user: %d %s", res.StatusCode, res.Reason)
	}
	// An AKA answer for an MD5-only subscriber: 5006 names the algorithm.
	p := scscftest.NewUE(t, "pat")
	authz := `Digest username="` + p.IMPI + `", realm="` + scscftest.Domain + `", uri="sip:` + scscftest.Domain + `", nonce="", response="", algorithm=AKAv1-MD5`
	if res := p.Send(t, s, 600, authz); res.StatusCode != 403 || !strings.Contains(res.Reason, "AKAv1-MD5") {
		t.Errorf("scheme not supported: %d %s", res.StatusCode, res.Reason)
	}
	// A set whose IMPUs are all barred cannot register.
	h.Bar("quinn@"+scscftest.Domain, "sip:quinn@"+scscftest.Domain)
	q := scscftest.NewUE(t, "quinn")
	q.IMPU = "sip:quinn.barred@" + scscftest.Domain
	res := q.SendTo(t, s, "quinn.barred")
	if res.StatusCode != 403 || !strings.Contains(res.Reason, "barred") {
		t.Errorf("barred: %d %s", res.StatusCode, res.Reason)
	}
	// MAR 5012 and a dead HSS: 5xx with Warning, never 403.
	h.Add(scscftest.AKASub("rob"))
	h.FailMAR(diameter.DiameterUnableToComply)
	r := scscftest.NewUE(t, "rob")
	res = r.Send(t, s, 600, "")
	if res.StatusCode < 500 || !strings.Contains(scscftest.Hdr(res, "Warning"), "399 127.0.0.1 \"HSS") {
		t.Errorf("MAR 5012: %d Warning %q", res.StatusCode, scscftest.Hdr(res, "Warning"))
	}
	// HSS unreachable.
	s2 := scscftest.NewServer(t, h, "", nil)
	_ = h.Node.Close(context.Background())
	deadline := time.Now().Add(3 * time.Second)
	for s2.Ready(context.Background()) == nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	res = r.Send(t, s2, 600, "")
	if res.StatusCode < 500 || !strings.Contains(scscftest.Hdr(res, "Warning"), "HSS") {
		t.Errorf("HSS down: %d Warning %q", res.StatusCode, scscftest.Hdr(res, "Warning"))
	}
}

func TestIntegrityProtectedReRegister(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("rita"))
	for _, policy := range []string{scscf.ReauthRegistered, scscf.ReauthAlways} {
		s := scscftest.NewServer(t, h, "", func(c *scscf.Config) { c.ReauthProtected = policy })
		u := scscftest.NewUE(t, "rita")
		u.Protect = "no"
		u.RegisterAKA(t, s, 600)
		u.Protect = "yes"
		authz := u.InitialAuthz() + `, integrity-protected="yes"`
		res := u.Send(t, s, 600, authz)
		want := 200
		if policy == scscf.ReauthAlways {
			want = 401
		}
		if res.StatusCode != want {
			t.Errorf("policy %s: %d, want %d", policy, res.StatusCode, want)
		}
		// A new contact is always challenged.
		u.Contact = "<sip:rita@127.0.0.1:7002>"
		if res := u.Send(t, s, 600, authz); res.StatusCode != 401 {
			t.Errorf("policy %s, new contact: %d", policy, res.StatusCode)
		}
		// Unprotected: challenged.
		if res := u.Send(t, s, 600, u.InitialAuthz()+`, integrity-protected="no"`); res.StatusCode != 401 {
			t.Errorf("unprotected: %d", res.StatusCode)
		}
	}
}

var _ = imsheader.HeaderPath

// TestBarredTemporaryIMPUAndDefaultFirst: TS 24.229 §5.4.1.2.2. A UE may
// register with a barred IMPU when its implicit registration set has a
// non-barred one (TS 23.003 §13.4B: a USIM-only UE's temporary IMPU); the
// 200's P-Associated-URI lists the non-barred IMPUs with the default public
// user identity (the first the HSS lists) first, whichever IMPU registered,
// because the P-CSCF asserts that one for the UE.
func TestBarredTemporaryIMPUAndDefaultFirst(t *testing.T) {
	h := scscftest.NewHSS(t)
	d := scscftest.Domain
	h.Add(scscftest.AKASub("vera", "sip:vera.work@"+d, "sip:vera.temp@"+d))
	h.Bar("vera@"+d, "sip:vera.temp@"+d)
	s := scscftest.NewServer(t, h, "", nil)
	want := "<sip:vera@" + d + ">, <sip:vera.work@" + d + ">"
	for _, impu := range []string{"vera.temp", "vera.work"} {
		u := scscftest.NewUE(t, "vera")
		u.IMPU = "sip:" + impu + "@" + d
		res := u.SendTo(t, s, impu)
		if res.StatusCode != 200 {
			t.Fatalf("REGISTER of %s: %d %s, want 200", impu, res.StatusCode, res.Reason)
		}
		if got := scscftest.Hdr(res, "P-Associated-URI"); got != want {
			t.Errorf("REGISTER of %s: P-Associated-URI %q, want %q (default first, barred left out)", impu, got, want)
		}
	}
}
