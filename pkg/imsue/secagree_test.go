package imsue

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/ipsec"
)

// memBackend records SA sets (this kernel has no ESP).
type memBackend struct{ sets []ipsec.SecAssoc }

func (m *memBackend) Install(s ipsec.SecAssoc) error {
	for _, o := range m.sets {
		if o.UE.SPIC == s.UE.SPIC && o.UE.IP.Equal(s.UE.IP) {
			return ipsec.ErrExists
		}
	}
	m.sets = append(m.sets, s)
	return nil
}

func (m *memBackend) Remove(s ipsec.SecAssoc) error {
	for i, o := range m.sets {
		if o.UE.SPIC == s.UE.SPIC && o.PCSCF.SPIS == s.PCSCF.SPIS {
			m.sets = append(m.sets[:i], m.sets[i+1:]...)
			return nil
		}
	}
	return nil
}

func testUE(t *testing.T, mod func(*Config)) (*UE, *memBackend) {
	t.Helper()
	be := &memBackend{}
	c := Config{IMPI: "alice@ims.test", IMPU: "sip:alice@ims.test", K: bytes.Repeat([]byte{1}, 16), OP: bytes.Repeat([]byte{2}, 16),
		PCSCF: "127.0.0.1:5060", LocalIP: "127.0.0.1", IPsec: IPsecOn, Backend: be}
	if mod != nil {
		mod(&c)
	}
	u, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() })
	return u, be
}

// TestOffersAndServerChoice: one Security-Client mechanism per (alg, ealg)
// pair with the UE's ports and SPIs; the P-CSCF's highest-q mechanism
// with an offered algorithm is taken; a Security-Server without ports is
// refused with a clear error.
func TestOffersAndServerChoice(t *testing.T) {
	u, be := testUE(t, nil)
	offers, err := u.offers(true)
	if err != nil {
		t.Fatal(err)
	}
	if len(offers) != 4 {
		t.Fatalf("%d offers, want 4 (2 algs × 2 ealgs): %s", len(offers), imsheader.FormatSecurity(offers))
	}
	pc, ps := u.Ports()
	for _, o := range offers {
		c, _ := o.PortC()
		s, _ := o.PortS()
		if int(c) != pc || int(s) != ps || o.Mod() != "trans" || o.Prot() != "esp" {
			t.Errorf("offer %s", o)
		}
	}
	srv, _ := imsheader.ParseSecurity("Security-Server",
		"ipsec-3gpp;q=0.1;alg=hmac-md5-96;ealg=null;spi-c=1000;spi-s=1001;port-c=5100;port-s=5101, ipsec-3gpp;q=0.5;alg=hmac-sha-1-96;ealg=aes-cbc;spi-c=2000;spi-s=2001;port-c=5102;port-s=5103")
	m, alg, ealg, err := u.chooseServer(srv)
	if err != nil || alg != "hmac-sha-1-96" || ealg != "aes-cbc" {
		t.Fatalf("chose %s %s %s: %v", m, alg, ealg, err)
	}
	sa, err := u.newSA(m, alg, ealg, bytes.Repeat([]byte{3}, 16), bytes.Repeat([]byte{4}, 16))
	if err != nil || len(be.sets) != 1 || sa.PCSCF.PortS != 5103 || sa.PCSCF.SPIS != 2001 {
		t.Fatalf("SA %+v, %d installed: %v", sa, len(be.sets), err)
	}
	bad, _ := imsheader.ParseSecurity("Security-Server", "ipsec-3gpp;alg=hmac-sha-1-96;spi-c=1;spi-s=2")
	if _, _, _, err := u.chooseServer(bad); !errors.Is(err, ErrSecAgree) || !strings.Contains(err.Error(), "port-c") {
		t.Errorf("Security-Server without ports: %v", err)
	}
}

// TestReuseSPIsReplacesSet: a UE reusing its SPIs removes the set in use
// before installing the new one (one SA per destination and SPI).
func TestReuseSPIsReplacesSet(t *testing.T) {
	u, be := testUE(t, func(c *Config) { c.ReuseSPIs = true })
	first, _ := u.offers(true)
	again, _ := u.offers(true)
	a, _ := first[0].SPIC()
	b, _ := again[0].SPIC()
	if a != b {
		t.Fatalf("ReuseSPIs drew new SPIs: %s vs %s", first[0], again[0])
	}
	srv, _ := imsheader.ParseSecurity("Security-Server", "ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=1000;spi-s=1001;port-c=5100;port-s=5101")
	m, alg, ealg, _ := u.chooseServer(srv)
	sa1, err := u.newSA(m, alg, ealg, make([]byte, 16), make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	u.useSA(sa1, srv[0].String())
	srv2, _ := imsheader.ParseSecurity("Security-Server", "ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=3000;spi-s=3001;port-c=5102;port-s=5103")
	m2, _, _, _ := u.chooseServer(srv2)
	if _, err := u.newSA(m2, alg, ealg, make([]byte, 16), make([]byte, 16)); err != nil {
		t.Fatalf("second set with the same UE SPIs: %v", err)
	}
	if len(be.sets) != 1 || be.sets[0].PCSCF.SPIS != 3001 {
		t.Fatalf("installed %+v, want only the new set", be.sets)
	}
}
