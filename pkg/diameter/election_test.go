package diameter

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sameTCP reports whether a and b are the two ends of one TCP connection.
func sameTCP(a, b *Conn) bool {
	return a.LocalAddr().String() == b.RemoteAddr().String() && a.RemoteAddr().String() == b.LocalAddr().String()
}

// TestElectionBothConnect: two nodes that each Connect to the other at the
// same time end with exactly one connection between them, used by both
// Peers, and it stays that way (RFC 6733 §5.6.4). Before, each node kept
// its own outgoing connection and the other's incoming one: two
// connections, and requests went out on either.
func TestElectionBothConnect(t *testing.T) {
	noLeaks(t)
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			// scscf... > hss...: the S-CSCF node wins elections.
			hss := testNode(t, hssHost, nil)
			scscf := testNode(t, scscfHost, nil)
			for _, n := range []*Node{hss, scscf} {
				n.Handle(CmdUserAuthorization, AppCx, uarHandler(n))
			}
			hssAddr := listen(t, hss, "127.0.0.1:0")
			scscfAddr := listen(t, scscf, "127.0.0.1:0")
			ph, err := hss.Connect(context.Background(), PeerConfig{Addr: scscfAddr, Host: scscfHost})
			if err != nil {
				t.Fatal(err)
			}
			ps, err := scscf.Connect(context.Background(), PeerConfig{Addr: hssAddr, Host: hssHost})
			if err != nil {
				t.Fatal(err)
			}
			one := func() bool {
				hc, sc := hss.Conns(), scscf.Conns()
				return len(hc) == 1 && len(sc) == 1 && sameTCP(hc[0], sc[0]) &&
					ph.Conn() == hc[0] && ps.Conn() == sc[0]
			}
			// Normally well under a second. Under CI load one round in a
			// few hundred took longer (once: the S-CSCF's Peer kept dialling
			// and the HSS refused it as already open); Peer.connect now
			// adopts an inbound connection no Peer took, and the RFC 3539
			// watchdog (Tw 5 s here) ends a connection one side no longer
			// uses within 3 Tw, which this window leaves room for.
			waitFor(t, 20*time.Second, "one connection used by both peers", one)
			time.Sleep(400 * time.Millisecond) // several ReconnectMax: no second connection appears
			if !one() {
				t.Fatalf("after a while: hss conns %d, scscf conns %d, peers %v/%v",
					len(hss.Conns()), len(scscf.Conns()), ph.State(), ps.State())
			}
			hc := hss.Conns()[0]
			if hc.Inbound() == scscf.Conns()[0].Inbound() {
				t.Error("both ends claim the same direction")
			}
			// Requests go both ways on it.
			if a := send(t, hss, newUAR(hss, testIMPU)); String(a, AVPOriginHost) != scscfHost {
				t.Errorf("UAR from the HSS answered by %q", String(a, AVPOriginHost))
			}
			if a := send(t, scscf, newUAR(scscf, testIMPU)); String(a, AVPOriginHost) != hssHost {
				t.Errorf("UAR from the S-CSCF answered by %q", String(a, AVPOriginHost))
			}
		})
	}
}

// answerCER answers the CER read on rc with a successful CEA from host.
func answerCER(t *testing.T, rc *rawConn, cer *diam.Message, host string) {
	t.Helper()
	cea := diam.NewMessage(CmdCapabilitiesExchange, 0, 0, cer.Header.HopByHopID, cer.Header.EndToEndID, rc.n.Dictionary())
	cea.AddAVP(NewAVP(AVPResultCode, datatype.Unsigned32(DiameterSuccess)))
	cea.AddAVP(NewAVP(AVPOriginHost, datatype.DiameterIdentity(host)))
	cea.AddAVP(NewAVP(AVPOriginRealm, datatype.DiameterIdentity(testRealm)))
	cea.AddAVP(NewAVP(AVPHostIPAddress, datatype.Address(net.IPv4(127, 0, 0, 1).To4())))
	cea.AddAVP(NewAVP(AVPVendorID, datatype.Unsigned32(0)))
	cea.AddAVP(NewAVP(AVPProductName, datatype.UTF8String("raw")))
	cea.AddAVP(VendorSpecificAppID(AppCx))
	rc.write(t, cea)
}

// TestElectionWon drives the election of RFC 6733 §5.6.4 by hand: our
// node (scscf.…) has sent its CER to the peer (hss.…), which has not
// answered, when the peer's own CER arrives. Our Origin-Host is higher: we
// win, close our outgoing connection (I-Disc), answer the CER (2001) and
// the Peer uses the incoming connection (R-Open).
func TestElectionWon(t *testing.T) {
	noLeaks(t)
	rl := listenRaw(t)
	scscf := testNode(t, scscfHost, nil)
	addr := listen(t, scscf, "127.0.0.1:0")
	p, err := scscf.Connect(context.Background(), PeerConfig{Addr: rl.addr(), Host: hssHost})
	if err != nil {
		t.Fatal(err)
	}
	out := rl.accept(t)
	out.read(t) // our CER; the peer keeps us waiting (Wait-I-CEA)
	waitFor(t, 2*time.Second, "peer connecting", func() bool { return p.State() == PeerConnecting })

	in := dialRaw(t, addr)
	cea := in.exchange(t, cerOpts{host: hssHost, vsai: []App{AppCx}, stateID: 7})
	if code, _, _ := Result(cea); code != DiameterSuccess {
		t.Fatalf("winner answered the peer's CER with %d, want 2001", code)
	}
	out.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadAll(out.nc); err != nil {
		t.Errorf("our outgoing connection not closed by the winner: %v", err)
	}
	waitFor(t, 3*time.Second, "peer open on the incoming connection", func() bool {
		c := p.Conn()
		return c != nil && c.Inbound() && len(scscf.Conns()) == 1
	})
	if c := p.Conn(); c.PeerHost() != hssHost || c.Watchdog() != WatchdogOkay {
		t.Errorf("adopted connection: host %q watchdog %v", c.PeerHost(), c.Watchdog())
	}
	// The Peer does not dial again while the connection lives.
	rl.l.(*net.TCPListener).SetDeadline(time.Now().Add(300 * time.Millisecond))
	if nc, err := rl.l.Accept(); err == nil {
		nc.Close()
		t.Error("the Peer dialled again although its connection is open")
	}
}

// TestElectionLost: the same with our Origin-Host lower (hss.… against
// scscf.…): we answer the peer's CER with 4003 DIAMETER_ELECTION_LOST,
// close that connection and keep waiting for the CEA on ours.
func TestElectionLost(t *testing.T) {
	noLeaks(t)
	rl := listenRaw(t)
	hss := testNode(t, hssHost, nil)
	addr := listen(t, hss, "127.0.0.1:0")
	p, err := hss.Connect(context.Background(), PeerConfig{Addr: rl.addr(), Host: scscfHost})
	if err != nil {
		t.Fatal(err)
	}
	out := rl.accept(t)
	cer := out.read(t)
	waitFor(t, 2*time.Second, "peer connecting", func() bool { return p.State() == PeerConnecting })

	in := dialRaw(t, addr)
	cea := in.exchange(t, cerOpts{host: scscfHost, vsai: []App{AppCx}})
	if code, _, _ := Result(cea); code != DiameterElectionLost {
		t.Fatalf("loser answered the peer's CER with %d, want 4003", code)
	}
	checkIdentityAVPs(t, "CEA 4003", cea, hssHost, nil)
	in.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.ReadAll(in.nc); err != nil {
		t.Errorf("the incoming connection is not closed after 4003: %v", err)
	}
	answerCER(t, out, cer, scscfHost)
	waitFor(t, 3*time.Second, "peer open on its own connection", func() bool {
		c := p.Conn()
		return c != nil && !c.Inbound() && len(hss.Conns()) == 1
	})
}

// TestSecondConnectionRejected: with the Peer open, another CER from it is
// refused by closing the new connection without CEA (R-Reject, RFC 6733
// §5.6), unless it carries a new Origin-State-Id: then the peer restarted,
// and the new connection replaces the stale one.
func TestSecondConnectionRejected(t *testing.T) {
	noLeaks(t)
	rl := listenRaw(t)
	icscf := testNode(t, icscfHost, nil)
	addr := listen(t, icscf, "127.0.0.1:0")
	p, err := icscf.Connect(context.Background(), PeerConfig{Addr: rl.addr(), Host: hssHost})
	if err != nil {
		t.Fatal(err)
	}
	out := rl.accept(t)
	cer := out.read(t)
	cea := diam.NewMessage(CmdCapabilitiesExchange, 0, 0, cer.Header.HopByHopID, cer.Header.EndToEndID, out.n.Dictionary())
	cea.AddAVP(NewAVP(AVPResultCode, datatype.Unsigned32(DiameterSuccess)))
	cea.AddAVP(NewAVP(AVPOriginHost, datatype.DiameterIdentity(hssHost)))
	cea.AddAVP(NewAVP(AVPOriginRealm, datatype.DiameterIdentity(testRealm)))
	cea.AddAVP(NewAVP(AVPHostIPAddress, datatype.Address(net.IPv4(127, 0, 0, 1).To4())))
	cea.AddAVP(NewAVP(AVPVendorID, datatype.Unsigned32(0)))
	cea.AddAVP(NewAVP(AVPProductName, datatype.UTF8String("raw")))
	cea.AddAVP(NewAVP(AVPOriginStateID, datatype.Unsigned32(1000)))
	cea.AddAVP(VendorSpecificAppID(AppCx))
	out.write(t, cea)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := p.WaitOpen(ctx); err != nil {
		t.Fatal(err)
	}
	first := p.Conn()

	// Same Origin-State-Id: R-Reject.
	dup := dialRaw(t, addr)
	dup.write(t, cerOpts{host: hssHost, vsai: []App{AppCx}, stateID: 1000}.build(dup.n))
	dup.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if b, err := io.ReadAll(dup.nc); err != nil || len(b) != 0 {
		t.Errorf("second connection from an open peer: read %d bytes, %v; want closed without CEA", len(b), err)
	}
	if len(icscf.Conns()) != 1 || p.Conn() != first {
		t.Fatalf("after R-Reject: %d connections", len(icscf.Conns()))
	}

	// New Origin-State-Id: the peer restarted.
	re := dialRaw(t, addr)
	if code, _, _ := Result(re.exchange(t, cerOpts{host: hssHost, vsai: []App{AppCx}, stateID: 2000})); code != DiameterSuccess {
		t.Fatalf("restarted peer's CER answered %d", code)
	}
	select {
	case <-first.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("stale connection still open")
	}
	waitFor(t, 3*time.Second, "peer on the new connection", func() bool {
		c := p.Conn()
		return c != nil && c != first && c.Inbound() && len(icscf.Conns()) == 1
	})
}
