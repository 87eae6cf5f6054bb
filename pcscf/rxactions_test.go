package pcscf

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pcscf/rx"
	"github.com/imscore/imscore/pkg/diameter"
)

// checkSubscription checks that an AAR's AVPs subscribe to the
// Specific-Actions Kamailio's ims_qos subscribes to (TS 29.214 §5.3.13:
// CHARGING_CORRELATION_EXCHANGE, INDICATION_OF_LOSS/RECOVERY/RELEASE_OF_
// BEARER, IP-CAN_CHANGE, ACCESS_NETWORK_INFO_REPORT) and ask for the
// user location and time zone (Required-Access-Info, §5.3.34).
func checkSubscription(t *testing.T, what string, avps []*diam.AVP) {
	t.Helper()
	uints := func(code diameter.AVPCode) []uint32 {
		var out []uint32
		for _, f := range diameter.FindIn(avps, code) {
			v, _ := diameter.AsUint32(f)
			out = append(out, v)
		}
		return out
	}
	if got := fmt.Sprint(uints(diameter.AVPSpecificAction)); got != "[1 2 3 4 6 12]" {
		t.Errorf("%s: Specific-Action %s, want [1 2 3 4 6 12] (charging correlation, loss/recovery/release of bearer, IP-CAN change, access network info)", what, got)
	}
	if got := fmt.Sprint(uints(diameter.AVPRequiredAccessInfo)); got != "[0 1]" {
		t.Errorf("%s: Required-Access-Info %s, want [0 1] (USER_LOCATION, MS_TIME_ZONE)", what, got)
	}
}

// termInvite is an initial INVITE from the core to the UE's contact along
// our Path (no SDP when body is "").
func termInvite(core, ue *udpPeer, pc, callID, body string) {
	ct := ""
	if body != "" {
		ct = "Content-Type: application/sdp\n"
	}
	core.send(pc, fmt.Sprintf(`
INVITE sip:alice@%[1]s:%[2]d SIP/2.0
Via: SIP/2.0/UDP %[3]s:%[4]d;branch=z9hG4bK%[5]s
Max-Forwards: 70
Route: <sip:term@%[6]s;lr>
From: <sip:bob@ims.test>;tag=b-%[5]s
To: <sip:alice@ims.test>
Call-ID: %[5]s
CSeq: 1 INVITE
Contact: <sip:bob@%[3]s:%[4]d>
P-Asserted-Identity: <sip:bob@ims.test>
P-Charging-Vector: icid-value=%[5]s
%[7]sContent-Length: %[8]d

%[9]s`, ue.host(), ue.port(), core.host(), core.port(), callID, pc, ct, len(crlf(body)), body))
}

// coreFinal returns the final response the core gets for callID and ACKs
// it when it is a failure (hop by hop, same branch).
func coreFinal(t *testing.T, core *udpPeer, pc, callID string) *sip.Response {
	t.Helper()
	r := waitFinal(t, core, callID)
	if r.StatusCode >= 300 {
		toTag, _ := r.To().Params.Get("tag")
		core.send(pc, fmt.Sprintf(`
ACK %[1]s SIP/2.0
Via: SIP/2.0/UDP %[2]s:%[3]d;branch=z9hG4bK%[4]s
Max-Forwards: 70
Route: <sip:term@%[5]s;lr>
From: <sip:bob@ims.test>;tag=b-%[4]s
To: <sip:alice@ims.test>;tag=%[6]s
Call-ID: %[4]s
CSeq: 1 ACK
Content-Length: 0

`, "sip:alice@127.0.0.1", core.host(), core.port(), callID, pc, toTag))
	}
	return r
}

// noRequest fails when p receives a request with method within d.
func noRequest(t *testing.T, p *udpPeer, method sip.RequestMethod, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-p.ch:
			if r, ok := m.(*sip.Request); ok && r.Method == method {
				t.Fatalf("peer %d got %s %s", p.port(), method, r.CallID().Value())
			}
		case <-deadline:
			return
		}
	}
}

// waitSignallingLost waits until the only contact's signalling_lost is want.
func waitSignallingLost(t *testing.T, p *PCSCF, want string) {
	t.Helper()
	waitContact(t, p, fmt.Sprintf("signalling_lost %q", want), func(c ContactStatus) bool { return c.SignallingLost == want })
}

// TestRxSignallingBearerLost: the signalling AAR after a registration
// subscribes to the bearer events, IP-CAN type changes and access network
// information as Kamailio's ims_qos does (it subscribed to nothing
// before), and so does the call AAR. The PCRF's RARs are answered 2001
// and acted upon:
//   - IP-CAN_CHANGE / ACCESS_NETWORK_INFO_REPORT (with IP-CAN-Type,
//     RAT-Type, 3GPP-User-Location-Info): logged, nothing released;
//   - INDICATION_OF_LOSS_OF_BEARER for the signalling session (TS 23.228:
//     the UE cannot be reached over SIP): the UE's call is released
//     towards the network (BYE with Reason, STR; no BYE to the UE), and a
//     terminating INVITE is answered 480; INDICATION_OF_RECOVERY_OF_BEARER
//     undoes that;
//   - INDICATION_OF_RELEASE_OF_BEARER: the same, but only the UE's next
//     REGISTER undoes it.
//
// Before, a loss or release of the signalling bearer was only logged.
func TestRxSignallingBearerLost(t *testing.T) {
	pcrf := newTestPCRF(t)
	p, ue, core := startRxPCSCF(t, pcrf)
	pc := p.addr()
	checkSubscription(t, "signalling AAR", pcrf.sig.AVP)
	sig := diameter.String(pcrf.sig, diameter.AVPSessionID)
	waitRxSessions(t, p, sig)

	raa := pcrf.rarAVPs(t, sig,
		diameter.NewAVP(diameter.AVPSpecificAction, datatype.Enumerated(rx.ActionIPCANChange)),
		diameter.NewAVP(diameter.AVPSpecificAction, datatype.Enumerated(rx.ActionAccessNetworkInfoReport)),
		diameter.NewAVP(diameter.AVPIPCANType, datatype.Enumerated(0)),  // 3GPP-GPRS
		diameter.NewAVP(diameter.AVPRATType, datatype.Enumerated(1004)), // EUTRAN
		diameter.NewAVP(diameter.AVP3GPPUserLocationInfo, datatype.OctetString("\x82\x00\xf1\x10\x00\x01\x00\xf1\x10\x00\x00\x00\x01")))
	if code, _, _ := diameter.Result(raa); code != diameter.DiameterSuccess {
		t.Fatalf("RAA for IP-CAN_CHANGE/ACCESS_NETWORK_INFO_REPORT %d", code)
	}

	// A call, answered.
	invite(ue, pc, "lost-call", ueOffer)
	respondSDP(core, waitRequest(t, core, sip.INVITE), 200, "OK", coreAnswer)
	aar := pcrf.next(t, diameter.CmdAA)
	checkSubscription(t, "call AAR", aar.AVP)
	call := diameter.String(aar, diameter.AVPSessionID)
	ok := waitFinal(t, ue, "lost-call")
	ue.send(pc, inDialog(ue, ok, sip.ACK, 1))
	waitRequest(t, core, sip.ACK)
	pcrf.none(t, 200*time.Millisecond) // the IP-CAN change released nothing
	waitSignallingLost(t, p, "")

	// Loss of the signalling bearer: the call is released towards the
	// network only.
	if code, _, _ := diameter.Result(pcrf.rar(t, sig, rx.ActionIndicationOfLossOfBearer)); code != diameter.DiameterSuccess {
		t.Fatalf("RAA %d", code)
	}
	b := waitRequest(t, core, sip.BYE)
	if b.CallID().Value() != "lost-call" || !strings.Contains(b.GetHeader("Reason").Value(), "signalling bearer lost") {
		t.Errorf("core BYE %s Reason %v", b.CallID().Value(), b.GetHeader("Reason"))
	}
	core.respond(b, 200, "OK")
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), call)
	noRequest(t, ue, sip.BYE, 300*time.Millisecond)
	waitSignallingLost(t, p, "INDICATION_OF_LOSS_OF_BEARER")
	waitRxSessions(t, p, sig) // the registration and its signalling session stay

	termInvite(core, ue, pc, "to-lost-1", "")
	if r := coreFinal(t, core, pc, "to-lost-1"); r.StatusCode != 480 || !strings.Contains(hdr(r, "Warning"), "signalling bearer") {
		t.Fatalf("terminating INVITE while the signalling bearer is lost: %d %q, want 480 with Warning", r.StatusCode, hdr(r, "Warning"))
	}
	noRequest(t, ue, sip.INVITE, 100*time.Millisecond)

	// Recovery: INVITEs reach the UE again.
	if code, _, _ := diameter.Result(pcrf.rar(t, sig, rx.ActionIndicationOfRecoveryBearer)); code != diameter.DiameterSuccess {
		t.Fatalf("RAA %d", code)
	}
	waitSignallingLost(t, p, "")
	termInvite(core, ue, pc, "to-recovered", "")
	ue.respond(waitRequest(t, ue, sip.INVITE), 486, "Busy Here")
	if r := coreFinal(t, core, pc, "to-recovered"); r.StatusCode != 486 {
		t.Fatalf("terminating INVITE after recovery: %d, want the UE's 486", r.StatusCode)
	}

	// Release of the signalling bearer: a recovery report does not undo
	// it, the next REGISTER does.
	if code, _, _ := diameter.Result(pcrf.rar(t, sig, rx.ActionIndicationOfReleaseOfBearer)); code != diameter.DiameterSuccess {
		t.Fatalf("RAA %d", code)
	}
	waitSignallingLost(t, p, "INDICATION_OF_RELEASE_OF_BEARER")
	if code, _, _ := diameter.Result(pcrf.rar(t, sig, rx.ActionIndicationOfRecoveryBearer)); code != diameter.DiameterSuccess {
		t.Fatalf("RAA %d", code)
	}
	termInvite(core, ue, pc, "to-lost-2", "")
	if r := coreFinal(t, core, pc, "to-lost-2"); r.StatusCode != 480 {
		t.Fatalf("terminating INVITE after release + recovery report: %d, want 480", r.StatusCode)
	}
	register(ue, pc, "rx-reg", 2, 600, "")
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("re-register: %d", r.StatusCode)
	}
	core.respond(waitRequest(t, core, sip.SUBSCRIBE), 489, "Bad Event") // tried again, refused again
	waitSignallingLost(t, p, "")
	termInvite(core, ue, pc, "to-reregistered", "")
	ue.respond(waitRequest(t, ue, sip.INVITE), 486, "Busy Here")
	if r := coreFinal(t, core, pc, "to-reregistered"); r.StatusCode != 486 {
		t.Fatalf("terminating INVITE after re-registration: %d, want the UE's 486", r.StatusCode)
	}
	pcrf.none(t, 200*time.Millisecond) // no new signalling AAR, no STR
}
