package registrar

import (
	"fmt"
	"testing"
	"time"
	"unsafe"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/digest"
)

// within reports whether s's bytes lie inside in's: s is a slice of in
// and keeps all of in alive.
func within(s, in string) bool {
	if s == "" || in == "" {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(unsafe.StringData(in)))
	return p >= lo && p < lo+uintptr(len(in))
}

// register parses a REGISTER as the transport would.
func register(t *testing.T, user, cseq string) *sip.Request {
	t.Helper()
	raw := "REGISTER sip:ims.example.org SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK" + user + cseq + "\r\n" +
		"From: <sip:" + user + "@ims.example.org>;tag=f" + user + "\r\n" +
		"To: <sip:" + user + "@ims.example.org>\r\n" +
		"Call-ID: c" + user + "\r\n" +
		"CSeq: " + cseq + " REGISTER\r\n" +
		"Contact: <sip:" + user + "@192.0.2.7:5060>;+sip.instance=\"<urn:gsma:imei:35209900-176148-1>\";reg-id=1;q=0.5;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\";audio;video;+g.3gpp.smsip\r\n" +
		"Path: <sip:term@pcscf.ims.example.org:5060;lr>\r\n" +
		"P-Visited-Network-ID: \"visited.example.net\"\r\n" +
		"P-Charging-Vector: icid-value=" + user + cseq + ";orig-ioi=visited.example.net\r\n" +
		"User-Agent: VoLTE-phone/1.0\r\n" +
		"Authorization: Digest username=\"" + user + "@ims.example.org\", realm=\"ims.example.org\", uri=\"sip:ims.example.org\", nonce=\"" + fmt.Sprintf("%044d", 7) + "\", response=\"0123456789abcdef0123456789abcdef\", algorithm=AKAv1-MD5, qop=auth, cnonce=\"abc\", nc=00000001\r\n" +
		"Expires: 600000\r\n" +
		"Content-Length: 0\r\n\r\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m.(*sip.Request)
}

// TestBindingHoldsNoHeaderText: what a registration keeps for months
// (the IMPI, the contact's parameters, Path, P-Visited-Network-ID,
// User-Agent) must not be slices of the REGISTER's header lines, which
// would keep each whole line (the Authorization alone is some 350 bytes)
// alive per registration; and the values all registrations through one
// P-CSCF share are held once. docs/performance.md, "Memory per
// registration".
func TestBindingHoldsNoHeaderText(t *testing.T) {
	s := &Registrar{cfg: Config{MinExpires: time.Minute, MaxExpires: 24 * time.Hour, DefaultExpires: time.Hour}}
	var first []string // Path, PVNI, UA of the first REGISTER
	for i, user := range []string{"alice", "bob"} {
		req := register(t, user, "1")
		cred, err := digest.GetAuthorization(req, "ims.example.org")
		if err != nil || cred == nil {
			t.Fatalf("Authorization: %v", err)
		}
		authz := req.GetHeader("Authorization").Value()
		if impi := impiOf(cred, "sip:"+user+"@ims.example.org"); impi != user+"@ims.example.org" || within(impi, authz) {
			t.Errorf("IMPI %q is a slice of the Authorization header (%v)", impi, within(impi, authz))
		}
		list, _, _, err := s.parseContacts(req)
		if err != nil || len(list) != 1 {
			t.Fatalf("contacts: %v %v", list, err)
		}
		c := list[0].c
		if c.Instance != "<urn:gsma:imei:35209900-176148-1>" || c.RegID != "1" || c.Q != "0.5" {
			t.Fatalf("contact parameters %q %q %q", c.Instance, c.RegID, c.Q)
		}
		params := req.Contact().Params // slices of the Contact line
		for name, v := range map[string]string{"+sip.instance": c.Instance, "reg-id": c.RegID, "q": c.Q} {
			if p, _ := params.Get(name); within(v, p) {
				t.Errorf("the binding's %s is the Contact header's text", name)
			}
		}
		r := &regRequest{req: req, contacts: list}
		next, _, _, path := r.mergeContacts(time.Now())
		if len(next) != 1 || len(path) != 1 {
			t.Fatalf("bindings %d, path %v", len(next), path)
		}
		b := next[0]
		got := []string{b.Path[0], b.VisitedNetwork, b.UserAgent}
		if got[0] != "<sip:term@pcscf.ims.example.org:5060;lr>" || got[1] != "\"visited.example.net\"" || got[2] != "VoLTE-phone/1.0" {
			t.Fatalf("binding fields %q", got)
		}
		for j, h := range []string{"Path", "P-Visited-Network-ID", "User-Agent"} {
			if within(got[j], req.GetHeader(h).Value()) {
				t.Errorf("%s of the binding is the REGISTER's header text", h)
			}
		}
		if i == 0 {
			first = got
			continue
		}
		for j := range got {
			if unsafe.StringData(got[j]) != unsafe.StringData(first[j]) {
				t.Errorf("%q: each registration holds its own copy", got[j])
			}
		}
	}
}
