package scscf

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/imscore/imscore/pkg/reginfo"
	"github.com/imscore/imscore/pkg/userdata"
)

func findReg(t *testing.T, doc *reginfo.Reginfo, aor string) reginfo.Registration {
	t.Helper()
	for _, r := range doc.Registrations {
		if r.AOR == aor {
			return r
		}
	}
	t.Fatalf("no registration %s in %+v", aor, doc.Registrations)
	return reginfo.Registration{}
}

func findContact(t *testing.T, r reginfo.Registration, uri string) reginfo.Contact {
	t.Helper()
	for _, c := range r.Contacts {
		if c.URI == uri {
			return c
		}
	}
	t.Fatalf("no contact %s in %+v", uri, r.Contacts)
	return reginfo.Contact{}
}

func param(c reginfo.Contact, name string) (string, bool) {
	for _, p := range c.UnknownParams {
		if p.Name == name {
			return p.Value, true
		}
	}
	return "", false
}

func TestRegEventUserSubscriptionAndDeregistration(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("alice", "tel:+15550001"))
	l := newRegLab(t, h, "", nil)
	u := newTestUE(t, "alice")
	u.path = "<sip:term@127.0.0.1:5999;lr>"
	u.registerAKA(t, l.shim, 600)

	peer := newTestPeer(t, 200)
	res, sub := peer.subscribe(l, u.impu, u.impu, 700000)
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d %s", res.StatusCode, res.Reason)
	}
	if got := hdrValue(res, "Expires"); got != "600000" {
		t.Errorf("Expires %q, want clamped 600000", got)
	}
	if sub.toTag == "" || sub.remote.Host == "" {
		t.Fatalf("200 without To tag or Contact:\n%s", res)
	}

	n := peer.nextNotify(3 * time.Second)
	if !strings.HasPrefix(n.state, "active;expires=") {
		t.Errorf("Subscription-State %q", n.state)
	}
	if n.req.CallID().Value() != sub.callID || tagOf(n.req.From().Params) != sub.toTag || tagOf(n.req.To().Params) != sub.fromTag {
		t.Errorf("NOTIFY outside the dialog:\n%s", n.req)
	}
	if ev := n.req.GetHeader("Event"); ev == nil || ev.Value() != "reg" {
		t.Errorf("Event %v", ev)
	}
	if n.doc.State != reginfo.StateFull || n.doc.Version != 0 || len(n.doc.Registrations) != 2 {
		t.Fatalf("first NOTIFY %+v", n.doc)
	}
	for _, aor := range []string{u.impu, "tel:+15550001"} {
		r := findReg(t, n.doc, aor)
		if r.State != reginfo.RegActive || len(r.Contacts) != 1 {
			t.Fatalf("registration %+v", r)
		}
		c := r.Contacts[0]
		if c.URI != "sip:alice@127.0.0.1:5999" || c.State != reginfo.ContactActive || c.Event != reginfo.EventRegistered ||
			c.CallID != u.callID || c.CSeq == nil || *c.CSeq != u.cseq || c.Expires == nil || *c.Expires < 590 || *c.Expires > 600 {
			t.Errorf("contact %+v", c)
		}
		if v, _ := param(c, "+sip.instance"); v != "<urn:gsma:imei:35-000000-000000-0>" {
			t.Errorf("+sip.instance %q in %+v", v, c.UnknownParams)
		}
		if v, _ := param(c, "reg-id"); v != "1" {
			t.Errorf("reg-id %q", v)
		}
	}

	// A second contact of the same user: partial NOTIFY, version 1.
	u2 := newTestUE(t, "alice")
	u2.contact = "<sip:alice@127.0.0.1:6001>"
	u2.path = u.path
	u2.registerAKA(t, l.shim, 600)
	n = peer.nextNotify(3 * time.Second)
	if n.doc.State != reginfo.StatePartial || n.doc.Version != 1 || !strings.HasPrefix(n.state, "active") {
		t.Fatalf("NOTIFY for the second contact: %s %+v", n.state, n.doc)
	}
	c := findContact(t, findReg(t, n.doc, u.impu), "sip:alice@127.0.0.1:6001")
	if c.State != reginfo.ContactActive || c.Event != reginfo.EventRegistered {
		t.Errorf("new contact %+v", c)
	}

	// De-registration of that contact: partial, the registration stays.
	u2.registerAKA(t, l.shim, 0)
	n = peer.nextNotify(3 * time.Second)
	r := findReg(t, n.doc, u.impu)
	c = findContact(t, r, "sip:alice@127.0.0.1:6001")
	if n.doc.Version != 2 || n.doc.State != reginfo.StatePartial || r.State != reginfo.RegActive ||
		c.State != reginfo.ContactTerminated || c.Event != reginfo.EventUnregistered || !strings.HasPrefix(n.state, "active") {
		t.Errorf("partial de-registration NOTIFY %s %+v", n.state, n.doc)
	}

	// De-registration of the last contact: final NOTIFY, subscription gone.
	u.registerAKA(t, l.shim, 0)
	n = peer.nextNotify(3 * time.Second)
	r = findReg(t, n.doc, u.impu)
	c = findContact(t, r, "sip:alice@127.0.0.1:5999")
	if n.doc.Version != 3 || r.State != reginfo.RegTerminated || c.State != reginfo.ContactTerminated || c.Event != reginfo.EventUnregistered {
		t.Errorf("final NOTIFY %+v", n.doc)
	}
	if n.state != "terminated;reason=noresource" {
		t.Errorf("Subscription-State %q", n.state)
	}
	if cs := n.req.CSeq().SeqNo; cs != 4 {
		t.Errorf("CSeq of the fourth NOTIFY %d", cs)
	}
	if got := l.n.Subscriptions(); len(got) != 0 {
		t.Errorf("subscriptions left %+v", got)
	}
	waitNoRows(t, l.s)
	peer.none(300 * time.Millisecond)
}

func TestRegEventPCSCFSubscriptionAndRTR(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("bob"))
	l := newRegLab(t, h, "", nil)
	peer := newTestPeer(t, 200)
	u := newTestUE(t, "bob")
	u.path = "<sip:term@" + peer.hostport() + ";lr>"
	u.registerAKA(t, l.shim, 600)

	pcscf := peer.uri("pcscf-reginfo")
	res, _ := peer.subscribe(l, u.impu, pcscf.String(), 600000)
	if res.StatusCode != 200 {
		t.Fatalf("P-CSCF SUBSCRIBE: %d %s", res.StatusCode, res.Reason)
	}
	if got := l.n.Subscriptions(); len(got) != 1 || got[0].Kind != RegSubscriberPCSCF {
		t.Errorf("subscriptions %+v", got)
	}
	n := peer.nextNotify(3 * time.Second)
	if n.doc.State != reginfo.StateFull {
		t.Fatalf("first NOTIFY %+v", n.doc)
	}

	rtr := h.node.NewRequest(diameter.CmdRegistrationTermination, diameter.AppCx, testDomain, l.s.cfg.OriginHost)
	rtr.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(u.impi)))
	rtr.AddAVP(diameter.Grouped(diameter.AVPDeregistrationReason,
		diameter.NewAVP(diameter.AVPReasonCode, datatype.Enumerated(diameter.ReasonPermanentTermination)),
		diameter.NewAVP(diameter.AVPReasonInfo, datatype.UTF8String("operator"))))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.node.Send(ctx, rtr); err != nil {
		t.Fatal(err)
	}
	n = peer.nextNotify(3 * time.Second)
	r := findReg(t, n.doc, u.impu)
	c := findContact(t, r, "sip:bob@127.0.0.1:5999")
	if n.doc.Version != 1 || r.State != reginfo.RegTerminated || c.State != reginfo.ContactTerminated || c.Event != reginfo.EventRejected {
		t.Errorf("RTR NOTIFY %+v", n.doc)
	}
	if n.state != "terminated;reason=rejected" {
		t.Errorf("Subscription-State %q", n.state)
	}
}

func TestRegEventAuthorisation(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("carol"))
	invite := "INVITE"
	serveProfiles(t, h, func(s *testSub) *userdata.IMSSubscription {
		return profileWith(s, userdata.InitialFilterCriteria{Priority: 1,
			TriggerPoint:      &userdata.TriggerPoint{SPTs: []userdata.SPT{{Groups: []uint32{0}, Method: &invite}}},
			ApplicationServer: userdata.ApplicationServer{ServerName: "sip:tas.example.net:5060"}})
	})
	l := newRegLab(t, h, "", nil)
	u := newTestUE(t, "carol")
	u.path = "<sip:term@pcscf.example.net:5060;lr>"
	u.registerAKA(t, l.shim, 600)
	peer := newTestPeer(t, 200)

	for _, tc := range []struct {
		name, impu, pai string
		code            int
	}{
		{"stranger", u.impu, "sip:mallory@evil.example.net", 403},
		{"no P-Asserted-Identity", u.impu, "", 403},
		{"other user", u.impu, "sip:dave@" + testDomain, 403},
		{"not registered", "sip:nobody@" + testDomain, "sip:nobody@" + testDomain, 480},
		{"its P-CSCF", u.impu, "sip:pcscf-reginfo@pcscf.example.net:5060", 200},
		{"its AS", u.impu, "sip:tas.example.net", 200},
		{"the user", u.impu, u.impu, 200},
	} {
		res, _ := peer.subscribe(l, tc.impu, tc.pai, 600)
		if res.StatusCode != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, res.StatusCode, res.Reason, tc.code)
		}
	}
	probe := sip.NewRequest(sip.SUBSCRIBE, sip.Uri{Scheme: "sip", User: "carol", Host: testDomain})
	probe.AppendHeader(sip.NewHeader("Event", "reg;id=7"))
	if !l.n.Handles(probe) {
		t.Error("Handles: false for a registered IMPU")
	}
	probe.Recipient.User = "nobody"
	if l.n.Handles(probe) {
		t.Error("Handles: true for an IMPU not registered here")
	}
	probe.Recipient.User = "carol"
	probe.ReplaceHeader(sip.NewHeader("Event", "presence"))
	if l.n.Handles(probe) {
		t.Error("Handles: true for Event: presence")
	}
	kinds := map[string]bool{}
	for _, s := range l.n.Subscriptions() {
		kinds[s.Kind] = true
	}
	if len(kinds) != 3 || !kinds[RegSubscriberPCSCF] || !kinds[RegSubscriberAS] || !kinds[RegSubscriberUE] {
		t.Errorf("subscription kinds %v", kinds)
	}
}

func TestRegEventUnsubscribeAndExpiry(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("erin"))
	l := newRegLab(t, h, "", nil)
	u := newTestUE(t, "erin")
	u.registerAKA(t, l.shim, 600)
	peer := newTestPeer(t, 200)

	// Too short.
	if res, _ := peer.subscribe(l, u.impu, u.impu, 10); res.StatusCode != 423 || hdrValue(res, "Min-Expires") != "60" {
		t.Errorf("short SUBSCRIBE: %d Min-Expires %q", res.StatusCode, hdrValue(res, "Min-Expires"))
	}

	res, sub := peer.subscribe(l, u.impu, u.impu, 600)
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE %d", res.StatusCode)
	}
	peer.nextNotify(3 * time.Second)
	// Refresh: 200 and a full NOTIFY.
	if res := peer.resubscribe(l, sub, 1200); res.StatusCode != 200 || hdrValue(res, "Expires") != "1200" {
		t.Fatalf("refresh: %d Expires %q", res.StatusCode, hdrValue(res, "Expires"))
	}
	n := peer.nextNotify(3 * time.Second)
	if n.doc.State != reginfo.StateFull || n.doc.Version != 1 || !strings.HasPrefix(n.state, "active;expires=") {
		t.Errorf("refresh NOTIFY %s %+v", n.state, n.doc)
	}
	// Un-SUBSCRIBE.
	if res := peer.resubscribe(l, sub, 0); res.StatusCode != 200 || hdrValue(res, "Expires") != "0" {
		t.Fatalf("un-SUBSCRIBE: %d", res.StatusCode)
	}
	n = peer.nextNotify(3 * time.Second)
	if n.state != "terminated;reason=timeout" || n.doc.Version != 2 || n.doc.State != reginfo.StateFull {
		t.Errorf("un-SUBSCRIBE NOTIFY %s %+v", n.state, n.doc)
	}
	if len(l.n.Subscriptions()) != 0 {
		t.Error("subscription kept after un-SUBSCRIBE")
	}
	if res := peer.resubscribe(l, sub, 600); res.StatusCode != 481 {
		t.Errorf("SUBSCRIBE in the ended dialog: %d", res.StatusCode)
	}

	// Expiry: the sweeper ends the subscription with reason timeout.
	res, _ = peer.subscribe(l, u.impu, u.impu, 600)
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE %d", res.StatusCode)
	}
	peer.nextNotify(3 * time.Second)
	l.n.mu.Lock()
	for _, s := range l.n.subs {
		s.Expires = time.Now().Add(-time.Second)
	}
	l.n.mu.Unlock()
	n = peer.nextNotify(3 * time.Second)
	if n.state != "terminated;reason=timeout" {
		t.Errorf("expiry NOTIFY Subscription-State %q", n.state)
	}
	waitNoRows(t, l.s)
	// Ended subscriptions leave the by-IMPU and by-AOR indexes too.
	l.n.mu.Lock()
	left := len(l.n.subs) + len(l.n.byIMPU) + len(l.n.byAOR)
	l.n.mu.Unlock()
	if left != 0 {
		t.Errorf("subscriptions or index entries left after every subscription ended: %d", left)
	}
}

func TestRegEventSubscriptionsReloadedAfterRestart(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("frank"))
	dsn := pgtest.NewDB(t)
	l := newRegLab(t, h, dsn, nil)
	u := newTestUE(t, "frank")
	u.registerAKA(t, l.shim, 600)
	peer := newTestPeer(t, 200)
	res, sub := peer.subscribe(l, u.impu, u.impu, 3600)
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE %d", res.StatusCode)
	}
	peer.nextNotify(3 * time.Second)
	time.Sleep(100 * time.Millisecond) // state written after the NOTIFY's 200
	l.close()

	l2 := newRegLab(t, h, dsn, nil)
	subs := l2.n.Subscriptions()
	if len(subs) != 1 || subs[0].CallID != sub.callID || subs[0].Version != 1 || subs[0].CSeq != 1 || subs[0].IMPU != u.impu {
		t.Fatalf("reloaded %+v", subs)
	}
	u.registerAKA(t, l2.shim, 0)
	n := peer.nextNotify(3 * time.Second)
	if n.req.CallID().Value() != sub.callID || n.req.CSeq().SeqNo != 2 || n.doc.Version != 1 || n.state != "terminated;reason=noresource" {
		t.Errorf("NOTIFY after restart: Call-ID %s CSeq %d version %d state %q", n.req.CallID().Value(), n.req.CSeq().SeqNo, n.doc.Version, n.state)
	}
	waitNoRows(t, l2.s)
}

func hdrValue(res *sip.Response, name string) string {
	if h := res.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

func tagOf(p sip.HeaderParams) string {
	v, _ := p.Get("tag")
	return v
}

// waitNoRows waits until scscf_reg_subscription is empty.
func waitNoRows(t *testing.T, s *Server) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		var n int
		if err := s.store.pool.QueryRow(context.Background(), `SELECT count(*) FROM scscf_reg_subscription`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d subscription rows left", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
