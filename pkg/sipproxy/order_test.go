package sipproxy

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestResponsesRelayedInReadOrder: a UAS that sends 180 and 200 back to
// back (two datagrams microseconds apart, as a phone answering at once
// does) has both relayed upstream in that order, for every call. Before
// the sipgo fork's in-order response handling (third_party/sipgo/FORK.md)
// each response got its own goroutine, Go's scheduler ran the newer one
// first, the 200 reached the client transaction before the 180, and the
// 180 was dropped as late (ADR 0004, thirteenth session: 1 % of 180s over
// five hops at 100 calls/s). The UAC here is a raw socket, so the order
// seen is the proxy's own.
func TestResponsesRelayedInReadOrder(t *testing.T) {
	uas := newRawUAS(t)
	go func() { // answers each INVITE with 180 and 200 in one burst
		buf := make([]byte, 65535)
		for {
			n, from, err := uas.conn.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := sip.ParseMessage(buf[:n])
			req, ok := m.(*sip.Request)
			if err != nil || !ok || !req.IsInvite() {
				continue
			}
			ringing := sip.NewResponseFromRequest(req, 180, "Ringing", nil)
			ringing.To().Params.Add("tag", "uas")
			ok200 := sip.NewResponseFromRequest(req, 200, "OK", nil)
			ok200.To().Params.Add("tag", "uas")
			ok200.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: uas.conn.LocalAddr().(*net.UDPAddr).Port}})
			_, _ = uas.conn.WriteTo([]byte(ringing.String()), from)
			_, _ = uas.conn.WriteTo([]byte(ok200.String()), from)
		}
	}()
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		_, _ = tx.Forward(ctx, ForwardOptions{}, uas.target())
	})
	uac, proxyAddr := udpClient(t, p)
	uacPort := uac.LocalAddr().(*net.UDPAddr).Port

	const calls = 300
	seen := make(map[string][]int, calls) // Call-ID → status codes as received
	final := make(map[string]bool, calls)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		finals := 0
		for finals < calls {
			_ = uac.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, _, err := uac.ReadFrom(buf)
			if err != nil {
				return
			}
			m, err := sip.ParseMessage(buf[:n])
			res, ok := m.(*sip.Response)
			if err != nil || !ok || res.StatusCode == 100 {
				continue
			}
			id := res.CallID().Value()
			seen[id] = append(seen[id], res.StatusCode)
			if res.StatusCode >= 200 && !final[id] {
				final[id] = true
				finals++
			}
		}
	}()
	for i := 0; i < calls; i++ {
		invite := fmt.Sprintf("INVITE sip:bob@127.0.0.1:%d SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-order-%d;rport\r\n"+
			"Max-Forwards: 70\r\n"+
			"From: <sip:alice@ims.example.org>;tag=a%d\r\n"+
			"To: <sip:bob@ims.example.org>\r\n"+
			"Call-ID: order-%d@127.0.0.1\r\n"+
			"CSeq: 1 INVITE\r\n"+
			"Contact: <sip:alice@127.0.0.1:%d>\r\n"+
			"Content-Length: 0\r\n\r\n", proxyAddr.Port, uacPort, i, i, i, uacPort)
		if _, err := uac.WriteTo([]byte(invite), proxyAddr); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	<-done

	var missing, reordered []string
	for i := 0; i < calls; i++ {
		id := fmt.Sprintf("order-%d@127.0.0.1", i)
		codes := seen[id]
		switch {
		case len(codes) < 2 || codes[len(codes)-1] != 200:
			missing = append(missing, fmt.Sprintf("%s %v", id, codes))
		case codes[0] != 180:
			reordered = append(reordered, fmt.Sprintf("%s %v", id, codes))
		}
	}
	if len(missing)+len(reordered) > 0 {
		t.Fatalf("of %d calls, %d lack a 180 or the 200 (%s), %d got the 200 before the 180 (%s)",
			calls, len(missing), firstFew(missing), len(reordered), firstFew(reordered))
	}
}

func firstFew(s []string) string {
	if len(s) > 3 {
		s = s[:3]
	}
	return strings.Join(s, "; ")
}

// TestUDPSourceAddressesForgotten: the proxy's UDP listener forgets
// source addresses that went silent (udpSourceIdle, our sipgo fork's
// TransportUDP.SourceIdle); upstream sipgo kept one pool entry per
// address ever heard from until the listener closed.
func TestUDPSourceAddressesForgotten(t *testing.T) {
	old := udpSourceIdle
	udpSourceIdle = 100 * time.Millisecond
	t.Cleanup(func() { udpSourceIdle = old })
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) { _ = tx.Respond(200, "OK") })
	udpSourceIdle = old
	ask := func(i int) { // from a socket of its own, a transaction of its own
		msg := strings.ReplaceAll(optionsWith("", ""), "z9hG4bKlim1", "z9hG4bK-src-"+strconv.Itoa(i))
		if line := udpExchange(t, p, msg); !strings.HasPrefix(line, "SIP/2.0 200 ") {
			t.Fatalf("OPTIONS %d: %s", i, line)
		}
	}
	pool := p.tp.Pool("udp")
	before := pool.Size()
	for i := 0; i < 30; i++ {
		ask(i)
	}
	if n := pool.Size(); n < before+30 {
		t.Fatalf("pool holds %d addresses after 30 sources (%d before)", n, before)
	}
	time.Sleep(250 * time.Millisecond)
	ask(100) // ends the period of the 30
	time.Sleep(150 * time.Millisecond)
	ask(101) // ends the next: the 30 were silent in it
	if n := pool.Size(); n > before+2 {
		t.Fatalf("pool holds %d addresses, want at most %d: silent sources kept", n, before+2)
	}
}

// TestCancelRightAfterInviteMatches: a CANCEL read right after its INVITE
// (a UE hanging up at once, both datagrams in one burst) finds the
// INVITE's server transaction: 200 to the CANCEL, 487 to the INVITE
// (RFC 3261 §9.2, §16.10). Requests are matched on the read goroutine in
// the order read (our sipgo fork's WithTransactionLayerRequestsOnReadLoop);
// with a goroutine per request, as upstream, the CANCEL's could run first,
// find no INVITE, and reach the handler as a request of its own.
func TestCancelRightAfterInviteMatches(t *testing.T) {
	uas := newRawUAS(t) // never answers
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		if tx.Request().IsCancel() {
			_ = tx.Respond(481, "Call/Transaction Does Not Exist")
			return
		}
		_, _ = tx.Forward(ctx, ForwardOptions{}, uas.target())
	})
	uac, proxyAddr := udpClient(t, p)
	uacPort := uac.LocalAddr().(*net.UDPAddr).Port

	const calls = 100
	unmatched := 0
	buf := make([]byte, 65535)
	for i := 0; i < calls; i++ {
		common := fmt.Sprintf("Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-cancel-%d;rport\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:alice@ims.example.org>;tag=c%d\r\nTo: <sip:bob@ims.example.org>\r\n"+
			"Call-ID: cancel-%d@127.0.0.1\r\n", uacPort, i, i, i)
		invite := fmt.Sprintf("INVITE sip:bob@127.0.0.1:%d SIP/2.0\r\n", proxyAddr.Port) + common +
			fmt.Sprintf("CSeq: 1 INVITE\r\nContact: <sip:alice@127.0.0.1:%d>\r\nContent-Length: 0\r\n\r\n", uacPort)
		cancel := fmt.Sprintf("CANCEL sip:bob@127.0.0.1:%d SIP/2.0\r\n", proxyAddr.Port) + common +
			"CSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n"
		for _, m := range []string{invite, cancel} {
			if _, err := uac.WriteTo([]byte(m), proxyAddr); err != nil {
				t.Fatal(err)
			}
		}
		var cancelCode, inviteCode int
		for cancelCode == 0 || inviteCode == 0 {
			_ = uac.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, _, err := uac.ReadFrom(buf)
			if err != nil {
				t.Fatalf("call %d: CANCEL answered %d, INVITE %d, then nothing: %v", i, cancelCode, inviteCode, err)
			}
			m, err := sip.ParseMessage(buf[:n])
			res, ok := m.(*sip.Response)
			if err != nil || !ok || res.StatusCode < 200 || res.CallID().Value() != fmt.Sprintf("cancel-%d@127.0.0.1", i) {
				continue
			}
			if res.CSeq().MethodName == sip.CANCEL {
				cancelCode = res.StatusCode
			} else {
				inviteCode = res.StatusCode
			}
			if cancelCode == 481 {
				unmatched++
				break // the INVITE goes on ringing; the next call has its own Call-ID
			}
		}
		if cancelCode == 200 && inviteCode != 487 {
			t.Fatalf("call %d: CANCEL 200 but INVITE %d, want 487", i, inviteCode)
		}
	}
	if unmatched > 0 {
		t.Fatalf("%d of %d CANCELs sent right after their INVITE found no transaction (481)", unmatched, calls)
	}
}
