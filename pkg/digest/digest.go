// Package digest parses and formats SIP Digest authentication headers —
// WWW-Authenticate, Proxy-Authenticate, Authorization, Proxy-Authorization
// (RFC 3261 §20.7, §20.27, §20.28, §20.44, §25.1; RFC 2617 §3.2) and
// Authentication-Info (RFC 2617 §3.2.3) — including the IMS parameters
// auts (RFC 3310 §3.4), integrity-protected, ik and ck (TS 24.229 §7.2A.1,
// §7.2A.2), and computes and checks digest responses for MD5, MD5-sess,
// AKAv1-MD5 (RFC 3310) and AKAv2-MD5 (RFC 4169).
//
// Round trip: parameters keep their order, spelling, quoting and the
// whitespace written after each ',' separator, so Format(Parse(v)) == v for
// normally formatted values (with ", " or "," separators). Whitespace before
// ',' or around '=' is dropped; the scheme is followed by one space.
// Unknown parameters survive unchanged. Parse never panics.
package digest

import (
	"errors"
	"fmt"
	"strings"
)

// Scheme is the authentication scheme this package handles.
const Scheme = "Digest"

// ErrNotDigest is wrapped by the error returned for another scheme (e.g.
// Basic, Bearer).
var ErrNotDigest = errors.New("digest: scheme is not Digest")

// ParseError reports a malformed value.
type ParseError struct {
	Offset int    // byte offset in the value
	Msg    string // what is wrong
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("digest: at offset %d: %s", e.Offset, e.Msg)
}

func perr(off int, format string, args ...any) error {
	return &ParseError{Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// Param is one auth-param (RFC 2617 §3.2.1).
type Param struct {
	// Lead is the whitespace written after the ',' before this parameter
	// ("" or " " in practice); kept for byte-exact Format.
	Lead string
	// Name as written; names compare case-insensitively.
	Name string
	// Value with quotes removed and quoted-pairs resolved.
	Value string
	// Quoted is true when the value is written as a quoted-string.
	Quoted bool
}

// Header is a parsed Digest challenge or credentials value, or (with an
// empty Scheme) an Authentication-Info value.
type Header struct {
	// Scheme as written ("Digest", any case); "" for Authentication-Info.
	Scheme string
	Params []Param
}

// Parse parses a Digest challenge (WWW-Authenticate, Proxy-Authenticate) or
// credentials (Authorization, Proxy-Authorization) value: "Digest"
// followed by a comma-separated list of name=value parameters. Another
// scheme gives an error wrapping ErrNotDigest. One challenge per header
// value is supported.
func Parse(value string) (*Header, error) {
	i := skipWS(value, 0)
	j := i
	for j < len(value) && isTokenChar(value[j]) {
		j++
	}
	if j == i {
		return nil, perr(i, "missing authentication scheme")
	}
	scheme := value[i:j]
	if !strings.EqualFold(scheme, Scheme) {
		return nil, fmt.Errorf("%w: %q", ErrNotDigest, scheme)
	}
	if j < len(value) && !isWS(value[j]) {
		return nil, perr(j, "unexpected character %q after scheme", value[j])
	}
	params, err := parseParams(value, j)
	if err != nil {
		return nil, err
	}
	if len(params) == 0 {
		return nil, perr(j, "Digest without parameters")
	}
	return &Header{Scheme: scheme, Params: params}, nil
}

// ParseAuthenticationInfo parses an Authentication-Info value (RFC 2617
// §3.2.3, RFC 3261 §20.6): a parameter list without a scheme.
func ParseAuthenticationInfo(value string) (*Header, error) {
	params, err := parseParams(value, 0)
	if err != nil {
		return nil, err
	}
	if len(params) == 0 {
		return nil, perr(0, "empty Authentication-Info")
	}
	return &Header{Params: params}, nil
}

// String formats the header value.
func (h *Header) String() string {
	var b strings.Builder
	if h.Scheme != "" {
		b.WriteString(h.Scheme)
		b.WriteByte(' ')
	}
	for i, p := range h.Params {
		if i > 0 {
			b.WriteByte(',')
			b.WriteString(p.Lead)
		}
		b.WriteString(p.Name)
		b.WriteByte('=')
		if p.Quoted {
			writeQuoted(&b, p.Value)
		} else {
			b.WriteString(p.Value)
		}
	}
	return b.String()
}

// Clone returns a deep copy.
func (h *Header) Clone() *Header {
	c := *h
	c.Params = append([]Param(nil), h.Params...)
	return &c
}

func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

func isWS(c byte) bool { return c == ' ' || c == '\t' }

func skipWS(s string, i int) int {
	for i < len(s) && isWS(s[i]) {
		i++
	}
	return i
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-.!%*_+`'~", c) >= 0
}

// isValueChar: an unquoted value is a token; '/', '=' and ':' are also
// accepted because some peers send base64 nonces or URIs unquoted.
func isValueChar(c byte) bool {
	return isTokenChar(c) || c == '/' || c == '=' || c == ':' || c == '@'
}

// parseParams parses auth-param *( "," auth-param ) from s[i:].
func parseParams(s string, i int) ([]Param, error) {
	// Sized for a typical Authorization (username, realm, nonce, uri,
	// response, algorithm, qop, nc, cnonce, opaque…): one allocation.
	out := make([]Param, 0, min(strings.Count(s[min(i, len(s)):], ",")+1, 16))
	i = skipWS(s, i)
	if i >= len(s) {
		return nil, nil
	}
	lead := ""
	for {
		p := Param{Lead: lead}
		j := i
		for j < len(s) && isTokenChar(s[j]) {
			j++
		}
		if j == i {
			if s[i] == ',' {
				return nil, perr(i, "empty parameter")
			}
			return nil, perr(i, "invalid character %q in parameter name", s[i])
		}
		p.Name = s[i:j]
		i = skipWS(s, j)
		if i >= len(s) || s[i] != '=' {
			return nil, perr(i, "missing '=' after parameter %q", p.Name)
		}
		i = skipWS(s, i+1)
		if i >= len(s) {
			return nil, perr(i, "missing value of parameter %q", p.Name)
		}
		if s[i] == '"' {
			v, end, err := scanQuoted(s, i)
			if err != nil {
				return nil, err
			}
			p.Value, p.Quoted = v, true
			i = end
		} else {
			j = i
			for j < len(s) && isValueChar(s[j]) {
				j++
			}
			if j == i {
				return nil, perr(i, "missing value of parameter %q", p.Name)
			}
			p.Value = s[i:j]
			i = j
		}
		out = append(out, p)
		i = skipWS(s, i)
		if i >= len(s) {
			return out, nil
		}
		if s[i] != ',' {
			return nil, perr(i, "unexpected character %q after parameter %q", s[i], p.Name)
		}
		i++
		j = skipWS(s, i)
		lead = s[i:j]
		i = j
		if i >= len(s) {
			return nil, perr(i, "trailing ','")
		}
	}
}

// scanQuoted returns the unescaped content of the quoted-string at s[i] and
// the index after its closing quote.
func scanQuoted(s string, i int) (string, int, error) {
	start := i
	i++
	// Without a backslash the content is a substring of s (no copy).
	if end := strings.IndexAny(s[i:], "\"\\\r\n"); end >= 0 && s[i+end] == '"' {
		return s[i : i+end], i + end + 1, nil
	}
	var b strings.Builder
	for i < len(s) {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) {
				return "", 0, perr(start, "unterminated quoted string")
			}
			if s[i+1] == '\r' || s[i+1] == '\n' {
				return "", 0, perr(i+1, "line break inside quoted string")
			}
			b.WriteByte(s[i+1])
			i += 2
			continue
		case '"':
			return b.String(), i + 1, nil
		case '\r', '\n':
			return "", 0, perr(i, "line break inside quoted string")
		default:
			b.WriteByte(c)
		}
		i++
	}
	return "", 0, perr(start, "unterminated quoted string")
}
