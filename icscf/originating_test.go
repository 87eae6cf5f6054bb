package icscf

import (
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/diameter"
)

// TestOriginatingUnregistered: an AS originating for an unregistered user
// sends the request to the I-CSCF with "orig" in its Route entry (TS 24.229
// §5.3.2.1A). The I-CSCF sends an LIR with Originating-Request for the
// served user (P-Served-User, else P-Asserted-Identity), not for the
// Request-URI, and keeps "orig" in the S-CSCF's Route entry. Before, the
// request was treated as terminating: LIR for the Request-URI, no "orig".
func TestOriginatingUnregistered(t *testing.T) {
	s1 := newTestSCSCF(t, "scscf1", nil)
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		if r.impu == "sip:bob@ims.test" && r.orig {
			return cxReply{code: diameter.DiameterUnregisteredService, experimental: true, caps: true}
		}
		return cxReply{code: diameter.DiameterErrorUserUnknown, experimental: true}
	})
	ic, _ := startICSCF(t, hss.addr, []string{s1.spec()})
	waitReady(t, ic)
	self := ic.SIPAddr("udp")
	for _, c := range []struct {
		name  string
		route string
		id    sip.Header
	}{
		{"orig parameter, P-Served-User", "<sip:127.0.0.1:" + itoa(self.Port) + ";lr;orig>",
			header("P-Served-User", "<sip:bob@ims.test>;sescase=orig;regstate=unreg")},
		{"orig user part, P-Asserted-Identity", "<sip:orig@127.0.0.1:" + itoa(self.Port) + ";lr>",
			header("P-Asserted-Identity", "<sip:bob@ims.test>")},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := newRequest(ic, sip.MESSAGE, "sip:carol@other.test", "sip:carol@other.test",
				header("Route", c.route), c.id)
			res := do(t, newUAC(t), req)
			if res.StatusCode != 200 {
				t.Fatalf("got %d %s", res.StatusCode, res.Reason)
			}
			got := s1.next(t)
			if r := routeOf(got); r != s1.name+";lr;orig" {
				t.Errorf("Route at the S-CSCF = %q, want %q", r, s1.name+";lr;orig")
			}
			if got.Recipient.String() != "sip:carol@other.test" {
				t.Errorf("Request-URI changed: %s", got.Recipient.String())
			}
		})
	}
	for _, r := range hss.requests() {
		if r.cmd != diameter.CmdLocationInfo || !r.orig || r.impu != "sip:bob@ims.test" {
			t.Errorf("Cx request %+v: want an originating LIR for bob", r)
		}
	}
	t.Run("no served user", func(t *testing.T) {
		req := newRequest(ic, sip.MESSAGE, "sip:carol@other.test", "sip:carol@other.test",
			header("Route", "<sip:127.0.0.1:"+itoa(self.Port)+";lr;orig>"))
		if res := do(t, newUAC(t), req); res.StatusCode != 403 {
			t.Fatalf("got %d %s", res.StatusCode, res.Reason)
		}
	})
}
