//go:build ipsecvm

package ipsecvm

import (
	"bytes"
	"encoding/binary"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/imsue"
)

// capture records every frame on an interface of the tests' netns
// (AF_PACKET) until stop; frames are also written to /out/<name>.pcap
// for a look with tshark after the run.
type capture struct {
	fd     int
	mu     sync.Mutex
	frames [][]byte
	done   chan struct{}
	stopc  chan struct{}
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func startCapture(t *testing.T, ifname string) *capture {
	t.Helper()
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, int(htons(syscall.ETH_P_ALL)))
	if err != nil {
		t.Fatalf("AF_PACKET socket: %v", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
		t.Fatal(err)
	}
	tv := syscall.Timeval{Usec: 200000}
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	c := &capture{fd: fd, done: make(chan struct{}), stopc: make(chan struct{})}
	go func() {
		defer close(c.done)
		buf := make([]byte, 65536)
		for {
			n, _, err := syscall.Recvfrom(fd, buf, 0)
			if err == syscall.EBADF || err == syscall.EINVAL {
				return
			}
			if err != nil || n <= 0 {
				select {
				case <-c.stopc:
					return
				default:
					continue
				}
			}
			c.mu.Lock()
			c.frames = append(c.frames, append([]byte(nil), buf[:n]...))
			c.mu.Unlock()
		}
	}()
	return c
}

// stop ends the capture, writes it as a pcap file and returns the frames.
func (c *capture) stop(t *testing.T, name string) [][]byte {
	close(c.stopc)
	<-c.done
	_ = syscall.Close(c.fd)
	c.mu.Lock()
	defer c.mu.Unlock()
	f, err := os.Create(filepath.Join(OutDir, name+".pcap"))
	if err == nil {
		hdr := make([]byte, 24)
		binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
		binary.LittleEndian.PutUint16(hdr[4:], 2)
		binary.LittleEndian.PutUint16(hdr[6:], 4)
		binary.LittleEndian.PutUint32(hdr[16:], 65535)
		binary.LittleEndian.PutUint32(hdr[20:], 1) // Ethernet
		_, _ = f.Write(hdr)
		for _, fr := range c.frames {
			rec := make([]byte, 16)
			binary.LittleEndian.PutUint32(rec[8:], uint32(len(fr)))
			binary.LittleEndian.PutUint32(rec[12:], uint32(len(fr)))
			_, _ = f.Write(rec)
			_, _ = f.Write(fr)
		}
		f.Close()
	}
	return c.frames
}

// packet is the IPv4 view of a frame.
type packet struct {
	src, dst     net.IP
	proto        byte
	sport, dport int
	payload      []byte // UDP or TCP payload
}

func parseFrame(fr []byte) (packet, bool) {
	if len(fr) < 34 || binary.BigEndian.Uint16(fr[12:14]) != 0x0800 {
		return packet{}, false
	}
	ip := fr[14:]
	ihl := int(ip[0]&0x0f) * 4
	p := packet{src: net.IP(ip[12:16]), dst: net.IP(ip[16:20]), proto: ip[9]}
	if (p.proto == syscall.IPPROTO_UDP || p.proto == syscall.IPPROTO_TCP) && len(ip) >= ihl+4 {
		p.sport = int(binary.BigEndian.Uint16(ip[ihl:]))
		p.dport = int(binary.BigEndian.Uint16(ip[ihl+2:]))
		total := int(binary.BigEndian.Uint16(ip[2:4]))
		if total > len(ip) {
			total = len(ip)
		}
		switch {
		case p.proto == syscall.IPPROTO_UDP && total >= ihl+8:
			p.payload = ip[ihl+8 : total]
		case p.proto == syscall.IPPROTO_TCP && len(ip) >= ihl+13:
			if off := ihl + int(ip[ihl+12]>>4)*4; off <= total {
				p.payload = ip[off:total]
			}
		}
	}
	return p, true
}

// initialRegistration reports whether payload (of a packet between a
// protected port and the P-CSCF's SIP port) is allowed in plaintext: no
// data (a TCP handshake or acknowledgement), the initial REGISTER (a
// Security-Client, no Security-Verify) or its 100 / 401 answer.
func initialRegistration(payload []byte) bool {
	s := string(payload)
	switch {
	case len(bytes.TrimSpace(payload)) == 0:
		return true
	case strings.HasPrefix(s, "REGISTER "):
		return !strings.Contains(strings.ToLower(s), "\nsecurity-verify:")
	case strings.HasPrefix(s, "SIP/2.0 401 "), strings.HasPrefix(s, "SIP/2.0 100 "):
		return strings.Contains(s, " REGISTER\r\n")
	}
	return false
}

// TestCaptureOnlyESP: a capture on the UEs' link during registrations, a
// MESSAGE and a call (the INVITE over TCP through the SA) shows only ESP
// between the UEs and the P-CSCF's protected ports: no UDP or TCP packet
// between a protected port of either side and the other.
func TestCaptureOnlyESP(t *testing.T) {
	cap := startCapture(t, UELink)
	a := newUE(t, 33, func(c *imsue.Config) { c.Algs, c.EAlgs = []string{"hmac-md5-96"}, []string{"aes-cbc"} })
	b := newUE(t, 34, func(c *imsue.Config) { c.Transport = "tcp" })
	for _, u := range []*imsue.UE{a, b} {
		if err := u.Register(ctxT(t, 30*time.Second)); err != nil {
			t.Fatalf("register: %v", err)
		}
	}
	messageOverSA(t, a)
	call, err := b.Call(ctxT(t, 30*time.Second), a.IMPU(), imsue.CallOptions{MinSize: 1500})
	if err != nil {
		t.Fatalf("call: %v", err)
	}
	if err := call.Hangup(ctxT(t, 20*time.Second)); err != nil {
		t.Fatalf("hang up: %v", err)
	}
	sas := []*imsue.UE{a, b}
	var protected []struct {
		ip    string
		ports map[int]bool
	}
	for _, u := range sas {
		sa := u.SA()
		protected = append(protected, struct {
			ip    string
			ports map[int]bool
		}{sa.UE.IP.String(), map[int]bool{int(sa.UE.PortC): true, int(sa.UE.PortS): true}})
		protected = append(protected, struct {
			ip    string
			ports map[int]bool
		}{sa.PCSCF.IP.String(), map[int]bool{int(sa.PCSCF.PortC): true, int(sa.PCSCF.PortS): true}})
	}
	for _, u := range sas {
		if err := u.Deregister(ctxT(t, 20*time.Second)); err != nil {
			t.Fatalf("de-register: %v", err)
		}
	}
	frames := cap.stop(t, "gm")
	esp, plain := 0, 0
	for _, fr := range frames {
		p, ok := parseFrame(fr)
		if !ok {
			continue
		}
		if p.proto == 50 {
			esp++
			continue
		}
		if p.proto != syscall.IPPROTO_UDP && p.proto != syscall.IPPROTO_TCP {
			continue
		}
		for _, pr := range protected {
			if (p.src.String() == pr.ip && pr.ports[p.sport]) || (p.dst.String() == pr.ip && pr.ports[p.dport]) {
				// Port-c of the UE also sends the unprotected initial
				// REGISTER to the P-CSCF's SIP port and gets its 401
				// there (TS 33.203 §7.1): that, and TCP segments without
				// data, is all the plaintext allowed on the SIP port. A
				// request or another response between the SIP port and a
				// protected port is a leak (e.g. a NOTIFY sent
				// unprotected after the SA exists).
				if p.sport == PCSCFPort || p.dport == PCSCFPort {
					if !initialRegistration(p.payload) {
						plain++
						t.Errorf("plaintext other than the initial REGISTER/401 %s:%d → %s:%d: %.60q", p.src, p.sport, p.dst, p.dport, p.payload)
					}
					continue
				}
				plain++
				t.Errorf("plaintext proto %d %s:%d → %s:%d on a protected port", p.proto, p.src, p.sport, p.dst, p.dport)
			}
		}
	}
	t.Logf("capture on %s: %d frames, %d ESP, %d plaintext on protected ports (in /out/gm.pcap)", UELink, len(frames), esp, plain)
	if esp < 10 {
		t.Errorf("only %d ESP packets", esp)
	}
}
