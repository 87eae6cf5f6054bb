package sipproxy

import (
	"bytes"
	"context"
	"github.com/imscore/imscore/pkg/siptest"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

func newTestProxy(t testing.TB, h Handler, mods ...func(*Config)) *Proxy {
	t.Helper()
	cfg := Config{ListenAddr: "127.0.0.1:0", Handler: h, NonInviteTimeout: 5 * time.Second, TimerC: 5 * time.Second}
	for _, m := range mods {
		m(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

type testUAS struct {
	srv *sipgo.Server
	udp *net.UDPAddr
	tcp *net.TCPAddr
	raw chan []byte // raw UDP datagrams as received
}

// newUAS starts a sipgo server on 127.0.0.1 UDP and TCP (random ports).
func newUAS(t testing.TB, setup func(*sipgo.Server)) *testUAS {
	t.Helper()
	u := &testUAS{raw: make(chan []byte, 64)}
	filter := func(info sip.TransportReadProps, data []byte) ([]byte, error) {
		if info.Transport == "UDP" {
			select {
			case u.raw <- bytes.Clone(data):
			default:
			}
		}
		return data, nil
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerReadFilter(filter)))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	u.srv = srv
	setup(srv)
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	tl, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	u.udp = uc.LocalAddr().(*net.UDPAddr)
	u.tcp = tl.Addr().(*net.TCPAddr)
	done := make(chan struct{}, 2)
	go func() { _ = srv.ServeUDP(uc); done <- struct{}{} }()
	go func() { _ = srv.ServeTCP(tl); done <- struct{}{} }()
	t.Cleanup(func() {
		_ = uc.Close()
		_ = tl.Close()
		<-done
		<-done
		_ = ua.Close()
	})
	return u
}

func (u *testUAS) target(transport string) Target {
	port := u.udp.Port
	if transport == "tcp" {
		port = u.tcp.Port
	}
	return Target{NextHop: &sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: port}, Transport: transport}
}

func newClient(t testing.TB) *sipgo.Client {
	t.Helper()
	c := siptest.NewClient(t)
	return c
}

// proxyURI is the proxy's address as a Request-URI host for requests sent to it.
func proxyReq(method sip.RequestMethod, p *Proxy, transport string, user string) *sip.Request {
	a := p.Addr(transport)
	ruri := sip.Uri{Scheme: "sip", User: user, Host: "127.0.0.1", Port: a.Port}
	if transport == "tcp" {
		ruri.UriParams = sip.NewParams()
		ruri.UriParams.Add("transport", "tcp")
	}
	req := sip.NewRequest(method, ruri)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "ims.example.org"}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: "ims.example.org"}, Params: sip.NewParams()})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1", Port: 5999}})
	return req
}

func doReq(t testing.TB, c *sipgo.Client, req *sip.Request) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Method, err)
	}
	return res
}

func portStr(p int) string { return strconv.Itoa(p) }

// newRecordingUAS starts a UAS that answers every MESSAGE 200 and hands
// the request to the returned channel.
func newRecordingUAS(t testing.TB) (*testUAS, chan *sip.Request) {
	t.Helper()
	got := make(chan *sip.Request, 4)
	uas := newUAS(t, func(s *sipgo.Server) {
		s.OnMessage(func(req *sip.Request, tx sip.ServerTransaction) {
			got <- req
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
	})
	return uas, got
}

// withRoutes is req with Route headers (reparsed: sipgo's client needs the
// typed Route) sent to the proxy's UDP address.
func withRoutes(t testing.TB, p *Proxy, req *sip.Request, routes ...string) *sip.Request {
	t.Helper()
	for _, r := range routes {
		req.AppendHeader(sip.NewHeader("Route", r))
	}
	msg, err := sip.ParseMessage([]byte(req.String()))
	if err != nil {
		t.Fatal(err)
	}
	req = msg.(*sip.Request)
	req.SetDestination("127.0.0.1:" + portStr(p.Addr("udp").Port))
	return req
}
