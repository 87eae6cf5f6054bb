package registrar_test

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/gruu"
	"github.com/imscore/imscore/scscf"
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

// tempGRUUOf returns the temp-gruu of the 200's Contact holding instance
// inst, "" when there is none.
func tempGRUUOf(res *sip.Response, inst string) string {
	for _, h := range res.GetHeaders("Contact") {
		v := h.Value()
		if !strings.Contains(v, inst) {
			continue
		}
		if i := strings.Index(v, `temp-gruu="`); i >= 0 {
			rest := v[i+len(`temp-gruu="`):]
			return rest[:strings.IndexByte(rest, '"')]
		}
	}
	return ""
}

// TestRegisterTemporaryGRUU: with a GRUU secret the 200 to a REGISTER
// with Supported: gruu gives, next to pub-gruu, a temp-gruu (TS 24.229
// §5.4.7A.1: GRUUs in pairs; RFC 5627 §5.3) that shows neither the IMPU
// nor the instance, routes to the home domain, opens (pkg/gruu) to the
// IMPU and instance, and is new at each REGISTER. Before, the 200 had no
// temp-gruu.
func TestRegisterTemporaryGRUU(t *testing.T) {
	const secret = "0123456789abcdef-temp-gruu-test"
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("gina"))
	s := scscftest.NewServer(t, h, "", func(c *scscf.Config) { c.GRUUSecret = secret })
	u := scscftest.NewUE(t, "gina")
	register := func() *sip.Response {
		t.Helper()
		res := u.Send(t, s, 600, u.InitialAuthz())
		res = u.Send(t, s, 600, u.Answer(t, res, true), sip.NewHeader("Supported", "path, gruu"))
		if res.StatusCode != 200 {
			t.Fatalf("REGISTER: %d", res.StatusCode)
		}
		return res
	}
	const inst = "urn:gsma:imei:35-000000-000000-0"
	res := register()
	tg := tempGRUUOf(res, inst)
	if tg == "" {
		t.Fatalf("no temp-gruu in %q", scscftest.Hdr(res, "Contact"))
	}
	if !strings.Contains(scscftest.Hdr(res, "Contact"), `pub-gruu="`+u.IMPU+";gr="+inst+`"`) {
		t.Errorf("pub-gruu missing next to the temp-gruu: %q", scscftest.Hdr(res, "Contact"))
	}
	if strings.Contains(tg, "gina") || strings.Contains(tg, "35-000000") {
		t.Errorf("temp-gruu %q reveals the IMPU or the instance", tg)
	}
	var ru sip.Uri
	if err := sip.ParseUri(tg, &ru); err != nil {
		t.Fatalf("temp-gruu %q: %v", tg, err)
	}
	if ru.Host != scscftest.Domain || !gruu.IsTemp(ru) {
		t.Errorf("temp-gruu %q: want host %s and a valueless gr", tg, scscftest.Domain)
	}
	codec, err := gruu.NewCodec([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	got, err := codec.Parse(ru)
	if err != nil || got.IMPU != u.IMPU || got.Instance != inst || got.CSeq != u.CSeq {
		t.Errorf("temp-gruu opens to %+v, %v; want %s, %s, CSeq %d", got, err, u.IMPU, inst, u.CSeq)
	}
	if tg2 := tempGRUUOf(register(), inst); tg2 == "" || tg2 == tg {
		t.Errorf("refresh: temp-gruu %q, want a new one (was %q)", tg2, tg)
	}
}

// TestRegisterBarredIMPUGRUU: a USIM-only UE registers its barred
// temporary IMPU (TS 23.003 §13.4B). A GRUU on that IMPU would get 404
// (barred), so the 200's pub-gruu and temp-gruu are built on the default
// public user identity (first non-barred IMPU, first in
// P-Associated-URI). Before, pub-gruu was "<barred IMPU>;gr=...".
func TestRegisterBarredIMPUGRUU(t *testing.T) {
	const secret = "0123456789abcdef-barred-gruu"
	h := scscftest.NewHSS(t)
	d := scscftest.Domain
	h.Add(scscftest.AKASub("tova", "sip:tova.temp@"+d, "tel:+15550123"))
	h.Bar("tova@"+d, "sip:tova.temp@"+d)
	h.Bar("tova@"+d, "sip:tova@"+d)
	s := scscftest.NewServer(t, h, "", func(c *scscf.Config) { c.GRUUSecret = secret })
	codec, err := gruu.NewCodec([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	const inst = "urn:gsma:imei:35-000000-000000-0"

	// vera's set has a non-barred IMPU after the barred ones.
	h.Add(scscftest.AKASub("vera", "sip:vera.temp@"+d, "sip:vera.work@"+d))
	h.Bar("vera@"+d, "sip:vera.temp@"+d)
	h.Bar("vera@"+d, "sip:vera@"+d)
	u := scscftest.NewUE(t, "vera")
	to := sip.NewHeader("X-Test-To", "vera.temp")
	res := u.Send(t, s, 600, u.InitialAuthz(), to)
	res = u.Send(t, s, 600, u.Answer(t, res, true), to, sip.NewHeader("Supported", "gruu"))
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER of the barred IMPU: %d %s", res.StatusCode, res.Reason)
	}
	c := scscftest.Hdr(res, "Contact")
	if want := `pub-gruu="sip:vera.work@` + d + ";gr=" + inst + `"`; !strings.Contains(c, want) {
		t.Errorf("Contact %q lacks %s", c, want)
	}
	if strings.Contains(c, "vera.temp@") {
		t.Errorf("GRUU on the barred IMPU: %q", c)
	}
	var ru sip.Uri
	if err := sip.ParseUri(tempGRUUOf(res, inst), &ru); err != nil {
		t.Fatalf("temp-gruu: %v in %q", err, c)
	}
	if tg, err := codec.Parse(ru); err != nil || tg.IMPU != "sip:vera.work@"+d {
		t.Errorf("temp-gruu opens to %+v, %v; want sip:vera.work@%s", tg, err, d)
	}

	// tova's only non-barred IMPU is a tel URI: no GRUU at all.
	v := scscftest.NewUE(t, "tova")
	to = sip.NewHeader("X-Test-To", "tova.temp")
	res = v.Send(t, s, 600, v.InitialAuthz(), to)
	res = v.Send(t, s, 600, v.Answer(t, res, true), to, sip.NewHeader("Supported", "gruu"))
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER of tova's barred IMPU: %d %s", res.StatusCode, res.Reason)
	}
	if c := scscftest.Hdr(res, "Contact"); strings.Contains(c, "gruu") {
		t.Errorf("GRUU for a set without a non-barred SIP IMPU: %q", c)
	}
}
