package siptest

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// The client sends a real request over UDP: a datagram reaches a socket.
func TestNewClientSends(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c := NewClient(t)
	port := pc.LocalAddr().(*net.UDPAddr).Port
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "127.0.0.1", Port: port})
	if err := c.WriteRequest(req); err != nil {
		t.Fatal(err)
	}
	_ = pc.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	n, _, err := pc.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	if got := string(buf[:n]); len(got) < 7 || got[:7] != "OPTIONS" {
		t.Fatalf("received %q", got)
	}
}

func TestFreePort(t *testing.T) {
	a, b := FreePort(t), FreePort(t)
	if a == b || a < 20000 || a >= 32768 || b < 20000 || b >= 32768 {
		t.Fatalf("ports %d, %d: want two different ones below the ephemeral range", a, b)
	}
	if !PortFree(a) {
		t.Fatalf("port %d is not free", a)
	}
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", a))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if PortFree(a) {
		t.Fatalf("port %d reported free while listened on", a)
	}
}
