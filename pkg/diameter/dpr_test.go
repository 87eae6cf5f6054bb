package diameter

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
)

// TestDPRBackoff: after the peer's DPR (RFC 6733 §5.4, §5.4.3) a Peer
// reconnects soon for REBOOTING, after BusyBackoff for BUSY, and not
// within DoNotWantToTalkBackoff for DO_NOT_WANT_TO_TALK_TO_YOU. Before,
// it reconnected at once whatever the cause.
func TestDPRBackoff(t *testing.T) {
	noLeaks(t)
	for _, tc := range []struct {
		name     string
		cause    uint32
		quiet    time.Duration // no reconnection during this
		reopenIn time.Duration // reconnected within this (0: never)
	}{
		{"REBOOTING", DisconnectRebooting, 0, 2 * time.Second},
		{"BUSY", DisconnectBusy, 700 * time.Millisecond, 3 * time.Second},
		{"DO_NOT_WANT_TO_TALK_TO_YOU", DisconnectDoNotWantToTalkToYou, 1500 * time.Millisecond, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hss := testNode(t, hssHost, nil)
			addr := listen(t, hss, "127.0.0.1:0")
			icscf := testNode(t, icscfHost, func(c *Config) {
				c.BusyBackoff = time.Second
				c.DoNotWantToTalkBackoff = time.Hour
			})
			p := connect(t, icscf, addr, hssHost)
			first := p.Conn()
			waitFor(t, 2*time.Second, "server connection", func() bool { return len(hss.Conns()) == 1 })
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			start := time.Now()
			if err := hss.Conns()[0].Disconnect(ctx, tc.cause); err != nil {
				t.Fatalf("DPR not answered: %v", err)
			}
			<-first.Done()
			if cause, ok := first.receivedDPR(); !ok || cause != tc.cause {
				t.Errorf("client recorded Disconnect-Cause %d (%v)", cause, ok)
			}
			if tc.quiet > 0 {
				time.Sleep(tc.quiet - time.Since(start))
				if c := p.Conn(); c != nil || len(hss.Conns()) != 0 {
					t.Fatalf("reconnected within %v after DPR %s", tc.quiet, tc.name)
				}
				if err := p.LastError(); err == nil || !strings.Contains(err.Error(), tc.name) {
					t.Errorf("LastError %v does not name %s", err, tc.name)
				}
			}
			if tc.reopenIn > 0 {
				wctx, cancel := context.WithTimeout(context.Background(), tc.reopenIn)
				defer cancel()
				if err := p.WaitOpen(wctx); err != nil {
					t.Fatalf("no reconnection within %v after DPR %s: %v", tc.reopenIn, tc.name, err)
				}
			}
		})
	}
}

// TestDPRReceived: a DPR is answered with a DPA (Result-Code 2001,
// Origin-Host/Realm), the connection takes no new requests, and it is
// closed when the sender closes — or by us shortly after.
func TestDPRReceived(t *testing.T) {
	noLeaks(t)
	rl := listenRaw(t)
	icscf := testNode(t, icscfHost, nil)
	p, err := icscf.Connect(context.Background(), PeerConfig{Addr: rl.addr(), Host: hssHost})
	if err != nil {
		t.Fatal(err)
	}
	rc := rl.accept(t)
	answerCER(t, rc, rc.read(t), hssHost)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitOpen(ctx); err != nil {
		t.Fatal(err)
	}
	dpr := diam.NewMessage(CmdDisconnectPeer, diam.RequestFlag, 0, 77, 78, rc.n.Dictionary())
	dpr.AddAVP(NewAVP(AVPOriginHost, datatype.DiameterIdentity(hssHost)))
	dpr.AddAVP(NewAVP(AVPOriginRealm, datatype.DiameterIdentity(testRealm)))
	dpr.AddAVP(NewAVP(AVPDisconnectCause, datatype.Enumerated(DisconnectBusy)))
	rc.write(t, dpr)
	dpa := rc.read(t)
	if dpa.Header.CommandCode != CmdDisconnectPeer || dpa.Header.CommandFlags&diam.RequestFlag != 0 ||
		dpa.Header.HopByHopID != 77 || dpa.Header.EndToEndID != 78 {
		t.Fatalf("DPA header %+v", dpa.Header)
	}
	if code, _, _ := Result(dpa); code != DiameterSuccess || String(dpa, AVPOriginHost) != icscfHost || String(dpa, AVPOriginRealm) != testRealm {
		t.Errorf("DPA %v", dpa)
	}
	if _, err := icscf.Send(ctx, newUAR(icscf, testIMPU)); !errors.Is(err, ErrNoRoute) {
		t.Errorf("request after DPR: %v, want ErrNoRoute", err)
	}
	// We do not close the transport: the node does, within ~2 s.
	rc.nc.SetReadDeadline(time.Now().Add(4 * time.Second))
	if _, err := io.ReadAll(rc.nc); err != nil {
		t.Errorf("connection not closed after DPA: %v", err)
	}
}

// TestCloseSendsDPR: Node.Close sends DPR with Disconnect-Cause REBOOTING
// on each connection, waits for the DPA and only then closes the
// transport (RFC 6733 §5.4).
func TestCloseSendsDPR(t *testing.T) {
	noLeaks(t)
	rl := listenRaw(t)
	icscf := testNode(t, icscfHost, nil)
	p, err := icscf.Connect(context.Background(), PeerConfig{Addr: rl.addr(), Host: hssHost})
	if err != nil {
		t.Fatal(err)
	}
	rc := rl.accept(t)
	answerCER(t, rc, rc.read(t), hssHost)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.WaitOpen(ctx); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- icscf.Close(ctx) }()
	dpr := rc.read(t)
	if dpr.Header.CommandCode != CmdDisconnectPeer || dpr.Header.CommandFlags&diam.RequestFlag == 0 {
		t.Fatalf("expected DPR, got %v", dpr)
	}
	if v, ok := Uint32(dpr, AVPDisconnectCause); !ok || v != DisconnectRebooting {
		t.Errorf("Disconnect-Cause %d (present %v), want REBOOTING", v, ok)
	}
	if String(dpr, AVPOriginHost) != icscfHost || String(dpr, AVPOriginRealm) != testRealm {
		t.Errorf("DPR origin %v", dpr)
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-closed:
		t.Fatalf("Close returned before the DPA: %v", err)
	default:
	}
	rc.nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := readFrame(rc.nc); err == nil || !isTimeout(err) {
		t.Fatalf("transport closed (or more sent) before the DPA: %v", err)
	}
	rc.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	dpa := diam.NewMessage(CmdDisconnectPeer, 0, 0, dpr.Header.HopByHopID, dpr.Header.EndToEndID, rc.n.Dictionary())
	dpa.AddAVP(NewAVP(AVPResultCode, datatype.Unsigned32(DiameterSuccess)))
	dpa.AddAVP(NewAVP(AVPOriginHost, datatype.DiameterIdentity(hssHost)))
	dpa.AddAVP(NewAVP(AVPOriginRealm, datatype.DiameterIdentity(testRealm)))
	rc.write(t, dpa)
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not return after the DPA")
	}
	if _, err := io.ReadAll(rc.nc); err != nil {
		t.Errorf("transport not closed after the DPA: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
