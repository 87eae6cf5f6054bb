package pcscf

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pcscf/rx"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/diameter/diamtest"
)

// TestRxReAuth: RAR from the PCRF is answered RAA 2001 for an open
// session (5002 for an unknown one); CHARGING_CORRELATION_EXCHANGE is
// only logged, INDICATION_OF_LOSS_OF_BEARER for a call's session releases
// the call (BYE both ways, STR). (For the signalling session it marks the
// UE unreachable for terminating INVITEs, which this test does not send:
// see TestRxSignallingBearerLost.)
func TestRxReAuth(t *testing.T) {
	pcrf := newTestPCRF(t)
	stop := diamtest.Capture(t, pcrf.port)
	p, ue, core := startRxPCSCF(t, pcrf)
	pc := p.addr()
	sigSID := diameter.String(pcrf.sig, diameter.AVPSessionID)

	unknown := sigSID[:len(sigSID)-1] + "x" // same length: the helper edits the Session-Id in place
	if code, _, _ := diameter.Result(pcrf.rar(t, unknown, rx.ActionIndicationOfLossOfBearer)); code != diameter.DiameterUnknownSessionID {
		t.Errorf("RAA for an unknown session %d, want 5002", code)
	}
	waitRxSessions(t, p, sigSID)
	if code, _, _ := diameter.Result(pcrf.rar(t, sigSID, rx.ActionIndicationOfLossOfBearer)); code != diameter.DiameterSuccess {
		t.Errorf("RAA for the signalling session %d", code)
	}

	invite(ue, pc, "rx-rar", ueOffer)
	inv := waitRequest(t, core, sip.INVITE)
	respondSDP(core, inv, 200, "OK", coreAnswer)
	sid := diameter.String(pcrf.next(t, diameter.CmdAA), diameter.AVPSessionID)
	ok := waitFinal(t, ue, "rx-rar")
	ue.send(pc, inDialog(ue, ok, sip.ACK, 1))
	waitRequest(t, core, sip.ACK)

	if code, _, _ := diameter.Result(pcrf.rar(t, sid, rx.ActionChargingCorrelationExchange)); code != diameter.DiameterSuccess {
		t.Fatalf("RAA %d", code)
	}
	pcrf.none(t, 300*time.Millisecond) // nothing released

	if code, _, _ := diameter.Result(pcrf.rar(t, sid, rx.ActionIndicationOfLossOfBearer)); code != diameter.DiameterSuccess {
		t.Fatalf("RAA %d", code)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		b := waitRequest(t, ue, sip.BYE)
		if b.CallID().Value() != "rx-rar" {
			t.Errorf("UE BYE %s", b.CallID().Value())
		}
		ue.respond(b, 200, "OK")
	}()
	b := waitRequest(t, core, sip.BYE)
	if b.CallID().Value() != "rx-rar" || !strings.Contains(b.GetHeader("Reason").Value(), "bearer lost") {
		t.Errorf("core BYE %s Reason %v", b.CallID().Value(), b.GetHeader("Reason"))
	}
	core.respond(b, 200, "OK")
	wg.Wait()
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sid)
	waitRxSessions(t, p, sigSID) // the registration stays

	pcap := stop()
	diamtest.AssertNoMalformed(t, pcap, pcrf.port)
	sum := diamtest.Read(t, pcap, pcrf.port)
	for _, w := range []string{"Re-Auth Request", "Re-Auth Answer"} {
		if !strings.Contains(sum, w) {
			t.Errorf("tshark summary lacks %q:\n%s", w, sum)
		}
	}
}
