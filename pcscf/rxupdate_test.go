package pcscf

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/diameter/diamtest"
)

// inDialogSDP is inDialog with an SDP body.
func inDialogSDP(ue *udpPeer, res *sip.Response, method sip.RequestMethod, cseq int, body string) string {
	m := inDialog(ue, res, method, cseq)
	b := crlf(body)
	return strings.Replace(m, "Content-Length: 0\n\n", fmt.Sprintf("Content-Type: application/sdp\nContent-Length: %d\n\n%s", len(b), body), 1)
}

// checkUpdateAAR checks an AAR for a media change: same Session-Id,
// AF-Charging-Identifier and Subscription-Id, and returns its
// Media-Component-Descriptions' children.
func checkUpdateAAR(t *testing.T, m *diam.Message, sid, icid string) [][]*diam.AVP {
	t.Helper()
	if got := diameter.String(m, diameter.AVPSessionID); got != sid {
		t.Errorf("update AAR Session-Id %q, want the call's %q", got, sid)
	}
	if v := avpUint(t, m.AVP, diameter.AVPAuthApplicationID); v != 16777236 {
		t.Errorf("Auth-Application-Id %d", v)
	}
	if got := avpString(t, m.AVP, diameter.AVPAFChargingIdentifier); got != icid {
		t.Errorf("AF-Charging-Identifier %q, want %q", got, icid)
	}
	if got := avpString(t, m.AVP, diameter.AVPSubscriptionID, diameter.AVPSubscriptionIDData); got != "sip:alice@ims.test" {
		t.Errorf("Subscription-Id-Data %q", got)
	}
	var out [][]*diam.AVP
	for _, mcd := range diameter.FindIn(m.AVP, diameter.AVPMediaComponentDescription) {
		out = append(out, diameter.Children(mcd))
	}
	return out
}

func flowDescs(t *testing.T, mcd []*diam.AVP) []string {
	t.Helper()
	var fds []string
	for _, sub := range diameter.FindIn(mcd, diameter.AVPMediaSubComponent) {
		for _, f := range diameter.FindIn(diameter.Children(sub), diameter.AVPFlowDescription) {
			r, _ := f.Data.(datatype.IPFilterRule)
			fds = append(fds, string(r))
		}
	}
	return fds
}

// TestRxMediaUpdate: an answered call (initial AAR), then a re-INVITE
// putting audio on hold (UE sendonly) → AAR on the same Session-Id with
// Flow-Status ENABLED_UPLINK; an UPDATE adding video → AAR with two
// Media-Component-Descriptions; a re-INVITE answered 488 → no AAR; BYE →
// STR on the same session; tshark finds nothing malformed.
func TestRxMediaUpdate(t *testing.T) {
	pcrf := newTestPCRF(t)
	stop := diamtest.Capture(t, pcrf.port)
	p, ue, core := startRxPCSCF(t, pcrf)
	pc := p.addr()

	invite(ue, pc, "rx-upd-1", ueOffer)
	inv := core.nextRequest(5 * time.Second)
	respondSDP(core, inv, 200, "OK", coreAnswer)
	aar := pcrf.next(t, diameter.CmdAA)
	sid := diameter.String(aar, diameter.AVPSessionID)
	icid := avpString(t, aar.AVP, diameter.AVPAFChargingIdentifier)
	ok := waitFinal(t, ue, "rx-upd-1")
	ue.send(pc, inDialog(ue, ok, sip.ACK, 1))
	waitRequest(t, core, sip.ACK)

	// 1. re-INVITE: the UE holds the audio (sendonly), far end recvonly.
	hold := strings.Replace(ueOffer, "a=sendrecv", "a=sendonly", 1)
	held := strings.Replace(coreAnswer, "a=sendrecv", "a=recvonly", 1)
	ue.send(pc, inDialogSDP(ue, ok, sip.INVITE, 2, hold))
	re := waitRequest(t, core, sip.INVITE)
	if !strings.Contains(string(re.Body()), "a=sendonly") {
		t.Fatalf("re-INVITE body %q", re.Body())
	}
	pcrf.none(t, 200*time.Millisecond) // nothing before the answer
	respondSDP(core, re, 200, "OK", held)
	mcds := checkUpdateAAR(t, pcrf.next(t, diameter.CmdAA), sid, icid)
	if r := waitFinal(t, ue, "rx-upd-1"); r.StatusCode != 200 || r.CSeq().SeqNo != 2 {
		t.Fatalf("UE got %d for CSeq %d", r.StatusCode, r.CSeq().SeqNo)
	}
	if len(mcds) != 1 {
		t.Fatalf("hold: %d Media-Component-Description, want 1", len(mcds))
	}
	for code, want := range map[diameter.AVPCode]uint32{
		diameter.AVPMediaComponentNumber: 1, diameter.AVPMediaType: diameter.MediaAudio,
		diameter.AVPMaxRequestedBandwidthUL: 49000, diameter.AVPMaxRequestedBandwidthDL: 41000,
		diameter.AVPFlowStatus: diameter.FlowEnabledUplink, // the UE only sends
	} {
		if got := avpUint(t, mcds[0], code); got != want {
			t.Errorf("hold: Media-Component-Description AVP %d = %d, want %d", code, got, want)
		}
	}
	codecs := diameter.FindIn(mcds[0], diameter.AVPCodecData)
	if len(codecs) != 2 {
		t.Errorf("hold: %d Codec-Data", len(codecs))
	} else {
		c0, _ := diameter.AsString(codecs[0])
		c1, _ := diameter.AsString(codecs[1])
		if !strings.HasPrefix(c0, "uplink\noffer\nm=audio 49170") || !strings.Contains(c0, "a=sendonly") ||
			!strings.HasPrefix(c1, "downlink\nanswer\nm=audio 40000") || !strings.Contains(c1, "a=recvonly") {
			t.Errorf("hold: Codec-Data %q / %q", c0, c1)
		}
	}
	if fds := flowDescs(t, mcds[0]); len(fds) != 4 || fds[0] != "permit out 17 from 198.51.100.7 40000 to 127.0.0.1 49170" || fds[3] != "permit in 17 from 127.0.0.1 49171 to 198.51.100.7 40001" {
		t.Errorf("hold: Flow-Descriptions %q", fds)
	}
	ue.send(pc, inDialog(ue, ok, sip.ACK, 2))
	waitRequest(t, core, sip.ACK)

	// 2. UPDATE: audio resumed, video added.
	video := "m=video 49180 RTP/AVP 99\nb=AS:300\na=rtpmap:99 H264/90000\na=sendrecv\n"
	remoteVideo := "m=video 40010 RTP/AVP 99\nb=AS:400\na=rtpmap:99 H264/90000\na=sendrecv\n"
	ue.send(pc, inDialogSDP(ue, ok, sip.UPDATE, 3, ueOffer+video))
	up := waitRequest(t, core, sip.UPDATE)
	respondSDP(core, up, 200, "OK", coreAnswer+remoteVideo)
	mcds = checkUpdateAAR(t, pcrf.next(t, diameter.CmdAA), sid, icid)
	if r := waitFinal(t, ue, "rx-upd-1"); r.StatusCode != 200 || r.CSeq().MethodName != sip.UPDATE {
		t.Fatalf("UE got %d %s", r.StatusCode, r.CSeq().MethodName)
	}
	if len(mcds) != 2 {
		t.Fatalf("UPDATE: %d Media-Component-Description, want 2", len(mcds))
	}
	for i, want := range []map[diameter.AVPCode]uint32{
		{diameter.AVPMediaComponentNumber: 1, diameter.AVPMediaType: diameter.MediaAudio, diameter.AVPMaxRequestedBandwidthUL: 49000, diameter.AVPMaxRequestedBandwidthDL: 41000, diameter.AVPFlowStatus: diameter.FlowEnabled},
		{diameter.AVPMediaComponentNumber: 2, diameter.AVPMediaType: diameter.MediaVideo, diameter.AVPMaxRequestedBandwidthUL: 400000, diameter.AVPMaxRequestedBandwidthDL: 300000, diameter.AVPFlowStatus: diameter.FlowEnabled},
	} {
		for code, w := range want {
			if got := avpUint(t, mcds[i], code); got != w {
				t.Errorf("UPDATE: component %d AVP %d = %d, want %d", i+1, code, got, w)
			}
		}
	}
	if fds := flowDescs(t, mcds[1]); len(fds) != 4 || fds[0] != "permit out 17 from 198.51.100.7 40010 to 127.0.0.1 49180" || fds[1] != "permit in 17 from 127.0.0.1 49180 to 198.51.100.7 40010" {
		t.Errorf("UPDATE: video Flow-Descriptions %q", fds)
	}

	// 3. re-INVITE removing the video, refused with 488: no AAR.
	ue.send(pc, inDialogSDP(ue, ok, sip.INVITE, 4, ueOffer+strings.Replace(video, "49180", "0", 1)))
	re = waitRequest(t, core, sip.INVITE)
	core.respond(re, 488, "Not Acceptable Here")
	if r := waitFinal(t, ue, "rx-upd-1"); r.StatusCode != 488 {
		t.Fatalf("UE got %d", r.StatusCode)
	}
	pcrf.none(t, 300*time.Millisecond)

	// BYE: STR on the same session.
	ue.send(pc, inDialog(ue, ok, sip.BYE, 5))
	bye := waitRequest(t, core, sip.BYE)
	core.respond(bye, 200, "OK")
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sid)

	pcap := stop()
	diamtest.AssertNoMalformed(t, pcap, pcrf.port)
	v := diamtest.Read(t, pcap, pcrf.port, "-V")
	for _, want := range []string{"Flow-Status: ENABLED-UPLINK", "permit out 17 from 198.51.100.7 40010 to 127.0.0.1 49180"} {
		if !strings.Contains(v, want) {
			t.Errorf("tshark -V lacks %q", want)
		}
	}
}
