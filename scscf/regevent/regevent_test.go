package regevent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/emiago/sipgo/sip"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/imscore/imscore/pkg/reginfo"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf"
	"github.com/imscore/imscore/scscf/binding"
	"github.com/imscore/imscore/scscf/internal/scscftest"
	"github.com/imscore/imscore/scscf/regevent"
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
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("alice", "tel:+15550001"))
	l := scscftest.NewRegLab(t, h, "", nil)
	u := scscftest.NewUE(t, "alice")
	u.Path = "<sip:term@127.0.0.1:5999;lr>"
	u.RegisterAKA(t, l.Shim, 600)

	peer := scscftest.NewPeer(t, 200)
	res, sub := peer.Subscribe(l, u.IMPU, u.IMPU, 700000)
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d %s", res.StatusCode, res.Reason)
	}
	if got := hdrValue(res, "Expires"); got != "600000" {
		t.Errorf("Expires %q, want clamped 600000", got)
	}
	if sub.ToTag == "" || sub.Remote.Host == "" {
		t.Fatalf("200 without To tag or Contact:\n%s", res)
	}

	n := peer.NextNotify(3 * time.Second)
	if !strings.HasPrefix(n.State, "active;expires=") {
		t.Errorf("Subscription-State %q", n.State)
	}
	if n.Req.CallID().Value() != sub.CallID || tagOf(n.Req.From().Params) != sub.ToTag || tagOf(n.Req.To().Params) != sub.FromTag {
		t.Errorf("NOTIFY outside the dialog:\n%s", n.Req)
	}
	if ev := n.Req.GetHeader("Event"); ev == nil || ev.Value() != "reg" {
		t.Errorf("Event %v", ev)
	}
	if n.Doc.State != reginfo.StateFull || n.Doc.Version != 0 || len(n.Doc.Registrations) != 2 {
		t.Fatalf("first NOTIFY %+v", n.Doc)
	}
	for _, aor := range []string{u.IMPU, "tel:+15550001"} {
		r := findReg(t, n.Doc, aor)
		if r.State != reginfo.RegActive || len(r.Contacts) != 1 {
			t.Fatalf("registration %+v", r)
		}
		c := r.Contacts[0]
		if c.URI != "sip:alice@127.0.0.1:5999" || c.State != reginfo.ContactActive || c.Event != reginfo.EventRegistered ||
			c.CallID != u.CallID || c.CSeq == nil || *c.CSeq != u.CSeq || c.Expires == nil || *c.Expires < 590 || *c.Expires > 600 {
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
	u2 := scscftest.NewUE(t, "alice")
	u2.Contact = "<sip:alice@127.0.0.1:6001>"
	u2.Path = u.Path
	u2.RegisterAKA(t, l.Shim, 600)
	n = peer.NextNotify(3 * time.Second)
	if n.Doc.State != reginfo.StatePartial || n.Doc.Version != 1 || !strings.HasPrefix(n.State, "active") {
		t.Fatalf("NOTIFY for the second contact: %s %+v", n.State, n.Doc)
	}
	c := findContact(t, findReg(t, n.Doc, u.IMPU), "sip:alice@127.0.0.1:6001")
	if c.State != reginfo.ContactActive || c.Event != reginfo.EventRegistered {
		t.Errorf("new contact %+v", c)
	}

	// De-registration of that contact: partial, the registration stays.
	u2.RegisterAKA(t, l.Shim, 0)
	n = peer.NextNotify(3 * time.Second)
	r := findReg(t, n.Doc, u.IMPU)
	c = findContact(t, r, "sip:alice@127.0.0.1:6001")
	if n.Doc.Version != 2 || n.Doc.State != reginfo.StatePartial || r.State != reginfo.RegActive ||
		c.State != reginfo.ContactTerminated || c.Event != reginfo.EventUnregistered || !strings.HasPrefix(n.State, "active") {
		t.Errorf("partial de-registration NOTIFY %s %+v", n.State, n.Doc)
	}

	// De-registration of the last contact: final NOTIFY, subscription gone.
	u.RegisterAKA(t, l.Shim, 0)
	n = peer.NextNotify(3 * time.Second)
	r = findReg(t, n.Doc, u.IMPU)
	c = findContact(t, r, "sip:alice@127.0.0.1:5999")
	if n.Doc.Version != 3 || r.State != reginfo.RegTerminated || c.State != reginfo.ContactTerminated || c.Event != reginfo.EventUnregistered {
		t.Errorf("final NOTIFY %+v", n.Doc)
	}
	if n.State != "terminated;reason=noresource" {
		t.Errorf("Subscription-State %q", n.State)
	}
	if cs := n.Req.CSeq().SeqNo; cs != 4 {
		t.Errorf("CSeq of the fourth NOTIFY %d", cs)
	}
	if got := l.N.Subscriptions(); len(got) != 0 {
		t.Errorf("subscriptions left %+v", got)
	}
	waitNoRows(t, l.S)
	peer.None(300 * time.Millisecond)
}

func TestRegEventPCSCFSubscriptionAndRTR(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("bob"))
	l := scscftest.NewRegLab(t, h, "", nil)
	peer := scscftest.NewPeer(t, 200)
	u := scscftest.NewUE(t, "bob")
	u.Path = "<sip:term@" + peer.HostPort() + ";lr>"
	u.RegisterAKA(t, l.Shim, 600)

	pcscf := peer.URI("pcscf-reginfo")
	res, _ := peer.Subscribe(l, u.IMPU, pcscf.String(), 600000)
	if res.StatusCode != 200 {
		t.Fatalf("P-CSCF SUBSCRIBE: %d %s", res.StatusCode, res.Reason)
	}
	if got := l.N.Subscriptions(); len(got) != 1 || got[0].Kind != regevent.SubscriberPCSCF {
		t.Errorf("subscriptions %+v", got)
	}
	n := peer.NextNotify(3 * time.Second)
	if n.Doc.State != reginfo.StateFull {
		t.Fatalf("first NOTIFY %+v", n.Doc)
	}

	sendRTR(t, h, l, u.IMPI, diameter.ReasonPermanentTermination, "operator")
	n = peer.NextNotify(3 * time.Second)
	r := findReg(t, n.Doc, u.IMPU)
	c := findContact(t, r, "sip:bob@127.0.0.1:5999")
	if n.Doc.Version != 1 || r.State != reginfo.RegTerminated || c.State != reginfo.ContactTerminated || c.Event != reginfo.EventRejected {
		t.Errorf("RTR NOTIFY %+v", n.Doc)
	}
	if n.State != "terminated;reason=rejected" {
		t.Errorf("Subscription-State %q", n.State)
	}
}

// TestRegEventRTRReasons: the contact event of an RTR follows its
// Deregistration-Reason (TS 24.229 §5.4.1.5, TS 29.228 §6.1.3):
// NEW_SERVER_ASSIGNED and SERVER_CHANGE ask the UE to register again
// ("deactivated", Subscription-State reason deactivated);
// PERMANENT_TERMINATION is "rejected" (TestRegEventPCSCFSubscriptionAndRTR).
func TestRegEventRTRReasons(t *testing.T) {
	for _, code := range []uint32{diameter.ReasonNewServerAssigned, diameter.ReasonServerChange} {
		h, l, peer, u := pcscfSubscribed(t, "rita")
		sendRTR(t, h, l, u.IMPI, code, "moving you")
		n := peer.NextNotify(3 * time.Second)
		c := findContact(t, findReg(t, n.Doc, u.IMPU), "sip:rita@127.0.0.1:5999")
		if c.State != reginfo.ContactTerminated || c.Event != reginfo.EventDeactivated {
			t.Errorf("Reason-Code %d: contact %s/%s, want terminated/deactivated", code, c.State, c.Event)
		}
		if n.State != "terminated;reason=deactivated" {
			t.Errorf("Reason-Code %d: Subscription-State %q", code, n.State)
		}
	}
}

// TestRegEventProfileChange: a PPR that changes which IMPUs the UE may use
// reaches the subscribers (TS 24.229 §5.4.2.1.2): an IMPU now barred is
// "terminated" with contacts "rejected", an IMPU added to the set "active"
// with contacts "created". A PPR that changes neither sends nothing.
func TestRegEventProfileChange(t *testing.T) {
	d := scscftest.Domain
	h, l, peer, u := pcscfSubscribed(t, "pia", "sip:pia.work@"+d)
	ppr := func(s *scscftest.Sub) {
		t.Helper()
		req := h.Node.NewRequest(diameter.CmdPushProfile, diameter.AppCx, d, l.S.Config().OriginHost)
		req.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(s.IMPI)))
		req.AddAVP(diameter.NewAVP(diameter.AVPUserData, datatype.OctetString(scscftest.UserData(t, s))))
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		a, err := h.Node.Send(ctx, req)
		if err != nil || !diameter.IsSuccess(a) {
			t.Fatalf("PPR: %v %v", err, a)
		}
	}
	// The same profile again: no NOTIFY.
	ppr(&scscftest.Sub{IMPI: u.IMPI, IMPUs: []string{"sip:pia@" + d, "sip:pia.work@" + d}})
	// pia.work barred, tel:+15550077 added.
	next := scscftest.Sub{IMPI: u.IMPI, IMPUs: []string{"sip:pia@" + d, "sip:pia.work@" + d, "tel:+15550077"},
		Barred: map[string]bool{"sip:pia.work@" + d: true}}
	ppr(&next)
	n := peer.NextNotify(3 * time.Second)
	if n.Doc.State != reginfo.StatePartial || n.Doc.Version != 1 {
		t.Fatalf("NOTIFY after the profile change: state %s version %d, want partial 1 (the unchanged PPR sent one?)", n.Doc.State, n.Doc.Version)
	}
	work := findReg(t, n.Doc, "sip:pia.work@"+d)
	if work.State != reginfo.RegTerminated || len(work.Contacts) != 1 || work.Contacts[0].Event != reginfo.EventRejected {
		t.Errorf("barred IMPU: %+v", work)
	}
	tel := findReg(t, n.Doc, "tel:+15550077")
	if tel.State != reginfo.RegActive || len(tel.Contacts) != 1 || tel.Contacts[0].Event != reginfo.EventCreated {
		t.Errorf("added IMPU: %+v", tel)
	}
	for _, r := range n.Doc.Registrations {
		if binding.CanonURI(r.AOR) == binding.CanonURI(u.IMPU) {
			t.Errorf("unchanged IMPU %s in the partial NOTIFY", r.AOR)
		}
	}
}

func TestRegEventAuthorisation(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("carol"))
	invite := "INVITE"
	scscftest.ServeProfiles(t, h, func(s *scscftest.Sub) *userdata.IMSSubscription {
		return scscftest.ProfileWith(s, userdata.InitialFilterCriteria{Priority: 1,
			TriggerPoint:      &userdata.TriggerPoint{SPTs: []userdata.SPT{{Groups: []uint32{0}, Method: &invite}}},
			ApplicationServer: userdata.ApplicationServer{ServerName: "sip:tas.example.net:5060"}})
	})
	l := scscftest.NewRegLab(t, h, "", nil)
	u := scscftest.NewUE(t, "carol")
	u.Path = "<sip:term@pcscf.example.net:5060;lr>"
	u.RegisterAKA(t, l.Shim, 600)
	peer := scscftest.NewPeer(t, 200)

	for _, tc := range []struct {
		name, impu, pai string
		code            int
	}{
		{"stranger", u.IMPU, "sip:mallory@evil.example.net", 403},
		{"no P-Asserted-Identity", u.IMPU, "", 403},
		{"other user", u.IMPU, "sip:dave@" + scscftest.Domain, 403},
		{"not registered", "sip:nobody@" + scscftest.Domain, "sip:nobody@" + scscftest.Domain, 480},
		{"its P-CSCF", u.IMPU, "sip:pcscf-reginfo@pcscf.example.net:5060", 200},
		{"its AS", u.IMPU, "sip:tas.example.net", 200},
		{"the user", u.IMPU, u.IMPU, 200},
	} {
		res, _ := peer.Subscribe(l, tc.impu, tc.pai, 600)
		if res.StatusCode != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, res.StatusCode, res.Reason, tc.code)
		}
	}
	probe := sip.NewRequest(sip.SUBSCRIBE, sip.Uri{Scheme: "sip", User: "carol", Host: scscftest.Domain})
	probe.AppendHeader(sip.NewHeader("Event", "reg;id=7"))
	if !l.N.Handles(probe) {
		t.Error("Handles: false for a registered IMPU")
	}
	probe.Recipient.User = "nobody"
	if l.N.Handles(probe) {
		t.Error("Handles: true for an IMPU not registered here")
	}
	probe.Recipient.User = "carol"
	probe.ReplaceHeader(sip.NewHeader("Event", "presence"))
	if l.N.Handles(probe) {
		t.Error("Handles: true for Event: presence")
	}
	kinds := map[string]bool{}
	for _, s := range l.N.Subscriptions() {
		kinds[s.Kind] = true
	}
	if len(kinds) != 3 || !kinds[regevent.SubscriberPCSCF] || !kinds[regevent.SubscriberAS] || !kinds[regevent.SubscriberUE] {
		t.Errorf("subscription kinds %v", kinds)
	}
}

func TestRegEventUnsubscribeAndExpiry(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("erin"))
	l := scscftest.NewRegLab(t, h, "", nil)
	u := scscftest.NewUE(t, "erin")
	u.RegisterAKA(t, l.Shim, 600)
	peer := scscftest.NewPeer(t, 200)

	// Too short.
	if res, _ := peer.Subscribe(l, u.IMPU, u.IMPU, 10); res.StatusCode != 423 || hdrValue(res, "Min-Expires") != "60" {
		t.Errorf("short SUBSCRIBE: %d Min-Expires %q", res.StatusCode, hdrValue(res, "Min-Expires"))
	}

	res, sub := peer.Subscribe(l, u.IMPU, u.IMPU, 600)
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE %d", res.StatusCode)
	}
	peer.NextNotify(3 * time.Second)
	// Refresh: 200 and a full NOTIFY.
	if res := peer.Resubscribe(l, sub, 1200); res.StatusCode != 200 || hdrValue(res, "Expires") != "1200" {
		t.Fatalf("refresh: %d Expires %q", res.StatusCode, hdrValue(res, "Expires"))
	}
	n := peer.NextNotify(3 * time.Second)
	if n.Doc.State != reginfo.StateFull || n.Doc.Version != 1 || !strings.HasPrefix(n.State, "active;expires=") {
		t.Errorf("refresh NOTIFY %s %+v", n.State, n.Doc)
	}
	// Un-SUBSCRIBE.
	if res := peer.Resubscribe(l, sub, 0); res.StatusCode != 200 || hdrValue(res, "Expires") != "0" {
		t.Fatalf("un-SUBSCRIBE: %d", res.StatusCode)
	}
	n = peer.NextNotify(3 * time.Second)
	if n.State != "terminated;reason=timeout" || n.Doc.Version != 2 || n.Doc.State != reginfo.StateFull {
		t.Errorf("un-SUBSCRIBE NOTIFY %s %+v", n.State, n.Doc)
	}
	if len(l.N.Subscriptions()) != 0 {
		t.Error("subscription kept after un-SUBSCRIBE")
	}
	if res := peer.Resubscribe(l, sub, 600); res.StatusCode != 481 {
		t.Errorf("SUBSCRIBE in the ended dialog: %d", res.StatusCode)
	}

	// Expiry: the sweeper ends the subscription with reason timeout.
	res, _ = peer.Subscribe(l, u.IMPU, u.IMPU, 600)
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE %d", res.StatusCode)
	}
	peer.NextNotify(3 * time.Second)
	regevent.ExpireSubscriptions(l.N, time.Now().Add(-time.Second))
	n = peer.NextNotify(3 * time.Second)
	if n.State != "terminated;reason=timeout" {
		t.Errorf("expiry NOTIFY Subscription-State %q", n.State)
	}
	waitNoRows(t, l.S)
	// Ended subscriptions leave the by-IMPU and by-AOR indexes too.
	left := regevent.SubscriptionEntries(l.N)
	if left != 0 {
		t.Errorf("subscriptions or index entries left after every subscription ended: %d", left)
	}
}

func TestRegEventSubscriptionsReloadedAfterRestart(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("frank"))
	dsn := pgtest.NewDB(t)
	l := scscftest.NewRegLab(t, h, dsn, nil)
	u := scscftest.NewUE(t, "frank")
	u.RegisterAKA(t, l.Shim, 600)
	peer := scscftest.NewPeer(t, 200)
	res, sub := peer.Subscribe(l, u.IMPU, u.IMPU, 3600)
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE %d", res.StatusCode)
	}
	first := peer.NextNotify(3 * time.Second)
	// The row reserves CSeq numbers and versions ahead: the NOTIFYs that
	// follow write nothing (a re-registration's partial NOTIFY here).
	row := func(s *scscf.Server) (xmin string, cseq int64, version int) {
		t.Helper()
		db, err := pgx.Connect(context.Background(), s.Config().DatabaseURL)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close(context.Background())
		if err := db.QueryRow(context.Background(), `SELECT xmin::text, local_cseq, version FROM scscf_reg_subscription`).Scan(&xmin, &cseq, &version); err != nil {
			t.Fatal(err)
		}
		return xmin, cseq, version
	}
	x0, _, _ := row(l.S)
	u.RegisterAKA(t, l.Shim, 600)
	second := peer.NextNotify(3 * time.Second)
	time.Sleep(100 * time.Millisecond)
	x1, cseq, version := row(l.S)
	if x1 != x0 || cseq <= int64(second.Req.CSeq().SeqNo) || version <= second.Doc.Version {
		t.Errorf("after NOTIFYs CSeq %d, %d and versions %d, %d: row written again (xmin %s → %s) or below them (CSeq %d, version %d)",
			first.Req.CSeq().SeqNo, second.Req.CSeq().SeqNo, first.Doc.Version, second.Doc.Version, x0, x1, cseq, version)
	}
	l.Close()

	l2 := scscftest.NewRegLab(t, h, dsn, nil)
	subs := l2.N.Subscriptions()
	if len(subs) != 1 || subs[0].CallID != sub.CallID || subs[0].IMPU != u.IMPU {
		t.Fatalf("reloaded %+v", subs)
	}
	// After the restart: above everything sent before, full state first.
	u.RegisterAKA(t, l2.Shim, 600)
	n := peer.NextNotify(3 * time.Second)
	if n.Req.CallID().Value() != sub.CallID || n.Req.CSeq().SeqNo <= second.Req.CSeq().SeqNo || n.Doc.Version <= second.Doc.Version || n.Doc.State != reginfo.StateFull {
		t.Errorf("NOTIFY after restart: Call-ID %s CSeq %d version %d state %s", n.Req.CallID().Value(), n.Req.CSeq().SeqNo, n.Doc.Version, n.Doc.State)
	}
	u.RegisterAKA(t, l2.Shim, 0)
	last := peer.NextNotify(3 * time.Second)
	if last.Req.CSeq().SeqNo != n.Req.CSeq().SeqNo+1 || last.Doc.Version != n.Doc.Version+1 || last.State != "terminated;reason=noresource" {
		t.Errorf("last NOTIFY: CSeq %d version %d state %q", last.Req.CSeq().SeqNo, last.Doc.Version, last.State)
	}
	waitNoRows(t, l2.S)
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

// waitNoRows waits until scscf_reg_subscription of s's database is empty.
func waitNoRows(t *testing.T, s *scscf.Server) {
	t.Helper()
	ctx := context.Background()
	db, err := pgx.Connect(ctx, s.Config().DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	deadline := time.Now().Add(3 * time.Second)
	for {
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM scscf_reg_subscription`).Scan(&n); err != nil {
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

// pcscfSubscribed registers user (AKA) with Path through a new peer that
// then subscribes to the reg event as a P-CSCF; the first (full) NOTIFY is
// consumed.
func pcscfSubscribed(t *testing.T, user string, more ...string) (*scscftest.HSS, *scscftest.RegLab, *scscftest.Peer, *scscftest.UE) {
	t.Helper()
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub(user, more...))
	l := scscftest.NewRegLab(t, h, "", nil)
	peer := scscftest.NewPeer(t, 200)
	u := scscftest.NewUE(t, user)
	u.Path = "<sip:term@" + peer.HostPort() + ";lr>"
	u.RegisterAKA(t, l.Shim, 600)
	pcscf := peer.URI("pcscf-reginfo")
	if res, _ := peer.Subscribe(l, u.IMPU, pcscf.String(), 600000); res.StatusCode != 200 {
		t.Fatalf("P-CSCF SUBSCRIBE: %d %s", res.StatusCode, res.Reason)
	}
	if n := peer.NextNotify(3 * time.Second); n.Doc.State != reginfo.StateFull {
		t.Fatalf("first NOTIFY %+v", n.Doc)
	}
	return h, l, peer, u
}

// sendRTR makes h send the S-CSCF of l an RTR for impi with
// Deregistration-Reason {code, info}.
func sendRTR(t *testing.T, h *scscftest.HSS, l *scscftest.RegLab, impi string, code uint32, info string) {
	t.Helper()
	rtr := h.Node.NewRequest(diameter.CmdRegistrationTermination, diameter.AppCx, scscftest.Domain, l.S.Config().OriginHost)
	rtr.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
	rtr.AddAVP(diameter.Grouped(diameter.AVPDeregistrationReason,
		diameter.NewAVP(diameter.AVPReasonCode, datatype.Enumerated(code)),
		diameter.NewAVP(diameter.AVPReasonInfo, datatype.UTF8String(info))))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.Node.Send(ctx, rtr); err != nil {
		t.Fatal(err)
	}
}
