package sipproxy

import (
	"context"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// retransmit sends msg twice from one socket to p over UDP and returns the
// two answers; before the second, it waits until p's completed cache holds
// the transaction (when the cache is on).
func retransmit(t *testing.T, p *Proxy, msg string) (first, again string) {
	t.Helper()
	c, to := udpClient(t, p)
	for i, out := range []*string{&first, &again} {
		if i == 1 && completedMax() > 0 {
			deadline := time.Now().Add(2 * time.Second)
			for completedEntries(p) == 0 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
		}
		if _, err := c.WriteTo([]byte(msg), to); err != nil {
			t.Fatal(err)
		}
		if *out = readAnswer(c, 3*time.Second); *out == "" {
			t.Fatal("no answer")
		}
	}
	return first, again
}

// udpSender is udpClient with a function sending a message to p from it.
func udpSender(t *testing.T, p *Proxy) (*net.UDPConn, func(msg string)) {
	c, to := udpClient(t, p)
	return c, func(msg string) {
		t.Helper()
		if _, err := c.WriteTo([]byte(msg), to); err != nil {
			t.Fatal(err)
		}
	}
}

func completedEntries(p *Proxy) int {
	p.completed.mu.Lock()
	defer p.completed.mu.Unlock()
	return len(p.completed.cur) + len(p.completed.prev)
}

// TestCompletedCacheEmptiesWhenIdle: the completed responses go after two
// lifetimes even when nothing else completes (they stayed until the next
// transaction before: 20 MiB held by an idle P-CSCF after 19,360
// registrations, make bench-register with BENCH_SETTLE_SECONDS).
func TestCompletedCacheEmptiesWhenIdle(t *testing.T) {
	defer func(d time.Duration) { completedLifetime = d }(completedLifetime)
	completedLifetime = 200 * time.Millisecond
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) { _ = tx.Respond(404, "Not Here") })
	if first, _ := retransmit(t, p, optionsWith("", "")); !strings.HasPrefix(first, "SIP/2.0 404 ") {
		t.Fatalf("answer %q", first)
	}
	if n := completedEntries(p); n != 1 {
		t.Fatalf("%d completed entries", n)
	}
	time.Sleep(3 * completedLifetime)
	if n := completedEntries(p); n != 0 {
		t.Errorf("%d completed entries after 3 lifetimes of idleness", n)
	}
}

// TestCompletedNonInvite: a non-INVITE answered over UDP leaves sipgo for
// the completed cache, which answers its retransmission with the same
// bytes without calling the handler again.
func TestCompletedNonInvite(t *testing.T) {
	var calls atomic.Int32
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		calls.Add(1)
		_ = tx.Respond(404, "Not Here")
	})
	msg := optionsWith("Subject: a subject\r\nX-Big: "+strings.Repeat("y", 500)+"\r\nContent-Type: text/plain\r\n", "a body")
	first, again := retransmit(t, p, msg)
	if !strings.HasPrefix(first, "SIP/2.0 404 Not Here") || again != first || calls.Load() != 1 {
		t.Errorf("%d handler calls, answers\n%q\nthen\n%q", calls.Load(), first, again)
	}
	if n := completedEntries(p); n != 1 {
		t.Errorf("%d completed entries", n)
	}
}

// TestCompletedInviteKeepsLittle: with the completed cache full, an INVITE
// answered locally stays in sipgo until its ACK, keeping only the header
// fields a response copies; its retransmission gets the same answer.
func TestCompletedInviteKeepsLittle(t *testing.T) {
	defer func(n int) { maxCompleted = n }(maxCompleted)
	maxCompleted = 0
	var calls atomic.Int32
	kept := make(chan *sip.Request, 1)
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		calls.Add(1)
		_ = tx.Respond(486, "Busy Here")
		kept <- tx.origin
	})
	msg := strings.ReplaceAll(optionsWith("Subject: a subject\r\nX-Big: "+strings.Repeat("y", 500)+"\r\nContent-Type: application/sdp\r\n", "v=0\r\n"), "OPTIONS", "INVITE")
	first, again := retransmit(t, p, msg)
	if !strings.HasPrefix(first, "SIP/2.0 486 Busy Here") || again != first || calls.Load() != 1 {
		t.Errorf("%d handler calls, answers\n%q\nthen\n%q", calls.Load(), first, again)
	}
	// Close waits for the handler goroutines, whose end trims the request.
	_ = p.Close()
	origin := <-kept
	var names []string
	for _, h := range origin.Headers() {
		names = append(names, h.Name())
	}
	if len(names) != 5 || len(origin.Body()) != 0 {
		t.Errorf("kept request: %v, %d body bytes", names, len(origin.Body()))
	}
}

// TestCompletedInvite: an INVITE answered 486 over UDP leaves sipgo for the
// completed cache, which retransmits the 486 until the ACK (Timer G),
// answers a retransmitted INVITE with it, absorbs the ACK (the handler never
// sees it), and answers a late CANCEL 200.
func TestCompletedInvite(t *testing.T) {
	var calls atomic.Int32
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		calls.Add(1)
		_ = tx.Respond(486, "Busy Here")
	})
	c, send := udpSender(t, p)
	invite := strings.ReplaceAll(optionsWith("", ""), "OPTIONS", "INVITE")
	read := func(within time.Duration) string { return readAnswer(c, within) }
	send(invite)
	first := read(3 * time.Second)
	if !strings.HasPrefix(first, "SIP/2.0 486 ") {
		t.Fatalf("answer %q", first)
	}
	if again := read(2 * time.Second); again != first { // Timer G: T1 = 500 ms
		t.Fatalf("no retransmission of the 486 before the ACK: %q", again)
	}
	send(invite)
	if again := read(3 * time.Second); again != first || calls.Load() != 1 {
		t.Fatalf("retransmitted INVITE: %d handler calls, %q", calls.Load(), again)
	}
	toTag := first[strings.Index(first, "\r\nTo: ")+2:]
	toTag = toTag[:strings.Index(toTag, "\r\n")]
	ack := strings.Replace(strings.ReplaceAll(optionsWith("", ""), "OPTIONS", "ACK"), "To: <sip:bob@b>", toTag, 1)
	send(ack)
	time.Sleep(100 * time.Millisecond)
	// A Timer G retransmission sent before the ACK arrived may be queued
	// at the client: drain it, then nothing more may come.
	for read(50*time.Millisecond) != "" {
	}
	if got := read(1500 * time.Millisecond); got != "" {
		t.Fatalf("the 486 is still retransmitted after the ACK: %q", got)
	}
	cancel := strings.ReplaceAll(optionsWith("", ""), "OPTIONS", "CANCEL")
	send(cancel)
	if got := read(3 * time.Second); !strings.HasPrefix(got, "SIP/2.0 200 ") || !strings.Contains(got, "CSeq: 1 CANCEL") {
		t.Errorf("CANCEL of the completed INVITE: %q", got)
	}
	if calls.Load() != 1 {
		t.Errorf("%d handler calls", calls.Load())
	}
}

// TestTrimmedRequestPinsNothing: a request kept trimmed (a completed
// transaction left in sipgo) must not keep its removed header fields
// alive. sipgo removes a field by shifting the rest of its list down, so
// the slots past the list's new end still pointed at the fields that were
// last (Content-Type, User-Agent, Contact…) until trimRequest cleared them.
func TestTrimmedRequestPinsNothing(t *testing.T) {
	raw := "INVITE sip:bob@ims.example SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK-trim\r\n" +
		"Max-Forwards: 70\r\n" +
		"Route: <sip:pcscf.ims.example;lr>\r\n" +
		"From: <sip:alice@ims.example>;tag=a\r\n" +
		"To: <sip:bob@ims.example>\r\n" +
		"Call-ID: trim-1\r\n" +
		"CSeq: 1 INVITE\r\n" +
		"Contact: <sip:alice@10.0.0.1:5060>\r\n" +
		"Supported: 100rel, timer\r\n" +
		"User-Agent: test\r\n" +
		"Content-Type: application/sdp\r\n" +
		"Content-Length: 4\r\n\r\nv=0\n"
	m, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	r := m.(*sip.Request)
	trimRequest(r)
	h := r.Headers()
	for i, f := range h[len(h):cap(h)] {
		if f != nil {
			t.Errorf("slot %d past the %d kept fields still holds %s", len(h)+i, len(h), f.Name())
		}
	}
	for _, f := range h {
		if !retainedFields[strings.ToLower(f.Name())] {
			t.Errorf("kept %s", f.Name())
		}
	}
	if len(r.Body()) != 0 {
		t.Errorf("kept the body %q", r.Body())
	}
}

// TestRequestEditedInPlaceStaysWhole: a REGISTER is edited in place (no
// working copy), so the request a handler holds is the one sipgo's
// transaction holds; with the completed cache full the transaction stays
// in sipgo, and its request must not be trimmed under the handler, which
// may have handed it on (the S-CSCF's third-party REGISTER copies it into
// a body on another goroutine).
func TestRequestEditedInPlaceStaysWhole(t *testing.T) {
	n := maxCompleted
	t.Cleanup(func() { maxCompleted = n }) // after the proxy's Close
	maxCompleted = 0
	kept := make(chan *sip.Request, 1)
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		_ = tx.Respond(200, "OK")
		kept <- tx.Request()
	})
	msg := strings.ReplaceAll(optionsWith("Subject: a subject\r\n", ""), "OPTIONS", "REGISTER")
	if first := udpExchange(t, p, msg); !strings.HasPrefix(first, "SIP/2.0 200") {
		t.Fatalf("answer %q", first)
	}
	req := <-kept
	time.Sleep(200 * time.Millisecond) // the handler has returned, release has run
	if req.GetHeader("Subject") == nil || req.GetHeader("Max-Forwards") == nil {
		t.Fatalf("the handler's REGISTER was trimmed after it returned:\n%s", req)
	}
}

// TestCompletedCapFollowsMemoryLimit: the completed cache's bound follows
// the memory limit, and under the default 1 GiB holds what a P-CSCF
// needs at 1,200 calls/s (six entries a call for up to 64 s: 460,800);
// the fixed bound of before (200,000) did not, and the transactions
// beyond it stayed in sipgo whole.
func TestCompletedCapFollowsMemoryLimit(t *testing.T) {
	const need = 6 * 1200 * 64
	if got := completedCap(1 << 30); got < need {
		t.Errorf("1 GiB limit: cap %d entries, want at least %d", got, need)
	}
	for limit, want := range map[int64]int{
		64 << 20:      minCompletedCap,
		2 << 30:       1 << 20,
		64 << 30:      maxCompletedCap,
		math.MaxInt64: maxCompletedCap,
		0:             maxCompletedCap,
	} {
		if got := completedCap(limit); got != want {
			t.Errorf("completedCap(%d) = %d, want %d", limit, got, want)
		}
	}
}

// TestCompletedCacheHoldsAHighCallRate: with the default bound the cache
// takes the entries of 1,200 calls/s at a P-CSCF for 64 s (460,800: both
// legs' INVITE server transactions and accepted branches, both BYEs)
// under the default 1 GiB limit. The fixed bound of before refused every
// entry past 200,000, and those transactions stayed in sipgo whole.
func TestCompletedCacheHoldsAHighCallRate(t *testing.T) {
	if m := completedMax(); m < 6*1200*64 {
		t.Skipf("bound %d (a memory limit under 900 MiB, or overridden)", m)
	}
	c := &completedCache{lifetime: time.Hour}
	for i := range 6 * 1200 * 64 {
		if _, ok := c.put("k"+strconv.Itoa(i), nil, nil, netip.AddrPort{}, nil); !ok {
			t.Fatalf("entry %d refused: the cache is full before holding 64 s of 1,200 calls/s", i)
		}
	}
}
