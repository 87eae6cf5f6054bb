package sipproxy

import (
	"context"
	"net"
	"syscall"
	"testing"
)

// rcvbuf reads SO_RCVBUF of the proxy's primary UDP socket.
func rcvbuf(t *testing.T, p *Proxy) int {
	t.Helper()
	p.mu.Lock()
	var c *net.UDPConn
	for _, l := range p.listeners {
		if l.network == "udp" {
			c, _ = l.closer.(*net.UDPConn)
			break
		}
	}
	p.mu.Unlock()
	if c == nil {
		t.Fatal("no UDP listener")
	}
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var serr error
	if err := rc.Control(func(fd uintptr) {
		n, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
	}); err != nil {
		t.Fatal(err)
	}
	if serr != nil {
		t.Fatal(serr)
	}
	return n
}

// TestUDPReceiveBuffer: the UDP socket gets a larger receive buffer than
// the kernel default by default, and keeps the default with -1.
func TestUDPReceiveBuffer(t *testing.T) {
	def := newTestProxy(t, func(_ context.Context, t *Txn) {}, func(c *Config) { c.UDPBufferBytes = -1 })
	big := newTestProxy(t, func(_ context.Context, t *Txn) {})
	small := newTestProxy(t, func(_ context.Context, t *Txn) {}, func(c *Config) { c.UDPBufferBytes = 64 << 10 })
	d, b, s := rcvbuf(t, def), rcvbuf(t, big), rcvbuf(t, small)
	t.Logf("SO_RCVBUF: kernel default %d, default config %d, 64 KiB asked %d", d, b, s)
	if s != 2*(64<<10) {
		t.Errorf("64 KiB asked: SO_RCVBUF %d, want %d (Linux doubles it)", s, 2*(64<<10))
	}
	if b <= d && b < 2*DefaultUDPBufferBytes {
		// Capped by net.core.rmem_max: at least not smaller than the default.
		t.Errorf("default config: SO_RCVBUF %d, kernel default %d", b, d)
	}
}
