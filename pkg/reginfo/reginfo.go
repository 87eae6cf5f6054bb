// Package reginfo encodes and decodes the body of the SIP registration event
// package, application/reginfo+xml (RFC 3680 §5.3, namespace
// urn:ietf:params:xml:ns:reginfo), with the optional GRUU extension of
// RFC 5628 (namespace urn:ietf:params:xml:ns:gruuinfo). The S-CSCF sends
// it in NOTIFY to the P-CSCF and the UE (TS 24.229 §5.4.2.1.2); the
// P-CSCF and UE parse it.
//
// Keeping the version counter of each subscription (RFC 3680 §5.3: it
// starts at 0 and grows by one with each NOTIFY of the subscription) and
// choosing between full and partial state is the notifier's job: Full and
// Partial only build the document.
//
// Parse and Marshal validate what the RFC 3680 schema requires (see
// Reginfo.Validate); there is no XSD validator. Nothing here panics on bad
// input.
package reginfo

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Namespaces and the MIME type (RFC 3680 §5.3 and §7, RFC 5628 §4).
const (
	Namespace     = "urn:ietf:params:xml:ns:reginfo"
	GRUUNamespace = "urn:ietf:params:xml:ns:gruuinfo"
	ContentType   = "application/reginfo+xml"
)

// DocState is the state attribute of reginfo: whether the document holds
// the full registration state or only what changed.
type DocState string

// DocState values (RFC 3680 §5.3).
const (
	StateFull    DocState = "full"
	StatePartial DocState = "partial"
)

// RegState is the state of a registration (an address-of-record), RFC 3680
// §5.3 and the state machine of §5.2.
type RegState string

// RegState values.
const (
	RegInit       RegState = "init"
	RegActive     RegState = "active"
	RegTerminated RegState = "terminated"
)

// ContactState is the state of one contact (binding) of a registration.
type ContactState string

// ContactState values (RFC 3680 §5.3).
const (
	ContactActive     ContactState = "active"
	ContactTerminated ContactState = "terminated"
)

// Event is the event attribute of a contact: what brought it into its
// current state (RFC 3680 §5.2.2).
type Event string

// Event values. Registered, Created, Refreshed and Shortened go with
// ContactActive; Expired, Deactivated, Probation, Unregistered and Rejected
// with ContactTerminated.
const (
	EventRegistered   Event = "registered"
	EventCreated      Event = "created"
	EventRefreshed    Event = "refreshed"
	EventShortened    Event = "shortened"
	EventExpired      Event = "expired"
	EventDeactivated  Event = "deactivated"
	EventProbation    Event = "probation"
	EventUnregistered Event = "unregistered"
	EventRejected     Event = "rejected"
)

// Reginfo is the reginfo root element.
type Reginfo struct {
	// Version counts the documents sent in one subscription, from 0
	// (xs:nonNegativeInteger).
	Version int
	// State is StateFull or StatePartial.
	State DocState
	// Registrations holds one entry per address-of-record.
	Registrations []Registration
}

// Registration is one registration element: the bindings of an
// address-of-record.
type Registration struct {
	// AOR is the address-of-record (a URI), required.
	AOR string
	// ID identifies the registration within the subscription, required.
	ID string
	// State is RegInit, RegActive or RegTerminated.
	State RegState
	// Contacts holds the contacts bound to AOR.
	Contacts []Contact
}

// Contact is one contact element.
type Contact struct {
	// ID identifies the contact within the registration, required.
	ID string
	// State is ContactActive or ContactTerminated.
	State ContactState
	// Event is what moved the contact into State.
	Event Event
	// DurationRegistered is how long the contact has been registered, in
	// seconds; nil when absent.
	DurationRegistered *int
	// Expires is the remaining lifetime in seconds; nil when absent.
	Expires *int
	// RetryAfter is, with EventProbation, when to re-register, in seconds;
	// nil when absent.
	RetryAfter *int
	// Q is the contact's q value as written ("0.8"), "" when absent; it
	// must be a qvalue (RFC 3261 §25.1: 0 to 1 with at most three
	// decimals).
	Q string
	// CallID and CSeq are those of the REGISTER that last refreshed the
	// contact; CallID "" and CSeq nil when absent.
	CallID string
	CSeq   *uint32
	// URI is the contact URI, required.
	URI string
	// DisplayName is the display name; DisplayNameLang its xml:lang.
	DisplayName     string
	DisplayNameLang string
	// UnknownParams are the contact's header parameters that have no
	// attribute of their own (for example +sip.instance or reg-id).
	UnknownParams []UnknownParam
	// PubGRUU is the public GRUU of the contact (RFC 5628 §4), "" when
	// absent.
	PubGRUU string
	// TempGRUU is the most recent temporary GRUU (RFC 5628 §4), nil when
	// absent.
	TempGRUU *TempGRUU
}

// UnknownParam is an unknown-param element: a contact parameter name with
// an optional value ("" when the parameter has none).
type UnknownParam struct {
	Name  string
	Value string
}

// TempGRUU is the gr:temp-gruu element of RFC 5628: the temporary GRUU and
// the CSeq of the REGISTER that first created the contact's temporary
// GRUUs.
type TempGRUU struct {
	URI       string
	FirstCSeq uint32
}

// Full returns a full-state document holding regs (RFC 3680 §5.3: a
// notifier sends full state in the first NOTIFY of a subscription). The
// caller supplies the subscription's current version.
func Full(version int, regs ...Registration) *Reginfo {
	return &Reginfo{Version: version, State: StateFull, Registrations: regs}
}

// Partial returns a partial-state document holding only the registrations
// and contacts that changed.
func Partial(version int, regs ...Registration) *Reginfo {
	return &Reginfo{Version: version, State: StatePartial, Registrations: regs}
}

// ValidationError reports a document that breaks the RFC 3680 schema; Path
// names the element or attribute, e.g. "reginfo/registration[1]/@aor"
// (indexes from 1).
type ValidationError struct {
	Path string
	Msg  string
}

func (e *ValidationError) Error() string {
	return "reginfo: " + e.Path + ": " + e.Msg
}

// ErrSyntax is wrapped by Parse errors for input that is not well-formed XML
// or whose attribute values do not fit their types.
var ErrSyntax = errors.New("reginfo: malformed XML")

func invalid(path, format string, a ...any) error {
	return &ValidationError{Path: path, Msg: fmt.Sprintf(format, a...)}
}

// Validate checks r against the RFC 3680 schema (and RFC 5628 for GRUUs):
// Version ≥ 0; State, each registration State, contact State and Event from
// their enumerations; every registration has AOR and ID; every contact has
// ID and URI; durations are ≥ 0; Q is a qvalue; unknown-param names are
// not empty; a TempGRUU has a URI. It returns the first problem as a
// *ValidationError.
func (r *Reginfo) Validate() error {
	if r == nil {
		return invalid("reginfo", "nil document")
	}
	if r.Version < 0 {
		return invalid("reginfo/@version", "%d is negative", r.Version)
	}
	switch r.State {
	case StateFull, StatePartial:
	default:
		return invalid("reginfo/@state", "%q is not full or partial", r.State)
	}
	for i := range r.Registrations {
		g := &r.Registrations[i]
		p := fmt.Sprintf("reginfo/registration[%d]", i+1)
		if strings.TrimSpace(g.AOR) == "" {
			return invalid(p+"/@aor", "missing")
		}
		if strings.TrimSpace(g.ID) == "" {
			return invalid(p+"/@id", "missing")
		}
		switch g.State {
		case RegInit, RegActive, RegTerminated:
		default:
			return invalid(p+"/@state", "%q is not init, active or terminated", g.State)
		}
		for j := range g.Contacts {
			if err := g.Contacts[j].validate(fmt.Sprintf("%s/contact[%d]", p, j+1)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Contact) validate(p string) error {
	if strings.TrimSpace(c.ID) == "" {
		return invalid(p+"/@id", "missing")
	}
	switch c.State {
	case ContactActive, ContactTerminated:
	default:
		return invalid(p+"/@state", "%q is not active or terminated", c.State)
	}
	switch c.Event {
	case EventRegistered, EventCreated, EventRefreshed, EventShortened, EventExpired,
		EventDeactivated, EventProbation, EventUnregistered, EventRejected:
	default:
		return invalid(p+"/@event", "%q is not a contact event of RFC 3680", c.Event)
	}
	for _, d := range []struct {
		name string
		v    *int
	}{{"duration-registered", c.DurationRegistered}, {"expires", c.Expires}, {"retry-after", c.RetryAfter}} {
		if d.v != nil && *d.v < 0 {
			return invalid(p+"/@"+d.name, "%d is negative", *d.v)
		}
	}
	if c.Q != "" && !isQValue(c.Q) {
		return invalid(p+"/@q", "%q is not a qvalue", c.Q)
	}
	if strings.TrimSpace(c.URI) == "" {
		return invalid(p+"/uri", "missing")
	}
	for k, u := range c.UnknownParams {
		if strings.TrimSpace(u.Name) == "" {
			return invalid(fmt.Sprintf("%s/unknown-param[%d]/@name", p, k+1), "missing")
		}
	}
	if c.TempGRUU != nil && strings.TrimSpace(c.TempGRUU.URI) == "" {
		return invalid(p+"/temp-gruu/@uri", "missing")
	}
	return nil
}

// isQValue checks RFC 3261 qvalue: "0" [ "." 0*3DIGIT ] / "1" [ "." 0*3("0") ].
func isQValue(s string) bool {
	if s == "" || (s[0] != '0' && s[0] != '1') {
		return false
	}
	rest := s[1:]
	if rest == "" {
		return true
	}
	if rest[0] != '.' || len(rest) > 4 {
		return false
	}
	for _, c := range rest[1:] {
		if c < '0' || c > '9' || (s[0] == '1' && c != '0') {
			return false
		}
	}
	return true
}

// Marshal validates r (see Validate) and encodes it: the XML declaration,
// then reginfo with xmlns="urn:ietf:params:xml:ns:reginfo" (and
// xmlns:gr for RFC 5628 when a contact has a GRUU), indented by two
// spaces. Optional attributes and elements are left out when empty or nil.
// Text and attribute values are escaped as encoding/xml does (EscapeText);
// the document is written directly, not through encoding/xml's reflection,
// as the S-CSCF writes one per NOTIFY (ADR 0004).
func Marshal(r *Reginfo) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	gruu := false
	for _, g := range r.Registrations {
		for _, c := range g.Contacts {
			if c.PubGRUU != "" || c.TempGRUU != nil {
				gruu = true
			}
		}
	}
	var w xmlWriter
	w.Grow(512 + 384*len(r.Registrations))
	w.WriteString(xml.Header)
	w.WriteString(`<reginfo xmlns="` + Namespace + `"`)
	if gruu {
		w.WriteString(` xmlns:gr="` + GRUUNamespace + `"`)
	}
	w.attrInt("version", int64(r.Version))
	w.attr("state", string(r.State))
	w.WriteByte('>')
	for _, g := range r.Registrations {
		w.WriteString("\n  <registration")
		w.attr("aor", g.AOR)
		w.attr("id", g.ID)
		w.attr("state", string(g.State))
		w.WriteByte('>')
		for _, c := range g.Contacts {
			w.WriteString("\n    <contact")
			w.attr("id", c.ID)
			w.attr("state", string(c.State))
			w.attr("event", string(c.Event))
			if c.DurationRegistered != nil {
				w.attrInt("duration-registered", int64(*c.DurationRegistered))
			}
			if c.Expires != nil {
				w.attrInt("expires", int64(*c.Expires))
			}
			if c.RetryAfter != nil {
				w.attrInt("retry-after", int64(*c.RetryAfter))
			}
			if c.Q != "" {
				w.attr("q", c.Q)
			}
			if c.CallID != "" {
				w.attr("callid", c.CallID)
			}
			if c.CSeq != nil {
				w.attrInt("cseq", int64(*c.CSeq))
			}
			w.WriteString(">\n      <uri>")
			w.text(c.URI)
			w.WriteString("</uri>")
			if c.DisplayName != "" || c.DisplayNameLang != "" {
				w.WriteString("\n      <display-name")
				if c.DisplayNameLang != "" {
					w.attr("xml:lang", c.DisplayNameLang)
				}
				w.WriteByte('>')
				w.text(c.DisplayName)
				w.WriteString("</display-name>")
			}
			for _, u := range c.UnknownParams {
				w.WriteString("\n      <unknown-param")
				w.attr("name", u.Name)
				w.WriteByte('>')
				w.text(u.Value)
				w.WriteString("</unknown-param>")
			}
			if c.PubGRUU != "" {
				w.WriteString("\n      <gr:pub-gruu")
				w.attr("uri", c.PubGRUU)
				w.WriteString("></gr:pub-gruu>")
			}
			if t := c.TempGRUU; t != nil {
				w.WriteString("\n      <gr:temp-gruu")
				w.attr("uri", t.URI)
				w.attrInt("first-cseq", int64(t.FirstCSeq))
				w.WriteString("></gr:temp-gruu>")
			}
			w.WriteString("\n    </contact>")
		}
		if len(g.Contacts) > 0 {
			w.WriteString("\n  ")
		}
		w.WriteString("</registration>")
	}
	if len(r.Registrations) > 0 {
		w.WriteByte('\n')
	}
	w.WriteString("</reginfo>\n")
	return w.Bytes(), nil
}

// xmlWriter writes elements and attributes with encoding/xml's escaping.
type xmlWriter struct{ bytes.Buffer }

// attr writes ` name="value"`, value escaped.
func (w *xmlWriter) attr(name, value string) {
	w.WriteByte(' ')
	w.WriteString(name)
	w.WriteString(`="`)
	w.text(value)
	w.WriteByte('"')
}

func (w *xmlWriter) attrInt(name string, v int64) {
	w.WriteByte(' ')
	w.WriteString(name)
	w.WriteString(`="`)
	w.WriteString(strconv.FormatInt(v, 10))
	w.WriteByte('"')
}

// text writes s escaped (xml.EscapeText); most values need no escaping.
func (w *xmlWriter) text(s string) {
	if !needsEscape(s) {
		w.WriteString(s)
		return
	}
	_ = xml.EscapeText(&w.Buffer, []byte(s))
}

// needsEscape tells whether xml.EscapeText would change s: a character it
// escapes, or one outside printable ASCII (which it may replace).
func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f:
			return true
		case c == '"' || c == '\'' || c == '&' || c == '<' || c == '>':
			return true
		}
	}
	return false
}

// The in* types hold a document as read (Parse, decode), by namespace;
// their tags are what xml.Decoder.DecodeElement would read them by (the
// tests decode with it to check decode).
type inReginfo struct {
	XMLName       xml.Name         `xml:"urn:ietf:params:xml:ns:reginfo reginfo"`
	Version       *string          `xml:"version,attr"`
	State         string           `xml:"state,attr"`
	Registrations []inRegistration `xml:"urn:ietf:params:xml:ns:reginfo registration"`
}

type inRegistration struct {
	AOR      string      `xml:"aor,attr"`
	ID       string      `xml:"id,attr"`
	State    string      `xml:"state,attr"`
	Contacts []inContact `xml:"urn:ietf:params:xml:ns:reginfo contact"`
}

type inContact struct {
	ID                 string           `xml:"id,attr"`
	State              string           `xml:"state,attr"`
	Event              string           `xml:"event,attr"`
	DurationRegistered *string          `xml:"duration-registered,attr"`
	Expires            *string          `xml:"expires,attr"`
	RetryAfter         *string          `xml:"retry-after,attr"`
	Q                  string           `xml:"q,attr"`
	CallID             string           `xml:"callid,attr"`
	CSeq               *string          `xml:"cseq,attr"`
	URI                []string         `xml:"urn:ietf:params:xml:ns:reginfo uri"`
	DisplayName        *inDisplayName   `xml:"urn:ietf:params:xml:ns:reginfo display-name"`
	UnknownParams      []inUnknownParam `xml:"urn:ietf:params:xml:ns:reginfo unknown-param"`
	PubGRUU            *inPubGRUU       `xml:"urn:ietf:params:xml:ns:gruuinfo pub-gruu"`
	TempGRUU           *inTempGRUU      `xml:"urn:ietf:params:xml:ns:gruuinfo temp-gruu"`
}

type inDisplayName struct {
	Lang string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Text string `xml:",chardata"`
}

type inUnknownParam struct {
	Name  string `xml:"name,attr"`
	Value string `xml:",chardata"`
}

type inPubGRUU struct {
	URI string `xml:"uri,attr"`
}

type inTempGRUU struct {
	URI       string  `xml:"uri,attr"`
	FirstCSeq *string `xml:"first-cseq,attr"`
}

// MaxSize bounds the documents Parse accepts (1 MiB).
const MaxSize = 1 << 20

// Parse decodes and validates an application/reginfo+xml body. The root
// must be reginfo in the RFC 3680 namespace; child elements of other
// namespaces (extensions) and unknown attributes are ignored, except the
// RFC 5628 pub-gruu and temp-gruu elements. Attribute and element text is
// trimmed of surrounding whitespace, except display-name and unknown-param
// values, which are kept as written.
//
// Errors: an error wrapping ErrSyntax for malformed XML, a document larger
// than MaxSize, trailing content after the root, or an integer attribute
// out of its type; a *ValidationError for a wrong root element or a failed
// Validate. Parse never panics.
func Parse(data []byte) (*Reginfo, error) {
	return parse(data, func(dec *xml.Decoder, root xml.StartElement, in *inReginfo) error { return in.decode(dec, root) })
}

// parse is Parse with the root element read by decodeRoot.
func parse(data []byte, decodeRoot func(*xml.Decoder, xml.StartElement, *inReginfo) error) (*Reginfo, error) {
	if len(data) > MaxSize {
		return nil, fmt.Errorf("%w: document of %d bytes exceeds %d", ErrSyntax, len(data), MaxSize)
	}
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.CharsetReader = charsetReader
	var root xml.StartElement
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			root = se
			break
		}
	}
	if root.Name.Local != "reginfo" || root.Name.Space != Namespace {
		return nil, invalid("reginfo", "root element is {%s}%s, want {%s}reginfo", root.Name.Space, root.Name.Local, Namespace)
	}
	var in inReginfo
	if err := decodeRoot(dec, root, &in); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		switch t := tok.(type) {
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("%w: text after the root element", ErrSyntax)
			}
		case xml.StartElement:
			return nil, fmt.Errorf("%w: second root element <%s>", ErrSyntax, t.Name.Local)
		}
	}
	r, err := in.convert()
	if err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// decode reads the reginfo element whose start tag is start from its
// tokens, as xml.Decoder.DecodeElement would fill the in* types (an
// attribute matched by its local name, the last one winning; elements of
// other names or namespaces skipped; text of nested elements left out),
// without DecodeElement's reflection: the P-CSCF parses one document per
// NOTIFY (ADR 0004).
func (in *inReginfo) decode(dec *xml.Decoder, start xml.StartElement) error {
	for _, a := range start.Attr {
		switch a.Name.Local {
		case "version":
			v := a.Value
			in.Version = &v
		case "state":
			in.State = a.Value
		}
	}
	return children(dec, func(t xml.StartElement) (bool, error) {
		if t.Name.Space != Namespace || t.Name.Local != "registration" {
			return false, nil
		}
		var g inRegistration
		err := g.decode(dec, t)
		in.Registrations = append(in.Registrations, g)
		return true, err
	})
}

func (g *inRegistration) decode(dec *xml.Decoder, start xml.StartElement) error {
	for _, a := range start.Attr {
		switch a.Name.Local {
		case "aor":
			g.AOR = a.Value
		case "id":
			g.ID = a.Value
		case "state":
			g.State = a.Value
		}
	}
	return children(dec, func(t xml.StartElement) (bool, error) {
		if t.Name.Space != Namespace || t.Name.Local != "contact" {
			return false, nil
		}
		var c inContact
		err := c.decode(dec, t)
		g.Contacts = append(g.Contacts, c)
		return true, err
	})
}

func (c *inContact) decode(dec *xml.Decoder, start xml.StartElement) error {
	for _, a := range start.Attr {
		v := a.Value
		switch a.Name.Local {
		case "id":
			c.ID = v
		case "state":
			c.State = v
		case "event":
			c.Event = v
		case "duration-registered":
			c.DurationRegistered = &v
		case "expires":
			c.Expires = &v
		case "retry-after":
			c.RetryAfter = &v
		case "q":
			c.Q = v
		case "callid":
			c.CallID = v
		case "cseq":
			c.CSeq = &v
		}
	}
	return children(dec, func(t xml.StartElement) (bool, error) {
		switch {
		case t.Name.Space == Namespace && t.Name.Local == "uri":
			text, err := elementText(dec)
			c.URI = append(c.URI, text)
			return true, err
		case t.Name.Space == Namespace && t.Name.Local == "display-name":
			if c.DisplayName == nil { // a second one is decoded into the first
				c.DisplayName = &inDisplayName{}
			}
			for _, a := range t.Attr {
				if a.Name.Space == xmlNamespace && a.Name.Local == "lang" {
					c.DisplayName.Lang = a.Value
				}
			}
			text, err := elementText(dec)
			c.DisplayName.Text = text
			return true, err
		case t.Name.Space == Namespace && t.Name.Local == "unknown-param":
			var u inUnknownParam
			for _, a := range t.Attr {
				if a.Name.Local == "name" {
					u.Name = a.Value
				}
			}
			text, err := elementText(dec)
			u.Value = text
			c.UnknownParams = append(c.UnknownParams, u)
			return true, err
		case t.Name.Space == GRUUNamespace && t.Name.Local == "pub-gruu":
			if c.PubGRUU == nil {
				c.PubGRUU = &inPubGRUU{}
			}
			for _, a := range t.Attr {
				if a.Name.Local == "uri" {
					c.PubGRUU.URI = a.Value
				}
			}
			return true, dec.Skip()
		case t.Name.Space == GRUUNamespace && t.Name.Local == "temp-gruu":
			if c.TempGRUU == nil {
				c.TempGRUU = &inTempGRUU{}
			}
			for _, a := range t.Attr {
				switch a.Name.Local {
				case "uri":
					c.TempGRUU.URI = a.Value
				case "first-cseq":
					v := a.Value
					c.TempGRUU.FirstCSeq = &v
				}
			}
			return true, dec.Skip()
		}
		return false, nil
	})
}

// xmlNamespace is the namespace of the xml: prefix (xml:lang).
const xmlNamespace = "http://www.w3.org/XML/1998/namespace"

// children reads the content of the current element up to its end tag,
// passing each child element's start to child; a child it does not take
// (false) is skipped. Text and other tokens are ignored.
func children(dec *xml.Decoder, child func(xml.StartElement) (bool, error)) error {
	for {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			took, err := child(t)
			if err != nil {
				return err
			}
			if !took {
				if err := dec.Skip(); err != nil {
					return err
				}
			}
		case xml.EndElement:
			return nil
		}
	}
}

// elementText reads the current element up to its end tag and returns its
// own text (nested elements skipped with their text).
func elementText(dec *xml.Decoder) (string, error) {
	var b []byte
	for {
		tok, err := dec.Token()
		if err != nil {
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			b = append(b, t...)
		case xml.StartElement:
			if err := dec.Skip(); err != nil {
				return "", err
			}
		case xml.EndElement:
			return string(b), nil
		}
	}
}

func charsetReader(charset string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(charset) {
	case "utf-8", "us-ascii", "ascii":
		return input, nil
	}
	return nil, fmt.Errorf("unsupported charset %q", charset)
}

func (in *inReginfo) convert() (*Reginfo, error) {
	r := &Reginfo{State: DocState(strings.TrimSpace(in.State))}
	if in.Version == nil {
		return nil, invalid("reginfo/@version", "missing")
	}
	v, err := parseNonNeg(*in.Version, "reginfo/@version")
	if err != nil {
		return nil, err
	}
	r.Version = v
	for i, g := range in.Registrations {
		p := fmt.Sprintf("reginfo/registration[%d]", i+1)
		reg := Registration{AOR: strings.TrimSpace(g.AOR), ID: strings.TrimSpace(g.ID), State: RegState(strings.TrimSpace(g.State))}
		for j, c := range g.Contacts {
			cp := fmt.Sprintf("%s/contact[%d]", p, j+1)
			oc := Contact{
				ID: strings.TrimSpace(c.ID), State: ContactState(strings.TrimSpace(c.State)), Event: Event(strings.TrimSpace(c.Event)),
				Q: strings.TrimSpace(c.Q), CallID: strings.TrimSpace(c.CallID),
			}
			for _, a := range []struct {
				name string
				in   *string
				out  **int
			}{
				{"duration-registered", c.DurationRegistered, &oc.DurationRegistered},
				{"expires", c.Expires, &oc.Expires},
				{"retry-after", c.RetryAfter, &oc.RetryAfter},
			} {
				if a.in == nil {
					continue
				}
				n, err := parseNonNeg(*a.in, cp+"/@"+a.name)
				if err != nil {
					return nil, err
				}
				*a.out = &n
			}
			if c.CSeq != nil {
				n, err := parseUint32(*c.CSeq, cp+"/@cseq")
				if err != nil {
					return nil, err
				}
				oc.CSeq = &n
			}
			if len(c.URI) > 1 {
				return nil, invalid(cp+"/uri", "appears %d times", len(c.URI))
			}
			if len(c.URI) == 1 {
				oc.URI = strings.TrimSpace(c.URI[0])
			}
			if c.DisplayName != nil {
				oc.DisplayName, oc.DisplayNameLang = c.DisplayName.Text, strings.TrimSpace(c.DisplayName.Lang)
			}
			for _, u := range c.UnknownParams {
				oc.UnknownParams = append(oc.UnknownParams, UnknownParam{Name: strings.TrimSpace(u.Name), Value: u.Value})
			}
			if c.PubGRUU != nil {
				oc.PubGRUU = strings.TrimSpace(c.PubGRUU.URI)
				if oc.PubGRUU == "" {
					return nil, invalid(cp+"/pub-gruu/@uri", "missing")
				}
			}
			if t := c.TempGRUU; t != nil {
				oc.TempGRUU = &TempGRUU{URI: strings.TrimSpace(t.URI)}
				if t.FirstCSeq == nil {
					return nil, invalid(cp+"/temp-gruu/@first-cseq", "missing")
				}
				n, err := parseUint32(*t.FirstCSeq, cp+"/temp-gruu/@first-cseq")
				if err != nil {
					return nil, err
				}
				oc.TempGRUU.FirstCSeq = n
			}
			reg.Contacts = append(reg.Contacts, oc)
		}
		r.Registrations = append(r.Registrations, reg)
	}
	return r, nil
}

func parseNonNeg(s, path string) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(strings.TrimPrefix(s, "+"))
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %q is not an integer in range", ErrSyntax, path, s)
	}
	if n < 0 {
		return 0, invalid(path, "%d is negative", n)
	}
	return n, nil
}

func parseUint32(s, path string) (uint32, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.ParseUint(strings.TrimPrefix(s, "+"), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%w: %s: %q is not a 32-bit unsigned integer", ErrSyntax, path, s)
	}
	return uint32(n), nil
}
