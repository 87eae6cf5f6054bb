//go:build ipsecvm

package ipsecvm

import (
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/imsue"
)

// TestRegisterESP: a UE registers with sec-agree over UDP (one offered
// mechanism keeps the REGISTER under 1,300 bytes) and over TCP; the
// protected REGISTER and its 200 travel as ESP through the UE's and the
// P-CSCF's kernels (iproute2 shows the packets counted on the SAs of both
// ends), and nothing reaches the UE outside the SA.
func TestRegisterESP(t *testing.T) {
	for i, tc := range []struct {
		name string
		mod  func(*imsue.Config)
	}{
		{"udp", func(c *imsue.Config) { c.Algs, c.EAlgs = []string{"hmac-sha-1-96"}, []string{"null"} }},
		{"tcp", func(c *imsue.Config) { c.Transport = "tcp" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := 1 + i
			u := newUE(t, n, tc.mod)
			if err := u.Register(ctxT(t, 30*time.Second)); err != nil {
				t.Fatalf("register: %v", err)
			}
			checkESP(t, u, n)
			found := false
			for _, c := range contacts(t).Contacts {
				for _, i := range c.IMPUs {
					found = found || (i == impu(n) && len(c.SA) > 0 && string(c.SA) != "null")
				}
			}
			if !found {
				t.Errorf("P-CSCF has no contact with an SA for %s: %+v", impu(n), contacts(t))
			}
		})
	}
}

// checkESP asserts that UE n's SA set carried packets both ways in both
// kernels and that nothing reached it outside the SA.
func checkESP(t *testing.T, u *imsue.UE, n int) {
	t.Helper()
	sa := u.SA()
	if sa == nil {
		t.Fatal("registered without SAs")
	}
	// UE → P-CSCF is counted on the P-CSCF's spi-s in both kernels;
	// P-CSCF → UE (the responses) on the UE's spi-c.
	ue := xfrmStates(t, nil)
	pc := xfrmStates(t, inPCSCF)
	for _, c := range []struct {
		what string
		sts  []xfrmState
		dst  string
		spi  uint32
	}{
		{"UE kernel, requests out (P-CSCF spi-s)", ue, PCSCFIP, sa.PCSCF.SPIS},
		{"P-CSCF kernel, requests in (P-CSCF spi-s)", pc, PCSCFIP, sa.PCSCF.SPIS},
		{"P-CSCF kernel, responses out (UE spi-c)", pc, ueIP(n), sa.UE.SPIC},
		{"UE kernel, responses in (UE spi-c)", ue, ueIP(n), sa.UE.SPIC},
	} {
		if p := statePackets(c.sts, c.dst, c.spi); p < 1 {
			t.Errorf("%s: %d ESP packets (want ≥ 1; -1: no such SA)", c.what, p)
		}
	}
	if un := u.Unprotected(); len(un) > 0 {
		t.Errorf("messages outside the SA: %v", un)
	}
}
