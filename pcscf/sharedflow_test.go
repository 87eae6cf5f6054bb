package pcscf

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// behindSBC sends, from the shared socket sbc, a request of a UE whose
// own address (Via sent-by, with rport, and Contact when contact is true)
// is ueHost:5060.
func behindSBC(sbc *udpPeer, pc, method, ueHost, user, callID, extra string, contact bool) {
	ct := ""
	if contact {
		ct = fmt.Sprintf("Contact: <sip:%s@%s:5060>\n", user, ueHost)
	}
	sbc.send(pc, fmt.Sprintf(`
%[1]s sip:someone@%[2]s SIP/2.0
Via: SIP/2.0/UDP %[3]s:5060;branch=z9hG4bK%[5]s;rport
Max-Forwards: 70
From: <sip:%[4]s@%[2]s>;tag=%[5]s
To: <sip:someone@%[2]s>
Call-ID: %[5]s
CSeq: 1 %[1]s
%[6]s%[7]sContent-Length: 0

`, method, testDomain, ueHost, user, callID, ct, extra))
}

// registerBehindSBC registers user with Contact sip:user@ueHost:5060 from
// the shared socket sbc; the core answers 200 with the user's own IMPU.
func registerBehindSBC(t *testing.T, sbc, core *udpPeer, pc, ueHost, user string) {
	t.Helper()
	sbc.send(pc, fmt.Sprintf(`
REGISTER sip:%[1]s SIP/2.0
Via: SIP/2.0/UDP %[2]s:5060;branch=z9hG4bKreg%[3]s;rport
Max-Forwards: 70
From: <sip:%[3]s@%[1]s>;tag=r%[3]s
To: <sip:%[3]s@%[1]s>
Call-ID: reg-%[3]s
CSeq: 1 REGISTER
Contact: <sip:%[3]s@%[2]s:5060>;expires=600
Content-Length: 0

`, testDomain, ueHost, user))
	req := core.nextRequest(5 * time.Second)
	if req.Method != sip.REGISTER {
		t.Fatalf("core got %s", req.Method)
	}
	ct := req.Contact().Clone()
	ct.Params = sip.NewParams()
	ct.Params.Add("expires", "600")
	core.respond(req, 200, "OK", ct,
		sip.NewHeader("Service-Route", fmt.Sprintf("<sip:orig@%s:%d;lr>", core.host(), core.port())),
		sip.NewHeader("P-Associated-URI", fmt.Sprintf("<sip:%s@%s>", user, testDomain)))
	if r := sbc.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("REGISTER of %s: %d", user, r.StatusCode)
	}
	core.respond(waitRequest(t, core, sip.SUBSCRIBE), 489, "Bad Event") // reg event
}

// TestSharedFlowIdentity: UEs registered over one flow (one socket, as
// behind an SBC or a NAT without per-UE ports), each with its own Contact
// address. Each request must be matched to the registration of the UE
// its Via/Contact names: its P-Asserted-Identity is that UE's, never the
// most recently registered UE's of the flow; when users registered the
// same address, the request is refused 403 with a Warning unless its
// P-Preferred-Identity picks one; an address no UE of the flow
// registered, and another flow naming a registered Contact, get 403 Not
// Registered. On the old store every request of the flow was taken for
// its latest registration (bob's, then carol's).
func TestSharedFlowIdentity(t *testing.T) {
	core := newPeer(t, "")
	p := startPCSCF(t, core, nil)
	pc := p.addr()
	sbc := newPeer(t, "")
	registerBehindSBC(t, sbc, core, pc, "10.0.0.1", "alice")
	registerBehindSBC(t, sbc, core, pc, "10.0.0.2", "bob")

	assertFrom := func(what, ueHost, user, callID, extra string, contact bool, want string) {
		t.Helper()
		behindSBC(sbc, pc, "MESSAGE", ueHost, user, callID, extra, contact)
		req := core.nextRequest(5 * time.Second)
		if got := hdr(req, "P-Asserted-Identity"); got != "<sip:"+want+"@"+testDomain+">" {
			t.Errorf("%s: P-Asserted-Identity %q, want %s's", what, got, want)
		}
		core.respond(req, 200, "OK")
		if r := sbc.nextResponse(5 * time.Second); r.StatusCode != 200 {
			t.Errorf("%s: %d", what, r.StatusCode)
		}
	}
	assertRefused := func(what string, from *udpPeer, ueHost, user, callID, extra string, contact bool, code int, warning string) {
		t.Helper()
		behindSBC(from, pc, "MESSAGE", ueHost, user, callID, extra, contact)
		r := from.nextResponse(5 * time.Second)
		if r.StatusCode != code || !strings.Contains(hdr(r, "Warning"), warning) {
			t.Errorf("%s: %d %s, Warning %q; want %d with %q", what, r.StatusCode, r.Reason, hdr(r, "Warning"), code, warning)
		}
	}
	assertFrom("alice by Via", "10.0.0.1", "alice", "m1", "", false, "alice")
	assertFrom("bob by Via", "10.0.0.2", "bob", "m2", "", false, "bob")
	assertFrom("alice by Contact", "10.0.0.1", "alice", "m3", "", true, "alice")
	// A preferred identity of another user does not move the request to
	// that user's registration: it is not alice's, so her default is asserted.
	assertFrom("alice preferring bob", "10.0.0.1", "alice", "m4", "P-Preferred-Identity: <sip:bob@"+testDomain+">\n", false, "alice")

	assertRefused("address nobody registered over the flow", sbc, "10.0.0.9", "mallory", "m5", "", false, 403, "no UE registered over this flow")
	other := newPeer(t, "")
	assertRefused("alice's Contact from another flow", other, "10.0.0.1", "alice", "m6", "", true, 403, "not registered")

	// carol registers the address bob has, over the same flow.
	registerBehindSBC(t, sbc, core, pc, "10.0.0.2", "carol")
	assertRefused("address of two users", sbc, "10.0.0.2", "bob", "m7", "", false, 403, "several users")
	assertFrom("bob's Contact URI", "10.0.0.2", "bob", "m8", "", true, "bob")
	assertFrom("carol's Contact URI", "10.0.0.2", "carol", "m9", "", true, "carol")
	assertFrom("address of two users, carol preferred", "10.0.0.2", "carol", "m10", "P-Preferred-Identity: <sip:carol@"+testDomain+">\n", false, "carol")
	assertFrom("alice still", "10.0.0.1", "alice", "m11", "", false, "alice")
}

// TestOutOfDialogRequest481: a registered UE's request with a To tag that
// follows no route set through the P-CSCF (no Route to it: the dialog is
// unknown here) gets 481 (RFC 3261 §12.2.2) and is not forwarded; before,
// it was sent to its Request-URI's host and the UE got 500 or nothing.
func TestOutOfDialogRequest481(t *testing.T) {
	core := newPeer(t, "")
	p := startPCSCF(t, core, nil)
	pc := p.addr()
	ue := newPeer(t, "")
	register(ue, pc, "reg481", 1, 600, "")
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", r.StatusCode)
	}
	core.respond(waitRequest(t, core, sip.SUBSCRIBE), 489, "Bad Event") // reg event
	for _, method := range []string{"BYE", "INFO", "UPDATE"} {
		ue.send(pc, fmt.Sprintf(`
%[1]s sip:bob@bob.invalid SIP/2.0
Via: SIP/2.0/UDP %[2]s:%[3]d;branch=z9hG4bKood%[1]s;rport
Max-Forwards: 70
From: <sip:alice@%[4]s>;tag=a1
To: <sip:bob@%[4]s>;tag=gone
Call-ID: no-such-dialog-%[1]s
CSeq: 2 %[1]s
Content-Length: 0

`, method, ue.host(), ue.port(), testDomain))
		r := ue.nextResponse(10 * time.Second)
		if r.StatusCode != 481 || !strings.Contains(hdr(r, "Warning"), "no dialog") {
			t.Errorf("out-of-dialog %s: %d %s, Warning %q; want 481", method, r.StatusCode, r.Reason, hdr(r, "Warning"))
		}
	}
	select {
	case m := <-core.ch:
		t.Errorf("forwarded to the core:\n%s", m)
	default:
	}
}
