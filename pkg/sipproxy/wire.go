package sipproxy

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"net"
	"strconv"
	"strings"
	"sync"
	"unsafe"

	"github.com/emiago/sipgo/sip"
)

// The validating layer: every message read from a listening socket passes
// through inspect before sipgo parses it (guard.go wires it into the UDP
// and TCP sockets). It checks the message against the RFC 3261 grammar and
// the RFC 4475 torture cases sipgo lets through or refuses wrongly, and
// hands sipgo a canonical rewrite it parses correctly:
//
//   - a request that breaks the grammar is answered here, statelessly, with
//     400 (the reason phrase names the fault), 505 (SIP/2.0 status line),
//     416 (Request-URI scheme we do not route), 513 (larger than
//     Limits.MaxMessageBytes) or 400 (more than Limits.MaxHeaders header
//     fields); sipgo never sees it, so it creates no transaction;
//   - a response that breaks it, or whose top Via is not one this proxy
//     inserts (host and listening port, RFC 3261 §18.1.2), is dropped;
//   - a valid message is rewritten: folding undone, the optional white
//     space around separators of Via, From, To, Contact, Route,
//     Record-Route, CSeq and Content-Type removed, addr-specs put in <>,
//     octets beyond Content-Length (UDP) cut off, Content-Length added when
//     absent (UDP); an RFC 2543 request without From tag or RFC 3261
//     branch gets a branch derived from its RFC 2543 transaction identity
//     (RFC 3261 §17.2.3), which sipgo needs to match it.

// Limits bound what the proxy reads from a socket. Zero fields take the
// defaults.
type Limits struct {
	// MaxMessageBytes is the largest message accepted (start line,
	// headers and body); a larger request is answered 513 Message Too
	// Large (RFC 3261 §21.5.9), a larger TCP message closes the
	// connection. Default DefaultMaxMessageBytes.
	MaxMessageBytes int
	// MaxHeaders is the largest number of header fields (lines, after
	// unfolding) in a message; beyond it a request is answered 400.
	// Default DefaultMaxHeaders.
	MaxHeaders int
	// Backlog is the share of a UDP socket's receive buffer (the limit
	// the kernel enforces: SO_RCVBUF as it doubled and capped it) that
	// unread datagrams may fill before a new request read from that
	// socket — no To tag, not ACK or CANCEL — is answered 503 with
	// Retry-After where it is read, statelessly (backlog.go; ADR 0003);
	// the share is multiplied by the request's Via entries (plus one for
	// an answer to a challenge), up to 4, so that requests relayed by
	// other elements or half done are refused last.
	// Requests within dialogs, ACK, CANCEL and responses always pass:
	// they finish work already admitted. It keeps what a function admits
	// within what it can read, so that the kernel does not drop
	// datagrams (ACKs, BYEs) under overload. Default DefaultBacklog;
	// negative: never refuse for the queue.
	Backlog float64
	// BacklogRetryAfter is the Retry-After (s) of those 503s. Default
	// DefaultBacklogRetryAfter.
	BacklogRetryAfter int
}

// Defaults for Limits.
const (
	DefaultMaxMessageBytes = 65535 // the largest UDP payload, roughly
	DefaultMaxHeaders      = 256   // RFC 4475 longreq has 46
	// DefaultBacklog: an eighth of the receive buffer, 1 MiB of the 8 MiB
	// Linux enforces for DefaultUDPBufferBytes (about 450 datagrams of
	// 1 KB as it counts them; docs/performance.md).
	DefaultBacklog = 0.125
	// DefaultBacklogRetryAfter is the Retry-After of the backlog's 503s (s).
	DefaultBacklogRetryAfter = 5
)

func (l Limits) withDefaults() Limits {
	if l.MaxMessageBytes <= 0 {
		l.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = DefaultMaxHeaders
	}
	if l.Backlog == 0 {
		l.Backlog = DefaultBacklog
	}
	if l.BacklogRetryAfter <= 0 {
		l.BacklogRetryAfter = DefaultBacklogRetryAfter
	}
	return l
}

// DefaultURISchemes are the Request-URI schemes a proxy accepts; others
// get 416 (RFC 3261 §16.3 step 2). urn is for service URNs (RFC 5031,
// emergency calls at the P-CSCF).
var DefaultURISchemes = []string{"sip", "sips", "tel", "urn"}

type action int

const (
	actPass   action = iota // hand the canonical message to sipgo
	actReject               // answer it here, hand nothing on
	actDrop                 // neither
	actAbsorb               // neither, and not a fault: the ACK of a stateless answer
)

// verdict is the layer's decision on one message.
type verdict struct {
	act     action
	out     []byte // actPass: canonical message
	code    int    // actReject: status code
	reason  string // actReject, actDrop: the fault, for the log and the reason phrase
	resp    []byte // actReject: the response
	dest    string // actReject over UDP: "ip:port" (RFC 3261 §18.2.2), "" for the source
	request bool
	start   string // actReject, actDrop: the start line, for the log (truncated, a copy)
	// overload: actReject with 503 because the socket's receive queue is
	// over Limits.Backlog (backlog.go); counted apart from faults.
	overload bool
}

// field is one header field of a message.
type field struct {
	key   string // lower-case full name (compact forms expanded)
	name  string // as received
	value string // folding replaced by SP
	canon string // canonical value, "" when not checked or invalid
	bad   bool   // canon failed
}

// wireMsg is a message as the layer lexes it.
type wireMsg struct {
	request bool
	start   string
	method  string
	ruri    string
	fields  []field
	// verbatim: the canonical form is the message as read (raw).
	verbatim bool
	raw      []byte
	vias     []viaHop // of the first Via field
	viaHops  int      // Via entries in all Via fields
	viaOK    bool
	body     []byte
	hasCL    bool
	fault    int    // first fault: status code (requests)
	reason   string // first fault
}

func (m *wireMsg) fail(code int, format string, a ...any) {
	if m.fault == 0 {
		m.fault, m.reason = code, fmt.Sprintf(format, a...)
	}
}

func (m *wireMsg) first(key string) *field {
	for i := range m.fields {
		if m.fields[i].key == key {
			return &m.fields[i]
		}
	}
	return nil
}

// compactForms maps the compact header names (RFC 3261 §7.3.3 and the
// extensions that define one) to the full ones.
var compactForms = map[string]string{
	"i": "call-id", "m": "contact", "e": "content-encoding", "l": "content-length",
	"c": "content-type", "f": "from", "s": "subject", "k": "supported", "t": "to",
	"v": "via", "r": "refer-to", "b": "referred-by", "o": "event", "u": "allow-events",
	"x": "session-expires", "y": "identity", "a": "accept-contact", "j": "reject-contact",
	"d": "request-disposition",
}

// singleFields may appear at most once (RFC 3261 §7.3.1: not a
// comma-separated list).
var singleFields = map[string]singleSeen{
	"call-id": 1 << 0, "cseq": 1 << 1, "from": 1 << 2, "to": 1 << 3, "max-forwards": 1 << 4,
	"content-length": 1 << 5, "content-type": 1 << 6, "expires": 1 << 7, "min-expires": 1 << 8,
	"date": 1 << 9, "refer-to": 1 << 10, "referred-by": 1 << 11,
}

// singleSeen has the bit of each singleFields entry seen in a message.
type singleSeen uint16

// commonKeys maps header names as UAs usually write them to their keys,
// which spares a lower-casing allocation per field.
var commonKeys = map[string]string{}

func init() {
	for _, n := range []string{"Via", "From", "To", "Call-ID", "CSeq", "Contact", "Max-Forwards", "Content-Length",
		"Content-Type", "Expires", "Route", "Record-Route", "Path", "Service-Route", "Authorization",
		"WWW-Authenticate", "Proxy-Authorization", "Security-Client", "Security-Server", "Security-Verify",
		"Require", "Proxy-Require", "Supported", "Allow", "Event", "Subscription-State", "User-Agent", "Server",
		"P-Asserted-Identity", "P-Preferred-Identity", "P-Associated-URI", "P-Access-Network-Info",
		"P-Visited-Network-ID", "P-Charging-Vector", "P-Charging-Function-Addresses", "P-Called-Party-ID",
		"P-Served-User", "Accept", "Accept-Contact", "Allow-Events", "Privacy", "Session-Expires", "Min-SE",
		"Call-Info", "Date", "Min-Expires", "Retry-After", "Warning", "Reason", "RSeq", "RAck", "Content-Disposition"} {
		commonKeys[n] = strings.ToLower(n)
	}
	for short, long := range compactForms {
		commonKeys[short], commonKeys[strings.ToUpper(short)] = long, long
	}
}

// headerKey is the lower-case full name of a header field name.
func headerKey(name string) string {
	if k, ok := commonKeys[name]; ok {
		return k
	}
	key := strings.ToLower(name)
	if long, ok := compactForms[key]; ok {
		return long
	}
	return key
}

// canonicalizers of the header fields whose grammar is checked (via is
// handled apart).
var canonicalizers = map[string]func(string) (string, error){
	"from":           canonFromTo,
	"to":             canonFromTo,
	"contact":        canonContact,
	"route":          canonRoutes,
	"record-route":   canonRoutes,
	"refer-to":       canonReferTo,
	"referred-by":    canonReferTo,
	"call-id":        canonCallID,
	"content-type":   canonMediaType,
	"max-forwards":   canonNumber("Max-Forwards", 255),
	"content-length": canonNumber("Content-Length", 1<<31-1),
	"expires":        canonNumber("Expires", 1<<32-1),
	"min-expires":    canonNumber("Min-Expires", 1<<32-1),
	"date":           canonDate,
}

// essentialFields of a response: sipgo needs them to match it; a response
// with an invalid one is dropped. Other header fields of a response are
// passed as they came when they do not parse (a downstream quirk must not
// lose a call).
var essentialFields = map[string]bool{"via": true, "cseq": true, "call-id": true, "from": true, "to": true, "content-length": true}

func isKeepAlive(data []byte) bool { return len(bytes.Trim(data, "\r\n")) == 0 }

// inspect lexes and checks one message (a UDP datagram, or one message
// framed from a TCP stream when stream is set) received from src.
func (p *Proxy) inspect(data []byte, stream bool, src net.Addr) verdict {
	return p.inspectFrom(data, stream, src, nil)
}

// inspectFrom is inspect for a message read from a socket whose receive
// queue q reports (nil: none): a new request read while q is over
// Limits.Backlog is answered 503 here (backlog.go).
func (p *Proxy) inspectFrom(data []byte, stream bool, src net.Addr, q backlogger) verdict {
	a := lexScratchPool.Get().(*lexScratch)
	defer a.release()
	m := p.lexIn(data, stream, a)
	v := verdict{request: m.request}
	if len(data) > p.limits.MaxMessageBytes {
		m.fault, m.reason = 0, ""
		m.fail(513, "message of %d bytes, more than %d", len(data), p.limits.MaxMessageBytes)
	}
	if !m.request {
		if m.fault == 0 {
			p.checkResponseVia(&m)
		}
		if m.fault != 0 {
			v.act, v.reason, v.start = actDrop, m.reason, m.logStart()
			return v
		}
		v.act, v.out = actPass, m.render()
		return v
	}
	if m.fault == 0 {
		if m.method == "ACK" && p.isStatelessTag(&m) {
			// The ACK of a non-2xx this proxy sent statelessly: nothing
			// waits for it (RFC 3261 §17.2.1 absorbs it in the server
			// transaction; here there is none).
			v.act = actAbsorb
			return v
		}
		if q != nil && m.isNewRequest() {
			if queued, limit, over := p.backlogOver(q, &m); over {
				return p.refuseOverload(&m, src, queued, limit)
			}
		}
		m.synthesizeBranch()
		v.act, v.out = actPass, m.render()
		if len(v.out) > p.limits.MaxMessageBytes+256 {
			m.fail(513, "message too large")
		} else {
			return v
		}
	}
	return p.refuse(&m, m.fault, m.reason, src)
}

// logStart is m's start line for the log of a refused or dropped
// message: printable, truncated, and a copy (m's strings are the read
// buffer's bytes, the next message's once inspect returns).
func (m *wireMsg) logStart() string { return strings.Clone(printable(m.start, 80)) }

// refuse is the verdict on a request refused with code and reason: answered
// when it has a Via to answer to, else dropped; a response is dropped.
func (p *Proxy) refuse(m *wireMsg, code int, reason string, src net.Addr) verdict {
	v := verdict{act: actDrop, request: m.request, start: m.logStart(), code: code, reason: reason}
	if !m.request || m.first("via") == nil {
		v.code = 0
		return v
	}
	v.act = actReject
	v.resp, v.dest = m.rejection(code, reason, p.slTag, src)
	return v
}

// lexScratch holds the slices lex fills for one message — its header
// fields, Via entries and their parameters — kept between messages so
// that a message costs no allocation for them. A wireMsg lexed into it is
// valid until release; nothing of it outlives inspect (the verdict holds
// strings and new or original bytes only).
type lexScratch struct {
	fields []field
	hops   []viaHop
	params []viaParam
}

// lexScratchPool: one lexScratch per message being inspected.
var lexScratchPool = sync.Pool{New: func() any { return new(lexScratch) }}

// release clears a (so that it holds no message's text) and returns it to
// the pool, unless an unusual message grew it past the usual sizes.
func (a *lexScratch) release() {
	if cap(a.fields) > DefaultMaxHeaders || cap(a.params) > 4*DefaultMaxHeaders {
		return
	}
	clear(a.fields[:cap(a.fields)])
	clear(a.hops[:cap(a.hops)])
	clear(a.params[:cap(a.params)])
	a.fields, a.hops, a.params = a.fields[:0], a.hops[:0], a.params[:0]
	lexScratchPool.Put(a)
}

// lex splits data into start line, header fields and body and runs every
// check that does not need the proxy's state. The message's strings are
// data's bytes: valid while data is unchanged.
func (p *Proxy) lex(data []byte, stream bool) wireMsg { return p.lexIn(data, stream, nil) }

// lexIn is lex with the message's slices taken from a (nil: new ones).
func (p *Proxy) lexIn(data []byte, stream bool, a *lexScratch) wireMsg {
	if a == nil {
		a = &lexScratch{}
	}
	var m wireMsg
	lead := 0
	for len(data) >= lead+2 && data[lead] == '\r' && data[lead+1] == '\n' {
		lead += 2
	}
	data = data[lead:]
	headBytes, body, complete := bytes.Cut(data, []byte("\r\n\r\n"))
	// One string for the whole header section, on data's own bytes (no
	// copy): start line, names and values are substrings of it. data is
	// not changed while m lives, and nothing of m outlives inspect but
	// copies (render's and rejection's bytes, the verdict's start line).
	head := unsafe.String(unsafe.SliceData(headBytes), len(headBytes))
	startLine, rest, _ := strings.Cut(head, "\r\n")
	m.start = startLine
	m.request = !(len(m.start) >= 4 && strings.EqualFold(m.start[:4], "SIP/"))
	if m.request {
		m.checkRequestLine(p.uriSchemes)
	} else {
		m.checkStatusLine()
	}
	if !complete {
		m.fail(400, "no empty line after the header fields")
	}
	// verbatim: render would give back data unchanged, so data itself is
	// passed (see inspect); cleared by anything render rewrites.
	m.verbatim = lead == 0 && complete
	if rest != "" {
		if n := strings.Count(rest, "\r\n") + 1; cap(a.fields) < n {
			a.fields = make([]field, 0, n)
		}
		m.fields = a.fields[:0]
	}
	for rest != "" {
		var ln string
		ln, rest, _ = strings.Cut(rest, "\r\n")
		if len(ln) > 0 && isWS(ln[0]) {
			m.verbatim = false
			if len(m.fields) == 0 {
				m.fail(400, "continuation line before any header field")
				continue
			}
			f := &m.fields[len(m.fields)-1]
			// A fold is one space (RFC 3261 §7.3.1); a line of white
			// space only adds nothing.
			if cont := trimWS(ln); f.value == "" {
				f.value = cont
			} else if cont != "" {
				f.value += " " + cont
			}
			continue
		}
		if len(m.fields) >= p.limits.MaxHeaders {
			m.fail(400, "more than %d header fields", p.limits.MaxHeaders)
			break
		}
		colon := strings.IndexByte(ln, ':')
		if colon < 0 {
			m.fail(400, "header line without a colon")
			continue
		}
		name := trimWS(ln[:colon])
		if !isToken(name) {
			m.fail(400, "bad header field name")
			continue
		}
		key := headerKey(name)
		value := trimWS(ln[colon+1:])
		// render writes "name: value": the line is written so already.
		if len(name) != colon || len(ln) < colon+2 || ln[colon+1] != ' ' || len(value) != len(ln)-colon-2 {
			m.verbatim = false
		}
		m.fields = append(m.fields, field{key: key, name: name, value: value})
	}
	var seen singleSeen
	for i := range m.fields {
		f := &m.fields[i]
		if c := ctlOutsideQuotedPair(f.value); c >= 0 {
			m.fail(400, "control character %#02x in %s", c, f.name)
			f.bad = true
			continue
		}
		if bit, ok := singleFields[f.key]; ok {
			if seen&bit != 0 {
				m.fail(400, "more than one %s", canonicalName(f.key))
			}
			seen |= bit
		}
		var err error
		switch {
		case f.key == "via":
			var hops []viaHop
			hops, err = parseViaIn(f.value, a)
			if err == nil {
				m.viaHops += len(hops)
				f.canon = joinVia(f.value, hops)
				if m.vias == nil {
					m.vias, m.viaOK = hops, true
				}
			}
		case f.key == "cseq":
			var method string
			f.canon, method, err = canonCSeq(f.value)
			if err == nil && m.request && m.method != "" && method != m.method {
				m.fail(400, "CSeq method %s does not match the Request-Line", truncate(method, 32))
			}
		case canonicalizers[f.key] != nil:
			f.canon, err = canonicalizers[f.key](f.value)
		}
		if f.canon != "" && f.canon != f.value {
			m.verbatim = false
		}
		if err != nil {
			f.bad, f.canon = true, ""
			if m.request || essentialFields[f.key] {
				m.fail(400, "%s: %v", canonicalName(f.key), err)
			}
		}
	}
	if m.request {
		for _, k := range []string{"via", "from", "to", "call-id", "cseq"} {
			if m.first(k) == nil {
				m.fail(400, "missing %s", canonicalName(k))
			}
		}
	} else {
		for _, k := range []string{"via", "cseq", "call-id", "from", "to"} {
			if m.first(k) == nil {
				m.fail(400, "missing %s", canonicalName(k))
			}
		}
	}
	if cl := m.first("content-length"); cl != nil && !cl.bad {
		m.hasCL = true
		n, _ := strconv.Atoi(cl.canon)
		if n > len(body) {
			m.fail(400, "Content-Length %d larger than the %d bytes of body", n, len(body))
		} else {
			if n < len(body) {
				m.verbatim = false
			}
			body = body[:n]
		}
	} else if stream && cl == nil {
		m.fail(400, "missing Content-Length on a stream transport")
	}
	if !m.hasCL {
		m.verbatim = false
	}
	m.body = body
	if m.verbatim {
		m.raw = data
	}
	if cap(m.fields) > cap(a.fields) {
		a.fields = m.fields[:0] // grown by append: keep the larger one
	}
	return m
}

func (m *wireMsg) checkRequestLine(schemes []string) {
	method, rest, ok1 := strings.Cut(m.start, " ")
	ruri, version, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 || strings.IndexByte(version, ' ') >= 0 {
		m.fail(400, "bad Request-Line")
		return
	}
	if !isToken(method) {
		m.fail(400, "bad method")
		return
	}
	m.method, m.ruri = method, ruri
	if !isSIPVersion(version) {
		m.fail(400, "bad SIP-Version")
		return
	}
	if !strings.EqualFold(version, "SIP/2.0") {
		m.fail(505, "SIP version %s", truncate(version, 16))
		return
	}
	for i := 0; i < len(ruri); i++ {
		if c := ruri[i]; c <= ' ' || c >= 0x7f {
			m.fail(400, "bad Request-URI")
			return
		}
	}
	colon := strings.IndexByte(ruri, ':')
	if colon <= 0 || !isScheme(ruri[:colon]) {
		m.fail(400, "Request-URI without a scheme")
		return
	}
	supported := false
	for _, s := range schemes {
		supported = supported || strings.EqualFold(s, ruri[:colon])
	}
	if !supported {
		m.fail(416, "Request-URI scheme %s", truncate(ruri[:colon], 32))
		return
	}
	if err := checkURI(ruri, uriRequestLine); err != nil {
		m.fail(400, "Request-URI: %v", err)
	}
}

func isSIPVersion(v string) bool {
	if len(v) < 7 || !strings.EqualFold(v[:4], "SIP/") {
		return false
	}
	major, minor, ok := strings.Cut(v[4:], ".")
	return ok && isDigits(major) && isDigits(minor)
}

func (m *wireMsg) checkStatusLine() {
	version, rest, ok := strings.Cut(m.start, " ")
	if !ok || version != "SIP/2.0" {
		m.fail(400, "bad Status-Line")
		return
	}
	status, phrase, hasPhrase := strings.Cut(rest, " ")
	if code, ok := number(status, 699); !ok || len(status) != 3 || code < 100 {
		m.fail(400, "bad status code")
		return
	}
	if hasPhrase && ctlOutsideQuotedPair(phrase) >= 0 {
		m.fail(400, "control character in the reason phrase")
	}
}

// checkResponseVia drops responses not addressed to us: RFC 3261 §18.1.2,
// the top Via sent-by must be what this proxy inserts, one of its hosts
// and one of its listening ports.
func (p *Proxy) checkResponseVia(m *wireMsg) {
	if !m.viaOK || len(m.vias) == 0 {
		m.fail(400, "no valid Via")
		return
	}
	top := m.vias[0]
	port := top.port
	if port == 0 {
		port = sip.DefaultPort(top.transport)
	}
	if !p.isOwnSentBy(top.host, port) {
		m.fail(400, "top Via %s is not ours", truncate(top.sentBy, 64))
	}
}

// isOwnSentBy reports whether host:port is a sent-by this proxy puts in
// its Via: its host (or an alias or listening IP) and a listening port, or
// an advertised address.
func (p *Proxy) isOwnSentBy(host string, port int) bool {
	if p.isAdvertised(sip.Uri{Host: host, Port: port}) {
		return true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.selfHosts[strings.ToLower(strings.Trim(host, "[]"))] {
		return false
	}
	for _, l := range p.listeners {
		if l.addr.Port == port {
			return true
		}
	}
	return false
}

// synthesizeBranch gives an RFC 2543 request without From tag and RFC 3261
// branch a branch made of its RFC 2543 transaction identity (RFC 3261
// §17.2.3: Request-URI, From tag, Call-ID, CSeq number, top Via; the To tag
// and the CSeq method left out so that ACK and CANCEL match the INVITE):
// sipgo cannot key a transaction without one of the two.
func (m *wireMsg) synthesizeBranch() {
	if !m.viaOK || len(m.vias) == 0 {
		return
	}
	top := &m.vias[0]
	if b, ok := top.param("branch"); ok && strings.HasPrefix(b, sip.RFC3261BranchMagicCookie) && len(b) > len(sip.RFC3261BranchMagicCookie) {
		return
	}
	from := m.first("from")
	if from == nil || strings.Contains(strings.ToLower(from.canon), ";tag=") {
		return
	}
	h := fnv.New64a()
	cseqNum, _, _ := strings.Cut(m.first("cseq").canon, " ")
	for _, s := range []string{m.ruri, top.String(), m.first("call-id").canon, cseqNum, from.canon} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	params := top.params[:0:0]
	for _, pr := range top.params {
		if !strings.EqualFold(pr.name, "branch") {
			params = append(params, pr)
		}
	}
	top.params = append(params, viaParam{"branch", sip.RFC3261BranchMagicCookie + "-2543-" + strconv.FormatUint(h.Sum64(), 36)})
	for i := range m.fields {
		if m.fields[i].key == "via" {
			m.fields[i].canon = joinVia("", m.vias)
			m.verbatim = false
			return
		}
	}
}

// render writes the canonical message.
func (m *wireMsg) render() []byte {
	if m.verbatim {
		return m.raw
	}
	n := len(m.start) + len(m.body) + 40
	for _, f := range m.fields {
		n += len(f.name) + 4 + max(len(f.canon), len(f.value))
	}
	var b bytes.Buffer
	b.Grow(n)
	b.WriteString(m.start)
	b.WriteString("\r\n")
	for _, f := range m.fields {
		b.WriteString(f.name)
		b.WriteString(": ")
		if f.canon != "" {
			b.WriteString(f.canon)
		} else {
			b.WriteString(f.value)
		}
		b.WriteString("\r\n")
	}
	if !m.hasCL {
		b.WriteString("Content-Length: ")
		b.WriteString(strconv.Itoa(len(m.body)))
		b.WriteString("\r\n")
	}
	b.WriteString("\r\n")
	b.Write(m.body)
	return b.Bytes()
}

// rejection builds the stateless answer to a refused request (RFC 3261
// §8.2.6: Via, From, To with a tag, Call-ID, CSeq copied; extra header
// lines, each ending in CRLF, added) and where it goes over UDP
// (§18.2.2: the source address, the top Via's port or rport). A To tag
// it adds starts with tagPrefix, by which the ACK of an INVITE's
// rejection is recognised and absorbed. reason "" gives the bare reason
// phrase.
func (m *wireMsg) rejection(code int, reason, tagPrefix string, src net.Addr, extra ...string) (resp []byte, dest string) {
	var b strings.Builder
	if reason != "" {
		fmt.Fprintf(&b, "SIP/2.0 %d %s (%s)\r\n", code, statusText(code), printable(reason, 120))
	} else {
		fmt.Fprintf(&b, "SIP/2.0 %d %s\r\n", code, statusText(code))
	}
	srcHost, srcPort := "", 0
	if ua, ok := src.(*net.UDPAddr); ok {
		srcHost, srcPort = ua.IP.String(), ua.Port
	} else if ta, ok := src.(*net.TCPAddr); ok {
		srcHost, srcPort = ta.IP.String(), ta.Port
	}
	topDone := false
	for _, f := range m.fields {
		if f.key != "via" {
			continue
		}
		v := f.value
		if f.canon != "" {
			v = f.canon
		} else if ctlOutsideQuotedPair(v) >= 0 {
			continue
		}
		if !topDone && m.viaOK && srcHost != "" {
			top := m.vias[0]
			rport := false
			for i, pr := range top.params {
				if strings.EqualFold(pr.name, "rport") && pr.value == "" {
					top.params[i].value, rport = strconv.Itoa(srcPort), true
				}
			}
			if rport || top.host != srcHost {
				top.params = append(top.params[:len(top.params):len(top.params)], viaParam{"received", srcHost})
			}
			rest := joinVia("", m.vias[1:])
			v = top.String()
			if rest != "" {
				v += ", " + rest
			}
			port := top.port
			if port == 0 {
				port = sip.DefaultPort(top.transport)
			}
			if rport {
				port = srcPort
			}
			dest = net.JoinHostPort(srcHost, strconv.Itoa(port))
		}
		topDone = true
		b.WriteString("Via: " + v + "\r\n")
	}
	for _, k := range []string{"from", "to", "call-id", "cseq"} {
		// The first field of each, when valid: an invalid value sent back
		// could break the client's parser as it broke ours.
		f := m.first(k)
		if f == nil || f.canon == "" {
			continue
		}
		v := f.canon
		if k == "to" && !strings.Contains(strings.ToLower(v), ";tag=") {
			var t [8]byte
			_, _ = rand.Read(t[:])
			v += ";tag=" + tagPrefix + hex.EncodeToString(t[:])
		}
		b.WriteString(canonicalName(k) + ": " + v + "\r\n")
	}
	for _, h := range extra {
		b.WriteString(h)
	}
	b.WriteString("Content-Length: 0\r\n\r\n")
	return []byte(b.String()), dest
}

func statusText(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 416:
		return "Unsupported URI Scheme"
	case 503:
		return "Service Unavailable"
	case 505:
		return "Version Not Supported"
	case 513:
		return "Message Too Large"
	}
	return "Error"
}

func canonicalName(key string) string {
	switch key {
	case "call-id":
		return "Call-ID"
	case "cseq":
		return "CSeq"
	}
	parts := strings.Split(key, "-")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToUpper(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, "-")
}

// ctlOutsideQuotedPair returns the first control character of v (CTL but
// HTAB, RFC 3261 §25.1) that is not the second octet of a quoted-pair in a
// quoted string, or -1. A quoted-pair may hold any octet but CR and LF.
func ctlOutsideQuotedPair(v string) int {
	// Fast path: most values have neither a quote nor a control character.
	i := 0
	for i < len(v) && !ctlOrQuote[v[i]] {
		i++
	}
	if i == len(v) {
		return -1
	}
	inQuote := false
	for ; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '"':
			inQuote = !inQuote
		case c == '\\' && inQuote && i+1 < len(v) && v[i+1] != '\r' && v[i+1] != '\n':
			i++
		case c < 0x20 && c != '\t' || c == 0x7f:
			return int(c)
		}
	}
	return -1
}

// ctlOrQuote marks the octets ctlOutsideQuotedPair must look at.
var ctlOrQuote = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = c != '\t'
	}
	t[0x7f], t['"'] = true, true
	return t
}()

// printable shortens s to n bytes and escapes what is not printable ASCII,
// for logs and reason phrases.
func printable(s string, n int) string {
	s = truncate(s, n)
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			q := strconv.QuoteToASCII(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}
