package rawsock

import (
	"net"
	"testing"
)

// Backlog counts unread datagrams against the receive buffer's limit and
// drops back to zero once they are read.
func TestBacklogCountsUnreadDatagrams(t *testing.T) {
	r := listenRaw(t, "udp4", "127.0.0.1:0")
	if err := r.SetReadBuffer(256 << 10); err != nil {
		t.Fatal(err)
	}
	q, limit, err := r.Backlog()
	if err != nil {
		t.Fatal(err)
	}
	if q != 0 || limit < 256<<10 {
		t.Fatalf("idle socket: queued %d, limit %d; want 0 and at least %d", q, limit, 256<<10)
	}
	s, err := net.DialUDP("udp4", nil, r.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n, size = 20, 1000
	for range n {
		if _, err := s.Write(make([]byte, size)); err != nil {
			t.Fatal(err)
		}
	}
	q, _, err = r.Backlog()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes queued per datagram of %d (the kernel's accounting, which the buffer's limit counts)", q/n, size)
	if q < n*size {
		t.Fatalf("%d datagrams of %d bytes unread: queued %d bytes, want at least %d", n, size, q, n*size)
	}
	buf := make([]byte, 2048)
	for range n {
		if _, _, err := r.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	}
	if q, _, err = r.Backlog(); err != nil || q != 0 {
		t.Fatalf("all read: queued %d, %v; want 0", q, err)
	}
}
