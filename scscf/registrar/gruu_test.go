package registrar_test

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/scscf/internal/scscftest"
)

// TestRegisterPublicGRUU: a REGISTER with Supported: gruu and a Contact
// with +sip.instance gets pub-gruu in the 200's Contact (RFC 5627 §5.3, TS
// 24.229 §5.4.7A.2); without Supported: gruu it does not. Before, no
// GRUU was given.
func TestRegisterPublicGRUU(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("gina"))
	s := scscftest.NewServer(t, h, "", nil)
	u := scscftest.NewUE(t, "gina")
	res := u.Send(t, s, 600, u.InitialAuthz())
	res = u.Send(t, s, 600, u.Answer(t, res, true), sip.NewHeader("Supported", "path, gruu"))
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	want := `pub-gruu="` + u.IMPU + `;gr=urn:gsma:imei:35-000000-000000-0"`
	if c := scscftest.Hdr(res, "Contact"); !strings.Contains(c, want) {
		t.Errorf("Contact %q lacks %s", c, want)
	}
	res = u.Send(t, s, 600, u.InitialAuthz())
	res = u.Send(t, s, 600, u.Answer(t, res, true))
	if c := scscftest.Hdr(res, "Contact"); strings.Contains(c, "gruu") {
		t.Errorf("GRUU without Supported: gruu: %q", c)
	}
}
