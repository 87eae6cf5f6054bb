package sipproxy

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/sipproxy/rfc4475"
)

func testProxyForWire(t testing.TB) *Proxy {
	t.Helper()
	p, err := New(Config{ListenAddr: "127.0.0.1:5999", Handler: func(_ context.Context, _ *Txn) {}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var testSrc = &net.UDPAddr{IP: net.IPv4(192, 0, 2, 7), Port: 40000}

// TestWireRFC4475 runs every RFC 4475 message through the validating layer:
// the ones to reject at the sockets are answered with their code, the
// responses not for us dropped, and every passed message parses with sipgo
// into the same request (method case, headers).
func TestWireRFC4475(t *testing.T) {
	p := testProxyForWire(t)
	for _, c := range rfc4475.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			v := p.inspect(c.Message(), false, testSrc)
			switch {
			case c.Want == rfc4475.Drop:
				if v.act != actDrop {
					t.Fatalf("want drop, got %v %d %s", v.act, v.code, v.reason)
				}
			case c.Want == rfc4475.Reject && slices.ContainsFunc(c.Codes, func(code int) bool { return code != 420 && code != 483 }):
				if v.act != actReject || !slices.Contains(c.Codes, v.code) {
					t.Fatalf("want %v, got act %v %d %q", c.Codes, v.act, v.code, v.reason)
				}
				// The status line is SIP/2.0 and names the fault; the Via
				// is sent back even when it is what is wrong.
				line, rest, _ := strings.Cut(string(v.resp), "\r\n")
				if !strings.HasPrefix(line, fmt.Sprintf("SIP/2.0 %d ", v.code)) || !strings.Contains(line, "(") {
					t.Errorf("status line %q", line)
				}
				if !strings.HasPrefix(rest, "Via: ") || !strings.HasSuffix(rest, "Content-Length: 0\r\n\r\n") {
					t.Errorf("answer:\n%s", v.resp)
				}
			default: // valid, or refused by the proxy core after parsing (420, 483)
				if v.act != actPass {
					t.Fatalf("want pass, got %v %d %q", v.act, v.code, v.reason)
				}
				m, err := sip.ParseMessage(v.out)
				if err != nil {
					t.Fatalf("sipgo cannot parse the rewrite: %v\n%s", err, v.out)
				}
				req := m.(*sip.Request)
				if req.CSeq() == nil || string(wireMethod(req)) != string(req.CSeq().MethodName) {
					t.Errorf("method %q, CSeq %v", req.Method, req.CSeq())
				}
				if req.Via() == nil || req.From() == nil || req.To() == nil || req.CallID() == nil {
					t.Errorf("headers lost:\n%s", v.out)
				}
			}
		})
	}
}

// TestViaCanonicalText: the canonical text of a Via (what the validating
// layer forwards) is the value itself when it is already canonical, and
// the built form when it has white space, in the sent-protocol, around
// the sent-by's colon, between parameters or around "=".
func TestViaCanonicalText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport"},
		{"SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/TCP [2001:db8::1]:5061;received=10.0.0.2", "SIP/2.0/UDP h;branch=z9hG4bK1, SIP/2.0/TCP [2001:db8::1]:5061;received=10.0.0.2"},
		{"SIP / 2.0 / UDP 10.0.0.1:5060;branch=z9hG4bK1", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1"},
		{"SIP/2.0/UDP 10.0.0.1 : 5060;branch=z9hG4bK1", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1"},
		{"SIP/2.0/UDP 10.0.0.1:5060 ;branch=z9hG4bK1; rport ;received = 10.0.0.9", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport;received=10.0.0.9"},
		{"SIP/2.0/UDP a;branch=z9hG4bK1,SIP/2.0/UDP b;branch=z9hG4bK2", "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2"},
		{"SIP/2.0/UDP a;x=\"q v\";branch=z9hG4bK1", "SIP/2.0/UDP a;x=\"q v\";branch=z9hG4bK1"},
		{"SIP/2.0/UDP a;branch=z9hG4bK1 ", "SIP/2.0/UDP a;branch=z9hG4bK1"},
	} {
		hops, err := parseVia(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if got := joinVia(c.in, hops); got != c.want {
			t.Errorf("%q: canonical %q, want %q", c.in, got, c.want)
		}
		if got := joinVia("", hops); got != c.want {
			t.Errorf("%q: built %q, want %q", c.in, got, c.want)
		}
	}
}

// TestVerdictOwnsItsStrings: the message is read in place (its strings
// are the read buffer's bytes), so what a verdict keeps must be its own
// copy: the buffer is the next datagram's once inspect returns.
func TestVerdictOwnsItsStrings(t *testing.T) {
	p := testProxyForWire(t)
	data := []byte("INVITE sip:bob@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7:40000;branch=z9hG4bK1\r\nFrom: <sip:a@ims.test>;tag=1\r\n" +
		"To: <sip:bob@ims.test>\r\nCall-ID: c1\r\nCSeq: 1 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
	v := p.inspect(data, false, testSrc)
	if v.act != actReject || v.code != 400 {
		t.Fatalf("CSeq method differs from the Request-Line: %v %d %q, want a 400", v.act, v.code, v.reason)
	}
	start, reason, resp := v.start, v.reason, string(v.resp)
	for i := range data {
		data[i] = 'x'
	}
	if v.start != start || v.start != "INVITE sip:bob@ims.test SIP/2.0" || v.reason != reason || string(v.resp) != resp || strings.Contains(resp, "xxx") {
		t.Fatalf("the verdict changed with the buffer: start %q, reason %q, answer\n%s", v.start, v.reason, v.resp)
	}
	// The same for a TCP stream condemned outside inspect (guardedConn
	// refuses a message whose framing is broken).
	data = []byte("MESSAGE sip:bob@ims.test SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.7:40000;branch=z9hG4bK2\r\nContent-Length: x\r\n\r\n")
	m := p.lex(data, true)
	v = p.refuse(&m, 400, "bad Content-Length", testSrc)
	for i := range data {
		data[i] = 'x'
	}
	if v.start != "MESSAGE sip:bob@ims.test SIP/2.0" {
		t.Fatalf("the refused stream message's start line changed with the buffer: %q", v.start)
	}
}
