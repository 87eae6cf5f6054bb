package pcscf

import (
	"context"
	"fmt"
	"github.com/imscore/imscore/pkg/siptest"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pcscf/rx"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/diameter/diamtest"
	"github.com/imscore/imscore/pkg/imsheader"
)

const (
	pcrfHost  = "pcrf." + testDomain
	pcscfHost = "pcscf." + testDomain
	// Media addresses: the UE uses its signalling address (127.0.0.1),
	// the far end is somewhere in the network.
	remoteMediaIP = "198.51.100.7"
)

// UE's offer: AMR-WB/AMR with DTMF, b=AS 41 kbit/s, RTP on 49170.
const ueOffer = `v=0
o=alice 2890844526 2890844526 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
b=AS:41
t=0 0
m=audio 49170 RTP/AVP 116 107 97 105 100
b=AS:41
b=RS:0
b=RR:2000
a=rtpmap:116 AMR-WB/16000/1
a=fmtp:116 mode-change-capability=2;max-red=220
a=rtpmap:107 AMR-WB/16000/1
a=fmtp:107 octet-align=1;mode-change-capability=2;max-red=220
a=rtpmap:97 AMR/8000/1
a=fmtp:97 mode-change-capability=2;max-red=220
a=rtpmap:105 telephone-event/16000
a=fmtp:105 0-15
a=rtpmap:100 telephone-event/8000
a=fmtp:100 0-15
a=ptime:20
a=maxptime:240
a=sendrecv
`

// Far end's answer: AMR-WB, b=AS 49 kbit/s, RTP on 40000.
const coreAnswer = `v=0
o=bob 3344 3344 IN IP4 198.51.100.7
s=-
c=IN IP4 198.51.100.7
t=0 0
m=audio 40000 RTP/AVP 116 105
b=AS:49
a=rtpmap:116 AMR-WB/16000/1
a=fmtp:116 mode-change-capability=2;max-red=220
a=rtpmap:105 telephone-event/16000
a=fmtp:105 0-15
a=ptime:20
a=maxptime:240
a=sendrecv
`

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// testPCRF is a PCRF written on pkg/diameter: it answers AAR and STR with
// 2001 and records every request.
type testPCRF struct {
	node *diameter.Node
	port int
	reqs chan *diam.Message
	// aaResult is the Result-Code of AAAs (0: 2001).
	aaResult atomic.Uint32
	// sig is the AAR for the signalling flows of the last registration
	// made by startRxPCSCF.
	sig *diam.Message
}

func newTestPCRF(t *testing.T) *testPCRF {
	t.Helper()
	n, err := diameter.New(diameter.Config{
		OriginHost: pcrfHost, OriginRealm: testDomain, Apps: []diameter.App{diameter.AppRx},
		AcceptAnyPeer: true, VendorID: diameter.Vendor3GPP, Logger: siptest.Logger(t).Named("pcrf"),
	})
	if err != nil {
		t.Fatal(err)
	}
	p := &testPCRF{node: n, reqs: make(chan *diam.Message, 32)}
	h := func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
		p.reqs <- req
		code := diameter.DiameterSuccess
		if v := p.aaResult.Load(); v != 0 && req.Header.CommandCode == diameter.CmdAA {
			code = v
		}
		a := n.Answer(req, code)
		a.AddAVP(diameter.NewAVP(diameter.AVPAuthApplicationID, datatype.Unsigned32(diameter.AppRx)))
		return a, nil
	}
	n.Handle(diameter.CmdAA, diameter.AppRx, h)
	n.Handle(diameter.CmdSessionTermination, diameter.AppRx, h)
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := n.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.port = addr.(*net.TCPAddr).Port
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = n.Close(cctx)
		ccancel()
		cancel()
	})
	return p
}

func (p *testPCRF) next(t *testing.T, cmd uint32) *diam.Message {
	t.Helper()
	select {
	case m := <-p.reqs:
		if m.Header.CommandCode != cmd {
			t.Fatalf("PCRF got command %d, want %d", m.Header.CommandCode, cmd)
		}
		return m
	case <-time.After(15 * time.Second): // generous: CI machines under load
		t.Fatalf("PCRF: no command %d", cmd)
		return nil
	}
}

func (p *testPCRF) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-p.reqs:
		t.Fatalf("PCRF got unexpected command %d", m.Header.CommandCode)
	case <-time.After(d):
	}
}

// setSessionID puts sid in req's Session-Id and recomputes the message
// length: sid is the P-CSCF's, which can be longer or shorter than the one
// NewRequest made (a stale length makes the request undecodable, 5012).
func setSessionID(req *diam.Message, sid string) {
	for _, a := range req.AVP {
		if diameter.AVPSessionID.Is(a) {
			a.Data = datatype.UTF8String(sid)
		}
	}
	req.Header.MessageLength = uint32(req.Len())
}

// rar sends a Re-Auth-Request for sid with Specific-Actions and returns
// the RAA.
func (p *testPCRF) rar(t *testing.T, sid string, actions ...uint32) *diam.Message {
	t.Helper()
	var avps []*diam.AVP
	for _, a := range actions {
		avps = append(avps, diameter.NewAVP(diameter.AVPSpecificAction, datatype.Enumerated(a)))
	}
	return p.rarAVPs(t, sid, avps...)
}

// rarAVPs sends a Re-Auth-Request for sid with avps (Specific-Actions
// and what they report) and returns the RAA.
func (p *testPCRF) rarAVPs(t *testing.T, sid string, avps ...*diam.AVP) *diam.Message {
	t.Helper()
	req := p.node.NewRequest(diameter.CmdReAuth, diameter.AppRx, testDomain, pcscfHost)
	setSessionID(req, sid)
	req.AddAVP(diameter.NewAVP(diameter.AVPReAuthRequestType, datatype.Enumerated(0))) // AUTHORIZE_ONLY
	for _, a := range avps {
		req.AddAVP(a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := p.node.Send(ctx, req)
	if err != nil {
		t.Fatalf("RAR: %v", err)
	}
	return a
}

// asr sends an Abort-Session-Request for sid and returns the ASA.
func (p *testPCRF) asr(t *testing.T, sid string) *diam.Message {
	t.Helper()
	req := p.node.NewRequest(diameter.CmdAbortSession, diameter.AppRx, testDomain, pcscfHost)
	setSessionID(req, sid)
	req.AddAVP(diameter.NewAVP(diameter.AVPAbortCause, datatype.Enumerated(diameter.AbortBearerReleased)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a, err := p.node.Send(ctx, req)
	if err != nil {
		t.Fatalf("ASR: %v", err)
	}
	return a
}

// startRxPCSCF starts a P-CSCF with --rx on towards pcrf, waits for the
// Rx connection and registers a UE (IMPUs sip:alice@ims.test, tel:+15550001).
// The AAR for the registration's signalling flows is taken off the PCRF's
// queue into pcrf.sig.
func startRxPCSCF(t *testing.T, pcrf *testPCRF) (*PCSCF, *udpPeer, *udpPeer) {
	return startRxPCSCFPolicy(t, pcrf, pcrf.port, "")
}

// startRxPCSCFPolicy is startRxPCSCF with --rx policy towards the PCRF
// at pcrfPort; pcrf nil means no PCRF listens there (no wait, no AAR).
func startRxPCSCFPolicy(t *testing.T, pcrf *testPCRF, pcrfPort int, policy string) (*PCSCF, *udpPeer, *udpPeer) {
	t.Helper()
	return startRxPCSCFWith(t, pcrf, pcrfPort, func(c *Config) { c.RxPolicy = policy })
}

// startRxPCSCFWith is startRxPCSCFPolicy with the configuration changed
// by mod (after the Rx settings).
func startRxPCSCFWith(t *testing.T, pcrf *testPCRF, pcrfPort int, mod func(*Config)) (*PCSCF, *udpPeer, *udpPeer) {
	wait := pcrf != nil
	t.Helper()
	core := newPeer(t, "")
	p := startPCSCF(t, core, func(c *Config) {
		c.Rx = &rx.Config{OriginHost: pcscfHost, OriginRealm: testDomain, PCRFAddr: fmt.Sprintf("127.0.0.1:%d", pcrfPort), PCRFHost: pcrfHost, PCRFRealm: testDomain, Timeout: time.Second}
		mod(c)
	})
	if wait {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.rx.WaitOpen(ctx); err != nil {
			t.Fatalf("Rx peer: %v", err)
		}
	}
	ue := newPeer(t, "")
	register(ue, p.addr(), "rx-reg", 1, 600, "")
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("register: %d", r.StatusCode)
	}
	core.respond(core.nextRequest(5*time.Second), 489, "Bad Event") // reg SUBSCRIBE
	if pcrf != nil {
		pcrf.sig = pcrf.next(t, diameter.CmdAA)
	}
	return p, ue, core
}

func invite(ue *udpPeer, pc, callID, body string) {
	ue.send(pc, fmt.Sprintf(`
INVITE sip:bob@ims.test SIP/2.0
Via: SIP/2.0/UDP %[5]s:%[1]d;branch=z9hG4bK%[2]sinv;rport
Max-Forwards: 70
From: <sip:alice@ims.test>;tag=a-%[2]s
To: <sip:bob@ims.test>
Call-ID: %[2]s
CSeq: 1 INVITE
Contact: <sip:alice@%[5]s:%[1]d>
Supported: 100rel, precondition
Content-Type: application/sdp
Content-Length: %[3]d

%[4]s`, ue.port(), callID, len(crlf(body)), body, ue.host()))
}

// answeredCall makes a call from the UE through the P-CSCF at pc (invite,
// ueOffer), answers it 200 with coreAnswer at the core, and returns the
// 200 the UE got and the Session-Id of the call's AAR at the PCRF; it
// fails t unless the UE gets the 200.
func answeredCall(t *testing.T, ue, core *udpPeer, pcrf *testPCRF, pc, callID string) (*sip.Response, string) {
	t.Helper()
	invite(ue, pc, callID, ueOffer)
	respondSDP(core, waitRequest(t, core, sip.INVITE), 200, "OK", coreAnswer)
	sid := diameter.String(pcrf.next(t, diameter.CmdAA), diameter.AVPSessionID)
	ok := waitFinal(t, ue, callID)
	if ok.StatusCode != 200 {
		t.Fatalf("call %s: %d", callID, ok.StatusCode)
	}
	return ok, sid
}

// respondSDP answers req with code and an SDP body, Contact of the far end.
func respondSDP(core *udpPeer, req *sip.Request, code int, reason, body string) {
	res := sip.NewResponseFromRequest(req, code, reason, []byte(crlf(body)))
	if to := res.To(); to != nil && !to.Params.Has("tag") {
		to.Params.Add("tag", "callee1")
	}
	res.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: strings.Trim(core.host(), "[]"), Port: core.port()}})
	res.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	core.sendMsg(viaAddr(req.Via()), res)
}

// inDialog builds a request of the UE in the dialog set up by res (2xx):
// Route from its Record-Route (reversed), Request-URI the remote Contact.
func inDialog(ue *udpPeer, res *sip.Response, method sip.RequestMethod, cseq int) string {
	var routes []string
	rr := res.GetHeaders("Record-Route")
	for i := len(rr) - 1; i >= 0; i-- {
		routes = append(routes, "Route: "+rr[i].Value()+"\n")
	}
	fromTag, _ := res.From().Params.Get("tag")
	toTag, _ := res.To().Params.Get("tag")
	return fmt.Sprintf(`
%[1]s %[2]s SIP/2.0
Via: SIP/2.0/UDP %[9]s:%[3]d;branch=z9hG4bK%[4]s%[1]s%[5]d;rport
Max-Forwards: 70
%[6]sFrom: <sip:alice@ims.test>;tag=%[7]s
To: <sip:bob@ims.test>;tag=%[8]s
Call-ID: %[4]s
CSeq: %[5]d %[1]s
Content-Length: 0

`, method, res.Contact().Address.String(), ue.port(), res.CallID().Value(), cseq, strings.Join(routes, ""), fromTag, toTag, ue.host())
}

// ackNon2xx is the hop-by-hop ACK of the UE for a failure response.
func ackNon2xx(ue *udpPeer, pc string, res *sip.Response) {
	fromTag, _ := res.From().Params.Get("tag")
	toTag, _ := res.To().Params.Get("tag")
	ue.send(pc, fmt.Sprintf(`
ACK sip:bob@ims.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:%[1]d;branch=z9hG4bK%[2]sinv;rport
Max-Forwards: 70
From: <sip:alice@ims.test>;tag=%[3]s
To: <sip:bob@ims.test>;tag=%[4]s
Call-ID: %[2]s
CSeq: 1 ACK
Content-Length: 0

`, ue.port(), res.CallID().Value(), fromTag, toTag))
}

func avpString(t *testing.T, avps []*diam.AVP, path ...diameter.AVPCode) string {
	t.Helper()
	f := diameter.FindIn(avps, path...)
	if len(f) == 0 {
		t.Errorf("AVP %v missing", path)
		return ""
	}
	s, _ := diameter.AsString(f[0])
	return s
}

func avpUint(t *testing.T, avps []*diam.AVP, path ...diameter.AVPCode) uint32 {
	t.Helper()
	f := diameter.FindIn(avps, path...)
	if len(f) == 0 {
		t.Errorf("AVP %v missing", path)
		return 1<<32 - 1
	}
	v, _ := diameter.AsUint32(f[0])
	return v
}

func checkSTR(t *testing.T, m *diam.Message, sid string) {
	t.Helper()
	if got := diameter.String(m, diameter.AVPSessionID); got != sid {
		t.Errorf("STR Session-Id %q, want %q", got, sid)
	}
	if v, _ := diameter.Uint32(m, diameter.AVPAuthApplicationID); v != uint32(diameter.AppRx) {
		t.Errorf("STR Auth-Application-Id %d", v)
	}
	if v, ok := diameter.Uint32(m, diameter.AVPTerminationCause); !ok || v != diameter.TerminationDiameterLogout {
		t.Errorf("STR Termination-Cause %d (present %v), want DIAMETER_LOGOUT", v, ok)
	}
	if got := diameter.String(m, diameter.AVPOriginHost); got != pcscfHost {
		t.Errorf("STR Origin-Host %q", got)
	}
	if got := diameter.String(m, diameter.AVPDestinationRealm); got != testDomain {
		t.Errorf("STR Destination-Realm %q", got)
	}
}

// TestRxOriginatingCall drives calls of a registered UE through the P-CSCF
// with --rx on towards a PCRF in test code, checks the AAR AVP by AVP
// (TS 29.214 §5.6.1, TS 29.213 §6.2 derivation), STR on BYE, on a failure
// after an early SDP answer and on CANCEL, ASR → ASA + BYE both ways + STR,
// and that tshark decodes every Rx message.
func TestRxOriginatingCall(t *testing.T) {
	pcrf := newTestPCRF(t)
	stop := diamtest.Capture(t, pcrf.port)
	p, ue, core := startRxPCSCF(t, pcrf)
	pc := p.addr()

	// Call 1: offer in the INVITE, answer in the 200; BYE.
	invite(ue, pc, "rx-call-1", ueOffer)
	inv := core.nextRequest(5 * time.Second)
	if inv.Method != sip.INVITE {
		t.Fatalf("core got %s", inv.Method)
	}
	pcv, err := imsheader.GetPChargingVector(inv)
	if err != nil || pcv == nil || pcv.ICID() == "" {
		t.Fatalf("INVITE without icid: %v", err)
	}
	icid := pcv.ICID()
	pcrf.none(t, 200*time.Millisecond) // no AAR before the answer
	respondSDP(core, inv, 200, "OK", coreAnswer)
	aar := pcrf.next(t, diameter.CmdAA)
	ok := ue.nextResponse(5 * time.Second)
	if ok.StatusCode != 200 || !strings.Contains(string(ok.Body()), "m=audio 40000") {
		t.Fatalf("UE got %d %q", ok.StatusCode, ok.Body())
	}

	sid := diameter.String(aar, diameter.AVPSessionID)
	if !strings.HasPrefix(sid, pcscfHost+";") {
		t.Errorf("Session-Id %q", sid)
	}
	if aar.Header.CommandFlags&diam.RequestFlag == 0 || aar.Header.ApplicationID != uint32(diameter.AppRx) {
		t.Errorf("AAR header flags %x app %d", aar.Header.CommandFlags, aar.Header.ApplicationID)
	}
	a := aar.AVP
	if v := avpUint(t, a, diameter.AVPAuthApplicationID); v != 16777236 {
		t.Errorf("Auth-Application-Id %d", v)
	}
	for code, want := range map[diameter.AVPCode]string{
		diameter.AVPOriginHost: pcscfHost, diameter.AVPOriginRealm: testDomain,
		diameter.AVPDestinationHost: pcrfHost, diameter.AVPDestinationRealm: testDomain,
		diameter.AVPAFApplicationIdentifier: "IMS Services", diameter.AVPAFChargingIdentifier: icid,
	} {
		if got := avpString(t, a, code); got != want {
			t.Errorf("AVP %d = %q, want %q", code, got, want)
		}
	}
	mcds := diameter.FindIn(a, diameter.AVPMediaComponentDescription)
	if len(mcds) != 1 {
		t.Fatalf("%d Media-Component-Description, want 1", len(mcds))
	}
	mcd := diameter.Children(mcds[0])
	for code, want := range map[diameter.AVPCode]uint32{
		diameter.AVPMediaComponentNumber: 1, diameter.AVPMediaType: diameter.MediaAudio,
		diameter.AVPMaxRequestedBandwidthUL: 49000, // what the far end receives: its b=AS
		diameter.AVPMaxRequestedBandwidthDL: 41000, // what the UE receives: its b=AS
		diameter.AVPFlowStatus:              diameter.FlowEnabled,
	} {
		if got := avpUint(t, mcd, code); got != want {
			t.Errorf("Media-Component-Description AVP %d = %d, want %d", code, got, want)
		}
	}
	codecs := diameter.FindIn(mcd, diameter.AVPCodecData)
	if len(codecs) != 2 {
		t.Errorf("%d Codec-Data, want 2", len(codecs))
	} else {
		c0, _ := diameter.AsString(codecs[0])
		c1, _ := diameter.AsString(codecs[1])
		if !strings.HasPrefix(c0, "uplink\noffer\nm=audio 49170 RTP/AVP 116") || !strings.HasPrefix(c1, "downlink\nanswer\nm=audio 40000 RTP/AVP 116 105") {
			t.Errorf("Codec-Data %q / %q", c0, c1)
		}
	}
	subs := diameter.FindIn(mcd, diameter.AVPMediaSubComponent)
	if len(subs) != 2 {
		t.Fatalf("%d Media-Sub-Component, want 2 (RTP, RTCP)", len(subs))
	}
	for i, want := range [][2]string{
		{"permit out 17 from 198.51.100.7 40000 to 127.0.0.1 49170", "permit in 17 from 127.0.0.1 49170 to 198.51.100.7 40000"},
		{"permit out 17 from 198.51.100.7 40001 to 127.0.0.1 49171", "permit in 17 from 127.0.0.1 49171 to 198.51.100.7 40001"},
	} {
		kids := diameter.Children(subs[i])
		if n := avpUint(t, kids, diameter.AVPFlowNumber); n != uint32(i+1) {
			t.Errorf("sub-component %d Flow-Number %d", i, n)
		}
		var fds []string
		for _, f := range diameter.FindIn(kids, diameter.AVPFlowDescription) {
			r, _ := f.Data.(datatype.IPFilterRule)
			fds = append(fds, string(r))
		}
		if len(fds) != 2 || fds[0] != want[0] || fds[1] != want[1] {
			t.Errorf("sub-component %d Flow-Description %q, want %q", i, fds, want)
		}
		usage := diameter.FindIn(kids, diameter.AVPFlowUsage)
		if i == 1 && (len(usage) != 1 || avpUint(t, kids, diameter.AVPFlowUsage) != 1) {
			t.Errorf("RTCP sub-component without Flow-Usage RTCP")
		}
	}
	if v := avpUint(t, a, diameter.AVPSubscriptionID, diameter.AVPSubscriptionIDType); v != 2 {
		t.Errorf("Subscription-Id-Type %d, want END_USER_SIP_URI (2)", v)
	}
	if got := avpString(t, a, diameter.AVPSubscriptionID, diameter.AVPSubscriptionIDData); got != "sip:alice@ims.test" {
		t.Errorf("Subscription-Id-Data %q", got)
	}
	if f := diameter.FindIn(a, diameter.AVPFramedIPAddress); len(f) != 1 {
		t.Error("no Framed-IP-Address")
	} else if ip, _ := diameter.AsIP(f[0]); !ip.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("Framed-IP-Address %v", ip)
	}
	checkSubscription(t, "call AAR", a)

	ue.send(pc, inDialog(ue, ok, sip.ACK, 1))
	if ack := core.nextRequest(5 * time.Second); ack.Method != sip.ACK {
		t.Fatalf("core got %s", ack.Method)
	}
	ue.send(pc, inDialog(ue, ok, sip.BYE, 2))
	bye := core.nextRequest(5 * time.Second)
	if bye.Method != sip.BYE {
		t.Fatalf("core got %s", bye.Method)
	}
	core.respond(bye, 200, "OK")
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("BYE: %d", r.StatusCode)
	}
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sid)

	// Call 2: the answer comes in a 183, then the callee is busy: STR.
	invite(ue, pc, "rx-call-2", ueOffer)
	inv = core.nextRequest(5 * time.Second)
	respondSDP(core, inv, 183, "Session Progress", coreAnswer)
	sid2 := diameter.String(pcrf.next(t, diameter.CmdAA), diameter.AVPSessionID)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 183 {
		t.Fatalf("UE got %d", r.StatusCode)
	}
	core.respond(inv, 486, "Busy Here")
	r := ue.nextResponse(5 * time.Second)
	if r.StatusCode != 486 {
		t.Fatalf("UE got %d", r.StatusCode)
	}
	ackNon2xx(ue, pc, r)
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sid2)

	// Call 3: early answer, then the UE CANCELs: STR.
	invite(ue, pc, "rx-call-3", ueOffer)
	inv = waitRequest(t, core, sip.INVITE) // after the P-CSCF's ACK of the 486
	respondSDP(core, inv, 183, "Session Progress", coreAnswer)
	sid3 := diameter.String(pcrf.next(t, diameter.CmdAA), diameter.AVPSessionID)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 183 {
		t.Fatalf("UE got %d", r.StatusCode)
	}
	ue.send(pc, fmt.Sprintf(`
CANCEL sip:bob@ims.test SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:%[1]d;branch=z9hG4bKrx-call-3inv;rport
Max-Forwards: 70
From: <sip:alice@ims.test>;tag=a-rx-call-3
To: <sip:bob@ims.test>
Call-ID: rx-call-3
CSeq: 1 CANCEL
Content-Length: 0

`, ue.port()))
	cancelReq := waitRequest(t, core, sip.CANCEL)
	core.respond(cancelReq, 200, "OK")
	core.respond(inv, 487, "Request Terminated")
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sid3)

	// Call 4: answered, then the PCRF aborts the session.
	invite(ue, pc, "rx-call-4", ueOffer)
	inv = waitRequest(t, core, sip.INVITE)
	respondSDP(core, inv, 200, "OK", coreAnswer)
	sid4 := diameter.String(pcrf.next(t, diameter.CmdAA), diameter.AVPSessionID)
	ok = waitFinal(t, ue, "rx-call-4")
	okToTag, _ := ok.To().Params.Get("tag")
	ue.send(pc, inDialog(ue, ok, sip.ACK, 1))
	for waitRequest(t, core, sip.ACK).CallID().Value() != "rx-call-4" { // skip the hop-by-hop ACK of call 3's 487
	}
	asa := pcrf.asr(t, sid4)
	if code, _, _ := diameter.Result(asa); code != diameter.DiameterSuccess {
		t.Fatalf("ASA result %d", code)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the UE side
		defer wg.Done()
		b := waitRequest(t, ue, sip.BYE)
		if b.CallID().Value() != "rx-call-4" || b.Recipient.Port != ue.port() {
			t.Errorf("UE BYE %s to %s", b.CallID().Value(), b.Recipient.String())
		}
		if tag, _ := b.To().Params.Get("tag"); tag != "a-rx-call-4" {
			t.Errorf("UE BYE To tag %q", tag)
		}
		ue.respond(b, 200, "OK")
	}()
	b := waitRequest(t, core, sip.BYE)
	if b.CallID().Value() != "rx-call-4" || b.Recipient.Port != core.port() {
		t.Errorf("core BYE %s to %s", b.CallID().Value(), b.Recipient.String())
	}
	if tag, _ := b.To().Params.Get("tag"); tag != okToTag {
		t.Errorf("core BYE To tag %q", tag)
	}
	core.respond(b, 200, "OK")
	wg.Wait()
	checkSTR(t, pcrf.next(t, diameter.CmdSessionTermination), sid4)
	// An ASR for a session that is over: 5002.
	if code, _, _ := diameter.Result(pcrf.asr(t, sid4)); code != diameter.DiameterUnknownSessionID {
		t.Errorf("ASA for an ended session: %d, want 5002", code)
	}
	if rs := p.Status().Contacts[0].RxSessions; len(rs) != 1 || rs[0] != diameter.String(pcrf.sig, diameter.AVPSessionID) {
		t.Errorf("Rx sessions left on the contact: %v, want only the signalling one", rs)
	}

	pcap := stop()
	diamtest.AssertNoMalformed(t, pcap, pcrf.port)
	sum := diamtest.Read(t, pcap, pcrf.port)
	for _, want := range []string{"AA Request", "AA Answer", "Session-Termination Request", "Session-Termination Answer", "Abort-Session Request", "Abort-Session Answer"} {
		if !strings.Contains(sum, want) {
			t.Errorf("tshark summary lacks %q:\n%s", want, sum)
		}
	}
	v := diamtest.Read(t, pcap, pcrf.port, "-V")
	for _, want := range []string{"Media-Component-Description", "permit in 17 from 127.0.0.1 49170 to 198.51.100.7 40000", "AF-Charging-Identifier", "Subscription-Id-Data: sip:alice@ims.test", "Termination-Cause: DIAMETER_LOGOUT"} {
		if !strings.Contains(v, want) {
			t.Errorf("tshark -V lacks %q", want)
		}
	}
}

// waitFinal returns the first final response of callID the UE receives.
func waitFinal(t *testing.T, p *udpPeer, callID string) *sip.Response {
	t.Helper()
	for {
		r := p.nextResponse(5 * time.Second)
		if r.CallID().Value() == callID && r.StatusCode >= 200 {
			return r
		}
	}
}

// waitRequest returns the next request with method, skipping others
// (retransmitted responses, provisional ones).
func waitRequest(t *testing.T, p *udpPeer, method sip.RequestMethod) *sip.Request {
	t.Helper()
	for {
		if r, ok := p.next(5 * time.Second).(*sip.Request); ok && r.Method == method {
			return r
		}
	}
}

// TestRecordRouteURIs: the route set of a 2xx for releasing a call reads
// Record-Route fields as the proxy's parser leaves them (generic, several
// entries per field) as well as typed ones, top to bottom; a field that
// does not parse leaves no route set.
func TestRecordRouteURIs(t *testing.T) {
	res := sip.NewResponse(200, "OK")
	res.AppendHeader(&sip.RecordRouteHeader{Address: sip.Uri{Scheme: "sip", Host: "pcscf.ims.test", Port: 5060}})
	res.AppendHeader(sip.NewHeader("Record-Route", "<sip:scscf.ims.test:6060;lr>,<sip:as.ims.test;lr>"))
	var got []string
	for _, u := range recordRouteURIs(res) {
		got = append(got, u.Host)
	}
	if strings.Join(got, " ") != "pcscf.ims.test scscf.ims.test as.ims.test" {
		t.Errorf("route set hosts %q", got)
	}
	res.AppendHeader(sip.NewHeader("Record-Route", "<sip:as2.ims.test;lr"))
	if rs := recordRouteURIs(res); rs != nil {
		t.Errorf("with a malformed field: route set %v, want none", rs)
	}
}
