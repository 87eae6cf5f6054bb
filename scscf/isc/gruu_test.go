package isc_test

import (
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/scscf/internal/scscftest"
)

// TestSessionToPublicGRUU: bob registers two phones (two +sip.instance);
// an INVITE to the public GRUU of the second reaches that phone only, one
// to his AOR forks to both, and one to the GRUU of an instance that is not
// registered gets 480 (RFC 5627 §5.4). Before, the GRUU forked to both.
func TestSessionToPublicGRUU(t *testing.T) {
	l := newSessionLab(t, nil)
	l.addUser(t, "alice", newUAS(t, "alice", 0))
	l.addUser(t, "bob", nil)
	phones := map[string]*sipElement{}
	for _, inst := range []string{"urn:uuid:00000000-0000-0000-0000-000000000001", "urn:uuid:00000000-0000-0000-0000-000000000002"} {
		uas := newUAS(t, "bob", 0)
		ue := scscftest.NewUE(t, "bob")
		ue.Contact = "<sip:bob@" + uas.addr() + `>;+sip.instance="<` + inst + `>"`
		ue.RegisterAKA(t, l.s, 600)
		phones[inst] = uas
	}
	second := "urn:uuid:00000000-0000-0000-0000-000000000002"
	res, inv := l.send(t, sip.INVITE, bob()+";gr="+second, alice())
	if res.StatusCode != 200 {
		t.Fatalf("INVITE to the GRUU: %d %s", res.StatusCode, res.Reason)
	}
	l.ackAndBye(t, inv, res)
	for inst, uas := range phones {
		want := 0
		if inst == second {
			want = 1
		}
		if n := len(uas.requests(sip.INVITE)); n != want {
			t.Errorf("instance %s got %d INVITEs, want %d", inst, n, want)
		}
	}
	res, _ = l.send(t, sip.MESSAGE, bob()+";gr=urn:uuid:00000000-0000-0000-0000-00000000dead", alice())
	if res.StatusCode != 480 {
		t.Errorf("MESSAGE to an unregistered instance's GRUU: %d %s, want 480", res.StatusCode, res.Reason)
	}
	res, _ = l.send(t, sip.MESSAGE, bob(), alice())
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE to the AOR: %d", res.StatusCode)
	}
	for inst, uas := range phones {
		// The other branch may still be on its way when the first 200 ends
		// the transaction.
		scscftest.WaitFor(t, "the MESSAGE to the AOR at "+inst, func() bool { return len(uas.requests(sip.MESSAGE)) == 1 })
	}
}
