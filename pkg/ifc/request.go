package ifc

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/userdata"
)

// Header is one SIP header field instance: its name as written (long or
// compact form) and its value, the text after the colon with surrounding
// whitespace trimmed.
type Header struct {
	Name  string
	Value string
}

// SDPLine is one line of an SDP body (RFC 4566 §5): Type is the one-letter
// type before '=' (for example "m"), Value the text after it
// ("audio 49152 RTP/AVP 0").
type SDPLine struct {
	Type  string
	Value string
}

// Request is what service point triggers look at in an initial request
// (TS 29.228 Annex B.2.2, TS 23.218 §6). Build one with FromSIP, or
// fill the fields directly.
type Request struct {
	// Method is the SIP method, compared case-sensitively (RFC 3261 §7.1).
	Method string
	// RequestURI is the Request-URI as text.
	RequestURI string
	// Headers holds every header field instance in order. Names compare
	// case-insensitively and compact forms equal their long forms
	// (RFC 3261 §7.3.3: "i" is Call-ID, "a" Accept-Contact...).
	Headers []Header
	// SDP holds the lines of the SDP body (or of the application/sdp
	// parts of a multipart body); nil when there is none.
	SDP []SDPLine
	// SessionCase is the session case the S-CSCF serves the request in.
	SessionCase userdata.SessionCase
	// RegistrationType is the kind of REGISTER (initial, re- or
	// de-registration); it is only looked at when Method is REGISTER.
	RegistrationType userdata.RegistrationType
	// Registered tells whether the served user is registered; it selects
	// the iFCs by ProfilePartIndicator (TS 29.228 Annex B.2.2).
	Registered bool
}

// HeaderValues returns the values of every instance of header name (long
// or compact form, any case), in order; nil when absent.
func (r *Request) HeaderValues(name string) []string {
	want := canonicalHeader(name)
	var out []string
	for _, h := range r.Headers {
		if canonicalHeader(h.Name) == want {
			out = append(out, h.Value)
		}
	}
	return out
}

// compactForms maps compact header names (RFC 3261 §7.3.3 and the
// IANA SIP parameters registry) to their long forms, lower case.
var compactForms = map[string]string{
	"a": "accept-contact",
	"b": "referred-by",
	"c": "content-type",
	"d": "request-disposition",
	"e": "content-encoding",
	"f": "from",
	"i": "call-id",
	"j": "reject-contact",
	"k": "supported",
	"l": "content-length",
	"m": "contact",
	"n": "identity-info",
	"o": "event",
	"r": "refer-to",
	"s": "subject",
	"t": "to",
	"u": "allow-events",
	"v": "via",
	"x": "session-expires",
	"y": "identity",
}

// canonicalHeader returns the lower-case long form of a header name.
func canonicalHeader(name string) string {
	return strings.ToLower(longForm(strings.TrimSpace(name)))
}

// longForm expands a one-letter compact name; other names are returned
// unchanged. It does not allocate.
func longForm(name string) string {
	if len(name) == 1 {
		c := name[0]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if long, ok := compactForms[string([]byte{c})]; ok {
			return long
		}
	}
	return name
}

// sameHeader reports whether header names a and b denote the same header
// (case-insensitive, compact forms equal long forms).
func sameHeader(a, b string) bool {
	return strings.EqualFold(longForm(strings.TrimSpace(a)), longForm(strings.TrimSpace(b)))
}

// FromSIP extracts what SPTs need from req, served in session case sc.
//
//   - Method and RequestURI come from the request line.
//   - Headers keeps every header field in order with sipgo's Name and
//     Value.
//   - SDP is parsed from an application/sdp body, or from the
//     application/sdp parts of a multipart body (RFC 5621).
//   - Registered is false for the unregistered session cases
//     (TERMINATING_UNREGISTERED, ORIGINATING_UNREGISTERED) and true
//     otherwise; the S-CSCF overrides it when it knows better.
//   - RegistrationType, for REGISTER only: DE-REGISTRATION when the
//     Expires header or every Contact's expires parameter is 0, otherwise
//     INITIAL_REGISTRATION. Telling a re-registration from an initial one
//     needs the registrar's state: the caller sets RE-REGISTRATION.
//
// A nil req gives the zero Request with SessionCase sc.
func FromSIP(req *sip.Request, sc userdata.SessionCase) Request {
	r := Request{
		SessionCase: sc,
		Registered:  sc != userdata.SessionCaseTerminatingUnregistered && sc != userdata.SessionCaseOriginatingUnregistered,
	}
	if req == nil {
		return r
	}
	r.Method = string(req.Method)
	r.RequestURI = req.Recipient.String()
	hdrs := req.Headers()
	r.Headers = make([]Header, 0, len(hdrs))
	for _, h := range hdrs {
		if h == nil {
			continue
		}
		r.Headers = append(r.Headers, Header{Name: h.Name(), Value: h.Value()})
	}
	ctype := ""
	if vs := r.HeaderValues("Content-Type"); len(vs) > 0 {
		ctype = vs[0]
	}
	r.SDP = sdpFromBody(ctype, req.Body())
	if r.Method == string(sip.REGISTER) && isDeRegister(&r) {
		r.RegistrationType = userdata.RegistrationDeRegistration
	}
	return r
}

// isDeRegister reports whether a REGISTER removes its bindings: Expires 0,
// or every Contact with expires=0 (RFC 3261 §10.2.2), or "Contact: *".
func isDeRegister(r *Request) bool {
	contacts := r.HeaderValues("Contact")
	expires, hasExpires := -1, false
	if vs := r.HeaderValues("Expires"); len(vs) > 0 {
		if n, err := strconv.Atoi(strings.TrimSpace(vs[0])); err == nil {
			expires, hasExpires = n, true
		}
	}
	if len(contacts) == 0 {
		return false
	}
	if len(contacts) == 1 && strings.TrimSpace(contacts[0]) == "*" {
		return true
	}
	for _, c := range contacts {
		n, ok := contactExpires(c)
		if !ok {
			if !hasExpires || expires != 0 {
				return false
			}
			continue
		}
		if n != 0 {
			return false
		}
	}
	return true
}

// contactExpires finds an expires parameter after the address of a
// Contact value.
func contactExpires(v string) (int, bool) {
	rest := v
	if i := strings.LastIndexByte(rest, '>'); i >= 0 {
		rest = rest[i+1:]
	}
	for _, p := range strings.Split(rest, ";") {
		name, val, ok := strings.Cut(p, "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "expires") {
			continue
		}
		n, err := strconv.Atoi(strings.Trim(strings.TrimSpace(val), `"`))
		if err == nil {
			return n, true
		}
	}
	return 0, false
}

// maxMultipartDepth bounds nested multipart bodies.
const maxMultipartDepth = 4

func sdpFromBody(ctype string, body []byte) []SDPLine {
	return sdpFromPart(ctype, body, 0)
}

func sdpFromPart(ctype string, body []byte, depth int) []SDPLine {
	if len(body) == 0 || ctype == "" {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ctype)
	if err != nil {
		return nil
	}
	switch {
	case mt == "application/sdp":
		return ParseSDP(body)
	case strings.HasPrefix(mt, "multipart/") && depth < maxMultipartDepth:
		boundary := params["boundary"]
		if boundary == "" {
			return nil
		}
		var out []SDPLine
		mr := multipart.NewReader(bytes.NewReader(body), boundary)
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				break
			}
			data, err := io.ReadAll(io.LimitReader(p, int64(len(body))))
			if err != nil {
				break
			}
			out = append(out, sdpFromPart(p.Header.Get("Content-Type"), data, depth+1)...)
		}
		return out
	}
	return nil
}

// ParseSDP splits an SDP body into its type=value lines (RFC 4566 §5).
// Lines end with CRLF or LF; lines without '=' after a one-character type
// are skipped. It never fails.
func ParseSDP(body []byte) []SDPLine {
	var out []SDPLine
	s := string(body)
	for len(s) > 0 {
		line := s
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			line, s = s[:i], s[i+1:]
		} else {
			s = ""
		}
		line = strings.TrimSuffix(line, "\r")
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		out = append(out, SDPLine{Type: line[:1], Value: line[2:]})
	}
	return out
}
