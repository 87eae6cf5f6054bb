package sipproxy

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
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

// TestUDPReceiveBufferCappedIsLogged: a buffer the kernel grants smaller
// than asked (net.core.rmem_max) is named at start, with what was asked
// and granted: the overload refusals start at a share of it.
func TestUDPReceiveBufferCappedIsLogged(t *testing.T) {
	b, err := os.ReadFile("/proc/sys/net/core/rmem_max")
	if err != nil {
		t.Skip(err)
	}
	rmemMax, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	core, logs := observer.New(zap.WarnLevel)
	ask := 4*rmemMax + 4096
	newTestProxy(t, func(_ context.Context, t *Txn) {}, func(c *Config) { c.UDPBufferBytes = ask; c.Logger = zap.New(core) })
	found := logs.FilterMessageSnippet("UDP receive buffer smaller than asked").All()
	if len(found) == 0 {
		t.Fatalf("%d bytes asked with rmem_max %d: no warning; logs %v", ask, rmemMax, logs.All())
	}
	f := found[0].ContextMap()
	if f["asked_bytes"] != int64(ask) || f["granted_bytes"] != int64(2*rmemMax) {
		t.Errorf("warning fields %v, want asked %d and granted %d", f, ask, 2*rmemMax)
	}
	// A buffer the kernel grants in full (64 KiB): no warning.
	core2, logs2 := observer.New(zap.WarnLevel)
	newTestProxy(t, func(_ context.Context, t *Txn) {}, func(c *Config) { c.UDPBufferBytes = 64 << 10; c.Logger = zap.New(core2) })
	if n := logs2.FilterMessageSnippet("UDP receive buffer").Len(); n != 0 {
		t.Errorf("64 KiB asked: %d warnings", n)
	}
}
