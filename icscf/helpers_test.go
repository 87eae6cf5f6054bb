package icscf

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/siptest"
)

const (
	testDomain  = "ims.test"
	testHSSHost = "hss.ims.test"
)

// cxSeen is one UAR or LIR as the test HSS received it.
type cxSeen struct {
	cmd  uint32
	impu string
	impi string
	vnid string
	uat  int  // -1 when absent
	orig bool // Originating-Request present
}

// cxReply scripts an answer of the test HSS.
type cxReply struct {
	code         uint32
	experimental bool
	serverName   string
	caps         bool // add Server-Capabilities
	mandatory    []uint32
	optional     []uint32
	names        []string
	delay        time.Duration
}

// testHSS is a Diameter peer built on pkg/diameter that answers UAR and LIR
// with scripted results. It is a protocol test double, not an HSS.
type testHSS struct {
	node *diameter.Node
	addr string

	mu    sync.Mutex
	seen  []cxSeen
	reply func(r cxSeen, n int) cxReply // n: index of this request of its command
}

func newTestHSS(t *testing.T, reply func(r cxSeen, n int) cxReply) *testHSS {
	t.Helper()
	node, err := diameter.New(diameter.Config{
		OriginHost: testHSSHost, OriginRealm: testDomain,
		Apps: []diameter.App{diameter.AppCx}, AcceptAnyPeer: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := &testHSS{node: node, reply: reply}
	handler := func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
		r := cxSeen{
			cmd:  req.Header.CommandCode,
			impu: diameter.String(req, diameter.AVPPublicIdentity),
			impi: diameter.String(req, diameter.AVPUserName),
			vnid: diameter.String(req, diameter.AVPVisitedNetworkIdentifier),
			uat:  -1,
		}
		if v, ok := diameter.Uint32(req, diameter.AVPUserAuthorizationType); ok {
			r.uat = int(v)
		}
		_, r.orig = diameter.Uint32(req, diameter.AVPOriginatingRequest)
		h.mu.Lock()
		n := 0
		for _, s := range h.seen {
			if s.cmd == r.cmd {
				n++
			}
		}
		h.seen = append(h.seen, r)
		h.mu.Unlock()
		rep := h.reply(r, n)
		if rep.delay > 0 {
			select {
			case <-time.After(rep.delay):
			case <-ctx.Done():
			}
		}
		var ans *diam.Message
		if rep.experimental {
			ans = node.AnswerExperimental(req, rep.code)
		} else {
			ans = node.Answer(req, rep.code)
		}
		if rep.serverName != "" {
			ans.AddAVP(diameter.NewAVP(diameter.AVPServerName, datatype.UTF8String(rep.serverName)))
		}
		if rep.caps {
			var kids []*diam.AVP
			for _, m := range rep.mandatory {
				kids = append(kids, diameter.NewAVP(diameter.AVPMandatoryCapability, datatype.Unsigned32(m)))
			}
			for _, o := range rep.optional {
				kids = append(kids, diameter.NewAVP(diameter.AVPOptionalCapability, datatype.Unsigned32(o)))
			}
			for _, n := range rep.names {
				kids = append(kids, diameter.NewAVP(diameter.AVPServerName, datatype.UTF8String(n)))
			}
			ans.AddAVP(diameter.Grouped(diameter.AVPServerCapabilities, kids...))
		}
		return ans, nil
	}
	node.Handle(diameter.CmdUserAuthorization, diameter.AppCx, handler)
	node.Handle(diameter.CmdLocationInfo, diameter.AppCx, handler)
	ctx, cancel := context.WithCancel(context.Background())
	a, err := node.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h.addr = a.String()
	t.Cleanup(func() {
		cctx, c := context.WithTimeout(context.Background(), 2*time.Second)
		defer c()
		_ = node.Close(cctx)
		cancel()
	})
	return h
}

func (h *testHSS) requests() []cxSeen {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]cxSeen(nil), h.seen...)
}

// uasBehaviour decides how a test S-CSCF answers; nil answers 200 (486 to
// INVITE).
type uasBehaviour func(req *sip.Request) (code int, reason string)

// testSCSCF is a sipgo UAS standing in for an S-CSCF.
type testSCSCF struct {
	name string // sip:scscfN.ims.test:<port>
	port int
	got  chan *sip.Request
	raw  chan []byte
}

func newTestSCSCF(t *testing.T, label string, behave uasBehaviour) *testSCSCF {
	t.Helper()
	s := &testSCSCF{got: make(chan *sip.Request, 16), raw: make(chan []byte, 16)}
	filter := func(info sip.TransportReadProps, data []byte) ([]byte, error) {
		if info.Transport == "UDP" && !bytes.HasPrefix(data, []byte("SIP/2.0")) {
			select {
			case s.raw <- bytes.Clone(data):
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
	h := func(req *sip.Request, tx sip.ServerTransaction) {
		select {
		case s.got <- req.Clone():
		default:
		}
		code, reason := 200, "OK"
		if req.IsInvite() {
			code, reason = 486, "Busy Here"
		}
		if behave != nil {
			code, reason = behave(req)
		}
		if code == 0 {
			return // silent
		}
		_ = tx.Respond(sip.NewResponseFromRequest(req, code, reason, nil))
	}
	srv.OnRegister(h)
	srv.OnInvite(h)
	srv.OnMessage(h)
	srv.OnOptions(h)
	srv.OnAck(func(*sip.Request, sip.ServerTransaction) {})
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s.port = uc.LocalAddr().(*net.UDPAddr).Port
	s.name = fmt.Sprintf("sip:%s.ims.test:%d", label, s.port)
	done := make(chan struct{})
	go func() { _ = srv.ServeUDP(uc); close(done) }()
	t.Cleanup(func() {
		_ = uc.Close()
		<-done
		_ = ua.Close()
	})
	return s
}

// silentSCSCF is a UDP socket that reads requests and never answers.
func silentSCSCF(t *testing.T, label string) *testSCSCF {
	t.Helper()
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &testSCSCF{got: make(chan *sip.Request, 64), raw: make(chan []byte, 64)}
	s.port = uc.LocalAddr().(*net.UDPAddr).Port
	s.name = fmt.Sprintf("sip:%s.ims.test:%d", label, s.port)
	go func() {
		buf := make([]byte, 65535)
		for {
			n, _, err := uc.ReadFrom(buf)
			if err != nil {
				return
			}
			if m, err := sip.ParseMessage(buf[:n]); err == nil {
				if r, ok := m.(*sip.Request); ok {
					select {
					case s.got <- r:
					default:
					}
				}
			}
		}
	}()
	t.Cleanup(func() { _ = uc.Close() })
	return s
}

func (s *testSCSCF) spec(caps ...uint32) string {
	v := s.name
	for i, c := range caps {
		if i == 0 {
			v += ";caps="
		} else {
			v += "+"
		}
		v += strconv.FormatUint(uint64(c), 10)
	}
	return v
}

// next returns the next request the S-CSCF received, or fails.
func (s *testSCSCF) next(t *testing.T) *sip.Request {
	t.Helper()
	select {
	case r := <-s.got:
		return r
	case <-time.After(5 * time.Second):
		t.Fatalf("%s received nothing", s.name)
		return nil
	}
}

// none checks the S-CSCF received nothing.
func (s *testSCSCF) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-s.got:
		t.Errorf("%s unexpectedly received %s", s.name, r.StartLine())
	default:
	}
}

type icscfOpt func(*Config)

// revealUnknownUsers is --reveal-unknown-users: 403 with the UAA in a
// Warning instead of decoy answers.
func revealUnknownUsers(c *Config) { c.RevealUnknownUsers = true }

// startICSCF runs an I-CSCF on 127.0.0.1 with the S-CSCFs given as --scscf
// values; every *.ims.test name resolves to 127.0.0.1.
func startICSCF(t *testing.T, hssAddr string, scscfs []string, opts ...icscfOpt) (*Server, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	logger := siptest.Logger(t) // before s.Close's clean-up: closes after it
	cfg := Config{
		SIPListen:  "127.0.0.1:0",
		Domain:     testDomain,
		HSSAddr:    hssAddr,
		HSSHost:    testHSSHost,
		CxTimeout:  time.Second,
		SIPTimeout: 500 * time.Millisecond,
		Logger:     logger,
		Registerer: reg,
	}
	var resolve []string
	for _, v := range scscfs {
		sc, err := ParseSCSCF(v)
		if err != nil {
			t.Fatal(err)
		}
		cfg.SCSCFs = append(cfg.SCSCFs, sc)
		resolve = append(resolve, sc.URI.Host+"=127.0.0.1")
	}
	r, err := ParseResolve(resolve)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Resolve = r
	for _, o := range opts {
		o(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, reg
}

func waitReady(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		t.Fatalf("HSS peer not open: %v", err)
	}
}

func newUAC(t *testing.T) *sipgo.Client {
	t.Helper()
	c := siptest.NewClient(t)
	return c
}

// newRequest builds a request from alice to the I-CSCF at s (UDP).
func newRequest(s *Server, method sip.RequestMethod, ruri string, to string, hdrs ...sip.Header) *sip.Request {
	var ru, tu sip.Uri
	_ = sip.ParseUri(ruri, &ru)
	_ = sip.ParseUri(to, &tu)
	req := sip.NewRequest(method, ru)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: testDomain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: tu, Params: sip.NewParams()})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1", Port: 5999}})
	for _, h := range hdrs {
		req.AppendHeader(h)
	}
	a := s.SIPAddr("udp")
	req.SetDestination(a.String())
	return req
}

func do(t *testing.T, c *sipgo.Client, req *sip.Request) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", req.Method, err)
	}
	return res
}

func register(s *Server, hdrs ...sip.Header) *sip.Request {
	return newRequest(s, sip.REGISTER, "sip:"+testDomain, "sip:alice@"+testDomain, hdrs...)
}

func header(name, value string) sip.Header { return sip.NewHeader(name, value) }

func itoa(n int) string { return strconv.Itoa(n) }
