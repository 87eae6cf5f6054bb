package imsue

import (
	"bytes"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/imscore/imscore/pkg/ipsec"
	"github.com/imscore/imscore/pkg/netnstest"
)

// testNetns creates a network namespace for the test and returns a
// netlink handle in it (route and XFRM). It skips when not root.
func testNetns(t *testing.T) *netlink.Handle {
	t.Helper()
	return netnstest.Handle(t, "imsuetest")
}

// policiesAs is an XFRM back-end on h installing the policies of side.
func policiesAs(t *testing.T, h *netlink.Handle, side ipsec.Side) *ipsec.Kernel {
	t.Helper()
	k, err := ipsec.NewKernel(h)
	if err != nil {
		t.Fatal(err)
	}
	k.Side = side
	return k
}

// netnsSA is an SA set between ue and the P-CSCF at 10.45.0.1.
func netnsSA(ue string, spi uint32) ipsec.SecAssoc {
	return ipsec.SecAssoc{
		UE:    ipsec.Endpoint{IP: net.ParseIP(ue).To4(), PortC: 31800, PortS: 31900, SPIC: spi, SPIS: spi + 1},
		PCSCF: ipsec.Endpoint{IP: net.ParseIP("10.45.0.1").To4(), PortC: 5100, PortS: 5101, SPIC: spi + 2, SPIS: spi + 3},
		Alg:   "hmac-sha-1-96", EAlg: "null", IK: bytes.Repeat([]byte{1}, 16), CK: bytes.Repeat([]byte{2}, 16),
	}
}

// TestPCSCFEndHere: a network namespace is refused for the UE's SAs when
// it holds the P-CSCF's side of an SA set for the P-CSCF's address (its
// XFRM policies out from or in to that address) or has that address on
// an interface; the policies of other UEs (the mirror image) are no
// obstacle.
func TestPCSCFEndHere(t *testing.T) {
	h := testNetns(t)
	pc := net.ParseIP("10.45.0.1")
	if err := pcscfEndHere(h, pc); err != nil {
		t.Fatalf("empty namespace: %v", err)
	}
	if err := policiesAs(t, h, ipsec.SideUE).InstallPolicies(netnsSA("10.45.0.2", 0x1000)); err != nil {
		t.Fatalf("UE policies: %v", err)
	}
	if err := pcscfEndHere(h, pc); err != nil {
		t.Fatalf("another UE's policies only: %v", err)
	}
	pcK := policiesAs(t, h, ipsec.SidePCSCF)
	other := netnsSA("10.45.0.3", 0x2000)
	if err := pcK.InstallPolicies(other); err != nil {
		t.Fatalf("P-CSCF policies: %v", err)
	}
	err := pcscfEndHere(h, pc)
	if !errors.Is(err, ErrSameNetns) || !strings.Contains(err.Error(), "XFRM policy") {
		t.Fatalf("with the P-CSCF's policies: %v, want ErrSameNetns naming the policy", err)
	}
	if err := pcscfEndHere(h, net.ParseIP("10.45.0.9")); err != nil {
		t.Fatalf("another P-CSCF address: %v", err)
	}
	if err := pcK.RemovePolicies(other); err != nil {
		t.Fatal(err)
	}
	// The P-CSCF's address on an interface here: its SAs will be here.
	lo, err := h.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr("10.45.0.1/32")
	if err := h.AddrAdd(lo, addr); err != nil {
		t.Fatal(err)
	}
	err = pcscfEndHere(h, pc)
	if !errors.Is(err, ErrSameNetns) || !strings.Contains(err.Error(), "is an address of this network namespace") {
		t.Fatalf("with the P-CSCF's address on lo: %v, want ErrSameNetns naming the address", err)
	}
}

// TestIPsecBesideLocalPCSCF: a UE whose P-CSCF address is local (as in
// `make lab`, 127.0.0.1) does not install kernel SAs next to the
// P-CSCF's: --ipsec on fails with ErrSameNetns and says to use --netns;
// --ipsec auto registers without SAs and says so in an ipsec_off event.
func TestIPsecBesideLocalPCSCF(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to list XFRM policies")
	}
	base := Config{IMPI: "alice@ims.test", IMPU: "sip:alice@ims.test", K: bytes.Repeat([]byte{1}, 16), OP: bytes.Repeat([]byte{2}, 16),
		PCSCF: "127.0.0.1:5060", LocalIP: "127.0.0.1"}
	on := base
	on.IPsec = IPsecOn
	_, err := New(on)
	if !errors.Is(err, ErrSameNetns) || !errors.Is(err, ErrSecAgree) || !strings.Contains(err.Error(), "--netns") {
		t.Fatalf("--ipsec on beside the P-CSCF: %v, want ErrSecAgree and ErrSameNetns with a hint to --netns", err)
	}

	auto := base
	auto.IPsec = IPsecAuto
	var mu sync.Mutex
	var events []Event
	auto.OnEvent = func(e Event) { mu.Lock(); events = append(events, e); mu.Unlock() }
	u, err := New(auto)
	if err != nil {
		t.Fatalf("--ipsec auto beside the P-CSCF: %v", err)
	}
	defer u.Close()
	if u.cfg.IPsec != IPsecOff {
		t.Errorf("IPsec %q, want off", u.cfg.IPsec)
	}
	if offers, _ := u.offers(true); len(offers) != 0 {
		t.Errorf("offers %v, want none", offers)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0].Step != "ipsec_off" || !strings.Contains(events[0].Reason, "network namespace") {
		t.Fatalf("events %+v, want one ipsec_off naming the network namespace", events)
	}
}
