package isc_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/siptest"
	"github.com/imscore/imscore/scscf"
	"github.com/imscore/imscore/scscf/internal/scscftest"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
)

// sipElement is a SIP element of a test built on pkg/sipproxy: a UE
// (answering as a UAS and sending as a UAC) or an application server
// (Record-Routing and proxying along the Route, like a B2BUA-less AS).
type sipElement struct {
	p    *sipproxy.Proxy
	mu   sync.Mutex
	got  []*sip.Request
	seen chan *sip.Request
	// canceled counts INVITEs the UAS saw CANCELed.
	canceled atomic.Int32
}

func (e *sipElement) record(r *sip.Request) {
	e.mu.Lock()
	e.got = append(e.got, r.Clone())
	e.mu.Unlock()
	select {
	case e.seen <- r.Clone():
	default:
	}
}

func (e *sipElement) requests(m sip.RequestMethod) []*sip.Request {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*sip.Request
	for _, r := range e.got {
		if r.Method == m {
			out = append(out, r)
		}
	}
	return out
}

func (e *sipElement) addr() string { return e.p.Addr("udp").String() }

func newElement(t *testing.T, name string, h func(e *sipElement, ctx context.Context, tx *sipproxy.Txn)) *sipElement {
	t.Helper()
	e := &sipElement{seen: make(chan *sip.Request, 100)}
	p, err := sipproxy.New(sipproxy.Config{ListenAddr: "127.0.0.1:0", Logger: siptest.Logger(t).Named(name),
		Handler: func(ctx context.Context, tx *sipproxy.Txn) {
			e.record(tx.Request())
			h(e, ctx, tx)
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	e.p = p
	return e
}

// newUAS answers INVITE with 180 then (after delay) 200 with a To tag and
// Contact, and every other request 200.
func newUAS(t *testing.T, name string, delay time.Duration) *sipElement {
	return newElement(t, name, func(e *sipElement, ctx context.Context, tx *sipproxy.Txn) {
		req := tx.Request()
		if req.IsAck() {
			return
		}
		tag := "uas-" + name
		withTag := func(res *sip.Response) *sip.Response {
			if to := res.To(); to != nil {
				nt := &sip.ToHeader{DisplayName: to.DisplayName, Address: to.Address, Params: to.Params.Clone()}
				if _, ok := nt.Params.Get("tag"); !ok {
					nt.Params.Add("tag", tag)
				}
				res.ReplaceHeader(nt)
			}
			return res
		}
		if req.IsInvite() {
			_ = tx.Relay(withTag(tx.NewResponse(180, "Ringing")))
			select {
			case <-time.After(delay):
			case <-ctx.Done():
				if tx.Canceled() {
					e.canceled.Add(1)
				}
				return
			}
			res := withTag(tx.NewResponse(200, "OK", sip.NewHeader("Contact", "<sip:"+name+"@"+e.addr()+">")))
			_ = tx.Relay(res)
			return
		}
		_ = tx.Relay(withTag(tx.NewResponse(200, "OK")))
	})
}

// newTestAS is an AS that Record-Routes and proxies the request on along
// its Route (the S-CSCF's ODI entry).
func newTestAS(t *testing.T, name string) *sipElement {
	return newElement(t, name, func(e *sipElement, ctx context.Context, tx *sipproxy.Txn) {
		_, _ = tx.Forward(ctx, sipproxy.ForwardOptions{RecordRoute: tx.Request().IsInvite()})
	})
}

// silentAS is a UDP socket that reads and never answers.
func silentAS(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		b := make([]byte, 65535)
		for {
			if _, _, err := c.ReadFrom(b); err != nil {
				return
			}
		}
	}()
	return c.LocalAddr().String()
}

func asIFC(prio int, server string, handling userdata.DefaultHandling, sc userdata.SessionCase) userdata.InitialFilterCriteria {
	return asIFCMethod(prio, server, handling, sc, "INVITE")
}

// asIFCMethod is asIFC for requests of method m.
func asIFCMethod(prio int, server string, handling userdata.DefaultHandling, sc userdata.SessionCase, m string) userdata.InitialFilterCriteria {
	scv := sc
	return userdata.InitialFilterCriteria{Priority: prio,
		TriggerPoint: &userdata.TriggerPoint{ConditionTypeCNF: true, SPTs: []userdata.SPT{
			{Groups: []uint32{0}, Method: &m}, {Groups: []uint32{1}, SessionCase: &scv}}},
		ApplicationServer: userdata.ApplicationServer{ServerName: server, DefaultHandling: &handling}}
}

// sessionLab is an S-CSCF (its --icscf pointing at itself, so that the
// terminating half runs in the same server) with a scripted HSS.
type sessionLab struct {
	hss    *scscftest.HSS
	s      *scscf.Server
	caller *sipElement // UAC side of alice
}

func newSessionLab(t *testing.T, mod func(*scscf.Config)) *sessionLab {
	t.Helper()
	h := scscftest.NewHSS(t)
	addr := scscftest.FreeAddr(t)
	s := scscftest.NewServer(t, h, "", func(c *scscf.Config) {
		c.SIPListen = addr
		c.ICSCF = "sip:" + addr
		c.ASTimeout = 500 * time.Millisecond
		if mod != nil {
			mod(c)
		}
	})
	l := &sessionLab{hss: h, s: s}
	l.caller = newElement(t, "caller", func(e *sipElement, ctx context.Context, tx *sipproxy.Txn) {
		if !tx.Request().IsAck() {
			_ = tx.Respond(200, "OK")
		}
	})
	return l
}

// addUser provisions user in the HSS and, when uas is not nil, registers
// its contact.
func (l *sessionLab) addUser(t *testing.T, user string, uas *sipElement, ifcs ...userdata.InitialFilterCriteria) {
	t.Helper()
	impu := "sip:" + user + "@" + scscftest.Domain
	l.hss.Add(&scscftest.Sub{IMPI: user + "@" + scscftest.Domain, IMPUs: []string{impu}, Scheme: "aka", IFCs: ifcs})
	if uas == nil {
		return
	}
	ue := scscftest.NewUE(t, user)
	ue.Contact = "<sip:" + user + "@" + uas.addr() + ">"
	ue.RegisterAKA(t, l.s, 600)
}

// send sends an initial request from alice's phone as a P-CSCF would: Route
// = Service-Route (orig), P-Asserted-Identity.
func (l *sessionLab) send(t *testing.T, method sip.RequestMethod, to string, pai string, extra ...sip.Header) (*sip.Response, *sip.Request) {
	t.Helper()
	return l.sendRoute(t, method, to, l.s.ServiceRoute(), pai, extra...)
}

// sendRoute is send with route as the Route header.
func (l *sessionLab) sendRoute(t *testing.T, method sip.RequestMethod, to, route, pai string, extra ...sip.Header) (*sip.Response, *sip.Request) {
	t.Helper()
	var ru sip.Uri
	if err := sip.ParseUri(to, &ru); err != nil {
		t.Fatal(err)
	}
	req := sip.NewRequest(method, ru)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: scscftest.Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: ru, Params: sip.NewParams()})
	req.AppendHeader(sip.NewHeader("Route", "<"+route+">"))
	req.AppendHeader(sip.NewHeader("Contact", "<sip:alice@"+l.caller.addr()+">"))
	if pai != "" {
		req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<"+pai+">"))
	}
	for _, h := range extra {
		req.AppendHeader(h)
	}
	if method == sip.MESSAGE {
		req.AppendHeader(sip.NewHeader("Content-Type", "text/plain"))
		req.SetBody([]byte("hello"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := l.caller.p.Do(ctx, req, sipproxy.Target{})
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	return res, req
}

func alice() string { return "sip:alice@" + scscftest.Domain }
func bob() string   { return "sip:bob@" + scscftest.Domain }

// ackAndBye completes a call answered by res: ACK and BYE along the
// Record-Route of the 2xx.
func (l *sessionLab) ackAndBye(t *testing.T, invite *sip.Request, res *sip.Response) *sip.Response {
	t.Helper()
	var routes []string
	rrs := res.GetHeaders("Record-Route")
	for _, h := range rrs {
		routes = append(routes, h.Value())
	}
	contact := res.Contact()
	if contact == nil {
		t.Fatalf("2xx without Contact:\n%s", res)
	}
	mk := func(m sip.RequestMethod, cseq uint32) *sip.Request {
		r := sip.NewRequest(m, *contact.Address.Clone())
		r.AppendHeader(sip.HeaderClone(invite.From()))
		r.AppendHeader(sip.HeaderClone(res.To()))
		r.AppendHeader(sip.HeaderClone(invite.CallID()))
		r.AppendHeader(&sip.CSeqHeader{SeqNo: cseq, MethodName: m})
		for _, rt := range routes { // UAC route set: Record-Route as received
			r.AppendHeader(sip.NewHeader("Route", rt))
		}
		return r
	}
	ack := mk(sip.ACK, invite.CSeq().SeqNo)
	if err := l.caller.p.Send(ack, sipproxy.Target{}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bye, err := l.caller.p.Do(ctx, mk(sip.BYE, invite.CSeq().SeqNo+1), sipproxy.Target{})
	if err != nil {
		t.Fatal(err)
	}
	return bye
}

func TestSessionOriginatingToRegistered(t *testing.T) {
	l := newSessionLab(t, nil)
	uasA := newUAS(t, "alice", 0)
	uasB := newUAS(t, "bob", 50*time.Millisecond)
	l.addUser(t, "alice", uasA)
	l.addUser(t, "bob", uasB)

	res, inv := l.send(t, sip.INVITE, bob(), alice())
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d %s", res.StatusCode, res.Reason)
	}
	if len(res.GetHeaders("Record-Route")) < 2 {
		t.Errorf("2xx Record-Route should hold the S-CSCF (orig and term): %v", res.GetHeaders("Record-Route"))
	}
	got := uasB.requests(sip.INVITE)
	if len(got) != 1 {
		t.Fatalf("bob got %d INVITEs", len(got))
	}
	if v := hdr2(got[0], "P-Called-Party-ID"); v != "<"+bob()+">" {
		t.Errorf("P-Called-Party-ID %q", v)
	}
	if got[0].Recipient.Host != "127.0.0.1" {
		t.Errorf("Request-URI not retargeted to the contact: %s", got[0].Recipient.String())
	}
	if hdr2(got[0], "P-Served-User") != "" {
		t.Error("P-Served-User leaked to the UE")
	}
	bye := l.ackAndBye(t, inv, res)
	if bye.StatusCode != 200 {
		t.Fatalf("BYE: %d", bye.StatusCode)
	}
	scscftest.WaitFor(t, "ACK at bob", func() bool { return len(uasB.requests(sip.ACK)) == 1 })
	if n := len(uasB.requests(sip.BYE)); n != 1 {
		t.Errorf("bob got %d BYEs", n)
	}

	t.Run("MESSAGE", func(t *testing.T) {
		res, _ := l.send(t, sip.MESSAGE, bob(), alice())
		if res.StatusCode != 200 {
			t.Fatalf("MESSAGE: %d", res.StatusCode)
		}
		m := uasB.requests(sip.MESSAGE)
		if len(m) != 1 || string(m[0].Body()) != "hello" {
			t.Fatalf("bob's MESSAGEs: %v", m)
		}
	})
	t.Run("originating refusals", func(t *testing.T) {
		for _, c := range []struct{ pai, want string }{
			{"", "Forbidden - no P-Asserted-Identity"},
			{"sip:nobody@" + scscftest.Domain, "Forbidden - originating user not registered"},
		} {
			res, _ := l.send(t, sip.INVITE, bob(), c.pai)
			if res.StatusCode != 403 || res.Reason != c.want {
				t.Errorf("PAI %q: %d %s", c.pai, res.StatusCode, res.Reason)
			}
		}
	})
	t.Run("telephone number as a SIP URI with user=phone", func(t *testing.T) {
		// TS 24.229 §5.4.3.3, RFC 3261 §19.1.6: sip:+15550042@<domain>;user=phone
		// and tel:+1-555-0042 are the IMPU tel:+15550042.
		uasD := newUAS(t, "dave", 0)
		l.hss.Add(&scscftest.Sub{IMPI: "dave@" + scscftest.Domain, Scheme: "aka",
			IMPUs: []string{"sip:dave@" + scscftest.Domain, "tel:+15550042"}})
		ue := scscftest.NewUE(t, "dave")
		ue.Contact = "<sip:dave@" + uasD.addr() + ">"
		ue.RegisterAKA(t, l.s, 600)
		for i, to := range []string{"sip:+15550042@" + scscftest.Domain + ";user=phone", "tel:+1-555-0042"} {
			res, _ := l.send(t, sip.MESSAGE, to, alice())
			if res.StatusCode != 200 {
				t.Errorf("MESSAGE to %s: %d %s", to, res.StatusCode, res.Reason)
				continue
			}
			if n := len(uasD.requests(sip.MESSAGE)); n != i+1 {
				t.Errorf("MESSAGE to %s: dave has %d MESSAGEs, want %d", to, n, i+1)
			}
		}
	})
	t.Run("critical privacy", func(t *testing.T) {
		// RFC 3323 §4.2: privacy marked critical that the core cannot give
		// ("header", "session", "user" need a privacy service) is refused
		// with 500 Privacy Unavailable; "id" is given (the terminating
		// P-CSCF removes P-Asserted-Identity); without "critical" the
		// request goes on.
		for _, c := range []struct {
			privacy string
			want    int
		}{{"header;critical", 500}, {"id;user;critical", 500}, {"id;critical", 200}, {"header", 200}} {
			res, _ := l.send(t, sip.MESSAGE, bob(), alice(), sip.NewHeader("Privacy", c.privacy))
			if res.StatusCode != c.want || (c.want == 500 && res.Reason != "Privacy Unavailable") {
				t.Errorf("Privacy: %s: %d %s, want %d", c.privacy, res.StatusCode, res.Reason, c.want)
			}
		}
	})
	t.Run("other domain without breakout", func(t *testing.T) {
		res, _ := l.send(t, sip.INVITE, "sip:x@example.net", alice())
		if res.StatusCode != 404 {
			t.Errorf("%d %s", res.StatusCode, res.Reason)
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		res, _ := l.send(t, sip.INVITE, "sip:nobody@"+scscftest.Domain, alice())
		if res.StatusCode != 404 {
			t.Errorf("%d %s", res.StatusCode, res.Reason)
		}
	})
	t.Run("known, unregistered, no services", func(t *testing.T) {
		l.addUser(t, "carol", nil)
		res, _ := l.send(t, sip.INVITE, "sip:carol@"+scscftest.Domain, alice())
		if res.StatusCode != 480 {
			t.Errorf("%d %s", res.StatusCode, res.Reason)
		}
		l.hss.WaitSAR(t, 3, time.Second) // UNREGISTERED_USER
	})
}

func TestSessionForkCancelsLoser(t *testing.T) {
	l := newSessionLab(t, nil)
	l.addUser(t, "alice", newUAS(t, "alice", 0))
	fast, slow := newUAS(t, "fast", 50*time.Millisecond), newUAS(t, "slow", 5*time.Second)
	l.hss.Add(&scscftest.Sub{IMPI: "bob@" + scscftest.Domain, IMPUs: []string{bob()}, Scheme: "aka"})
	for i, e := range []*sipElement{fast, slow} {
		ue := scscftest.NewUE(t, "bob")
		ue.Contact = fmt.Sprintf(`<sip:bob@%s>;+sip.instance="<urn:uuid:0000-%d>"`, e.addr(), i)
		ue.RegisterAKA(t, l.s, 600)
	}
	res, _ := l.send(t, sip.INVITE, bob(), alice())
	if res.StatusCode != 200 {
		t.Fatalf("INVITE: %d", res.StatusCode)
	}
	if len(fast.requests(sip.INVITE)) != 1 || len(slow.requests(sip.INVITE)) != 1 {
		t.Fatal("not forked to both contacts")
	}
	scscftest.WaitFor(t, "CANCEL of the slow branch", func() bool { return slow.canceled.Load() == 1 })
	if fast.canceled.Load() != 0 {
		t.Error("the answering branch was CANCELed")
	}
}

func TestSessionISC(t *testing.T) {
	as1, as2 := newTestAS(t, "as1"), newTestAS(t, "as2")
	silent := silentAS(t)
	orig := userdata.SessionCaseOriginating
	cases := []struct {
		name     string
		ifcs     []userdata.InitialFilterCriteria
		want     int
		wantAS   []*sipElement
		warnings bool
	}{
		{"two AS in priority order", []userdata.InitialFilterCriteria{
			asIFC(20, "sip:"+as2.addr(), userdata.SessionContinued, orig),
			asIFC(10, "sip:"+as1.addr(), userdata.SessionContinued, orig)}, 200, []*sipElement{as1, as2}, false},
		{"silent AS, SESSION_CONTINUED", []userdata.InitialFilterCriteria{
			asIFC(10, "sip:"+silent, userdata.SessionContinued, orig),
			asIFC(20, "sip:"+as2.addr(), userdata.SessionContinued, orig)}, 200, []*sipElement{as2}, false},
		{"silent AS, SESSION_TERMINATED", []userdata.InitialFilterCriteria{
			asIFC(10, "sip:"+silent, userdata.SessionTerminated, orig)}, 408, nil, true},
		{"terminating iFC not used for originating", []userdata.InitialFilterCriteria{
			asIFC(10, "sip:"+as1.addr(), userdata.SessionContinued, userdata.SessionCaseTerminatingRegistered)}, 200, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, a := range []*sipElement{as1, as2} {
				a.mu.Lock()
				a.got = nil
				a.mu.Unlock()
			}
			l := newSessionLab(t, nil)
			l.addUser(t, "alice", newUAS(t, "alice", 0), c.ifcs...)
			uasB := newUAS(t, "bob", 0)
			l.addUser(t, "bob", uasB)
			res, _ := l.send(t, sip.INVITE, bob(), alice())
			if res.StatusCode != c.want {
				t.Fatalf("INVITE: %d %s", res.StatusCode, res.Reason)
			}
			if c.warnings && !strings.Contains(scscftest.Hdr(res, "Warning"), silent) {
				t.Errorf("Warning does not name the AS: %q", scscftest.Hdr(res, "Warning"))
			}
			var order []string
			for _, a := range []*sipElement{as1, as2} {
				for _, r := range a.requests(sip.INVITE) {
					order = append(order, a.addr())
					if v := hdr2(r, "P-Served-User"); v != "<"+alice()+">;sescase=orig;regstate=reg" {
						t.Errorf("P-Served-User at AS: %q", v)
					}
					if rt := r.GetHeaders("Route"); len(rt) != 1 || !strings.Contains(rt[0].Value(), "odi-") {
						t.Errorf("Route at AS: %v", rt)
					}
				}
			}
			if len(order) != len(c.wantAS) {
				t.Fatalf("AS visited: %v, want %d", order, len(c.wantAS))
			}
			if c.want == 200 && len(uasB.requests(sip.INVITE)) != 1 {
				t.Error("bob did not get the INVITE")
			}
		})
	}
}

// TestSessionISCSilentASNonInvite: a MESSAGE whose SESSION_TERMINATED AS
// stays silent is answered 504 with a Warning naming the AS, never 408
// (RFC 4320 §4.1: no 408 to a non-INVITE); an INVITE gets 408
// (TestSessionISC).
func TestSessionISCSilentASNonInvite(t *testing.T) {
	silent := silentAS(t)
	l := newSessionLab(t, nil)
	l.addUser(t, "alice", newUAS(t, "alice", 0),
		asIFCMethod(10, "sip:"+silent, userdata.SessionTerminated, userdata.SessionCaseOriginating, "MESSAGE"))
	l.addUser(t, "bob", newUAS(t, "bob", 0))
	res, _ := l.send(t, sip.MESSAGE, bob(), alice())
	if res.StatusCode != 504 {
		t.Fatalf("MESSAGE: %d %s, want 504", res.StatusCode, res.Reason)
	}
	if !strings.Contains(scscftest.Hdr(res, "Warning"), silent) {
		t.Errorf("Warning does not name the AS: %q", scscftest.Hdr(res, "Warning"))
	}
}

func TestSessionTerminatingUnregisteredWithService(t *testing.T) {
	as := newTestAS(t, "vm")
	l := newSessionLab(t, nil)
	l.addUser(t, "alice", newUAS(t, "alice", 0))
	// bob is unregistered; his terminating-unregistered service is an AS
	// that Record-Routes and sends the INVITE back: the S-CSCF then has no
	// contact and answers 480.
	l.addUser(t, "bob", nil, asIFC(5, "sip:"+as.addr(), userdata.SessionContinued, userdata.SessionCaseTerminatingUnregistered))
	res, _ := l.send(t, sip.INVITE, bob(), alice())
	if res.StatusCode != 480 {
		t.Fatalf("INVITE: %d %s", res.StatusCode, res.Reason)
	}
	got := as.requests(sip.INVITE)
	if len(got) != 1 || hdr2(got[0], "P-Served-User") != "<"+bob()+">;sescase=term;regstate=unreg" {
		t.Fatalf("AS requests: %v", got)
	}
}

func hdr2(r *sip.Request, name string) string {
	if h := r.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}
