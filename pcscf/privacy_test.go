package pcscf

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestResponsePrivacyTowardsUE: a response to the UE's own request that
// carries Privacy: id reaches the UE without the callee's
// P-Asserted-Identity (RFC 3325 §7: the UE is outside the trust domain);
// without Privacy, or with "none" among the values, the identity is
// delivered. Provisional and final responses alike. Before, the P-CSCF
// relayed the callee's P-Asserted-Identity in every case.
func TestResponsePrivacyTowardsUE(t *testing.T) {
	core, ue, pc := registeredUE(t, "reg-priv")
	const callee = "<sip:bob@ims.test>"
	for i, tc := range []struct{ privacy, want string }{
		{"", callee},
		{"id", ""},
		{"header;id", ""},
		{"id;none", callee},
		{"header", callee},
	} {
		hs := []sip.Header{sip.NewHeader("P-Asserted-Identity", callee)}
		if tc.privacy != "" {
			hs = append(hs, sip.NewHeader("Privacy", tc.privacy))
		}
		message(ue, pc, "m-priv"+string(rune('a'+i)), "")
		m := core.nextRequest(5 * time.Second)
		core.respond(m, 200, "OK", hs...)
		res := ue.nextResponse(5 * time.Second)
		if res.StatusCode != 200 {
			t.Fatalf("MESSAGE: %d", res.StatusCode)
		}
		if got := hdr(res, "P-Asserted-Identity"); got != tc.want {
			t.Errorf("200 with Privacy %q: the UE got P-Asserted-Identity %q, want %q", tc.privacy, got, tc.want)
		}
	}
	// An INVITE: the 180 and the final answer with Privacy: id.
	ue.send(pc, fmt.Sprintf(`
INVITE sip:bob@ims.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:%[1]d;branch=z9hG4bKinvpriv;rport
Max-Forwards: 70
From: <sip:alice@ims.test>;tag=ip1
To: <sip:bob@ims.test>
Call-ID: inv-priv
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.1:%[1]d>
Content-Length: 0

`, ue.port()))
	inv := core.nextRequest(5 * time.Second)
	if inv.Method != sip.INVITE {
		t.Fatalf("core got %s", inv.Method)
	}
	withheld := []sip.Header{sip.NewHeader("P-Asserted-Identity", callee), sip.NewHeader("Privacy", "id")}
	for _, code := range []int{180, 486} {
		core.respond(inv, code, "X", withheld...)
		res := ue.nextResponse(5 * time.Second)
		if res.StatusCode < 180 {
			res = ue.nextResponse(5 * time.Second) // a 100 Trying first
		}
		if res.StatusCode != code {
			t.Fatalf("UE got %d, want %d", res.StatusCode, code)
		}
		if got := hdr(res, "P-Asserted-Identity"); got != "" {
			t.Errorf("%d with Privacy: id: the UE got P-Asserted-Identity %q", code, got)
		}
	}
}
