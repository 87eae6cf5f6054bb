package pcscf

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pcscf/rx"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/diameter/diamtest"
)

// closedPort returns a TCP port on 127.0.0.1 nobody listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

func checkRxWarning(t *testing.T, r *sip.Response, want string) {
	t.Helper()
	w := r.GetHeader("Warning")
	if w == nil || !strings.HasPrefix(w.Value(), "399 ") || !strings.Contains(w.Value(), `"Rx: `) || !strings.Contains(w.Value(), want) {
		t.Errorf("%d without Warning 399 \"Rx: ...%s...\": %v", r.StatusCode, want, w)
	}
}

func TestRxPolicyConfig(t *testing.T) {
	for in, want := range map[string]string{"": RxBestEffort, "on": RxBestEffort, "best-effort": RxBestEffort, "Required": RxRequired, "off": RxOff} {
		c := Config{Domain: testDomain, Rx: &rx.Config{}, RxPolicy: in}
		if err := c.setDefaults(); err != nil || c.RxPolicy != want {
			t.Errorf("--rx %q: %q %v, want %q", in, c.RxPolicy, err, want)
		}
		if want == RxOff && c.Rx != nil {
			t.Errorf("--rx off kept the Rx config")
		}
	}
	c := Config{Domain: testDomain, Rx: &rx.Config{}, RxPolicy: "maybe"}
	if err := c.setDefaults(); err == nil {
		t.Error("--rx maybe accepted")
	}
}

// TestRxRequiredNoPCRF: --rx required with the PCRF absent rejects an
// initial INVITE with 503 + Warning before anything goes downstream.
func TestRxRequiredNoPCRF(t *testing.T) {
	p, ue, core := startRxPCSCFPolicy(t, nil, closedPort(t), RxRequired)
	if p.Ready(t.Context()) == nil {
		t.Fatal("ready without a PCRF")
	}
	invite(ue, p.addr(), "rx-req-absent", ueOffer)
	r := waitFinal(t, ue, "rx-req-absent")
	if r.StatusCode != 503 {
		t.Fatalf("UE got %d, want 503", r.StatusCode)
	}
	checkRxWarning(t, r, "PCRF not connected")
	ackNon2xx(ue, p.addr(), r)
	select {
	case m := <-core.ch:
		if req, ok := m.(*sip.Request); ok && req.Method == sip.INVITE {
			t.Fatalf("INVITE forwarded without a PCRF")
		}
	case <-time.After(300 * time.Millisecond):
	}
	if n := p.callCount(); n != 0 {
		t.Errorf("%d calls left", n)
	}
}

// TestRxBestEffortNoPCRF: --rx best-effort with the PCRF absent lets the
// call through.
func TestRxBestEffortNoPCRF(t *testing.T) {
	p, ue, core := startRxPCSCFPolicy(t, nil, closedPort(t), RxBestEffort)
	invite(ue, p.addr(), "rx-be-absent", ueOffer)
	inv := waitRequest(t, core, sip.INVITE)
	respondSDP(core, inv, 200, "OK", coreAnswer)
	if r := waitFinal(t, ue, "rx-be-absent"); r.StatusCode != 200 {
		t.Fatalf("UE got %d", r.StatusCode)
	}
}

// TestRxPolicyRejected: the PCRF answers AAR with 5003. best-effort: the
// call goes on, no STR (no session). required: an early answer (183)
// turns into CANCEL downstream and 503 + Warning to the UE; a 2xx is
// relayed and the call released with BYE both ways.
func TestRxPolicyRejected(t *testing.T) {
	pcrf := newTestPCRF(t)
	pcrf.aaResult.Store(diameter.DiameterAuthorizationRejected)
	stop := diamtest.Capture(t, pcrf.port)

	// best-effort
	p, ue, core := startRxPCSCFPolicy(t, pcrf, pcrf.port, "on")
	invite(ue, p.addr(), "rx-be-rej", ueOffer)
	inv := waitRequest(t, core, sip.INVITE)
	respondSDP(core, inv, 200, "OK", coreAnswer)
	pcrf.next(t, diameter.CmdAA)
	ok := waitFinal(t, ue, "rx-be-rej")
	if ok.StatusCode != 200 {
		t.Fatalf("best-effort: UE got %d", ok.StatusCode)
	}
	ue.send(p.addr(), inDialog(ue, ok, sip.ACK, 1))
	waitRequest(t, core, sip.ACK)
	ue.send(p.addr(), inDialog(ue, ok, sip.BYE, 2))
	core.respond(waitRequest(t, core, sip.BYE), 200, "OK")
	pcrf.none(t, 300*time.Millisecond) // no STR for a rejected AAR

	// required, rejection on a 183
	p, ue, core = startRxPCSCFPolicy(t, pcrf, pcrf.port, RxRequired)
	invite(ue, p.addr(), "rx-req-183", ueOffer)
	inv = waitRequest(t, core, sip.INVITE)
	respondSDP(core, inv, 183, "Session Progress", coreAnswer)
	pcrf.next(t, diameter.CmdAA)
	cancelReq := waitRequest(t, core, sip.CANCEL)
	core.respond(cancelReq, 200, "OK")
	core.respond(inv, 487, "Request Terminated")
	r := waitFinal(t, ue, "rx-req-183")
	if r.StatusCode != 503 {
		t.Fatalf("required, 183: UE got %d, want 503", r.StatusCode)
	}
	checkRxWarning(t, r, "AAA 5003")
	ackNon2xx(ue, p.addr(), r)
	pcrf.none(t, 300*time.Millisecond)
	if n := p.callCount(); n != 0 {
		t.Errorf("%d calls left after the 503", n)
	}

	// required, rejection on the 200
	invite(ue, p.addr(), "rx-req-200", ueOffer)
	inv = waitRequest(t, core, sip.INVITE)
	respondSDP(core, inv, 200, "OK", coreAnswer)
	pcrf.next(t, diameter.CmdAA)
	ok = waitFinal(t, ue, "rx-req-200")
	if ok.StatusCode != 200 {
		t.Fatalf("required, 200: UE got %d", ok.StatusCode)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := waitRequest(t, ue, sip.BYE)
		if b.CallID().Value() != "rx-req-200" || !strings.Contains(b.GetHeader("Reason").Value(), "Rx: PCRF rejected") {
			t.Errorf("UE BYE %s Reason %v", b.CallID().Value(), b.GetHeader("Reason"))
		}
		ue.respond(b, 200, "OK")
	}()
	b := waitRequest(t, core, sip.BYE)
	if b.CallID().Value() != "rx-req-200" {
		t.Errorf("core BYE %s", b.CallID().Value())
	}
	core.respond(b, 200, "OK")
	<-done
	pcrf.none(t, 300*time.Millisecond)

	pcap := stop()
	diamtest.AssertNoMalformed(t, pcap, pcrf.port)
	if v := diamtest.Read(t, pcap, pcrf.port, "-V"); !strings.Contains(v, "DIAMETER_AUTHORIZATION_REJECTED") && !strings.Contains(v, "5003") {
		t.Errorf("tshark does not show the 5003 AAA")
	}
}
