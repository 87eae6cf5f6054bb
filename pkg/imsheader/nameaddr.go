package imsheader

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// NameAddr is one entry of a name-addr / addr-spec list (RFC 3261 §20.10,
// §25.1) with its header parameters, as used by Path (RFC 3327 §4),
// Service-Route (RFC 3608 §5), P-Asserted-Identity and P-Preferred-Identity
// (RFC 3325 §9), P-Associated-URI (RFC 3455 §4.1), P-Served-User (RFC 5502
// §6) and Record-Route-like lists.
type NameAddr struct {
	// Lead is the whitespace written after the ',' that precedes this entry
	// in a list ("" or " "); ignored for the first entry.
	Lead string
	// DisplayName is the display-name as written: a quoted-string with its
	// quotes ("\"Alice\"") or token words (Alice Smith); "" when absent.
	// DisplayText gives the unquoted text; Quote builds a quoted one.
	DisplayName string
	// URI is the exact URI text (between '<' and '>' for name-addr).
	URI string
	// Bare is true for the addr-spec form written without angle brackets.
	// Format still uses brackets when DisplayName is set or URI holds
	// ',', ';', whitespace, '<', '>' or '"' (RFC 3261 §20.10 also asks for
	// brackets around a URI with '?', but a parsed bare URI is kept bare).
	Bare bool
	// Params are the header parameters after the address (e.g. "lr" is a
	// URI parameter inside the brackets, but "sescase" is a header one).
	Params Params
}

// DisplayText returns the display name without quotes.
func (n NameAddr) DisplayText() string { return Unquote(n.DisplayName) }

// SIPURI parses the URI with sipgo (sip:, sips:, or any other scheme via
// sip.Uri.Raw).
func (n NameAddr) SIPURI() (sip.Uri, error) {
	var u sip.Uri
	err := sip.ParseUri(n.URI, &u)
	return u, err
}

// Scheme returns the lower-case URI scheme ("sip", "sips", "tel", "urn"...).
func (n NameAddr) Scheme() string {
	if i := strings.IndexByte(n.URI, ':'); i > 0 {
		return strings.ToLower(n.URI[:i])
	}
	return ""
}

func (n NameAddr) needsBrackets() bool {
	return !n.Bare || n.DisplayName != "" || strings.ContainsAny(n.URI, ",; \t<>\"\r\n")
}

// String formats the entry (without Lead).
func (n NameAddr) String() string {
	var b strings.Builder
	n.writeTo(&b)
	return b.String()
}

func (n NameAddr) writeTo(b *strings.Builder) {
	if n.DisplayName != "" {
		b.WriteString(n.DisplayName)
		b.WriteByte(' ')
	}
	if n.needsBrackets() {
		b.WriteByte('<')
		b.WriteString(n.URI)
		b.WriteByte('>')
	} else {
		b.WriteString(n.URI)
	}
	n.Params.writeTo(b)
}

// Clone returns a deep copy.
func (n NameAddr) Clone() NameAddr {
	n.Params = n.Params.clone()
	return n
}

// ParseNameAddr parses a single name-addr or addr-spec with header
// parameters.
func ParseNameAddr(value string) (NameAddr, error) {
	return parseSingleNameAddr("", value)
}

func parseSingleNameAddr(header, value string) (NameAddr, error) {
	list, err := parseNameAddrList(header, value)
	if err != nil {
		return NameAddr{}, err
	}
	if len(list) != 1 {
		return NameAddr{}, perr(header, 0, "expected one address, found %d", len(list))
	}
	return list[0], nil
}

// ParseNameAddrList parses a comma-separated list of name-addr / addr-spec
// entries with header parameters (RFC 3261 §7.3.1, §20.10). An empty value
// is an error.
func ParseNameAddrList(value string) ([]NameAddr, error) {
	return parseNameAddrList("", value)
}

// FormatNameAddrList formats entries separated by ',' followed by each
// entry's Lead.
func FormatNameAddrList(list []NameAddr) string {
	var b strings.Builder
	for i, n := range list {
		if i > 0 {
			b.WriteByte(',')
			b.WriteString(n.Lead)
		}
		n.writeTo(&b)
	}
	return b.String()
}

func parseNameAddrList(header, s string) ([]NameAddr, error) {
	var out []NameAddr
	i := skipWS(s, 0)
	if i >= len(s) {
		return nil, perr(header, i, "empty value")
	}
	lead := ""
	for {
		n, j, err := parseNameAddrAt(header, s, i)
		if err != nil {
			return nil, err
		}
		n.Lead = lead
		out = append(out, n)
		i = skipWS(s, j)
		if i >= len(s) {
			return out, nil
		}
		if s[i] != ',' {
			return nil, perr(header, i, "unexpected character %q after address", s[i])
		}
		i++
		j = skipWS(s, i)
		lead = s[i:j]
		i = j
		if i >= len(s) {
			return nil, perr(header, i, "empty list element after ','")
		}
	}
}

// parseNameAddrAt parses one entry starting at s[i] (no leading whitespace).
func parseNameAddrAt(header, s string, i int) (NameAddr, int, error) {
	var n NameAddr
	start := i
	switch {
	case s[i] == ',':
		return n, i, perr(header, i, "empty list element")
	case s[i] == '"':
		end, err := scanQuoted(header, s, i)
		if err != nil {
			return n, i, err
		}
		n.DisplayName = s[i:end]
		i = skipWS(s, end)
		if i >= len(s) || s[i] != '<' {
			return n, i, perr(header, i, "expected '<' after display name")
		}
	case s[i] != '<':
		// Token display name followed by '<', or an addr-spec.
		j := i
		for j < len(s) && (isTokenChar(s[j]) || isWS(s[j])) {
			j++
		}
		if j < len(s) && s[j] == '<' {
			n.DisplayName = strings.TrimRight(s[i:j], " \t")
			i = j
			break
		}
		j = i
		for j < len(s) && !strings.ContainsRune(";,<>\" \t\r\n", rune(s[j])) {
			j++
		}
		n.URI = s[i:j]
		n.Bare = true
		if !validURIScheme(n.URI) {
			return n, start, perr(header, start, "address %q has no URI scheme", n.URI)
		}
		params, k, err := parseParams(header, s, j)
		if err != nil {
			return n, k, err
		}
		n.Params = params
		return n, k, nil
	}
	// s[i] == '<'
	end := strings.IndexByte(s[i+1:], '>')
	if end < 0 {
		return n, i, perr(header, i, "missing '>'")
	}
	n.URI = s[i+1 : i+1+end]
	if strings.ContainsAny(n.URI, "<\r\n") {
		return n, i + 1, perr(header, i+1, "invalid character in URI %q", n.URI)
	}
	if !validURIScheme(n.URI) {
		return n, i + 1, perr(header, i+1, "URI %q has no scheme", n.URI)
	}
	params, k, err := parseParams(header, s, i+2+end)
	if err != nil {
		return n, k, err
	}
	n.Params = params
	return n, k, nil
}
