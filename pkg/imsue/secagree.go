package imsue

import (
	"fmt"
	"strings"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/ipsec"
)

// The UE's side of sec-agree (RFC 3329 §2, TS 33.203 §7.2, TS 24.229
// §5.1.1.2): Security-Client offers with its SPIs and protected ports,
// the choice of the P-CSCF's Security-Server, and the four SAs.

// offers returns the UE's Security-Client: one ipsec-3gpp mechanism per
// (alg, ealg) pair it supports, all with the same SPIs and ports. New
// SPIs are drawn unless fresh is false (a retried REGISTER) or the UE
// reuses its SPIs.
func (u *UE) offers(fresh bool) ([]imsheader.SecurityMechanism, error) {
	if u.cfg.IPsec == IPsecOff {
		return nil, nil
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.spiC == 0 || (fresh && !u.cfg.ReuseSPIs) {
		c, err1 := spis.Alloc()
		s, err2 := spis.Alloc()
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("%w: %v %v", ErrSecAgree, err1, err2)
		}
		// SPIs of a set in use stay reserved until it is removed.
		if u.spiC != 0 && (u.sa == nil || u.sa.UE.SPIC != u.spiC) {
			spis.Free(u.spiC)
			spis.Free(u.spiS)
		}
		u.spiC, u.spiS = c, s
	}
	var out []imsheader.SecurityMechanism
	for _, a := range u.cfg.Algs {
		for _, e := range u.cfg.EAlgs {
			m := imsheader.NewSecurityMechanism(imsheader.MechanismIPsec3GPP)
			m.SetAlg(strings.ToLower(a))
			m.SetEAlg(strings.ToLower(e))
			m.SetProt("esp")
			m.SetMod("trans")
			m.SetSPIC(u.spiC)
			m.SetSPIS(u.spiS)
			m.SetPortC(uint16(u.portC))
			m.SetPortS(uint16(u.portS))
			if len(out) > 0 {
				m.Lead = " "
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// chooseServer picks the P-CSCF's mechanism (highest q, then first) among
// ipsec-3gpp ones whose algorithms the UE offered; it checks that the
// SPIs and ports are there.
func (u *UE) chooseServer(server []imsheader.SecurityMechanism) (m imsheader.SecurityMechanism, alg, ealg string, err error) {
	best := -1.0
	found := false
	for _, s := range server {
		if !strings.EqualFold(s.Name, imsheader.MechanismIPsec3GPP) {
			continue
		}
		a, e := strings.ToLower(s.Alg()), strings.ToLower(s.EAlg())
		if e == "" {
			e = imsheader.EAlgNull
		}
		if !containsFold(u.cfg.Algs, a) || !containsFold(u.cfg.EAlgs, e) {
			continue
		}
		q, ok := s.Q()
		if !ok {
			q = 0
		}
		if !found || q > best {
			m, alg, ealg, best, found = s, a, e, q, true
		}
	}
	if !found {
		return m, "", "", fmt.Errorf("%w: Security-Server offers no ipsec-3gpp mechanism with an algorithm the UE offered (%s)", ErrSecAgree, imsheader.FormatSecurity(server))
	}
	_, ok1 := m.SPIC()
	_, ok2 := m.SPIS()
	pc, ok3 := m.PortC()
	ps, ok4 := m.PortS()
	if !ok1 || !ok2 || !ok3 || !ok4 || pc == 0 || ps == 0 {
		return m, "", "", fmt.Errorf("%w: Security-Server %q lacks spi-c, spi-s, port-c or port-s", ErrSecAgree, m.String())
	}
	return m, alg, ealg, nil
}

// newSA builds the SA set from the P-CSCF's chosen mechanism and the
// keys of the AKA run and installs it. When it reuses the SPIs of the set
// in use, that set is removed first (the kernel holds one SA per
// destination and SPI); it is then no longer the UE's.
func (u *UE) newSA(m imsheader.SecurityMechanism, alg, ealg string, ik, ck []byte) (*ipsec.SecAssoc, error) {
	spiC, _ := m.SPIC()
	spiS, _ := m.SPIS()
	pc, _ := m.PortC()
	ps, _ := m.PortS()
	u.mu.Lock()
	sa := &ipsec.SecAssoc{
		UE:    ipsec.Endpoint{IP: u.ip, PortC: uint16(u.portC), PortS: uint16(u.portS), SPIC: u.spiC, SPIS: u.spiS},
		PCSCF: ipsec.Endpoint{IP: u.pcscf.IP, PortC: pc, PortS: ps, SPIC: spiC, SPIS: spiS},
		Alg:   alg, EAlg: ealg, IK: append([]byte(nil), ik...), CK: append([]byte(nil), ck...),
	}
	if v4 := sa.PCSCF.IP.To4(); v4 != nil {
		sa.PCSCF.IP = v4
	}
	var old *ipsec.SecAssoc
	if u.sa != nil && (u.sa.UE.SPIC == sa.UE.SPIC || u.sa.UE.SPIS == sa.UE.SPIS || sameSelectors(*u.sa, *sa)) {
		old, u.sa = u.sa, nil
	}
	u.mu.Unlock()
	if old != nil {
		if err := u.be.Remove(*old); err != nil {
			u.cfg.Log.Warn("imsue: remove the SA set replaced with the same SPIs", "error", err)
		}
	}
	if err := u.be.Install(*sa); err != nil {
		return nil, fmt.Errorf("%w: install the UE's SAs: %v", ErrSecAgree, err)
	}
	u.mu.Lock()
	u.pend = sa
	u.mu.Unlock()
	return sa, nil
}

// sameSelectors reports whether two sets have the same addresses and
// ports, so that their policies are the same kernel objects.
func sameSelectors(a, b ipsec.SecAssoc) bool {
	return a.UE.IP.Equal(b.UE.IP) && a.PCSCF.IP.Equal(b.PCSCF.IP) && a.UE.PortC == b.UE.PortC && a.UE.PortS == b.UE.PortS &&
		a.PCSCF.PortC == b.PCSCF.PortC && a.PCSCF.PortS == b.PCSCF.PortS
}

// useSA makes sa the set in use and removes the one it replaces.
func (u *UE) useSA(sa *ipsec.SecAssoc, server string) {
	u.mu.Lock()
	old := u.sa
	u.sa, u.server = sa, server
	if u.pend == sa {
		u.pend = nil
	}
	u.mu.Unlock()
	if old != nil && old != sa && !sameSelectors(*old, *sa) {
		if err := u.be.Remove(*old); err != nil {
			u.cfg.Log.Warn("imsue: remove the replaced SA set", "error", err)
		}
	}
}

// dropSA removes sa, unless it is the set in use.
func (u *UE) dropSA(sa *ipsec.SecAssoc) {
	if sa == nil {
		return
	}
	u.mu.Lock()
	inUse := u.sa == sa
	if u.pend == sa {
		u.pend = nil
	}
	u.mu.Unlock()
	if !inUse {
		_ = u.be.Remove(*sa)
	}
}

// saDetail describes a set for events (no keys).
func saDetail(sa *ipsec.SecAssoc) map[string]any {
	if sa == nil {
		return nil
	}
	return map[string]any{
		"alg": sa.Alg, "ealg": sa.EAlg,
		"ue_port_c": sa.UE.PortC, "ue_port_s": sa.UE.PortS, "ue_spi_c": hexSPI(sa.UE.SPIC), "ue_spi_s": hexSPI(sa.UE.SPIS),
		"pcscf_port_c": sa.PCSCF.PortC, "pcscf_port_s": sa.PCSCF.PortS, "pcscf_spi_c": hexSPI(sa.PCSCF.SPIC), "pcscf_spi_s": hexSPI(sa.PCSCF.SPIS),
	}
}

func containsFold(list []string, v string) bool {
	for _, x := range list {
		if strings.EqualFold(x, v) {
			return true
		}
	}
	return false
}
