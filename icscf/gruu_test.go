package icscf

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/gruu"
)

// TestTerminatingTemporaryGRUU: a request to a temporary GRUU gets the LIR
// of the IMPU sealed in it (its user part is no IMPU) and goes to the
// S-CSCF the HSS names with the Request-URI unchanged; one sealed with
// another secret, or any when the I-CSCF has no secret, gets 404 with a
// Warning and no LIR. Before, the LIR asked for "sip:tgruu.…" (5001, 404).
func TestTerminatingTemporaryGRUU(t *testing.T) {
	const secret = "0123456789abcdef-icscf-gruu"
	s1 := newTestSCSCF(t, "scscf1", nil)
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		if r.impu == "sip:bob@ims.test" {
			return cxReply{code: diameter.DiameterSuccess, serverName: s1.name}
		}
		return cxReply{code: diameter.DiameterErrorUserUnknown, experimental: true}
	})
	ic, _ := startICSCF(t, hss.addr, []string{s1.spec()}, func(c *Config) { c.GRUUSecret = secret })
	waitReady(t, ic)
	c := newUAC(t)
	codec, err := gruu.NewCodec([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	tg := codec.TempURI("sip:bob@ims.test", "urn:uuid:1", "cid", 2, time.Unix(1_800_000_000, 0))
	res := do(t, c, newRequest(ic, sip.MESSAGE, tg, tg))
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE to the temp GRUU: %d %s", res.StatusCode, res.Reason)
	}
	checkToSCSCF(t, s1.next(t), s1, tg)
	lirs := hss.requests()
	if len(lirs) != 1 || lirs[0].cmd != diameter.CmdLocationInfo || lirs[0].impu != "sip:bob@ims.test" {
		t.Fatalf("Cx requests %+v, want one LIR for sip:bob@ims.test", lirs)
	}

	other, _ := gruu.NewCodec([]byte("another-secret-of-16"))
	foreign := other.TempURI("sip:bob@ims.test", "urn:uuid:1", "cid", 2, time.Unix(1_800_000_000, 0))
	res = do(t, c, newRequest(ic, sip.MESSAGE, foreign, foreign))
	if w := res.GetHeader("Warning"); res.StatusCode != 404 || w == nil || !strings.Contains(w.Value(), "unknown temporary GRUU") {
		t.Errorf("temp GRUU of another secret: %d, Warning %v; want 404 unknown temporary GRUU", res.StatusCode, w)
	}

	ic2, _ := startICSCF(t, hss.addr, []string{s1.spec()})
	waitReady(t, ic2)
	res = do(t, c, newRequest(ic2, sip.MESSAGE, tg, tg))
	if w := res.GetHeader("Warning"); res.StatusCode != 404 || w == nil || !strings.Contains(w.Value(), "no gruu-secret") {
		t.Errorf("temp GRUU at an I-CSCF without secret: %d, Warning %v; want 404", res.StatusCode, w)
	}
	if n := len(hss.requests()); n != 1 {
		t.Errorf("%d Cx requests, want only the first LIR", n)
	}
	s1.none(t)
}
