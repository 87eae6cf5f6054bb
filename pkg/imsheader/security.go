package imsheader

import (
	"strconv"
	"strings"
)

// Header names of RFC 3329 §2.2.
const (
	HeaderSecurityClient = "Security-Client"
	HeaderSecurityServer = "Security-Server"
	HeaderSecurityVerify = "Security-Verify"
)

// Mechanism names (RFC 3329 §2.2, TS 33.203 §7.2 and annex H).
const (
	MechanismIPsec3GPP = "ipsec-3gpp"
	MechanismTLS       = "tls"
	MechanismDigest    = "digest"
	MechanismIPsecIKE  = "ipsec-ike"
	MechanismIPsecMan  = "ipsec-man"
)

// Algorithm values of the alg and ealg parameters (TS 33.203 annex H).
const (
	AlgHMACMD596   = "hmac-md5-96"
	AlgHMACSHA196  = "hmac-sha-1-96"
	EAlgNull       = "null"
	EAlgAESCBC     = "aes-cbc"
	EAlgDESEDE3CBC = "des-ede3-cbc"
)

// SecurityMechanism is one sec-mechanism of a Security-Client,
// Security-Server or Security-Verify header (RFC 3329 §2.2):
// mechanism-name *( SEMI mech-parameters ). The TS 33.203 annex H
// parameters (q, alg, ealg, prot, mod, spi-c, spi-s, port-c, port-s) have
// typed accessors; every parameter, known or not, stays in Params in its
// original order and spelling.
type SecurityMechanism struct {
	// Lead is the whitespace after the preceding ',' in a list.
	Lead string
	// Name is the mechanism-name, e.g. "ipsec-3gpp".
	Name   string
	Params Params
}

// NewSecurityMechanism returns a mechanism without parameters; add them with
// the Set* methods in the order they should be written (TS 33.203 examples
// use q, alg, ealg, spi-c, spi-s, port-c, port-s).
func NewSecurityMechanism(name string) SecurityMechanism {
	return SecurityMechanism{Name: name}
}

// String formats the mechanism (without Lead).
func (m SecurityMechanism) String() string {
	var b strings.Builder
	b.WriteString(m.Name)
	m.Params.writeTo(&b)
	return b.String()
}

// Clone returns a deep copy.
func (m SecurityMechanism) Clone() SecurityMechanism {
	m.Params = m.Params.clone()
	return m
}

func (m SecurityMechanism) str(name string) string {
	v, _ := m.Params.Get(name)
	return Unquote(v)
}

// Alg returns the integrity algorithm (alg), "" if absent.
func (m SecurityMechanism) Alg() string { return m.str("alg") }

// EAlg returns the encryption algorithm (ealg), "" if absent (TS 33.203
// annex H: absent means "null").
func (m SecurityMechanism) EAlg() string { return m.str("ealg") }

// Prot returns the prot parameter ("esp"; absent means esp).
func (m SecurityMechanism) Prot() string { return m.str("prot") }

// Mod returns the mod parameter ("trans"; absent means trans).
func (m SecurityMechanism) Mod() string { return m.str("mod") }

// Q returns the preference q (0..1) and whether it is present.
func (m SecurityMechanism) Q() (float64, bool) {
	v, ok := m.Params.Get("q")
	if !ok {
		return 0, false
	}
	q, err := strconv.ParseFloat(v, 64)
	return q, err == nil
}

func (m SecurityMechanism) uint(name string, bits int) (uint64, bool) {
	v, ok := m.Params.Get(name)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, bits)
	return n, err == nil
}

// SPIC returns spi-c, the SPI of the client's inbound SA.
func (m SecurityMechanism) SPIC() (uint32, bool) { n, ok := m.uint("spi-c", 32); return uint32(n), ok }

// SPIS returns spi-s, the SPI of the server's inbound SA.
func (m SecurityMechanism) SPIS() (uint32, bool) { n, ok := m.uint("spi-s", 32); return uint32(n), ok }

// PortC returns port-c, the client's protected port.
func (m SecurityMechanism) PortC() (uint16, bool) {
	n, ok := m.uint("port-c", 16)
	return uint16(n), ok
}

// PortS returns port-s, the server's protected port.
func (m SecurityMechanism) PortS() (uint16, bool) {
	n, ok := m.uint("port-s", 16)
	return uint16(n), ok
}

// SetQ sets q (0..1, RFC 3329 §2.2) in its shortest decimal form; keep it
// to at most three decimals as RFC 3261 qvalue asks.
func (m *SecurityMechanism) SetQ(q float64) {
	m.Params.Set("q", strconv.FormatFloat(q, 'f', -1, 64))
}

// SetAlg sets alg.
func (m *SecurityMechanism) SetAlg(v string) { m.Params.Set("alg", v) }

// SetEAlg sets ealg.
func (m *SecurityMechanism) SetEAlg(v string) { m.Params.Set("ealg", v) }

// SetProt sets prot.
func (m *SecurityMechanism) SetProt(v string) { m.Params.Set("prot", v) }

// SetMod sets mod.
func (m *SecurityMechanism) SetMod(v string) { m.Params.Set("mod", v) }

// SetSPIC sets spi-c.
func (m *SecurityMechanism) SetSPIC(v uint32) {
	m.Params.Set("spi-c", strconv.FormatUint(uint64(v), 10))
}

// SetSPIS sets spi-s.
func (m *SecurityMechanism) SetSPIS(v uint32) {
	m.Params.Set("spi-s", strconv.FormatUint(uint64(v), 10))
}

// SetPortC sets port-c.
func (m *SecurityMechanism) SetPortC(v uint16) {
	m.Params.Set("port-c", strconv.FormatUint(uint64(v), 10))
}

// SetPortS sets port-s.
func (m *SecurityMechanism) SetPortS(v uint16) {
	m.Params.Set("port-s", strconv.FormatUint(uint64(v), 10))
}

// Equivalent reports whether m and o name the same mechanism with the same
// parameters in any order (RFC 3329 §2.3.1: the server compares
// Security-Verify with the Security-Server list it sent).
func (m SecurityMechanism) Equivalent(o SecurityMechanism) bool {
	return strings.EqualFold(m.Name, o.Name) && m.Params.Equivalent(o.Params)
}

// EquivalentSecurityLists reports whether two lists hold equivalent
// mechanisms in the same order (RFC 3329 §2.3.1).
func EquivalentSecurityLists(a, b []SecurityMechanism) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equivalent(b[i]) {
			return false
		}
	}
	return true
}

// ParseSecurity parses a Security-Client, Security-Server or
// Security-Verify value (RFC 3329 §2.2; TS 33.203 annex H):
// sec-mechanism *(COMMA sec-mechanism). header names the header in errors.
// q must be a number in 0..1, spi-c/spi-s decimal uint32, port-c/port-s
// decimal uint16; other values are kept unchecked.
func ParseSecurity(header, value string) ([]SecurityMechanism, error) {
	if header == "" {
		header = "Security-*"
	}
	var out []SecurityMechanism
	i := skipWS(value, 0)
	if i >= len(value) {
		return nil, perr(header, i, "empty value")
	}
	lead := ""
	for {
		j := i
		for j < len(value) && isTokenChar(value[j]) {
			j++
		}
		if j == i {
			return nil, perr(header, i, "expected mechanism name, found %q", value[i])
		}
		m := SecurityMechanism{Lead: lead, Name: value[i:j]}
		params, k, err := parseParams(header, value, j)
		if err != nil {
			return nil, err
		}
		m.Params = params
		if err := m.validate(header, i); err != nil {
			return nil, err
		}
		out = append(out, m)
		i = skipWS(value, k)
		if i >= len(value) {
			return out, nil
		}
		if value[i] != ',' {
			return nil, perr(header, i, "unexpected character %q after mechanism %q", value[i], m.Name)
		}
		i++
		j = skipWS(value, i)
		lead = value[i:j]
		i = j
		if i >= len(value) {
			return nil, perr(header, i, "empty list element after ','")
		}
	}
}

func (m SecurityMechanism) validate(header string, off int) error {
	for _, p := range m.Params {
		var bits int
		switch strings.ToLower(p.Name) {
		case "q":
			q, err := strconv.ParseFloat(p.Value, 64)
			if err != nil || !p.HasValue || !(q >= 0 && q <= 1) {
				return perr(header, off, "mechanism %q: q=%q is not a number in 0..1", m.Name, p.Value)
			}
			continue
		case "spi-c", "spi-s":
			bits = 32
		case "port-c", "port-s":
			bits = 16
		default:
			continue
		}
		if _, err := strconv.ParseUint(p.Value, 10, bits); err != nil || !p.HasValue {
			return perr(header, off, "mechanism %q: %s=%q is not a %d-bit unsigned number", m.Name, p.Name, p.Value, bits)
		}
	}
	return nil
}

// FormatSecurity formats a mechanism list separated by ',' plus each
// entry's Lead.
func FormatSecurity(list []SecurityMechanism) string {
	var b strings.Builder
	for i, m := range list {
		if i > 0 {
			b.WriteByte(',')
			b.WriteString(m.Lead)
		}
		b.WriteString(m.String())
	}
	return b.String()
}
