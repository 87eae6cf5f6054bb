package pcscf

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/fiorix/go-diameter/v4/diam"

	"github.com/imscore/imscore/pcscf/rx"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/imsheader"
)

// UE offer and far-end answer of an IPv6 call. The addresses are written
// the long way on purpose: the Flow-Descriptions must carry them in
// canonical form (RFC 6733 §4.3.1 IPFilterRule).
const (
	ueOffer6 = `v=0
o=alice 1 1 IN IP6 0:0:0:0:0:0:0:1
s=-
c=IN IP6 0:0:0:0:0:0:0:1
t=0 0
m=audio 49170 RTP/AVP 116
b=AS:41
a=rtpmap:116 AMR-WB/16000/1
a=sendrecv
`
	coreAnswer6 = `v=0
o=bob 1 1 IN IP6 2001:DB8:0:0::7
s=-
c=IN IP6 2001:DB8:0:0::7
t=0 0
m=audio 40000 RTP/AVP 116
b=AS:49
a=rtpmap:116 AMR-WB/16000/1
a=sendrecv
`
)

// TestRxIPv6UE: a UE on an IPv6 IMS PDN (here ::1) registers and calls
// through a P-CSCF listening on [::1]. The signalling AAR and the media
// AAR carry Framed-IPv6-Prefix (Reserved 0, Prefix-Length 128, the UE's
// address; RFC 7155 / RFC 3162 §2.3) and no Framed-IP-Address, so that the
// PCRF can bind them to the IP-CAN session (TS 29.213 §8.2), and the
// Flow-Descriptions hold the IPv6 addresses in canonical form. Before,
// both AARs carried no UE address at all (Framed-IP-Address was written
// for IPv4 only) and the SDP's spelling went into the filters as it was.
func TestRxIPv6UE(t *testing.T) {
	pcrf := newTestPCRF(t)
	core := newPeer(t, "[::1]:0")
	p := startPCSCF(t, core, func(c *Config) {
		c.SIPListen = "[::1]:0"
		c.ICSCF = fmt.Sprintf("sip:[::1]:%d", core.port())
		c.Rx = &rx.Config{OriginHost: pcscfHost, OriginRealm: testDomain, PCRFAddr: fmt.Sprintf("127.0.0.1:%d", pcrf.port), PCRFHost: pcrfHost, PCRFRealm: testDomain, Timeout: time.Second}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.rx.WaitOpen(ctx); err != nil {
		t.Fatalf("Rx peer: %v", err)
	}
	ue := newPeer(t, "[::1]:0")
	pc := p.addr()
	register(ue, pc, "rx-reg6", 1, 600, "")
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("register: %d", r.StatusCode)
	}
	core.respond(core.nextRequest(5*time.Second), 489, "Bad Event") // reg SUBSCRIBE

	sig := pcrf.next(t, diameter.CmdAA)
	checkFramedIPv6(t, "signalling AAR", sig, net.IPv6loopback)
	pport := p.Proxy().Addr("udp").Port
	if fds, want := flowDescriptions(sig.AVP), []string{
		fmt.Sprintf("permit out 17 from ::1 %d to ::1 %d", pport, ue.port()),
		fmt.Sprintf("permit in 17 from ::1 %d to ::1 %d", ue.port(), pport),
	}; fmt.Sprint(fds) != fmt.Sprint(want) {
		t.Errorf("signalling Flow-Descriptions %q, want %q", fds, want)
	}
	waitRxSessions(t, p, diameter.String(sig, diameter.AVPSessionID))

	invite(ue, pc, "rx-call6", ueOffer6)
	inv := waitRequest(t, core, sip.INVITE)
	if pcv, err := imsheader.GetPChargingVector(inv); err != nil || !strings.Contains(pcv.String(), "icid-generated-at=[::1]") {
		t.Errorf("P-Charging-Vector %v (%v), want icid-generated-at=[::1] (RFC 3261 host)", pcv, err)
	}
	respondSDP(core, inv, 200, "OK", coreAnswer6)
	aar := pcrf.next(t, diameter.CmdAA)
	ok := waitFinal(t, ue, "rx-call6")
	if ok.StatusCode != 200 {
		t.Fatalf("call: %d", ok.StatusCode)
	}
	checkFramedIPv6(t, "media AAR", aar, net.IPv6loopback)
	if fds, want := flowDescriptions(aar.AVP), []string{
		"permit out 17 from 2001:db8::7 40000 to ::1 49170",
		"permit in 17 from ::1 49170 to 2001:db8::7 40000",
		"permit out 17 from 2001:db8::7 40001 to ::1 49171",
		"permit in 17 from ::1 49171 to 2001:db8::7 40001",
	}; fmt.Sprint(fds) != fmt.Sprint(want) {
		t.Errorf("media Flow-Descriptions %q, want %q", fds, want)
	}

	ue.send(pc, inDialog(ue, ok, sip.ACK, 1))
	waitRequest(t, core, sip.ACK)
	ue.send(pc, inDialog(ue, ok, sip.BYE, 2))
	core.respond(waitRequest(t, core, sip.BYE), 200, "OK")
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), diameter.String(aar, diameter.AVPSessionID))

	// The PCRF aborts a second call: the P-CSCF's BYE reaches the UE at
	// its IPv6 address.
	invite(ue, pc, "rx-call6-asr", ueOffer6)
	respondSDP(core, waitRequest(t, core, sip.INVITE), 200, "OK", coreAnswer6)
	sid := diameter.String(pcrf.next(t, diameter.CmdAA), diameter.AVPSessionID)
	ok = waitFinal(t, ue, "rx-call6-asr")
	ue.send(pc, inDialog(ue, ok, sip.ACK, 1))
	for waitRequest(t, core, sip.ACK).CallID().Value() != "rx-call6-asr" {
	}
	if code, _, _ := diameter.Result(pcrf.asr(t, sid)); code != diameter.DiameterSuccess {
		t.Fatalf("ASA %d", code)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		core.respond(waitRequest(t, core, sip.BYE), 200, "OK")
	}()
	if b := waitRequest(t, ue, sip.BYE); b.CallID().Value() != "rx-call6-asr" {
		t.Errorf("UE BYE for %s", b.CallID().Value())
	} else {
		ue.respond(b, 200, "OK")
	}
	<-done
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sid)
}

// checkFramedIPv6 checks that m carries the UE address ip as
// Framed-IPv6-Prefix (00, 128, the 16 address octets) and no
// Framed-IP-Address.
func checkFramedIPv6(t *testing.T, what string, m *diam.Message, ip net.IP) {
	t.Helper()
	if f := diameter.FindAll(m, diameter.AVPFramedIPAddress); len(f) != 0 {
		t.Errorf("%s: Framed-IP-Address for an IPv6 UE", what)
	}
	f := diameter.FindAll(m, diameter.AVPFramedIPv6Prefix)
	if len(f) != 1 {
		t.Errorf("%s: %d Framed-IPv6-Prefix, want 1", what, len(f))
		return
	}
	got, _ := diameter.AsBytes(f[0])
	if want := append([]byte{0, 128}, ip.To16()...); !bytes.Equal(got, want) {
		t.Errorf("%s: Framed-IPv6-Prefix % x, want % x", what, got, want)
	}
}
