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

// flowDescriptions are the Flow-Descriptions of every Media-Sub-Component
// of the Media-Component-Descriptions in avps, in order.
func flowDescriptions(avps []*diam.AVP) []string {
	var out []string
	for _, f := range diameter.FindIn(avps, diameter.AVPMediaComponentDescription, diameter.AVPMediaSubComponent, diameter.AVPFlowDescription) {
		out = append(out, string(f.Data.(datatype.IPFilterRule)))
	}
	return out
}

// checkServiceInfo checks an AAR of one audio Media-Component-Description:
// its Service-Info-Status, Flow-Descriptions, bandwidths (bit/s) and the
// headers of its Codec-Data.
func checkServiceInfo(t *testing.T, what string, aar *diam.Message, status uint32, fds []string, ul, dl uint32, codecs ...string) {
	t.Helper()
	if v := avpUint(t, aar.AVP, diameter.AVPServiceInfoStatus); v != status {
		t.Errorf("%s: Service-Info-Status %d, want %d", what, v, status)
	}
	if got := flowDescriptions(aar.AVP); fmt.Sprint(got) != fmt.Sprint(fds) {
		t.Errorf("%s: Flow-Descriptions\n%q, want\n%q", what, got, fds)
	}
	mcd := diameter.Children(diameter.FindIn(aar.AVP, diameter.AVPMediaComponentDescription)[0])
	if got := avpUint(t, mcd, diameter.AVPMaxRequestedBandwidthUL); got != ul {
		t.Errorf("%s: Max-Requested-Bandwidth-UL %d, want %d", what, got, ul)
	}
	if got := avpUint(t, mcd, diameter.AVPMaxRequestedBandwidthDL); got != dl {
		t.Errorf("%s: Max-Requested-Bandwidth-DL %d, want %d", what, got, dl)
	}
	cd := diameter.FindIn(mcd, diameter.AVPCodecData)
	if len(cd) != len(codecs) {
		t.Errorf("%s: %d Codec-Data, want %d", what, len(cd), len(codecs))
		return
	}
	for i, want := range codecs {
		if got, _ := diameter.AsString(cd[i]); !strings.HasPrefix(got, want) {
			t.Errorf("%s: Codec-Data %d %q, want it to start %q", what, i, got, want)
		}
	}
	checkSubscription(t, what, aar.AVP)
}

// TestRxAARAtOffer: with --rx-aar-at-offer the P-CSCF sends an AAR with
// PRELIMINARY_SERVICE_INFORMATION when it forwards an initial INVITE with
// an SDP offer (TS 29.214 §4.4.1), derived from the offer alone (the side
// that has not answered is "any" in the filters, both bandwidths from the
// offer's b=AS, one Codec-Data), then an AAR with the final information
// on the same Session-Id at the answer; the session ends with STR on BYE
// or on a failure response. Both sides: the UE offering (originating)
// and the network offering (terminating, answer in a 183). Under --rx
// required a PCRF that rejects the offer fails the INVITE with 503 before
// anything is forwarded. Before, there was no AAR until the answer (the
// setting did not exist).
func TestRxAARAtOffer(t *testing.T) {
	pcrf := newTestPCRF(t)
	p, ue, core := startRxPCSCFWith(t, pcrf, pcrf.port, func(c *Config) { c.RxAARAtOffer = true })
	pc := p.addr()
	sig := diameter.String(pcrf.sig, diameter.AVPSessionID)
	// The filters once ueOffer and coreAnswer are both known.
	answered := []string{
		"permit out 17 from 198.51.100.7 40000 to 127.0.0.1 49170", "permit in 17 from 127.0.0.1 49170 to 198.51.100.7 40000",
		"permit out 17 from 198.51.100.7 40001 to 127.0.0.1 49171", "permit in 17 from 127.0.0.1 49171 to 198.51.100.7 40001",
	}

	// The UE offers.
	invite(ue, pc, "offer-orig", ueOffer)
	pre := pcrf.next(t, diameter.CmdAA)
	sid := diameter.String(pre, diameter.AVPSessionID)
	checkServiceInfo(t, "originating AAR at the offer", pre, rx.ServiceInfoPreliminary, []string{
		"permit out 17 from any to 127.0.0.1 49170", "permit in 17 from 127.0.0.1 49170 to any",
		"permit out 17 from any to 127.0.0.1 49171", "permit in 17 from 127.0.0.1 49171 to any",
	}, 41000, 41000, "uplink\noffer\nm=audio 49170")
	if v := avpUint(t, pre.AVP, diameter.AVPMediaComponentDescription, diameter.AVPFlowStatus); v != diameter.FlowEnabled {
		t.Errorf("Flow-Status %d at the offer, want ENABLED", v)
	}
	inv := waitRequest(t, core, sip.INVITE)
	waitRxSessions(t, p, sig, sid)
	respondSDP(core, inv, 200, "OK", coreAnswer)
	fin := pcrf.next(t, diameter.CmdAA)
	if got := diameter.String(fin, diameter.AVPSessionID); got != sid {
		t.Errorf("AAR at the answer on Session-Id %q, want the offer's %q", got, sid)
	}
	checkServiceInfo(t, "originating AAR at the answer", fin, rx.ServiceInfoFinal, answered, 49000, 41000, "uplink\noffer\nm=audio 49170", "downlink\nanswer\nm=audio 40000")
	ok := waitFinal(t, ue, "offer-orig")
	ue.send(pc, inDialog(ue, ok, sip.ACK, 1))
	waitRequest(t, core, sip.ACK)
	ue.send(pc, inDialog(ue, ok, sip.BYE, 2))
	core.respond(waitRequest(t, core, sip.BYE), 200, "OK")
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sid)

	// The network offers; the UE answers in a 183, then refuses the call.
	termInvite(core, ue, pc, "offer-term", coreAnswer)
	pre = pcrf.next(t, diameter.CmdAA)
	sid = diameter.String(pre, diameter.AVPSessionID)
	checkServiceInfo(t, "terminating AAR at the offer", pre, rx.ServiceInfoPreliminary, []string{
		"permit out 17 from 198.51.100.7 40000 to any", "permit in 17 from any to 198.51.100.7 40000",
		"permit out 17 from 198.51.100.7 40001 to any", "permit in 17 from any to 198.51.100.7 40001",
	}, 49000, 49000, "downlink\noffer\nm=audio 40000")
	tinv := waitRequest(t, ue, sip.INVITE)
	respondSDP(ue, tinv, 183, "Session Progress", ueOffer)
	fin = pcrf.next(t, diameter.CmdAA)
	if got := diameter.String(fin, diameter.AVPSessionID); got != sid {
		t.Errorf("terminating AAR at the answer on Session-Id %q, want the offer's %q", got, sid)
	}
	checkServiceInfo(t, "terminating AAR at the answer", fin, rx.ServiceInfoFinal, answered, 49000, 41000, "downlink\noffer\nm=audio 40000", "uplink\nanswer\nm=audio 49170")
	ue.respond(tinv, 486, "Busy Here")
	if r := coreFinal(t, core, pc, "offer-term"); r.StatusCode != 486 {
		t.Fatalf("core got %d, want 486", r.StatusCode)
	}
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sid)
	waitRxSessions(t, p, sig)

	// --rx required: the PCRF rejects the offer, the INVITE fails at once.
	pcrf2 := newTestPCRF(t)
	p2, ue2, core2 := startRxPCSCFWith(t, pcrf2, pcrf2.port, func(c *Config) { c.RxPolicy = RxRequired; c.RxAARAtOffer = true })
	pcrf2.aaResult.Store(diameter.DiameterAuthorizationRejected)
	invite(ue2, p2.addr(), "offer-rejected", ueOffer)
	if v := avpUint(t, pcrf2.next(t, diameter.CmdAA).AVP, diameter.AVPServiceInfoStatus); v != rx.ServiceInfoPreliminary {
		t.Errorf("Service-Info-Status %d, want PRELIMINARY", v)
	}
	r := waitFinal(t, ue2, "offer-rejected")
	if r.StatusCode != 503 || !strings.Contains(hdr(r, "Warning"), "PCRF rejected the service information (AAA 5003)") {
		t.Errorf("UE got %d Warning %q, want 503 with the PCRF's rejection", r.StatusCode, hdr(r, "Warning"))
	}
	ackNon2xx(ue2, p2.addr(), r)
	noRequest(t, core2, sip.INVITE, 300*time.Millisecond)
	pcrf2.none(t, 100*time.Millisecond) // no session was opened: no STR
}
