package pcscf

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pcscf/rx"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/diameter/diamtest"
)

// TestMain checks every Diameter message written in the package's tests
// (the P-CSCF's Rx client and the test PCRF) against the specification
// tables (diamtest.Check) and requires the P-CSCF's AAR, STR, ASA and RAA
// among them.
func TestMain(m *testing.M) {
	os.Exit(diamtest.Run(m, diamtest.Options{
		Expect: []string{"CER", "AAR", "STR", "ASA", "RAA"},
	}))
}

// TestRxCommandsConform makes the P-CSCF send AAR, RAA, ASA and STR with
// no tshark (the other Rx tests capture with it and skip without it), so
// TestMain always sees them. The RAR is written as TS 29.214 §5.6.4 has
// it, without the Re-Auth-Request-Type of RFC 6733's RAR: it must be
// answered 2001 (rx.xml required the AVP, and the P-CSCF answered 5005).
func TestRxCommandsConform(t *testing.T) {
	pcrf := newTestPCRF(t)
	p, _, _ := startRxPCSCF(t, pcrf) // REGISTER: AAR for the signalling flows
	sid := diameter.String(pcrf.sig, diameter.AVPSessionID)
	waitRxSessions(t, p, sid)

	req := pcrf.node.NewRequest(diameter.CmdReAuth, diameter.AppRx, testDomain, pcscfHost)
	setSessionID(req, sid)
	req.AddAVP(diameter.NewAVP(diameter.AVPSpecificAction, datatype.Enumerated(rx.ActionChargingCorrelationExchange)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raa, err := pcrf.node.Send(ctx, req)
	if err != nil {
		t.Fatalf("RAR: %v", err)
	}
	if code, _, _ := diameter.Result(raa); code != diameter.DiameterSuccess {
		t.Errorf("RAA %d for a RAR without Re-Auth-Request-Type, want 2001: %v", code, raa)
	}

	if code, _, _ := diameter.Result(pcrf.asr(t, sid)); code != diameter.DiameterSuccess {
		t.Fatalf("ASA %d", code)
	}
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sid)
}
