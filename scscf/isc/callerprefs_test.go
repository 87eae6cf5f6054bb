package isc_test

import (
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/scscf/internal/scscftest"
)

// TestCallerPreferences: RFC 3841 when forking (TS 24.229 §5.4.3.3): a
// MESSAGE with Accept-Contact: *;+g.3gpp.smsip reaches only the contacts
// that registered that feature tag; without Accept-Contact every contact
// gets it; a required feature nobody registered is 480.
func TestCallerPreferences(t *testing.T) {
	l := newSessionLab(t, nil)
	uasA := newUAS(t, "alice", 0)
	l.addUser(t, "alice", uasA)
	sms, plain := newUAS(t, "sms", 0), newUAS(t, "plain", 0)
	l.hss.Add(scscftest.AKASub("erin"))
	for _, c := range []string{"<sip:erin@" + sms.addr() + ">;+g.3gpp.smsip", "<sip:erin@" + plain.addr() + ">"} {
		ue := scscftest.NewUE(t, "erin")
		ue.Contact = c
		ue.RegisterAKA(t, l.s, 600)
	}
	erin := "sip:erin@" + scscftest.Domain
	count := func() (int, int) { return len(sms.requests(sip.MESSAGE)), len(plain.requests(sip.MESSAGE)) }

	res, _ := l.send(t, sip.MESSAGE, erin, alice(), sip.NewHeader("Accept-Contact", "*;+g.3gpp.smsip"))
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE with Accept-Contact: %d %s", res.StatusCode, res.Reason)
	}
	if a, b := count(); a != 1 || b != 0 {
		t.Errorf("Accept-Contact +g.3gpp.smsip: smsip contact got %d, plain contact %d; want 1 and 0", a, b)
	}
	res, _ = l.send(t, sip.MESSAGE, erin, alice())
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE: %d", res.StatusCode)
	}
	if a, b := count(); a != 2 || b != 1 {
		t.Errorf("no preference: smsip contact got %d, plain contact %d in all; want 2 and 1", a, b)
	}
	res, _ = l.send(t, sip.MESSAGE, erin, alice(), sip.NewHeader("Accept-Contact", `*;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel";require;explicit`))
	if res.StatusCode != 480 {
		t.Errorf("required feature nobody has: %d %s, want 480", res.StatusCode, res.Reason)
	}
}
