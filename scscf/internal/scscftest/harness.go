// Package scscftest is the test harness the S-CSCF's packages share
// (scscf, scscf/registrar, scscf/isc, scscf/regevent): a scripted HSS
// (Cx MAR/SAR, RTR/PPR sent from its Node), UEs that register with IMS
// AKA or SIP digest, an S-CSCF on a throw-away database, and the RegLab
// with the reg-event notifier and the third-party registrar. Test code
// only.
package scscftest

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
	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/imscore/imscore/pkg/siptest"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf"
	"github.com/imscore/imscore/scscf/registrar"
)

const (
	Domain  = "ims.mnc001.mcc001.3gppnetwork.org"
	HSSHost = "hss." + Domain
)

// TS 35.208 test set 1.
var (
	Set1K   = mustHex("465b5ce8b199b49faa5f0a2ee238a6bc")
	Set1OP  = mustHex("cdc202d5123e20f62b6d676ac72cb318")
	set1AMF = mustHex("8000")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// Sub is one subscriber of the scripted HSS.
type Sub struct {
	IMPI     string
	IMPUs    []string // IRS, first is the default
	Barred   map[string]bool
	Scheme   string // "aka" or "md5"
	Password string // md5
	SQN      uint64
	IFCs     []userdata.InitialFilterCriteria
	// Charging is sent as Charging-Information with User-Data.
	Charging *cxclient.ChargingInformation
}

// CxReq is a Cx request the scripted HSS received.
type CxReq struct {
	Cmd    uint32
	IMPI   string
	IMPU   string
	Scheme string
	N      uint32
	SAT    uint32
	UDA    uint32
	Server string
	Resync []byte
}

// HSS is a scripted Cx peer: it answers MAR with Milenage vectors
// (TS 35.208 set 1 keys) or HA1s, and SAR with a User-Data document, and
// records every request. It is a protocol test double only.
type HSS struct {
	t *testing.T
	// Node is its Diameter node (to send RTR/PPR, or to close it).
	Node *diameter.Node
	// Addr is its Diameter address.
	Addr string

	mu      sync.Mutex
	subs    map[string]*Sub
	reqs    []CxReq
	marFail uint32 // experimental code to answer MAR with, if not 0
	sarFail uint32
	noSAR   bool // answer SAR without User-Data
	gotReq  chan CxReq
}

// NewHSS starts a scripted HSS on a free port.
func NewHSS(t *testing.T) *HSS {
	t.Helper()
	n, err := diameter.New(diameter.Config{OriginHost: HSSHost, OriginRealm: Domain, Apps: []diameter.App{diameter.AppCx},
		AcceptAnyPeer: true, Logger: siptest.Logger(t).Named("hss")})
	if err != nil {
		t.Fatal(err)
	}
	h := &HSS{t: t, Node: n, subs: map[string]*Sub{}, gotReq: make(chan CxReq, 100)}
	n.Handle(diameter.CmdMultimediaAuth, diameter.AppCx, h.mar)
	n.Handle(diameter.CmdServerAssignment, diameter.AppCx, h.sar)
	a, err := n.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.Addr = a.String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return h
}

// Add provisions s.
func (h *HSS) Add(s *Sub) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s.Barred == nil {
		s.Barred = map[string]bool{}
	}
	h.subs[s.IMPI] = s
}

func (h *HSS) record(r CxReq) {
	h.mu.Lock()
	h.reqs = append(h.reqs, r)
	h.mu.Unlock()
	select {
	case h.gotReq <- r:
	default:
	}
}

// Bar bars impu in the profile of the subscriber impi.
func (h *HSS) Bar(impi, impu string) {
	h.mu.Lock()
	h.subs[impi].Barred[impu] = true
	h.mu.Unlock()
}

// FailMAR makes h answer every MAR with Experimental-Result code (0:
// answer normally).
func (h *HSS) FailMAR(code uint32) {
	h.mu.Lock()
	h.marFail = code
	h.mu.Unlock()
}

// Copy returns a copy of s taken under h's lock (h writes s.SQN as it
// answers MARs).
func (h *HSS) Copy(s *Sub) Sub {
	h.mu.Lock()
	defer h.mu.Unlock()
	return *s
}

// Requests are the Cx requests received so far.
func (h *HSS) Requests() []CxReq {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]CxReq(nil), h.reqs...)
}

// SARs counts the SARs of Server-Assignment-Type sat received so far.
func (h *HSS) SARs(sat uint32) int {
	n := 0
	for _, r := range h.Requests() {
		if r.Cmd == diameter.CmdServerAssignment && r.SAT == sat {
			n++
		}
	}
	return n
}

// WaitSAR waits until a SAR of type sat has been received.
func (h *HSS) WaitSAR(t *testing.T, sat uint32, within time.Duration) CxReq {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, r := range h.Requests() {
			if r.Cmd == diameter.CmdServerAssignment && r.SAT == sat {
				return r
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no SAR with Server-Assignment-Type %d within %v; got %+v", sat, within, h.Requests())
	return CxReq{}
}

func (h *HSS) mar(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	r := CxReq{Cmd: diameter.CmdMultimediaAuth, IMPI: diameter.String(req, diameter.AVPUserName),
		IMPU: diameter.String(req, diameter.AVPPublicIdentity), Server: diameter.String(req, diameter.AVPServerName),
		Scheme: diameter.String(req, diameter.AVPSIPAuthDataItem, diameter.AVPSIPAuthenticationScheme)}
	r.N, _ = diameter.Uint32(req, diameter.AVPSIPNumberAuthItems)
	if a := diameter.Find(req, diameter.AVPSIPAuthDataItem, diameter.AVPSIPAuthorization); a != nil {
		r.Resync, _ = diameter.AsBytes(a)
	}
	h.record(r)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.marFail != 0 {
		return h.Node.AnswerExperimental(req, h.marFail), nil
	}
	s := h.subs[r.IMPI]
	if s == nil {
		return h.Node.AnswerExperimental(req, diameter.DiameterErrorUserUnknown), nil
	}
	want := map[string]string{"aka": registrar.SchemeAKAv1, "md5": registrar.SchemeDigest}[s.Scheme]
	if r.Scheme != registrar.SchemeUnknown && r.Scheme != want {
		return h.Node.AnswerExperimental(req, diameter.DiameterErrorAuthSchemeNotSupported), nil
	}
	opc, _ := aka.ComputeOPc(Set1K, Set1OP)
	if r.Resync != nil {
		rnd, auts, err := aka.SplitSIPAuthorization(r.Resync)
		if err != nil {
			return h.Node.Answer(req, diameter.DiameterUnableToComply), nil
		}
		sqnMS, err := aka.VerifyAUTS(Set1K, opc, rnd, auts)
		if err != nil {
			return h.Node.Answer(req, diameter.DiameterAuthenticationRejected), nil
		}
		s.SQN = sqnMS
	}
	a := h.Node.Answer(req, diameter.DiameterSuccess)
	a.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(r.IMPI)))
	n := int(r.N)
	if s.Scheme == "md5" {
		n = 1
	}
	a.AddAVP(diameter.NewAVP(diameter.AVPSIPNumberAuthItems, datatype.Unsigned32(uint32(n))))
	for i := 0; i < n; i++ {
		if s.Scheme == "md5" {
			a.AddAVP(diameter.Grouped(diameter.AVPSIPAuthDataItem,
				diameter.NewAVP(diameter.AVPSIPItemNumber, datatype.Unsigned32(uint32(i+1))),
				diameter.NewAVP(diameter.AVPSIPAuthenticationScheme, datatype.UTF8String(registrar.SchemeDigest)),
				diameter.Grouped(diameter.AVPSIPDigestAuthenticate,
					diameter.NewAVP(diameter.AVPDigestRealm, datatype.UTF8String(Domain)),
					diameter.NewAVP(diameter.AVPDigestQoP, datatype.UTF8String("auth")),
					diameter.NewAVP(diameter.AVPDigestHA1, datatype.UTF8String(digest.HA1(s.IMPI, Domain, s.Password))))))
			continue
		}
		s.SQN = aka.NextSQN(s.SQN)
		v, err := aka.GenerateVector(aka.Credentials{K: Set1K, OP: Set1OP, AMF: set1AMF}, s.SQN, nil)
		if err != nil {
			return nil, err
		}
		a.AddAVP(diameter.Grouped(diameter.AVPSIPAuthDataItem,
			diameter.NewAVP(diameter.AVPSIPItemNumber, datatype.Unsigned32(uint32(i+1))),
			diameter.NewAVP(diameter.AVPSIPAuthenticationScheme, datatype.UTF8String(registrar.SchemeAKAv1)),
			diameter.NewAVP(diameter.AVPSIPAuthenticate, datatype.OctetString(v.SIPAuthenticate())),
			diameter.NewAVP(diameter.AVPSIPAuthorization, datatype.OctetString(v.XRES)),
			diameter.NewAVP(diameter.AVPConfidentialityKey, datatype.OctetString(v.CK)),
			diameter.NewAVP(diameter.AVPIntegrityKey, datatype.OctetString(v.IK))))
	}
	return a, nil
}

func (h *HSS) sar(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	r := CxReq{Cmd: diameter.CmdServerAssignment, IMPI: diameter.String(req, diameter.AVPUserName),
		IMPU: diameter.String(req, diameter.AVPPublicIdentity), Server: diameter.String(req, diameter.AVPServerName)}
	r.SAT, _ = diameter.Uint32(req, diameter.AVPServerAssignmentType)
	r.UDA, _ = diameter.Uint32(req, diameter.AVPUserDataAlreadyAvailable)
	h.record(r)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sarFail != 0 {
		return h.Node.AnswerExperimental(req, h.sarFail), nil
	}
	s := h.subs[r.IMPI]
	if s == nil && r.IMPI == "" { // UNREGISTERED_USER: by IMPU
		for _, sub := range h.subs {
			for _, u := range sub.IMPUs {
				if u == r.IMPU {
					s = sub
				}
			}
		}
	}
	if s == nil {
		return h.Node.AnswerExperimental(req, diameter.DiameterErrorUserUnknown), nil
	}
	a := h.Node.Answer(req, diameter.DiameterSuccess)
	a.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(s.IMPI)))
	switch r.SAT {
	case diameter.SATRegistration, diameter.SATReRegistration, diameter.SATUnregisteredUser:
		// TS 29.228 §6.1.2.1: like the HSS (hss/cx/sar.go), no User-Data
		// for an S-CSCF that says it has it.
		if !h.noSAR && r.UDA != diameter.UserDataAlreadyAvailable {
			a.AddAVP(diameter.NewAVP(diameter.AVPUserData, datatype.OctetString(UserData(h.t, s))))
			if ci := s.Charging.AVP(); ci != nil {
				a.AddAVP(ci)
			}
		}
	}
	return a, nil
}

// UserData is the User-Data the HSS sends for s.
func UserData(t testing.TB, s *Sub) []byte {
	sp := userdata.ServiceProfile{}
	for _, u := range s.IMPUs {
		sp.PublicIdentities = append(sp.PublicIdentities, userdata.PublicIdentity{Identity: u, BarringIndication: userdata.Bool(s.Barred[u])})
	}
	sp.InitialFilterCriteria = s.IFCs
	b, err := userdata.Marshal(&userdata.IMSSubscription{PrivateID: s.IMPI, ServiceProfiles: []userdata.ServiceProfile{sp}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// NewServer starts an S-CSCF against h on a throw-away database (dsn ""
// creates one), configured further by mod, and waits until its HSS
// connection is open.
func NewServer(t *testing.T, h *HSS, dsn string, mod func(*scscf.Config)) *scscf.Server {
	t.Helper()
	return startServer(t, h, dsn, mod, nil)
}

// NewServerWith is NewServer with before run between New and Start.
func NewServerWith(t *testing.T, h *HSS, before func(*scscf.Server)) *scscf.Server {
	t.Helper()
	return startServer(t, h, "", nil, before)
}

func startServer(t *testing.T, h *HSS, dsn string, mod func(*scscf.Config), before func(*scscf.Server)) *scscf.Server {
	t.Helper()
	if dsn == "" {
		dsn = pgtest.NewDB(t)
	}
	cfg := scscf.Config{SIPListen: "127.0.0.1:0", Domain: Domain, ServerName: "sip:scscf." + Domain + ":5080",
		HSSAddr: h.Addr, DatabaseURL: dsn, SweepInterval: 50 * time.Millisecond, Logger: siptest.Logger(t).Named("scscf")}
	if mod != nil {
		mod(&cfg)
	}
	s, err := scscf.New(cfg)
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
	for s.Ready(ctx) != nil {
		if ctx.Err() != nil {
			t.Fatalf("HSS connection not open: %v", s.Ready(ctx))
		}
		time.Sleep(5 * time.Millisecond)
	}
	return s
}

// Registrar is where a UE sends its REGISTERs: an S-CSCF, or a front
// proxy (RegLab.Shim).
type Registrar interface {
	SIPAddr() *net.TCPAddr
}

// UE plays a phone (or softphone) sending REGISTERs straight to the
// S-CSCF with sipgo.
type UE struct {
	client   *sipgo.Client
	IMPI     string
	IMPU     string
	Contact  string // Contact value
	CallID   string
	CSeq     uint32
	USIM     *aka.UE
	Password string
	Path     string
	Protect  string // integrity-protected value to add
}

// NewUE is a UE of user@Domain with the USIM of TS 35.208 test set 1.
func NewUE(t *testing.T, user string) *UE {
	t.Helper()
	c := siptest.NewClient(t)
	opc, _ := aka.ComputeOPc(Set1K, Set1OP)
	usim, err := aka.NewUE(Set1K, opc, 0)
	if err != nil {
		t.Fatal(err)
	}
	return &UE{client: c, IMPI: user + "@" + Domain, IMPU: "sip:" + user + "@" + Domain,
		Contact: fmt.Sprintf(`<sip:%s@127.0.0.1:5999>;+sip.instance="<urn:gsma:imei:35-000000-000000-0>";reg-id=1;+g.3gpp.icsi-ref="urn%%3Aurn-7%%3A3gpp-service.ims.icsi.mmtel"`, user),
		CallID:  sip.GenerateTagN(16), USIM: usim}
}

// Send sends one REGISTER with Expires expires (-1: none) and the given
// Authorization value ("" none) to s and returns the response.
func (u *UE) Send(t *testing.T, s Registrar, expires int, authz string, extra ...sip.Header) *sip.Response {
	t.Helper()
	addr := s.SIPAddr()
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: Domain})
	req.SetDestination(addr.String())
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: strings.SplitN(u.IMPI, "@", 2)[0], Host: Domain}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(8))
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: from.Address, Params: sip.NewParams()}
	for _, h := range extra {
		if h.Name() == "X-Test-To" {
			to = &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: h.Value(), Host: Domain}, Params: sip.NewParams()}
		}
	}
	req.AppendHeader(to)
	cid := sip.CallIDHeader(u.CallID)
	req.AppendHeader(&cid)
	u.CSeq++
	req.AppendHeader(&sip.CSeqHeader{SeqNo: u.CSeq, MethodName: sip.REGISTER})
	if u.Contact != "" {
		req.AppendHeader(sip.NewHeader("Contact", u.Contact))
	}
	if expires >= 0 {
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	}
	if u.Path != "" {
		req.AppendHeader(sip.NewHeader("Path", u.Path))
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

// InitialAuthz is what a VoLTE phone sends before it is challenged.
func (u *UE) InitialAuthz() string {
	return fmt.Sprintf(`Digest username="%s", realm="%s", uri="sip:%s", nonce="", response=""`, u.IMPI, Domain, Domain)
}

// Answer computes the credentials for a 401 (AKA via the USIM, or MD5
// with the password), with qop when useQop.
func (u *UE) Answer(t *testing.T, res *sip.Response, useQop bool) string {
	t.Helper()
	ch := ChallengeOf(t, res)
	var password string
	switch ch.Algorithm() {
	case digest.AlgAKAv1:
		rnd, autn, err := digest.SplitAKANonce(ch.Nonce())
		if err != nil {
			t.Fatal(err)
		}
		resb, _, _, _, err := u.USIM.Authenticate(rnd, autn)
		if err != nil {
			t.Fatalf("USIM rejects the challenge: %v", err)
		}
		password = string(digest.AKAv1Password(resb))
	default:
		password = u.Password
	}
	return u.Credentials(ch, password, useQop)
}

// Credentials is the Authorization answering ch with password.
func (u *UE) Credentials(ch *digest.Header, password string, useQop bool) string {
	uri := "sip:" + Domain
	ha1 := digest.HA1(u.IMPI, ch.Realm(), password)
	alg := ch.Algorithm()
	if useQop {
		cnonce, nc := "0a4f113b", "00000001"
		resp := digest.Response(ha1, "REGISTER", uri, ch.Nonce(), nc, cnonce, "auth")
		return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s, qop=auth, nc=%s, cnonce="%s"`,
			u.IMPI, ch.Realm(), ch.Nonce(), uri, resp, alg, nc, cnonce) + u.protectParam()
	}
	resp := digest.Response(ha1, "REGISTER", uri, ch.Nonce(), "", "", "")
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s`,
		u.IMPI, ch.Realm(), ch.Nonce(), uri, resp, alg) + u.protectParam()
}

func (u *UE) protectParam() string {
	if u.Protect == "" {
		return ""
	}
	return fmt.Sprintf(`, integrity-protected="%s"`, u.Protect)
}

// ChallengeOf is the WWW-Authenticate of a 401 (a fatal error for anything else).
func ChallengeOf(t *testing.T, res *sip.Response) *digest.Header {
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

// RegisterAKA runs REGISTER → 401 → REGISTER → 200 and returns the 200.
func (u *UE) RegisterAKA(t *testing.T, s Registrar, expires int) *sip.Response {
	t.Helper()
	res := u.Send(t, s, expires, u.InitialAuthz())
	res = u.Send(t, s, expires, u.Answer(t, res, true))
	if res.StatusCode != 200 {
		t.Fatalf("want 200, got %d %s", res.StatusCode, res.Reason)
	}
	return res
}

// FreeAddr is a free 127.0.0.1 TCP address.
func FreeAddr(t *testing.T) string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(siptest.FreePort(t)))
}

// AKASub is the IMS AKA subscriber user@Domain with the IMPUs sip:user@Domain and more.
func AKASub(user string, more ...string) *Sub {
	impus := []string{"sip:" + user + "@" + Domain}
	impus = append(impus, more...)
	return &Sub{IMPI: user + "@" + Domain, IMPUs: impus, Scheme: "aka"}
}

// Hdr is the comma-joined value of the headers name of res.
func Hdr(res *sip.Response, name string) string {
	var v []string
	for _, h := range res.GetHeaders(name) {
		v = append(v, h.Value())
	}
	return strings.Join(v, ", ")
}

// SendTo registers the IMPU user@domain (To) with the UE's IMPI.
func (u *UE) SendTo(t *testing.T, s Registrar, user string) *sip.Response {
	t.Helper()
	// Authenticate as the IMPI with To naming the other IMPU.
	orig := u.IMPI
	defer func() { u.IMPI = orig }()
	saveTo := u.IMPU
	_ = saveTo
	res := u.SendAs(t, s, user, u.InitialAuthz())
	return u.SendAs(t, s, user, u.Answer(t, res, true))
}

// SendAs sends a REGISTER with authz whose To is toUser@Domain.
func (u *UE) SendAs(t *testing.T, s Registrar, toUser, authz string) *sip.Response {
	t.Helper()
	return u.Send(t, s, 600, authz, toOverride(toUser))
}

// toOverride is a marker header the send helper turns into the To user.
func toOverride(user string) sip.Header { return sip.NewHeader("X-Test-To", user) }

// WaitFor polls f until it is true, failing t after 5 s.
func WaitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
