package scscf

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/aka"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/imscore/imscore/pkg/siptest"
	"github.com/imscore/imscore/pkg/userdata"
)

const (
	testDomain  = "ims.mnc001.mcc001.3gppnetwork.org"
	testHSSHost = "hss." + testDomain
)

// TS 35.208 test set 1.
var (
	set1K   = mustHex("465b5ce8b199b49faa5f0a2ee238a6bc")
	set1OP  = mustHex("cdc202d5123e20f62b6d676ac72cb318")
	set1AMF = mustHex("8000")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// testSub is one subscriber of the scripted HSS.
type testSub struct {
	impi     string
	impus    []string // IRS, first is the default
	barred   map[string]bool
	scheme   string // "aka" or "md5"
	password string // md5
	sqn      uint64
	ifcs     []userdata.InitialFilterCriteria
}

type cxReq struct {
	cmd    uint32
	impi   string
	impu   string
	scheme string
	n      uint32
	sat    uint32
	uda    uint32
	server string
	resync []byte
}

// testHSS is a scripted Cx peer: it answers MAR with Milenage vectors
// (TS 35.208 set 1 keys) or HA1s, and SAR with a User-Data document, and
// records every request. It is a protocol test double only.
type testHSS struct {
	t    *testing.T
	node *diameter.Node
	addr string

	mu      sync.Mutex
	subs    map[string]*testSub
	reqs    []cxReq
	marFail uint32 // experimental code to answer MAR with, if not 0
	sarFail uint32
	noSAR   bool // answer SAR without User-Data
	gotReq  chan cxReq
}

func newTestHSS(t *testing.T) *testHSS {
	t.Helper()
	n, err := diameter.New(diameter.Config{OriginHost: testHSSHost, OriginRealm: testDomain, Apps: []diameter.App{diameter.AppCx},
		AcceptAnyPeer: true, Logger: siptest.Logger(t).Named("hss")})
	if err != nil {
		t.Fatal(err)
	}
	h := &testHSS{t: t, node: n, subs: map[string]*testSub{}, gotReq: make(chan cxReq, 100)}
	n.Handle(diameter.CmdMultimediaAuth, diameter.AppCx, h.mar)
	n.Handle(diameter.CmdServerAssignment, diameter.AppCx, h.sar)
	a, err := n.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.addr = a.String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return h
}

func (h *testHSS) add(s *testSub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.barred == nil {
		s.barred = map[string]bool{}
	}
	h.subs[s.impi] = s
}

func (h *testHSS) record(r cxReq) {
	h.mu.Lock()
	h.reqs = append(h.reqs, r)
	h.mu.Unlock()
	select {
	case h.gotReq <- r:
	default:
	}
}

func (h *testHSS) requests() []cxReq {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]cxReq(nil), h.reqs...)
}

func (h *testHSS) sars(sat uint32) int {
	n := 0
	for _, r := range h.requests() {
		if r.cmd == diameter.CmdServerAssignment && r.sat == sat {
			n++
		}
	}
	return n
}

// waitSAR waits until a SAR of type sat has been received.
func (h *testHSS) waitSAR(t *testing.T, sat uint32, within time.Duration) cxReq {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, r := range h.requests() {
			if r.cmd == diameter.CmdServerAssignment && r.sat == sat {
				return r
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no SAR with Server-Assignment-Type %d within %v; got %+v", sat, within, h.requests())
	return cxReq{}
}

func (h *testHSS) mar(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	r := cxReq{cmd: diameter.CmdMultimediaAuth, impi: diameter.String(req, diameter.AVPUserName),
		impu: diameter.String(req, diameter.AVPPublicIdentity), server: diameter.String(req, diameter.AVPServerName),
		scheme: diameter.String(req, diameter.AVPSIPAuthDataItem, diameter.AVPSIPAuthenticationScheme)}
	r.n, _ = diameter.Uint32(req, diameter.AVPSIPNumberAuthItems)
	if a := diameter.Find(req, diameter.AVPSIPAuthDataItem, diameter.AVPSIPAuthorization); a != nil {
		r.resync, _ = diameter.AsBytes(a)
	}
	h.record(r)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.marFail != 0 {
		return h.node.AnswerExperimental(req, h.marFail), nil
	}
	s := h.subs[r.impi]
	if s == nil {
		return h.node.AnswerExperimental(req, diameter.DiameterErrorUserUnknown), nil
	}
	want := map[string]string{"aka": SchemeAKAv1, "md5": SchemeDigest}[s.scheme]
	if r.scheme != SchemeUnknown && r.scheme != want {
		return h.node.AnswerExperimental(req, diameter.DiameterErrorAuthSchemeNotSupported), nil
	}
	opc, _ := aka.ComputeOPc(set1K, set1OP)
	if r.resync != nil {
		rnd, auts, err := aka.SplitSIPAuthorization(r.resync)
		if err != nil {
			return h.node.Answer(req, diameter.DiameterUnableToComply), nil
		}
		sqnMS, err := aka.VerifyAUTS(set1K, opc, rnd, auts)
		if err != nil {
			return h.node.Answer(req, diameter.DiameterAuthenticationRejected), nil
		}
		s.sqn = sqnMS
	}
	a := h.node.Answer(req, diameter.DiameterSuccess)
	a.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(r.impi)))
	n := int(r.n)
	if s.scheme == "md5" {
		n = 1
	}
	a.AddAVP(diameter.NewAVP(diameter.AVPSIPNumberAuthItems, datatype.Unsigned32(uint32(n))))
	for i := 0; i < n; i++ {
		if s.scheme == "md5" {
			a.AddAVP(diameter.Grouped(diameter.AVPSIPAuthDataItem,
				diameter.NewAVP(diameter.AVPSIPItemNumber, datatype.Unsigned32(uint32(i+1))),
				diameter.NewAVP(diameter.AVPSIPAuthenticationScheme, datatype.UTF8String(SchemeDigest)),
				diameter.Grouped(diameter.AVPSIPDigestAuthenticate,
					diameter.NewAVP(diameter.AVPDigestRealm, datatype.UTF8String(testDomain)),
					diameter.NewAVP(diameter.AVPDigestQoP, datatype.UTF8String("auth")),
					diameter.NewAVP(diameter.AVPDigestHA1, datatype.UTF8String(digest.HA1(s.impi, testDomain, s.password))))))
			continue
		}
		s.sqn = aka.NextSQN(s.sqn)
		v, err := aka.GenerateVector(aka.Credentials{K: set1K, OP: set1OP, AMF: set1AMF}, s.sqn, nil)
		if err != nil {
			return nil, err
		}
		a.AddAVP(diameter.Grouped(diameter.AVPSIPAuthDataItem,
			diameter.NewAVP(diameter.AVPSIPItemNumber, datatype.Unsigned32(uint32(i+1))),
			diameter.NewAVP(diameter.AVPSIPAuthenticationScheme, datatype.UTF8String(SchemeAKAv1)),
			diameter.NewAVP(diameter.AVPSIPAuthenticate, datatype.OctetString(v.SIPAuthenticate())),
			diameter.NewAVP(diameter.AVPSIPAuthorization, datatype.OctetString(v.XRES)),
			diameter.NewAVP(diameter.AVPConfidentialityKey, datatype.OctetString(v.CK)),
			diameter.NewAVP(diameter.AVPIntegrityKey, datatype.OctetString(v.IK))))
	}
	return a, nil
}

func (h *testHSS) sar(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	r := cxReq{cmd: diameter.CmdServerAssignment, impi: diameter.String(req, diameter.AVPUserName),
		impu: diameter.String(req, diameter.AVPPublicIdentity), server: diameter.String(req, diameter.AVPServerName)}
	r.sat, _ = diameter.Uint32(req, diameter.AVPServerAssignmentType)
	r.uda, _ = diameter.Uint32(req, diameter.AVPUserDataAlreadyAvailable)
	h.record(r)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sarFail != 0 {
		return h.node.AnswerExperimental(req, h.sarFail), nil
	}
	s := h.subs[r.impi]
	if s == nil && r.impi == "" { // UNREGISTERED_USER: by IMPU
		for _, sub := range h.subs {
			for _, u := range sub.impus {
				if u == r.impu {
					s = sub
				}
			}
		}
	}
	if s == nil {
		return h.node.AnswerExperimental(req, diameter.DiameterErrorUserUnknown), nil
	}
	a := h.node.Answer(req, diameter.DiameterSuccess)
	a.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(s.impi)))
	switch r.sat {
	case diameter.SATRegistration, diameter.SATReRegistration, diameter.SATUnregisteredUser:
		if !h.noSAR {
			a.AddAVP(diameter.NewAVP(diameter.AVPUserData, datatype.OctetString(userDataFor(h.t, s))))
		}
	}
	return a, nil
}

func userDataFor(t testing.TB, s *testSub) []byte {
	sp := userdata.ServiceProfile{}
	for _, u := range s.impus {
		sp.PublicIdentities = append(sp.PublicIdentities, userdata.PublicIdentity{Identity: u, BarringIndication: userdata.Bool(s.barred[u])})
	}
	sp.InitialFilterCriteria = s.ifcs
	b, err := userdata.Marshal(&userdata.IMSSubscription{PrivateID: s.impi, ServiceProfiles: []userdata.ServiceProfile{sp}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newTestServer starts an S-CSCF against h on a throw-away database (dsn
// "" creates one).
func newTestServer(t *testing.T, h *testHSS, dsn string, mod func(*Config)) *Server {
	t.Helper()
	return startTestServer(t, h, dsn, mod, nil)
}

// newTestServerWith is newTestServer with before run between New and Start.
func newTestServerWith(t *testing.T, h *testHSS, before func(*Server)) *Server {
	t.Helper()
	return startTestServer(t, h, "", nil, before)
}

func startTestServer(t *testing.T, h *testHSS, dsn string, mod func(*Config), before func(*Server)) *Server {
	t.Helper()
	if dsn == "" {
		dsn = pgtest.NewDB(t)
	}
	cfg := Config{SIPListen: "127.0.0.1:0", Domain: testDomain, ServerName: "sip:scscf." + testDomain + ":5080",
		HSSAddr: h.addr, DatabaseURL: dsn, SweepInterval: 50 * time.Millisecond, Logger: siptest.Logger(t).Named("scscf")}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.hss.WaitOpen(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// testUE plays a phone (or softphone) sending REGISTERs straight to the
// S-CSCF with sipgo.
type testUE struct {
	client   *sipgo.Client
	impi     string
	impu     string
	contact  string // Contact value
	callID   string
	cseq     uint32
	usim     *aka.UE
	password string
	path     string
	protect  string // integrity-protected value to add
}

func newTestUE(t *testing.T, user string) *testUE {
	t.Helper()
	c := siptest.NewClient(t)
	opc, _ := aka.ComputeOPc(set1K, set1OP)
	usim, err := aka.NewUE(set1K, opc, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &testUE{client: c, impi: user + "@" + testDomain, impu: "sip:" + user + "@" + testDomain,
		contact: fmt.Sprintf(`<sip:%s@127.0.0.1:5999>;+sip.instance="<urn:gsma:imei:35-000000-000000-0>";reg-id=1;+g.3gpp.icsi-ref="urn%%3Aurn-7%%3A3gpp-service.ims.icsi.mmtel"`, user),
		callID:  sip.GenerateTagN(16), usim: usim}
}

// send sends one REGISTER with Expires expires (-1: none) and the given
// Authorization value ("" none) and returns the response.
func (u *testUE) send(t *testing.T, s *Server, expires int, authz string, extra ...sip.Header) *sip.Response {
	t.Helper()
	addr := s.SIPAddr()
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: testDomain})
	req.SetDestination(addr.String())
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: strings.SplitN(u.impi, "@", 2)[0], Host: testDomain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: from.Address, Params: sip.NewParams()}
	for _, h := range extra {
		if h.Name() == "X-Test-To" {
			to = &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: h.Value(), Host: testDomain}, Params: sip.NewParams()}
		}
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(u.callID)
	req.AppendHeader(&cid)
	u.cseq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: u.cseq, MethodName: sip.REGISTER})
	if u.contact != "" {
		req.AppendHeader(sip.NewHeader("Contact", u.contact))
	}
	if expires >= 0 {
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	}
	if u.path != "" {
		req.AppendHeader(sip.NewHeader("Path", u.path))
		req.AppendHeader(sip.NewHeader("Require", "path"))
	}
	if authz != "" {
		req.AppendHeader(sip.NewHeader("Authorization", authz))
	}
	for _, h := range extra {
		if h.Name() != "X-Test-To" {
			req.AppendHeader(h)
		}
	}
	// Parse the message again so that sipgo types Contact etc. as a peer would.
	parsed, err := sip.ParseMessage([]byte(req.String()))
	if err != nil {
		t.Fatalf("building REGISTER: %v\n%s", err, req.String())
	}
	preq := parsed.(*sip.Request)
	preq.SetDestination(addr.String())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := u.client.Do(ctx, preq)
	if err != nil {
		t.Fatalf("REGISTER: %v", err)
	}
	return res
}

// initialAuthz is what a VoLTE phone sends before it is challenged.
func (u *testUE) initialAuthz() string {
	return fmt.Sprintf(`Digest username="%s", realm="%s", uri="sip:%s", nonce="", response=""`, u.impi, testDomain, testDomain)
}

// answer computes the credentials for a 401 (AKA via the USIM, or MD5
// with the password), with qop when useQop.
func (u *testUE) answer(t *testing.T, res *sip.Response, useQop bool) string {
	t.Helper()
	ch := challengeOf(t, res)
	var password string
	switch ch.Algorithm() {
	case digest.AlgAKAv1:
		rnd, autn, err := digest.SplitAKANonce(ch.Nonce())
		if err != nil {
			t.Fatal(err)
		}
		resb, _, _, _, err := u.usim.Authenticate(rnd, autn)
		if err != nil {
			t.Fatalf("USIM rejects the challenge: %v", err)
		}
		password = string(digest.AKAv1Password(resb))
	default:
		password = u.password
	}
	return u.credentials(ch, password, useQop)
}

func (u *testUE) credentials(ch *digest.Header, password string, useQop bool) string {
	uri := "sip:" + testDomain
	ha1 := digest.HA1(u.impi, ch.Realm(), password)
	alg := ch.Algorithm()
	if useQop {
		cnonce, nc := "0a4f113b", "00000001"
		resp := digest.Response(ha1, "REGISTER", uri, ch.Nonce(), nc, cnonce, "auth")
		return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=%s, cnonce="%s"`,
			u.impi, ch.Realm(), ch.Nonce(), uri, resp, alg, nc, cnonce) + u.protectParam()
	}
	resp := digest.Response(ha1, "REGISTER", uri, ch.Nonce(), "", "", "")
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s`,
		u.impi, ch.Realm(), ch.Nonce(), uri, resp, alg) + u.protectParam()
}

func (u *testUE) protectParam() string {
	if u.protect == "" {
		return ""
	}
	return fmt.Sprintf(`, integrity-protected="%s"`, u.protect)
}

func challengeOf(t *testing.T, res *sip.Response) *digest.Header {
	t.Helper()
	if res.StatusCode != 401 {
		t.Fatalf("want 401, got %d %s", res.StatusCode, res.Reason)
	}
	ch, err := digest.GetWWWAuthenticate(res)
	if err != nil || ch == nil {
		t.Fatalf("401 without a Digest WWW-Authenticate: %v\n%s", err, res)
	}
	return ch
}

// registerAKA runs REGISTER → 401 → REGISTER → 200 and returns the 200.
func (u *testUE) registerAKA(t *testing.T, s *Server, expires int) *sip.Response {
	t.Helper()
	res := u.send(t, s, expires, u.initialAuthz())
	res = u.send(t, s, expires, u.answer(t, res, true))
	if res.StatusCode != 200 {
		t.Fatalf("want 200, got %d %s", res.StatusCode, res.Reason)
	}
	return res
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
