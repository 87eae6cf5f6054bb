package sipproxy

import (
	"context"
	"fmt"
	"net"
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
	uas, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uas.Close() })
	go func() { // answers each INVITE with 180 and 200 in one burst
		buf := make([]byte, 65535)
		for {
			n, from, err := uas.ReadFrom(buf)
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
			ok200.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: uas.LocalAddr().(*net.UDPAddr).Port}})
			_, _ = uas.WriteTo([]byte(ringing.String()), from)
			_, _ = uas.WriteTo([]byte(ok200.String()), from)
		}
	}()
	uasPort := uas.LocalAddr().(*net.UDPAddr).Port
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		u := sip.Uri{Scheme: "sip", User: "bob", Host: "127.0.0.1", Port: uasPort}
		_, _ = tx.Forward(ctx, ForwardOptions{}, Target{RequestURI: &u})
	})

	uac, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { uac.Close() })
	uacPort := uac.LocalAddr().(*net.UDPAddr).Port
	proxyAddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p.Addr("udp").Port}

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
