package sipproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/siptest"
)

// headerLines returns the header lines of a raw SIP message (start line and
// body excluded).
func headerLines(t *testing.T, raw []byte) []string {
	t.Helper()
	head, _, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("no CRLFCRLF in message:\n%s", raw)
	}
	lines := strings.Split(string(head), "\r\n")
	return lines[1:]
}

func hname(line string) string {
	n, _, _ := strings.Cut(line, ":")
	return strings.ToLower(strings.TrimSpace(n))
}

var mayChange = map[string]bool{"via": true, "max-forwards": true, "route": true, "record-route": true}

func TestRegisterForwardedByteForByte(t *testing.T) {
	fixture, err := os.ReadFile("testdata/volte_register.txt")
	if err != nil {
		t.Fatal(err)
	}
	uas := newUAS(t, func(s *sipgo.Server) {
		s.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
			res := sip.NewResponseFromRequest(req, 200, "OK", nil)
			res.AppendHeader(sip.NewHeader("Service-Route", "<sip:orig@scscf.ims.mnc001.mcc001.3gppnetwork.org;lr>"))
			_ = tx.Respond(res)
		})
	})
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		_, _ = tx.Forward(ctx, ForwardOptions{}, uas.target("udp"))
	})

	ue, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ue.Close()
	if _, err := ue.WriteTo(fixture, &net.UDPAddr{IP: p.Addr("udp").IP, Port: p.Addr("udp").Port}); err != nil {
		t.Fatal(err)
	}

	// What the UAS received.
	var got []byte
	select {
	case got = <-uas.raw:
	case <-time.After(5 * time.Second):
		t.Fatal("UAS got nothing")
	}
	want := headerLines(t, fixture)
	have := headerLines(t, got)
	var wantKept, haveKept []string
	for _, l := range want {
		if !mayChange[hname(l)] {
			wantKept = append(wantKept, l)
		}
	}
	vias := 0
	for _, l := range have {
		switch hname(l) {
		case "via":
			vias++
		case "max-forwards":
			if l != "Max-Forwards: 69" {
				t.Errorf("Max-Forwards = %q, want 69", l)
			}
		}
		if !mayChange[hname(l)] {
			haveKept = append(haveKept, l)
		}
	}
	if vias != 2 {
		t.Errorf("UAS saw %d Via, want 2", vias)
	}
	if len(wantKept) != len(haveKept) {
		t.Fatalf("header count: sent %d, received %d\nreceived:\n%s", len(wantKept), len(haveKept), got)
	}
	for i := range wantKept {
		if wantKept[i] != haveKept[i] {
			t.Errorf("header %d changed:\n sent %q\n  got %q", i, wantKept[i], haveKept[i])
		}
	}
	// The values the P-CSCF must never alter, spelled out.
	for _, must := range []string{
		`+sip.instance="<urn:gsma:imei:35614506-034612-0>"`,
		`+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel";audio;video;expires=600000`,
		`Security-Client: ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=3929102;spi-s=3929103;port-c=5062;port-s=5063;prot=esp;mod=trans, ipsec-3gpp;alg=hmac-md5-96`,
		"Path: <sip:term@pcscf.ims.mnc001.mcc001.3gppnetwork.org:5060;lr>",
	} {
		if !bytes.Contains(got, []byte(must)) {
			t.Errorf("forwarded REGISTER lacks %q", must)
		}
	}

	// The 200 relayed back to the UE: one Via, the UE's.
	buf := make([]byte, 65535)
	_ = ue.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := ue.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sip.ParseMessage(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	res, ok := msg.(*sip.Response)
	if !ok || res.StatusCode != 200 {
		t.Fatalf("UE got %s", buf[:n])
	}
	if vs := res.GetHeaders("Via"); len(vs) != 1 || !strings.Contains(vs[0].Value(), "branch=z9hG4bK-524287-1---5f0c1b2e3d4a5b6c") {
		t.Errorf("response Via = %v", vs)
	}
	if res.GetHeader("Service-Route") == nil {
		t.Error("Service-Route lost on the way back")
	}
}

func TestRegisterUDPAndTCP(t *testing.T) {
	for _, tc := range []struct{ in, out string }{{"udp", "udp"}, {"tcp", "tcp"}, {"udp", "tcp"}, {"tcp", "udp"}} {
		t.Run(tc.in+"-"+tc.out, func(t *testing.T) {
			var seenTransport atomic.Value
			uas := newUAS(t, func(s *sipgo.Server) {
				s.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
					seenTransport.Store(req.Transport())
					_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
				})
			})
			p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
				_, _ = tx.Forward(ctx, ForwardOptions{}, uas.target(tc.out))
			})
			c := newClient(t)
			res := doReq(t, c, proxyReq(sip.REGISTER, p, tc.in, ""))
			if res.StatusCode != 200 {
				t.Fatalf("got %d", res.StatusCode)
			}
			if got := seenTransport.Load(); got != strings.ToUpper(tc.out) {
				t.Errorf("UAS transport %v, want %s", got, tc.out)
			}
		})
	}
}

func TestMaxForwardsZero(t *testing.T) {
	var reached atomic.Bool
	uas := newUAS(t, func(s *sipgo.Server) {
		s.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
			reached.Store(true)
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
	})
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		_, _ = tx.Forward(ctx, ForwardOptions{}, uas.target("udp"))
	})
	c := newClient(t)
	req := proxyReq(sip.OPTIONS, p, "udp", "bob")
	mf := sip.MaxForwardsHeader(0)
	req.AppendHeader(&mf)
	res := doReq(t, c, req)
	if res.StatusCode != 483 || res.Reason != "Too Many Hops" {
		t.Fatalf("got %d %s", res.StatusCode, res.Reason)
	}
	if reached.Load() {
		t.Error("request with Max-Forwards 0 was forwarded")
	}
}

func TestMalformedGets400(t *testing.T) {
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) { _ = tx.Respond(200, "OK") })
	ue, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ue.Close()
	raw := "OPTIONS sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:" + portStr(ue.LocalAddr().(*net.UDPAddr).Port) +
		";branch=z9hG4bKbad1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:bob@b>\r\nCall-ID: bad1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	a := p.Addr("udp")
	if _, err := ue.WriteTo([]byte(raw), &net.UDPAddr{IP: a.IP, Port: a.Port}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	_ = ue.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := ue.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf[:n], []byte("SIP/2.0 400 Bad Request (CSeq method")) {
		t.Fatalf("got %s", buf[:n])
	}
}

func TestLooseRoutingAndRecordRoute(t *testing.T) {
	uas, got := newRecordingUAS(t)
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		// No target: next hop is the remaining Route.
		_, _ = tx.Forward(ctx, ForwardOptions{RecordRoute: true})
	})
	c := newClient(t)
	req := proxyReq(sip.MESSAGE, p, "udp", "bob")
	req.Recipient = sip.Uri{Scheme: "sip", User: "bob", Host: "ims.example.org"}
	req = withRoutes(t, p, req, "<sip:127.0.0.1:"+portStr(p.Addr("udp").Port)+";lr>", "<sip:127.0.0.1:"+portStr(uas.udp.Port)+";lr>")
	res := doReq(t, c, req)
	if res.StatusCode != 200 {
		t.Fatalf("got %d", res.StatusCode)
	}
	r := <-got
	routes := r.GetHeaders("Route")
	if len(routes) != 1 || !strings.Contains(routes[0].Value(), portStr(uas.udp.Port)) {
		t.Errorf("UAS Route = %v, want only the UAS entry", routes)
	}
	rr := r.GetHeaders("Record-Route")
	want := "<sip:127.0.0.1:" + portStr(p.Addr("udp").Port) + ";transport=udp;lr>"
	if len(rr) != 1 || rr[0].Value() != want {
		t.Errorf("Record-Route = %v, want %s", rr, want)
	}
	if r.Recipient.Host != "ims.example.org" {
		t.Errorf("Request-URI changed to %s", r.Recipient.String())
	}
}

// dialogHandler routes initial requests to the UAS with Record-Route and
// in-dialog requests by their Route/Request-URI.
func dialogHandler(uas *testUAS, transport string) Handler {
	return func(ctx context.Context, tx *Txn) {
		if tag, _ := tx.Request().To().Params.Get("tag"); tag != "" {
			_, _ = tx.Forward(ctx, ForwardOptions{})
			return
		}
		_, _ = tx.Forward(ctx, ForwardOptions{RecordRoute: true}, uas.target(transport))
	}
}

func TestInviteAckBye(t *testing.T) {
	for _, tp := range []string{"udp", "tcp"} {
		t.Run(tp, func(t *testing.T) {
			acks := make(chan *sip.Request, 1)
			byes := make(chan *sip.Request, 1)
			uasPort := make(chan int, 1)
			uas := newUAS(t, func(s *sipgo.Server) {
				s.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
					_ = tx.Respond(sip.NewResponseFromRequest(req, 180, "Ringing", nil))
					time.Sleep(50 * time.Millisecond)
					res := sip.NewResponseFromRequest(req, 200, "OK", []byte("v=0\r\n"))
					port := <-uasPort
					res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: port, UriParams: tpParams(tp)}})
					_ = tx.Respond(res)
				})
				s.OnAck(func(req *sip.Request, tx sip.ServerTransaction) { acks <- req })
				s.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
					byes <- req
					_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
				})
			})
			uasPort <- uas.port(tp)
			p := newTestProxy(t, dialogHandler(uas, tp))
			c := newClient(t)
			inv := proxyReq(sip.INVITE, p, tp, "bob")
			inv.SetBody([]byte("v=0\r\n"))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ctx2 := context.Background()
			tx, err := c.TransactionRequest(ctx2, inv)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Terminate()
			var codes []int
			var final *sip.Response
			for final == nil {
				select {
				case r := <-tx.Responses():
					codes = append(codes, r.StatusCode)
					if r.StatusCode >= 200 {
						final = r
					}
				case <-ctx.Done():
					t.Fatalf("no final response, got %v", codes)
				}
			}
			if final.StatusCode != 200 || !containsInt(codes, 180) {
				t.Fatalf("responses %v", codes)
			}
			rr := final.GetHeaders("Record-Route")
			if len(rr) != 1 {
				t.Fatalf("200 OK Record-Route = %v", rr)
			}
			// ACK and BYE along the route set (RFC 3261 §12.2).
			contact := final.Contact().Address
			mk := func(m sip.RequestMethod, seq uint32) *sip.Request {
				r := sip.NewRequest(m, contact)
				r.AppendHeader(&sip.RouteHeader{Address: rr[0].(*sip.RecordRouteHeader).Address})
				r.AppendHeader(sip.HeaderClone(inv.From()))
				r.AppendHeader(sip.HeaderClone(final.To()))
				r.AppendHeader(sip.HeaderClone(inv.CallID()))
				r.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: m})
				r.SetBody(nil)
				return r
			}
			ack := mk(sip.ACK, inv.CSeq().SeqNo)
			if err := c.WriteRequest(ack); err != nil {
				t.Fatal(err)
			}
			select {
			case a := <-acks:
				if len(a.GetHeaders("Via")) != 2 {
					t.Errorf("ACK Vias = %v", a.GetHeaders("Via"))
				}
				if a.Route() != nil {
					t.Errorf("ACK still has Route %v", a.Route())
				}
			case <-time.After(5 * time.Second):
				t.Fatal("UAS got no ACK")
			}
			res := doReq(t, c, mk(sip.BYE, inv.CSeq().SeqNo+1))
			if res.StatusCode != 200 {
				t.Fatalf("BYE got %d", res.StatusCode)
			}
			<-byes
		})
	}
}

func (u *testUAS) port(tp string) int {
	if tp == "tcp" {
		return u.tcp.Port
	}
	return u.udp.Port
}

func tpParams(tp string) sip.HeaderParams {
	p := sip.NewParams()
	if tp == "tcp" {
		p.Add("transport", "tcp")
	}
	return p
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// newCancel builds the CANCEL for inv (RFC 3261 §9.1) as sent by the UAC.
func newCancel(inv *sip.Request) *sip.Request {
	c := sip.NewRequest(sip.CANCEL, inv.Recipient)
	c.AppendHeader(inv.Via().Clone())
	c.AppendHeader(sip.HeaderClone(inv.From()))
	c.AppendHeader(sip.HeaderClone(inv.To()))
	c.AppendHeader(sip.HeaderClone(inv.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: inv.CSeq().SeqNo, MethodName: sip.CANCEL})
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.SetBody(nil)
	c.SetDestination(inv.Destination())
	return c
}

func TestCancelBeforeAnswer(t *testing.T) {
	cancelled := make(chan struct{})
	uas := newUAS(t, func(s *sipgo.Server) {
		s.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
			tx.OnCancel(func(*sip.Request) { close(cancelled) })
			_ = tx.Respond(sip.NewResponseFromRequest(req, 180, "Ringing", nil))
			<-tx.Done()
		})
	})
	p := newTestProxy(t, dialogHandler(uas, "udp"))
	c := newClient(t)
	inv := proxyReq(sip.INVITE, p, "udp", "bob")
	tx, err := c.TransactionRequest(context.Background(), inv)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Terminate()
	timeout := time.After(10 * time.Second)
	for ringing := false; !ringing; {
		select {
		case r := <-tx.Responses():
			ringing = r.StatusCode == 180
		case <-timeout:
			t.Fatal("no 180")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cres, err := c.Do(ctx, newCancel(inv), sipgo.ClientRequestBuild)
	if err != nil || cres.StatusCode != 200 {
		t.Fatalf("CANCEL: %v %v", cres, err)
	}
	select {
	case r := <-tx.Responses():
		if r.StatusCode != 487 {
			t.Fatalf("INVITE final %d, want 487", r.StatusCode)
		}
	case <-timeout:
		t.Fatal("no 487")
	}
	select {
	case <-cancelled:
	case <-timeout:
		t.Fatal("UAS never saw the CANCEL")
	}
}

func TestSilentTargetTimeout(t *testing.T) {
	silent, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silentTarget := Target{NextHop: &sip.Uri{Host: "127.0.0.1", Port: silent.LocalAddr().(*net.UDPAddr).Port}}

	// RFC 4320 §4.1: no 408 to a non-INVITE; 504 Server Time-out.
	t.Run("non-invite-504", func(t *testing.T) {
		p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
			res, err := tx.Forward(ctx, ForwardOptions{Timeout: 300 * time.Millisecond}, silentTarget)
			if !errors.Is(err, ErrTimeout) || res.StatusCode != 504 {
				t.Errorf("Forward = %v, %v", res.StatusCode, err)
			}
		})
		start := time.Now()
		res := doReq(t, newClient(t), proxyReq(sip.REGISTER, p, "udp", ""))
		if res.StatusCode != 504 {
			t.Fatalf("got %d %s, want 504", res.StatusCode, res.Reason)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("504 took %v", d)
		}
	})
	t.Run("invite-timerC", func(t *testing.T) {
		p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
			_, _ = tx.Forward(ctx, ForwardOptions{}, silentTarget)
		}, func(c *Config) { c.TimerC = 300 * time.Millisecond })
		res := doReq(t, newClient(t), proxyReq(sip.INVITE, p, "udp", "bob"))
		if res.StatusCode != 408 {
			t.Fatalf("got %d", res.StatusCode)
		}
	})
	t.Run("next-target", func(t *testing.T) {
		uas := newUAS(t, func(s *sipgo.Server) {
			s.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
				_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
			})
		})
		p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
			// I-CSCF style: try S-CSCFs in turn until one answers.
			for _, tg := range []Target{silentTarget, uas.target("udp")} {
				res, err := tx.Forward(ctx, ForwardOptions{Timeout: 300 * time.Millisecond}, tg)
				if err == nil {
					_ = tx.Relay(res)
					return
				}
			}
		})
		res := doReq(t, newClient(t), proxyReq(sip.REGISTER, p, "udp", ""))
		if res.StatusCode != 200 {
			t.Fatalf("got %d", res.StatusCode)
		}
	})
}

func TestForkOneAnswersOtherCancelled(t *testing.T) {
	bCancelled := make(chan struct{})
	a := newUAS(t, func(s *sipgo.Server) {
		s.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 180, "Ringing", nil))
			time.Sleep(200 * time.Millisecond)
			res := sip.NewResponseFromRequest(req, 200, "OK", nil)
			res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "a", Host: "127.0.0.1"}})
			_ = tx.Respond(res)
		})
	})
	b := newUAS(t, func(s *sipgo.Server) {
		s.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
			tx.OnCancel(func(*sip.Request) { close(bCancelled) })
			_ = tx.Respond(sip.NewResponseFromRequest(req, 180, "Ringing", nil))
			<-tx.Done()
		})
	})
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		_, _ = tx.Forward(ctx, ForwardOptions{RecordRoute: true}, a.target("udp"), b.target("tcp"))
	})
	res := doReq(t, newClient(t), proxyReq(sip.INVITE, p, "udp", "bob"))
	if res.StatusCode != 200 || res.Contact().Address.User != "a" {
		t.Fatalf("got %d from %v", res.StatusCode, res.Contact())
	}
	select {
	case <-bCancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("other branch was not CANCELed")
	}
}

func TestLaddrSelectsSocket(t *testing.T) {
	src := make(chan string, 4)
	uas := newUAS(t, func(s *sipgo.Server) {
		s.OnOptions(func(req *sip.Request, tx sip.ServerTransaction) {
			src <- req.Source()
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
	})
	var laddr atomic.Value
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		tg := uas.target(tx.Request().To().Address.User)
		tg.Laddr = laddr.Load().(string)
		_, _ = tx.Forward(ctx, ForwardOptions{}, tg)
	})
	c := newClient(t)

	// UDP: an extra listener (think IPsec protected port).
	extra, err := p.Listen("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	laddr.Store(extra.String())
	if res := doReq(t, c, proxyReq(sip.OPTIONS, p, "udp", "udp")); res.StatusCode != 200 {
		t.Fatalf("got %d", res.StatusCode)
	}
	if got := <-src; got != extra.String() {
		t.Errorf("UDP request left from %s, want %s", got, extra)
	}
	// Default UDP: the primary listener.
	laddr.Store("")
	if res := doReq(t, c, proxyReq(sip.OPTIONS, p, "udp", "udp")); res.StatusCode != 200 {
		t.Fatalf("got %d", res.StatusCode)
	}
	if got := <-src; got != p.Addr("udp").String() {
		t.Errorf("UDP request left from %s, want primary %s", got, p.Addr("udp"))
	}

	// TCP: dial from a chosen local port.
	free := net.JoinHostPort("127.0.0.1", strconv.Itoa(siptest.FreePort(t)))
	laddr.Store(free)
	if res := doReq(t, c, proxyReq(sip.OPTIONS, p, "udp", "tcp")); res.StatusCode != 200 {
		t.Fatalf("got %d", res.StatusCode)
	}
	if got := <-src; got != free {
		t.Errorf("TCP request left from %s, want %s", got, free)
	}
}

func TestUASAndUAC(t *testing.T) {
	// The proxy answers REGISTER itself (UAS) and, after answering, sends its
	// own NOTIFY (UAC) and reads the final response.
	notified := make(chan *sip.Request, 1)
	ue := newUAS(t, func(s *sipgo.Server) {
		s.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
			notified <- req
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
	})
	uacRes := make(chan *sip.Response, 1)
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		_ = tx.Respond(200, "OK", sip.NewHeader("Service-Route", "<sip:orig@127.0.0.1;lr>"))
		res, err := tx.Proxy().Do(ctx, regNotify(ue.udp.Port), Target{})
		if err != nil {
			t.Errorf("Do: %v", err)
		}
		uacRes <- res
	})
	res := doReq(t, newClient(t), proxyReq(sip.REGISTER, p, "udp", ""))
	if res.StatusCode != 200 || res.GetHeader("Service-Route") == nil {
		t.Fatalf("got %v", res)
	}
	if r := <-uacRes; r == nil || r.StatusCode != 200 || len(r.GetHeaders("Via")) != 0 {
		t.Fatalf("UAC NOTIFY response %v", r)
	}
	if n := <-notified; n.GetHeader("Event").Value() != "reg" {
		t.Errorf("NOTIFY %v", n)
	}
}

func TestOnResponseEdits(t *testing.T) {
	uas := newUAS(t, func(s *sipgo.Server) {
		s.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
			res := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
			res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="ims",nonce="abc",algorithm=AKAv1-MD5,ik="00",ck="11"`))
			_ = tx.Respond(res)
		})
	})
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		res, err := tx.Forward(ctx, ForwardOptions{})
		if err != nil {
			return
		}
		// P-CSCF style: edit the 401 before relaying it.
		res.RemoveHeader("WWW-Authenticate")
		res.AppendHeader(sip.NewHeader("WWW-Authenticate", `Digest realm="ims",nonce="abc",algorithm=AKAv1-MD5`))
		res.AppendHeader(sip.NewHeader("Security-Server", "ipsec-3gpp;alg=hmac-sha-1-96"))
		_ = tx.Relay(res)
	})
	req := proxyReq(sip.REGISTER, p, "udp", "")
	req.Recipient = sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: uas.udp.Port}
	req.SetDestination(p.Addr("udp").String())
	res := doReq(t, newClient(t), req)
	if res.StatusCode != 401 || strings.Contains(res.GetHeader("WWW-Authenticate").Value(), "ik=") || res.GetHeader("Security-Server") == nil {
		t.Fatalf("got %s", res)
	}
}

func TestRemovedRoute(t *testing.T) {
	type seen struct {
		removed *sip.Uri
		routes  int
	}
	got := make(chan seen, 4)
	uas := newUAS(t, func(s *sipgo.Server) {
		s.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
	})
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		got <- seen{tx.RemovedRoute(), len(tx.Request().GetHeaders("Route"))}
		_, _ = tx.Forward(ctx, ForwardOptions{}, uas.target("udp"))
	})
	c := newClient(t)
	send := func(routes ...string) seen {
		t.Helper()
		req := withRoutes(t, p, proxyReq(sip.MESSAGE, p, "udp", "bob"), routes...)
		if res := doReq(t, c, req); res.StatusCode != 200 {
			t.Fatalf("got %d", res.StatusCode)
		}
		return <-got
	}
	own := "<sip:term@127.0.0.1:" + portStr(p.Addr("udp").Port) + ";lr;x=1>"
	s := send(own, "<sip:127.0.0.1:"+portStr(uas.udp.Port)+";lr>")
	if s.removed == nil || s.removed.User != "term" || s.removed.Port != p.Addr("udp").Port || !s.removed.UriParams.Has("lr") {
		t.Fatalf("RemovedRoute = %v, want the term@ entry", s.removed)
	}
	if v, _ := s.removed.UriParams.Get("x"); v != "1" {
		t.Errorf("RemovedRoute lost a parameter: %v", s.removed)
	}
	if s.routes != 1 {
		t.Errorf("%d Route headers left, want 1", s.routes)
	}
	// The accessor hands out copies.
	s.removed.User = "changed"
	// No Route, and a foreign top Route: nothing removed.
	if s := send(); s.removed != nil {
		t.Errorf("RemovedRoute = %v without Route", s.removed)
	}
	if s := send("<sip:127.0.0.1:" + portStr(uas.udp.Port) + ";lr>"); s.removed != nil || s.routes != 1 {
		t.Errorf("RemovedRoute = %v (routes %d) with a foreign Route", s.removed, s.routes)
	}
}

func TestRemovedRouteCopy(t *testing.T) {
	u := sip.Uri{Scheme: "sip", User: "term", Host: "127.0.0.1", Port: 5060}
	tx := &Txn{popped: &u}
	r := tx.RemovedRoute()
	r.User = "x"
	if tx.RemovedRoute().User != "term" {
		t.Fatal("RemovedRoute returned the stored URI, not a copy")
	}
	if (&Txn{}).RemovedRoute() != nil {
		t.Fatal("RemovedRoute of a request without own Route is not nil")
	}
}

// TestOverload503 checks the selection of a 503 (RFC 3261 §16.7 step 6,
// §21.5.4): turned into 500, except with PassOverload503 when it carries
// Retry-After, which then reaches the client as sent.
func TestOverload503(t *testing.T) {
	for _, tc := range []struct {
		name       string
		retryAfter bool
		pass       bool
		want       int
	}{
		{"503 becomes 500", true, false, 500},
		{"503 with Retry-After passed", true, true, 503},
		{"503 without Retry-After becomes 500 even when passing", false, true, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uas := newUAS(t, func(s *sipgo.Server) {
				s.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
					res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
					if tc.retryAfter {
						res.AppendHeader(sip.NewHeader("Retry-After", "7"))
					}
					_ = tx.Respond(res)
				})
			})
			p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
				_, _ = tx.Forward(ctx, ForwardOptions{PassOverload503: tc.pass}, uas.target("udp"))
			})
			res := doReq(t, newClient(t), proxyReq(sip.REGISTER, p, "udp", ""))
			if res.StatusCode != tc.want {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tc.want)
			}
			if ra := res.GetHeader("Retry-After"); tc.want == 503 && (ra == nil || ra.Value() != "7") {
				t.Errorf("Retry-After %v, want 7", ra)
			}
		})
	}
}

// TestCloseDoesNotWaitForCancelAnswer: a proxy closed while an INVITE
// rings cancels the branch and returns at once, though the target never
// answers the CANCEL (before, Close waited for the CANCEL's Timer F, 32 s).
func TestCloseDoesNotWaitForCancelAnswer(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() { // answers INVITE with 180, ignores everything else
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := sip.ParseMessage(buf[:n])
			if req, ok := m.(*sip.Request); err == nil && ok && req.IsInvite() {
				_, _ = pc.WriteTo([]byte(sip.NewResponseFromRequest(req, 180, "Ringing", nil).String()), from)
			}
		}
	}()
	port := pc.LocalAddr().(*net.UDPAddr).Port
	p, err := New(Config{ListenAddr: "127.0.0.1:0", NonInviteTimeout: 5 * time.Second, TimerC: 60 * time.Second,
		Handler: func(ctx context.Context, tx *Txn) {
			u := sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: port}
			_, _ = tx.Forward(ctx, ForwardOptions{}, Target{RequestURI: &u})
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := newClient(t)
	tx, err := c.TransactionRequest(context.Background(), proxyReq(sip.INVITE, p, "udp", "bob"))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Terminate()
	select {
	case r := <-tx.Responses():
		if r.StatusCode != 180 {
			t.Fatalf("got %d, want 180", r.StatusCode)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no 180")
	}
	start := time.Now()
	_ = p.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
}

// TestResponseDestinationGetsTrying: an INVITE whose responses the handler
// directs elsewhere than its Via (a P-CSCF answering over an SA to the
// UE's port-c, TS 33.203 §7.1) gets its 100 Trying there at once; nothing
// reaches the Via's port, not even the 100 that sipgo sends on its own
// when no provisional response has left 200 ms after the INVITE.
func TestResponseDestinationGetsTrying(t *testing.T) {
	portS, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer portS.Close()
	var dest atomic.Value
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		tx.SetResponseDestination(dest.Load().(string))
		time.Sleep(500 * time.Millisecond) // past sipgo's Timer 1xx
		_ = tx.Respond(486, "Busy Here")
	})
	portC, proxyAddr := udpClient(t, p)
	dest.Store(portC.LocalAddr().String())
	inv := fmt.Sprintf("INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKrdt1\r\n"+
		"From: <sip:a@b>;tag=1\r\nTo: <sip:bob@b>\r\nCall-ID: rdt1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"+
		"Contact: <sip:a@127.0.0.1:%d>\r\nContent-Length: 0\r\n\r\n", portS.LocalAddr().(*net.UDPAddr).Port, portS.LocalAddr().(*net.UDPAddr).Port)
	if _, err := portC.WriteToUDP([]byte(inv), proxyAddr); err != nil {
		t.Fatal(err)
	}
	var got []string
	buf := make([]byte, 4096)
	_ = portC.SetReadDeadline(time.Now().Add(3 * time.Second))
	for len(got) < 2 {
		n, _, err := portC.ReadFromUDP(buf)
		if err != nil {
			break
		}
		got = append(got, strings.SplitN(string(buf[:n]), "\r\n", 2)[0])
	}
	if len(got) != 2 || got[0] != "SIP/2.0 100 Trying" || got[1] != "SIP/2.0 486 Busy Here" {
		t.Errorf("port-c got %q, want the 100 Trying then the 486", got)
	}
	_ = portS.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, _, err := portS.ReadFromUDP(buf); err == nil {
		t.Errorf("the Via's port got %q", strings.SplitN(string(buf[:n]), "\r\n", 2)[0])
	}
}

// TestNeedsWorkingCopy: the handler edits an INVITE's copy (sipgo builds
// the 487 to a CANCEL from the original, concurrently) and a copy of any
// request that may create a dialog (a local 2xx copies Record-Route from
// the original); REGISTER, ACK and in-dialog requests but re-INVITEs are
// edited in place.
func TestNeedsWorkingCopy(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want bool
	}{
		{"INVITE sip:b@ims.test SIP/2.0\r\nTo: <sip:b@ims.test>\r\n", true},
		{"INVITE sip:b@ims.test SIP/2.0\r\nTo: <sip:b@ims.test>;tag=x\r\n", true},
		{"SUBSCRIBE sip:b@ims.test SIP/2.0\r\nTo: <sip:b@ims.test>\r\n", true},
		{"MESSAGE sip:b@ims.test SIP/2.0\r\nTo: <sip:b@ims.test>;tag=\r\n", true},
		{"REGISTER sip:ims.test SIP/2.0\r\nTo: <sip:a@ims.test>\r\n", false},
		{"ACK sip:b@ims.test SIP/2.0\r\nTo: <sip:b@ims.test>;tag=x\r\n", false},
		{"BYE sip:b@ims.test SIP/2.0\r\nTo: <sip:b@ims.test>;tag=x\r\n", false},
		{"NOTIFY sip:a@ims.test SIP/2.0\r\nTo: <sip:a@ims.test>;tag=y\r\n", false},
	} {
		raw := c.raw + "Via: SIP/2.0/UDP 192.0.2.7:5060;branch=z9hG4bK1\r\nFrom: <sip:a@ims.test>;tag=1\r\nCall-ID: c\r\nCSeq: 1 X\r\nContent-Length: 0\r\n\r\n"
		m, err := sip.ParseMessage([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		if got := needsWorkingCopy(m.(*sip.Request)); got != c.want {
			t.Errorf("%s: working copy %v, want %v", c.raw[:strings.Index(c.raw, "\r\n")], got, c.want)
		}
	}
}

// TestRecordRouteLeftUnparsed: the proxies' parser keeps Record-Route
// fields as generic header fields (values as received), RecordRoute()
// still gives the first one parsed, and the other fields are parsed as
// sipgo's default parser does.
func TestRecordRouteLeftUnparsed(t *testing.T) {
	msg := "SIP/2.0 200 OK\r\n" +
		"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n" +
		"Record-Route: <sip:scscf.ims.example.org:6060;lr>\r\n" +
		"Record-Route: <sip:pcscf.ims.example.org:5060;lr>,<sip:as.example.org;lr>\r\n" +
		"From: <sip:alice@ims.example.org>;tag=a\r\n" +
		"To: <sip:bob@ims.example.org>;tag=b\r\n" +
		"Contact: <sip:bob@10.0.0.2:5060>\r\n" +
		"Call-ID: rr1\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
	m, err := sip.NewParser(sip.WithHeadersParsers(headerParsers())).ParseSIP([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	res := m.(*sip.Response)
	rr := res.GetHeaders("Record-Route")
	if len(rr) != 2 {
		t.Fatalf("%d Record-Route fields, want 2 (as received)", len(rr))
	}
	for _, h := range rr {
		if _, typed := h.(*sip.RecordRouteHeader); typed {
			t.Errorf("Record-Route %q parsed into a RecordRouteHeader; want it left generic", h.Value())
		}
	}
	if v := rr[1].Value(); v != "<sip:pcscf.ims.example.org:5060;lr>,<sip:as.example.org;lr>" {
		t.Errorf("second Record-Route value %q", v)
	}
	if first := res.RecordRoute(); first == nil || first.Address.Host != "scscf.ims.example.org" || first.Address.Port != 6060 {
		t.Errorf("RecordRoute() = %v, want the first field parsed", first)
	}
	if _, ok := res.GetHeader("Contact").(*sip.ContactHeader); !ok || res.Via() == nil || res.CSeq() == nil {
		t.Error("Contact, Via or CSeq not parsed")
	}
}
