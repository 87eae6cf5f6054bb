// Package ipsec installs and removes the IPsec ESP transport-mode security
// associations and policies a P-CSCF and a UE set up during IMS sec-agree
// (TS 33.203 §7, annex H; RFC 3329), on Linux through XFRM netlink
// (github.com/vishvananda/netlink). The P-CSCF (pcscf) and the test UE
// (pkg/imsue) share it: the states are the same at both ends, the
// policies' directions mirrored (Kernel.Side).
//
// One registration uses four SAs (TS 33.203 §7.1), named from the
// P-CSCF's side:
//
//	in  UE port-c → P port-s, SPI = P spi-s   (requests from the UE)
//	out P port-c  → UE port-s, SPI = UE spi-s (requests to the UE)
//	in  UE port-s → P port-c, SPI = P spi-c   (responses to our requests)
//	out P port-s  → UE port-c, SPI = UE spi-c (responses to the UE)
//
// Each SA has its own reqid, a selector with the two addresses and ports
// (any protocol), and for each of UDP and TCP one policy (direction in or
// out) with a template pointing at that SA.
package ipsec

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/imscore/imscore/pkg/imsheader"
)

// Errors of the probe and the kernel backend.
var (
	// ErrNoESP: the kernel refuses ESP states (no CONFIG_INET_ESP /
	// esp4 module); XfrmStateAdd returns EPROTONOSUPPORT.
	ErrNoESP = errors.New("ipsec: kernel lacks ESP support (CONFIG_INET_ESP)")
	// ErrNoPermission: XFRM calls need CAP_NET_ADMIN.
	ErrNoPermission = errors.New("ipsec: no permission for XFRM netlink (needs CAP_NET_ADMIN)")
	// ErrNoSPI: every SPI of the configured range is in use.
	ErrNoSPI = errors.New("ipsec: SPI range exhausted")
	// ErrExists: the kernel already holds an SA with that destination and
	// SPI (EEXIST), e.g. one installed before a restart.
	ErrExists = errors.New("ipsec: SA exists")
	// ErrUnsupportedAlg: an alg/ealg this package does not implement.
	ErrUnsupportedAlg = errors.New("ipsec: unsupported algorithm")
)

// Integrity algorithms (TS 33.203 annex H alg) and the kernel names.
var authKernelName = map[string]string{
	imsheader.AlgHMACMD596:  "hmac(md5)",
	imsheader.AlgHMACSHA196: "hmac(sha1)",
}

// Encryption algorithms (TS 33.203 annex H ealg) and the kernel names.
var cryptKernelName = map[string]string{
	imsheader.EAlgNull:   "ecb(cipher_null)",
	imsheader.EAlgAESCBC: "cbc(aes)",
}

// DefaultAlgs and DefaultEAlgs are the preference lists used when none is
// configured (most preferred first).
var (
	DefaultAlgs  = []string{imsheader.AlgHMACSHA196, imsheader.AlgHMACMD596}
	DefaultEAlgs = []string{imsheader.EAlgNull, imsheader.EAlgAESCBC}
)

// Algorithms fills empty preference lists with DefaultAlgs and
// DefaultEAlgs and checks that every algorithm is implemented; the error
// names the first one that is not, with the supported ones.
func Algorithms(algs, ealgs []string) ([]string, []string, error) {
	if len(algs) == 0 {
		algs = DefaultAlgs
	}
	if len(ealgs) == 0 {
		ealgs = DefaultEAlgs
	}
	for _, a := range algs {
		if !SupportedAlg(a) {
			return nil, nil, fmt.Errorf("%w: alg %q (hmac-sha-1-96, hmac-md5-96)", ErrUnsupportedAlg, a)
		}
	}
	for _, e := range ealgs {
		if !SupportedEAlg(e) {
			return nil, nil, fmt.Errorf("%w: ealg %q (null, aes-cbc)", ErrUnsupportedAlg, e)
		}
	}
	return algs, ealgs, nil
}

// SupportedAlg reports whether alg (integrity) is implemented.
func SupportedAlg(alg string) bool { _, ok := authKernelName[strings.ToLower(alg)]; return ok }

// SupportedEAlg reports whether ealg (encryption; "" means null) is implemented.
func SupportedEAlg(ealg string) bool {
	if ealg == "" {
		return true
	}
	_, ok := cryptKernelName[strings.ToLower(ealg)]
	return ok
}

// AuthKey derives the ESP integrity key from IK (16 bytes) per TS 33.203
// §6.1 / annex I: hmac-md5-96 uses IK itself (16 bytes), hmac-sha-1-96
// uses IK followed by 32 zero bits (20 bytes). It returns the kernel
// algorithm name with the key.
func AuthKey(alg string, ik []byte) (name string, key []byte, err error) {
	if len(ik) != 16 {
		return "", nil, fmt.Errorf("ipsec: IK must be 16 bytes, got %d", len(ik))
	}
	switch strings.ToLower(alg) {
	case imsheader.AlgHMACMD596:
		return "hmac(md5)", append([]byte(nil), ik...), nil
	case imsheader.AlgHMACSHA196:
		k := make([]byte, 20)
		copy(k, ik)
		return "hmac(sha1)", k, nil
	}
	return "", nil, fmt.Errorf("%w: alg %q", ErrUnsupportedAlg, alg)
}

// CryptKey derives the ESP encryption key: aes-cbc uses CK (16 bytes,
// AES-128, TS 33.203 annex I); null uses no key. ealg "" means null.
func CryptKey(ealg string, ck []byte) (name string, key []byte, err error) {
	switch strings.ToLower(ealg) {
	case "", imsheader.EAlgNull:
		return "ecb(cipher_null)", []byte{}, nil
	case imsheader.EAlgAESCBC:
		if len(ck) != 16 {
			return "", nil, fmt.Errorf("ipsec: CK must be 16 bytes, got %d", len(ck))
		}
		return "cbc(aes)", append([]byte(nil), ck...), nil
	}
	return "", nil, fmt.Errorf("%w: ealg %q", ErrUnsupportedAlg, ealg)
}

// Endpoint is one side of the SA set: an address with its protected
// client and server ports and the SPIs of its inbound SAs.
type Endpoint struct {
	IP    net.IP `json:"ip"`
	PortC uint16 `json:"port_c"`
	PortS uint16 `json:"port_s"`
	SPIC  uint32 `json:"spi_c"`
	SPIS  uint32 `json:"spi_s"`
}

// SecAssoc describes the four SAs of one UE registration (TS 33.203 §7.1).
// IK and CK are the 16-byte keys from the S-CSCF's 401.
type SecAssoc struct {
	UE    Endpoint `json:"ue"`
	PCSCF Endpoint `json:"pcscf"`
	Alg   string   `json:"alg"`  // hmac-md5-96 or hmac-sha-1-96
	EAlg  string   `json:"ealg"` // null or aes-cbc ("" = null)
	IK    []byte   `json:"ik"`
	CK    []byte   `json:"ck"`
}

// OneSA is one of the four directional SAs of a SecAssoc.
type OneSA struct {
	Src, Dst         net.IP
	SrcPort, DstPort uint16
	SPI              uint32
	Out              bool // outbound from the P-CSCF
}

// SAs lists the four SAs in the order of the package comment.
func (s SecAssoc) SAs() [4]OneSA {
	return [4]OneSA{
		{Src: s.UE.IP, Dst: s.PCSCF.IP, SrcPort: s.UE.PortC, DstPort: s.PCSCF.PortS, SPI: s.PCSCF.SPIS},
		{Src: s.PCSCF.IP, Dst: s.UE.IP, SrcPort: s.PCSCF.PortC, DstPort: s.UE.PortS, SPI: s.UE.SPIS, Out: true},
		{Src: s.UE.IP, Dst: s.PCSCF.IP, SrcPort: s.UE.PortS, DstPort: s.PCSCF.PortC, SPI: s.PCSCF.SPIC},
		{Src: s.PCSCF.IP, Dst: s.UE.IP, SrcPort: s.PCSCF.PortS, DstPort: s.UE.PortC, SPI: s.UE.SPIC, Out: true},
	}
}

// Validate checks addresses, ports, SPIs, algorithms and key lengths.
func (s SecAssoc) Validate() error {
	if s.UE.IP == nil || s.PCSCF.IP == nil {
		return errors.New("ipsec: SA without addresses")
	}
	if (s.UE.IP.To4() == nil) != (s.PCSCF.IP.To4() == nil) {
		return errors.New("ipsec: UE and P-CSCF address families differ")
	}
	for _, e := range []Endpoint{s.UE, s.PCSCF} {
		if e.PortC == 0 || e.PortS == 0 || e.SPIC == 0 || e.SPIS == 0 {
			return fmt.Errorf("ipsec: endpoint %s lacks ports or SPIs", e.IP)
		}
	}
	if _, _, err := AuthKey(s.Alg, s.IK); err != nil {
		return err
	}
	if _, _, err := CryptKey(s.EAlg, s.CK); err != nil {
		return err
	}
	return nil
}

// Backend installs and removes SA sets. Implementations must be safe for
// concurrent use.
type Backend interface {
	// Install adds the four SAs and their policies; on error nothing of
	// this set stays installed.
	Install(s SecAssoc) error
	// Remove deletes the SAs and policies of s; missing ones are ignored.
	Remove(s SecAssoc) error
}

// SPIAllocator hands out SPIs from [Min, Max] that are not in use by this
// process (the P-CSCF owns the range; TS 33.203 leaves the choice to it).
// SPIs 1..255 are reserved (RFC 4303 §2.1) and never returned.
type SPIAllocator struct {
	Min, Max uint32
	mu       sync.Mutex
	used     map[uint32]bool
}

// NewSPIAllocator returns an allocator for [min, max]; min is raised to 256.
func NewSPIAllocator(min, max uint32) (*SPIAllocator, error) {
	if min < 256 {
		min = 256
	}
	if max < min {
		return nil, fmt.Errorf("ipsec: bad SPI range %d-%d", min, max)
	}
	return &SPIAllocator{Min: min, Max: max, used: map[uint32]bool{}}, nil
}

// Alloc returns a free SPI, starting from a random point of the range.
func (a *SPIAllocator) Alloc() (uint32, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := uint64(a.Max-a.Min) + 1
	if uint64(len(a.used)) >= n {
		return 0, ErrNoSPI
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	start := binary.BigEndian.Uint64(b[:]) % n
	for i := uint64(0); i < n; i++ {
		spi := a.Min + uint32((start+i)%n)
		if !a.used[spi] {
			a.used[spi] = true
			return spi, nil
		}
	}
	return 0, ErrNoSPI
}

// Reserve marks spi as used (e.g. when reloading stored SAs); false when
// it was already taken or lies outside the range.
func (a *SPIAllocator) Reserve(spi uint32) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if spi < a.Min || spi > a.Max || a.used[spi] {
		return false
	}
	a.used[spi] = true
	return true
}

// Free returns spi to the pool.
func (a *SPIAllocator) Free(spi uint32) {
	a.mu.Lock()
	delete(a.used, spi)
	a.mu.Unlock()
}

// InUse reports how many SPIs are allocated.
func (a *SPIAllocator) InUse() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.used)
}

// ChooseAlgs picks, from the UE's ipsec-3gpp offers, the first
// (alg, ealg) pair in the P-CSCF's preference order that the UE offered
// (TS 33.203 §7.2: the P-CSCF selects). It returns the UE mechanism that
// matched (for its SPIs and ports). ok is false when nothing matches.
func ChooseAlgs(offers []imsheader.SecurityMechanism, algPref, ealgPref []string) (m imsheader.SecurityMechanism, alg, ealg string, ok bool) {
	for _, a := range algPref {
		for _, e := range ealgPref {
			for _, o := range offers {
				if !strings.EqualFold(o.Name, imsheader.MechanismIPsec3GPP) {
					continue
				}
				if p := o.Prot(); p != "" && !strings.EqualFold(p, "esp") {
					continue
				}
				if md := o.Mod(); md != "" && !strings.EqualFold(md, "trans") {
					continue
				}
				oe := o.EAlg()
				if oe == "" {
					oe = imsheader.EAlgNull
				}
				if strings.EqualFold(o.Alg(), a) && strings.EqualFold(oe, e) && SupportedAlg(a) && SupportedEAlg(e) {
					return o, strings.ToLower(a), strings.ToLower(e), true
				}
			}
		}
	}
	return imsheader.SecurityMechanism{}, "", "", false
}
