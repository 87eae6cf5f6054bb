package diameter

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
)

// noLeaks fails the test when goroutines started during it are still
// running once its other cleanups (node Close, raw connections) are done.
// Call it first in the test so that its cleanup runs last.
func noLeaks(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines before the test, %d after:\n%s", before, n, buf)
		}
	})
}

// rawListener accepts connections for a test that plays the peer by hand.
type rawListener struct {
	l net.Listener
	n *Node // dictionary
}

func listenRaw(t *testing.T) *rawListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	n, err := New(Config{OriginHost: "raw.test", OriginRealm: testRealm, Apps: []App{AppCx, AppSh}})
	if err != nil {
		t.Fatal(err)
	}
	return &rawListener{l: l, n: n}
}

func (rl *rawListener) addr() string { return rl.l.Addr().String() }

func (rl *rawListener) accept(t *testing.T) *rawConn {
	t.Helper()
	type res struct {
		nc  net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		nc, err := rl.l.Accept()
		ch <- res{nc, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Cleanup(func() { r.nc.Close() })
		r.nc.SetDeadline(time.Now().Add(10 * time.Second))
		return &rawConn{nc: r.nc, n: rl.n}
	case <-time.After(5 * time.Second):
		rl.l.Close()
		<-ch
		t.Fatal("no connection to the raw listener")
	}
	return nil
}

// read reads and decodes one message.
func (rc *rawConn) read(t *testing.T) *diam.Message {
	t.Helper()
	b, err := readFrame(rc.nc)
	if err != nil {
		t.Fatalf("reading: %v", err)
	}
	m, err := Decode(b, rc.n.Dictionary())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// cerOpts describes a hand-made CER.
type cerOpts struct {
	host     string
	vsai     []App    // in Vendor-Specific-Application-Id
	auth     []uint32 // top-level Auth-Application-Id
	hostIP   net.IP   // default 127.0.0.1
	isi      []uint32 // Inband-Security-Id values
	stateID  uint32
	noRealm  bool
	e2e, hbh uint32
}

func (o cerOpts) build(p *Node) *diam.Message {
	m := diam.NewMessage(CmdCapabilitiesExchange, diam.RequestFlag, 0, max(o.hbh, 1), max(o.e2e, 1), p.Dictionary())
	m.AddAVP(NewAVP(AVPOriginHost, datatype.DiameterIdentity(o.host)))
	if !o.noRealm {
		m.AddAVP(NewAVP(AVPOriginRealm, datatype.DiameterIdentity(testRealm)))
	}
	ip := o.hostIP
	if ip == nil {
		ip = net.IPv4(127, 0, 0, 1)
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	m.AddAVP(NewAVP(AVPHostIPAddress, datatype.Address(ip)))
	m.AddAVP(NewAVP(AVPVendorID, datatype.Unsigned32(0)))
	m.AddAVP(NewAVP(AVPProductName, datatype.UTF8String("freeDiameter")))
	if o.stateID != 0 {
		m.AddAVP(NewAVP(AVPOriginStateID, datatype.Unsigned32(o.stateID)))
	}
	for _, v := range o.isi {
		m.AddAVP(NewAVP(AVPInbandSecurityID, datatype.Unsigned32(v)))
	}
	for _, a := range o.auth {
		m.AddAVP(NewAVP(AVPAuthApplicationID, datatype.Unsigned32(a)))
	}
	for _, a := range o.vsai {
		m.AddAVP(VendorSpecificAppID(a))
	}
	return m
}

// exchange sends the CER of o and returns the CEA.
func (rc *rawConn) exchange(t *testing.T, o cerOpts) *diam.Message {
	t.Helper()
	rc.write(t, o.build(rc.n))
	cea := rc.read(t)
	if cea.Header.CommandCode != CmdCapabilitiesExchange || cea.Header.CommandFlags&diam.RequestFlag != 0 {
		t.Fatalf("expected CEA, got %v", cea)
	}
	return cea
}

// checkIdentityAVPs checks what every CER and CEA carries (RFC 6733
// §5.3.1, §5.3.2), failure CEAs included.
func checkIdentityAVPs(t *testing.T, what string, m *diam.Message, host string, wantIP net.IP) {
	t.Helper()
	if got := String(m, AVPOriginHost); got != host {
		t.Errorf("%s: Origin-Host %q, want %q", what, got, host)
	}
	if got := String(m, AVPOriginRealm); got != testRealm {
		t.Errorf("%s: Origin-Realm %q", what, got)
	}
	ips := FindAll(m, AVPHostIPAddress)
	if len(ips) == 0 {
		t.Errorf("%s: no Host-IP-Address", what)
	}
	for _, a := range ips {
		ip, _ := AsIP(a)
		if ip == nil || ip.IsUnspecified() {
			t.Errorf("%s: Host-IP-Address %v", what, ip)
		} else if wantIP != nil && !ip.Equal(wantIP) {
			t.Errorf("%s: Host-IP-Address %v, want %v", what, ip, wantIP)
		}
	}
	if v, ok := Uint32(m, AVPVendorID); !ok || v != Vendor3GPP {
		t.Errorf("%s: Vendor-Id %d (present %v), want the default %d", what, v, ok, Vendor3GPP)
	}
	if String(m, AVPProductName) == "" {
		t.Errorf("%s: no Product-Name", what)
	}
	if _, ok := Uint32(m, AVPOriginStateID); !ok {
		t.Errorf("%s: no Origin-State-Id", what)
	}
	if Find(m, AVPInbandSecurityID) != nil {
		t.Errorf("%s: Inband-Security-Id sent (NOT RECOMMENDED by RFC 6733 §6.10)", what)
	}
}

// checkApps checks the application part of a successful CER/CEA: 10415 in
// Supported-Vendor-Id, one Vendor-Specific-Application-Id per 3GPP
// application with exactly one Vendor-Id and one Auth-Application-Id (no
// Acct-Application-Id), and no 3GPP application outside it.
func checkApps(t *testing.T, what string, m *diam.Message, want ...App) {
	t.Helper()
	if v, _ := Uint32(m, AVPSupportedVendorID); v != Vendor3GPP {
		t.Errorf("%s: Supported-Vendor-Id %d", what, v)
	}
	vsai := FindAll(m, AVPVendorSpecificApplicationID)
	if len(vsai) != len(want) {
		t.Errorf("%s: %d Vendor-Specific-Application-Id, want %d", what, len(vsai), len(want))
	}
	for i, g := range vsai {
		kids := Children(g)
		vendors, auth, acct := FindIn(kids, AVPVendorID), FindIn(kids, AVPAuthApplicationID), FindIn(kids, AVPAcctApplicationID)
		if len(vendors) != 1 || len(auth) != 1 || len(acct) != 0 {
			t.Errorf("%s: Vendor-Specific-Application-Id %d holds %d Vendor-Id, %d Auth-, %d Acct-Application-Id",
				what, i, len(vendors), len(auth), len(acct))
			continue
		}
		v, _ := AsUint32(vendors[0])
		a, _ := AsUint32(auth[0])
		if v != Vendor3GPP || i >= len(want) || a != uint32(want[i]) {
			t.Errorf("%s: Vendor-Specific-Application-Id %d = {%d, %d}", what, i, v, a)
		}
	}
	if top := FindAll(m, AVPAuthApplicationID); len(top) != 0 {
		t.Errorf("%s: top-level Auth-Application-Id %v for 3GPP applications", what, top)
	}
	if Find(m, AVPAcctApplicationID) != nil {
		t.Errorf("%s: Acct-Application-Id", what)
	}
}

// TestCERContents: our CER (RFC 6733 §5.3.1) as a peer receives it. With
// HostIPs holding only unspecified addresses (as a --listen 0.0.0.0 would
// give), Host-IP-Address must be the connection's local address; Vendor-Id
// is the default 10415 (it was 0 for the CSCFs, which pass none).
func TestCERContents(t *testing.T) {
	noLeaks(t)
	rl := listenRaw(t)
	icscf := testNode(t, icscfHost, func(c *Config) {
		c.Apps = []App{AppCx, AppSh}
		c.HostIPs = []net.IP{net.IPv4zero, net.IPv6unspecified}
		c.FirmwareRevision = 10203
	})
	p, err := icscf.Connect(context.Background(), PeerConfig{Addr: rl.addr(), Host: hssHost})
	if err != nil {
		t.Fatal(err)
	}
	rc := rl.accept(t)
	cer := rc.read(t)
	if cer.Header.CommandCode != CmdCapabilitiesExchange || cer.Header.CommandFlags&diam.RequestFlag == 0 {
		t.Fatalf("first message %v, want CER", cer)
	}
	checkIdentityAVPs(t, "CER", cer, icscfHost, net.IPv4(127, 0, 0, 1))
	checkApps(t, "CER", cer, AppCx, AppSh)
	if v, _ := Uint32(cer, AVPFirmwareRevision); v != 10203 {
		t.Errorf("Firmware-Revision %d", v)
	}
	if !AVPOriginHost.Is(cer.AVP[0]) || !AVPOriginRealm.Is(cer.AVP[1]) {
		t.Errorf("CER does not start with Origin-Host, Origin-Realm (RFC 6733 §5.3.1): %v", cer)
	}
	// A freeDiameter-like CEA: Relay only, another Host-IP-Address.
	cea := diam.NewMessage(CmdCapabilitiesExchange, 0, 0, cer.Header.HopByHopID, cer.Header.EndToEndID, rc.n.Dictionary())
	cea.AddAVP(NewAVP(AVPResultCode, datatype.Unsigned32(DiameterSuccess)))
	cea.AddAVP(NewAVP(AVPOriginHost, datatype.DiameterIdentity(hssHost)))
	cea.AddAVP(NewAVP(AVPOriginRealm, datatype.DiameterIdentity(testRealm)))
	cea.AddAVP(NewAVP(AVPHostIPAddress, datatype.Address(net.IPv4(192, 0, 2, 7).To4())))
	cea.AddAVP(NewAVP(AVPVendorID, datatype.Unsigned32(0)))
	cea.AddAVP(NewAVP(AVPProductName, datatype.UTF8String("freeDiameter")))
	cea.AddAVP(NewAVP(AVPInbandSecurityID, datatype.Unsigned32(0)))
	cea.AddAVP(NewAVP(AVPAuthApplicationID, datatype.Unsigned32(uint32(AppRelay))))
	rc.write(t, cea)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitOpen(ctx); err != nil {
		t.Fatalf("CEA with Relay only not accepted: %v", err)
	}
	if got := p.Conn().Apps(); len(got) != 2 {
		t.Errorf("common applications %v, want Cx and Sh", got)
	}
}

// TestCEAContents: our CEA (RFC 6733 §5.3.2), successful and failed. A
// failed CEA still carries Origin-Host/Realm, Host-IP-Address, Vendor-Id,
// Product-Name, and says why in Error-Message (it had none).
func TestCEAContents(t *testing.T) {
	noLeaks(t)
	hss := testNode(t, hssHost, func(c *Config) {
		c.Apps = []App{AppCx, AppSh}
		c.HostIPs = []net.IP{net.IPv4zero}
	})
	addr := listen(t, hss, "127.0.0.1:0")
	lo := net.IPv4(127, 0, 0, 1)

	cea := dialRaw(t, addr).exchange(t, cerOpts{host: icscfHost, vsai: []App{AppCx}})
	if code, _, _ := Result(cea); code != DiameterSuccess || !AVPResultCode.Is(cea.AVP[0]) {
		t.Fatalf("CEA Result-Code %d (first AVP %v)", code, cea.AVP[0])
	}
	checkIdentityAVPs(t, "CEA", cea, hssHost, lo)
	checkApps(t, "CEA", cea, AppCx, AppSh)
	if Find(cea, AVPErrorMessage) != nil {
		t.Error("successful CEA with Error-Message")
	}

	for _, tc := range []struct {
		name string
		cer  cerOpts
		code uint32
		fail AVPCode
	}{
		{"unknown peer", cerOpts{host: "stranger.example.net", vsai: []App{AppCx}}, DiameterUnknownPeer, 0},
		{"no common application", cerOpts{host: icscfHost, vsai: []App{AppRx}}, DiameterNoCommonApplication, 0},
		{"TLS only", cerOpts{host: icscfHost, vsai: []App{AppCx}, isi: []uint32{1}}, DiameterNoCommonSecurity, 0},
		{"no Origin-Realm", cerOpts{host: icscfHost, vsai: []App{AppCx}, noRealm: true}, DiameterMissingAVP, AVPOriginRealm},
	} {
		rc := dialRaw(t, addr)
		cea := rc.exchange(t, tc.cer)
		if code, _, _ := Result(cea); code != tc.code {
			t.Errorf("%s: Result-Code %d, want %d", tc.name, code, tc.code)
			continue
		}
		if (tc.code >= 3000 && tc.code < 4000) != (cea.Header.CommandFlags&diam.ErrorFlag != 0) {
			t.Errorf("%s: E bit %v for %d", tc.name, cea.Header.CommandFlags&diam.ErrorFlag != 0, tc.code)
		}
		checkIdentityAVPs(t, tc.name, cea, hssHost, lo)
		if String(cea, AVPErrorMessage) == "" {
			t.Errorf("%s: failed CEA without Error-Message", tc.name)
		}
		if len(offeredApps(cea)) != 0 {
			t.Errorf("%s: failed CEA advertises applications %v", tc.name, offeredApps(cea))
		}
		if tc.fail != 0 && Find(cea, AVPFailedAVP, tc.fail) == nil {
			t.Errorf("%s: Failed-AVP does not name %s", tc.name, tc.fail)
		}
		rc.nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := readFrame(rc.nc); err == nil {
			t.Errorf("%s: connection still open after the failed CEA", tc.name)
		}
	}
}

// TestCERVariantsAccepted: the CERs standard peers send are accepted and
// the connection then carries a UAR: Cx only in
// Vendor-Specific-Application-Id (Kamailio cdp, open5gs), Cx only as a
// top-level Auth-Application-Id, the Relay application only
// (freeDiameter), a Host-IP-Address that is not the source address
// (freeDiameter advertises its configured endpoints), and
// Inband-Security-Id NO_INBAND_SECURITY alone or with TLS.
func TestCERVariantsAccepted(t *testing.T) {
	noLeaks(t)
	hss := testNode(t, hssHost, nil)
	hss.Handle(CmdUserAuthorization, AppCx, uarHandler(hss))
	addr := listen(t, hss, "127.0.0.1:0")
	for _, tc := range []struct {
		name string
		cer  cerOpts
	}{
		{"VSAI only", cerOpts{vsai: []App{AppCx}}},
		{"Auth-Application-Id only", cerOpts{auth: []uint32{uint32(AppCx)}}},
		{"Relay only", cerOpts{auth: []uint32{uint32(AppRelay)}}},
		{"Host-IP-Address not the source", cerOpts{auth: []uint32{uint32(AppRelay)}, hostIP: net.IPv4(192, 0, 2, 99)}},
		{"IPv6 Host-IP-Address", cerOpts{vsai: []App{AppCx}, hostIP: net.ParseIP("2001:db8::5")}},
		{"NO_INBAND_SECURITY", cerOpts{vsai: []App{AppCx}, isi: []uint32{0}}},
		{"NO_INBAND_SECURITY or TLS", cerOpts{vsai: []App{AppCx}, isi: []uint32{1, 0}}},
	} {
		tc.cer.host = icscfHost
		rc := dialRaw(t, addr)
		cea := rc.exchange(t, tc.cer)
		if code, _, _ := Result(cea); code != DiameterSuccess {
			t.Errorf("%s: CEA Result-Code %d: %s", tc.name, code, String(cea, AVPErrorMessage))
			continue
		}
		if got := offeredApps(cea); len(got) != 1 || got[0] != uint32(AppCx) {
			t.Errorf("%s: CEA offers %v", tc.name, got)
		}
		uar := newUAR(rc.n, testIMPU)
		rc.write(t, uar)
		if a := rc.read(t); !strings.EqualFold(String(a, AVPOriginHost), hssHost) || a.Header.HopByHopID != uar.Header.HopByHopID {
			t.Errorf("%s: UAR answered by %v", tc.name, a)
		}
	}
}
