package diameter_test

// An external test package: diamtest imports pkg/diameter (its
// conformance checker decodes with diameter.NewParser), so a test of
// package diameter itself cannot import diamtest.

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"go.uber.org/zap/zaptest"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/diameter/diamtest"
)

const (
	testRealm  = "ims.mnc001.mcc001.3gppnetwork.org"
	hssHost    = "hss." + testRealm
	icscfHost  = "icscf." + testRealm
	testIMPU   = "sip:alice@" + testRealm
	testIMPI   = "alice@" + testRealm
	testServer = "sip:scscf." + testRealm + ":5080"
)

func testNode(t *testing.T, host string, mod func(*diameter.Config)) *diameter.Node {
	t.Helper()
	cfg := diameter.Config{
		OriginHost: host, OriginRealm: testRealm, Apps: []diameter.App{diameter.AppCx},
		AllowedPeers:     []string{icscfHost, hssHost},
		WatchdogInterval: 5 * time.Second, ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		Logger: zaptest.NewLogger(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	n, err := diameter.New(cfg)
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

func listen(t *testing.T, n *diameter.Node) string {
	t.Helper()
	a, err := n.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return a.String()
}

func connect(t *testing.T, n *diameter.Node, addr, host string) *diameter.Peer {
	t.Helper()
	p, err := n.Connect(context.Background(), diameter.PeerConfig{Addr: addr, Host: host, Realm: testRealm})
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
func uarHandler(n *diameter.Node) diameter.HandlerFunc {
	return func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
		if diameter.String(req, diameter.AVPPublicIdentity) != testIMPU {
			return nil, &diameter.ResultError{Code: diameter.DiameterErrorUserUnknown, Experimental: true}
		}
		a := n.AnswerExperimental(req, diameter.DiameterFirstRegistration)
		a.AddAVP(diameter.NewAVP(diameter.AVPServerName, datatype.UTF8String(testServer)))
		return a, nil
	}
}

func newUAR(n *diameter.Node, impu string) *diam.Message {
	m := n.NewRequest(diameter.CmdUserAuthorization, diameter.AppCx, testRealm, "")
	m.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(testIMPI)))
	m.AddAVP(diameter.NewAVP(diameter.AVPPublicIdentity, datatype.UTF8String(impu)))
	m.AddAVP(diameter.NewAVP(diameter.AVPVisitedNetworkIdentifier, datatype.OctetString(testRealm)))
	m.AddAVP(diameter.NewAVP(diameter.AVPUserAuthorizationType, datatype.Enumerated(diameter.UATRegistration)))
	return m
}

func send(t *testing.T, n *diameter.Node, m *diam.Message) *diam.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := n.Send(ctx, m)
	if err != nil {
		t.Fatalf("Send %d: %v", m.Header.CommandCode, err)
	}
	return a
}

func TestTsharkDecodesUAR(t *testing.T) {
	hss := testNode(t, hssHost, nil)
	hss.Handle(diameter.CmdUserAuthorization, diameter.AppCx, uarHandler(hss))
	addr := listen(t, hss)
	_, ps, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(ps)

	stop := diamtest.Capture(t, port)
	icscf := testNode(t, icscfHost, nil)
	connect(t, icscf, addr, hssHost)
	a := send(t, icscf, newUAR(icscf, testIMPU))
	if !diameter.IsSuccess(a) {
		t.Fatalf("UAA %v", a)
	}
	pcap := stop()

	diamtest.AssertNoMalformed(t, pcap, port)
	v := diamtest.Read(t, pcap, port, "-V")
	for _, want := range []string{"Capabilities-Exchange", "Command Code: User-Authorization (300)", "Public-Identity", testIMPU, "Server-Name", testServer} {
		if !strings.Contains(strings.ReplaceAll(v, "-", " "), strings.ReplaceAll(want, "-", " ")) {
			t.Errorf("tshark -V output lacks %q", want)
		}
	}
	if sum := diamtest.Read(t, pcap, port); !strings.Contains(sum, "User-Authorization Request") || !strings.Contains(sum, "User-Authorization Answer") {
		t.Errorf("tshark summary lacks the UAR/UAA:\n%s", sum)
	}
	if testing.Verbose() {
		t.Logf("tshark summary:\n%s", diamtest.Read(t, pcap, port))
	}
}
