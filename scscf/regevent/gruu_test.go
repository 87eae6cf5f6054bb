package regevent_test

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/gruu"
	"github.com/imscore/imscore/pkg/reginfo"
	"github.com/imscore/imscore/scscf"
	"github.com/imscore/imscore/scscf/internal/scscftest"
)

// TestRegEventPublicGRUUs: the reg-event NOTIFYs carry, in each
// registration element of a SIP IMPU of the implicit set, the pub-gruu of
// that IMPU for the contact registered with +sip.instance (RFC 5628 §4,
// TS 24.229 §5.4.2.1.2); the tel IMPU's element has none (GRUUs are SIP
// URIs, RFC 5627 §3.1). Before, no registration element had a GRUU.
func TestRegEventPublicGRUUs(t *testing.T) {
	h := scscftest.NewHSS(t)
	other := "sip:gregor.work@" + scscftest.Domain
	h.Add(scscftest.AKASub("gregor", other, "tel:+15550077"))
	l := scscftest.NewRegLab(t, h, "", nil)
	u := scscftest.NewUE(t, "gregor")
	u.Path = "<sip:term@127.0.0.1:5999;lr>"
	u.RegisterAKA(t, l.Shim, 600)

	peer := scscftest.NewPeer(t, 200)
	res, _ := peer.Subscribe(l, u.IMPU, u.IMPU, 3600)
	if res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d %s", res.StatusCode, res.Reason)
	}
	const inst = "urn:gsma:imei:35-000000-000000-0"
	check := func(doc *reginfo.Reginfo, what string) {
		t.Helper()
		for _, aor := range []string{u.IMPU, other} {
			c := findContact(t, findReg(t, doc, aor), "sip:gregor@127.0.0.1:5999")
			if want := aor + ";gr=" + inst; c.PubGRUU != want {
				t.Errorf("%s: pub-gruu of %s = %q, want %q", what, aor, c.PubGRUU, want)
			}
		}
		if c := findContact(t, findReg(t, doc, "tel:+15550077"), "sip:gregor@127.0.0.1:5999"); c.PubGRUU != "" {
			t.Errorf("%s: tel IMPU with pub-gruu %q", what, c.PubGRUU)
		}
	}
	n := peer.NextNotify(3 * time.Second)
	check(n.Doc, "full NOTIFY")

	// A refresh: partial NOTIFY, same GRUUs.
	u.RegisterAKA(t, l.Shim, 600)
	n = peer.NextNotify(3 * time.Second)
	if n.Doc.State != reginfo.StatePartial {
		t.Fatalf("refresh NOTIFY %+v", n.Doc)
	}
	check(n.Doc, "partial NOTIFY")
}

// TestRegEventTemporaryGRUUs: with a GRUU secret every registration
// element of a SIP IMPU also carries a gr:temp-gruu of that IMPU (TS
// 24.229 §5.4.7A.1: in pairs; RFC 5628 §4) that opens to the IMPU and the
// instance, is the one of the last REGISTER, and whose first-cseq stays
// the CSeq of the first REGISTER of the Call-ID across refreshes. Before,
// no temp-gruu was reported.
func TestRegEventTemporaryGRUUs(t *testing.T) {
	const secret = "0123456789abcdef-regevent-gruu"
	h := scscftest.NewHSS(t)
	other := "sip:hilde.work@" + scscftest.Domain
	h.Add(scscftest.AKASub("hilde", other))
	l := scscftest.NewRegLab(t, h, "", nil, func(c *scscf.Config) { c.GRUUSecret = secret })
	codec, err := gruu.NewCodec([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	u := scscftest.NewUE(t, "hilde")
	u.Path = "<sip:term@127.0.0.1:5999;lr>"
	u.RegisterAKA(t, l.Shim, 600)
	first := u.CSeq

	peer := scscftest.NewPeer(t, 200)
	if res, _ := peer.Subscribe(l, u.IMPU, u.IMPU, 3600); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE: %d %s", res.StatusCode, res.Reason)
	}
	const inst = "urn:gsma:imei:35-000000-000000-0"
	check := func(doc *reginfo.Reginfo, what string) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, aor := range []string{u.IMPU, other} {
			c := findContact(t, findReg(t, doc, aor), "sip:hilde@127.0.0.1:5999")
			if c.TempGRUU == nil {
				t.Fatalf("%s: no temp-gruu for %s", what, aor)
			}
			var ru sip.Uri
			if err := sip.ParseUri(c.TempGRUU.URI, &ru); err != nil {
				t.Fatalf("%s: temp-gruu %q: %v", what, c.TempGRUU.URI, err)
			}
			tg, err := codec.Parse(ru)
			if err != nil || tg.IMPU != aor || tg.Instance != inst || tg.CSeq != u.CSeq {
				t.Errorf("%s: temp-gruu of %s opens to %+v, %v; want CSeq %d", what, aor, tg, err, u.CSeq)
			}
			if c.TempGRUU.FirstCSeq != first {
				t.Errorf("%s: first-cseq %d, want %d", what, c.TempGRUU.FirstCSeq, first)
			}
			out[aor] = c.TempGRUU.URI
		}
		return out
	}
	before := check(peer.NextNotify(3*time.Second).Doc, "full NOTIFY")
	u.RegisterAKA(t, l.Shim, 600)
	after := check(peer.NextNotify(3*time.Second).Doc, "refresh NOTIFY")
	if before[u.IMPU] == after[u.IMPU] {
		t.Errorf("refresh: same temp-gruu %q", after[u.IMPU])
	}
}
