package pcscf

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// termMessage is a MESSAGE from the core to ruri with body, routed by
// route (our Path entry, or none).
func termMessage(core *udpPeer, pc, ruri, route, callID string, body string) {
	r := ""
	if route != "" {
		r = "Route: " + route + "\n"
	}
	core.send(pc, fmt.Sprintf(`
MESSAGE %[1]s SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:%[2]d;branch=z9hG4bK%[3]s
Max-Forwards: 70
%[4]sFrom: <sip:bob@ims.test>;tag=b1
To: <sip:alice@ims.test>
Call-ID: %[3]s
CSeq: 1 MESSAGE
P-Asserted-Identity: <sip:bob@ims.test>
Content-Type: text/plain
Content-Length: %[5]d

%[6]s`, ruri, core.port(), callID, r, len(body), body))
}

// TestTermMarker: a request routed over our Path entry (term marker,
// read with sipproxy's RemovedRoute) to a contact that is not registered
// is answered 404, not 403; to a registered contact it is delivered.
func TestTermMarker(t *testing.T) {
	core := newPeer(t, "")
	p := startPCSCF(t, core, nil)
	pc := p.addr()
	ue := newPeer(t, "")
	registerWithSub(t, p, ue, core, "tm-1", "")
	path := fmt.Sprintf("<sip:term@%s;lr>", pc)

	termMessage(core, pc, "sip:carol@127.0.0.1:1", path, "tm-unreg", "hi")
	if r := core.nextResponse(5 * time.Second); r.StatusCode != 404 {
		t.Fatalf("term marker to an unregistered contact: %d, want 404", r.StatusCode)
	}
	// Without the marker (e.g. a stray request) it is not admitted: 403.
	termMessage(core, pc, "sip:carol@127.0.0.1:1", "", "tm-nomark", "hi")
	if r := core.nextResponse(5 * time.Second); r.StatusCode != 403 {
		t.Fatalf("no marker, unregistered: %d, want 403", r.StatusCode)
	}
	termMessage(core, pc, fmt.Sprintf("sip:alice@127.0.0.1:%d", ue.port()), path, "tm-ok", "hi")
	m := ue.nextRequest(5 * time.Second)
	if m.CallID().Value() != "tm-ok" || hdr(m, "Route") != "" {
		t.Fatalf("UE got %s Route %q", m.CallID().Value(), hdr(m, "Route"))
	}
	ue.respond(m, 200, "OK")
	if r := core.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("core got %d", r.StatusCode)
	}
	if !isTermRoute(&sip.Uri{User: "TERM", Host: "x"}) || isTermRoute(&sip.Uri{User: "orig", Host: "x"}) || isTermRoute(nil) {
		t.Error("isTermRoute")
	}
}

// TestIPsecOnRequiresSecAgree: with --ipsec on a REGISTER without
// Security-Client gets 421 Extension Required with Require: sec-agree (TS
// 24.229 §5.2.2, RFC 3329 §2.3.1) and is not forwarded.
func TestIPsecOnRequiresSecAgree(t *testing.T) {
	core := newPeer(t, "")
	p := startPCSCF(t, core, func(c *Config) {
		c.IPsec, c.IPsecBackend, c.PortC, c.PortS = IPsecOn, &memBackend{}, freeUDPPort(t), freeUDPPort(t)
	})
	ue := newPeer(t, "")
	register(ue, p.addr(), "ipsec-on", 1, 600, "")
	r := ue.nextResponse(5 * time.Second)
	if r.StatusCode != 421 || hdr(r, "Require") != "sec-agree" {
		t.Fatalf("got %d Require %q, want 421 with Require: sec-agree", r.StatusCode, hdr(r, "Require"))
	}
	// Security-Client without ipsec-3gpp: 421 as well.
	register(ue, p.addr(), "ipsec-on", 2, 600, "Security-Client: digest\nRequire: sec-agree\n")
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 421 {
		t.Fatalf("digest-only Security-Client: %d, want 421", r.StatusCode)
	}
	select {
	case m := <-core.ch:
		t.Fatalf("the core got %s", m.String())
	case <-time.After(200 * time.Millisecond):
	}
	if n := len(p.Status().Contacts); n != 0 {
		t.Fatalf("%d contacts", n)
	}
}

// tcpUE is a UE on one TCP connection to the P-CSCF.
type tcpUE struct {
	conn net.Conn
	ch   chan sip.Message
}

func newTCPUE(t *testing.T, pc string) *tcpUE {
	t.Helper()
	c, err := net.Dial("tcp", pc)
	if err != nil {
		t.Fatal(err)
	}
	return tcpUEOn(t, c)
}

// tcpUEOn is a tcpUE on the connection c (closed at the test's end).
func tcpUEOn(t *testing.T, c net.Conn) *tcpUE {
	u := &tcpUE{conn: c, ch: make(chan sip.Message, 16)}
	t.Cleanup(func() { _ = c.Close() })
	go func() {
		br := bufio.NewReader(c)
		for {
			var head strings.Builder
			clen := 0
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				head.WriteString(line)
				if line == "\r\n" {
					break
				}
				if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), "Content-Length") {
					clen, _ = strconv.Atoi(strings.TrimSpace(v))
				}
			}
			body := make([]byte, clen)
			if _, err := io.ReadFull(br, body); err != nil {
				return
			}
			m, err := sip.ParseMessage(append([]byte(head.String()), body...))
			if err == nil {
				u.ch <- m
			}
		}
	}()
	return u
}

func (u *tcpUE) port() int { return u.conn.LocalAddr().(*net.TCPAddr).Port }

// register sends, over u, alice's REGISTER with the Via port viaPort, the
// Contact URI contact (its expires parameter expires) and the extra header
// lines (each ending in a newline): the TCP twin of register.
func (u *tcpUE) register(t *testing.T, viaPort int, callID string, cseq int, contact string, expires int, extra string) {
	t.Helper()
	u.send(t, fmt.Sprintf(`
REGISTER sip:ims.test SIP/2.0
Via: SIP/2.0/TCP 127.0.0.1:%[1]d;branch=z9hG4bK%[2]s%[3]d
Max-Forwards: 70
From: <sip:alice@ims.test>;tag=ue1
To: <sip:alice@ims.test>
Call-ID: %[2]s
CSeq: %[3]d REGISTER
Contact: <%[4]s>;expires=%[5]d
%[6]sContent-Length: 0

`, viaPort, callID, cseq, contact, expires, extra))
}

func (u *tcpUE) send(t *testing.T, msg string) {
	t.Helper()
	msg = strings.ReplaceAll(strings.TrimLeft(msg, "\n"), "\n", "\r\n")
	if _, err := u.conn.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
}

func (u *tcpUE) next(t *testing.T) sip.Message {
	t.Helper()
	for {
		select {
		case m := <-u.ch:
			if r, ok := m.(*sip.Response); ok && r.StatusCode == 100 {
				continue
			}
			return m
		case <-time.After(5 * time.Second):
			t.Fatal("TCP UE: nothing received")
			return nil
		}
	}
}

// TestLargeTerminatingRequest: a terminating request larger than 1300
// bytes goes over TCP to a UE registered over TCP (its connection is
// re-used), and over UDP (one datagram; sipproxy raises sipgo's UDP
// limit) to a UE that registered over UDP only.
func TestLargeTerminatingRequest(t *testing.T) {
	core := newPeer(t, "")
	p := startPCSCF(t, core, nil)
	pc := p.addr()
	path := fmt.Sprintf("<sip:term@%s;lr>", pc)
	big := strings.Repeat("x", 1500)

	// UE over TCP.
	tu := newTCPUE(t, pc)
	contact := fmt.Sprintf("sip:alice@127.0.0.1:%d;transport=tcp", tu.port())
	tu.register(t, tu.port(), "tcp-reg", 1, contact, 600, "")
	coreAnswerRegister(t, core, false)
	if r, ok := tu.next(t).(*sip.Response); !ok || r.StatusCode != 200 {
		t.Fatalf("TCP REGISTER: %v", r)
	}
	core.respond(waitRequest(t, core, sip.SUBSCRIBE), 489, "Bad Event")
	if f := p.Status().Contacts[0].Flow; !strings.HasPrefix(f, "tcp:") {
		t.Fatalf("flow %s", f)
	}
	termMessage(core, pc, contact, path, "big-tcp", big)
	m, ok := tu.next(t).(*sip.Request)
	if !ok || m.CallID().Value() != "big-tcp" || len(m.Body()) != len(big) {
		t.Fatalf("TCP UE got %v", m)
	}
	if v := m.Via(); !strings.EqualFold(v.Transport, "TCP") {
		t.Errorf("top Via transport %s, want TCP", v.Transport)
	}
	res := sip.NewResponseFromRequest(m, 200, "OK", nil)
	if _, err := tu.conn.Write([]byte(res.String())); err != nil {
		t.Fatal(err)
	}
	if r := core.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("core got %d", r.StatusCode)
	}

	// UE over UDP only: the large request stays on UDP.
	ue := newPeer(t, "")
	register(ue, pc, "udp-reg", 1, 600, "")
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("UDP REGISTER: %d", r.StatusCode)
	}
	core.respond(waitRequest(t, core, sip.SUBSCRIBE), 489, "Bad Event")
	termMessage(core, pc, fmt.Sprintf("sip:alice@127.0.0.1:%d", ue.port()), path, "big-udp", big)
	um := ue.nextRequest(5 * time.Second)
	if um.CallID().Value() != "big-udp" || len(um.Body()) != len(big) || len(um.String()) <= UDPSizeLimit {
		t.Fatalf("UDP UE got %s (%d bytes)", um.CallID().Value(), len(um.String()))
	}
	if v := um.Via(); !strings.EqualFold(v.Transport, "UDP") {
		t.Errorf("top Via transport %s, want UDP", v.Transport)
	}
	ue.respond(um, 200, "OK")
	if r := core.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("core got %d", r.StatusCode)
	}
}
