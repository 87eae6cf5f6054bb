package diameter

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
)

// freezer is a TCP proxy that can stop forwarding in both directions
// (bytes are held, not dropped) to make a peer fall silent without closing
// anything, as a hung process or a black-holed link does.
type freezer struct {
	l      net.Listener
	target string

	mu     sync.Mutex
	cond   *sync.Cond
	frozen [2]bool // toTarget, fromTarget
	closed bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{l: l, target: target}
	f.cond = sync.NewCond(&f.mu)
	f.wg.Add(1)
	go f.accept()
	t.Cleanup(f.close)
	return f
}

func (f *freezer) addr() string { return f.l.Addr().String() }

func (f *freezer) accept() {
	defer f.wg.Done()
	for {
		in, err := f.l.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", f.target)
		if err != nil {
			in.Close()
			continue
		}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		f.conns = append(f.conns, in, out)
		f.mu.Unlock()
		var once sync.Once
		done := make(chan struct{})
		stop := func() {
			once.Do(func() {
				in.Close()
				out.Close()
				f.mu.Lock()
				close(done)
				f.cond.Broadcast()
				f.mu.Unlock()
			})
		}
		f.wg.Add(2)
		go f.pump(out, in, toTarget, done, stop)
		go f.pump(in, out, fromTarget, done, stop)
	}
}

// Directions of a freezer.
const (
	toTarget   = 0
	fromTarget = 1
)

func (f *freezer) pump(dst, src net.Conn, dir int, done chan struct{}, stop func()) {
	defer f.wg.Done()
	defer stop()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		f.mu.Lock()
		for f.frozen[dir] && !f.closed && !isClosed(done) {
			f.cond.Wait()
		}
		f.mu.Unlock()
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// freeze holds (on) or releases the bytes in both directions.
func (f *freezer) freeze(on bool) { f.freezeDir(on, toTarget, fromTarget) }

func (f *freezer) freezeDir(on bool, dirs ...int) {
	f.mu.Lock()
	for _, d := range dirs {
		f.frozen[d] = on
	}
	f.cond.Broadcast()
	f.mu.Unlock()
}

func (f *freezer) close() {
	f.l.Close()
	f.mu.Lock()
	f.closed = true
	for _, c := range f.conns {
		c.Close()
	}
	f.cond.Broadcast()
	f.mu.Unlock()
	f.wg.Wait()
}

// wdEvent is one watchdog transition seen through Config.OnWatchdog.
type wdEvent struct {
	c        *Conn
	host     string
	from, to WatchdogState
	dwas     int64 // DWAs the connection had received then
	at       time.Time
}

// recordingHSS is an HSS node whose UAR handler says who answered and
// whether the request carried the T flag.
type recordingHSS struct {
	n       *Node
	calls   atomic.Int32
	tFlags  atomic.Int32
	lastE2E atomic.Uint32
}

func newRecordingHSS(t *testing.T, host string, tw time.Duration) *recordingHSS {
	h := &recordingHSS{}
	h.n = testNode(t, host, func(c *Config) {
		c.WatchdogInterval = tw
		c.AllowedPeers = append(c.AllowedPeers, host)
	})
	h.n.Handle(CmdUserAuthorization, AppCx, func(ctx context.Context, c *Conn, req *diam.Message) (*diam.Message, error) {
		h.calls.Add(1)
		h.lastE2E.Store(req.Header.EndToEndID)
		if req.Header.CommandFlags&diam.RetransmittedFlag != 0 {
			h.tFlags.Add(1)
		}
		a := h.n.AnswerExperimental(req, DiameterFirstRegistration)
		a.AddAVP(NewAVP(AVPServerName, datatype.UTF8String("sip:"+host)))
		return a, nil
	})
	return h
}

// TestWatchdogFailoverAndFailback: an I-CSCF with two HSS peers, hss1
// (priority 0) and hss2 (priority 1). hss1 falls silent (its link is
// frozen) with a UAR in flight: the connection goes OKAY → SUSPECT after
// 2 Tw and → DOWN after 3 Tw (RFC 3539 §3.4.1); the UAR in flight is sent
// again to hss2 with the T flag and the same End-to-End Identifier (RFC
// 6733 §5.5.4), and new requests go to hss2. When hss1's link works
// again the Peer reconnects in REOPEN, traffic stays on hss2 until three
// DWAs came back, then fails back to hss1. Before, the UAR in flight
// waited until its context expired (no fail-over), and requests went to a
// random HSS.
func TestWatchdogFailoverAndFailback(t *testing.T) {
	noLeaks(t)
	const tw = 200 * time.Millisecond
	hss1 := newRecordingHSS(t, "hss1."+testRealm, tw)
	hss2 := newRecordingHSS(t, "hss2."+testRealm, tw)
	fz := newFreezer(t, listen(t, hss1.n, "127.0.0.1:0"))
	addr2 := listen(t, hss2.n, "127.0.0.1:0")

	events := make(chan wdEvent, 64)
	icscf := testNode(t, icscfHost, func(c *Config) {
		c.WatchdogInterval = tw
		c.CETimeout = 500 * time.Millisecond
		c.OnWatchdog = func(c *Conn, from, to WatchdogState) {
			select {
			case events <- wdEvent{c: c, host: c.PeerHost(), from: from, to: to, dwas: c.dwa.Load(), at: time.Now()}:
			default:
			}
		}
	})
	ctx := context.Background()
	p1, err := icscf.Connect(ctx, PeerConfig{Addr: fz.addr(), Host: "hss1." + testRealm, Realm: testRealm})
	if err != nil {
		t.Fatal(err)
	}
	p2, err := icscf.Connect(ctx, PeerConfig{Addr: addr2, Host: "hss2." + testRealm, Realm: testRealm, Priority: 1})
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
	answeredBy := func(what string) string {
		t.Helper()
		return String(send(t, icscf, newUAR(icscf, testIMPU)), AVPOriginHost)
	}
	// Primary first, whatever the random choice among equals would say.
	for range 5 {
		if h := answeredBy("primary"); h != "hss1."+testRealm {
			t.Fatalf("UAR answered by %q while the primary is OKAY", h)
		}
	}

	// hss1 falls silent with a UAR in flight.
	c1 := p1.Conn()
	fz.freeze(true)
	frozenAt := time.Now()
	uar := newUAR(icscf, testIMPU)
	e2e := uar.Header.EndToEndID
	before1 := hss1.calls.Load()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	a, err := icscf.Send(sctx, uar)
	cancel()
	if err != nil {
		t.Fatalf("UAR in flight to the silent primary: %v (not failed over)", err)
	}
	if h := String(a, AVPOriginHost); h != "hss2."+testRealm {
		t.Fatalf("UAR in flight answered by %q", h)
	}
	if hss2.tFlags.Load() != 1 || hss2.lastE2E.Load() != e2e {
		t.Errorf("re-sent UAR at hss2: T flags %d, End-to-End %#x (want 1, %#x)", hss2.tFlags.Load(), hss2.lastE2E.Load(), e2e)
	}
	if hss1.calls.Load() != before1 {
		t.Error("the frozen primary answered")
	}
	took := time.Since(frozenAt)
	if took < tw || took > 6*tw {
		t.Errorf("fail-over after %v, want about 2 Tw (%v)", took, 2*tw)
	}

	// SUSPECT (after 2 Tw), then DOWN (after 3 Tw) on the primary's
	// connection; meanwhile new requests go to hss2.
	var seen []WatchdogState
	deadline := time.After(5 * time.Second)
	for len(seen) < 2 {
		select {
		case ev := <-events:
			if ev.c != c1 {
				continue
			}
			seen = append(seen, ev.to)
			if ev.to == WatchdogSuspect {
				if h := answeredBy("suspect"); h != "hss2."+testRealm {
					t.Errorf("new UAR while the primary is SUSPECT answered by %q", h)
				}
			}
		case <-deadline:
			t.Fatalf("primary's watchdog went through %v, want [suspect down]", seen)
		}
	}
	if seen[0] != WatchdogSuspect || seen[1] != WatchdogDown {
		t.Fatalf("primary's watchdog went through %v, want [suspect down]", seen)
	}
	if h := answeredBy("down"); h != "hss2."+testRealm {
		t.Errorf("UAR with the primary down answered by %q", h)
	}

	// The link works again: REOPEN, three DWAs, OKAY, fail-back.
	fz.freeze(false)
	var reopened *Conn
	deadline = time.After(10 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.host != "hss1."+testRealm || ev.c == c1 {
				continue
			}
			if ev.to != WatchdogOkay {
				t.Fatalf("new primary connection: %v → %v", ev.from, ev.to)
			}
			if ev.from != WatchdogReopen || ev.dwas != reopenDWAs {
				t.Fatalf("new primary connection OKAY from %v after %d DWAs, want REOPEN after %d", ev.from, ev.dwas, reopenDWAs)
			}
			reopened = ev.c
		case <-deadline:
			t.Fatalf("primary not OKAY again; peer %v watchdog %v", p1.State(), p1.Watchdog())
		}
		if reopened != nil {
			break
		}
		// Still REOPEN (or connecting): the standby keeps the traffic.
		if c := p1.Conn(); c != nil && c.Watchdog() == WatchdogReopen {
			if h := answeredBy("reopen"); h != "hss2."+testRealm {
				t.Errorf("UAR while the primary is REOPEN answered by %q", h)
			}
		}
	}
	for range 5 {
		if h := answeredBy("failback"); h != "hss1."+testRealm {
			t.Fatalf("after fail-back UAR answered by %q", h)
		}
	}
}

// TestSingleReopenPeerStillUsed: with only one peer, a connection in
// REOPEN (after the peer restarted) carries requests at once: it is the
// last resort, and a restarted HSS must not leave the CSCFs without Cx for
// 2 Tw.
func TestSingleReopenPeerStillUsed(t *testing.T) {
	noLeaks(t)
	hss1 := testNode(t, hssHost, nil)
	hss1.Handle(CmdUserAuthorization, AppCx, uarHandler(hss1))
	addr := listen(t, hss1, "127.0.0.1:0")
	icscf := testNode(t, icscfHost, func(c *Config) { c.WatchdogInterval = 10 * time.Second })
	p := connect(t, icscf, addr, hssHost)
	first := p.Conn()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hss1.Close(ctx)
	<-first.Done()
	hss2 := testNode(t, hssHost, nil)
	hss2.Handle(CmdUserAuthorization, AppCx, uarHandler(hss2))
	listen(t, hss2, addr)
	waitFor(t, 5*time.Second, "reconnect", func() bool { c := p.Conn(); return c != nil && c != first })
	if w := p.Watchdog(); w != WatchdogReopen {
		t.Errorf("reconnected peer in %v, want REOPEN", w)
	}
	if a := send(t, icscf, newUAR(icscf, testIMPU)); !IsSuccess(a) {
		t.Errorf("UAR on the REOPEN connection: %v", a)
	}
}

// TestRoutable: Routable says whether a realm/application has a usable
// connection, whatever the other configured peers do.
func TestRoutable(t *testing.T) {
	noLeaks(t)
	hss := testNode(t, hssHost, nil)
	addr := listen(t, hss, "127.0.0.1:0")
	icscf := testNode(t, icscfHost, nil)
	if icscf.Routable(testRealm, AppCx) {
		t.Error("routable without a connection")
	}
	connect(t, icscf, addr, hssHost)
	// A standby that never connects.
	if _, err := icscf.Connect(context.Background(), PeerConfig{Addr: "127.0.0.1:1", Host: "hss2." + testRealm, Priority: 1}); err != nil {
		t.Fatal(err)
	}
	if !icscf.Routable(testRealm, AppCx) || icscf.Routable(testRealm, AppSh) || icscf.Routable("other.example.net", AppCx) {
		t.Error("Routable wrong")
	}
	if icscf.Ready() {
		t.Error("Ready with a peer down")
	}
}
