package sipproxy

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/imscore/imscore/pkg/rawsock"
)

// backlogMsg is a request of about 1 KB from 127.0.0.1:port; toTag ""
// makes it a new request.
func backlogMsg(method, branch, toTag string, port int) []byte {
	to := "<sip:bob@ims.test>"
	if toTag != "" {
		to += ";tag=" + toTag
	}
	return []byte(fmt.Sprintf("%s sip:bob@ims.test SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK%s\r\n"+
		"From: <sip:alice@ims.test>;tag=a1\r\nTo: %s\r\nCall-ID: backlog-%s\r\nCSeq: 1 %s\r\nMax-Forwards: 70\r\n"+
		"Subject: %s\r\nContent-Length: 0\r\n\r\n", method, port, branch, to, branch, method, strings.Repeat("x", 800)))
}

// A new request read while the socket's receive queue is over
// Limits.Backlog is answered 503 with Retry-After where it is read, and
// never reaches sipgo; requests within dialogs read from the same full
// queue pass; the ACK of that 503 is absorbed; a new request read from a
// short queue passes. Real sockets: the queue is the kernel's.
func TestBacklogRefusesNewRequests(t *testing.T) {
	p := testProxyForWire(t)
	uc, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	// 64 KiB asked: the kernel enforces 128 KiB; an eighth is 16 KiB,
	// about 7 datagrams of 1 KB as the kernel counts them.
	if err := uc.SetReadBuffer(64 << 10); err != nil {
		t.Fatal(err)
	}
	raw, err := rawsock.UDP(uc)
	if err != nil {
		t.Fatal(err)
	}
	gc := &guardedPacketConn{PacketConn: raw, queue: raw, p: p, ready: make(chan struct{})}
	ue, err := net.DialUDP("udp4", nil, uc.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer ue.Close()
	port := ue.LocalAddr().(*net.UDPAddr).Port
	send := func(b []byte) {
		t.Helper()
		if _, err := ue.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		_ = raw.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _, err := gc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("proxy read: %v", err)
		}
		return string(buf[:n])
	}

	const inDialog = 30
	send(backlogMsg("INVITE", "new1", "", port))
	for i := range inDialog {
		send(backlogMsg("BYE", fmt.Sprint("bye", i), "b1", port))
	}
	for i := range inDialog {
		if got := read(); !strings.HasPrefix(got, "BYE ") {
			t.Fatalf("read %d: want the in-dialog BYE passed, got %.60q", i, got)
		}
	}
	_ = ue.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4096)
	n, err := ue.Read(buf)
	if err != nil {
		t.Fatalf("the INVITE read with %d datagrams queued behind it got no answer: %v", inDialog, err)
	}
	resp := string(buf[:n])
	for _, want := range []string{"SIP/2.0 503 Service Unavailable\r\n", "\r\nRetry-After: 5\r\n", `"overload: receive queue `, "branch=z9hG4bKnew1", "CSeq: 1 INVITE"} {
		if !strings.Contains(resp, want) {
			t.Fatalf("answer to the INVITE lacks %q:\n%s", want, resp)
		}
	}
	tag := ""
	for _, ln := range strings.Split(resp, "\r\n") {
		if strings.HasPrefix(ln, "To: ") {
			tag = headerTag(strings.TrimPrefix(ln, "To: "))
		}
	}
	if !strings.HasPrefix(tag, p.slTag) {
		t.Fatalf("503's To tag %q does not start with the proxy's stateless prefix %q", tag, p.slTag)
	}

	// The UE acknowledges the 503 and tries again, the queue now short.
	send(backlogMsg("ACK", "new1", tag, port))
	send(backlogMsg("INVITE", "new2", "", port))
	if got := read(); !strings.HasPrefix(got, "INVITE ") || !strings.Contains(got, "z9hG4bKnew2") {
		t.Fatalf("want the 503's ACK absorbed and the second INVITE passed, got %.80q", got)
	}
	if got := testutil.ToFloat64(p.backlog.counter.WithLabelValues("INVITE")); got != 1 {
		t.Fatalf("sip_overload_refused_total{method=INVITE} = %v, want 1", got)
	}
}

// The ACK of a 503 another element sent (relayed here; its transaction
// is this proxy's) is not absorbed, nor an ACK for a 2xx.
func TestBacklogAbsorbsOnlyOwnStatelessACKs(t *testing.T) {
	p := testProxyForWire(t)
	for _, tag := range []string{"slzzzzzzzzabcd", "b1", p.slTag[:len(p.slTag)-1]} {
		v := p.inspect(backlogMsg("ACK", "x", tag, 5070), false, testSrc)
		if v.act != actPass {
			t.Fatalf("ACK with To tag %q: %v, want passed", tag, v.act)
		}
	}
	if v := p.inspect(backlogMsg("ACK", "x", p.slTag+"0011", 5070), false, testSrc); v.act != actAbsorb {
		t.Fatalf("ACK of this proxy's stateless answer: %v, want absorbed", v.act)
	}
}

func TestHeaderTag(t *testing.T) {
	for v, want := range map[string]string{
		"<sip:bob@ims.test>":                            "",
		"<sip:bob@ims.test;tag=u>;tag=abc":              "abc",
		"\"B;tag=x\" <sip:bob@ims.test>;foo=1;TAG=q9":   "q9",
		"sip:bob@ims.test;tag=z":                        "z",
		"<sip:bob@ims.test;tag=uri-only>":               "",
		"<sip:bob@ims.test>;tagx=1":                     "",
		"<sip:bob@ims.test>;x=\"a\" ; tag = spaced;y=2": "spaced",
	} {
		if got := headerTag(v); got != want {
			t.Errorf("headerTag(%q) = %q, want %q", v, got, want)
		}
	}
}

// fixedBacklog is a receive queue that always reports queued of limit.
type fixedBacklog struct{ queued, limit int }

func (f fixedBacklog) Backlog() (int, int, error) { return f.queued, f.limit, nil }

// A request that passed more elements (Via entries) is refused only on a
// longer queue: with the queue at 20 % of the buffer and the default
// eighth, a UE's INVITE (one Via) is refused and one relayed by a
// proxy (two) passes; at 40 % both are refused, one with four Vias
// passes, and at 60 % all are (four is the cap).
func TestBacklogLimitGrowsWithVias(t *testing.T) {
	p := testProxyForWire(t)
	invite := func(vias int) []byte {
		msg := string(backlogMsg("INVITE", "h", "", 5070))
		for i := 1; i < vias; i++ {
			msg = strings.Replace(msg, "\r\nFrom:", fmt.Sprintf("\r\nVia: SIP/2.0/UDP 192.0.2.%d:5060;branch=z9hG4bKp%d\r\nFrom:", i, i), 1)
		}
		return []byte(msg)
	}
	for _, tc := range []struct {
		percent, vias int
		refused       bool
	}{
		{20, 1, true}, {20, 2, false},
		{40, 1, true}, {40, 3, true}, {40, 4, false},
		{60, 4, true}, {60, 6, true},
		{10, 1, false},
	} {
		v := p.inspectFrom(invite(tc.vias), false, testSrc, fixedBacklog{tc.percent * 1000, 100 * 1000})
		if got := v.act == actReject && v.code == 503; got != tc.refused {
			t.Errorf("queue at %d %%, INVITE with %d Via entries: refused %v, want %v (%v %d %q)", tc.percent, tc.vias, got, tc.refused, v.act, v.code, v.reason)
		}
	}
	// A REGISTER answering a challenge counts one more: at 20 % the
	// UE's first REGISTER is refused, its answer to the challenge passes.
	register := func(auth string) []byte {
		msg := strings.ReplaceAll(string(backlogMsg("REGISTER", "r", "", 5070)), "sip:bob@ims.test SIP/2.0", "sip:ims.test SIP/2.0")
		return []byte(strings.Replace(msg, "\r\nContent-Length:", "\r\n"+auth+"Content-Length:", 1))
	}
	queue := fixedBacklog{20 * 1000, 100 * 1000}
	if v := p.inspectFrom(register(`Authorization: Digest username="u@ims.test", realm="ims.test", nonce="", uri="sip:ims.test", response=""`+"\r\n"), false, testSrc, queue); v.code != 503 {
		t.Errorf("initial REGISTER (empty response) at 20 %%: %v %d, want 503", v.act, v.code)
	}
	if v := p.inspectFrom(register(`Authorization: Digest username="u@ims.test", realm="ims.test", nonce="bm9uY2U=", uri="sip:ims.test", response="6629fae49393a05397450978507c4ef1", algorithm=AKAv1-MD5`+"\r\n"), false, testSrc, queue); v.act != actPass {
		t.Errorf("REGISTER answering a challenge at 20 %%: %v %d %q, want passed", v.act, v.code, v.reason)
	}
}
