package registrar_test

import (
	"testing"

	"github.com/imscore/imscore/scscf/internal/scscftest"
)

// TestRestartedDeviceNewInstance is the Linphone case of issue 22: a phone
// registered with one +sip.instance restarts, registers the same contact
// address with a new instance, then de-registers. Its old binding must
// not outlive that (before: the S-CSCF kept it until it expired while the
// P-CSCF had none): the new registration replaces it, and a de-REGISTER
// of the address removes every binding at that address.
func TestRestartedDeviceNewInstance(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("lin"))
	s := scscftest.NewServer(t, h, "", nil)
	u := scscftest.NewUE(t, "lin")
	u.Contact = `<sip:lin@127.0.0.1:5077>;+sip.instance="<urn:uuid:11111111-1111-1111-1111-111111111111>"`
	u.RegisterAKA(t, s, 600)
	u.Contact = `<sip:lin@127.0.0.1:5077>;+sip.instance="<urn:uuid:22222222-2222-2222-2222-222222222222>"`
	u.RegisterAKA(t, s, 600)
	reg, ok := s.Lookup(u.IMPU)
	if !ok || len(reg.Contacts) != 1 || reg.Contacts[0].Instance != "<urn:uuid:22222222-2222-2222-2222-222222222222>" {
		t.Fatalf("after the restart: %+v (registered %v), want only the new instance's binding", reg.Contacts, ok)
	}
	u.RegisterAKA(t, s, 0)
	if reg, ok := s.Lookup(u.IMPU); ok && len(reg.Contacts) > 0 {
		t.Fatalf("after the de-REGISTER: %+v still bound", reg.Contacts)
	}

	// A binding left from before (e.g. written by an older version) at
	// the same address is removed by the de-REGISTER too.
	v := scscftest.NewUE(t, "lin")
	v.Contact = `<sip:lin@127.0.0.1:5078>`
	v.RegisterAKA(t, s, 600)
	v.Contact = `<sip:lin@127.0.0.1:5078>;+sip.instance="<urn:uuid:33333333-3333-3333-3333-333333333333>"`
	v.RegisterAKA(t, s, 0)
	if reg, ok := s.Lookup(v.IMPU); ok && len(reg.Contacts) > 0 {
		t.Fatalf("de-REGISTER with an instance left the address's binding without one: %+v", reg.Contacts)
	}
}
