package e2e

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/reginfo"
)

// sipEndpoint is a Go SIP element on 127.0.0.1 (UDP): it sends requests
// with its client and answers every NOTIFY and REGISTER it receives with
// 200, recording them (a UE's NOTIFY receiver, or a registrar AS).
type sipEndpoint struct {
	client *sipgo.Client
	port   int
	got    chan *sip.Request
}

func newSIPEndpoint(t *testing.T) *sipEndpoint {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	c, err := sipgo.NewClient(ua)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e := &sipEndpoint{client: c, port: conn.LocalAddr().(*net.UDPAddr).Port, got: make(chan *sip.Request, 64)}
	record := func(req *sip.Request, tx sip.ServerTransaction) {
		select {
		case e.got <- req.Clone():
		default:
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	}
	srv.OnNotify(record)
	srv.OnRegister(record)
	go func() { _ = srv.ServeUDP(conn) }()
	t.Cleanup(func() { _ = srv.Close(); _ = ua.Close(); conn.Close() })
	return e
}

func (e *sipEndpoint) uri() string { return fmt.Sprintf("sip:127.0.0.1:%d", e.port) }

// next returns the next recorded request of method, failing after within.
func (e *sipEndpoint) next(t *testing.T, method sip.RequestMethod, within time.Duration) *sip.Request {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case r := <-e.got:
			if r.Method == method {
				return r
			}
		case <-deadline:
			t.Fatalf("no %s within %v", method, within)
			return nil
		}
	}
}

// none fails if a request of method arrives within d.
func (e *sipEndpoint) none(t *testing.T, method sip.RequestMethod, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case r := <-e.got:
			if r.Method == method {
				t.Fatalf("unexpected %s:\n%s", method, r)
			}
		case <-deadline:
			return
		}
	}
}

// do sends a request parsed from raw (no Via: the client adds it) to
// 127.0.0.1:port and returns the final answer.
func (e *sipEndpoint) do(t *testing.T, raw string, port int) *sip.Response {
	t.Helper()
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	req := m.(*sip.Request)
	req.SetDestination(fmt.Sprintf("127.0.0.1:%d", port))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := e.client.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Method, err)
	}
	return res
}

// md5RegisterExpires registers (or with expires 0 de-registers) the
// contact sip:user@127.0.0.1:contactPort of user through the I-CSCF with
// MD5 digest and returns the final answer to the authenticated REGISTER.
func (l *lab) md5RegisterExpires(t *testing.T, e *sipEndpoint, user, password string, contactPort, expires int) *sip.Response {
	t.Helper()
	impi := user + "@" + domain
	callID := sip.GenerateTagN(16)
	send := func(cseq int, authz string) *sip.Response {
		return e.do(t, fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\n"+
			"Max-Forwards: 70\r\n"+
			"From: <sip:%s>;tag=%s\r\n"+
			"To: <sip:%s>\r\n"+
			"Call-ID: %s\r\n"+
			"CSeq: %d REGISTER\r\n"+
			"Contact: <sip:%s@127.0.0.1:%d>\r\n"+
			"Expires: %d\r\n"+
			"Authorization: %s\r\n"+
			"Content-Length: 0\r\n\r\n",
			domain, impi, sip.GenerateTagN(8), impi, callID, cseq, user, contactPort, expires, authz), l.icscf)
	}
	res := send(1, fmt.Sprintf(`Digest username="%s", realm="%s", uri="sip:%s", nonce="", response=""`, impi, domain, domain))
	ch, err := digest.GetWWWAuthenticate(res)
	if res.StatusCode != 401 || err != nil || ch == nil {
		t.Fatalf("REGISTER %s: want 401, got %d %s (%v)", user, res.StatusCode, res.Reason, err)
	}
	uri := "sip:" + domain
	ha1 := digest.HA1(impi, ch.Realm(), password)
	resp := digest.Response(ha1, "REGISTER", uri, ch.Nonce(), "00000001", "0a4f113b", "auth")
	return send(2, fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, qop=auth, nc=00000001, cnonce="0a4f113b"`,
		impi, ch.Realm(), ch.Nonce(), uri, resp))
}

// subscribeReg sends an initial SUBSCRIBE Event: reg for impu to the
// S-CSCF the way a P-CSCF forwards a UE's: Route = the Service-Route,
// P-Asserted-Identity = pai, Contact = the endpoint.
func (l *lab) subscribeReg(t *testing.T, e *sipEndpoint, impu, pai string) *sip.Response {
	t.Helper()
	return e.do(t, fmt.Sprintf("SUBSCRIBE %s SIP/2.0\r\n"+
		"Max-Forwards: 70\r\n"+
		"Route: <sip:orig@127.0.0.1:%d;lr>\r\n"+
		"From: <%s>;tag=%s\r\n"+
		"To: <%s>\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: 1 SUBSCRIBE\r\n"+
		"Contact: <sip:ue@127.0.0.1:%d>\r\n"+
		"P-Asserted-Identity: <%s>\r\n"+
		"Event: reg\r\n"+
		"Accept: application/reginfo+xml\r\n"+
		"Expires: 600\r\n"+
		"Content-Length: 0\r\n\r\n",
		impu, l.scscf, pai, sip.GenerateTagN(8), impu, sip.GenerateTagN(16), e.port, pai), l.scscf)
}

// notifyReginfo checks a reg-event NOTIFY's headers and parses its body.
func notifyReginfo(t *testing.T, n *sip.Request, callID, wantSubState string) *reginfo.Reginfo {
	t.Helper()
	if got := n.CallID().Value(); got != callID {
		t.Errorf("NOTIFY Call-ID %q, want the SUBSCRIBE's %q", got, callID)
	}
	if ev := hdrOf(n, "Event"); !strings.HasPrefix(ev, "reg") {
		t.Errorf("NOTIFY Event %q", ev)
	}
	if ss := hdrOf(n, "Subscription-State"); !strings.HasPrefix(ss, wantSubState) {
		t.Errorf("NOTIFY Subscription-State %q, want %s…", ss, wantSubState)
	}
	if ct := n.ContentType(); ct == nil || !strings.HasPrefix(ct.Value(), reginfo.ContentType) {
		t.Fatalf("NOTIFY Content-Type %v:\n%s", ct, n)
	}
	doc, err := reginfo.Parse(n.Body())
	if err != nil {
		t.Fatalf("reginfo.Parse: %v\n%s", err, n.Body())
	}
	return doc
}

// findReg returns the registration of aor in doc.
func findReg(t *testing.T, doc *reginfo.Reginfo, aor string) reginfo.Registration {
	t.Helper()
	for _, r := range doc.Registrations {
		if r.AOR == aor {
			return r
		}
	}
	t.Fatalf("no registration of %s in %+v", aor, doc)
	return reginfo.Registration{}
}

func findContact(r reginfo.Registration, uri string) (reginfo.Contact, bool) {
	for _, c := range r.Contacts {
		if c.URI == uri {
			return c, true
		}
	}
	return reginfo.Contact{}, false
}

// TestRegEvent subscribes to the reg event (RFC 3680, TS 24.229 §5.4.2.1)
// of an MD5 user registered through I-CSCF → S-CSCF (real binaries), and
// follows its registration and de-registration in the NOTIFYs.
func TestRegEvent(t *testing.T) {
	l := newLab(t)
	l.addMD5("alice", "pw-alice")
	l.addMD5("mallory", "pw-mallory")
	alice, mallory := "sip:alice@"+domain, "sip:mallory@"+domain
	ue := newSIPEndpoint(t)
	contactPort := freePort(t)
	contact := fmt.Sprintf("sip:alice@127.0.0.1:%d", contactPort)
	if res := l.md5RegisterExpires(t, ue, "alice", "pw-alice", contactPort, 600); res.StatusCode != 200 {
		t.Fatalf("registration: %d %s", res.StatusCode, res.Reason)
	}
	l.md5Register(t, "mallory", "pw-mallory", freePort(t))

	t.Run("another user's identity gets 403", func(t *testing.T) {
		spy := newSIPEndpoint(t)
		res := l.subscribeReg(t, spy, alice, mallory)
		if res.StatusCode != 403 {
			t.Fatalf("SUBSCRIBE for alice as mallory: %d %s", res.StatusCode, res.Reason)
		}
		spy.none(t, sip.NOTIFY, 500*time.Millisecond)
	})

	t.Run("subscribe, registration state, de-registration", func(t *testing.T) {
		before := l.metric("scscf", "scscf_regevent_subscriptions")
		res := l.subscribeReg(t, ue, alice, alice)
		if res.StatusCode != 200 {
			t.Fatalf("SUBSCRIBE: %d %s", res.StatusCode, res.Reason)
		}
		if tag, _ := res.To().Params.Get("tag"); tag == "" {
			t.Error("200 to SUBSCRIBE without To tag")
		}
		callID := res.CallID().Value()
		n := ue.next(t, sip.NOTIFY, 5*time.Second)
		doc := notifyReginfo(t, n, callID, "active")
		if doc.State != reginfo.StateFull {
			t.Errorf("first NOTIFY state %q, want full", doc.State)
		}
		reg := findReg(t, doc, alice)
		if reg.State != reginfo.RegActive {
			t.Errorf("registration state %q, want active", reg.State)
		}
		c, ok := findContact(reg, contact)
		if !ok {
			t.Fatalf("contact %s not in %+v", contact, reg)
		}
		if c.State != reginfo.ContactActive || c.Expires == nil || *c.Expires <= 0 || *c.Expires > 600 {
			t.Errorf("contact %+v", c)
		}
		if after := l.metric("scscf", "scscf_regevent_subscriptions"); after != before+1 {
			t.Errorf("scscf_regevent_subscriptions %v → %v", before, after)
		}
		first := doc.Version

		if res := l.md5RegisterExpires(t, ue, "alice", "pw-alice", contactPort, 0); res.StatusCode != 200 {
			t.Fatalf("de-registration: %d %s", res.StatusCode, res.Reason)
		}
		n = ue.next(t, sip.NOTIFY, 5*time.Second)
		doc = notifyReginfo(t, n, callID, "terminated")
		if doc.Version <= first {
			t.Errorf("version %d after %d", doc.Version, first)
		}
		reg = findReg(t, doc, alice)
		if reg.State != reginfo.RegTerminated {
			t.Errorf("registration state after de-registration %q, want terminated", reg.State)
		}
		c, ok = findContact(reg, contact)
		if !ok || c.State != reginfo.ContactTerminated || c.Event != reginfo.EventUnregistered {
			t.Errorf("contact after de-registration: %+v (found %v)", c, ok)
		}
		if _, ok := l.registrar().find(alice); ok {
			t.Error("alice still registered")
		}
		if after := l.metric("scscf", "scscf_regevent_subscriptions"); after != before {
			t.Errorf("scscf_regevent_subscriptions %v after the terminating NOTIFY, want %v", after, before)
		}
	})
}

// TestRegEventPCSCF has the P-CSCF in front: after a UE registers through
// it the P-CSCF subscribes to the reg event at the S-CSCF; an HSS-initiated
// de-registration (imsctl deregister → RTR) removes the registration at the
// S-CSCF and, through the NOTIFY, the P-CSCF's contact.
func TestRegEventPCSCF(t *testing.T) {
	needSipp(t)
	l := newPCSCFLab(t, freePort(t))
	l.addAKA("ue1")
	impu := "sip:ue1@" + domain
	l.sippAKAPCSCF(t, "ue1", freePort(t), 600)
	l.waitContacts(t, 2*time.Second, "ue1 registered", func(st pcscfStatus) bool { return len(st.flowsOf(impu)) == 1 })
	// The P-CSCF's SUBSCRIBE is sent after the 200; wait for it to be
	// stored at the S-CSCF before the RTR.
	if n := l.waitMetric("scscf", "scscf_regevent_subscriptions", 5*time.Second, func(v float64) bool { return v >= 1 }); n < 1 {
		t.Fatal("the P-CSCF did not subscribe to the reg event within 5s")
	}
	okBefore := l.metric("scscf", `scscf_regevent_notifies_total{result="ok"}`)

	l.imsctl("deregister", impu, "--reason", "e2e")
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ok := l.registrar().find(impu); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ue1 still registered at the S-CSCF 5s after imsctl deregister: %+v", l.registrar())
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := l.waitContacts(t, 5*time.Second, "ue1 gone after RTR", func(st pcscfStatus) bool { return len(st.flowsOf(impu)) == 0 })
	for _, c := range st.Contacts {
		if c.AOR == impu || slices.Contains(c.IMPUs, impu) {
			t.Errorf("P-CSCF still has a contact for %s: %+v", impu, c)
		}
	}
	// The S-CSCF counts the NOTIFY when the 200 comes back, which can be
	// just after the P-CSCF dropped the contact.
	notified := func(v float64) bool { return v > okBefore }
	if after := l.waitMetric("scscf", `scscf_regevent_notifies_total{result="ok"}`, 5*time.Second, notified); after <= okBefore {
		t.Errorf("no NOTIFY answered 200 after the RTR (ok %v → %v)", okBefore, after)
	}
	if n := l.waitMetric("scscf", "scscf_regevent_subscriptions", 5*time.Second, func(v float64) bool { return v == 0 }); n != 0 {
		t.Errorf("scscf_regevent_subscriptions %v after the RTR, want 0", n)
	}
}
