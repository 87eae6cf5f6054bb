package e2e

import (
	"bytes"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/sipproxy/rfc4475"
)

// validationCodes are the answers of the proxy core's validating layer; a
// valid message must get none of them.
var validationCodes = []int{400, 413, 416, 420, 483, 505, 513}

// TestRFC4475 sends every RFC 4475 torture message (and the invalid
// variants of pkg/sipproxy/rfc4475) over UDP to the P-CSCF, the I-CSCF and
// the S-CSCF of one lab and checks each answer against the treatment the
// RFC describes: accepted (any answer but a validation error, or a
// provisional), rejected with the listed code and a reason phrase naming
// the fault (a status line of SIP/2.0 even for SIP/7.0), or dropped.
func TestRFC4475(t *testing.T) {
	l := newPCSCFLab(t, freePort(t))
	sink := newUDPSink(t)
	ports := map[string]int{"pcscf": l.pcscf, "icscf": l.icscf, "scscf": l.scscf}
	for _, fn := range []string{"pcscf", "icscf", "scscf"} {
		t.Run(fn, func(t *testing.T) {
			t.Parallel()
			target := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ports[fn]}
			for _, c := range rfc4475.Cases() {
				t.Run(c.Name, func(t *testing.T) {
					t.Parallel()
					// mpart01 routes to 127.0.0.1:5080, someone else's port on a
					// shared machine: route it to our sink instead.
					msg := bytes.ReplaceAll(c.Message(), []byte("127.0.0.1:5080"), []byte(sink.addr()))
					msg = withRport(msg, fn+"."+c.Name)
					got := sendUDP(t, target, msg, c.Want)
					if c.Want == rfc4475.Accept && len(got) == 0 && sink.gotCallIDOf(msg) {
						return // forwarded by Route to the sink (mpart01): accepted
					}
					checkTorture(t, c, got)
				})
			}
			t.Run("dblreq-second-ignored", func(t *testing.T) {
				t.Parallel()
				msg := withRport(caseMessage(t, "dblreq"), fn+".dblreq2")
				for _, r := range sendUDP(t, target, msg, rfc4475.Drop) {
					if r.cseqMethod != "REGISTER" {
						t.Errorf("answer to the octets after Content-Length: %s", r.first)
					}
				}
			})
			// The same over TCP, one connection per message, but where the
			// stream framing (RFC 3261 §18.3) changes the treatment.
			for _, c := range rfc4475.Cases() {
				switch c.Name {
				case "clerr", "dblreq":
					continue // a stream waits for the rest / reads a second message
				case "inv2543":
					c.Want, c.Codes = rfc4475.Reject, []int{400} // no Content-Length on a stream
				}
				t.Run("tcp/"+c.Name, func(t *testing.T) {
					t.Parallel()
					msg := bytes.ReplaceAll(c.Message(), []byte("127.0.0.1:5080"), []byte(sink.addr()))
					msg = withRport(msg, fn+".tcp."+c.Name)
					got := sendTCP(t, ports[fn], msg, c.Want)
					if c.Want == rfc4475.Accept && len(got) == 0 && sink.gotCallIDOf(msg) {
						return
					}
					checkTorture(t, c, got)
				})
			}
		})
	}
	t.Run("stray-response", func(t *testing.T) {
		// RFC 3261 §18.1.2: a response whose top Via sent-by is not what
		// we insert (our host, another port) is discarded; the same with
		// our own port is relayed statelessly (the control: the path works).
		for _, fn := range []string{"pcscf", "icscf", "scscf"} {
			for _, own := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/own=%v", fn, own), func(t *testing.T) {
					t.Parallel()
					port := ports[fn]
					viaPort := port + 1
					if own {
						viaPort = port
					}
					callID := fmt.Sprintf("stray-%s-%v", fn, own)
					res := fmt.Sprintf("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bKstray%s\r\n"+
						"Via: SIP/2.0/UDP %s;branch=z9hG4bKup%s\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:b@example.com>;tag=2\r\n"+
						"Call-ID: %s\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n", viaPort, callID, sink.addr(), callID, callID)
					to := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
					// A keep-alive from the sink first: the proxy relays
					// responses only to a peer it has heard from (sipgo's
					// connection pool), as a real upstream would be.
					if _, err := sink.c.WriteTo([]byte("\r\n\r\n"), to); err != nil {
						t.Fatal(err)
					}
					time.Sleep(50 * time.Millisecond)
					if got := sendUDP(t, to, []byte(res), rfc4475.Drop); len(got) > 0 {
						t.Errorf("%s: a response was answered: %q", fn, got[0].first)
					}
					got := sink.waitFor(callID, time.Second)
					switch {
					case own && !got:
						t.Errorf("%s: response with our own Via was not relayed", fn)
					case !own && got:
						t.Errorf("%s: response whose top Via has our host and port %d (not ours) was relayed", fn, viaPort)
					}
				})
			}
		}
	})
}

func caseMessage(t *testing.T, name string) []byte {
	for _, c := range rfc4475.Cases() {
		if c.Name == name {
			return c.Message()
		}
	}
	t.Fatalf("no case %s", name)
	return nil
}

// withRport adds ;rport to the first Via header field of a request, and
// id to its RFC 3261 branch and to its Call-ID, the changes the test makes
// to the messages.
// RFC 3261 §18.2.2 sends responses over UDP to the Via's port (5060 when
// absent), someone else's port on a shared machine; with rport (RFC 3581)
// they come back to the test socket. Several RFC 4475 messages share a
// branch and sent-by (z9hG4bKkdjuw), and each is sent over UDP and TCP:
// sent at once to one proxy they would be one transaction, the later ones
// taken for retransmissions.
func withRport(msg []byte, id string) []byte {
	if bytes.HasPrefix(msg, []byte("SIP/")) {
		return msg
	}
	lines := bytes.SplitAfter(msg, []byte("\r\n"))
	for i := 1; i < len(lines); i++ {
		if len(bytes.TrimSpace(lines[i])) == 0 {
			break // end of the header section
		}
		name, _, ok := bytes.Cut(lines[i], []byte(":"))
		if !ok {
			continue
		}
		if n := strings.ToLower(strings.TrimSpace(string(name))); n != "via" && n != "v" {
			continue
		}
		end := i // the last continuation line of the header field
		for end+1 < len(lines) && len(lines[end+1]) > 0 && (lines[end+1][0] == ' ' || lines[end+1][0] == '\t') {
			end++
		}
		for k := i; k <= end; k++ {
			if b := branchValue.FindIndex(lines[k]); b != nil {
				lines[k] = append(lines[k][:b[1]:b[1]], append([]byte("-"+id), lines[k][b[1]:]...)...)
				break
			}
		}
		lines[end] = append(bytes.TrimSuffix(lines[end], []byte("\r\n")), []byte(";rport\r\n")...)
		break
	}
	// RFC 2543 transactions are keyed by Call-ID (and From tag, CSeq, Via).
	for i := 1; i < len(lines) && len(bytes.TrimSpace(lines[i])) > 0; i++ {
		if callIDLine.Match(lines[i]) {
			lines[i] = append(bytes.TrimSuffix(lines[i], []byte("\r\n")), []byte("-"+id+"\r\n")...)
		}
	}
	return bytes.Join(lines, nil)
}

var callIDLine = regexp.MustCompile(`(?i)^(call-id|i)[ \t]*:`)

// branchValue finds an RFC 3261 branch with something after the magic
// cookie (badbranch's bare cookie stays as it is).
var branchValue = regexp.MustCompile(`branch=z9hG4bK[A-Za-z0-9.!%*_+` + "`" + `'~-]+`)

// tortureAnswer is one response received for a torture message.
type tortureAnswer struct {
	first      string // status line as received
	code       int
	reason     string
	cseqMethod string
}

// sendUDP sends msg from a fresh socket and collects the answers: until the
// first final one (or a provisional when accepting is the expectation) and
// at most 3 s, or for 1.5 s when nothing is expected.
func sendUDP(t *testing.T, to *net.UDPAddr, msg []byte, want rfc4475.Want) []tortureAnswer {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.WriteTo(msg, to); err != nil {
		t.Fatal(err)
	}
	wait := 3 * time.Second
	if want == rfc4475.Drop {
		wait = 1500 * time.Millisecond
	}
	deadline := time.Now().Add(wait)
	var out []tortureAnswer
	buf := make([]byte, 65535)
	for {
		_ = c.SetReadDeadline(deadline)
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			return out
		}
		a := parseAnswer(buf[:n])
		out = append(out, a)
		if want != rfc4475.Drop && (a.code >= 200 || (want == rfc4475.Accept && a.code >= 100)) {
			return out
		}
	}
}

// sendTCP is sendUDP over a new TCP connection; the answers come back on it.
func sendTCP(t *testing.T, port int, msg []byte, want rfc4475.Want) []tortureAnswer {
	t.Helper()
	c, err := net.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	wait := 3 * time.Second
	if want == rfc4475.Drop {
		wait = 1500 * time.Millisecond
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	var out []tortureAnswer
	var in []byte
	buf := make([]byte, 65535)
	for {
		for {
			end := bytes.Index(in, []byte("\r\n\r\n"))
			if end < 0 {
				break
			}
			n := 0
			if m := contentLength.FindSubmatch(in[:end+2]); m != nil {
				n, _ = strconv.Atoi(string(m[1]))
			}
			if len(in) < end+4+n {
				break
			}
			a := parseAnswer(in[:end+4+n])
			in = in[end+4+n:]
			out = append(out, a)
			if want != rfc4475.Drop && (a.code >= 200 || (want == rfc4475.Accept && a.code >= 100)) {
				return out
			}
		}
		n, err := c.Read(buf)
		in = append(in, buf[:n]...)
		if err != nil {
			return out
		}
	}
}

var contentLength = regexp.MustCompile(`(?im)^(?:content-length|l)[ \t]*:[ \t]*(\d+)\r$`)

func parseAnswer(b []byte) tortureAnswer {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	a := tortureAnswer{first: string(line)}
	parts := strings.SplitN(a.first, " ", 3)
	if len(parts) >= 2 {
		a.code, _ = strconv.Atoi(parts[1])
	}
	if len(parts) == 3 {
		a.reason = parts[2]
	}
	if m, err := sip.ParseMessage(b); err == nil {
		if cs := m.CSeq(); cs != nil {
			a.cseqMethod = string(cs.MethodName)
		}
	}
	return a
}

func checkTorture(t *testing.T, c rfc4475.Case, got []tortureAnswer) {
	t.Helper()
	var final *tortureAnswer
	for i := range got {
		if !strings.HasPrefix(got[i].first, "SIP/2.0 ") {
			t.Errorf("%s (%s): status line %q is not SIP/2.0", c.Name, c.Section, got[i].first)
		}
		if final == nil && got[i].code >= 200 {
			final = &got[i]
		}
	}
	switch c.Want {
	case rfc4475.Drop:
		if len(got) > 0 {
			t.Errorf("%s (%s, %s): want no answer, got %q", c.Name, c.Section, c.Note, got[0].first)
		}
	case rfc4475.Reject:
		if final == nil {
			t.Errorf("%s (%s, %s): want %v, got no final answer (%d provisional)", c.Name, c.Section, c.Note, c.Codes, len(got))
			return
		}
		if !slices.Contains(c.Codes, final.code) {
			t.Errorf("%s (%s, %s): want %v, got %q", c.Name, c.Section, c.Note, c.Codes, final.first)
		}
		if final.code == 400 && (final.reason == "" || strings.EqualFold(final.reason, "Bad Request")) {
			t.Errorf("%s: 400 without a reason naming the fault: %q", c.Name, final.first)
		}
	case rfc4475.Accept:
		if len(got) == 0 {
			t.Errorf("%s (%s, %s): valid message got no answer", c.Name, c.Section, c.Note)
			return
		}
		if a := got[len(got)-1]; a.code >= 200 && slices.Contains(validationCodes, a.code) {
			t.Errorf("%s (%s, %s): valid message refused: %q", c.Name, c.Section, c.Note, a.first)
		}
	}
}

// udpSink is a UDP socket that records the Call-IDs it receives.
type udpSink struct {
	c    net.PacketConn
	mu   sync.Mutex
	seen map[string]bool
}

func newUDPSink(t *testing.T) *udpSink {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &udpSink{c: c, seen: map[string]bool{}}
	t.Cleanup(func() { c.Close() })
	go func() {
		b := make([]byte, 65535)
		for {
			n, _, err := c.ReadFrom(b)
			if err != nil {
				return
			}
			if m, err := sip.ParseMessage(b[:n]); err == nil && m.CallID() != nil {
				s.mu.Lock()
				s.seen[m.CallID().Value()] = true
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// gotCallIDOf reports whether the sink received a message with the Call-ID
// of msg.
func (s *udpSink) gotCallIDOf(msg []byte) bool {
	m, err := sip.ParseMessage(msg)
	if err != nil || m.CallID() == nil {
		return false
	}
	return s.waitFor(m.CallID().Value(), 100*time.Millisecond)
}

func (s *udpSink) addr() string { return s.c.LocalAddr().String() }

func (s *udpSink) waitFor(callID string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		ok := s.seen[callID]
		s.mu.Unlock()
		if ok {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
