package sipproxy

import (
	"context"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// rawUAS is a UDP socket of the test playing the UAS: it reads what the
// proxy forwards and answers with responses built from it.
type rawUAS struct {
	t    *testing.T
	conn *net.UDPConn
}

func newRawUAS(t *testing.T) *rawUAS {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawUAS{t: t, conn: c}
}

func (u *rawUAS) target() Target {
	a := u.conn.LocalAddr().(*net.UDPAddr)
	return Target{NextHop: &sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: a.Port}, Transport: "udp"}
}

// next returns the next request the UAS receives within the wait and
// where it came from; nil when none comes.
func (u *rawUAS) next(within time.Duration) (*sip.Request, net.Addr) {
	_ = u.conn.SetReadDeadline(time.Now().Add(within))
	b := make([]byte, 65535)
	n, from, err := u.conn.ReadFrom(b)
	if err != nil {
		return nil, nil
	}
	m, err := sip.ParseMessage(b[:n])
	if err != nil {
		u.t.Fatalf("UAS: %v\n%s", err, b[:n])
	}
	req, ok := m.(*sip.Request)
	if !ok {
		u.t.Fatalf("UAS got a response: %s", b[:n])
	}
	return req, from
}

// answer sends to the response of code to req (its Via fields, From, To
// with a tag, Call-ID, CSeq) and returns its text.
func (u *rawUAS) answer(req *sip.Request, to net.Addr, code int, reason string) string {
	var b strings.Builder
	b.WriteString("SIP/2.0 " + portStr(code) + " " + reason + "\r\n")
	for _, v := range req.GetHeaders("Via") {
		b.WriteString("Via: " + v.Value() + "\r\n")
	}
	b.WriteString("From: " + req.From().Value() + "\r\nTo: " + req.To().Value() + ";tag=uas1\r\n")
	b.WriteString("Call-ID: " + req.CallID().Value() + "\r\nCSeq: " + req.CSeq().Value() + "\r\n")
	b.WriteString("Contact: <sip:bob@127.0.0.1:" + portStr(u.conn.LocalAddr().(*net.UDPAddr).Port) + ">\r\nContent-Length: 0\r\n\r\n")
	if _, err := u.conn.WriteTo([]byte(b.String()), to); err != nil {
		u.t.Fatal(err)
	}
	return b.String()
}

// TestAcceptedInvite (RFC 6026): once an INVITE's 2xx is relayed over UDP,
// its transactions leave sipgo for the completed cache, which still does
// what the Accepted states do: a provisional coming in after the 2xx is
// absorbed; a retransmission of the 2xx by the UAS reaches the caller
// (Timer M's duty), with the proxy's Via removed, from the socket the
// first went from; a retransmitted INVITE is absorbed, not
// forwarded again (Timer L's); a CANCEL is answered 200 (RFC 3261 §9.2).
func TestAcceptedInvite(t *testing.T) {
	uas := newRawUAS(t)
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		_, _ = tx.Forward(ctx, ForwardOptions{}, uas.target())
	})
	c, send := udpSender(t, p)
	invite := strings.ReplaceAll(optionsWith("", ""), "OPTIONS", "INVITE")
	send(invite)
	fwd, from := uas.next(3 * time.Second)
	if fwd == nil || !fwd.IsInvite() {
		t.Fatalf("the UAS got %v", fwd)
	}
	ok := uas.answer(fwd, from, 200, "OK")
	got := readAnswer(c, 3*time.Second)
	if !strings.HasPrefix(got, "SIP/2.0 200 ") || strings.Count(got, "\r\nVia: ") != 1 {
		t.Fatalf("the caller got %q", got)
	}

	// The transactions are in the completed cache.
	res, err := sip.ParseMessage([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	branchKey, err := sip.ClientTxKeyMake(res)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, in := p.completed.get(acceptedBranchKey(branchKey)); in {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the accepted INVITE's branch is not in the completed cache: sipgo still holds its transactions")
		}
		time.Sleep(5 * time.Millisecond)
	}

	// A 180 the UAS sent before its 2xx, come in after it: absorbed (it
	// would reach the caller after the 2xx).
	uas.answer(fwd, from, 180, "Ringing")
	if late := readAnswer(c, 500*time.Millisecond); late != "" {
		t.Fatalf("a 180 after the 2xx was relayed: %q", late)
	}
	// The UAS retransmits its 2xx (no ACK yet): relayed to the caller.
	if _, err := uas.conn.WriteTo([]byte(ok), from); err != nil {
		t.Fatal(err)
	}
	if again := readAnswer(c, 3*time.Second); again != got {
		t.Fatalf("2xx retransmission relayed as %q, the first was %q", again, got)
	}
	// The caller retransmits its INVITE: absorbed.
	send(invite)
	if r, _ := uas.next(700 * time.Millisecond); r != nil {
		t.Fatalf("a retransmitted INVITE was forwarded again: %s", r.StartLine())
	}
	if a := readAnswer(c, 100*time.Millisecond); a != "" {
		t.Fatalf("a retransmitted INVITE was answered %q", a)
	}
	send(strings.ReplaceAll(optionsWith("", ""), "OPTIONS", "CANCEL"))
	if a := readAnswer(c, 3*time.Second); !strings.HasPrefix(a, "SIP/2.0 200 ") || !strings.Contains(a, "CSeq: 1 CANCEL") {
		t.Fatalf("CANCEL after the 2xx: %q", a)
	}
	if r, _ := uas.next(300 * time.Millisecond); r != nil {
		t.Fatalf("the UAS got %s", r.StartLine())
	}
}

// TestAcceptedInviteIsFreed: the INVITE of an accepted transaction is
// garbage once the completed cache has taken over, though sipgo's Timer
// L and Timer M keep their 64*T1: upstream sipgo did not stop them when a
// transaction was terminated, and the armed timer kept the whole
// transaction reachable for 32 s (our fork stops them, FORK.md).
func TestAcceptedInviteIsFreed(t *testing.T) {
	uas := newRawUAS(t)
	freed := make(chan struct{})
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		runtime.AddCleanup(tx.origin, func(ch chan struct{}) { close(ch) }, freed)
		_, _ = tx.Forward(ctx, ForwardOptions{}, uas.target())
	})
	c, send := udpSender(t, p)
	send(strings.ReplaceAll(optionsWith("", ""), "OPTIONS", "INVITE"))
	fwd, from := uas.next(3 * time.Second)
	if fwd == nil {
		t.Fatal("the UAS got nothing")
	}
	uas.answer(fwd, from, 200, "OK")
	if got := readAnswer(c, 3*time.Second); !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Fatalf("the caller got %q", got)
	}
	const within = 3 * time.Second
	deadline := time.After(within)
	for {
		runtime.GC()
		select {
		case <-freed:
			return
		case <-deadline:
			t.Fatalf("the accepted INVITE is still reachable %v after its 2xx", within)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestNonInviteBranchEndsWithFinal: a forwarded non-INVITE's client
// transaction ends with its final response instead of staying for Timer K
// (5 s over UDP) with its request copy and response; a retransmission of
// that response then matches no transaction and goes upstream statelessly
// (RFC 3261 §16.7), where the caller's own transaction absorbs it.
func TestNonInviteBranchEndsWithFinal(t *testing.T) {
	uas := newRawUAS(t)
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		res, _ := tx.Forward(ctx, ForwardOptions{}, uas.target())
		_ = tx.Relay(res)
	})
	c, send := udpSender(t, p)
	send(optionsWith("", ""))
	fwd, from := uas.next(3 * time.Second)
	if fwd == nil {
		t.Fatal("the UAS got nothing")
	}
	ok := uas.answer(fwd, from, 200, "OK")
	got := readAnswer(c, 3*time.Second)
	if !strings.HasPrefix(got, "SIP/2.0 200 ") {
		t.Fatalf("the caller got %q", got)
	}
	time.Sleep(100 * time.Millisecond) // the branch ends after the relay
	if _, err := uas.conn.WriteTo([]byte(ok), from); err != nil {
		t.Fatal(err)
	}
	again := readAnswer(c, 2*time.Second)
	if again != got {
		t.Fatalf("the UAS's retransmitted 200 reached the caller as %q; want it relayed as the first (%q): the client transaction still holds it", again, got)
	}
}
