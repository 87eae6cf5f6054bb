package imsheader

import (
	"fmt"
	"strings"
)

// ParseError reports a malformed header value.
type ParseError struct {
	Header string // header name, e.g. "Path"; "" for generic helpers
	Offset int    // byte offset in the value where the problem was seen
	Msg    string // what is wrong
}

func (e *ParseError) Error() string {
	h := e.Header
	if h == "" {
		h = "header"
	}
	return fmt.Sprintf("imsheader: %s: at offset %d: %s", h, e.Offset, e.Msg)
}

func perr(header string, off int, format string, args ...any) *ParseError {
	return &ParseError{Header: header, Offset: off, Msg: fmt.Sprintf(format, args...)}
}

// isTokenChar reports whether c may appear in an RFC 3261 §25.1 token.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-.!%*_+`'~", c) >= 0
}

func isWS(c byte) bool { return c == ' ' || c == '\t' }

// isToken reports whether s is a non-empty RFC 3261 token.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func skipWS(s string, i int) int {
	for i < len(s) && isWS(s[i]) {
		i++
	}
	return i
}

// scanQuoted scans a quoted-string starting at s[i] == '"' and returns the
// index just past the closing quote.
func scanQuoted(header, s string, i int) (int, error) {
	start := i
	i++
	for i < len(s) {
		switch s[i] {
		case '\\':
			if i+1 >= len(s) {
				return 0, perr(header, start, "unterminated quoted string")
			}
			if s[i+1] == '\r' || s[i+1] == '\n' {
				return 0, perr(header, i+1, "line break inside quoted string")
			}
			i += 2
			continue
		case '"':
			return i + 1, nil
		case '\r', '\n':
			return 0, perr(header, i, "line break inside quoted string")
		}
		i++
	}
	return 0, perr(header, start, "unterminated quoted string")
}

// isValueChar reports whether c may appear in an unquoted gen-value (token
// or host, RFC 3261 §7.3.1). It is lenient: everything but separators,
// whitespace, quotes and angle brackets.
func isValueChar(c byte) bool {
	if c <= ' ' || c == 0x7f {
		return false
	}
	return strings.IndexByte(";,\"<>", c) < 0
}

// HostRef is h as the host of a SIP header parameter or a Warning's
// warn-agent (RFC 3261 §25.1 host, §20.43): an IPv6 literal goes in
// brackets.
func HostRef(h string) string {
	if strings.Contains(h, ":") && !strings.HasPrefix(h, "[") {
		return "[" + h + "]"
	}
	return h
}

// Quote returns s as an RFC 3261 quoted-string, escaping '"' and '\'.
func Quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}

// Unquote returns the content of a quoted-string with quoted-pairs resolved;
// a value that is not quoted is returned unchanged.
func Unquote(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	s = s[1 : len(s)-1]
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// validURIScheme reports whether uri starts with "scheme:" (RFC 3986 §3.1).
func validURIScheme(uri string) bool {
	if uri == "" {
		return false
	}
	c := uri[0]
	if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
		return false
	}
	for i := 1; i < len(uri); i++ {
		c := uri[i]
		switch {
		case c == ':':
			return true
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '+', c == '-', c == '.':
		default:
			return false
		}
	}
	return false
}
