package sipproxy

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// This file holds the RFC 3261 §25.1 productions the validating layer
// (wire.go) checks header values against. Each canon* function takes a
// header value (folding already replaced by SP) and returns it in a
// canonical form without the optional white space the grammar allows around
// separators (SWS around ";", "=", "/", ":", ","; LWS between display name
// tokens collapsed to one SP), which is the form sipgo's parser reads
// correctly; or a grammarError naming the fault, which becomes the reason
// phrase of a 400.

// grammarError is a violation of the SIP grammar; its text ends up in the
// reason phrase "Bad Request (<text>)".
type grammarError string

func (e grammarError) Error() string { return string(e) }

func bad(format string, a ...any) error { return grammarError(fmt.Sprintf(format, a...)) }

var (
	tokenTable [256]bool // RFC 3261 token
	wordTable  [256]bool // RFC 3261 word (Call-ID)
	userTable  [256]bool // unreserved / user-unreserved (SIP URI user)
	passTable  [256]bool // unreserved / "&" / "=" / "+" / "$" / "," (password)
	paramTable [256]bool // unreserved / param-unreserved (URI parameters)
	hdrTable   [256]bool // unreserved / hnv-unreserved (URI headers)
	uricTable  [256]bool // RFC 2396 uric plus "#" (other URI schemes)
	valueTable [256]bool // gen-value: token / host; ":" for the IPv6address of Via received
)

func init() {
	set := func(t *[256]bool, chars string) {
		for i := 0; i < len(chars); i++ {
			t[chars[i]] = true
		}
	}
	alnum := "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	mark := "-_.!~*'()"
	set(&tokenTable, alnum+"-.!%*_+`'~")
	set(&wordTable, alnum+"-.!%*_+`'~()<>:\\\"/[]?{}")
	set(&userTable, alnum+mark+"%&=+$,;?/")
	set(&passTable, alnum+mark+"%&=+$,")
	set(&paramTable, alnum+mark+"%[]/:&+$")
	set(&hdrTable, alnum+mark+"%[]/?:+$")
	set(&valueTable, alnum+"-.!%*_+`'~:")
	set(&uricTable, alnum+mark+";/?:@&=+$,%[]#")
}

func all(s string, t *[256]bool) bool {
	for i := 0; i < len(s); i++ {
		if !t[s[i]] {
			return false
		}
	}
	return true
}

func isToken(s string) bool { return s != "" && all(s, &tokenTable) }

func isWS(c byte) bool { return c == ' ' || c == '\t' }

func trimWS(s string) string { return strings.Trim(s, " \t") }

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// number parses 1*DIGIT no larger than max.
func number(s string, max uint64) (uint64, bool) {
	if !isDigits(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil && n <= max
}

// validEscapes reports whether every "%" in s starts an escaped octet
// ("%" HEXDIG HEXDIG).
func validEscapes(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// scanner walks one header value.
type scanner struct {
	s string
	i int
}

func (sc *scanner) eof() bool { return sc.i >= len(sc.s) }

func (sc *scanner) peek() byte {
	if sc.eof() {
		return 0
	}
	return sc.s[sc.i]
}

// ws skips white space and reports whether there was any.
func (sc *scanner) ws() bool {
	start := sc.i
	for !sc.eof() && isWS(sc.s[sc.i]) {
		sc.i++
	}
	return sc.i > start
}

func (sc *scanner) run(t *[256]bool) string {
	start := sc.i
	for !sc.eof() && t[sc.s[sc.i]] {
		sc.i++
	}
	return sc.s[start:sc.i]
}

// quoted consumes a quoted-string (RFC 3261 §25.1, quoted-pair allowed) at
// the scanner, returning it with its quotes.
func (sc *scanner) quoted() (string, error) {
	start := sc.i
	sc.i++ // opening DQUOTE
	for !sc.eof() {
		switch c := sc.s[sc.i]; c {
		case '\\':
			if sc.i+1 >= len(sc.s) || sc.s[sc.i+1] == '\r' || sc.s[sc.i+1] == '\n' {
				return "", bad("bad quoted-pair")
			}
			sc.i += 2
		case '"':
			sc.i++
			return sc.s[start:sc.i], nil
		default:
			if c < 0x20 && c != '\t' || c == 0x7f {
				return "", bad("control character in a quoted string")
			}
			sc.i++
		}
	}
	return "", bad("unterminated quoted string")
}

// host consumes hostname / IPv4address / IPv6reference.
func (sc *scanner) host() (string, error) {
	if sc.peek() == '[' {
		end := strings.IndexByte(sc.s[sc.i:], ']')
		if end < 0 {
			return "", bad("unterminated IPv6 reference")
		}
		h := sc.s[sc.i : sc.i+end+1]
		if ip := net.ParseIP(h[1 : len(h)-1]); ip == nil || ip.To4() != nil && !strings.Contains(h, ":") {
			return "", bad("bad IPv6 reference %s", h)
		}
		sc.i += end + 1
		return h, nil
	}
	start := sc.i
	for !sc.eof() {
		c := sc.s[sc.i]
		if c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			sc.i++
			continue
		}
		break
	}
	h := sc.s[start:sc.i]
	if h == "" || h[0] == '.' || h[0] == '-' || strings.Contains(h, "..") {
		return "", bad("bad host %q", h)
	}
	return h, nil
}

// port consumes ":" port after a host when present, SWS around ":" allowed
// when sws; returns "" when absent.
func (sc *scanner) port(sws bool) (string, error) {
	save := sc.i
	if sws {
		sc.ws()
	}
	if sc.peek() != ':' {
		sc.i = save
		return "", nil
	}
	sc.i++
	if sws {
		sc.ws()
	}
	p := sc.run(&digitTable)
	if _, ok := number(p, 65535); !ok {
		return "", bad("bad port %q", p)
	}
	return p, nil
}

var digitTable = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	return t
}()

// params consumes *( SEMI generic-param ) up to a top-level "," or the end
// and returns them as ";name=value..." without white space. check, when
// set, vets each parameter (value "" when it has none). When there is no
// white space among them (the usual case), the result is the text as read,
// not a copy.
func (sc *scanner) params(check func(name, value string) error) (string, error) {
	start := sc.i
	clean := true         // no white space so far: the result is sc.s[start:prevEnd]
	var b strings.Builder // the result once white space has been met
	for {
		prevEnd := sc.i
		spaced := sc.ws()
		if sc.eof() || sc.peek() == ',' {
			if clean {
				return sc.s[start:prevEnd], nil
			}
			return b.String(), nil
		}
		if sc.peek() != ';' {
			return "", bad("unexpected %q after a value", sc.peek())
		}
		sc.i++
		if sc.ws() {
			spaced = true
		}
		name := sc.run(&tokenTable)
		if name == "" {
			return "", bad("empty parameter")
		}
		value := ""
		save := sc.i
		ws := sc.ws()
		if sc.peek() == '=' {
			spaced = spaced || ws
			sc.i++
			if sc.ws() {
				spaced = true
			}
			switch {
			case sc.peek() == '"':
				q, err := sc.quoted()
				if err != nil {
					return "", err
				}
				value = q
			case sc.peek() == '[':
				h, err := sc.host()
				if err != nil {
					return "", err
				}
				value = h
			default:
				value = sc.run(&valueTable)
			}
			if value == "" {
				return "", bad("parameter %s without a value after =", name)
			}
		} else {
			sc.i = save
		}
		if clean && spaced {
			clean = false
			b.WriteString(sc.s[start:prevEnd])
		}
		if !clean {
			b.WriteByte(';')
			b.WriteString(name)
			if value != "" {
				b.WriteByte('=')
				b.WriteString(value)
			}
		}
		if check != nil {
			if err := check(name, value); err != nil {
				return "", err
			}
		}
	}
}

// comma consumes SWS "," SWS between list elements; false at the end.
func (sc *scanner) comma() (bool, error) {
	sc.ws()
	if sc.eof() {
		return false, nil
	}
	if sc.peek() != ',' {
		return false, bad("unexpected %q in a list", sc.peek())
	}
	sc.i++
	sc.ws()
	if sc.eof() {
		return false, bad("empty list element")
	}
	return true, nil
}

// uriUse says where a URI appears, for the checks that depend on it.
type uriUse int

const (
	uriInBrackets  uriUse = iota // name-addr: headers allowed
	uriAddrSpec                  // addr-spec outside <>: no "?", ";", "," (RFC 3261 §20)
	uriRequestLine               // Request-URI: no headers (RFC 3261 §19.1.1)
)

// checkURI checks a URI: sip/sips by RFC 3261 §19.1, tel loosely (RFC
// 3966 characters), others as an RFC 2396 absolute URI.
func checkURI(u string, use uriUse) error {
	colon := strings.IndexByte(u, ':')
	if colon <= 0 {
		return bad("URI without a scheme")
	}
	scheme := u[:colon]
	if !isScheme(scheme) {
		return bad("bad URI scheme %q", scheme)
	}
	if strings.IndexFunc(scheme, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') }) >= 0 {
		// RFC 3986 allows digits, "+", "-", "." after the first letter;
		// sipgo reads schemes of letters only.
		return bad("URI scheme %q not supported", scheme)
	}
	rest := u[colon+1:]
	if rest == "" {
		return bad("empty URI")
	}
	if use == uriAddrSpec && strings.ContainsAny(rest, "?,") {
		return bad("URI with ? or , outside <>")
	}
	switch strings.ToLower(scheme) {
	case "sip", "sips":
		return checkSIPURI(rest, use)
	case "tel":
		return checkTelURI(rest)
	}
	if !all(rest, &uricTable) || !validEscapes(rest) {
		return bad("bad %s URI", scheme)
	}
	return nil
}

func isScheme(s string) bool {
	if s == "" || !(s[0] >= 'a' && s[0] <= 'z' || s[0] >= 'A' && s[0] <= 'Z') {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// checkSIPURI checks what follows "sip:" (RFC 3261 §25.1 SIP-URI).
func checkSIPURI(rest string, use uriUse) error {
	if n := strings.Count(rest, "@"); n > 1 {
		return bad("SIP URI with %d @", n)
	} else if n == 1 {
		at := strings.IndexByte(rest, '@')
		user, pass, hasPass := strings.Cut(rest[:at], ":")
		if user == "" || !all(user, &userTable) || !validEscapes(user) {
			return bad("bad user part in SIP URI")
		}
		if hasPass && (!all(pass, &passTable) || !validEscapes(pass)) {
			return bad("bad password in SIP URI")
		}
		rest = rest[at+1:]
	}
	sc := &scanner{s: rest}
	if _, err := sc.host(); err != nil {
		return err
	}
	if _, err := sc.port(false); err != nil {
		return err
	}
	for sc.peek() == ';' {
		sc.i++
		name, value := sc.run(&paramTable), ""
		if sc.peek() == '=' {
			sc.i++
			value = sc.run(&paramTable)
			if value == "" {
				return bad("SIP URI parameter %s without a value after =", truncate(name, 32))
			}
		}
		if name == "" {
			return bad("empty SIP URI parameter")
		}
		if !validEscapes(name) || !validEscapes(value) {
			return bad("bad escape in SIP URI parameter")
		}
	}
	if sc.peek() == '?' {
		if use == uriRequestLine {
			return bad("headers in the Request-URI")
		}
		if use == uriAddrSpec {
			return bad("URI headers outside <>")
		}
		for {
			sc.i++ // "?" or "&"
			name := sc.run(&hdrTable)
			if name == "" || sc.peek() != '=' {
				return bad("bad header in SIP URI")
			}
			sc.i++
			value := sc.run(&hdrTable)
			if !validEscapes(name) || !validEscapes(value) {
				return bad("bad escape in SIP URI header")
			}
			if sc.peek() != '&' {
				break
			}
		}
	}
	if !sc.eof() {
		return bad("unexpected %q in SIP URI", sc.peek())
	}
	return nil
}

// checkTelURI checks what follows "tel:" with the characters of RFC 3966:
// a number of digits, hex digits, *, #, +, visual separators, then
// parameters.
func checkTelURI(rest string) error {
	num, params, _ := strings.Cut(rest, ";")
	if num == "" {
		return bad("empty tel URI")
	}
	for i := 0; i < len(num); i++ {
		c := num[i]
		if !(isHex(c) || strings.IndexByte("*#+-.()", c) >= 0) || c == '+' && i > 0 {
			return bad("bad tel URI number")
		}
	}
	if params != "" && (!all(params, &uricTable) || !validEscapes(params)) {
		return bad("bad tel URI parameter")
	}
	return nil
}

// nameAddr consumes ( name-addr / addr-spec ) at the scanner (addr-spec
// only when addrSpecOK) and returns it as [display-name SP] "<" URI ">".
func (sc *scanner) nameAddr(addrSpecOK bool) (string, error) {
	sc.ws()
	start := sc.i
	display := ""
	switch {
	case sc.peek() == '"':
		q, err := sc.quoted()
		if err != nil {
			return "", err
		}
		display = q
		sc.ws()
	case sc.peek() != '<':
		// *(token LWS) "<", or an addr-spec.
		save := sc.i
		var words []string
		for {
			w := sc.run(&tokenTable)
			if w == "" {
				break
			}
			words = append(words, w)
			sc.ws()
		}
		if sc.peek() == '<' && len(words) > 0 {
			display = strings.Join(words, " ")
			break
		}
		sc.i = save
		if !addrSpecOK {
			return "", bad("name-addr without <>")
		}
		start := sc.i
		for !sc.eof() && !isWS(sc.s[sc.i]) && sc.s[sc.i] != ';' && sc.s[sc.i] != ',' {
			sc.i++
		}
		uri := sc.s[start:sc.i]
		if err := checkURI(uri, uriAddrSpec); err != nil {
			return "", err
		}
		return "<" + uri + ">", nil
	}
	if display == "" {
		start = sc.i // the "<"
	}
	if sc.peek() != '<' {
		return "", bad("display name not followed by <")
	}
	end := strings.IndexByte(sc.s[sc.i:], '>')
	if end < 0 {
		return "", bad("unterminated <")
	}
	uri := sc.s[sc.i+1 : sc.i+end]
	sc.i += end + 1
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c <= ' ' || c == 0x7f || c == '<' || c == '"' {
			return "", bad("white space or %q inside <>", c)
		}
	}
	if err := checkURI(uri, uriInBrackets); err != nil {
		return "", err
	}
	w := canonWriter{src: sc.s, start: start}
	if display != "" {
		w.write(display)
		w.write(" ")
	}
	w.write("<")
	w.write(uri)
	w.write(">")
	return w.String(), nil
}

// canonWriter builds a canonical value from pieces and, while the pieces
// are exactly the text of src from start on (a value already written
// canonically, the usual case), returns that substring of src instead of
// a new string.
type canonWriter struct {
	src   string
	start int
	n     int // bytes of src[start:] matched so far
	b     strings.Builder
	dirty bool // a piece differed from src: b holds the result
}

func (w *canonWriter) write(piece string) {
	if !w.dirty {
		if strings.HasPrefix(w.src[w.start+w.n:], piece) {
			w.n += len(piece)
			return
		}
		w.dirty = true
		w.b.WriteString(w.src[w.start : w.start+w.n])
	}
	w.b.WriteString(piece)
}

func (w *canonWriter) String() string {
	if !w.dirty {
		return w.src[w.start : w.start+w.n]
	}
	return w.b.String()
}

// canonNameAddrList checks a list of name-addr or addr-spec with header
// parameters (Contact, Route, Record-Route) and returns it canonical.
func canonNameAddrList(v string, addrSpecOK bool, check func(name, value string) error) (string, error) {
	sc := &scanner{s: v}
	sc.ws()
	b := canonWriter{src: v, start: sc.i}
	for {
		na, err := sc.nameAddr(addrSpecOK)
		if err != nil {
			return "", err
		}
		ps, err := sc.params(check)
		if err != nil {
			return "", err
		}
		b.write(na)
		b.write(ps)
		more, err := sc.comma()
		if err != nil {
			return "", err
		}
		if !more {
			return b.String(), nil
		}
		b.write(", ")
	}
}

// canonFromTo checks From or To: one ( name-addr / addr-spec ) with
// parameters; a tag, when present, is a token.
func canonFromTo(v string) (string, error) {
	sc := &scanner{s: v}
	sc.ws()
	start := sc.i
	na, err := sc.nameAddr(true)
	if err != nil {
		return "", err
	}
	ps, err := sc.params(func(name, value string) error {
		if strings.EqualFold(name, "tag") && !isToken(value) {
			return bad("bad tag")
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if !sc.eof() {
		return "", bad("more than one address")
	}
	w := canonWriter{src: v, start: start}
	w.write(na)
	w.write(ps)
	return w.String(), nil
}

// canonContact checks Contact: "*" or a list of contact-param, with the
// expires parameter a delta-seconds (RFC 3261 §20.10) and q a qvalue.
func canonContact(v string) (string, error) {
	if trimWS(v) == "*" {
		return "*", nil
	}
	return canonNameAddrList(v, true, func(name, value string) error {
		switch strings.ToLower(name) {
		case "expires":
			if _, ok := number(value, 1<<32-1); !ok {
				return bad("bad Contact expires %q", value)
			}
		case "q":
			if !isQValue(value) {
				return bad("bad Contact q %q", value)
			}
		}
		return nil
	})
}

// isQValue checks qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ).
func isQValue(s string) bool {
	ip, frac, dot := strings.Cut(s, ".")
	if len(frac) > 3 || dot && frac != "" && !isDigits(frac) {
		return false
	}
	switch ip {
	case "0":
		return true
	case "1":
		return strings.Trim(frac, "0") == ""
	}
	return false
}

func canonRoutes(v string) (string, error) { return canonNameAddrList(v, false, nil) }

func canonReferTo(v string) (string, error) { return canonNameAddrList(v, true, nil) }

// viaHop is one Via entry as the validating layer reads it.
type viaHop struct {
	proto     string // sent-protocol, e.g. "SIP/2.0/UDP"
	transport string
	host      string
	port      int // 0 when absent
	sentBy    string
	params    []viaParam
}

type viaParam struct{ name, value string }

func (h *viaHop) param(name string) (string, bool) {
	for _, p := range h.params {
		if strings.EqualFold(p.name, name) {
			return p.value, true
		}
	}
	return "", false
}

// String is the entry in canonical form.
func (h *viaHop) String() string {
	var b strings.Builder
	b.WriteString(h.proto + " " + h.sentBy)
	for _, p := range h.params {
		b.WriteString(";" + p.name)
		if p.value != "" {
			b.WriteString("=" + p.value)
		}
	}
	return b.String()
}

// parseVia checks a Via header value (one or more via-parm, RFC 3261
// §20.42) and returns its entries.
func parseVia(v string) ([]viaHop, error) { return parseViaIn(v, nil) }

// parseViaIn is parseVia with the entries and their parameters appended
// to a's arenas (a nil a: new slices). The result and its entries'
// parameters are capacity-limited subslices, so appending to them copies.
func parseViaIn(v string, a *lexScratch) ([]viaHop, error) {
	if a == nil {
		a = &lexScratch{}
	}
	sc := &scanner{s: v}
	first := len(a.hops)
	for {
		sc.ws()
		var parts [3]string
		protoStart := sc.i
		parts[0] = sc.run(&tokenTable)
		for k := 1; k < 3; k++ {
			sc.ws()
			if sc.peek() != '/' {
				return nil, bad("bad Via sent-protocol")
			}
			sc.i++
			sc.ws()
			parts[k] = sc.run(&tokenTable)
		}
		if parts[0] == "" || parts[1] == "" || parts[2] == "" {
			return nil, bad("bad Via sent-protocol")
		}
		proto := sc.s[protoStart:sc.i]
		if len(proto) != len(parts[0])+len(parts[1])+len(parts[2])+2 { // white space inside
			proto = parts[0] + "/" + parts[1] + "/" + parts[2]
		}
		if !sc.ws() {
			return nil, bad("no white space before the Via sent-by")
		}
		hostStart := sc.i
		host, err := sc.host()
		if err != nil {
			return nil, err
		}
		port, err := sc.port(true)
		if err != nil {
			return nil, err
		}
		hop := viaHop{proto: proto, transport: parts[2], host: host, sentBy: host}
		firstParam := len(a.params)
		if port != "" {
			hop.port, _ = strconv.Atoi(port)
			if sentBy := sc.s[hostStart:sc.i]; len(sentBy) == len(host)+1+len(port) {
				hop.sentBy = sentBy
			} else {
				hop.sentBy += ":" + port
			}
		}
		_, err = sc.params(func(name, value string) error {
			a.params = append(a.params, viaParam{name, value})
			switch strings.ToLower(name) {
			case "branch":
				if !isToken(value) {
					return bad("bad Via branch")
				}
			case "rport":
				if _, ok := number(value, 65535); value != "" && !ok {
					return bad("bad Via rport %q", value)
				}
			case "ttl":
				if _, ok := number(value, 255); !ok {
					return bad("bad Via ttl %q", value)
				}
			case "received":
				if net.ParseIP(value) == nil {
					return bad("bad Via received %q", value)
				}
			case "maddr":
				if value == "" {
					return bad("Via maddr without a value")
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		hop.params = a.params[firstParam:len(a.params):len(a.params)]
		a.hops = append(a.hops, hop)
		more, err := sc.comma()
		if err != nil {
			return nil, err
		}
		if !more {
			return a.hops[first:len(a.hops):len(a.hops)], nil
		}
	}
}

// joinVia is the canonical text of hops: v itself when v (the text they
// were parsed from) is already written that way, else a new string.
func joinVia(v string, hops []viaHop) string {
	if viaCanonical(v, hops) {
		return v
	}
	s := make([]string, len(hops))
	for i := range hops {
		s[i] = hops[i].String()
	}
	return strings.Join(s, ", ")
}

// viaCanonical tells whether v reads exactly as hops' canonical text
// ("proto sent-by;name=value, ..."), without building it.
func viaCanonical(v string, hops []viaHop) bool {
	pos := 0
	take := func(s string) bool {
		if !strings.HasPrefix(v[pos:], s) {
			return false
		}
		pos += len(s)
		return true
	}
	for i := range hops {
		h := &hops[i]
		if i > 0 && !take(", ") || !take(h.proto) || !take(" ") || !take(h.sentBy) {
			return false
		}
		for _, p := range h.params {
			if !take(";") || !take(p.name) || p.value != "" && (!take("=") || !take(p.value)) {
				return false
			}
		}
	}
	return pos == len(v)
}

// canonCSeq checks CSeq: 1*DIGIT LWS Method, the number below 2**31 (RFC
// 3261 §8.1.1.5).
func canonCSeq(v string) (string, string, error) {
	// Already canonical (1*DIGIT SP Method, the usual case): v itself.
	if sp := strings.IndexByte(v, ' '); sp > 0 && isDigits(v[:sp]) && isToken(v[sp+1:]) {
		if _, ok := number(v[:sp], 1<<31-1); !ok {
			return "", "", bad("CSeq number out of range")
		}
		return v, v[sp+1:], nil
	}
	f := strings.Fields(v)
	if len(f) != 2 || !isToken(f[1]) {
		return "", "", bad("bad CSeq")
	}
	if _, ok := number(f[0], 1<<31-1); !ok {
		return "", "", bad("CSeq number out of range")
	}
	return f[0] + " " + f[1], f[1], nil
}

// canonCallID checks Call-ID: word [ "@" word ].
func canonCallID(v string) (string, error) {
	v = trimWS(v)
	a, b, two := strings.Cut(v, "@")
	if a == "" || !all(a, &wordTable) || two && (b == "" || !all(b, &wordTable)) {
		return "", bad("bad Call-ID")
	}
	return v, nil
}

// canonMediaType checks Content-Type: m-type "/" m-subtype *( ";" m-parameter ).
func canonMediaType(v string) (string, error) {
	sc := &scanner{s: v}
	sc.ws()
	t := sc.run(&tokenTable)
	sc.ws()
	if t == "" || sc.peek() != '/' {
		return "", bad("bad Content-Type")
	}
	sc.i++
	sc.ws()
	st := sc.run(&tokenTable)
	if st == "" {
		return "", bad("bad Content-Type")
	}
	ps, err := sc.params(nil)
	if err != nil {
		return "", err
	}
	if !sc.eof() {
		return "", bad("bad Content-Type")
	}
	return t + "/" + st + ps, nil
}

// canonNumber checks a header made of one number no larger than max
// (Max-Forwards 255, Expires 2**32-1, Content-Length).
func canonNumber(name string, max uint64) func(string) (string, error) {
	return func(v string) (string, error) {
		v = trimWS(v)
		if _, ok := number(v, max); !ok {
			return "", bad("bad %s %q", name, truncate(v, 24))
		}
		return v, nil
	}
}

// canonDate checks Date: rfc1123-date in GMT (RFC 3261 §20.17, §25.1).
func canonDate(v string) (string, error) {
	v = trimWS(v)
	if !strings.HasSuffix(v, " GMT") {
		return "", bad("Date not in GMT")
	}
	if _, err := time.Parse(time.RFC1123, v); err != nil {
		return "", bad("bad Date")
	}
	return v, nil
}

// optionTags splits an option-tag list (Proxy-Require, Require, Supported).
func optionTags(v string) ([]string, error) {
	var tags []string
	for _, t := range strings.Split(v, ",") {
		t = trimWS(t)
		if !isToken(t) {
			return nil, bad("bad option tag")
		}
		tags = append(tags, t)
	}
	return tags, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
