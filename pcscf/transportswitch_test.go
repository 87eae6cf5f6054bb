package pcscf

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pcscf/rx"
	"github.com/imscore/imscore/pkg/diameter"
)

// secAgreeRegister registers ue with sec-agree on an in-memory SA backend
// (TS 33.203 §7, RFC 3329): a REGISTER with Security-Client to the
// unprotected port, the 401 with Security-Server, then the REGISTER with
// Security-Verify from the UE's port-c (ue's own port) to the P-CSCF's
// port-s. It returns the Security-Server of the 401 and the P-CSCF's
// protected address (127.0.0.1:port-s).
func secAgreeRegister(t *testing.T, p *PCSCF, ue, core *udpPeer, callID, sc string) (server, protected string) {
	t.Helper()
	register(ue, p.addr(), callID, 1, 600, "Security-Client: "+sc+"\nRequire: sec-agree\nProxy-Require: sec-agree\n")
	coreAnswerRegister(t, core, true)
	r := ue.nextResponse(5 * time.Second)
	server = hdr(r, "Security-Server")
	if r.StatusCode != 401 || server == "" {
		t.Fatalf("401 %d, Security-Server %q", r.StatusCode, server)
	}
	var ps int
	for _, f := range strings.Split(server, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(f), "port-s="); ok {
			_, _ = fmt.Sscan(v, &ps)
		}
	}
	protected = fmt.Sprintf("127.0.0.1:%d", ps)
	register(ue, protected, callID, 2, 600, secAuth+"Security-Client: "+sc+"\nSecurity-Verify: "+server+"\nRequire: sec-agree\nProxy-Require: sec-agree\n")
	coreAnswerRegister(t, core, true)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("protected REGISTER: %d", r.StatusCode)
	}
	return server, protected
}

// rxConfig is the Rx configuration of a P-CSCF towards the test PCRF
// on 127.0.0.1:port.
func rxConfig(port int) *rx.Config {
	return &rx.Config{OriginHost: pcscfHost, OriginRealm: testDomain, PCRFAddr: fmt.Sprintf("127.0.0.1:%d", port), PCRFHost: pcrfHost, PCRFRealm: testDomain, Timeout: time.Second}
}

// waitRx waits until p's Rx peer is open.
func waitRx(t *testing.T, p *PCSCF) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.rx.WaitOpen(ctx); err != nil {
		t.Fatalf("Rx peer: %v", err)
	}
}

// secAuth is the Authorization of a REGISTER answering the challenge.
const secAuth = `Authorization: Digest username="alice@ims.test", realm="ims.test", nonce="x", uri="sip:ims.test", response="0123456789abcdef0123456789abcdef"` + "\n"

// TestTransportSwitchKeepsRx (fault g, Rx half): a UE registered with
// sec-agree over UDP, with its Rx signalling session and a call's Rx
// session, re-registers over TCP through the same SA set (TS 33.203 §7.1:
// the SA carries both transports; its flow, so its contact key, changes).
// The contact is carried over: the same Rx signalling session (no STR, no
// new AAR), the call's session, the call itself (a BYE over TCP ends it
// with one STR and takes its session off the contact), and the
// de-registration ends the signalling session with one STR (TS 29.214
// §4.4.4). Nothing of the replaced UDP contact is left behind.
func TestTransportSwitchKeepsRx(t *testing.T) {
	pcrf := newTestPCRF(t)
	core := newPeer(t, "")
	be := &memBackend{}
	p := startPCSCF(t, core, func(c *Config) {
		c.Rx = rxConfig(pcrf.port)
		c.IPsec, c.IPsecBackend, c.PortC, c.PortS = IPsecAuto, be, freeUDPPort(t), freeUDPPort(t)
	})
	waitRx(t, p)
	// The UE's port-c serves UDP now and TCP below: a port under the
	// ephemeral range, free for both (an ephemeral UDP port may be some
	// other TCP connection's source port at the time of the dial).
	ue := newPeer(t, fmt.Sprintf("127.0.0.1:%d", freeUDPPort(t)))
	uePortS := freeUDPPort(t)
	sc := fmt.Sprintf("ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=1111;spi-s=2222;port-c=%d;port-s=%d", ue.port(), uePortS)
	server, protected := secAgreeRegister(t, p, ue, core, "sw-reg", sc)
	core.respond(waitRequest(t, core, sip.SUBSCRIBE), 200, "OK", sip.NewHeader("Expires", "600000"))
	sigAAR := pcrf.next(t, diameter.CmdAA)
	sig := diameter.String(sigAAR, diameter.AVPSessionID)
	waitRxSessions(t, p, sig)
	udpKey := p.store.All()[0].Key()
	// The signalling flows name the SA's ports for UDP and for TCP: the
	// session is kept across the switch below, and INVITEs above 1,300
	// bytes go over TCP through the SA.
	sa := p.store.All()[0].SA
	fds := flowDescriptions(sigAAR.AVP)
	for _, proto := range []int{17, 6} {
		for _, w := range []string{
			fmt.Sprintf("permit in %d from 127.0.0.1 %d to 127.0.0.1 %d", proto, ue.port(), sa.PCSCF.PortS),
			fmt.Sprintf("permit out %d from 127.0.0.1 %d to 127.0.0.1 %d", proto, sa.PCSCF.PortC, uePortS),
		} {
			if !slices.Contains(fds, w) {
				t.Errorf("signalling AAR lacks %q: %q", w, fds)
			}
		}
	}

	// A call over the SA (UDP): its Rx session.
	ok, callSID := answeredCall(t, ue, core, pcrf, protected, "sw-call")
	waitRxSessions(t, p, sig, callSID)

	// The re-REGISTER over TCP from the UE's port-c to the P-CSCF's
	// port-s: the same SA set.
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ue.port()}}
	conn, err := d.Dial("tcp", protected)
	if err != nil {
		t.Fatal(err)
	}
	tu := tcpUEOn(t, conn)
	tcpRegister := func(cseq, expires int) {
		tu.register(t, ue.port(), "sw-reg", cseq, fmt.Sprintf("sip:alice@127.0.0.1:%d", ue.port()), expires,
			secAuth+"Security-Client: "+sc+"\nSecurity-Verify: "+server+"\nRequire: sec-agree\nProxy-Require: sec-agree\n")
	}
	tcpRegister(3, 600)
	coreAnswerRegister(t, core, true)
	if r, isRes := tu.next(t).(*sip.Response); !isRes || r.StatusCode != 200 {
		t.Fatalf("re-REGISTER over TCP: %v", r)
	}
	// No STR for the carried sessions, no AAR for a new signalling session.
	pcrf.none(t, 500*time.Millisecond)
	waitContact(t, p, "the TCP flow and the same Rx sessions", func(c ContactStatus) bool {
		return strings.HasPrefix(c.Flow, "tcp:") && len(c.RxSessions) == 2
	})
	cs := p.store.All()
	if len(cs) != 1 || cs[0].RxSignalling != sig || cs[0].SA == nil || cs[0].Key() == udpKey {
		t.Fatalf("contacts after the switch %+v, want one over TCP with signalling session %s and the SA", cs, sig)
	}
	tcpKey := cs[0].Key()
	p.mu.Lock()
	_, moved := p.callsOf[tcpKey][callKey("sw-call", true)]
	_, left := p.callsOf[udpKey]
	p.mu.Unlock()
	if !moved || left {
		t.Fatalf("call of the TCP contact %v, calls left on the replaced UDP contact %v", moved, left)
	}

	// The BYE, now over TCP: STR for the call's session, which leaves the
	// contact.
	bye := strings.Replace(inDialog(ue, ok, sip.BYE, 2), "SIP/2.0/UDP", "SIP/2.0/TCP", 1)
	tu.send(t, bye)
	respondBye := waitRequest(t, core, sip.BYE)
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), callSID)
	core.respond(respondBye, 200, "OK")
	if r, isRes := tu.next(t).(*sip.Response); !isRes || r.StatusCode != 200 {
		t.Fatalf("BYE over TCP: %v", r)
	}
	waitRxSessions(t, p, sig)

	// De-registration over TCP: one STR, for the signalling session.
	tcpRegister(4, 0)
	coreAnswerRegister(t, core, true)
	if r, isRes := tu.next(t).(*sip.Response); !isRes || r.StatusCode != 200 {
		t.Fatalf("de-REGISTER over TCP: %v", r)
	}
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sig)
	pcrf.none(t, 300*time.Millisecond)
	if calls := p.callCount(); calls != 0 {
		t.Errorf("%d calls kept after the de-registration", calls)
	}
}

// TestTransportSwitchWithoutSAEndsOldRx: without sec-agree a UE that
// re-registers the same Contact over TCP instead of UDP replaces its UDP
// contact (same address, same AOR), which is not carried over: its Rx
// signalling session, whose flows named the UDP port, gets an STR (TS
// 29.214 §4.4.4) and the TCP contact gets a signalling session of its
// own; nothing stays dangling.
func TestTransportSwitchWithoutSAEndsOldRx(t *testing.T) {
	pcrf := newTestPCRF(t)
	p, ue, core := startRxPCSCF(t, pcrf)
	sig := diameter.String(pcrf.sig, diameter.AVPSessionID)
	waitRxSessions(t, p, sig)

	tu := newTCPUE(t, p.addr())
	tu.register(t, tu.port(), "rx-reg", 2, fmt.Sprintf("sip:alice@127.0.0.1:%d", ue.port()), 600, "")
	coreAnswerRegister(t, core, false)
	if r, isRes := tu.next(t).(*sip.Response); !isRes || r.StatusCode != 200 {
		t.Fatalf("re-REGISTER over TCP: %v", r)
	}
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sig)
	sig2 := diameter.String(pcrf.next(t, diameter.CmdAA), diameter.AVPSessionID)
	if sig2 == sig {
		t.Fatalf("the TCP contact re-used the ended session %s", sig)
	}
	waitRxSessions(t, p, sig2)
	if f := p.Status().Contacts[0].Flow; !strings.HasPrefix(f, "tcp:") {
		t.Fatalf("flow %s", f)
	}
}
