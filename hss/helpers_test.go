package hss_test

import (
	"context"
	"encoding/hex"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/imscore/imscore/hss"
	"github.com/imscore/imscore/hss/provision"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/pgtest"
)

const (
	realm     = "ims.mnc001.mcc001.3gppnetwork.org"
	hssHost   = "hss." + realm
	scscfHost = "scscf." + realm
	scscfName = "sip:scscf." + realm + ":5080"
	aliceIMPI = "alice@" + realm
	aliceIMPU = "sip:alice@" + realm
	aliceTel  = "tel:+15550001"
	bobIMPI   = "bob@" + realm
	bobIMPU   = "sip:bob@" + realm
	// TS 35.208 test set 1.
	testK  = "465b5ce8b199b49faa5f0a2ee238a6bc"
	testOP = "cdc202d5123e20f62b6d676ac72cb318"
)

type env struct {
	t    *testing.T
	dsn  string
	db   *pgx.Conn
	srv  *hss.Server
	addr string
	reg  *prometheus.Registry
}

// counter returns the value of counter name with labels (0 when absent).
func (e *env) counter(name string, labels map[string]string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// newEnv creates a migrated throw-away database with alice (AKA, test set
// 1, two IMPUs in one IRS) and bob (digest), and starts an HSS on it.
func newEnv(t *testing.T) *env {
	t.Helper()
	dsn, db := pgtest.Migrated(t)
	ctx := context.Background()
	if _, err := provision.AddSubscriber(ctx, db, provision.Subscriber{
		IMPI: aliceIMPI, IMPUs: []string{aliceIMPU, aliceTel}, K: testK, OP: testOP, AMF: "8000",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := provision.AddSubscriber(ctx, db, provision.Subscriber{
		IMPI: bobIMPI, IMPUs: []string{bobIMPU}, Password: "secret",
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO scscf (name, diameter_host, mandatory_capabilities, optional_capabilities)
		VALUES ($1, $2, '{1}', '{2,3}')`, scscfName, scscfHost); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, dsn: dsn, db: db}
	e.start()
	return e
}

func (e *env) start() {
	e.t.Helper()
	e.reg = prometheus.NewRegistry()
	s, err := hss.New(hss.Config{
		Registry: e.reg, DiameterListen: "127.0.0.1:0", Realm: realm, AcceptAnyPeer: true, DatabaseURL: e.dsn,
		PollInterval: 200 * time.Millisecond, Logger: zaptest.NewLogger(e.t), MaxAuthItems: 8,
		// The production default is 2 s; on a CI machine that other
		// jobs load (seen at load average 20: the first SNR's new
		// database connection alone took over 2 s) that budget made
		// tests fail with 5012 while nothing was wrong. A lock that never
		// frees still fails them.
		RequestTimeout: 10 * time.Second,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	a, err := s.Start(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	e.srv, e.addr = s, a.String()
	e.t.Cleanup(func() { e.stop() })
}

func (e *env) stop() {
	if e.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = e.srv.Close(ctx)
	e.srv = nil
}

func (e *env) port() int {
	_, p, _ := net.SplitHostPort(e.addr)
	n, _ := strconv.Atoi(p)
	return n
}

// client connects a Diameter node with identity host to the HSS; setup
// (handlers) runs before it connects.
func (e *env) client(host string, setup ...func(*diameter.Node)) *diameter.Node {
	e.t.Helper()
	return dial(e.t, e.addr, host, setup...)
}

func dial(t testing.TB, addr, host string, setup ...func(*diameter.Node)) *diameter.Node {
	t.Helper()
	n, err := diameter.New(diameter.Config{
		OriginHost: host, OriginRealm: realm, Apps: []diameter.App{diameter.AppCx, diameter.AppSh},
		AcceptAnyPeer: true, ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range setup {
		f(n)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		n.Close(ctx)
	})
	p, err := n.Connect(context.Background(), diameter.PeerConfig{Addr: addr, Host: hssHost, Realm: realm})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitOpen(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func send(t testing.TB, n *diameter.Node, req *diam.Message) *diam.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := n.Send(ctx, req)
	if err != nil {
		t.Fatalf("send %d: %v", req.Header.CommandCode, err)
	}
	return a
}

func vs(code diameter.AVPCode, v string) *diam.AVP {
	return diameter.NewAVP(code, datatype.UTF8String(v))
}
func vu(code diameter.AVPCode, v uint32) *diam.AVP {
	return diameter.NewAVP(code, datatype.Unsigned32(v))
}

func uar(n *diameter.Node, impi, impu string, uat uint32) *diam.Message {
	m := n.NewRequest(diameter.CmdUserAuthorization, diameter.AppCx, realm, "")
	m.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
	m.AddAVP(vs(diameter.AVPPublicIdentity, impu))
	m.AddAVP(diameter.NewAVP(diameter.AVPVisitedNetworkIdentifier, datatype.OctetString(realm)))
	m.AddAVP(diameter.NewAVP(diameter.AVPUserAuthorizationType, datatype.Enumerated(uat)))
	return m
}

func mar(n *diameter.Node, impi, impu, scheme string, items uint32, authz []byte) *diam.Message {
	m := n.NewRequest(diameter.CmdMultimediaAuth, diameter.AppCx, realm, "")
	m.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
	m.AddAVP(vs(diameter.AVPPublicIdentity, impu))
	kids := []*diam.AVP{vs(diameter.AVPSIPAuthenticationScheme, scheme)}
	if authz != nil {
		kids = append(kids, diameter.NewAVP(diameter.AVPSIPAuthorization, datatype.OctetString(authz)))
	}
	m.AddAVP(diameter.Grouped(diameter.AVPSIPAuthDataItem, kids...))
	m.AddAVP(vu(diameter.AVPSIPNumberAuthItems, items))
	m.AddAVP(vs(diameter.AVPServerName, scscfName))
	return m
}

func sar(n *diameter.Node, impi, impu string, sat, udaa uint32) *diam.Message {
	m := n.NewRequest(diameter.CmdServerAssignment, diameter.AppCx, realm, "")
	if impi != "" {
		m.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
	}
	if impu != "" {
		m.AddAVP(vs(diameter.AVPPublicIdentity, impu))
	}
	m.AddAVP(vs(diameter.AVPServerName, scscfName))
	m.AddAVP(diameter.NewAVP(diameter.AVPServerAssignmentType, datatype.Enumerated(sat)))
	m.AddAVP(diameter.NewAVP(diameter.AVPUserDataAlreadyAvailable, datatype.Enumerated(udaa)))
	return m
}

func lir(n *diameter.Node, impu string) *diam.Message {
	m := n.NewRequest(diameter.CmdLocationInfo, diameter.AppCx, realm, "")
	m.AddAVP(vs(diameter.AVPPublicIdentity, impu))
	return m
}

// wantResult checks the answer's Result-Code (experimental false) or
// Experimental-Result-Code.
func wantResult(t testing.TB, a *diam.Message, code uint32, experimental bool) {
	t.Helper()
	c, e, ok := diameter.Result(a)
	if !ok || c != code || e != experimental {
		t.Fatalf("result %d (experimental %v, present %v), want %d (experimental %v)\n%v", c, e, ok, code, experimental, a)
	}
}

// rebuild copies m through f (return nil to drop an AVP, or a replacement)
// so that the header length stays right.
func rebuild(n *diameter.Node, m *diam.Message, f func(*diam.AVP) *diam.AVP) *diam.Message {
	out := diam.NewMessage(m.Header.CommandCode, m.Header.CommandFlags, m.Header.ApplicationID,
		m.Header.HopByHopID, m.Header.EndToEndID, n.Dictionary())
	for _, a := range m.AVP {
		if x := f(a); x != nil {
			out.AddAVP(x)
		}
	}
	return out
}
