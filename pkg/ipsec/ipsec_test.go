package ipsec

import (
	"bytes"
	"errors"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/netnstest"
)

func TestKeys(t *testing.T) {
	ik := bytes.Repeat([]byte{0xab}, 16)
	ck := bytes.Repeat([]byte{0xcd}, 16)
	n, k, err := AuthKey("hmac-md5-96", ik)
	if err != nil || n != "hmac(md5)" || !bytes.Equal(k, ik) {
		t.Fatalf("md5: %s %x %v", n, k, err)
	}
	n, k, err = AuthKey("hmac-sha-1-96", ik)
	if err != nil || n != "hmac(sha1)" || !bytes.Equal(k, append(append([]byte{}, ik...), 0, 0, 0, 0)) {
		t.Fatalf("sha1: %s %x %v", n, k, err)
	}
	n, k, err = CryptKey("aes-cbc", ck)
	if err != nil || n != "cbc(aes)" || !bytes.Equal(k, ck) {
		t.Fatalf("aes: %s %x %v", n, k, err)
	}
	n, k, err = CryptKey("", nil)
	if err != nil || n != "ecb(cipher_null)" || len(k) != 0 {
		t.Fatalf("null: %s %x %v", n, k, err)
	}
	if _, _, err := AuthKey("hmac-sha-1-96", ik[:15]); err == nil {
		t.Fatal("short IK accepted")
	}
	if _, _, err := CryptKey("des-ede3-cbc", ck); !errors.Is(err, ErrUnsupportedAlg) {
		t.Fatalf("des: %v", err)
	}
}

func TestSPIAllocator(t *testing.T) {
	a, err := NewSPIAllocator(1, 300) // raised to 256
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uint32]bool{}
	for i := 0; i < 45; i++ {
		s, err := a.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		if s < 256 || s > 300 || seen[s] {
			t.Fatalf("bad or repeated SPI %d", s)
		}
		seen[s] = true
	}
	if _, err := a.Alloc(); !errors.Is(err, ErrNoSPI) {
		t.Fatalf("exhausted range: %v", err)
	}
	for s := range seen {
		a.Free(s)
		break
	}
	if _, err := a.Alloc(); err != nil {
		t.Fatal(err)
	}
	if a.Reserve(10) {
		t.Fatal("reserved SPI outside range")
	}
}

func TestChooseAlgs(t *testing.T) {
	offers, err := imsheader.ParseSecurity("Security-Client",
		`ipsec-3gpp;alg=hmac-md5-96;ealg=null;spi-c=1111;spi-s=2222;port-c=5062;port-s=5064, ipsec-3gpp;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=1111;spi-s=2222;port-c=5062;port-s=5064`)
	if err != nil {
		t.Fatal(err)
	}
	_, a, e, ok := ChooseAlgs(offers, DefaultAlgs, DefaultEAlgs)
	if !ok || a != "hmac-sha-1-96" || e != "aes-cbc" {
		t.Fatalf("got %s %s %v", a, e, ok)
	}
	_, a, e, ok = ChooseAlgs(offers, []string{"hmac-md5-96"}, []string{"null"})
	if !ok || a != "hmac-md5-96" || e != "null" {
		t.Fatalf("got %s %s %v", a, e, ok)
	}
	if _, _, _, ok := ChooseAlgs(offers, []string{"hmac-md5-96"}, []string{"aes-cbc"}); ok {
		t.Fatal("matched a pair the UE did not offer")
	}
}

// testNS creates a network namespace for the test and returns an XFRM
// handle inside it. It skips when not root.
func testNS(t *testing.T) *netlink.Handle {
	t.Helper()
	return netnstest.Handle(t, "imstest", unix.NETLINK_XFRM)
}

func testSA(t *testing.T, a *SPIAllocator) SecAssoc {
	t.Helper()
	spi := func() uint32 {
		s, err := a.Alloc()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return SecAssoc{
		UE:    Endpoint{IP: net.ParseIP("10.45.0.2"), PortC: 31800, PortS: 31900, SPIC: spi(), SPIS: spi()},
		PCSCF: Endpoint{IP: net.ParseIP("10.45.0.1"), PortC: 5100, PortS: 5101, SPIC: spi(), SPIS: spi()},
		Alg:   "hmac-sha-1-96", EAlg: "aes-cbc",
		IK: bytes.Repeat([]byte{1}, 16), CK: bytes.Repeat([]byte{2}, 16),
	}
}

// installedPolicies installs the policies of a test SA set as side
// would, in a fresh netns, and returns them with the handle, the kernel
// and the set.
func installedPolicies(t *testing.T, side Side) (*netlink.Handle, *Kernel, SecAssoc, []netlink.XfrmPolicy) {
	t.Helper()
	h := testNS(t)
	k, err := NewKernel(h)
	if err != nil {
		t.Fatal(err)
	}
	k.Side = side
	a, _ := NewSPIAllocator(4096, 1<<20)
	s := testSA(t, a)
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := k.InstallPolicies(s); err != nil {
		t.Fatalf("install policies: %v", err)
	}
	pols, err := h.XfrmPolicyList(netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(pols) != 8 {
		t.Fatalf("want 8 policies, got %d", len(pols))
	}
	return h, k, s, pols
}

func TestKernelPoliciesInNetns(t *testing.T) {
	h, k, s, pols := installedPolicies(t, SidePCSCF)
	type key struct {
		src, dst         string
		sport, dport     int
		proto            netlink.Proto
		dir              netlink.Dir
		reqid            int
		tmplSrc, tmplDst string
	}
	got := map[key]bool{}
	for _, p := range pols {
		if len(p.Tmpls) != 1 || p.Tmpls[0].Proto != netlink.XFRM_PROTO_ESP || p.Tmpls[0].Mode != netlink.XFRM_MODE_TRANSPORT {
			t.Fatalf("bad template in %+v", p)
		}
		got[key{p.Src.String(), p.Dst.String(), p.SrcPort, p.DstPort, p.Proto, p.Dir, p.Tmpls[0].Reqid, p.Tmpls[0].Src.String(), p.Tmpls[0].Dst.String()}] = true
	}
	ue, pc := "10.45.0.2/32", "10.45.0.1/32"
	for _, proto := range []netlink.Proto{unix.IPPROTO_UDP, unix.IPPROTO_TCP} {
		for _, want := range []key{
			{ue, pc, 31800, 5101, proto, netlink.XFRM_DIR_IN, reqidFor(s.PCSCF.SPIS), "10.45.0.2", "10.45.0.1"},
			{pc, ue, 5100, 31900, proto, netlink.XFRM_DIR_OUT, reqidFor(s.UE.SPIS), "10.45.0.1", "10.45.0.2"},
			{ue, pc, 31900, 5100, proto, netlink.XFRM_DIR_IN, reqidFor(s.PCSCF.SPIC), "10.45.0.2", "10.45.0.1"},
			{pc, ue, 5101, 31800, proto, netlink.XFRM_DIR_OUT, reqidFor(s.UE.SPIC), "10.45.0.1", "10.45.0.2"},
		} {
			if !got[want] {
				t.Errorf("missing policy %+v; have %+v", want, got)
			}
		}
	}
	if err := k.RemovePolicies(s); err != nil {
		t.Fatal(err)
	}
	pols, _ = h.XfrmPolicyList(netlink.FAMILY_V4)
	if len(pols) != 0 {
		t.Fatalf("%d policies left after remove", len(pols))
	}
	// Removing twice is not an error.
	if err := k.RemovePolicies(s); err != nil {
		t.Fatal(err)
	}
}

// TestKernelPoliciesUESide: a UE installs the same selectors with the
// directions mirrored (its requests to the P-CSCF's port-s go out).
func TestKernelPoliciesUESide(t *testing.T) {
	_, k, s, pols := installedPolicies(t, SideUE)
	want := map[[2]int]netlink.Dir{
		{31800, 5101}: netlink.XFRM_DIR_OUT, {5100, 31900}: netlink.XFRM_DIR_IN,
		{31900, 5100}: netlink.XFRM_DIR_OUT, {5101, 31800}: netlink.XFRM_DIR_IN,
	}
	for _, p := range pols {
		if d, ok := want[[2]int{p.SrcPort, p.DstPort}]; !ok || d != p.Dir {
			t.Errorf("policy %d→%d dir %v, want %v", p.SrcPort, p.DstPort, p.Dir, d)
		}
	}
	if err := k.RemovePolicies(s); err != nil {
		t.Fatal(err)
	}
}

func TestKernelESPStatesInNetns(t *testing.T) {
	h := testNS(t)
	k, err := NewKernel(h)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := NewSPIAllocator(4096, 1<<20)
	s := testSA(t, a)
	err = k.Install(s)
	if errors.Is(err, ErrNoESP) {
		// Nothing may be left behind by the failed install.
		sts, _ := h.XfrmStateList(netlink.FAMILY_ALL)
		pols, _ := h.XfrmPolicyList(netlink.FAMILY_ALL)
		if len(sts) != 0 || len(pols) != 0 {
			t.Fatalf("failed install left %d states, %d policies", len(sts), len(pols))
		}
		if perr := k.Probe(); !errors.Is(perr, ErrNoESP) {
			t.Fatalf("Install said no ESP but Probe said %v", perr)
		}
		t.Skipf("kernel refused the ESP state: %v (no CONFIG_INET_ESP) — SA install not verified", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Probe(); err != nil {
		t.Fatalf("probe: %v", err)
	}
	sts, err := h.XfrmStateList(netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	if len(sts) != 4 {
		t.Fatalf("want 4 states, got %d", len(sts))
	}
	for _, st := range sts {
		if st.Mode != netlink.XFRM_MODE_TRANSPORT || st.Auth == nil || st.Auth.Name != "hmac(sha1)" || len(st.Auth.Key) != 20 || st.Crypt == nil || st.Crypt.Name != "cbc(aes)" {
			t.Errorf("bad state %v", st)
		}
	}
	if err := k.Remove(s); err != nil {
		t.Fatal(err)
	}
	sts, _ = h.XfrmStateList(netlink.FAMILY_V4)
	pols, _ := h.XfrmPolicyList(netlink.FAMILY_V4)
	if len(sts) != 0 || len(pols) != 0 {
		t.Fatalf("left %d states, %d policies", len(sts), len(pols))
	}
}
