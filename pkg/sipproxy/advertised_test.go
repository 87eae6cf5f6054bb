package sipproxy

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/siptest"
)

// TestAdvertisedAddress: a proxy reached through a NAT or a published
// container port (Config.Advertised) takes Route entries naming that
// address for its own whatever its listening port, pops both of its entries
// of a double Record-Route (RFC 5658), writes the address in Via with
// ForwardOptions.SentBy, and relays the answer whose Via names it.
func TestAdvertisedAddress(t *testing.T) {
	uas, got := newRecordingUAS(t)
	removed := make(chan *sip.Uri, 1)
	// 127.0.0.2 stands for the NAT's address, with the listening port, so
	// that the UAS's answer to Via (received=127.0.0.1) comes back.
	port := siptest.FreePort(t)
	sentBy := "127.0.0.2:" + portStr(port)
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		removed <- tx.RemovedRoute()
		_, _ = tx.Forward(ctx, ForwardOptions{SentBy: sentBy})
	}, func(c *Config) {
		c.ListenAddr = "127.0.0.1:" + portStr(port)
		c.Advertised = []string{"192.0.2.10:5070", sentBy}
	})

	for _, tc := range []struct {
		uri  sip.Uri
		self bool
	}{
		{sip.Uri{Scheme: "sip", Host: "192.0.2.10", Port: 5070}, true},
		{sip.Uri{Scheme: "sip", Host: "192.0.2.10"}, false}, // 5060: not advertised, not listening
		{sip.Uri{Scheme: "sip", Host: "192.0.2.11", Port: 5070}, false},
		{sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: p.Addr("udp").Port}, true},
	} {
		if got := p.IsSelf(tc.uri); got != tc.self {
			t.Errorf("IsSelf(%s) = %v, want %v", tc.uri.String(), got, tc.self)
		}
	}

	c := newClient(t)
	req := proxyReq(sip.MESSAGE, p, "udp", "bob")
	req.Recipient = sip.Uri{Scheme: "sip", User: "bob", Host: "ims.example.org"}
	// The UE's route set from a double Record-Route: the advertised
	// entry, then the listening one, then the next hop.
	req = withRoutes(t, p, req, "<sip:192.0.2.10:5070;transport=udp;lr>",
		"<sip:127.0.0.1:"+portStr(p.Addr("udp").Port)+";transport=udp;lr>", "<sip:127.0.0.1:"+portStr(uas.udp.Port)+";lr>")
	if res := doReq(t, c, req); res.StatusCode != 200 {
		t.Fatalf("got %d, want the UAS's 200 relayed", res.StatusCode)
	}
	r := <-got
	if routes := r.GetHeaders("Route"); len(routes) != 1 || routes[0].Value() != "<sip:127.0.0.1:"+portStr(uas.udp.Port)+";lr>" {
		t.Errorf("UAS Route = %v, want only its own entry (both of the proxy's popped)", routes)
	}
	if v := r.Via(); v == nil || v.Host != "127.0.0.2" || v.Port != port {
		t.Errorf("top Via = %v, want sent-by %s", v, sentBy)
	}
	if u := <-removed; u == nil || u.Host != "192.0.2.10" || u.Port != 5070 {
		t.Errorf("RemovedRoute = %v, want the advertised entry", u)
	}

	for _, bad := range []string{"192.0.2.10", "192.0.2.10:0", ":5060", "192.0.2.10:x"} {
		if _, err := New(Config{Handler: func(context.Context, *Txn) {}, Advertised: []string{bad}}); err == nil {
			t.Errorf("New with Advertised %q: no error", bad)
		}
	}
}

// TestTwoOwnRoutesWithoutAdvertised: without an advertised address only
// the top own Route is removed (RFC 3261 §16.4), as before.
func TestTwoOwnRoutesWithoutAdvertised(t *testing.T) {
	p, err := New(Config{ListenAddr: "127.0.0.1:5999", Handler: func(context.Context, *Txn) {}})
	if err != nil {
		t.Fatal(err)
	}
	p.listeners = append(p.listeners, &listener{network: "udp", addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5999}})
	req := sip.NewRequest(sip.BYE, sip.Uri{Scheme: "sip", User: "bob", Host: "192.0.2.20"})
	lr := sip.NewParams()
	lr.Add("lr", "")
	req.AppendHeader(&sip.RouteHeader{Address: sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: 5999, UriParams: lr}})
	req.AppendHeader(&sip.RouteHeader{Address: sip.Uri{Scheme: "sip", User: "orig", Host: "127.0.0.1", Port: 5999, UriParams: lr}})
	if u := p.preprocessRoute(req); u == nil || u.User != "" {
		t.Fatalf("removed %v, want the top entry", u)
	}
	if rt := req.Route(); rt == nil || rt.Address.User != "orig" {
		t.Fatalf("Route left = %v, want the second own entry kept", rt)
	}
}

// TestRoutesAsParsed: route processing on a request parsed as the proxy
// parses (newParser: a Route after the first left unparsed). A strict
// router's request takes its target from the last Route field; with the
// proxy's two own entries on top, the second is read once the first is
// removed.
func TestRoutesAsParsed(t *testing.T) {
	p, err := New(Config{ListenAddr: "127.0.0.1:5999", Handler: func(context.Context, *Txn) {}})
	if err != nil {
		t.Fatal(err)
	}
	p.listeners = append(p.listeners, &listener{network: "udp", addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5999}})
	p.advertised["192.0.2.10:5070"] = true
	parse := func(ruri string, routes ...string) *sip.Request {
		t.Helper()
		msg := "BYE " + ruri + " SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
		for _, r := range routes {
			msg += "Route: " + r + "\r\n"
		}
		msg += "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: r1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
		m, err := newParser().ParseSIP([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		req := m.(*sip.Request)
		if rs := req.GetHeaders("Route"); len(routes) > 1 {
			if _, typed := rs[1].(*sip.RouteHeader); typed {
				t.Fatal("second Route parsed; want it left generic by newParser")
			}
		}
		return req
	}

	req := parse("sip:127.0.0.1:5999;lr", "<sip:10.0.0.9;lr>", "<sip:bob@192.0.2.20:5080>")
	if u := p.preprocessRoute(req); u == nil || u.Port != 5999 {
		t.Fatalf("removed %v, want the proxy's own Request-URI", u)
	}
	if req.Recipient.User != "bob" || req.Recipient.Port != 5080 {
		t.Errorf("Request-URI %s, want the last Route's sip:bob@192.0.2.20:5080", req.Recipient.String())
	}
	if rs := req.GetHeaders("Route"); len(rs) != 1 || rs[0].Value() != "<sip:10.0.0.9;lr>" {
		t.Errorf("Route left %v, want <sip:10.0.0.9;lr>", rs)
	}

	req = parse("sip:bob@192.0.2.20", "<sip:192.0.2.10:5070;lr>", "<sip:127.0.0.1:5999;lr>", "<sip:10.0.0.9;lr>")
	if u := p.preprocessRoute(req); u == nil || u.Port != 5070 {
		t.Fatalf("removed %v, want the advertised entry", u)
	}
	if rt := req.Route(); rt == nil || rt.Address.Host != "10.0.0.9" {
		t.Errorf("top Route %v, want <sip:10.0.0.9;lr> (both own entries removed)", rt)
	}
	if !strings.Contains(req.String(), "\r\nRoute: <sip:10.0.0.9;lr>\r\n") || strings.Count(req.String(), "Route:") != 1 {
		t.Errorf("request renders as\n%s", req.String())
	}
}
