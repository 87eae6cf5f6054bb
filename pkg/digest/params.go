package digest

import (
	"encoding/hex"
	"fmt"
	"strings"
)

// Algorithm values (RFC 2617 §3.2.1, RFC 3310 §3.1, RFC 4169 §3).
const (
	AlgMD5     = "MD5"
	AlgMD5Sess = "MD5-sess"
	AlgAKAv1   = "AKAv1-MD5"
	AlgAKAv2   = "AKAv2-MD5"
)

// QOP values (RFC 2617 §3.2.1).
const (
	QOPAuth    = "auth"
	QOPAuthInt = "auth-int"
)

// integrity-protected values (TS 24.229 §7.2A.2.2; kept raw).
const (
	IntegrityNo             = "no"
	IntegrityYes            = "yes"
	IntegrityIPsec3GPP      = "ipsec-3gpp"
	IntegrityTLSPending     = "tls-pending"
	IntegrityTLSYes         = "tls-yes"
	IntegrityIPAssocPending = "ip-assoc-pending"
	IntegrityIPAssocYes     = "ip-assoc-yes"
)

// unquoted lists the parameters written as tokens by default (RFC 2617
// §3.2.1, §3.2.2; RFC 3261 §25.1). qop is a token in credentials and a
// quoted list in challenges: see Set.
var unquoted = map[string]bool{"algorithm": true, "nc": true, "stale": true, "qop": true}

// Get returns the value (unquoted) of the first parameter named name
// (case-insensitive) and whether it is present.
func (h *Header) Get(name string) (string, bool) {
	for _, p := range h.Params {
		if strings.EqualFold(p.Name, name) {
			return p.Value, true
		}
	}
	return "", false
}

func (h *Header) get(name string) string {
	v, _ := h.Get(name)
	return v
}

// Has reports whether parameter name is present.
func (h *Header) Has(name string) bool {
	_, ok := h.Get(name)
	return ok
}

// Set sets parameter name to value. An existing parameter keeps its place
// and quoting; a new one is appended, quoted unless it is algorithm, nc,
// stale or qop — except qop in a challenge (a header without a response
// parameter), which RFC 2617 §3.2.1 writes as a quoted list. Use SetQuoted
// to choose. value must not contain CR or LF.
func (h *Header) Set(name, value string) {
	q := !unquoted[strings.ToLower(name)]
	if strings.EqualFold(name, "qop") && !h.Has("response") {
		q = true
	}
	h.set(name, value, q, false)
}

// SetQuoted sets parameter name to value written quoted or not; an existing
// parameter keeps its place but takes the given quoting.
func (h *Header) SetQuoted(name, value string, quoted bool) {
	h.set(name, value, quoted, true)
}

func (h *Header) set(name, value string, quoted, force bool) {
	for i := range h.Params {
		if strings.EqualFold(h.Params[i].Name, name) {
			h.Params[i].Value = value
			if force {
				h.Params[i].Quoted = quoted
			}
			return
		}
	}
	lead := ""
	if len(h.Params) > 0 {
		lead = h.Params[len(h.Params)-1].Lead
	}
	h.Params = append(h.Params, Param{Lead: lead, Name: name, Value: value, Quoted: quoted || value == ""})
}

// Del removes every parameter named name and reports whether one was
// removed (a P-CSCF removes ik and ck from the 401, TS 24.229 §5.2.2.1).
func (h *Header) Del(name string) bool {
	out := h.Params[:0]
	removed := false
	for _, p := range h.Params {
		if strings.EqualFold(p.Name, name) {
			removed = true
			continue
		}
		out = append(out, p)
	}
	if removed && len(out) > 0 {
		out[0].Lead = ""
	}
	h.Params = out
	return removed
}

// Username returns the username parameter (an IMPI in IMS).
func (h *Header) Username() string { return h.get("username") }

// Realm returns the realm parameter.
func (h *Header) Realm() string { return h.get("realm") }

// Nonce returns the nonce parameter.
func (h *Header) Nonce() string { return h.get("nonce") }

// URI returns the uri parameter (digest-uri).
func (h *Header) URI() string { return h.get("uri") }

// Response returns the response parameter (32 hex digits).
func (h *Header) Response() string { return h.get("response") }

// Algorithm returns the algorithm parameter, "" if absent (meaning MD5).
func (h *Header) Algorithm() string { return h.get("algorithm") }

// QOP returns the qop parameter as written (a token in credentials, a
// comma-separated list in challenges; see QOPOptions).
func (h *Header) QOP() string { return h.get("qop") }

// QOPOptions splits a challenge's qop list ("auth,auth-int").
func (h *Header) QOPOptions() []string {
	var out []string
	for _, s := range strings.Split(h.QOP(), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// NC returns the nonce-count (8 hex digits).
func (h *Header) NC() string { return h.get("nc") }

// CNonce returns the cnonce parameter.
func (h *Header) CNonce() string { return h.get("cnonce") }

// Opaque returns the opaque parameter.
func (h *Header) Opaque() string { return h.get("opaque") }

// AUTS returns the auts parameter (RFC 3310 §3.4; see DecodeAUTS).
func (h *Header) AUTS() string { return h.get("auts") }

// IntegrityProtected returns the raw integrity-protected value (TS 24.229
// §7.2A.2), "" if absent.
func (h *Header) IntegrityProtected() string { return h.get("integrity-protected") }

// IK returns the ik parameter (hex, TS 24.229 §7.2A.1).
func (h *Header) IK() string { return h.get("ik") }

// CK returns the ck parameter (hex, TS 24.229 §7.2A.1).
func (h *Header) CK() string { return h.get("ck") }

// Stale reports whether stale is TRUE (case-insensitive, RFC 2617 §3.2.1).
func (h *Header) Stale() bool { return strings.EqualFold(h.get("stale"), "true") }

// Domain returns the domain parameter.
func (h *Header) Domain() string { return h.get("domain") }

// Keys decodes ik and ck, which the S-CSCF puts in the 401 for the P-CSCF
// (TS 24.229 §5.4.1.2.1, §7.2A.1): 32 hex digits each, giving 16 bytes.
func (h *Header) Keys() (ik, ck []byte, err error) {
	if ik, err = decodeKey("ik", h.IK()); err != nil {
		return nil, nil, err
	}
	if ck, err = decodeKey("ck", h.CK()); err != nil {
		return nil, nil, err
	}
	return ik, ck, nil
}

func decodeKey(name, v string) ([]byte, error) {
	if v == "" {
		return nil, fmt.Errorf("digest: missing %s", name)
	}
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != 16 {
		return nil, fmt.Errorf("digest: %s must be 32 hex digits, got %d characters", name, len(v))
	}
	return b, nil
}

// NewChallenge returns a WWW-Authenticate / Proxy-Authenticate value
// "Digest realm=\"...\", nonce=\"...\", algorithm=..., qop=\"...\"" with ", "
// separators; algorithm and qop are omitted when "".
func NewChallenge(realm, nonce, algorithm, qop string) *Header {
	h := &Header{Scheme: Scheme}
	h.Params = append(h.Params, Param{Name: "realm", Value: realm, Quoted: true})
	h.Params = append(h.Params, Param{Lead: " ", Name: "nonce", Value: nonce, Quoted: true})
	if algorithm != "" {
		h.Params = append(h.Params, Param{Lead: " ", Name: "algorithm", Value: algorithm})
	}
	if qop != "" {
		h.Params = append(h.Params, Param{Lead: " ", Name: "qop", Value: qop, Quoted: true})
	}
	return h
}

// NewAKAChallenge returns the challenge an S-CSCF sends to the P-CSCF
// (TS 24.229 §5.4.1.2.1): realm, nonce, algorithm, qop="auth", and ik/ck
// as lower-case hex.
func NewAKAChallenge(realm, nonce, algorithm string, ik, ck []byte) *Header {
	h := NewChallenge(realm, nonce, algorithm, QOPAuth)
	h.Params = append(h.Params,
		Param{Lead: " ", Name: "ik", Value: hex.EncodeToString(ik), Quoted: true},
		Param{Lead: " ", Name: "ck", Value: hex.EncodeToString(ck), Quoted: true})
	return h
}
