package pcscf

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/imscore/imscore/pkg/reginfo"
	"github.com/imscore/imscore/pkg/siptest"
)

// registerWithSub registers ue (plain digest) and accepts the P-CSCF's
// reg-event SUBSCRIBE at the core; it returns the SUBSCRIBE.
func registerWithSub(t *testing.T, p *PCSCF, ue, core *udpPeer, callID string, extra string) *sip.Request {
	t.Helper()
	register(ue, p.addr(), callID, 1, 600, extra)
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("register: %d", r.StatusCode)
	}
	sub := waitRequest(t, core, sip.SUBSCRIBE)
	core.respond(sub, 200, "OK", sip.NewHeader("Expires", "600000"))
	return sub
}

// notify sends a reg-event NOTIFY in the dialog of sub and returns the
// P-CSCF's answer.
func notify(t *testing.T, p *PCSCF, core *udpPeer, sub *sip.Request, cseq int, event, subState string, doc *reginfo.Reginfo) *sip.Response {
	t.Helper()
	var body []byte
	if doc != nil {
		var err error
		if body, err = reginfo.Marshal(doc); err != nil {
			t.Fatal(err)
		}
	}
	return notifyRaw(t, p, core, sub, cseq, event, subState, reginfo.ContentType, body)
}

func notifyRaw(t *testing.T, p *PCSCF, core *udpPeer, sub *sip.Request, cseq int, event, subState, ctype string, body []byte) *sip.Response {
	t.Helper()
	fromTag, _ := sub.From().Params.Get("tag")
	hdr := fmt.Sprintf("NOTIFY %s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKntfy%x%d\r\n"+ // a branch is a token: the Call-ID in hex
		"Max-Forwards: 70\r\n"+
		"From: <%s>;tag=scscf-sub\r\n"+
		"To: <%s>;tag=%s\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: %d NOTIFY\r\n"+
		"Contact: <sip:scscf@127.0.0.1:%d>\r\n"+
		"Event: %s\r\n"+
		"Subscription-State: %s\r\n",
		sub.Contact().Address.String(), core.port(), sub.CallID().Value(), cseq,
		sub.To().Address.String(), sub.From().Address.String(), fromTag,
		sub.CallID().Value(), cseq, core.port(), event, subState)
	if len(body) > 0 {
		hdr += "Content-Type: " + ctype + "\r\n"
	}
	msg := hdr + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + string(body)
	ua, _ := net.ResolveUDPAddr("udp", p.addr())
	if _, err := core.conn.WriteToUDP([]byte(msg), ua); err != nil {
		t.Fatal(err)
	}
	for {
		r := core.nextResponse(5 * time.Second)
		if r.CSeq().MethodName == sip.NOTIFY && r.CSeq().SeqNo == uint32(cseq) {
			return r
		}
	}
}

func aliceReg(state reginfo.RegState, contacts ...reginfo.Contact) reginfo.Registration {
	return reginfo.Registration{AOR: "sip:alice@ims.test", ID: "reg-a", State: state, Contacts: contacts}
}

func telReg(state reginfo.RegState, contacts ...reginfo.Contact) reginfo.Registration {
	return reginfo.Registration{AOR: "tel:+15550001", ID: "reg-t", State: state, Contacts: contacts}
}

func ueContact(ue *udpPeer, state reginfo.ContactState, ev reginfo.Event) reginfo.Contact {
	return reginfo.Contact{ID: "c1", State: state, Event: ev, URI: fmt.Sprintf("sip:alice@127.0.0.1:%d", ue.port())}
}

func contactIMPUs(p *PCSCF) [][]string {
	var out [][]string
	for _, c := range p.Status().Contacts {
		out = append(out, c.IMPUs)
	}
	return out
}

// TestRegEventNotify covers NOTIFY handling with pkg/reginfo (RFC 3680,
// TS 24.229 §5.2.3).
func TestRegEventNotify(t *testing.T) {
	core := newPeer(t, "")
	p := startPCSCF(t, core, nil)
	ue := newPeer(t, "")
	sub := registerWithSub(t, p, ue, core, "re-1", "")
	if sub.Recipient.String() != "sip:alice@ims.test" || !strings.Contains(sub.Contact().Address.User, regEventUser) {
		t.Fatalf("SUBSCRIBE %s contact %s", sub.Recipient.String(), sub.Contact().Address.String())
	}
	active := ueContact(ue, reginfo.ContactActive, reginfo.EventRegistered)

	// Unknown subscription: 481.
	stranger := sub.Clone()
	cid := sip.CallIDHeader("not-a-subscription")
	stranger.ReplaceHeader(&cid)
	if r := notify(t, p, core, stranger, 1, "reg", "active;expires=600", reginfo.Full(0, aliceReg(reginfo.RegActive, active))); r.StatusCode != 481 {
		t.Fatalf("NOTIFY of an unknown subscription: %d, want 481", r.StatusCode)
	}
	// Wrong event package and bad bodies.
	if r := notify(t, p, core, sub, 1, "presence", "active", nil); r.StatusCode != 489 {
		t.Errorf("Event presence: %d, want 489", r.StatusCode)
	}
	if r := notifyRaw(t, p, core, sub, 2, "reg", "active", reginfo.ContentType, []byte("<reginfo")); r.StatusCode != 400 {
		t.Errorf("broken XML: %d, want 400", r.StatusCode)
	}
	if r := notifyRaw(t, p, core, sub, 3, "reg", "active", "text/plain", []byte("hello")); r.StatusCode != 415 {
		t.Errorf("text/plain body: %d, want 415", r.StatusCode)
	}

	// Full state, everything active: 200, nothing changes.
	if r := notify(t, p, core, sub, 4, "reg", "active;expires=600", reginfo.Full(0, aliceReg(reginfo.RegActive, active), telReg(reginfo.RegActive, active))); r.StatusCode != 200 {
		t.Fatalf("full-state NOTIFY: %d", r.StatusCode)
	}
	if got := fmt.Sprint(contactIMPUs(p)); got != "[[sip:alice@ims.test tel:+15550001]]" {
		t.Fatalf("contacts after an all-active NOTIFY: %s", got)
	}
	// Partial state: tel:+15550001 terminated; sip:alice stays.
	if r := notify(t, p, core, sub, 5, "reg", "active;expires=600", reginfo.Partial(1, telReg(reginfo.RegTerminated, ueContact(ue, reginfo.ContactTerminated, reginfo.EventUnregistered)))); r.StatusCode != 200 {
		t.Fatalf("partial NOTIFY: %d", r.StatusCode)
	}
	if got := fmt.Sprint(contactIMPUs(p)); got != "[[sip:alice@ims.test]]" {
		t.Fatalf("contacts after tel terminated: %s", got)
	}
	// A stale document (version 1 again) is ignored.
	if r := notify(t, p, core, sub, 6, "reg", "active", reginfo.Partial(1, aliceReg(reginfo.RegTerminated))); r.StatusCode != 200 {
		t.Fatalf("stale NOTIFY: %d", r.StatusCode)
	}
	if n := len(p.Status().Contacts); n != 1 {
		t.Fatalf("a stale NOTIFY removed the contact")
	}
	// Partial state naming another contact of alice as terminated: ours stays.
	other := reginfo.Contact{ID: "c9", State: reginfo.ContactTerminated, Event: reginfo.EventExpired, URI: "sip:alice@192.0.2.9:5060"}
	notify(t, p, core, sub, 7, "reg", "active", reginfo.Partial(2, aliceReg(reginfo.RegActive, other)))
	if n := len(p.Status().Contacts); n != 1 {
		t.Fatalf("another contact's termination removed ours")
	}
	// Full state whose active registration lists only another contact:
	// ours is no longer bound, the last IMPU goes, the contact goes.
	otherActive := other
	otherActive.State, otherActive.Event = reginfo.ContactActive, reginfo.EventRegistered
	notify(t, p, core, sub, 8, "reg", "active", reginfo.Full(3, aliceReg(reginfo.RegActive, otherActive)))
	if n := len(p.Status().Contacts); n != 0 {
		t.Fatalf("full state without our contact: %d contacts left", n)
	}
	// The subscription ends: afterwards 481.
	if r := notify(t, p, core, sub, 9, "reg", "terminated;reason=noresource", reginfo.Full(4, aliceReg(reginfo.RegTerminated))); r.StatusCode != 200 {
		t.Fatalf("terminating NOTIFY: %d", r.StatusCode)
	}
	if r := notify(t, p, core, sub, 10, "reg", "active", reginfo.Full(5, aliceReg(reginfo.RegTerminated))); r.StatusCode != 481 {
		t.Fatalf("NOTIFY after the subscription ended: %d, want 481", r.StatusCode)
	}

	// Each terminating contact event removes the contact; a terminated
	// registration (all IMPUs) too.
	for i, ev := range []reginfo.Event{reginfo.EventDeactivated, reginfo.EventUnregistered, reginfo.EventExpired, reginfo.EventRejected, ""} {
		ue := newPeer(t, "")
		sub := registerWithSub(t, p, ue, core, fmt.Sprintf("re-ev-%d", i), "")
		var doc *reginfo.Reginfo
		if ev == "" {
			doc = reginfo.Full(0, aliceReg(reginfo.RegTerminated), telReg(reginfo.RegTerminated))
		} else {
			c := ueContact(ue, reginfo.ContactTerminated, ev)
			doc = reginfo.Partial(0, aliceReg(reginfo.RegActive, c), telReg(reginfo.RegActive, c))
		}
		if r := notify(t, p, core, sub, 1, "reg", "active", doc); r.StatusCode != 200 {
			t.Fatalf("event %q: NOTIFY %d", ev, r.StatusCode)
		}
		if n := len(p.Status().Contacts); n != 0 {
			t.Fatalf("event %q: %d contacts left", ev, n)
		}
		message(ue, p.addr(), fmt.Sprintf("after-%d", i), "")
		if r := ue.nextResponse(5 * time.Second); r.StatusCode != 403 {
			t.Fatalf("event %q: request after removal answered %d", ev, r.StatusCode)
		}
	}
}

// TestRegEventNotifyRemovesSA: a contact registered with sec-agree (SAs
// on an in-memory backend) is removed by a NOTIFY, and so are its SAs
// once RetireGrace is over (the S-CSCF's NOTIFY to the UE still goes
// through them meanwhile).
func TestRegEventNotifyRemovesSA(t *testing.T) {
	core := newPeer(t, "")
	be := &memBackend{}
	pcPortC, pcPortS := freeUDPPort(t), freeUDPPort(t)
	p := startPCSCF(t, core, func(c *Config) {
		c.IPsec, c.IPsecBackend, c.PortC, c.PortS = IPsecAuto, be, pcPortC, pcPortS
		c.RetireGrace, c.TimerInterval = 300*time.Millisecond, 50*time.Millisecond
	})
	ue := newPeer(t, "") // its port is the UE's port-c
	uePortS := freeUDPPort(t)
	sc := fmt.Sprintf("ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=1111;spi-s=2222;port-c=%d;port-s=%d", ue.port(), uePortS)
	register(ue, p.addr(), "re-sa", 1, 600, "Security-Client: "+sc+"\nRequire: sec-agree\nProxy-Require: sec-agree\n")
	coreAnswerRegister(t, core, true)
	r := ue.nextResponse(5 * time.Second)
	if r.StatusCode != 401 || hdr(r, "Security-Server") == "" {
		t.Fatalf("401 %d, Security-Server %q", r.StatusCode, hdr(r, "Security-Server"))
	}
	auth := `Authorization: Digest username="alice@ims.test", realm="ims.test", nonce="x", uri="sip:ims.test", response="0123456789abcdef0123456789abcdef"` + "\n"
	register(ue, fmt.Sprintf("127.0.0.1:%d", pcPortS), "re-sa", 2, 600, auth+"Security-Client: "+sc+"\nSecurity-Verify: "+hdr(r, "Security-Server")+"\nRequire: sec-agree\nProxy-Require: sec-agree\n")
	coreAnswerRegister(t, core, true)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("protected REGISTER: %d", r.StatusCode)
	}
	sub := waitRequest(t, core, sip.SUBSCRIBE)
	core.respond(sub, 200, "OK")
	if be.count() != 1 || p.Status().Contacts[0].SA == nil {
		t.Fatalf("SA sets %d, contact %+v", be.count(), p.Status().Contacts)
	}
	c := ueContact(ue, reginfo.ContactTerminated, reginfo.EventDeactivated)
	if r := notify(t, p, core, sub, 1, "reg", "active", reginfo.Full(0, aliceReg(reginfo.RegActive, c), telReg(reginfo.RegActive, c))); r.StatusCode != 200 {
		t.Fatalf("NOTIFY: %d", r.StatusCode)
	}
	if n := len(p.Status().Contacts); n != 0 || be.count() != 1 {
		t.Fatalf("right after NOTIFY: %d contacts, %d SA sets (want 0, 1 kept for the grace)", n, be.count())
	}
	deadline := time.Now().Add(3 * time.Second)
	for be.count() != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if be.count() != 0 {
		t.Fatalf("%d SA sets left after the grace", be.count())
	}
}

// TestRefusedSubscriptionForgotten: a reg-event SUBSCRIBE the S-CSCF
// refuses leaves nothing behind (it was tracked for ever before).
func TestRefusedSubscriptionForgotten(t *testing.T) {
	core := newPeer(t, "")
	p := startPCSCF(t, core, nil)
	ue := newPeer(t, "")
	register(ue, p.addr(), "refused-sub", 1, 600, "")
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("register: %d", r.StatusCode)
	}
	core.respond(core.nextRequest(5*time.Second), 489, "Bad Event")
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		subs := len(p.subs)
		p.mu.Unlock()
		cs := p.store.All()
		if subs == 0 && len(cs) == 1 && cs[0].RegSubscription == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d subscriptions tracked, contacts %+v, after the SUBSCRIBE was refused", subs, cs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRegEventNotifyAfterRestart: a P-CSCF restarted on the same database
// accepts the NOTIFYs of the reg-event subscriptions recorded with its
// reloaded contacts (a NOTIFY with any other Call-ID still gets 481).
func TestRegEventNotifyAfterRestart(t *testing.T) {
	dsn := pgtest.NewDB(t)
	core := newPeer(t, "")
	// The restarted P-CSCF listens where the first one did, as in a real
	// restart: the NOTIFYs are addressed to the SUBSCRIBE's Contact.
	listen := fmt.Sprintf("127.0.0.1:%d", siptest.FreePort(t))
	withDB := func(c *Config) { c.DatabaseURL, c.SIPListen = dsn, listen }
	p1 := startPCSCF(t, core, withDB)
	ue := newPeer(t, "")
	sub := registerWithSub(t, p1, ue, core, "restart-sub", "")
	_ = p1.Close()

	p2 := startPCSCF(t, core, withDB)
	stranger := sub.Clone()
	cid := sip.CallIDHeader("not-a-subscription")
	stranger.ReplaceHeader(&cid)
	if r := notify(t, p2, core, stranger, 1, "reg", "active;expires=600", nil); r.StatusCode != 481 {
		t.Errorf("NOTIFY of an unknown subscription after the restart: %d, want 481", r.StatusCode)
	}
	doc := reginfo.Full(0, aliceReg(reginfo.RegTerminated, ueContact(ue, reginfo.ContactTerminated, reginfo.EventDeactivated)),
		telReg(reginfo.RegTerminated, ueContact(ue, reginfo.ContactTerminated, reginfo.EventDeactivated)))
	if r := notify(t, p2, core, sub, 2, "reg", "terminated;reason=deactivated", doc); r.StatusCode != 200 {
		t.Fatalf("NOTIFY of the reloaded subscription: %d, want 200", r.StatusCode)
	}
	if n := len(p2.Status().Contacts); n != 0 {
		t.Errorf("%d contacts after the NOTIFY terminated the registration", n)
	}
}

// TestRegSubscriptionRefreshed (fault h): the P-CSCF refreshes its reg
// event subscription in the dialog before the time the S-CSCF granted
// runs out (same Call-ID and tags, next CSeq), and after a NOTIFY that
// terminates it ("deactivated") it subscribes again. Before, it never
// refreshed, and a terminated subscription stayed on the contact, which
// then never subscribed again.
func TestRegSubscriptionRefreshed(t *testing.T) {
	core := newPeer(t, "")
	p := startPCSCF(t, core, func(c *Config) { c.TimerInterval = 50 * time.Millisecond })
	ue := newPeer(t, "")
	register(ue, p.addr(), "refresh", 1, 600, "")
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("register: %d", r.StatusCode)
	}
	sub := waitRequest(t, core, sip.SUBSCRIBE)
	core.respond(sub, 200, "OK", sip.NewHeader("Expires", "2"))
	refresh := waitRequest(t, core, sip.SUBSCRIBE)
	if refresh.CallID().Value() != sub.CallID().Value() || refresh.CSeq().SeqNo != sub.CSeq().SeqNo+1 || !refresh.To().Params.Has("tag") {
		t.Fatalf("refresh is not in the dialog: Call-ID %s (was %s), CSeq %d (was %d), To %s",
			refresh.CallID().Value(), sub.CallID().Value(), refresh.CSeq().SeqNo, sub.CSeq().SeqNo, refresh.To().Value())
	}
	core.respond(refresh, 200, "OK", sip.NewHeader("Expires", "600000"))
	if r := notify(t, p, core, sub, 1, "reg", "terminated;reason=deactivated", nil); r.StatusCode != 200 {
		t.Fatalf("terminating NOTIFY: %d", r.StatusCode)
	}
	again := waitRequest(t, core, sip.SUBSCRIBE)
	if again.CallID().Value() == sub.CallID().Value() || again.To().Params.Has("tag") {
		t.Fatalf("after the terminated subscription: %s", again.StartLine())
	}
	core.respond(again, 200, "OK", sip.NewHeader("Expires", "600000"))
}
