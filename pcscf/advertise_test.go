package pcscf

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestAdvertise: with --advertise (UEs reach the P-CSCF through a published
// port or a NAT at 192.0.2.10:5070) the UE's outbound-proxy Route to that
// address is the P-CSCF's own, the Record-Route of a dialog holds the
// advertised entry for the UE and the listening one for the core (RFC 5658),
// requests to the UE carry the advertised Via, and Path keeps the address
// the S-CSCF reaches. Without the flag the P-CSCF passes the UE's
// outbound-proxy Route on to the I-CSCF, which routes the REGISTER to it
// (the compose lab's baresip got no answer), and the Via and Record-Route
// the UE sees name the listening address.
func TestAdvertise(t *testing.T) {
	const adv = "192.0.2.10:5070"
	core := newPeer(t, "")
	p := startPCSCF(t, core, func(c *Config) { c.Advertise = adv })
	ue := newPeer(t, "")
	pc := p.addr()
	outbound := "Route: <sip:" + adv + ";lr>\n"

	register(ue, pc, "adv-reg", 1, 600, outbound)
	req := coreAnswerRegister(t, core, false)
	if got := hdr(req, "Route"); got != "" {
		t.Errorf("REGISTER to the I-CSCF keeps Route %q, want the advertised entry removed", got)
	}
	if got, want := hdr(req, "Path"), fmt.Sprintf("<sip:term@%s;lr>", pc); got != want {
		t.Errorf("Path %q, want %q (the address the S-CSCF reaches)", got, want)
	}
	if res := ue.nextResponse(5 * time.Second); res.StatusCode != 200 {
		t.Fatalf("UE got %d to its REGISTER", res.StatusCode)
	}
	if sub := core.nextRequest(5 * time.Second); sub.Method == sip.SUBSCRIBE {
		core.respond(sub, 489, "Bad Event")
	}

	// Originating INVITE: [core entry, UE entry] on top of the request.
	ue.send(pc, fmt.Sprintf(`
INVITE sip:bob@ims.test SIP/2.0
Via: SIP/2.0/UDP %[2]s:%[1]d;branch=z9hG4bKadvinv1;rport
Max-Forwards: 70
Route: <sip:%[3]s;lr>
From: <sip:alice@ims.test>;tag=a1
To: <sip:bob@ims.test>
Call-ID: adv-inv1
CSeq: 1 INVITE
Contact: <sip:alice@%[2]s:%[1]d>
Content-Length: 0

`, ue.port(), ue.host(), adv))
	inv := core.nextRequest(5 * time.Second)
	rr := headerValues(inv, "Record-Route")
	wantRR := []string{fmt.Sprintf("<sip:%s;transport=udp;lr>", pc), "<sip:" + adv + ";transport=udp;lr>"}
	if strings.Join(rr, ",") != strings.Join(wantRR, ",") {
		t.Errorf("originating Record-Route %q, want %q", rr, wantRR)
	}
	if got := hdr(inv, "Route"); strings.Contains(got, "192.0.2.10") {
		t.Errorf("originating Route %q still names the advertised address", got)
	}
	core.respond(inv, 486, "Busy Here")
	if res := ue.nextResponse(5 * time.Second); res.StatusCode != 486 {
		t.Fatalf("UE got %d", res.StatusCode)
	}

	// Terminating INVITE along the Path: Via and top Record-Route
	// advertised, the core's entry below it.
	core.send(pc, fmt.Sprintf(`
INVITE sip:alice@%[4]s:%[1]d SIP/2.0
Via: SIP/2.0/UDP %[4]s:%[2]d;branch=z9hG4bKadvterm1
Max-Forwards: 70
Route: <sip:term@%[3]s;lr>
Record-Route: <sip:%[4]s:%[2]d;lr>
From: <sip:bob@ims.test>;tag=b1
To: <sip:alice@ims.test>
Call-ID: adv-term1
CSeq: 1 INVITE
Contact: <sip:bob@%[4]s:%[2]d>
P-Asserted-Identity: <sip:bob@ims.test>
Content-Length: 0

`, ue.port(), core.port(), pc, ue.host()))
	tm := ue.nextRequest(5 * time.Second)
	if v := tm.Via(); v == nil || viaAddr(v) != adv {
		t.Errorf("terminating Via %v, want sent-by %s", v, adv)
	}
	rr = headerValues(tm, "Record-Route")
	if len(rr) != 3 || rr[0] != "<sip:"+adv+";transport=udp;lr>" || rr[1] != fmt.Sprintf("<sip:%s;transport=udp;lr>", pc) {
		t.Errorf("terminating Record-Route %q, want the advertised entry, then the core's, then the S-CSCF's", rr)
	}
	// The UE answers to the advertised address; here the NAT is the
	// test: the answer goes to the P-CSCF's socket.
	res := sip.NewResponseFromRequest(tm, 486, "Busy Here", nil)
	res.To().Params.Add("tag", "u1")
	ue.sendMsg(pc, res)
	if r := core.nextResponse(5 * time.Second); r.StatusCode != 486 {
		t.Fatalf("core got %d, want the UE's 486 relayed", r.StatusCode)
	}
}

// headerValues lists every value of header name, in order.
func headerValues(m sip.Message, name string) []string {
	var out []string
	for _, h := range m.GetHeaders(name) {
		for _, v := range strings.Split(h.Value(), ",") {
			out = append(out, strings.TrimSpace(v))
		}
	}
	return out
}
