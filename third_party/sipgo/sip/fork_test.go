package sip

// Tests of the imscore fork's changes (FORK.md).

import (
	"bytes"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	"github.com/emiago/sipgo/fakes"
	"github.com/stretchr/testify/require"
)

// collected reports whether p's object is garbage collected within a few
// GC cycles (a second of them: on a busy machine the goroutine that
// releases it may not have run yet).
func collected[T any](p weak.Pointer[T]) bool {
	for i := 0; i < 100; i++ {
		runtime.GC()
		if p.Value() == nil {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

func forkTestConn(peer string) *UDPConnection {
	return &UDPConnection{PacketConn: &fakes.UDPConn{
		Reader:  bytes.NewBuffer(nil),
		Writers: map[string]io.Writer{peer: io.Discard},
	}}
}

// TestAcceptedTerminatedIsReleased: an INVITE transaction terminated in
// its Accepted state (RFC 6026) stops Timer M (client) or Timer L
// (server), so nothing keeps it, its request and its responses for 64*T1.
// Upstream left the timer armed; its closure held the transaction.
func TestAcceptedTerminatedIsReleased(t *testing.T) {
	oldL, oldM := Timer_L, Timer_M
	Timer_L, Timer_M = 32*time.Second, 32*time.Second
	t.Cleanup(func() { Timer_L, Timer_M = oldL, oldM })

	t.Run("client", func(t *testing.T) {
		wp := func() weak.Pointer[ClientTx] {
			req, _, _ := testCreateInvite(t, "sip:127.0.0.99:5060", "udp", "127.0.0.2:5060")
			req.raddr = Addr{IP: net.ParseIP("127.0.0.99"), Port: 5060}
			tx := NewClientTx("accepted-client", req, forkTestConn("127.0.0.99:5060"), slog.Default())
			require.NoError(t, tx.Init())
			go func() { <-tx.Responses() }()
			tx.Receive(NewResponseFromRequest(req, StatusOK, "OK", nil))
			require.NoError(t, compareFunctions(tx.currentFsmState(), tx.inviteStateAccepted))
			tx.Terminate()
			return weak.Make(tx)
		}()
		require.True(t, collected(wp), "terminated accepted client transaction still reachable (Timer M armed)")
	})
	t.Run("server", func(t *testing.T) {
		wp := func() weak.Pointer[ServerTx] {
			req, _, _ := testCreateInvite(t, "sip:127.0.0.99:5060", "udp", "127.0.0.2:5060")
			tx := NewServerTx("accepted-server", req, forkTestConn("127.0.0.2:5060"), slog.Default())
			require.NoError(t, tx.Init())
			require.NoError(t, tx.Respond(NewResponseFromRequest(req, StatusOK, "OK", nil)))
			require.NoError(t, compareFunctions(tx.currentFsmState(), tx.inviteStateAccepted))
			tx.Terminate()
			return weak.Make(tx)
		}()
		require.True(t, collected(wp), "terminated accepted server transaction still reachable (Timer L armed)")
	})
}

// TestTimersNotArmedAfterTerminate: a transaction the TU terminates while
// the FSM is still passing a response up (client) or sending one (server)
// arms no timer afterwards. Upstream armed Timer M, D, J or L after the
// pass-up or the send whatever had happened meanwhile; the timer was never
// stopped and its closure kept the transaction, its request and responses
// reachable for 64*T1 (at 1,000 calls/s through the chain, half of every
// proxy's transactions: 267-287 MiB live at the P-CSCF). The tests take
// the order the race produced: Terminate first, then the response.
func TestTimersNotArmedAfterTerminate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		invite bool
		code   int
	}{
		{"client INVITE 2xx (Timer M)", true, StatusOK},
		{"client INVITE failure (Timer D)", true, StatusBusyHere},
		{"client non-INVITE final (Timer K)", false, StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wp := func() weak.Pointer[ClientTx] {
				var req *Request
				if tc.invite {
					req, _, _ = testCreateInvite(t, "sip:127.0.0.99:5060", "udp", "127.0.0.2:5060")
				} else {
					req = testCreateRequest(t, "BYE", "sip:127.0.0.99:5060", "udp", "127.0.0.2:5060")
				}
				req.raddr = Addr{IP: net.ParseIP("127.0.0.99"), Port: 5060}
				tx := NewClientTx("terminated-client", req, forkTestConn("127.0.0.99:5060"), slog.Default())
				require.NoError(t, tx.Init())
				tx.Terminate()
				tx.Receive(NewResponseFromRequest(req, tc.code, "x", nil))
				return weak.Make(tx)
			}()
			require.True(t, collected(wp), "client transaction terminated before its response passed up is still reachable (a timer armed after Terminate)")
		})
	}
	for _, tc := range []struct {
		name   string
		invite bool
		code   int
	}{
		{"server INVITE 2xx (Timer L)", true, StatusOK},
		{"server INVITE failure (Timers G, H)", true, StatusBusyHere},
		{"server non-INVITE final (Timer J)", false, StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wp := func() weak.Pointer[ServerTx] {
				var req *Request
				if tc.invite {
					req, _, _ = testCreateInvite(t, "sip:127.0.0.99:5060", "udp", "127.0.0.2:5060")
				} else {
					req = testCreateRequest(t, "BYE", "sip:127.0.0.99:5060", "udp", "127.0.0.2:5060")
				}
				tx := NewServerTx("terminated-server", req, forkTestConn("127.0.0.2:5060"), slog.Default())
				require.NoError(t, tx.Init())
				tx.Terminate()
				_ = tx.Respond(NewResponseFromRequest(req, tc.code, "x", nil))
				return weak.Make(tx)
			}()
			require.True(t, collected(wp), "server transaction terminated before its final response was sent is still reachable (a timer armed after Terminate)")
		})
	}
}

// TestUDPSourceIdleForgetsSilentSources: with SourceIdle a UDP listener's
// connection pool forgets source addresses silent for two periods; without
// it (upstream) every address stays until the listener closes.
func TestUDPSourceIdleForgetsSilentSources(t *testing.T) {
	for _, tc := range []struct {
		idle      time.Duration
		wantAfter func(n int) bool
	}{
		{0, func(n int) bool { return n >= 1+50+2 }},                   // upstream: all kept
		{100 * time.Millisecond, func(n int) bool { return n <= 1+2 }}, // the listener and the two recent
	} {
		t.Run(tc.idle.String(), func(t *testing.T) {
			tr := &TransportUDP{SourceIdle: tc.idle}
			tr.init(NewParser())
			ln, err := net.ListenPacket("udp", "127.0.0.1:0")
			require.NoError(t, err)
			var got atomic.Int32
			done := make(chan struct{})
			go func() { _ = tr.Serve(ln, func(Message) { got.Add(1) }); close(done) }()
			t.Cleanup(func() { ln.Close(); <-done })

			// Each from its own source port: the 50 stay open until all
			// have sent (a closed one's port could be the next one's, and
			// the pool would count one address fewer).
			var open []net.Conn
			defer func() {
				for _, c := range open {
					c.Close()
				}
			}()
			send := func() {
				c, err := net.Dial("udp", ln.LocalAddr().String())
				require.NoError(t, err)
				open = append(open, c)
				msg := "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP " + c.LocalAddr().String() +
					";branch=z9hG4bK-1\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:x@b>\r\nCall-ID: 1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
				want := got.Load() + 1
				_, err = c.Write([]byte(msg))
				require.NoError(t, err)
				require.Eventually(t, func() bool { return got.Load() >= want }, 2*time.Second, time.Millisecond)
			}
			for i := 0; i < 50; i++ {
				send()
			}
			require.GreaterOrEqual(t, tr.pool.Size(), 1+50)
			time.Sleep(250 * time.Millisecond)
			send() // ends the period of the 50
			time.Sleep(150 * time.Millisecond)
			send() // ends the next: the 50 were not seen in it
			require.True(t, tc.wantAfter(tr.pool.Size()), "pool holds %d addresses", tr.pool.Size())
		})
	}
}

// TestResponseDestination: Request.ResponseDestination is the destination
// a response built by NewResponseFromRequest gets (RFC 3261 §18.2.2):
// the source address with the Via port once the server transport has
// resolved it (rport: the source port), else the source.
func TestResponseDestination(t *testing.T) {
	for _, tc := range []struct{ via, want string }{
		{"SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1", "192.0.2.7:5062"},
		{"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1", "192.0.2.7:5060"},
		{"SIP/2.0/UDP 10.0.0.1:5062;rport;branch=z9hG4bK1", "192.0.2.7:40001"},
	} {
		raw := "OPTIONS sip:a@example.com SIP/2.0\r\nVia: " + tc.via + "\r\nFrom: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
		m, err := ParseMessage([]byte(raw))
		require.NoError(t, err)
		req := m.(*Request)
		req.SetSource("192.0.2.7:40001")
		req.SetTransport("UDP")
		require.Equal(t, "192.0.2.7:40001", req.ResponseDestination(), "before resolution: the source")
		// The server transport resolves the Via (raddr) as it looks up
		// the connection the request came on.
		tl := NewTransportLayer(net.DefaultResolver, NewParser(), nil)
		tl.udp.pool.Add("192.0.2.7:40001", &UDPConnection{})
		_, err = tl.serverRequestConnection(t.Context(), req)
		require.NoError(t, err)
		require.Equal(t, tc.want, req.ResponseDestination(), tc.via)
		require.Equal(t, NewResponseFromRequest(req, 200, "OK", nil).Destination(), req.ResponseDestination(), tc.via)
	}
}

// TestGetHeaderNoAllocs: GetHeader and GetHeaders match names in any case
// (RFC 3261 §7.3.1) without lowering each header's name, which allocated
// for every name outside HeaderToLower's table.
func TestGetHeaderNoAllocs(t *testing.T) {
	raw := "INVITE sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bK1\r\n" +
		"From: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n" +
		"P-Charging-Vector: icid-value=1\r\nP-Access-Network-Info: 3GPP-E-UTRAN-FDD\r\nSecurity-Verify: ipsec-3gpp;q=0.1\r\n" +
		"P-Asserted-Identity: <sip:b@example.com>\r\nP-ASSERTED-IDENTITY: <tel:+1>\r\nContent-Length: 0\r\n\r\n"
	m, err := ParseMessage([]byte(raw))
	require.NoError(t, err)
	req := m.(*Request)
	for _, name := range []string{"P-Asserted-Identity", "p-asserted-identity", "P-ASSERTED-IDENTITY"} {
		require.Len(t, req.GetHeaders(name), 2, name)
		require.Equal(t, "<sip:b@example.com>", req.GetHeader(name).Value(), name)
	}
	require.Nil(t, req.GetHeader("P-Asserted-Identit"))
	require.Nil(t, req.GetHeader("Privacy"))
	require.Equal(t, "c1", req.GetHeader("call-id").Value())
	allocs := testing.AllocsPerRun(100, func() {
		_ = req.GetHeader("P-Asserted-Identity")
		_ = req.GetHeader("Privacy")
		_ = req.GetHeader("security-verify")
	})
	require.Zero(t, allocs, "allocations per 3 GetHeader calls")
}

// imsInvite is an originating INVITE as a P-CSCF gets it from a UE, with
// the P-headers and sec-agree fields sipgo keeps as generic headers.
const imsInvite = "INVITE tel:+15551234 SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 10.45.0.2:5062;branch=z9hG4bK.aaaa1111;rport\r\n" +
	"Max-Forwards: 70\r\n" +
	"Route: <sip:10.0.0.10:5062;lr>\r\n" +
	"Route: <sip:orig@scscf.ims.mnc001.mcc001.3gppnetwork.org:6060;lr>\r\n" +
	"From: <sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org>;tag=abcdef\r\n" +
	"To: <tel:+15551234>\r\n" +
	"Call-ID: 1-12345@10.45.0.2\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Contact: <sip:001010000000001@10.45.0.2:5062>;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\"\r\n" +
	"P-Preferred-Identity: <sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org>\r\n" +
	"P-Access-Network-Info: 3GPP-E-UTRAN-FDD;utran-cell-id-3gpp=0010100010019B01\r\n" +
	"Security-Verify: ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1111;spi-s=2222;port-c=5100;port-s=5101\r\n" +
	"Require: sec-agree\r\n" +
	"Proxy-Require: sec-agree\r\n" +
	"Supported: 100rel,timer,precondition\r\n" +
	"Allow: INVITE,ACK,OPTIONS,CANCEL,BYE,UPDATE,INFO,REFER,NOTIFY,MESSAGE,PRACK\r\n" +
	"Accept-Contact: *;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\"\r\n" +
	"User-Agent: IMS UE\r\n" +
	"Content-Type: application/sdp\r\n" +
	"Content-Length: 0\r\n\r\n"

// BenchmarkParseIMSInvite: parsing imsInvite (allocations per message are
// the steady figure).
func BenchmarkParseIMSInvite(b *testing.B) {
	p := NewParser()
	data := []byte(imsInvite)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.ParseSIP(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestURIHostNoParse: writing a URI with an IPv4 or named host does not
// parse it as an IP (no allocation beyond the string); an IPv6 host is
// still bracketed.
func TestURIHostNoParse(t *testing.T) {
	for host, want := range map[string]string{
		"10.0.0.1": "10.0.0.1", "pcscf.ims.example.org": "pcscf.ims.example.org",
		"2001:db8::1": "[2001:db8::1]", "::ffff:10.0.0.1": "::ffff:10.0.0.1",
	} {
		require.Equal(t, want, uriIP(host), host)
	}
	require.Zero(t, testing.AllocsPerRun(100, func() {
		_ = uriIP("10.0.0.1")
		_ = uriIP("scscf.ims.mnc001.mcc001.3gppnetwork.org")
	}))
}

// TestServerRequestConnectionNilContext: a nil context (what the
// transaction layer now passes) works on both paths: the connection found
// by the request's source (no deadline made), and the fall-back that
// resolves the Via's host name (a context made there: the resolver
// panics on a nil one).
func TestServerRequestConnectionNilContext(t *testing.T) {
	raw := "OPTIONS sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/UDP localhost:5062;branch=z9hG4bK1\r\nFrom: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
	tl := NewTransportLayer(net.DefaultResolver, NewParser(), nil)
	t.Cleanup(func() { _ = tl.Close() })
	for _, known := range []bool{true, false} {
		m, err := ParseMessage([]byte(raw))
		require.NoError(t, err)
		req := m.(*Request)
		req.SetSource("127.0.0.1:40001")
		req.SetTransport("UDP")
		if known {
			tl.udp.pool.Add("127.0.0.1:40001", &UDPConnection{})
		}
		c, err := tl.serverRequestConnection(nil, req)
		require.NoError(t, err, "known source %v", known)
		require.NotNil(t, c, "known source %v", known)
		if !known {
			_ = c.Close()
		}
		tl.udp.pool.Delete("127.0.0.1:40001")
	}
}

// BenchmarkCloneIMSInvite: copying a parsed imsInvite (what a proxy does
// per forwarded branch), then prepending a Via and a Record-Route.
func BenchmarkCloneIMSInvite(b *testing.B) {
	req, err := NewParser().ParseSIP([]byte(imsInvite))
	if err != nil {
		b.Fatal(err)
	}
	r := req.(*Request)
	b.ReportAllocs()
	for b.Loop() {
		c := r.Clone()
		c.PrependHeader(&ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "10.0.0.1", Port: 5060})
		c.PrependHeader(&RecordRouteHeader{Address: Uri{Scheme: "sip", Host: "10.0.0.1", Port: 5060}})
	}
}

// TestCloneRequestRoomToPrepend: a cloned request renders as the
// original, keeps its first Via and Route as quick references, and takes
// a proxy's prepended Via and Record-Route in the room its header slice
// keeps (no new slice per field, the original untouched): 32–33
// allocations for the clone and both fields where upstream made 39.
func TestCloneRequestRoomToPrepend(t *testing.T) {
	req, err := NewParser().ParseSIP([]byte(imsInvite))
	require.NoError(t, err)
	r := req.(*Request)
	want := r.String()
	c := r.Clone()
	require.Equal(t, want, c.String())
	require.Same(t, c.headerOrder[indexOf(c, "Via")], c.Via())
	require.Same(t, c.headerOrder[indexOf(c, "Route")], c.Route())
	via := &ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "10.0.0.1", Port: 5060, Params: NewParams()}
	c.PrependHeader(via)
	c.PrependHeader(&RecordRouteHeader{Address: Uri{Scheme: "sip", Host: "10.0.0.1", Port: 5060}})
	require.Same(t, via, c.Via())
	require.Equal(t, "Record-Route", c.headerOrder[0].Name())
	require.Equal(t, len(r.headerOrder)+2, len(c.headerOrder))
	require.Equal(t, want, r.String(), "original changed by the clone's prepends")
	allocs := testing.AllocsPerRun(100, func() {
		c := r.Clone()
		c.PrependHeader(&ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: "UDP", Host: "10.0.0.1", Port: 5060})
		c.PrependHeader(&RecordRouteHeader{Address: Uri{Scheme: "sip", Host: "10.0.0.1", Port: 5060}})
	})
	require.LessOrEqual(t, allocs, 35.0) // 32 here, 33 in some runs
}

func indexOf(m *Request, name string) int {
	for i, h := range m.headerOrder {
		if h.Name() == name {
			return i
		}
	}
	return -1
}

// imsRingingFifthHop is a 180 to an INVITE on its fifth hop (terminating
// P-CSCF towards the originating S-CSCF): five Vias, two Record-Routes.
const imsRingingFifthHop = "SIP/2.0 180 Ringing\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.10:5060;branch=z9hG4bK.p1;rport=5060\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.30:6060;branch=z9hG4bK.s2\r\n" +
	"Via: SIP/2.0/UDP 10.0.0.20:5070;branch=z9hG4bK.i1, SIP/2.0/UDP 10.0.0.30:6060;branch=z9hG4bK.s1\r\n" +
	"Via: SIP/2.0/UDP 10.45.0.2:5062;branch=z9hG4bK.aaaa1111;rport=5062;received=10.45.0.2\r\n" +
	"Record-Route: <sip:10.0.0.10:5060;lr>\r\n" +
	"Record-Route: <sip:mt@10.0.0.30:6060;lr>\r\n" +
	"Route: <sip:10.0.0.30:6060;lr>\r\n" +
	"Route: <sip:10.0.0.10:5060;lr>\r\n" +
	"From: <sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org>;tag=abcdef\r\n" +
	"To: <tel:+15551234>;tag=xyz\r\n" +
	"Call-ID: 1-12345@10.45.0.2\r\n" +
	"CSeq: 1 INVITE\r\n" +
	"Contact: <sip:001010000000002@10.45.0.3:5062>\r\n" +
	"Content-Length: 0\r\n\r\n"

// firstOnlyParser is the parser a proxy uses: repeats of Via and Route
// left unparsed.
func firstOnlyParser() *Parser { return NewParser(WithFirstOnly("Via", "Route")) }

// TestFirstOnly: with WithFirstOnly the first Via and Route are typed and
// referenced, the repeats generic under the canonical name; the message
// renders as read; removing the top Via makes the next one typed in place
// when read (a comma-separated field into its two hops); TypedHeaders
// parses them all; fewer allocations than parsing every field.
func TestFirstOnly(t *testing.T) {
	msg, err := firstOnlyParser().ParseSIP([]byte(imsRingingFifthHop))
	require.NoError(t, err)
	res := msg.(*Response)
	require.Equal(t, imsRingingFifthHop, res.String())
	vias := res.GetHeaders("Via")
	require.Len(t, vias, 4)
	require.IsType(t, &ViaHeader{}, vias[0])
	require.Same(t, vias[0], res.Via())
	for _, h := range vias[1:] {
		require.Equal(t, "generic", kindOf(h))
	}
	routes := res.GetHeaders("Route")
	require.IsType(t, &RouteHeader{}, routes[0])
	require.Equal(t, "generic", kindOf(routes[1]))
	require.IsType(t, &ContactHeader{}, res.Contact())

	// A proxy relaying the response: its own Via off, the next typed.
	require.True(t, res.RemoveHeader("Via"))
	next := res.Via()
	require.NotNil(t, next)
	require.Equal(t, "10.0.0.30", next.Host)
	require.Equal(t, "s2", next.Params.GetOr("branch", "")[len("z9hG4bK."):])
	require.Same(t, next, res.GetHeaders("Via")[0])
	require.True(t, res.RemoveHeader("Via"))
	require.Equal(t, "10.0.0.20", res.Via().Host)
	vias = res.GetHeaders("Via")
	require.Len(t, vias, 3, "the comma-separated field becomes its two hops")
	require.Equal(t, "10.0.0.30", vias[1].(*ViaHeader).Host)
	require.Equal(t, "generic", kindOf(vias[2]))
	require.Contains(t, res.String(), "Via: SIP/2.0/UDP 10.0.0.20:5070;branch=z9hG4bK.i1\r\nVia: SIP/2.0/UDP 10.0.0.30:6060;branch=z9hG4bK.s1\r\nVia: SIP/2.0/UDP 10.45.0.2:5062;")

	all := res.TypedHeaders("route")
	require.Len(t, all, 2)
	require.Equal(t, 5060, all[1].(*RouteHeader).Address.Port)
	require.IsType(t, &ViaHeader{}, res.TypedHeaders("Via")[2])

	data := []byte(imsRingingFifthHop)
	full, lazy := NewParser(), firstOnlyParser()
	allocs := func(p *Parser) float64 {
		return testing.AllocsPerRun(200, func() {
			if _, err := p.ParseSIP(data); err != nil {
				t.Fatal(err)
			}
		})
	}
	a, b := allocs(full), allocs(lazy)
	t.Logf("allocations per parse: every field %.0f, first only %.0f", a, b)
	require.Less(t, b, a-8)
}

// TestFirstOnlyStream: the stream parser leaves the repeats unparsed per
// message, each message's first Via typed.
func TestFirstOnlyStream(t *testing.T) {
	ps := firstOnlyParser().NewSIPStream()
	n := 0
	require.NoError(t, ps.ParseSIPStream([]byte(imsRingingFifthHop+imsRingingFifthHop), func(msg Message) {
		n++
		res := msg.(*Response)
		vias := res.GetHeaders("Via")
		require.IsType(t, &ViaHeader{}, vias[0])
		require.Equal(t, "generic", kindOf(vias[1]))
		require.Equal(t, imsRingingFifthHop, res.String())
	}))
	require.Equal(t, 2, n)
}

func kindOf(h Header) string {
	if _, ok := h.(*genericHeader); ok {
		return "generic"
	}
	return "typed"
}

// BenchmarkParseRingingFifthHop: a response with five Vias, every field
// parsed or (FirstOnly) the repeats of Via and Route left unparsed.
func BenchmarkParseRingingFifthHop(b *testing.B) {
	for _, c := range []struct {
		name string
		p    *Parser
	}{{"Full", NewParser()}, {"FirstOnly", firstOnlyParser()}} {
		b.Run(c.name, func(b *testing.B) {
			data := []byte(imsRingingFifthHop)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.p.ParseSIP(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// goroutineID is the current goroutine's number from its stack header.
func goroutineID() string {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	id, _, _ := bytes.Cut(bytes.TrimPrefix(buf, []byte("goroutine ")), []byte(" "))
	return string(id)
}

// TestGoPooled: a function passed once the pool's goroutines are idle
// runs on one of them (its stack grown already); one passed while they
// are busy runs on another; idle goroutines end after the pool's idle
// time.
func TestGoPooled(t *testing.T) {
	p := &goPool{jobs: make(chan func()), idle: 100 * time.Millisecond}
	ids := make(chan string, 1)
	release := make(chan struct{})
	p.Go(func() { ids <- goroutineID(); <-release })
	first := <-ids
	p.Go(func() { ids <- goroutineID() }) // the first is busy
	second := <-ids
	require.NotEqual(t, first, second)
	close(release)
	// Once one of them waits for work, the next function runs on it;
	// until then (a busy machine) each runs on a new one, which joins.
	seen := map[string]bool{first: true, second: true}
	reused := false
	for i := 0; i < 50 && !reused; i++ {
		time.Sleep(5 * time.Millisecond)
		p.Go(func() { ids <- goroutineID() })
		id := <-ids
		reused = seen[id]
		seen[id] = true
	}
	require.True(t, reused, "every function ran on a new goroutine, none on a pooled one")

	// Idle that long, all end: the next function gets a new goroutine.
	time.Sleep(time.Second)
	p.Go(func() { ids <- goroutineID() })
	require.False(t, seen[<-ids], "an idle goroutine outlived the pool's idle time")
}
