package isc_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/scscf"
	"github.com/imscore/imscore/scscf/internal/scscftest"
)

const testGRUUSecret = "0123456789abcdef-isc-gruu-test"

// registerGRUU registers ue (REGISTER with Supported: gruu, AKA) at s and
// returns the temp-gruu the 200 gives its contact.
func registerGRUU(t *testing.T, s scscftest.Registrar, ue *scscftest.UE, expires int) string {
	t.Helper()
	res := ue.Send(t, s, expires, ue.InitialAuthz())
	res = ue.Send(t, s, expires, ue.Answer(t, res, true), sip.NewHeader("Supported", "gruu"))
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	if expires == 0 {
		return ""
	}
	for _, h := range res.GetHeaders("Contact") {
		v := h.Value()
		if !strings.Contains(v, strings.Trim(ue.Contact[:strings.IndexByte(ue.Contact, '>')+1], "<>")) {
			continue
		}
		if i := strings.Index(v, `temp-gruu="`); i >= 0 {
			rest := v[i+len(`temp-gruu="`):]
			return rest[:strings.IndexByte(rest, '"')]
		}
	}
	t.Fatalf("no temp-gruu for %s in %q", ue.Contact, scscftest.Hdr(res, "Contact"))
	return ""
}

// TestSessionToTemporaryGRUU: bob registers two phones; a request to the
// temporary GRUU of the second reaches that phone only, with the temp
// GRUU as P-Called-Party-ID (the UE answers with it, not with its public
// GRUU: TS 23.228 §5.20.1.2); every temp GRUU of the registration works
// while its Call-ID stays (RFC 5627 §3.2); a forged one gets 404, one of
// an earlier Call-ID 404, one of a de-registered phone 480 (RFC 5627
// §5.4). Before, the temp GRUU was not issued.
func TestSessionToTemporaryGRUU(t *testing.T) {
	l := newSessionLab(t, func(c *scscf.Config) { c.GRUUSecret = testGRUUSecret })
	l.addUser(t, "alice", newUAS(t, "alice", 0))
	l.addUser(t, "bob", nil)
	var phones []*sipElement
	var ues []*scscftest.UE
	var tgs []string
	for _, inst := range []string{"urn:uuid:00000000-0000-0000-0000-0000000000a1", "urn:uuid:00000000-0000-0000-0000-0000000000a2"} {
		uas := newUAS(t, "bob", 0)
		ue := scscftest.NewUE(t, "bob")
		ue.Contact = "<sip:bob@" + uas.addr() + `>;+sip.instance="<` + inst + `>"`
		tgs = append(tgs, registerGRUU(t, l.s, ue, 600))
		phones, ues = append(phones, uas), append(ues, ue)
	}
	res, inv := l.send(t, sip.INVITE, tgs[1], alice())
	if res.StatusCode != 200 {
		t.Fatalf("INVITE to the temp GRUU: %d %s", res.StatusCode, res.Reason)
	}
	l.ackAndBye(t, inv, res)
	if n := len(phones[0].requests(sip.INVITE)); n != 0 {
		t.Errorf("the other phone got %d INVITEs", n)
	}
	got := phones[1].requests(sip.INVITE)
	if len(got) != 1 {
		t.Fatalf("the phone of the temp GRUU got %d INVITEs", len(got))
	}
	if pcpi := hdr2(got[0], "P-Called-Party-ID"); pcpi != "<"+tgs[1]+">" {
		t.Errorf("P-Called-Party-ID %q, want <%s>", pcpi, tgs[1])
	}

	// A refresh (same Call-ID) issues a new temp GRUU; the first stays.
	newer := registerGRUU(t, l.s, ues[1], 600)
	if newer == tgs[1] {
		t.Fatalf("refresh issued the same temp GRUU %q", newer)
	}
	for _, tg := range []string{tgs[1], newer} {
		if res, _ := l.send(t, sip.MESSAGE, tg, alice()); res.StatusCode != 200 {
			t.Errorf("MESSAGE to %s after the refresh: %d %s", tg, res.StatusCode, res.Reason)
		}
	}
	if n := len(phones[1].requests(sip.MESSAGE)); n != 2 || len(phones[0].requests(sip.MESSAGE)) != 0 {
		t.Errorf("MESSAGEs: %d at the temp GRUU's phone (want 2), %d at the other (want 0)", n, len(phones[0].requests(sip.MESSAGE)))
	}

	// Forged: one character of the token changed.
	forged := []byte(tgs[1])
	i := strings.Index(tgs[1], ".") + 5
	if forged[i] == 'A' {
		forged[i] = 'B'
	} else {
		forged[i] = 'A'
	}
	if res, _ := l.send(t, sip.MESSAGE, string(forged), alice()); res.StatusCode != 404 || !strings.Contains(res.Reason, "unknown temporary GRUU") {
		t.Errorf("forged temp GRUU: %d %s, want 404 unknown temporary GRUU", res.StatusCode, res.Reason)
	}

	// The phone registers again with a new Call-ID: the earlier temp
	// GRUUs are invalid, the new one works.
	ues[1].CallID = sip.GenerateTagN(16)
	ues[1].CSeq = 0
	fresh := registerGRUU(t, l.s, ues[1], 600)
	if res, _ := l.send(t, sip.MESSAGE, newer, alice()); res.StatusCode != 404 || !strings.Contains(res.Reason, "no longer valid") {
		t.Errorf("temp GRUU of the earlier Call-ID: %d %s, want 404 no longer valid", res.StatusCode, res.Reason)
	}
	if res, _ := l.send(t, sip.MESSAGE, fresh, alice()); res.StatusCode != 200 {
		t.Errorf("temp GRUU of the new Call-ID: %d %s", res.StatusCode, res.Reason)
	}

	// De-registered: 480.
	registerGRUU(t, l.s, ues[1], 0)
	if res, _ := l.send(t, sip.MESSAGE, fresh, alice()); res.StatusCode != 480 {
		t.Errorf("temp GRUU of a de-registered phone: %d %s, want 480", res.StatusCode, res.Reason)
	}
	// The first phone's temp GRUU still works.
	if res, _ := l.send(t, sip.MESSAGE, tgs[0], alice()); res.StatusCode != 200 {
		t.Errorf("temp GRUU of the other phone: %d %s", res.StatusCode, res.Reason)
	}
}

// TestTemporaryGRUUSurvivesRestart: the bindings are reloaded from
// PostgreSQL at start, and the temp GRUU holds everything else, so a
// temp GRUU issued before a restart of the S-CSCF routes after it (RFC
// 5627 §3.2: valid as long as the registration). Before, none was issued.
func TestTemporaryGRUUSurvivesRestart(t *testing.T) {
	h := scscftest.NewHSS(t)
	dsn := pgtest.NewDB(t)
	start := func() *scscf.Server {
		addr := scscftest.FreeAddr(t)
		return scscftest.NewServer(t, h, dsn, func(c *scscf.Config) {
			c.SIPListen, c.ICSCF, c.GRUUSecret = addr, "sip:"+addr, testGRUUSecret
		})
	}
	s1 := start()
	l := &sessionLab{hss: h, s: s1}
	l.caller = newElement(t, "caller", func(e *sipElement, ctx context.Context, tx *sipproxy.Txn) {
		if !tx.Request().IsAck() {
			_ = tx.Respond(200, "OK")
		}
	})
	l.addUser(t, "alice", newUAS(t, "alice", 0))
	l.addUser(t, "bob", nil)
	phone := newUAS(t, "bob", 0)
	ue := scscftest.NewUE(t, "bob")
	ue.Contact = "<sip:bob@" + phone.addr() + `>;+sip.instance="<urn:uuid:00000000-0000-0000-0000-0000000000b1>"`
	tg := registerGRUU(t, s1, ue, 600)
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	l.s = start()
	if res, _ := l.send(t, sip.MESSAGE, tg, alice()); res.StatusCode != 200 {
		t.Fatalf("temp GRUU after the restart: %d %s", res.StatusCode, res.Reason)
	}
	scscftest.WaitFor(t, "the MESSAGE at the phone", func() bool { return len(phone.requests(sip.MESSAGE)) == 1 })
}

// TestGRUUOfBarredIMPURoutes: a USIM-only UE registers its barred
// temporary IMPU (TS 23.003 §13.4B); the GRUUs of the 200 are built on
// its default non-barred IMPU, so requests to them reach the phone.
// Before, the pub-gruu named the barred IMPU and got 404 "public identity
// barred".
func TestGRUUOfBarredIMPURoutes(t *testing.T) {
	l := newSessionLab(t, func(c *scscf.Config) { c.GRUUSecret = testGRUUSecret })
	l.addUser(t, "alice", newUAS(t, "alice", 0))
	d := scscftest.Domain
	l.hss.Add(&scscftest.Sub{IMPI: "wanda@" + d, IMPUs: []string{"sip:wanda.temp@" + d, "sip:wanda@" + d}, Scheme: "aka"})
	l.hss.Bar("wanda@"+d, "sip:wanda.temp@"+d)
	phone := newUAS(t, "wanda", 0)
	ue := scscftest.NewUE(t, "wanda")
	ue.Contact = "<sip:wanda@" + phone.addr() + `>;+sip.instance="<urn:uuid:00000000-0000-0000-0000-0000000000c1>"`
	to := sip.NewHeader("X-Test-To", "wanda.temp")
	res := ue.Send(t, l.s, 600, ue.InitialAuthz(), to)
	res = ue.Send(t, l.s, 600, ue.Answer(t, res, true), to, sip.NewHeader("Supported", "gruu"))
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	c := scscftest.Hdr(res, "Contact")
	var gruus []string
	for _, p := range []string{`pub-gruu="`, `temp-gruu="`} {
		i := strings.Index(c, p)
		if i < 0 {
			t.Fatalf("no %s in %q", p, c)
		}
		rest := c[i+len(p):]
		gruus = append(gruus, rest[:strings.IndexByte(rest, '"')])
	}
	for _, g := range gruus {
		if res, _ := l.send(t, sip.MESSAGE, g, alice()); res.StatusCode != 200 {
			t.Errorf("MESSAGE to %s: %d %s", g, res.StatusCode, res.Reason)
		}
	}
	if n := len(phone.requests(sip.MESSAGE)); n != len(gruus) {
		t.Errorf("phone got %d MESSAGEs, want %d", n, len(gruus))
	}
}

// TestInDialogToGRUUContact: bob's phone answers with its temporary GRUU
// as Contact (TS 23.228 §5.20.1.2, for privacy); the caller's BYE then has
// the temp GRUU as Request-URI and reaches the S-CSCF by its
// Record-Route, which translates it to the phone's contact (RFC 5627
// §5.4). The same for the public GRUU. Before, the BYE was forwarded to
// the GRUU's host (the home domain) and never reached the phone.
func TestInDialogToGRUUContact(t *testing.T) {
	l := newSessionLab(t, func(c *scscf.Config) { c.GRUUSecret = testGRUUSecret })
	l.addUser(t, "alice", newUAS(t, "alice", 0))
	l.addUser(t, "bob", nil)
	var mu sync.Mutex
	contact := ""
	phone := newElement(t, "bob", func(e *sipElement, ctx context.Context, tx *sipproxy.Txn) {
		req := tx.Request()
		if req.IsAck() {
			return
		}
		res := tx.NewResponse(200, "OK")
		if req.IsInvite() {
			to := res.To()
			nt := &sip.ToHeader{DisplayName: to.DisplayName, Address: to.Address, Params: to.Params.Clone()}
			nt.Params.Add("tag", "bob-phone")
			res.ReplaceHeader(nt)
			mu.Lock()
			res.AppendHeader(sip.NewHeader("Contact", "<"+contact+">"))
			mu.Unlock()
		}
		_ = tx.Relay(res)
	})
	ue := scscftest.NewUE(t, "bob")
	ue.Contact = "<sip:bob@" + phone.addr() + `>;+sip.instance="<urn:uuid:00000000-0000-0000-0000-0000000000d1>"`
	tg := registerGRUU(t, l.s, ue, 600)
	pub := bob() + ";gr=urn:uuid:00000000-0000-0000-0000-0000000000d1"
	for i, g := range []string{tg, pub} {
		mu.Lock()
		contact = g
		mu.Unlock()
		res, inv := l.send(t, sip.INVITE, bob(), alice())
		if res.StatusCode != 200 {
			t.Fatalf("INVITE: %d %s", res.StatusCode, res.Reason)
		}
		if c := res.Contact(); c == nil || c.Address.String() != g {
			t.Fatalf("2xx Contact %v, want %s", c, g)
		}
		if bye := l.ackAndBye(t, inv, res); bye.StatusCode != 200 {
			t.Errorf("BYE to %s: %d %s", g, bye.StatusCode, bye.Reason)
		}
		if n := len(phone.requests(sip.BYE)); n != i+1 {
			t.Errorf("BYE to %s: the phone got %d BYEs, want %d", g, n, i+1)
		}
	}
}
