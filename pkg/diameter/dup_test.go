package diameter

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
)

// countingHSS answers UARs with Server-Name "sip:call-<n>", n counting the
// handler's runs; before, if set, makes each run wait.
func countingHSS(t *testing.T, mod func(*Config), before func()) (*Node, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	hss := testNode(t, hssHost, mod)
	hss.Handle(CmdUserAuthorization, AppCx, func(ctx context.Context, c *Conn, req *diam.Message) (*diam.Message, error) {
		n := calls.Add(1)
		if before != nil {
			before()
		}
		a := hss.AnswerExperimental(req, DiameterFirstRegistration)
		a.AddAVP(NewAVP(AVPServerName, datatype.UTF8String(fmt.Sprintf("sip:call-%d", n))))
		return a, nil
	})
	return hss, &calls
}

// openRaw opens a raw connection to addr that has done its CER/CEA as the
// I-CSCF.
func openRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	rc := dialRaw(t, addr)
	if code, _, _ := Result(rc.exchange(t, cerOpts{host: icscfHost, vsai: []App{AppCx}})); code != DiameterSuccess {
		t.Fatalf("CEA %d", code)
	}
	return rc
}

// roundTrip sends m (with Hop-by-Hop id hbh) and returns the answer.
func (rc *rawConn) roundTrip(t *testing.T, m *diam.Message, hbh uint32) *diam.Message {
	t.Helper()
	m.Header.HopByHopID = hbh
	rc.write(t, m)
	a := rc.read(t)
	if a.Header.HopByHopID != hbh || a.Header.EndToEndID != m.Header.EndToEndID {
		t.Fatalf("answer ids %d/%#x, want %d/%#x", a.Header.HopByHopID, a.Header.EndToEndID, hbh, m.Header.EndToEndID)
	}
	return a
}

func withT(m *diam.Message) *diam.Message {
	m.Header.CommandFlags |= diam.RetransmittedFlag
	return m
}

// TestDuplicateAnsweredFromCache: a request with the T flag whose
// Origin-Host and End-to-End Identifier were answered recently gets the
// same answer again — here on another connection — without the handler
// running again (RFC 6733 §5.5.4, §3). Requests without the T flag, with
// another End-to-End Identifier, or after DuplicateWindow run the handler.
// Before, every duplicate ran the handler (an HSS reserved SQNs again).
func TestDuplicateAnsweredFromCache(t *testing.T) {
	noLeaks(t)
	const window = 500 * time.Millisecond
	hss, calls := countingHSS(t, func(c *Config) { c.DuplicateWindow = window }, nil)
	addr := listen(t, hss, "127.0.0.1:0")
	rc1, rc2 := openRaw(t, addr), openRaw(t, addr)

	uar := newUAR(rc1.n, testIMPU)
	a1 := rc1.roundTrip(t, uar, 100)
	if got := String(a1, AVPServerName); got != "sip:call-1" {
		t.Fatalf("first answer %q", got)
	}
	a2 := rc2.roundTrip(t, withT(uar), 200)
	if got := String(a2, AVPServerName); got != "sip:call-1" || calls.Load() != 1 {
		t.Errorf("T-flag duplicate: answer %q, handler ran %d times (want the cached answer, 1 run)", got, calls.Load())
	}
	if String(a2, AVPSessionID) != String(a1, AVPSessionID) || a2.Header.CommandFlags&diam.RetransmittedFlag != 0 {
		t.Errorf("cached answer differs: %v", a2)
	}

	// Without T: a new request as far as we know (not looked up).
	uar.Header.CommandFlags &^= diam.RetransmittedFlag
	if got := String(rc1.roundTrip(t, uar, 101), AVPServerName); got != "sip:call-2" {
		t.Errorf("same End-to-End id without T flag: %q, want the handler's new answer", got)
	}
	// T flag, unknown End-to-End id: handled.
	other := withT(newUAR(rc1.n, testIMPU))
	if got := String(rc1.roundTrip(t, other, 102), AVPServerName); got != "sip:call-3" {
		t.Errorf("T flag with a new End-to-End id: %q", got)
	}
	// After the window the entry is gone.
	time.Sleep(window + 100*time.Millisecond)
	newer := newUAR(rc1.n, testIMPU) // finishing an entry evicts the expired ones
	rc1.roundTrip(t, newer, 103)
	if got := String(rc2.roundTrip(t, withT(uar), 201), AVPServerName); got != "sip:call-5" {
		t.Errorf("T-flag duplicate after the window: %q, want a new run", got)
	}
}

// TestDuplicateWhileInFlight: a T-flag duplicate arriving while the
// original is still being handled waits for its answer.
func TestDuplicateWhileInFlight(t *testing.T) {
	noLeaks(t)
	entered, release := make(chan struct{}, 4), make(chan struct{})
	hss, calls := countingHSS(t, nil, func() {
		entered <- struct{}{}
		<-release
	})
	addr := listen(t, hss, "127.0.0.1:0")
	rc1, rc2 := openRaw(t, addr), openRaw(t, addr)
	uar := newUAR(rc1.n, testIMPU)
	uar.Header.HopByHopID = 1
	rc1.write(t, uar)
	<-entered
	dup := newUAR(rc1.n, testIMPU)
	dup.Header.EndToEndID = uar.Header.EndToEndID
	dup.Header.HopByHopID = 2
	rc2.write(t, withT(dup))
	select {
	case <-entered:
		t.Fatal("handler started again for the T-flag duplicate")
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	a1, a2 := rc1.read(t), rc2.read(t)
	if a1.Header.HopByHopID != 1 || a2.Header.HopByHopID != 2 {
		t.Errorf("Hop-by-Hop ids %d, %d", a1.Header.HopByHopID, a2.Header.HopByHopID)
	}
	if String(a1, AVPServerName) != "sip:call-1" || String(a2, AVPServerName) != "sip:call-1" || calls.Load() != 1 {
		t.Errorf("answers %q/%q after %d runs", String(a1, AVPServerName), String(a2, AVPServerName), calls.Load())
	}
}

// TestDuplicateCacheBounded: at most DuplicateEntries answers are kept,
// the oldest dropped first.
func TestDuplicateCacheBounded(t *testing.T) {
	noLeaks(t)
	hss, calls := countingHSS(t, func(c *Config) { c.DuplicateEntries = 2 }, nil)
	addr := listen(t, hss, "127.0.0.1:0")
	rc := openRaw(t, addr)
	var reqs []*diam.Message
	for i := range 3 {
		m := newUAR(rc.n, testIMPU)
		rc.roundTrip(t, m, uint32(10+i))
		reqs = append(reqs, m)
	}
	if got := String(rc.roundTrip(t, withT(reqs[2]), 20), AVPServerName); got != "sip:call-3" {
		t.Errorf("newest entry: %q, want the cached answer", got)
	}
	if got := String(rc.roundTrip(t, withT(reqs[0]), 21), AVPServerName); got != "sip:call-4" || calls.Load() != 4 {
		t.Errorf("evicted entry: %q after %d runs, want a new run", got, calls.Load())
	}
}

// TestFailoverToSameHSSDoesNotRunTwice: the case duplicate detection is
// for. The I-CSCF reaches one HSS over two paths (two Peers, priority 0
// and 1). The HSS answers a UAR on the first path, but the answer is held
// (the link fails towards the I-CSCF); the watchdog makes that path
// SUSPECT and the I-CSCF re-sends the UAR on the second path with the T
// flag; the HSS answers it from its cache, so its handler (which would
// reserve SQNs in a MAR) ran once.
func TestFailoverToSameHSSDoesNotRunTwice(t *testing.T) {
	noLeaks(t)
	const tw = 200 * time.Millisecond
	hss, calls := countingHSS(t, func(c *Config) { c.WatchdogInterval = tw }, nil)
	fz := newFreezer(t, listen(t, hss, "127.0.0.1:0"))
	addr2 := listen(t, hss, "127.0.0.1:0")
	icscf := testNode(t, icscfHost, func(c *Config) { c.WatchdogInterval = tw })
	ctx := context.Background()
	p1, err := icscf.Connect(ctx, PeerConfig{Addr: fz.addr(), Host: hssHost})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := icscf.Connect(ctx, PeerConfig{Addr: addr2, Host: hssHost, Priority: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []*Peer{p1, p2} {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := p.WaitOpen(wctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	waitFor(t, 2*time.Second, "two connections at the HSS", func() bool { return len(hss.Conns()) == 2 })

	fz.freezeDir(true, fromTarget)
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	a, err := icscf.Send(sctx, newUAR(icscf, testIMPU))
	if err != nil {
		t.Fatalf("UAR: %v", err)
	}
	if got := String(a, AVPServerName); got != "sip:call-1" || calls.Load() != 1 {
		t.Errorf("answer %q after %d handler runs, want sip:call-1 after 1", got, calls.Load())
	}
	if w := p1.Watchdog(); w != WatchdogSuspect && w != WatchdogDown {
		t.Errorf("first path %v, want suspect or down", w)
	}
	fz.freeze(false) // let the DPRs of the clean-up through
}
