package isc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf"
	"github.com/imscore/imscore/scscf/internal/scscftest"
)

// TestSessionOriginatingUnregistered: a request with the "orig" Route
// parameter (from the I-CSCF or an AS, TS 24.229 §5.4.3.2) for a served
// user who is provisioned but not registered runs SAR UNREGISTERED_USER and
// the ORIGINATING_UNREGISTERED iFCs, then reaches its target. On the old
// code it was refused 403 "originating user not registered". The same user
// on the Service-Route (a UE's own request through the P-CSCF) is still
// refused.
func TestSessionOriginatingUnregistered(t *testing.T) {
	as := newTestAS(t, "orig-unreg-as")
	l := newSessionLab(t, nil)
	uasA := newUAS(t, "alice", 0)
	l.addUser(t, "alice", uasA)
	l.addUser(t, "bob", nil, asIFC(5, "sip:"+as.addr(), userdata.SessionContinued, userdata.SessionCaseOriginatingUnregistered))

	orig := "sip:" + l.s.SIPAddr().String() + ";lr;orig"
	res, inv := l.sendRoute(t, sip.INVITE, alice(), orig, "",
		sip.NewHeader("P-Served-User", "<"+bob()+">;sescase=orig;regstate=unreg"))
	if res.StatusCode != 200 {
		t.Fatalf("INVITE for unregistered bob: %d %s", res.StatusCode, res.Reason)
	}
	if bye := l.ackAndBye(t, inv, res); bye.StatusCode != 200 {
		t.Errorf("BYE: %d", bye.StatusCode)
	}
	if n := l.hss.SARs(diameter.SATUnregisteredUser); n != 1 {
		t.Errorf("SAR UNREGISTERED_USER sent %d times, want 1", n)
	}
	got := as.requests(sip.INVITE)
	if len(got) != 1 || hdr2(got[0], "P-Served-User") != "<"+bob()+">;sescase=orig;regstate=unreg" {
		t.Fatalf("AS got %d INVITEs (P-Served-User %q)", len(got), func() string {
			if len(got) > 0 {
				return hdr2(got[0], "P-Served-User")
			}
			return ""
		}())
	}
	if n := len(uasA.requests(sip.INVITE)); n != 1 {
		t.Errorf("alice got %d INVITEs, want 1", n)
	}

	// A UE's request on the Service-Route for an unregistered identity.
	res, _ = l.send(t, sip.MESSAGE, alice(), bob())
	if res.StatusCode != 403 {
		t.Errorf("Service-Route request of unregistered bob: %d %s, want 403", res.StatusCode, res.Reason)
	}
	// Unknown to the HSS: 404 from the SAR's 5001.
	res, _ = l.sendRoute(t, sip.MESSAGE, alice(), orig, "sip:nobody@"+scscftest.Domain)
	if res.StatusCode != 404 {
		t.Errorf("originating request of an unknown user: %d %s, want 404", res.StatusCode, res.Reason)
	}
}

// TestSessionOriginatingCDIV: bob's terminating AS diverts the call to
// carol (changes the Request-URI). The S-CSCF leaves bob's terminating
// chain and runs bob's ORIGINATING_CDIV iFCs (P-Served-User with
// orig-cdiv, RFC 8498) before routing to carol (TS 24.229 §5.4.3.3). On
// the old code the orig-cdiv AS was never asked.
func TestSessionOriginatingCDIV(t *testing.T) {
	carol := "sip:carol@" + scscftest.Domain
	divert := newElement(t, "divert-as", func(e *sipElement, ctx context.Context, tx *sipproxy.Txn) {
		req := tx.Request()
		if req.IsInvite() {
			var u sip.Uri
			_ = sip.ParseUri(carol, &u)
			req.Recipient = u
		}
		_, _ = tx.Forward(ctx, sipproxy.ForwardOptions{RecordRoute: req.IsInvite()})
	})
	cdiv := newTestAS(t, "cdiv-as")
	l := newSessionLab(t, nil)
	l.addUser(t, "alice", newUAS(t, "alice", 0))
	uasB, uasC := newUAS(t, "bob", 0), newUAS(t, "carol", 0)
	l.addUser(t, "bob", uasB,
		asIFC(10, "sip:"+divert.addr(), userdata.SessionContinued, userdata.SessionCaseTerminatingRegistered),
		asIFC(20, "sip:"+cdiv.addr(), userdata.SessionContinued, userdata.SessionCaseOriginatingCDIV))
	l.addUser(t, "carol", uasC)

	res, inv := l.send(t, sip.INVITE, bob(), alice())
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d %s", res.StatusCode, res.Reason)
	}
	if n := len(uasC.requests(sip.INVITE)); n != 1 {
		t.Errorf("carol got %d INVITEs, want 1", n)
	}
	if n := len(uasB.requests(sip.INVITE)); n != 0 {
		t.Errorf("bob got %d INVITEs after the diversion", n)
	}
	got := cdiv.requests(sip.INVITE)
	if len(got) != 1 {
		t.Fatalf("orig-cdiv AS got %d INVITEs, want 1", len(got))
	}
	if v := hdr2(got[0], "P-Served-User"); v != "<"+bob()+">;orig-cdiv;regstate=reg" {
		t.Errorf("P-Served-User at the orig-cdiv AS: %q", v)
	}
	if !strings.HasPrefix(got[0].Recipient.String(), carol) {
		t.Errorf("Request-URI at the orig-cdiv AS: %s", got[0].Recipient.String())
	}
	if bye := l.ackAndBye(t, inv, res); bye.StatusCode != 200 {
		t.Errorf("BYE: %d", bye.StatusCode)
	}
}

// TestSessionBreakoutPrivacy: a request leaving the network through
// --breakout loses P-Asserted-Identity when it asks for "id" privacy
// (RFC 3325 §7) and the home network's P-Charging-Function-Addresses; without
// Privacy the asserted identity goes on. Before, both went out.
func TestSessionBreakoutPrivacy(t *testing.T) {
	bgcf := newUAS(t, "bgcf", 0)
	l := newSessionLab(t, func(c *scscf.Config) { c.Breakout = "sip:" + bgcf.addr() })
	l.addUser(t, "alice", newUAS(t, "alice", 0))
	for i, c := range []struct {
		privacy string
		pai     bool
	}{{"id", false}, {"", true}, {"id;none", true}} {
		var extra []sip.Header
		if c.privacy != "" {
			extra = append(extra, sip.NewHeader("Privacy", c.privacy))
		}
		extra = append(extra, sip.NewHeader("P-Charging-Function-Addresses", `ccf="aaa://ccf.home.test"`))
		res, _ := l.send(t, sip.MESSAGE, "sip:x@example.net", alice(), extra...)
		if res.StatusCode != 200 {
			t.Fatalf("MESSAGE out: %d %s", res.StatusCode, res.Reason)
		}
		got := bgcf.requests(sip.MESSAGE)
		if len(got) != i+1 {
			t.Fatalf("breakout got %d MESSAGEs", len(got))
		}
		out := got[i]
		if has := hdr2(out, "P-Asserted-Identity") != ""; has != c.pai {
			t.Errorf("Privacy %q: P-Asserted-Identity leaves the network: %v, want %v", c.privacy, has, c.pai)
		}
		if v := hdr2(out, "P-Charging-Function-Addresses"); v != "" {
			t.Errorf("P-Charging-Function-Addresses left the network: %s", v)
		}
	}
}
