package sipproxy

import (
	"bytes"
	"context"
	"net"
	"os"
	"testing"
)

// BenchmarkInspect is the validating layer's cost per message (wire.go) on
// what a CSCF reads most: a VoLTE REGISTER and a 200 to a forwarded
// request (two Vias, one of them ours).
func BenchmarkInspect(b *testing.B) {
	p := inspectProxy(b)
	register, err := os.ReadFile("testdata/volte_register.txt")
	if err != nil {
		b.Fatal(err)
	}
	response := []byte("SIP/2.0 200 OK\r\n" +
		"Via: SIP/2.0/UDP pcscf.ims.test:5060;branch=z9hG4bK-sp-0123456789abcdef;rport=5060\r\n" +
		"Via: SIP/2.0/UDP 10.45.0.2:5060;branch=z9hG4bK-524287-1---5f0c1b2e3d4a5b6c;rport=5060;received=10.45.0.2\r\n" +
		"From: <sip:001010000000001@ims.test>;tag=3c8f0a1b\r\n" +
		"To: <sip:001010000000001@ims.test>;tag=as7d9f\r\n" +
		"Call-ID: 7e2b6c1d-4f3a-4e9b-9c2d-1a2b3c4d5e6f@10.45.0.2\r\n" +
		"CSeq: 2 REGISTER\r\n" +
		"Contact: <sip:001010000000001@10.45.0.2:5060>;expires=600000\r\n" +
		"P-Associated-URI: <sip:001010000000001@ims.test>, <tel:+15551234>\r\n" +
		"Service-Route: <sip:orig@scscf.ims.test:6060;lr>\r\n" +
		"Path: <sip:term@pcscf.ims.test:5060;lr>\r\n" +
		"Content-Length: 0\r\n\r\n")
	src := &net.UDPAddr{IP: net.IPv4(10, 45, 0, 2), Port: 5060}
	for _, c := range []struct {
		name string
		msg  []byte
	}{{"register", register}, {"response", response}} {
		b.Run(c.name, func(b *testing.B) {
			if v := p.inspect(c.msg, false, src); v.act != actPass {
				b.Fatalf("not passed: %s", v.reason)
			}
			b.ReportAllocs()
			for b.Loop() {
				p.inspect(c.msg, false, src)
			}
		})
	}
}

// TestInspectAllocations: a message already written canonically is
// inspected without building strings or slices for it — no allocation
// (the header section is read in place), but the top Via's port as text
// for a response, checked against ours. Before the lexScratch arenas and
// the canonWriter, a VoLTE REGISTER took 13 and a 200 17; before reading
// in place, 1 and 2.
func TestInspectAllocations(t *testing.T) {
	register, err := os.ReadFile("testdata/volte_register.txt")
	if err != nil {
		t.Fatal(err)
	}
	response := []byte("SIP/2.0 200 OK\r\n" +
		"Via: SIP/2.0/UDP pcscf.ims.test:5060;branch=z9hG4bK-sp-0123456789abcdef;rport=5060\r\n" +
		"Via: SIP/2.0/UDP 10.45.0.2:5060;branch=z9hG4bK-524287-1;rport=5060;received=10.45.0.2\r\n" +
		"From: \"Alice\" <sip:001010000000001@ims.test>;tag=3c8f0a1b\r\n" +
		"To: <sip:001010000000001@ims.test>;tag=as7d9f\r\n" +
		"Call-ID: 7e2b6c1d@10.45.0.2\r\n" +
		"CSeq: 2 REGISTER\r\n" +
		"Contact: <sip:001010000000001@10.45.0.2:5060>;expires=600000, <sip:x@10.45.0.3>;q=0.5\r\n" +
		"Service-Route: <sip:orig@scscf.ims.test:6060;lr>\r\n" +
		"Path: <sip:term@pcscf.ims.test:5060;lr>\r\n" +
		"Content-Length: 0\r\n\r\n")
	p := inspectProxy(t)
	for _, c := range []struct {
		name string
		msg  []byte
		max  float64
	}{{"register", register, 0}, {"response", response, 1}} {
		if v := p.inspect(c.msg, false, testSrc); v.act != actPass || !bytes.Equal(v.out, c.msg) {
			t.Fatalf("%s: not passed as read: %v %s", c.name, v.act, v.reason)
		}
		if raceEnabled {
			continue
		}
		if n := testing.AllocsPerRun(200, func() { p.inspect(c.msg, false, testSrc) }); n > c.max {
			t.Errorf("%s: %.0f allocations per inspect, want at most %.0f", c.name, n, c.max)
		}
	}
}

// inspectProxy is a proxy for the validating layer alone: host
// pcscf.ims.test, listening (on paper) on UDP 127.0.0.1:5060.
func inspectProxy(t testing.TB) *Proxy {
	t.Helper()
	p, err := New(Config{ListenAddr: "127.0.0.1:5060", Host: "pcscf.ims.test", Handler: func(context.Context, *Txn) {}})
	if err != nil {
		t.Fatal(err)
	}
	p.selfHosts["pcscf.ims.test"] = true
	p.listeners = append(p.listeners, &listener{network: "udp", addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5060}})
	return p
}
