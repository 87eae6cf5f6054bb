package pcscf

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/diameter/diamtest"
)

// TestRxSignalling: after a registration the P-CSCF sends an AAR for the
// UE's signalling flow (TS 29.214 §4.4.5a) and stores its Session-Id with
// the contact; de-registration sends STR; an ASR for the session of a new
// registration is answered 2001 and removes the registration (then STR).
func TestRxSignalling(t *testing.T) {
	pcrf := newTestPCRF(t)
	stop := diamtest.Capture(t, pcrf.port)
	p, ue, core := startRxPCSCF(t, pcrf)
	sig := pcrf.sig
	sid := diameter.String(sig, diameter.AVPSessionID)
	a := sig.AVP
	mcds := diameter.FindIn(a, diameter.AVPMediaComponentDescription)
	if len(mcds) != 1 {
		t.Fatalf("%d Media-Component-Description, want 1", len(mcds))
	}
	mcd := diameter.Children(mcds[0])
	if n := avpUint(t, mcd, diameter.AVPMediaComponentNumber); n != 0 {
		t.Errorf("Media-Component-Number %d, want 0", n)
	}
	subs := diameter.FindIn(mcd, diameter.AVPMediaSubComponent)
	if len(subs) != 1 {
		t.Fatalf("%d Media-Sub-Component, want 1", len(subs))
	}
	kids := diameter.Children(subs[0])
	if v := avpUint(t, kids, diameter.AVPFlowUsage); v != 2 {
		t.Errorf("Flow-Usage %d, want AF_SIGNALLING (2)", v)
	}
	if v := avpUint(t, kids, diameter.AVPAFSignallingProtocol); v != 1 {
		t.Errorf("AF-Signalling-Protocol %d, want SIP (1)", v)
	}
	pport := p.Proxy().Addr("udp").Port
	want := []string{
		fmt.Sprintf("permit out 17 from 127.0.0.1 %d to 127.0.0.1 %d", pport, ue.port()),
		fmt.Sprintf("permit in 17 from 127.0.0.1 %d to 127.0.0.1 %d", ue.port(), pport),
	}
	var fds []string
	for _, f := range diameter.FindIn(kids, diameter.AVPFlowDescription) {
		r, _ := f.Data.(datatype.IPFilterRule)
		fds = append(fds, string(r))
	}
	if fmt.Sprint(fds) != fmt.Sprint(want) {
		t.Errorf("Flow-Description %q, want %q", fds, want)
	}
	if got := avpString(t, a, diameter.AVPSubscriptionID, diameter.AVPSubscriptionIDData); got != "sip:alice@ims.test" {
		t.Errorf("Subscription-Id-Data %q", got)
	}
	waitRxSessions(t, p, sid)

	// Re-registration: no new AAR. The refused reg-event SUBSCRIBE of the
	// registration is tried again.
	register(ue, p.addr(), "rx-reg", 2, 600, "")
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("re-register: %d", r.StatusCode)
	}
	if sub := core.nextRequest(5 * time.Second); sub.Method != sip.SUBSCRIBE {
		t.Fatalf("core got %s, want the SUBSCRIBE tried again", sub.Method)
	} else {
		core.respond(sub, 489, "Bad Event")
	}
	pcrf.none(t, 300*time.Millisecond)

	// De-registration: STR.
	register(ue, p.addr(), "rx-reg", 3, 0, "")
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("de-register: %d", r.StatusCode)
	}
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sid)

	// New registration, then ASR: registration removed, STR.
	register(ue, p.addr(), "rx-reg2", 1, 600, "")
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("register: %d", r.StatusCode)
	}
	sid2 := diameter.String(pcrf.next(t, diameter.CmdAA), diameter.AVPSessionID)
	waitRxSessions(t, p, sid2)
	if code, _, _ := diameter.Result(pcrf.asr(t, sid2)); code != diameter.DiameterSuccess {
		t.Fatalf("ASA %d", code)
	}
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sid2)
	if n := len(p.Status().Contacts); n != 0 {
		t.Errorf("%d contacts after ASR, want 0", n)
	}
	// A call from the removed UE is refused now (not registered).
	invite(ue, p.addr(), "rx-after-asr", ueOffer)
	if r := waitFinal(t, ue, "rx-after-asr"); r.StatusCode < 400 {
		t.Errorf("INVITE after ASR: %d", r.StatusCode)
	}

	pcap := stop()
	diamtest.AssertNoMalformed(t, pcap, pcrf.port)
	v := diamtest.Read(t, pcap, pcrf.port, "-V")
	for _, w := range []string{"AF_SIGNALLING", "AF-Signalling-Protocol", "Abort-Session"} {
		if !strings.Contains(v, w) {
			t.Errorf("tshark -V lacks %q", w)
		}
	}
}

// waitRxSessions waits until the only contact's Rx sessions are want, in
// any order (a call's AAA can be stored before the signalling one's).
func waitRxSessions(t *testing.T, p *PCSCF, want ...string) {
	t.Helper()
	waitContact(t, p, fmt.Sprintf("Rx sessions %v", want), func(c ContactStatus) bool {
		return fmt.Sprint(slices.Sorted(slices.Values(c.RxSessions))) == fmt.Sprint(slices.Sorted(slices.Values(want)))
	})
}

// waitContact waits until there is one contact and ok says it is as
// wanted (what describes it).
func waitContact(t *testing.T, p *PCSCF, what string, ok func(ContactStatus) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := p.Status().Contacts
		if len(st) == 1 && ok(st[0]) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("contacts %+v, want one with %s", st, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRxCallsEndWithTheContact: a call whose BYE never comes through (the
// UE vanished) ends with its contact: de-registration sends STR for the
// call's Rx session as well as the signalling one, and the call is
// forgotten (it was kept for ever before).
func TestRxCallsEndWithTheContact(t *testing.T) {
	pcrf := newTestPCRF(t)
	p, ue, core := startRxPCSCF(t, pcrf)
	sig := diameter.String(pcrf.sig, diameter.AVPSessionID)
	waitRxSessions(t, p, sig)
	_, call := answeredCall(t, ue, core, pcrf, p.addr(), "gone-call")
	waitRxSessions(t, p, sig, call)

	register(ue, p.addr(), "rx-reg", 2, 0, "")
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("de-register: %d", r.StatusCode)
	}
	ended := map[string]bool{}
	for range 2 {
		ended[diameter.String(pcrf.next(t, diameter.CmdSessionTermination), diameter.AVPSessionID)] = true
	}
	if !ended[sig] || !ended[call] {
		t.Errorf("STRs for %v, want %s and %s", ended, sig, call)
	}
	p.mu.Lock()
	calls, byContact := len(p.calls), len(p.callsOf)
	p.mu.Unlock()
	if calls != 0 || byContact != 0 {
		t.Errorf("%d calls (%d contacts with calls) kept after the contact ended", calls, byContact)
	}
}
