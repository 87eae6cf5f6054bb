package isc_test

import (
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/scscf/internal/scscftest"
)

// TestCallerPreferences: RFC 3841 when forking (TS 24.229 §5.4.3.3): a
// MESSAGE with Accept-Contact: *;+g.3gpp.smsip reaches only the contacts
// that registered that feature tag; without Accept-Contact every contact
// gets it; a required feature nobody registered is 480; Reject-Contact:
// *;+g.3gpp.smsip keeps the MESSAGE from that contact, and no contact
// left after Reject-Contact is 480 (RFC 3841 §7.4.1).
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
	scscftest.WaitFor(t, "the MESSAGE at the smsip contact", func() bool { a, _ := count(); return a == 1 })
	res, _ = l.send(t, sip.MESSAGE, erin, alice())
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE: %d", res.StatusCode)
	}
	// The forked branches answer independently: wait for both copies of
	// the second MESSAGE before counting.
	scscftest.WaitFor(t, "the MESSAGE without preference at both contacts", func() bool { a, b := count(); return a == 2 && b >= 1 })
	time.Sleep(200 * time.Millisecond)
	if a, b := count(); a != 2 || b != 1 {
		t.Errorf("smsip contact got %d, plain contact %d MESSAGEs in all; want 2 and 1 (the one with Accept-Contact: *;+g.3gpp.smsip must not reach the plain contact)", a, b)
	}
	res, _ = l.send(t, sip.MESSAGE, erin, alice(), sip.NewHeader("Accept-Contact", `*;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel";require;explicit`))
	if res.StatusCode != 480 {
		t.Errorf("required feature nobody has: %d %s, want 480", res.StatusCode, res.Reason)
	}
	// Reject-Contact (RFC 3841 §7.4.1): the smsip contact is left out.
	res, _ = l.send(t, sip.MESSAGE, erin, alice(), sip.NewHeader("Reject-Contact", "*;+g.3gpp.smsip"))
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE with Reject-Contact: %d %s", res.StatusCode, res.Reason)
	}
	scscftest.WaitFor(t, "the MESSAGE with Reject-Contact at the plain contact", func() bool { _, b := count(); return b == 2 })
	time.Sleep(200 * time.Millisecond)
	if a, b := count(); a != 2 || b != 2 {
		t.Errorf("after Reject-Contact: *;+g.3gpp.smsip the smsip contact got %d, plain contact %d MESSAGEs in all; want 2 and 2", a, b)
	}
	// No contact left (the one the Accept-Contact requires is rejected): 480.
	res, _ = l.send(t, sip.MESSAGE, erin, alice(), sip.NewHeader("Accept-Contact", "*;+g.3gpp.smsip;require"),
		sip.NewHeader("Reject-Contact", `*;+sip.methods="INVITE,MESSAGE", *;+g.3gpp.smsip`))
	if res.StatusCode != 480 {
		t.Errorf("every contact rejected or not accepted: %d %s, want 480", res.StatusCode, res.Reason)
	}
}
