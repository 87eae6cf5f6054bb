package sipproxy

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

// TestLocalAddr: the handler learns the socket a request arrived on (the
// primary UDP port or an extra one added with Listen, TCP too), whatever
// the sender wrote: not from a header (until 2026-12-07 the proxy carried
// it in one, X-Sipproxy-Local-Addr, added on read; a sender's copy of it
// must not be taken for it).
func TestLocalAddr(t *testing.T) {
	type seen struct{ local string }
	got := make(chan seen, 4)
	p := newTestProxy(t, func(_ context.Context, tx *Txn) {
		s := seen{local: tx.LocalAddr()}
		got <- s
		_ = tx.Respond(200, "OK")
	})
	extra, err := p.Listen("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	send := func(network string, to *net.TCPAddr) {
		t.Helper()
		c, err := net.Dial(network, to.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		la := c.LocalAddr().String()
		msg := "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\n" +
			"Via: SIP/2.0/" + map[string]string{"udp": "UDP", "tcp": "TCP"}[network] + " " + la + ";branch=z9hG4bK" + fmt.Sprint(time.Now().UnixNano()) + "\r\n" +
			"X-Sipproxy-Local-Addr: 10.9.9.9:5101\r\n" +
			"Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: la" + fmt.Sprint(time.Now().UnixNano()) + "\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-got:
			if s.local != to.String() {
				t.Errorf("%s request to %s: LocalAddr %q", network, to, s.local)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: request not handled", network)
		}
	}
	send("udp", p.Addr("udp"))
	send("udp", extra)
	send("tcp", p.Addr("tcp"))
}
