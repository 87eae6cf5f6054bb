package isc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf"
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

// pcvOf parses the P-Charging-Vector of m (nil when absent).
func pcvOf(t *testing.T, m sip.Message) *imsheader.PChargingVector {
	t.Helper()
	p, err := imsheader.GetPChargingVector(m)
	if err != nil {
		t.Fatalf("P-Charging-Vector: %v", err)
	}
	return p
}

// TestSessionIOIs: the IOIs of the legs the S-CSCF starts and answers
// (TS 24.229 §5.4.3.2, §5.4.3.3):
//   - an originating request leaves for the terminating network (breakout
//     here) with the icid kept, a type 2 orig-ioi naming the home network
//     and no term-ioi;
//   - a terminating request goes to the P-CSCF with a type 1 orig-ioi
//     naming the home network and no term-ioi; the response returns
//     towards the originating network with the orig-ioi the request
//     arrived with and a type 2 term-ioi naming the home network, not the
//     P-CSCF's type 1 term-ioi;
//   - the same when a terminating AS is in the chain.
//
// Before, the P-CSCF's orig-ioi and the upstream term-ioi went on
// unchanged and the response kept the P-CSCF's term-ioi.
func TestSessionIOIs(t *testing.T) {
	const home = scscftest.Domain
	bgcf := newUAS(t, "bgcf", 0)
	l := newSessionLab(t, func(c *scscf.Config) { c.Breakout = "sip:" + bgcf.addr() })
	l.addUser(t, "alice", newUAS(t, "alice", 0))

	// Originating, towards the breakout.
	res, _ := l.send(t, sip.MESSAGE, "sip:x@example.net", alice(),
		sip.NewHeader("P-Charging-Vector", "icid-value=ioi1;orig-ioi=pcscf.visited.test;term-ioi=stale.test"))
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE out: %d %s", res.StatusCode, res.Reason)
	}
	got := bgcf.requests(sip.MESSAGE)
	if len(got) != 1 {
		t.Fatalf("breakout got %d MESSAGEs", len(got))
	}
	if p := pcvOf(t, got[0]); p == nil || p.ICID() != "ioi1" || p.OrigIOI() != home || p.TermIOI() != "" {
		t.Errorf("towards the breakout: P-Charging-Vector %q, want icid-value=ioi1;orig-ioi=%s and no term-ioi", hdr2(got[0], "P-Charging-Vector"), home)
	}

	// Terminating: the P-CSCF stand-in answers with its own type 1
	// term-ioi.
	pcscfB := newElement(t, "pcscf-bob", func(e *sipElement, ctx context.Context, tx *sipproxy.Txn) {
		req := tx.Request()
		if req.IsAck() {
			return
		}
		res := tx.NewResponse(200, "OK", sip.NewHeader("P-Charging-Vector", "icid-value=ioi2;orig-ioi="+home+";term-ioi=pcscf.bob.test"))
		if to := res.To(); to != nil && !to.Params.Has("tag") {
			to.Params.Add("tag", "pb")
		}
		_ = tx.Relay(res)
	})
	as := newTestAS(t, "term-as")
	for i, withAS := range []bool{false, true} {
		user := fmt.Sprintf("bob%d", i)
		var ifcs []userdata.InitialFilterCriteria
		if withAS {
			m := "MESSAGE"
			sc := userdata.SessionCaseTerminatingRegistered
			ifcs = append(ifcs, userdata.InitialFilterCriteria{Priority: 1,
				TriggerPoint: &userdata.TriggerPoint{ConditionTypeCNF: true, SPTs: []userdata.SPT{
					{Groups: []uint32{0}, Method: &m}, {Groups: []uint32{1}, SessionCase: &sc}}},
				ApplicationServer: userdata.ApplicationServer{ServerName: "sip:" + as.addr()}})
		}
		l.addUser(t, user, pcscfB, ifcs...)
		before := len(pcscfB.requests(sip.MESSAGE))
		term := "sip:" + strings.TrimPrefix(l.s.ServiceRoute(), "sip:"+scscf.ServiceRouteUser+"@")
		res, _ := l.sendRoute(t, sip.MESSAGE, "sip:"+user+"@"+home, term, alice(),
			sip.NewHeader("P-Charging-Vector", "icid-value=ioi2;orig-ioi=orig.network.test;term-ioi=stale.test"))
		if res.StatusCode != 200 {
			t.Fatalf("%s: MESSAGE in: %d %s", user, res.StatusCode, res.Reason)
		}
		in := pcscfB.requests(sip.MESSAGE)
		if len(in) != before+1 {
			t.Fatalf("%s: P-CSCF got %d MESSAGEs, want %d", user, len(in), before+1)
		}
		if p := pcvOf(t, in[before]); p == nil || p.ICID() != "ioi2" || p.OrigIOI() != home || p.TermIOI() != "" {
			t.Errorf("%s: towards the P-CSCF: P-Charging-Vector %q, want icid-value=ioi2;orig-ioi=%s and no term-ioi", user, hdr2(in[before], "P-Charging-Vector"), home)
		}
		if p := pcvOf(t, res); p == nil || p.ICID() != "ioi2" || p.OrigIOI() != "orig.network.test" || p.TermIOI() != home {
			t.Errorf("%s: response towards the originating network: P-Charging-Vector %q, want icid-value=ioi2;orig-ioi=orig.network.test;term-ioi=%s",
				user, strings.Join(imsheader.Values(res, "P-Charging-Vector"), ", "), home)
		}
		if withAS && len(as.requests(sip.MESSAGE)) != 1 {
			t.Errorf("%s: the AS got %d MESSAGEs", user, len(as.requests(sip.MESSAGE)))
		}
	}
}
