package pcscf

import (
	"context"
	"fmt"
	"github.com/imscore/imscore/pkg/siptest"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/ipsec"
)

const testDomain = "ims.test"

// udpPeer is a raw SIP-over-UDP endpoint on 127.0.0.1 (a UE, or the
// stand-in for the I-/S-CSCF).
type udpPeer struct {
	t    *testing.T
	conn *net.UDPConn
	ch   chan sip.Message
}

func newPeer(t *testing.T, addr string) *udpPeer {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ua, _ := net.ResolveUDPAddr("udp", addr)
	c, err := net.ListenUDP("udp", ua)
	if err != nil {
		t.Fatal(err)
	}
	p := &udpPeer{t: t, conn: c, ch: make(chan sip.Message, 64)}
	t.Cleanup(func() { _ = c.Close() })
	go func() {
		buf := make([]byte, 65535)
		parser := sip.NewParser()
		for {
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				return
			}
			m, err := parser.ParseSIP(append([]byte(nil), buf[:n]...))
			if err != nil {
				continue
			}
			p.ch <- m
		}
	}()
	return p
}

func (p *udpPeer) port() int { return p.conn.LocalAddr().(*net.UDPAddr).Port }

// host is the peer's address as a SIP host (an IPv6 one in brackets).
func (p *udpPeer) host() string {
	ip := p.conn.LocalAddr().(*net.UDPAddr).IP
	if ip.To4() == nil {
		return "[" + ip.String() + "]"
	}
	return ip.String()
}

// viaAddr is the host:port of a Via header (a response goes there).
func viaAddr(v *sip.ViaHeader) string {
	return net.JoinHostPort(strings.Trim(v.Host, "[]"), fmt.Sprint(v.Port))
}

func (p *udpPeer) send(to string, msg string) {
	p.t.Helper()
	ua, _ := net.ResolveUDPAddr("udp", to)
	msg = strings.ReplaceAll(strings.TrimLeft(msg, "\n"), "\n", "\r\n")
	if _, err := p.conn.WriteToUDP([]byte(msg), ua); err != nil {
		p.t.Fatal(err)
	}
}

func (p *udpPeer) sendMsg(to string, m sip.Message) {
	ua, _ := net.ResolveUDPAddr("udp", to)
	_, _ = p.conn.WriteToUDP([]byte(m.String()), ua)
}

// next returns the next message that is not a 100 Trying.
func (p *udpPeer) next(d time.Duration) sip.Message {
	p.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m := <-p.ch:
			if r, ok := m.(*sip.Response); ok && r.StatusCode == 100 {
				continue
			}
			return m
		case <-deadline:
			p.t.Fatalf("peer %d: nothing received in %v", p.port(), d)
			return nil
		}
	}
}

func (p *udpPeer) nextRequest(d time.Duration) *sip.Request {
	p.t.Helper()
	for {
		if r, ok := p.next(d).(*sip.Request); ok {
			return r
		}
	}
}

func (p *udpPeer) nextResponse(d time.Duration) *sip.Response {
	p.t.Helper()
	for {
		if r, ok := p.next(d).(*sip.Response); ok {
			return r
		}
	}
}

// respond answers req back to its top Via.
func (p *udpPeer) respond(req *sip.Request, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	if code > 100 {
		if to := res.To(); to != nil && !to.Params.Has("tag") {
			to.Params.Add("tag", "core"+fmt.Sprint(code))
		}
	}
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	p.sendMsg(viaAddr(req.Via()), res)
}

// memBackend records SA sets instead of installing them (the test kernel
// has no ESP); it lets the SIP side of sec-agree be tested on loopback.
type memBackend struct {
	mu        sync.Mutex
	installed map[uint32]ipsec.SecAssoc
	removed   []ipsec.SecAssoc
}

func (m *memBackend) Install(s ipsec.SecAssoc) error {
	if err := s.Validate(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.installed == nil {
		m.installed = map[uint32]ipsec.SecAssoc{}
	}
	m.installed[s.PCSCF.SPIS] = s
	return nil
}

func (m *memBackend) Remove(s ipsec.SecAssoc) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.installed, s.PCSCF.SPIS)
	m.removed = append(m.removed, s)
	return nil
}

func (m *memBackend) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.installed)
}

func startPCSCF(t *testing.T, core *udpPeer, mod func(*Config)) *PCSCF {
	t.Helper()
	cfg := Config{
		SIPListen: "127.0.0.1:0", Domain: testDomain,
		ICSCF: fmt.Sprintf("sip:127.0.0.1:%d", core.port()), IPsec: IPsecOff,
		TimerInterval: 100 * time.Millisecond, Logger: siptest.Logger(t),
	}
	if mod != nil {
		mod(&cfg)
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

func (s *PCSCF) addr() string { return s.proxy.Addr("udp").String() }

func register(ue *udpPeer, pc string, callID string, cseq int, expires int, extra string) {
	ue.send(pc, fmt.Sprintf(`
REGISTER sip:%[1]s SIP/2.0
Via: SIP/2.0/UDP %[7]s:%[2]d;branch=z9hG4bK%[3]s%[4]d;rport
Max-Forwards: 70
From: <sip:alice@%[1]s>;tag=ue1
To: <sip:alice@%[1]s>
Call-ID: %[3]s
CSeq: %[4]d REGISTER
Contact: <sip:alice@%[7]s:%[2]d>;expires=%[5]d
%[6]sContent-Length: 0

`, testDomain, ue.port(), callID, cseq, expires, extra, ue.host()))
}

// coreRegistrar answers REGISTERs: 401 with ik/ck when the Authorization
// has no response, else 200 with Service-Route, P-Associated-URI and
// extra.
func coreAnswerRegister(t *testing.T, core *udpPeer, withAuth bool, extra ...sip.Header) *sip.Request {
	t.Helper()
	req := core.nextRequest(5 * time.Second)
	if req.Method != sip.REGISTER {
		t.Fatalf("core got %s", req.Method)
	}
	auth := req.GetHeader("Authorization")
	if withAuth && (auth == nil || strings.Contains(auth.Value(), `response=""`)) {
		core.respond(req, 401, "Unauthorized", sip.NewHeader("WWW-Authenticate",
			`Digest realm="ims.test", nonce="AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", algorithm=AKAv1-MD5, qop="auth", ik="00112233445566778899aabbccddeeff", ck="ffeeddccbbaa99887766554433221100"`))
		return req
	}
	exp := "600"
	if c, ok := req.Contact().Params.Get("expires"); ok {
		exp = c
	}
	ct := req.Contact().Clone()
	ct.Params = sip.NewParams()
	ct.Params.Add("expires", exp)
	core.respond(req, 200, "OK", append([]sip.Header{ct,
		sip.NewHeader("Service-Route", fmt.Sprintf("<sip:orig@%s:%d;lr>", core.host(), core.port())),
		sip.NewHeader("P-Associated-URI", "<sip:alice@ims.test>, <tel:+15550001>")}, extra...)...)
	return req
}

// registerOK registers ue (UDP, 600 s) through the P-CSCF at pc with the
// core's 200 and fails t unless the UE gets the 200.
func registerOK(t *testing.T, ue, core *udpPeer, pc, callID string) {
	t.Helper()
	register(ue, pc, callID, 1, 600, "")
	coreAnswerRegister(t, core, false)
	if res := ue.nextResponse(5 * time.Second); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
}

// registeredUE starts a core stand-in and a P-CSCF towards it, registers
// a UE through it (registerOK) and refuses the reg-event SUBSCRIBE that
// follows (489); it returns the core, the UE and the P-CSCF's address.
func registeredUE(t *testing.T, callID string) (core, ue *udpPeer, pc string) {
	t.Helper()
	core = newPeer(t, "")
	pc = startPCSCF(t, core, nil).addr()
	ue = newPeer(t, "")
	registerOK(t, ue, core, pc, callID)
	core.respond(waitRequest(t, core, sip.SUBSCRIBE), 489, "Bad Event")
	return core, ue, pc
}

// coreMessageToUE sends, as the S-CSCF, a MESSAGE from bob to the UE
// registered through the P-CSCF at pc (Route: the P-CSCF's Path entry),
// with P-Asserted-Identity bob and the extra header lines (each ending in
// a newline), and returns the request as the UE received it.
func coreMessageToUE(core, ue *udpPeer, pc, callID, extra string) *sip.Request {
	core.send(pc, fmt.Sprintf(`
MESSAGE sip:alice@127.0.0.1:%[1]d SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:%[2]d;branch=z9hG4bK%[4]s
Max-Forwards: 70
Route: <sip:term@%[3]s;lr>
From: <sip:bob@ims.test>;tag=b1
To: <sip:alice@ims.test>
Call-ID: %[4]s
CSeq: 1 MESSAGE
P-Asserted-Identity: <sip:bob@ims.test>
%[5]sContent-Length: 0

`, ue.port(), core.port(), pc, callID, extra))
	return ue.nextRequest(5 * time.Second)
}

// callCount is how many calls the P-CSCF holds.
func (s *PCSCF) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.calls)
}
