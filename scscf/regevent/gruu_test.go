package regevent_test

import (
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/reginfo"
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
