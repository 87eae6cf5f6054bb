package pcscf

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/imscore/imscore/pcscf/rx"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/diameter/diamtest"
	"github.com/imscore/imscore/pkg/pgtest"
)

// TestRxSessionsAfterRestart restarts a P-CSCF on the same database. The
// new process answers the PCRF's ASR for the Rx sessions of reloaded
// contacts with 2001 (the signalling session: registration removed; a call
// from before the restart: session ended, its dialog is gone), and ends
// with STR the session of a contact that expired while it was down.
func TestRxSessionsAfterRestart(t *testing.T) {
	dsn := pgtest.NewDB(t)
	pcrf := newTestPCRF(t)
	stop := diamtest.Capture(t, pcrf.port)
	core := newPeer(t, "")
	withRx := func(c *Config) {
		c.DatabaseURL = dsn
		c.Rx = &rx.Config{OriginHost: pcscfHost, OriginRealm: testDomain, PCRFAddr: fmt.Sprintf("127.0.0.1:%d", pcrf.port), PCRFHost: pcrfHost, PCRFRealm: testDomain, Timeout: time.Second}
	}
	waitRx := func(p *PCSCF) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.rx.WaitOpen(ctx); err != nil {
			t.Fatalf("Rx peer: %v", err)
		}
	}
	p1 := startPCSCF(t, core, withRx)
	waitRx(p1)
	pc := p1.addr()

	// UE 1: registered for 600 s (signalling session sig), then a call.
	ue := newPeer(t, "")
	register(ue, pc, "rs-reg", 1, 600, "")
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("register: %d", r.StatusCode)
	}
	core.respond(core.nextRequest(5*time.Second), 489, "Bad Event") // reg SUBSCRIBE
	sig := diameter.String(pcrf.next(t, diameter.CmdAA), diameter.AVPSessionID)
	waitRxSessions(t, p1, sig) // stored before the call's AAR is sent
	ok, call := answeredCall(t, ue, core, pcrf, pc, "rs-call")
	ue.send(pc, inDialog(ue, ok, sip.ACK, 1))
	waitRequest(t, core, sip.ACK)
	waitRxSessions(t, p1, sig, call)

	// UE 2: registered for 1 s, so its contact expires during the restart.
	ue2 := newPeer(t, "")
	register(ue2, pc, "rs-reg2", 1, 1, "")
	coreAnswerRegister(t, core, false)
	if r := ue2.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("register UE 2: %d", r.StatusCode)
	}
	core.respond(core.nextRequest(5*time.Second), 489, "Bad Event")
	stale := diameter.String(pcrf.next(t, diameter.CmdAA), diameter.AVPSessionID)
	deadline := time.Now().Add(5 * time.Second)
	for !slices.ContainsFunc(p1.Status().Contacts, func(c ContactStatus) bool { return slices.Contains(c.RxSessions, stale) }) {
		if time.Now().After(deadline) {
			t.Fatalf("UE 2's Rx session %s not stored: %+v", stale, p1.Status().Contacts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = p1.Close()
	time.Sleep(1200 * time.Millisecond)

	p2 := startPCSCF(t, core, withRx)
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), stale)
	waitRxSessions(t, p2, sig, call)

	// ASR for the call from before the restart: 2001, STR, the contact
	// keeps only the signalling session.
	if code, _, _ := diameter.Result(pcrf.asr(t, call)); code != diameter.DiameterSuccess {
		t.Fatalf("ASA for a call session of a reloaded contact: %d, want 2001", code)
	}
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), call)
	waitRxSessions(t, p2, sig)

	// ASR for the signalling session: 2001, STR, registration removed.
	if code, _, _ := diameter.Result(pcrf.asr(t, sig)); code != diameter.DiameterSuccess {
		t.Fatalf("ASA for the signalling session of a reloaded contact: %d, want 2001", code)
	}
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sig)
	deadline = time.Now().Add(5 * time.Second)
	for len(p2.Status().Contacts) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("contacts after the ASR: %+v", p2.Status().Contacts)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Now unknown: 5002.
	if code, _, _ := diameter.Result(pcrf.asr(t, sig)); code != diameter.DiameterUnknownSessionID {
		t.Errorf("ASA for an ended session: %d, want 5002", code)
	}
	pcrf.none(t, 200*time.Millisecond)
	diamtest.AssertNoMalformed(t, stop(), pcrf.port)
}
