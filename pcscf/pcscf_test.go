package pcscf

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/pgtest"
)

func message(ue *udpPeer, pc, callID, extra string) {
	ue.send(pc, fmt.Sprintf(`
MESSAGE sip:bob@ims.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:%[1]d;branch=z9hG4bK%[2]s;rport
Max-Forwards: 70
From: <sip:alice@ims.test>;tag=m1
To: <sip:bob@ims.test>
Call-ID: %[2]s
CSeq: 1 MESSAGE
%[3]sContent-Type: text/plain
Content-Length: 2

hi`, ue.port(), callID, extra))
}

func hdr(m sip.Message, name string) string {
	return strings.Join(imsheader.Values(m, name), ", ")
}

func TestRegisterOriginatingTerminating(t *testing.T) {
	core := newPeer(t, "")
	p := startPCSCF(t, core, nil)
	ue := newPeer(t, "")
	pc := p.addr()

	register(ue, pc, "reg1", 1, 600, "Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1111;spi-s=2222;port-c=31000;port-s=31001\nRequire: sec-agree\nProxy-Require: sec-agree\n")
	req := coreAnswerRegister(t, core, true)
	wantPath := fmt.Sprintf("<sip:term@%s;lr>", pc)
	if got := hdr(req, "Path"); got != wantPath {
		t.Errorf("Path %q, want %q", got, wantPath)
	}
	if got := hdr(req, "Require"); got != "path" {
		t.Errorf("Require %q", got)
	}
	if hdr(req, "Proxy-Require") != "" || hdr(req, "Security-Client") != "" {
		t.Errorf("sec-agree leftovers: %q %q", hdr(req, "Proxy-Require"), hdr(req, "Security-Client"))
	}
	if got := hdr(req, "Supported"); !strings.Contains(got, "path") {
		t.Errorf("Supported %q", got)
	}
	if got := hdr(req, "P-Visited-Network-ID"); got != testDomain {
		t.Errorf("P-Visited-Network-ID %q", got)
	}
	if got := hdr(req, "P-Charging-Vector"); !strings.HasPrefix(got, "icid-value=") || !strings.Contains(got, "orig-ioi=ims.test") {
		t.Errorf("P-Charging-Vector %q", got)
	}
	if got := hdr(req, "Authorization"); !strings.Contains(got, `username="alice@ims.test"`) || !strings.Contains(got, `integrity-protected="no"`) {
		t.Errorf("Authorization %q", got)
	}
	res := ue.nextResponse(5 * time.Second)
	if res.StatusCode != 401 {
		t.Fatalf("UE got %d", res.StatusCode)
	}
	if w := hdr(res, "WWW-Authenticate"); strings.Contains(w, "ik=") || strings.Contains(w, "ck=") || !strings.Contains(w, "nonce=") {
		t.Errorf("401 to the UE: %q", w)
	}
	if hdr(res, "Security-Server") != "" {
		t.Error("Security-Server with --ipsec off")
	}
	register(ue, pc, "reg1", 2, 600, `Authorization: Digest username="alice@ims.test", realm="ims.test", nonce="x", uri="sip:ims.test", response="0123456789abcdef0123456789abcdef"`+"\n")
	req = coreAnswerRegister(t, core, true)
	if got := hdr(req, "Authorization"); !strings.Contains(got, `integrity-protected="no"`) || !strings.Contains(got, `response="0123`) {
		t.Errorf("Authorization %q", got)
	}
	if res := ue.nextResponse(5 * time.Second); res.StatusCode != 200 {
		t.Fatalf("UE got %d", res.StatusCode)
	}
	st := p.Status()
	if len(st.Contacts) != 1 || st.IMPUs != 2 || st.Contacts[0].IMPUs[0] != "sip:alice@ims.test" {
		t.Fatalf("status %+v", st)
	}
	// The reg-event SUBSCRIBE reaches the S-CSCF stand-in; refusing it is fine.
	sub := core.nextRequest(5 * time.Second)
	if sub.Method != sip.SUBSCRIBE || hdr(sub, "Event") != "reg" || sub.Recipient.String() != "sip:alice@ims.test" {
		t.Fatalf("expected reg SUBSCRIBE, got %s %s", sub.Method, sub.Recipient.String())
	}
	core.respond(sub, 489, "Bad Event")

	// Unregistered UE: 403.
	ue2 := newPeer(t, "")
	message(ue2, pc, "m-unreg", "")
	if r := ue2.nextResponse(5 * time.Second); r.StatusCode != 403 {
		t.Fatalf("unregistered MESSAGE: %d", r.StatusCode)
	}
	ue2.send(pc, fmt.Sprintf(`
INVITE sip:bob@ims.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKinv1;rport
Max-Forwards: 70
From: <sip:alice@ims.test>;tag=i1
To: <sip:bob@ims.test>
Call-ID: inv-unreg
CSeq: 1 INVITE
Contact: <sip:alice@127.0.0.1:%d>
Content-Length: 0

`, ue2.port(), ue2.port()))
	if r := ue2.nextResponse(5 * time.Second); r.StatusCode != 403 {
		t.Fatalf("unregistered INVITE: %d", r.StatusCode)
	}

	// Spoofed P-Asserted-Identity is replaced by the default IMPU.
	message(ue, pc, "m-spoof", "P-Asserted-Identity: <sip:boss@ims.test>\nRoute: <sip:evil@10.9.9.9;lr>\n")
	m := core.nextRequest(5 * time.Second)
	if got := hdr(m, "P-Asserted-Identity"); got != "<sip:alice@ims.test>" {
		t.Errorf("PAI %q", got)
	}
	if got := hdr(m, "Route"); !strings.Contains(got, fmt.Sprintf("sip:orig@127.0.0.1:%d;lr", core.port())) || strings.Contains(got, "evil") {
		t.Errorf("Route %q", got)
	}
	if hdr(m, "P-Charging-Vector") == "" {
		t.Error("no P-Charging-Vector")
	}
	core.respond(m, 200, "OK")
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("MESSAGE answer %d", r.StatusCode)
	}
	// A preferred identity from the set is asserted; one outside is not.
	message(ue, pc, "m-ppi", "P-Preferred-Identity: <tel:+15550001>\n")
	m = core.nextRequest(5 * time.Second)
	if got := hdr(m, "P-Asserted-Identity"); got != "<tel:+15550001>" || hdr(m, "P-Preferred-Identity") != "" {
		t.Errorf("PAI %q PPI %q", got, hdr(m, "P-Preferred-Identity"))
	}
	core.respond(m, 200, "OK")
	ue.nextResponse(5 * time.Second)
	message(ue, pc, "m-ppi2", "P-Preferred-Identity: <sip:boss@ims.test>\n")
	m = core.nextRequest(5 * time.Second)
	if got := hdr(m, "P-Asserted-Identity"); got != "<sip:alice@ims.test>" {
		t.Errorf("PAI %q", got)
	}
	core.respond(m, 200, "OK")
	ue.nextResponse(5 * time.Second)

	// Terminating: the core sends to the contact with our Path as Route.
	tm := coreMessageToUE(core, ue, pc, "term1", "")
	if tm.CallID().Value() != "term1" || hdr(tm, "Route") != "" {
		t.Fatalf("UE got %s route %q", tm.CallID().Value(), hdr(tm, "Route"))
	}
	if got := hdr(tm, "P-Asserted-Identity"); got != "<sip:bob@ims.test>" {
		t.Errorf("terminating request without privacy: PAI %q, want the caller's", got)
	}
	ue.respond(tm, 200, "OK")
	if r := core.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("core got %d", r.StatusCode)
	}
	// Privacy: id (RFC 3325 §7): the asserted identity does not leave the
	// trust domain towards the UE; "none" wins over "id".
	for i, privacy := range []string{"id", "header;id", "id;none"} {
		tm = coreMessageToUE(core, ue, pc, fmt.Sprintf("termpriv%d", i), "Privacy: "+privacy+"\n")
		got, want := hdr(tm, "P-Asserted-Identity"), ""
		if privacy == "id;none" {
			want = "<sip:bob@ims.test>"
		}
		if got != want {
			t.Errorf("Privacy: %s: the UE got P-Asserted-Identity %q, want %q", privacy, got, want)
		}
		ue.respond(tm, 200, "OK")
		if r := core.nextResponse(5 * time.Second); r.StatusCode != 200 {
			t.Fatalf("core got %d", r.StatusCode)
		}
	}

	// De-registration removes the contact.
	register(ue, pc, "reg1", 3, 0, `Authorization: Digest username="alice@ims.test", realm="ims.test", nonce="x", uri="sip:ims.test", response="0123456789abcdef0123456789abcdef"`+"\n")
	coreAnswerRegister(t, core, true)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("de-register %d", r.StatusCode)
	}
	if n := len(p.Status().Contacts); n != 0 {
		t.Fatalf("%d contacts after de-registration", n)
	}
}

func TestContactExpiryAndReload(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	core := newPeer(t, "")
	p := startPCSCF(t, core, func(c *Config) { c.DatabaseURL = dsn })
	ue := newPeer(t, "")
	pc := p.addr()
	// A long registration, and a 1-second one from another UE.
	register(ue, pc, "r1", 1, 600, "")
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	core.respond(core.nextRequest(5*time.Second), 404, "Not Found") // SUBSCRIBE
	ue2 := newPeer(t, "")
	register(ue2, pc, "r2", 1, 1, "")
	coreAnswerRegister(t, core, false)
	if r := ue2.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	core.respond(core.nextRequest(5*time.Second), 404, "Not Found")
	if n := len(p.Status().Contacts); n != 2 {
		t.Fatalf("%d contacts", n)
	}
	time.Sleep(1500 * time.Millisecond)
	if n := len(p.Status().Contacts); n != 1 {
		t.Fatalf("%d contacts after expiry", n)
	}
	message(ue2, pc, "after-expiry", "")
	if r := ue2.nextResponse(5 * time.Second); r.StatusCode != 403 {
		t.Fatalf("expired UE: %d", r.StatusCode)
	}
	// The expiry timer counts the contact in the resettable statistic.
	deadline := time.Now().Add(5 * time.Second)
	for p.Status().ExpiredContacts != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("expired_contacts = %d, want 1", p.Status().ExpiredContacts)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if n := p.ResetExpired(); n != 1 || p.Status().ExpiredContacts != 0 {
		t.Fatalf("ResetExpired = %d, then %d", n, p.Status().ExpiredContacts)
	}
	_ = p.Close()

	// A new P-CSCF on the same database knows the UE without re-registration.
	p2 := startPCSCF(t, core, func(c *Config) { c.DatabaseURL = dsn })
	if n := len(p2.Status().Contacts); n != 1 {
		t.Fatalf("reloaded %d contacts", n)
	}
	message(ue, p2.addr(), "after-restart", "")
	m := core.nextRequest(5 * time.Second)
	if hdr(m, "P-Asserted-Identity") != "<sip:alice@ims.test>" {
		t.Fatalf("after reload PAI %q", hdr(m, "P-Asserted-Identity"))
	}
	core.respond(m, 200, "OK")
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatal(r.StatusCode)
	}
	_ = ctx
}

// TestOverload503ReachesUE: the I-CSCF's overload 503 with Retry-After
// reaches the UE as it is, so that it backs off; a 503 without
// Retry-After is still turned into 500 (RFC 3261 §16.7, §21.5.4).
func TestOverload503ReachesUE(t *testing.T) {
	core := newPeer(t, "")
	p := startPCSCF(t, core, nil)
	ue := newPeer(t, "")
	register(ue, p.addr(), "ovl-1", 1, 600, "")
	core.respond(core.nextRequest(5*time.Second), 503, "Service Unavailable", sip.NewHeader("Retry-After", "5"))
	r := ue.nextResponse(5 * time.Second)
	if r.StatusCode != 503 {
		t.Fatalf("UE got %d, want 503", r.StatusCode)
	}
	if ra := r.GetHeader("Retry-After"); ra == nil || ra.Value() != "5" {
		t.Errorf("Retry-After %v, want 5", ra)
	}
	register(ue, p.addr(), "ovl-2", 1, 600, "")
	core.respond(core.nextRequest(5*time.Second), 503, "Service Unavailable")
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 500 {
		t.Fatalf("503 without Retry-After: UE got %d, want 500", r.StatusCode)
	}
	if n := len(p.Status().Contacts); n != 0 {
		t.Errorf("%d contacts after refused registrations", n)
	}
}
