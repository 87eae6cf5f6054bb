package diameter

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"go.uber.org/zap/zaptest"
)

const (
	testRealm  = "ims.mnc001.mcc001.3gppnetwork.org"
	hssHost    = "hss." + testRealm
	icscfHost  = "icscf." + testRealm
	scscfHost  = "scscf." + testRealm
	testIMPU   = "sip:alice@" + testRealm
	testIMPI   = "alice@" + testRealm
	testServer = "sip:scscf." + testRealm + ":5080"
)

func testNode(t *testing.T, host string, mod func(*Config)) *Node {
	t.Helper()
	cfg := Config{
		OriginHost: host, OriginRealm: testRealm, Apps: []App{AppCx},
		AllowedPeers:     []string{icscfHost, scscfHost, hssHost},
		WatchdogInterval: 5 * time.Second, ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		Logger: zaptest.NewLogger(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	return n
}

func listen(t *testing.T, n *Node, addr string) string {
	t.Helper()
	a, err := n.Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return a.String()
}

func connect(t *testing.T, n *Node, addr, host string) *Peer {
	t.Helper()
	p, err := n.Connect(context.Background(), PeerConfig{Addr: addr, Host: host, Realm: testRealm})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitOpen(ctx); err != nil {
		t.Fatalf("peer %s not open: %v", addr, err)
	}
	return p
}

// uarHandler answers a UAR like an HSS would for a first registration.
func uarHandler(n *Node) HandlerFunc {
	return func(ctx context.Context, c *Conn, req *diam.Message) (*diam.Message, error) {
		if String(req, AVPPublicIdentity) != testIMPU {
			return nil, &ResultError{Code: DiameterErrorUserUnknown, Experimental: true}
		}
		a := n.AnswerExperimental(req, DiameterFirstRegistration)
		a.AddAVP(NewAVP(AVPServerName, datatype.UTF8String(testServer)))
		return a, nil
	}
}

func newUAR(n *Node, impu string) *diam.Message {
	m := n.NewRequest(CmdUserAuthorization, AppCx, testRealm, "")
	m.AddAVP(NewAVP(AVPUserName, datatype.UTF8String(testIMPI)))
	if impu != "" {
		m.AddAVP(NewAVP(AVPPublicIdentity, datatype.UTF8String(impu)))
	}
	m.AddAVP(NewAVP(AVPVisitedNetworkIdentifier, datatype.OctetString(testRealm)))
	m.AddAVP(NewAVP(AVPUserAuthorizationType, datatype.Enumerated(UATRegistration)))
	return m
}

func send(t *testing.T, n *Node, m *diam.Message) *diam.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := n.Send(ctx, m)
	if err != nil {
		t.Fatalf("Send %d: %v", m.Header.CommandCode, err)
	}
	return a
}

func TestCapabilitiesExchangeAndWatchdog(t *testing.T) {
	hss := testNode(t, hssHost, func(c *Config) { c.WatchdogInterval = 100 * time.Millisecond })
	addr := listen(t, hss, "127.0.0.1:0")
	icscf := testNode(t, icscfHost, func(c *Config) { c.WatchdogInterval = 100 * time.Millisecond })
	p := connect(t, icscf, addr, hssHost)
	c := p.Conn()
	if c.PeerHost() != hssHost || c.PeerRealm() != testRealm {
		t.Errorf("peer %q/%q", c.PeerHost(), c.PeerRealm())
	}
	if got := c.Apps(); len(got) != 1 || got[0] != uint32(AppCx) {
		t.Errorf("common apps %v, want [Cx]", got)
	}
	if !icscf.Ready() {
		t.Error("client not ready with its only peer open")
	}
	// Idle for several Tw: both sides send DWRs and get DWAs.
	time.Sleep(600 * time.Millisecond)
	sc := hss.Conns()
	if len(sc) != 1 || sc[0].PeerHost() != icscfHost {
		t.Fatalf("server conns %v", sc)
	}
	// Any received message resets Tw, so whichever side fires first keeps
	// the other quiet; together they must have completed several exchanges.
	if c.Err() != nil || c.dwa.Load()+sc[0].dwa.Load() < 2 {
		t.Errorf("watchdog: err %v, DWAs client %d server %d", c.Err(), c.dwa.Load(), sc[0].dwa.Load())
	}
}

func TestUnknownPeerGets3010(t *testing.T) {
	hss := testNode(t, hssHost, nil)
	addr := listen(t, hss, "127.0.0.1:0")
	stranger := testNode(t, "stranger.example.net", nil)
	p, err := stranger.Connect(context.Background(), PeerConfig{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := p.WaitOpen(ctx); err == nil {
		t.Fatal("unknown peer got an open connection")
	}
	// Raw check of the CEA itself.
	rc := dialRaw(t, addr)
	cea := rc.cer(t, "stranger.example.net", []uint32{uint32(AppCx)}, true)
	if code, _, _ := Result(cea); code != DiameterUnknownPeer {
		t.Errorf("CEA Result-Code %d, want 3010", code)
	}
	if cea.Header.CommandFlags&diam.ErrorFlag == 0 {
		t.Error("3010 CEA without E bit")
	}
	rc.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := readFrame(rc.nc); err == nil {
		t.Error("connection still open after 3010")
	}
}

func TestCEAAdvertisesOnlyCx(t *testing.T) {
	hss := testNode(t, hssHost, nil)
	addr := listen(t, hss, "127.0.0.1:0")
	// A freeDiameter-like CER offering the Relay application only.
	rc := dialRaw(t, addr)
	cea := rc.cer(t, icscfHost, []uint32{uint32(AppRelay)}, false)
	if code, _, _ := Result(cea); code != DiameterSuccess {
		t.Fatalf("CEA Result-Code %d", code)
	}
	got := offeredApps(cea)
	if len(got) != 1 || got[0] != uint32(AppCx) {
		t.Errorf("CEA advertises %v, want only %d", got, AppCx)
	}
	if len(FindAll(cea, AVPVendorSpecificApplicationID)) != 1 {
		t.Error("CEA without one Vendor-Specific-Application-Id")
	}
	// A CER offering only Sh gets 5010.
	rc2 := dialRaw(t, addr)
	cea2 := rc2.cer(t, icscfHost, []uint32{uint32(AppSh)}, true)
	if code, _, _ := Result(cea2); code != DiameterNoCommonApplication {
		t.Errorf("CER for Sh only: Result-Code %d, want 5010", code)
	}
}

func TestUARAnswered(t *testing.T) {
	hss := testNode(t, hssHost, nil)
	hss.Handle(CmdUserAuthorization, AppCx, uarHandler(hss))
	addr := listen(t, hss, "127.0.0.1:0")
	icscf := testNode(t, icscfHost, nil)
	connect(t, icscf, addr, hssHost)

	req := newUAR(icscf, testIMPU)
	a := send(t, icscf, req)
	if code, exp, _ := Result(a); code != DiameterFirstRegistration || !exp {
		t.Errorf("UAA result %d experimental=%v", code, exp)
	}
	if got := String(a, AVPServerName); got != testServer {
		t.Errorf("Server-Name %q", got)
	}
	if String(a, AVPSessionID) != String(req, AVPSessionID) || !AVPSessionID.Is(a.AVP[0]) {
		t.Error("Session-Id not echoed first")
	}
	if String(a, AVPOriginHost) != hssHost || String(a, AVPOriginRealm) != testRealm {
		t.Error("Origin-Host/Realm missing")
	}
	if v, _ := Uint32(a, AVPAuthSessionState); v != NoStateMaintained {
		t.Error("Auth-Session-State not echoed")
	}
	// Unknown user: handler's ResultError becomes an experimental 5001.
	a = send(t, icscf, newUAR(icscf, "sip:nobody@"+testRealm))
	if code, exp, _ := Result(a); code != DiameterErrorUserUnknown || !exp {
		t.Errorf("unknown user: %d experimental=%v", code, exp)
	}
	// An unknown realm has no route.
	bad := icscf.NewRequest(CmdUserAuthorization, AppCx, "other.example.net", "")
	if _, err := icscf.Send(context.Background(), bad); !errors.Is(err, ErrNoRoute) {
		t.Errorf("unknown realm: %v, want ErrNoRoute", err)
	}
}

func TestUnsupportedCommandGets3001(t *testing.T) {
	hss := testNode(t, hssHost, nil)
	hss.Handle(CmdUserAuthorization, AppCx, uarHandler(hss))
	addr := listen(t, hss, "127.0.0.1:0")
	icscf := testNode(t, icscfHost, nil)
	connect(t, icscf, addr, hssHost)

	// LIR: in the dictionary, no handler.
	lir := icscf.NewRequest(CmdLocationInfo, AppCx, testRealm, "")
	lir.AddAVP(NewAVP(AVPPublicIdentity, datatype.UTF8String(testIMPU)))
	a := send(t, icscf, lir)
	if code, _, _ := Result(a); code != DiameterCommandUnsupported || a.Header.CommandFlags&diam.ErrorFlag == 0 {
		t.Errorf("LIR: Result-Code %d flags %#x, want 3001 with E bit", code, a.Header.CommandFlags)
	}
	// A command code that no dictionary knows, on a raw connection.
	rc := dialRaw(t, addr)
	rc.cer(t, icscfHost, []uint32{uint32(AppCx)}, false)
	m := icscf.NewRequest(4242, AppCx, testRealm, "")
	rc.write(t, m)
	h, avps := rc.readRaw(t)
	if h.CommandCode != 4242 || h.HopByHopID != m.Header.HopByHopID || h.CommandFlags&diam.RequestFlag != 0 {
		t.Errorf("answer header %+v", h)
	}
	if code, _ := AsUint32(firstOf(avps, AVPResultCode)); code != DiameterCommandUnsupported {
		t.Errorf("unknown command: Result-Code %d, want 3001", code)
	}
	// The connection still works.
	rc.write(t, newUAR(icscf, testIMPU))
	if _, avps := rc.readRaw(t); firstOf(avps, AVPExperimentalResult) == nil {
		t.Error("UAR after unknown command not answered")
	}
}

func TestMissingAVPGets5005(t *testing.T) {
	hss := testNode(t, hssHost, nil)
	hss.Handle(CmdUserAuthorization, AppCx, uarHandler(hss))
	hss.Handle(CmdMultimediaAuth, AppCx, func(ctx context.Context, c *Conn, req *diam.Message) (*diam.Message, error) {
		return nil, MissingAVP(AVPSIPAuthenticationScheme)
	})
	addr := listen(t, hss, "127.0.0.1:0")
	icscf := testNode(t, icscfHost, nil)
	connect(t, icscf, addr, hssHost)

	a := send(t, icscf, newUAR(icscf, "")) // no Public-Identity
	if code, _, _ := Result(a); code != DiameterMissingAVP {
		t.Fatalf("Result-Code %d, want 5005", code)
	}
	f := Find(a, AVPFailedAVP, AVPPublicIdentity)
	if f == nil || f.VendorID != Vendor3GPP {
		t.Errorf("Failed-AVP does not name Public-Identity: %v", a)
	}
	// A handler reporting a missing AVP inside a grouped one.
	mar := icscf.NewRequest(CmdMultimediaAuth, AppCx, testRealm, "")
	mar.AddAVP(NewAVP(AVPUserName, datatype.UTF8String(testIMPI)))
	mar.AddAVP(NewAVP(AVPPublicIdentity, datatype.UTF8String(testIMPU)))
	mar.AddAVP(Grouped(AVPSIPAuthDataItem))
	mar.AddAVP(NewAVP(AVPSIPNumberAuthItems, datatype.Unsigned32(1)))
	mar.AddAVP(NewAVP(AVPServerName, datatype.UTF8String(testServer)))
	a = send(t, icscf, mar)
	if code, _, _ := Result(a); code != DiameterMissingAVP || Find(a, AVPFailedAVP, AVPSIPAuthenticationScheme) == nil {
		t.Errorf("handler MissingAVP: %v", a)
	}
}

func TestHandlerErrorAndPanic(t *testing.T) {
	hss := testNode(t, hssHost, nil)
	var calls atomic.Int32
	hss.Handle(CmdUserAuthorization, AppCx, func(ctx context.Context, c *Conn, req *diam.Message) (*diam.Message, error) {
		switch calls.Add(1) {
		case 1:
			return nil, errors.New("database down")
		case 2:
			panic("handler bug")
		}
		return uarHandler(hss)(ctx, c, req)
	})
	addr := listen(t, hss, "127.0.0.1:0")
	icscf := testNode(t, icscfHost, nil)
	connect(t, icscf, addr, hssHost)
	for i, want := range []uint32{DiameterUnableToComply, DiameterUnableToComply, DiameterFirstRegistration} {
		a := send(t, icscf, newUAR(icscf, testIMPU))
		if code, _, _ := Result(a); code != want {
			t.Errorf("call %d: result %d, want %d", i+1, code, want)
		}
	}
}

func TestServerInitiatedRTR(t *testing.T) {
	hss := testNode(t, hssHost, nil)
	addr := listen(t, hss, "127.0.0.1:0")
	scscf := testNode(t, scscfHost, nil)
	got := make(chan string, 1)
	scscf.Handle(CmdRegistrationTermination, AppCx, func(ctx context.Context, c *Conn, req *diam.Message) (*diam.Message, error) {
		got <- String(req, AVPPublicIdentity)
		return scscf.Answer(req, DiameterSuccess), nil
	})
	connect(t, scscf, addr, hssHost)

	rtr := hss.NewRequest(CmdRegistrationTermination, AppCx, testRealm, scscfHost)
	rtr.AddAVP(NewAVP(AVPUserName, datatype.UTF8String(testIMPI)))
	rtr.AddAVP(NewAVP(AVPPublicIdentity, datatype.UTF8String(testIMPU)))
	rtr.AddAVP(Grouped(AVPDeregistrationReason,
		NewAVP(AVPReasonCode, datatype.Enumerated(ReasonPermanentTermination))))
	a := send(t, hss, rtr)
	if code, _, _ := Result(a); code != DiameterSuccess {
		t.Errorf("RTA result %d", code)
	}
	if String(a, AVPOriginHost) != scscfHost {
		t.Errorf("RTA from %q", String(a, AVPOriginHost))
	}
	if impu := <-got; impu != testIMPU {
		t.Errorf("RTR Public-Identity %q", impu)
	}
}

func TestReconnectAfterServerRestart(t *testing.T) {
	hss1 := testNode(t, hssHost, nil)
	hss1.Handle(CmdUserAuthorization, AppCx, uarHandler(hss1))
	addr := listen(t, hss1, "127.0.0.1:0")
	icscf := testNode(t, icscfHost, nil)
	p := connect(t, icscf, addr, hssHost)
	send(t, icscf, newUAR(icscf, testIMPU))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hss1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for p.State() == PeerOpen && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if p.State() == PeerOpen || icscf.Ready() {
		t.Fatal("peer still open after the server closed")
	}
	time.Sleep(300 * time.Millisecond) // a few failed attempts with back-off

	hss2 := testNode(t, hssHost, nil)
	hss2.Handle(CmdUserAuthorization, AppCx, uarHandler(hss2))
	listen(t, hss2, addr)
	if err := p.WaitOpen(ctx); err != nil {
		t.Fatalf("no reconnect: %v", err)
	}
	if a := send(t, icscf, newUAR(icscf, testIMPU)); !IsSuccess(a) {
		t.Errorf("UAR after reconnect: %v", a)
	}
}

func TestDPROnClose(t *testing.T) {
	hss := testNode(t, hssHost, nil)
	addr := listen(t, hss, "127.0.0.1:0")
	icscf := testNode(t, icscfHost, nil)
	p := connect(t, icscf, addr, hssHost)
	var sc *Conn
	for deadline := time.Now().Add(2 * time.Second); sc == nil && time.Now().Before(deadline); {
		if cs := hss.Conns(); len(cs) == 1 {
			sc = cs[0]
		}
	}
	if sc == nil {
		t.Fatal("server has no connection")
	}
	cc := p.Conn()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatalf("Close: %v (DPA not received?)", err)
	}
	select {
	case <-sc.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("server connection still open after DPR")
	}
	if !sc.dpr.Load() || sc.Err() != nil {
		t.Errorf("server side: DPR seen %v, close error %v", sc.dpr.Load(), sc.Err())
	}
	if cc.Err() != nil {
		t.Errorf("client side close error %v", cc.Err())
	}
	if p.State() != PeerClosed {
		t.Errorf("peer state %v", p.State())
	}
}

// The go-diameter v4.3.0 server with MaxConcurrentHandlers sometimes drops a
// request sent right after the CEA (see node.go). This node must answer
// every such request.
func TestRequestRightAfterCEA(t *testing.T) {
	hss := testNode(t, hssHost, func(c *Config) { c.Logger = nil })
	hss.Handle(CmdUserAuthorization, AppCx, uarHandler(hss))
	addr := listen(t, hss, "127.0.0.1:0")
	client := testNode(t, icscfHost, func(c *Config) { c.Logger = nil })
	const conns, parallel = 200, 20
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	var failed atomic.Int32
	for i := 0; i < conns; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				failed.Add(1)
				return
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			rc := &rawConn{nc: nc, n: client}
			if err := rc.tryCER(icscfHost, []uint32{uint32(AppCx)}); err != nil {
				t.Error(err)
				failed.Add(1)
				return
			}
			uar := newUAR(client, testIMPU)
			b, _ := uar.Serialize()
			if _, err := nc.Write(b); err != nil {
				t.Error(err)
				failed.Add(1)
				return
			}
			fb, err := readFrame(nc)
			if err != nil {
				t.Errorf("connection %d: no UAA: %v", i, err)
				failed.Add(1)
				return
			}
			a, err := Decode(fb, client.Dictionary())
			if err != nil || a.Header.HopByHopID != uar.Header.HopByHopID || !IsSuccess(a) {
				t.Errorf("connection %d: bad UAA %v %v", i, a, err)
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d first requests unanswered", n, conns)
	}
}

// TestMaxConcurrentRequests checks that a connection runs at most
// MaxConcurrentRequests handlers at once (the reader waits for a free
// worker) and that every queued request is answered once one frees up.
func TestMaxConcurrentRequests(t *testing.T) {
	const limit, requests = 3, 8
	hss := testNode(t, hssHost, func(c *Config) { c.MaxConcurrentRequests = limit })
	release := make(chan struct{})
	var inFlight, peak atomic.Int32
	hss.Handle(CmdUserAuthorization, AppCx, func(ctx context.Context, c *Conn, req *diam.Message) (*diam.Message, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		return uarHandler(hss)(ctx, c, req)
	})
	addr := listen(t, hss, "127.0.0.1:0")
	icscf := testNode(t, icscfHost, nil)
	connect(t, icscf, addr, hssHost)

	answers := make(chan uint32, requests)
	for range requests {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a, err := icscf.Send(ctx, newUAR(icscf, testIMPU))
			if err != nil {
				t.Errorf("Send: %v", err)
				answers <- 0
				return
			}
			code, _, _ := Result(a)
			answers <- code
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for inFlight.Load() < limit && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // room for a handler too many to start
	if got := peak.Load(); got != limit {
		t.Errorf("%d handlers ran at once, want %d", got, limit)
	}
	close(release)
	for range requests {
		if code := <-answers; code != DiameterFirstRegistration {
			t.Errorf("answer %d, want %d", code, DiameterFirstRegistration)
		}
	}
	if got := peak.Load(); got > limit {
		t.Errorf("%d handlers ran at once, want at most %d", got, limit)
	}
}
