package imsheader

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// Header names.
const (
	HeaderPath               = "Path"
	HeaderServiceRoute       = "Service-Route"
	HeaderPAssertedIdentity  = "P-Asserted-Identity"
	HeaderPPreferredIdentity = "P-Preferred-Identity"
	HeaderPAssociatedURI     = "P-Associated-URI"
	HeaderPServedUser        = "P-Served-User"
	HeaderPVisitedNetworkID  = "P-Visited-Network-ID"
	HeaderPChargingVector    = "P-Charging-Vector"
	HeaderPAccessNetworkInfo = "P-Access-Network-Info"
)

// ParsePath parses a Path value (RFC 3327 §4: path-value *(COMMA
// path-value), path-value = name-addr *(SEMI rr-param)).
func ParsePath(value string) ([]NameAddr, error) { return parseNameAddrList(HeaderPath, value) }

// ParseServiceRoute parses a Service-Route value (RFC 3608 §5, same form as
// Path).
func ParseServiceRoute(value string) ([]NameAddr, error) {
	return parseNameAddrList(HeaderServiceRoute, value)
}

// ParsePAssertedIdentity parses a P-Asserted-Identity value (RFC 3325 §9.1:
// name-addr / addr-spec, comma-separated; at most one sip/sips and one tel
// URI, which is not enforced here).
func ParsePAssertedIdentity(value string) ([]NameAddr, error) {
	return parseNameAddrList(HeaderPAssertedIdentity, value)
}

// ParsePPreferredIdentity parses a P-Preferred-Identity value (RFC 3325
// §9.2, same form as P-Asserted-Identity).
func ParsePPreferredIdentity(value string) ([]NameAddr, error) {
	return parseNameAddrList(HeaderPPreferredIdentity, value)
}

// ParsePAssociatedURI parses a P-Associated-URI value (RFC 3455 §5.1:
// [p-aso-uri-spec *(COMMA p-aso-uri-spec)]); an empty value is valid and
// yields an empty list.
func ParsePAssociatedURI(value string) ([]NameAddr, error) {
	if strings.TrimSpace(value) == "" {
		return nil, nil
	}
	return parseNameAddrList(HeaderPAssociatedURI, value)
}

// PServedUser is a P-Served-User value (RFC 5502 §6): an identity with
// optional sescase (orig|term) and regstate (reg|unreg) parameters; other
// parameters are kept in Params.
type PServedUser struct {
	NameAddr
}

// Session cases and registration states of RFC 5502 §6.
const (
	SessionCaseOrig = "orig"
	SessionCaseTerm = "term"
	RegStateReg     = "reg"
	RegStateUnreg   = "unreg"
)

// SessionCase returns the lower-cased sescase parameter, "" if absent.
func (p PServedUser) SessionCase() string {
	v, _ := p.Params.Get("sescase")
	return strings.ToLower(v)
}

// RegState returns the lower-cased regstate parameter, "" if absent.
func (p PServedUser) RegState() string {
	v, _ := p.Params.Get("regstate")
	return strings.ToLower(v)
}

// String formats the value.
func (p PServedUser) String() string { return p.NameAddr.String() }

// ParsePServedUser parses a P-Served-User value (RFC 5502 §6). sescase must
// be orig or term and regstate reg or unreg (case-insensitive) when present.
func ParsePServedUser(value string) (PServedUser, error) {
	n, err := parseSingleNameAddr(HeaderPServedUser, value)
	if err != nil {
		return PServedUser{}, err
	}
	p := PServedUser{n}
	if v, ok := n.Params.Get("sescase"); ok && p.SessionCase() != SessionCaseOrig && p.SessionCase() != SessionCaseTerm {
		return PServedUser{}, perr(HeaderPServedUser, 0, "sescase=%q is neither orig nor term", v)
	}
	if v, ok := n.Params.Get("regstate"); ok && p.RegState() != RegStateReg && p.RegState() != RegStateUnreg {
		return PServedUser{}, perr(HeaderPServedUser, 0, "regstate=%q is neither reg nor unreg", v)
	}
	return p, nil
}

// VisitedNetwork is one vnetwork-spec of P-Visited-Network-ID (RFC 3455
// §5.3): (token / quoted-string) *(SEMI vnetwork-param).
type VisitedNetwork struct {
	// Lead is the whitespace after the preceding ',' in a list.
	Lead string
	// Value is the network identifier as written: a token, or a
	// quoted-string with its quotes (quoting is kept on a round trip).
	Value  string
	Params Params
}

// Text returns the identifier without quotes.
func (v VisitedNetwork) Text() string { return Unquote(v.Value) }

// String formats the entry (without Lead).
func (v VisitedNetwork) String() string { return v.Value + v.Params.String() }

// NewVisitedNetwork returns an entry for id, written as a token when it is
// one and as a quoted-string otherwise.
func NewVisitedNetwork(id string) VisitedNetwork {
	if isToken(id) {
		return VisitedNetwork{Value: id}
	}
	return VisitedNetwork{Value: Quote(id)}
}

// ParsePVisitedNetworkID parses a P-Visited-Network-ID value (RFC 3455 §5.3).
func ParsePVisitedNetworkID(value string) ([]VisitedNetwork, error) {
	const h = HeaderPVisitedNetworkID
	var out []VisitedNetwork
	i := skipWS(value, 0)
	if i >= len(value) {
		return nil, perr(h, i, "empty value")
	}
	lead := ""
	for {
		v := VisitedNetwork{Lead: lead}
		if value[i] == '"' {
			end, err := scanQuoted(h, value, i)
			if err != nil {
				return nil, err
			}
			v.Value = value[i:end]
			i = end
		} else {
			j := i
			for j < len(value) && isTokenChar(value[j]) {
				j++
			}
			if j == i {
				return nil, perr(h, i, "expected token or quoted-string, found %q", value[i])
			}
			v.Value = value[i:j]
			i = j
		}
		params, k, err := parseParams(h, value, i)
		if err != nil {
			return nil, err
		}
		v.Params = params
		out = append(out, v)
		i = skipWS(value, k)
		if i >= len(value) {
			return out, nil
		}
		if value[i] != ',' {
			return nil, perr(h, i, "unexpected character %q", value[i])
		}
		i++
		j := skipWS(value, i)
		lead = value[i:j]
		i = j
		if i >= len(value) {
			return nil, perr(h, i, "empty list element after ','")
		}
	}
}

// FormatPVisitedNetworkID formats entries separated by ',' plus each
// entry's Lead.
func FormatPVisitedNetworkID(list []VisitedNetwork) string {
	var b strings.Builder
	for i, v := range list {
		if i > 0 {
			b.WriteByte(',')
			b.WriteString(v.Lead)
		}
		b.WriteString(v.String())
	}
	return b.String()
}

// PChargingVector is a P-Charging-Vector value (RFC 3455 §5.6, updated by
// RFC 7315 §5.6): icid-value=... *(SEMI charge-params). All parameters,
// known (icid-value, icid-generated-at, orig-ioi, term-ioi) and unknown, are
// kept in Params in their original order.
type PChargingVector struct {
	Params Params
}

// NewPChargingVector returns a vector with icid-value set to icid (written
// quoted when it is not a token) and, when genAt is not "",
// icid-generated-at.
func NewPChargingVector(icid, genAt string) PChargingVector {
	var p PChargingVector
	p.SetICID(icid)
	if genAt != "" {
		p.Params.Set("icid-generated-at", genAt)
	}
	return p
}

func (p PChargingVector) str(name string) string {
	v, _ := p.Params.Get(name)
	return Unquote(v)
}

// ICID returns icid-value without quotes.
func (p PChargingVector) ICID() string { return p.str("icid-value") }

// ICIDGeneratedAt returns icid-generated-at (host), "" if absent.
func (p PChargingVector) ICIDGeneratedAt() string { return p.str("icid-generated-at") }

// OrigIOI returns orig-ioi, "" if absent.
func (p PChargingVector) OrigIOI() string { return p.str("orig-ioi") }

// TermIOI returns term-ioi, "" if absent.
func (p PChargingVector) TermIOI() string { return p.str("term-ioi") }

func tokenOrQuoted(v string) string {
	if isToken(v) {
		return v
	}
	return Quote(v)
}

// SetICID sets icid-value (quoted when not a token).
func (p *PChargingVector) SetICID(v string) { p.Params.Set("icid-value", tokenOrQuoted(v)) }

// SetOrigIOI sets orig-ioi (quoted when not a token).
func (p *PChargingVector) SetOrigIOI(v string) { p.Params.Set("orig-ioi", tokenOrQuoted(v)) }

// SetTermIOI sets term-ioi (quoted when not a token).
func (p *PChargingVector) SetTermIOI(v string) { p.Params.Set("term-ioi", tokenOrQuoted(v)) }

// String formats the value.
func (p PChargingVector) String() string {
	s := p.Params.String()
	if len(s) > 0 {
		s = s[1:] // no ';' before the first parameter
	}
	return s
}

// Clone returns a deep copy.
func (p PChargingVector) Clone() PChargingVector { return PChargingVector{p.Params.clone()} }

// ParsePChargingVector parses a P-Charging-Vector value. icid-value is
// mandatory (RFC 3455 §5.6) and must not be empty.
func ParsePChargingVector(value string) (PChargingVector, error) {
	params, err := parseParamsOnly(HeaderPChargingVector, value)
	if err != nil {
		return PChargingVector{}, err
	}
	p := PChargingVector{params}
	if v, ok := params.Get("icid-value"); !ok || Unquote(v) == "" {
		return PChargingVector{}, perr(HeaderPChargingVector, 0, "missing icid-value")
	}
	return p, nil
}

// NewICID returns a fresh IMS Charging Identifier: 32 lower-case hex digits
// from 16 random bytes (RFC 3455 §5.6 asks only for global uniqueness).
func NewICID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails since Go 1.24
	return hex.EncodeToString(b[:])
}

// PAccessNetworkInfo is one P-Access-Network-Info value (RFC 3455 §5.4,
// RFC 7315 §5.4, TS 24.229 §7.2A.4), kept as an opaque string. AccessType
// exposes the leading access-type / access-class token (e.g.
// "3GPP-E-UTRAN-FDD") and Param reads the access-info parameters of the
// first entry.
type PAccessNetworkInfo struct {
	Raw string
}

// String returns the value unchanged.
func (p PAccessNetworkInfo) String() string { return p.Raw }

// AccessType returns the first token of the value.
func (p PAccessNetworkInfo) AccessType() string {
	s := strings.TrimLeft(p.Raw, " \t")
	i := 0
	for i < len(s) && isTokenChar(s[i]) {
		i++
	}
	return s[:i]
}

// Param returns the raw value of an access-info parameter of the first
// access-net-spec (e.g. "utran-cell-id-3gpp"); ok is false when absent or
// when the parameters cannot be parsed.
func (p PAccessNetworkInfo) Param(name string) (string, bool) {
	t := p.AccessType()
	i := strings.Index(p.Raw, t) + len(t)
	params, _, err := parseParams(HeaderPAccessNetworkInfo, p.Raw, i)
	if err != nil {
		return "", false
	}
	return params.Get(name)
}

// ParsePAccessNetworkInfo checks that value starts with an access-type token
// and returns it unchanged in a PAccessNetworkInfo.
func ParsePAccessNetworkInfo(value string) (PAccessNetworkInfo, error) {
	p := PAccessNetworkInfo{Raw: value}
	if p.AccessType() == "" {
		return PAccessNetworkInfo{}, perr(HeaderPAccessNetworkInfo, 0, "value does not start with an access-type token")
	}
	if strings.ContainsAny(value, "\r\n") {
		return PAccessNetworkInfo{}, perr(HeaderPAccessNetworkInfo, strings.IndexAny(value, "\r\n"), "line break in value")
	}
	return p, nil
}
