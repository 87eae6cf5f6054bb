package isc_test

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/internal/scscftest"
)

// TestSessionChargingHeaders: requests the S-CSCF sends to the served
// user's AS and to the terminating P-CSCF carry the served user's
// P-Charging-Function-Addresses from the HSS's Charging-Information
// (TS 24.229 §5.4.3.2-3); towards the AS the P-Charging-Vector keeps the
// icid and has a type 3 orig-ioi naming the home network. Before, neither
// hop got P-Charging-Function-Addresses and the AS saw the P-CSCF's
// orig-ioi.
func TestSessionChargingHeaders(t *testing.T) {
	as := newTestAS(t, "term-as")
	l := newSessionLab(t, nil)
	l.addUser(t, "alice", newUAS(t, "alice", 0))
	uasB := newUAS(t, "bob", 0)
	l.hss.Add(&scscftest.Sub{IMPI: "bob@" + scscftest.Domain, IMPUs: []string{bob()}, Scheme: "aka",
		IFCs:     []userdata.InitialFilterCriteria{asIFC(5, "sip:"+as.addr(), userdata.SessionContinued, userdata.SessionCaseTerminatingRegistered)},
		Charging: &cxclient.ChargingInformation{PrimaryCCF: "aaa://ccf.bob.test", PrimaryECF: "aaa://ecf.bob.test"}})
	ue := scscftest.NewUE(t, "bob")
	ue.Contact = "<sip:bob@" + uasB.addr() + ">"
	ue.RegisterAKA(t, l.s, 600)

	res, inv := l.send(t, sip.INVITE, bob(), alice(),
		sip.NewHeader("P-Charging-Vector", "icid-value=c0ffee;orig-ioi=visited.test"))
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d %s", res.StatusCode, res.Reason)
	}
	want := `ccf="aaa://ccf.bob.test";ecf="aaa://ecf.bob.test"`
	got := as.requests(sip.INVITE)
	if len(got) != 1 {
		t.Fatalf("AS got %d INVITEs", len(got))
	}
	if v := hdr2(got[0], "P-Charging-Function-Addresses"); v != want {
		t.Errorf("P-Charging-Function-Addresses at the AS: %q, want %q", v, want)
	}
	if v := hdr2(got[0], "P-Charging-Vector"); !strings.Contains(v, "icid-value=c0ffee") || !strings.Contains(v, "orig-ioi="+scscftest.Domain) {
		t.Errorf("P-Charging-Vector at the AS: %q", v)
	}
	toB := uasB.requests(sip.INVITE)
	if len(toB) != 1 || hdr2(toB[0], "P-Charging-Function-Addresses") != want {
		t.Errorf("bob's INVITE: %d, P-Charging-Function-Addresses %q", len(toB), func() string {
			if len(toB) > 0 {
				return hdr2(toB[0], "P-Charging-Function-Addresses")
			}
			return ""
		}())
	}
	if bye := l.ackAndBye(t, inv, res); bye.StatusCode != 200 {
		t.Errorf("BYE: %d", bye.StatusCode)
	}
}
