package registrar_test

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/scscf/internal/scscftest"
)

// TestRegisterChargingHeaders: the 200 to a REGISTER carries
// P-Charging-Function-Addresses built from the SAA's Charging-Information
// and P-Charging-Vector with the REGISTER's icid and orig-ioi and a type 1
// term-ioi naming the home network (TS 24.229 §5.4.1.2.2). The addresses
// survive an S-CSCF restart (scscf_registration.charging). Before, the 200
// had neither header.
func TestRegisterChargingHeaders(t *testing.T) {
	h := scscftest.NewHSS(t)
	sub := scscftest.AKASub("cara")
	sub.Charging = &cxclient.ChargingInformation{PrimaryCCF: "aaa://ccf1." + scscftest.Domain + ":3868",
		SecondaryCCF: "ccf2." + scscftest.Domain, PrimaryECF: "aaa://ecf." + scscftest.Domain}
	h.Add(sub)
	s1 := scscftest.NewServer(t, h, "", nil)
	dsn := s1.Config().DatabaseURL
	u := scscftest.NewUE(t, "cara")
	pcv := sip.NewHeader("P-Charging-Vector", "icid-value=4f2a;icid-generated-at=pcscf.visited.test;orig-ioi=visited.test")
	res := u.Send(t, s1, 600, u.InitialAuthz(), pcv)
	res = u.Send(t, s1, 600, u.Answer(t, res, true), pcv)
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	wantPCFA := `ccf="aaa://ccf1.` + scscftest.Domain + `:3868";ccf="aaa://ccf2.` + scscftest.Domain + `";ecf="aaa://ecf.` + scscftest.Domain + `"`
	if got := scscftest.Hdr(res, "P-Charging-Function-Addresses"); got != wantPCFA {
		t.Errorf("P-Charging-Function-Addresses %q, want %q", got, wantPCFA)
	}
	wantPCV := "icid-value=4f2a;icid-generated-at=pcscf.visited.test;orig-ioi=visited.test;term-ioi=" + scscftest.Domain
	if got := scscftest.Hdr(res, "P-Charging-Vector"); got != wantPCV {
		t.Errorf("P-Charging-Vector %q, want %q", got, wantPCV)
	}
	_ = s1.Close()

	s2 := scscftest.NewServer(t, h, dsn, nil)
	reg, ok := s2.Lookup(u.IMPU)
	if !ok || reg.Charging.String() != wantPCFA {
		t.Fatalf("after restart: charging %q (registered %v), want %q", reg.Charging.String(), ok, wantPCFA)
	}

	// A PPR with only Charging-Information (TS 29.228 §6.2.2) replaces
	// the addresses; the profile stays.
	ppr := h.Node.NewRequest(diameter.CmdPushProfile, diameter.AppCx, scscftest.Domain, s2.Config().OriginHost)
	ppr.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(u.IMPI)))
	ppr.AddAVP((&cxclient.ChargingInformation{PrimaryCCF: "aaa://ccf9." + scscftest.Domain}).AVP())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := h.Node.Send(ctx, ppr)
	if err != nil {
		t.Fatal(err)
	}
	if code, _, _ := diameter.Result(a); code != diameter.DiameterSuccess {
		t.Fatalf("PPA %d", code)
	}
	reg, _ = s2.Lookup(u.IMPU)
	prof, _ := s2.Profile(u.IMPU)
	if got := reg.Charging.String(); got != `ccf="aaa://ccf9.`+scscftest.Domain+`"` || prof == nil {
		t.Errorf("after PPR: charging %q, profile %v", got, prof)
	}
}
