package rawsock

import (
	"bytes"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func listenRaw(t testing.TB, network, addr string) *PacketConn {
	t.Helper()
	ua, err := net.ResolveUDPAddr(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.ListenUDP(network, ua)
	if err != nil {
		t.Skipf("cannot listen on %s %s: %v", network, addr, err)
	}
	r, err := UDP(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return r
}

// The raw socket reads what net's sends and net's reads what it sends,
// with the same source addresses net itself reports, for IPv4, IPv6 and
// IPv4 peers of a dual-stack socket.
func TestRawUDPMatchesNet(t *testing.T) {
	for _, tc := range []struct{ name, network, rawAddr, netAddr string }{
		{"ipv4", "udp4", "127.0.0.1:0", "127.0.0.1:0"},
		{"ipv6", "udp6", "[::1]:0", "[::1]:0"},
		{"ipv4 peer of a dual-stack socket", "udp", "[::]:0", "127.0.0.1:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := listenRaw(t, tc.network, tc.rawAddr)
			na, _ := net.ResolveUDPAddr("udp", tc.netAddr)
			n, err := net.ListenUDP("udp", na)
			if err != nil {
				t.Skip(err)
			}
			defer n.Close()
			rport := r.LocalAddr().(*net.UDPAddr).Port
			to := &net.UDPAddr{IP: n.LocalAddr().(*net.UDPAddr).IP, Port: rport}

			// net → raw: the source is what net reports for the same peer.
			msg := []byte("OPTIONS sip:x SIP/2.0\r\n\r\n")
			if _, err := n.WriteTo(msg, to); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 2048)
			k, from, err := r.ReadFrom(buf)
			if err != nil || !bytes.Equal(buf[:k], msg) {
				t.Fatalf("raw read %q, %v", buf[:k], err)
			}
			// What net's own ReadFrom on this socket reports for the peer.
			if _, err := n.WriteTo(msg, to); err != nil {
				t.Fatal(err)
			}
			_, want, err := r.UDPConn.ReadFrom(buf)
			if err != nil {
				t.Fatal(err)
			}
			if from.String() != want.String() {
				t.Fatalf("raw source %s, net's %s", from, want)
			}

			// raw → net, answering to the address the read gave.
			reply := []byte("SIP/2.0 200 OK\r\n\r\n")
			if k, err := r.WriteTo(reply, from); err != nil || k != len(reply) {
				t.Fatalf("raw write: %d, %v", k, err)
			}
			n.SetReadDeadline(time.Now().Add(2 * time.Second))
			k, src, err := n.ReadFrom(buf)
			if err != nil || !bytes.Equal(buf[:k], reply) {
				t.Fatalf("net read %q, %v", buf[:k], err)
			}
			if got := src.(*net.UDPAddr).Port; got != rport {
				t.Fatalf("reply came from port %d, want %d", got, rport)
			}
		})
	}
}

// A read waits on the poller while nothing has arrived (EAGAIN), honours
// deadlines, and ends with net.ErrClosed when the socket is closed.
func TestRawUDPWaitsDeadlinesAndClose(t *testing.T) {
	r := listenRaw(t, "udp4", "127.0.0.1:0")
	s := listenRaw(t, "udp4", "127.0.0.1:0")
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 64)
		k, _, err := r.ReadFrom(buf)
		if err != nil {
			got <- err.Error()
			return
		}
		got <- string(buf[:k])
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case v := <-got:
		t.Fatalf("read returned %q before anything was sent", v)
	default:
	}
	if _, err := s.WriteTo([]byte("late"), r.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if v := <-got; v != "late" {
		t.Fatalf("read %q", v)
	}

	r.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, _, err := r.ReadFrom(make([]byte, 64)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past its deadline: %v", err)
	}
	r.SetReadDeadline(time.Time{})

	readEndsOnClose(t, func() error {
		_, _, err := r.ReadFrom(make([]byte, 64))
		return err
	}, r.Close)
}

// A datagram longer than the buffer is cut to it, as net does; an IPv6
// destination on an IPv4 socket and a port out of range are errors, not
// a datagram sent elsewhere.
func TestRawUDPEdges(t *testing.T) {
	r := listenRaw(t, "udp4", "127.0.0.1:0")
	s := listenRaw(t, "udp4", "127.0.0.1:0")
	if _, err := s.WriteTo(bytes.Repeat([]byte("x"), 100), r.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	if k, _, err := r.ReadFrom(make([]byte, 10)); err != nil || k != 10 {
		t.Fatalf("short buffer: %d, %v", k, err)
	}
	if _, err := s.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv6loopback, Port: 5060}); !errors.Is(err, syscall.EAFNOSUPPORT) {
		t.Fatalf("IPv6 peer on an IPv4 socket: %v", err)
	}
	if _, err := s.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 70000}); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("port 70000: %v", err)
	}
	// Another kind of address goes through net's WriteTo (and fails there).
	if _, err := s.WriteTo([]byte("x"), &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060}); err == nil {
		t.Fatal("a TCP address was accepted")
	}
}

// A write allocates nothing; a read, only the source address it returns.
func TestRawUDPAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not asserted under the race detector")
	}
	r := listenRaw(t, "udp4", "127.0.0.1:0")
	s := listenRaw(t, "udp4", "127.0.0.1:0")
	to := r.LocalAddr()
	msg, buf := []byte("x"), make([]byte, 64)
	if n := testing.AllocsPerRun(200, func() {
		if _, err := s.WriteTo(msg, to); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("WriteTo: %v allocations, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, _, err := r.ReadFrom(buf); err != nil {
			t.Fatal(err)
		}
	}); n > 2 {
		t.Errorf("ReadFrom: %v allocations, want at most 2 (the address and its IP)", n)
	}
}

// A link-local peer's zone is the interface name net gives, both ways.
func TestRawUDPZones(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skip("no lo interface")
	}
	for i := 0; i < 2; i++ { // the second from the cache
		if got := zoneName(uint32(lo.Index)); got != "lo" {
			t.Fatalf("zoneName(%d) = %q, want lo", lo.Index, got)
		}
	}
	if got := zoneIndex("lo"); got != uint32(lo.Index) {
		t.Fatalf("zoneIndex(lo) = %d, want %d", got, lo.Index)
	}
	if got := zoneIndex("7"); got != 7 {
		t.Fatalf("zoneIndex(7) = %d", got)
	}
	if got := zoneName(1 << 30); got != "1073741824" {
		t.Fatalf("an unknown index: %q", got)
	}
}
