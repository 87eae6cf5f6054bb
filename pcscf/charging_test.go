package pcscf

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/pgtest"
)

// TestChargingHeadersNotToUE: P-Charging-Vector and
// P-Charging-Function-Addresses never reach the UE (TS 24.229 §5.2.6.3,
// §5.2.6.4, RFC 7315 §4.5-4.6): not in the 200 to its REGISTER, not in the
// answer to its MESSAGE, not in a request the core sends it. Before, the
// P-CSCF passed all three on.
func TestChargingHeadersNotToUE(t *testing.T) {
	core := newPeer(t, "")
	p := startPCSCF(t, core, nil)
	ue := newPeer(t, "")
	pc := p.addr()
	charging := []sip.Header{sip.NewHeader("P-Charging-Vector", "icid-value=abc;orig-ioi=ims.test;term-ioi=ims.test"),
		sip.NewHeader("P-Charging-Function-Addresses", `ccf="aaa://ccf.ims.test"`)}
	check := func(what string, m sip.Message) {
		t.Helper()
		for _, h := range []string{"P-Charging-Vector", "P-Charging-Function-Addresses"} {
			if v := hdr(m, h); v != "" {
				t.Errorf("%s: the UE got %s: %s", what, h, v)
			}
		}
	}
	register(ue, pc, "reg-ch", 1, 600, "")
	coreAnswerRegister(t, core, false, charging...)
	res := ue.nextResponse(5 * time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	check("200 to REGISTER", res)
	if sub := core.nextRequest(5 * time.Second); sub.Method == sip.SUBSCRIBE {
		core.respond(sub, 489, "Bad Event")
	}

	message(ue, pc, "m-ch", "")
	m := core.nextRequest(5 * time.Second)
	core.respond(m, 200, "OK", charging...)
	res = ue.nextResponse(5 * time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE: %d", res.StatusCode)
	}
	check("200 to MESSAGE", res)

	tm := coreMessageToUE(core, ue, pc, "termch", "P-Charging-Vector: icid-value=def;orig-ioi=ims.test\nP-Charging-Function-Addresses: ccf=\"aaa://ccf.ims.test\"\n")
	check("terminating MESSAGE", tm)
	ue.respond(tm, 200, "OK")
	if r := core.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("core got %d", r.StatusCode)
	}
}

// nextCore returns the core's next request, answering a reg-event
// SUBSCRIBE (489) on the way.
func nextCore(t *testing.T, core *udpPeer) *sip.Request {
	t.Helper()
	for {
		r := core.nextRequest(5 * time.Second)
		if r.Method != sip.SUBSCRIBE {
			return r
		}
		core.respond(r, 489, "Bad Event")
	}
}

// TestPCSCFKeepsChargingAddresses: the P-CSCF stores the
// P-Charging-Function-Addresses of the 200 to REGISTER with the contact
// (TS 24.229 §5.2.2) and puts them in the UE's initial requests (replacing
// any the UE sent) and in the UE's answer to a request from the core
// (TS 24.229 §5.2.6.3.3, §5.2.6.4); a re-REGISTER's 200 with other
// addresses replaces them, and a restarted P-CSCF on the same database
// still has them. Before, no request or response towards the core carried
// them.
func TestPCSCFKeepsChargingAddresses(t *testing.T) {
	dsn := pgtest.NewDB(t)
	core := newPeer(t, "")
	p := startPCSCF(t, core, func(c *Config) { c.DatabaseURL = dsn })
	ue := newPeer(t, "")
	pc := p.addr()
	const first, second = `ccf="aaa://ccf1.ims.test";ecf="aaa://ecf1.ims.test"`, `ccf="aaa://ccf2.ims.test"`
	regWith := func(cseq int, pcfa string) {
		t.Helper()
		// The UE's own addresses never reach the home network.
		register(ue, pc, "reg-pcfa", cseq, 600, "P-Charging-Function-Addresses: ccf=ue-forged.example\n")
		req := coreAnswerRegister(t, core, false, sip.NewHeader("P-Charging-Function-Addresses", pcfa))
		if got := imsheader.Values(req, "P-Charging-Function-Addresses"); len(got) != 0 {
			t.Errorf("REGISTER %d: the core got the UE's P-Charging-Function-Addresses %q", cseq, got)
		}
		if res := ue.nextResponse(5 * time.Second); res.StatusCode != 200 {
			t.Fatalf("REGISTER: %d", res.StatusCode)
		}
	}
	sendMessage := func(pc, callID, want string) {
		t.Helper()
		message(ue, pc, callID, "P-Charging-Function-Addresses: ccf=forged.example\n")
		m := nextCore(t, core)
		if got := imsheader.Values(m, "P-Charging-Function-Addresses"); len(got) != 1 || got[0] != want {
			t.Errorf("%s: the core got P-Charging-Function-Addresses %q, want [%s]", callID, got, want)
		}
		core.respond(m, 200, "OK")
		if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
			t.Fatalf("%s: %d", callID, r.StatusCode)
		}
	}
	regWith(1, first)
	sendMessage(pc, "pcfa-1", first)

	// The UE's answer to a request from the core that carries no
	// addresses gets the stored ones.
	tm := coreMessageToUE(core, ue, pc, "termpcfa", "P-Charging-Vector: icid-value=def;orig-ioi=ims.test\n")
	ue.respond(tm, 200, "OK", sip.NewHeader("P-Charging-Function-Addresses", "ccf=from-ue.example"))
	r := core.nextResponse(5 * time.Second)
	if got := imsheader.Values(r, "P-Charging-Function-Addresses"); len(got) != 1 || got[0] != first {
		t.Errorf("UE's 200: P-Charging-Function-Addresses %q, want [%s]", got, first)
	}

	regWith(2, second)
	sendMessage(pc, "pcfa-2", second)
	_ = p.Close()

	p2 := startPCSCF(t, core, func(c *Config) { c.DatabaseURL = dsn })
	sendMessage(p2.addr(), "pcfa-3", second)
}

// TestPCSCFTermIOI: the terminating P-CSCF answers a request from the
// S-CSCF with a P-Charging-Vector holding the request's icid, the
// S-CSCF's (type 1) orig-ioi and its own type 1 term-ioi (TS 24.229
// §5.2.6.4, §5.2.7.3); a vector the UE put in its response does not go
// on. Before, the UE's vector went to the core as it was.
func TestPCSCFTermIOI(t *testing.T) {
	core, ue, pc := registeredUE(t, "reg-ioi")
	tm := coreMessageToUE(core, ue, pc, "termioi", "P-Charging-Vector: icid-value=ab12;icid-generated-at=pcscf.other.test;orig-ioi=home.test\n")
	ue.respond(tm, 200, "OK", sip.NewHeader("P-Charging-Vector", "icid-value=forged;orig-ioi=ue.example;term-ioi=ue.example"))
	r := core.nextResponse(5 * time.Second)
	if r.StatusCode != 200 {
		t.Fatalf("core got %d", r.StatusCode)
	}
	pcv, err := imsheader.GetPChargingVector(r)
	if err != nil || pcv == nil {
		t.Fatalf("response P-Charging-Vector %q: %v", hdr(r, "P-Charging-Vector"), err)
	}
	if pcv.ICID() != "ab12" || pcv.ICIDGeneratedAt() != "pcscf.other.test" || pcv.OrigIOI() != "home.test" || pcv.TermIOI() != testDomain {
		t.Errorf("response P-Charging-Vector %q, want icid-value=ab12, icid-generated-at=pcscf.other.test, orig-ioi=home.test, term-ioi=%s", pcv.String(), testDomain)
	}
}
