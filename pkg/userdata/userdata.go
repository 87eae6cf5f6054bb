// Package userdata models the Cx user profile, the XML document carried in
// the User-Data AVP of SAA and PPR (TS 29.229 §6.3.15), whose schema is
// CxDataType.xsd in TS 29.228 Annex E (UML model in Annex B, data semantics
// in §6.6). The HSS builds an IMSSubscription from its tables and calls
// Marshal; the S-CSCF calls Parse and looks profiles and iFCs up with
// ProfileFor and SortedIFCs.
//
// There is no XSD validator in Go: Parse and Marshal check the structure and
// the enumerations in code (see IMSSubscription.Validate) and report the
// first problem as a *ValidationError that names the element.
package userdata

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ValidationError reports a document that does not follow TS 29.228 Annex E.
// Path names the element, XPath style with 1-based indexes, for example
// "IMSSubscription/ServiceProfile[1]/InitialFilterCriteria[2]/Priority".
type ValidationError struct {
	Path string
	Msg  string
}

func (e *ValidationError) Error() string { return "userdata: " + e.Path + ": " + e.Msg }

func invalid(path, format string, args ...any) error {
	return &ValidationError{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// ErrSyntax is wrapped by the errors Parse returns for input that is not
// well-formed XML or whose element text does not fit its type.
var ErrSyntax = errors.New("userdata: malformed XML")

const rootName = "IMSSubscription"

// Parse decodes and validates a User-Data document (TS 29.228 Annex E). The
// root element must be IMSSubscription; booleans may be 0/1 or true/false;
// unknown elements (the schema's xs:any extension points) are ignored. The
// document may declare UTF-8, US-ASCII or ISO-8859-1.
//
// Errors: a *ValidationError for a wrong root element, a duplicate SPT
// condition or a failed semantic check (see Validate); an error wrapping
// ErrSyntax for malformed XML. Parse never panics.
func Parse(data []byte) (*IMSSubscription, error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	d.CharsetReader = charsetReader
	var root xml.StartElement
	for found := false; !found; {
		tok, err := d.Token()
		if err == io.EOF {
			return nil, fmt.Errorf("%w: no root element", ErrSyntax)
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			root, found = t.Copy(), true
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("%w: text before the root element", ErrSyntax)
			}
		}
	}
	if root.Name.Local != rootName {
		return nil, invalid(rootName, "root element is <%s>, want <%s>", clip([]byte(root.Name.Local)), rootName)
	}
	var sub IMSSubscription
	if err := d.DecodeElement(&sub, &root); err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: after the root element: %v", ErrSyntax, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			return nil, fmt.Errorf("%w: second root element <%s>", ErrSyntax, clip([]byte(t.Name.Local)))
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("%w: text after the root element", ErrSyntax)
			}
		}
	}
	sub.normalize()
	if err := sub.Validate(); err != nil {
		return nil, err
	}
	return &sub, nil
}

// Marshal validates s (see Validate) and encodes it as a User-Data document:
// the XML declaration `<?xml version="1.0" encoding="UTF-8"?>`, then the
// IMSSubscription element with the xsi schema-location attributes, booleans
// as 0/1, optional elements omitted when empty (TS 29.228 Annex E).
func Marshal(s *IMSSubscription) ([]byte, error) {
	if s == nil {
		return nil, invalid(rootName, "nil subscription")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	start := xml.StartElement{
		Name: xml.Name{Local: rootName},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "xmlns:xsi"}, Value: "http://www.w3.org/2001/XMLSchema-instance"},
			{Name: xml.Name{Local: "xsi:noNamespaceSchemaLocation"}, Value: "CxDataType.xsd"},
		},
	}
	if err := enc.EncodeElement(s, start); err != nil {
		return nil, fmt.Errorf("userdata: encoding: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("userdata: encoding: %w", err)
	}
	return buf.Bytes(), nil
}

// charsetReader lets documents declare US-ASCII or ISO-8859-1 (some HSSes do).
func charsetReader(label string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(label) {
	case "us-ascii", "ascii", "iso-8859-1", "iso_8859-1", "latin1", "l1":
		raw, err := io.ReadAll(input)
		if err != nil {
			return nil, err
		}
		out := make([]byte, 0, len(raw))
		for _, b := range raw {
			out = utf8.AppendRune(out, rune(b))
		}
		return bytes.NewReader(out), nil
	}
	return nil, fmt.Errorf("unsupported encoding %q", clip([]byte(label)))
}

// normalize trims the white space that the anyURI-typed elements may carry.
func (s *IMSSubscription) normalize() {
	s.PrivateID = strings.TrimSpace(s.PrivateID)
	for i := range s.ServiceProfiles {
		for j := range s.ServiceProfiles[i].InitialFilterCriteria {
			as := &s.ServiceProfiles[i].InitialFilterCriteria[j].ApplicationServer
			as.ServerName = strings.TrimSpace(as.ServerName)
		}
	}
}

// Validate checks what CxDataType.xsd (TS 29.228 Annex E) and §6.6 require
// beyond well-formedness:
//   - PrivateID is present; there is at least one ServiceProfile, each with
//     at least one PublicIdentity;
//   - every Identity is a sip:, sips: or tel: URI, appears once in the
//     subscription, and has a valid IdentityType (0..3); the wildcarded types
//     may carry a '!'-delimited regular expression (TS 23.003 §13.5), which
//     must compile; WildcardedPSI and WildcardedIMPU go with their type;
//   - iFC Priority is unique within a profile; ServerName is a sip: or sips:
//     URI; DefaultHandling is 0..1; ProfilePartIndicator is 0..1;
//   - a TriggerPoint has at least one SPT; each SPT has at least one Group
//     and exactly one of RequestURI, Method, SIPHeader, SessionCase (0..4),
//     SessionDescription; RegistrationType is 0..2; Content regular
//     expressions compile.
//
// It returns the first problem as a *ValidationError.
func (s *IMSSubscription) Validate() error {
	if s == nil {
		return invalid(rootName, "nil subscription")
	}
	if s.PrivateID == "" {
		return invalid(rootName+"/PrivateID", "missing or empty")
	}
	if hasSpaceOrControl(s.PrivateID) {
		return invalid(rootName+"/PrivateID", "contains white space or control characters")
	}
	if len(s.ServiceProfiles) == 0 {
		return invalid(rootName+"/ServiceProfile", "at least one ServiceProfile is required")
	}
	seen := make(map[string]string)
	for i := range s.ServiceProfiles {
		if err := s.ServiceProfiles[i].validate(fmt.Sprintf("%s/ServiceProfile[%d]", rootName, i+1), seen); err != nil {
			return err
		}
	}
	return nil
}

func (sp *ServiceProfile) validate(path string, seen map[string]string) error {
	if len(sp.PublicIdentities) == 0 {
		return invalid(path+"/PublicIdentity", "at least one PublicIdentity is required")
	}
	for i := range sp.PublicIdentities {
		p := fmt.Sprintf("%s/PublicIdentity[%d]", path, i+1)
		pi := &sp.PublicIdentities[i]
		if err := pi.validate(p); err != nil {
			return err
		}
		key := canonicalURI(pi.Identity)
		if prev, dup := seen[key]; dup {
			return invalid(p+"/Identity", "%q already appears at %s", clip([]byte(pi.Identity)), prev)
		}
		seen[key] = p
	}
	prio := make(map[int]int)
	for i := range sp.InitialFilterCriteria {
		p := fmt.Sprintf("%s/InitialFilterCriteria[%d]", path, i+1)
		ifc := &sp.InitialFilterCriteria[i]
		if j, dup := prio[ifc.Priority]; dup {
			return invalid(p+"/Priority", "priority %d is also used by InitialFilterCriteria[%d]; priorities must be unique within a ServiceProfile", ifc.Priority, j+1)
		}
		prio[ifc.Priority] = i
		if err := ifc.validate(p); err != nil {
			return err
		}
	}
	return nil
}

func (pi *PublicIdentity) validate(path string) error {
	if pi.IdentityType > IdentityWildcardedIMPU {
		return invalid(path+"/Extension/IdentityType", "value %d out of range 0..3", pi.IdentityType)
	}
	if err := checkURI(pi.Identity, true); err != nil {
		return invalid(path+"/Identity", "%v", err)
	}
	if pi.IdentityType.Wildcarded() {
		if _, err := wildcardRegexp(pi.Identity); err != nil {
			return invalid(path+"/Identity", "%v", err)
		}
	}
	if pi.WildcardedPSI != "" {
		if pi.IdentityType != IdentityWildcardedPSI {
			return invalid(path+"/Extension/WildcardedPSI", "present but IdentityType is %v, want %v", pi.IdentityType, IdentityWildcardedPSI)
		}
		if err := checkWildcard(pi.WildcardedPSI); err != nil {
			return invalid(path+"/Extension/WildcardedPSI", "%v", err)
		}
	}
	if pi.WildcardedIMPU != "" {
		if pi.IdentityType != IdentityWildcardedIMPU {
			return invalid(path+"/Extension/WildcardedIMPU", "present but IdentityType is %v, want %v", pi.IdentityType, IdentityWildcardedIMPU)
		}
		if err := checkWildcard(pi.WildcardedIMPU); err != nil {
			return invalid(path+"/Extension/WildcardedIMPU", "%v", err)
		}
	}
	return nil
}

func checkWildcard(s string) error {
	if err := checkURI(s, true); err != nil {
		return err
	}
	_, err := wildcardRegexp(s)
	return err
}

func (f *InitialFilterCriteria) validate(path string) error {
	as := &f.ApplicationServer
	if err := checkURI(as.ServerName, false); err != nil {
		return invalid(path+"/ApplicationServer/ServerName", "%v", err)
	}
	if as.DefaultHandling != nil && *as.DefaultHandling > SessionTerminated {
		return invalid(path+"/ApplicationServer/DefaultHandling", "value %d out of range 0..1", *as.DefaultHandling)
	}
	if f.ProfilePartIndicator != nil && *f.ProfilePartIndicator > ProfilePartUnregistered {
		return invalid(path+"/ProfilePartIndicator", "value %d out of range 0..1", *f.ProfilePartIndicator)
	}
	tp := f.TriggerPoint
	if tp == nil {
		return nil
	}
	if len(tp.SPTs) == 0 {
		return invalid(path+"/TriggerPoint/SPT", "a TriggerPoint needs at least one SPT")
	}
	for i := range tp.SPTs {
		if err := tp.SPTs[i].validate(fmt.Sprintf("%s/TriggerPoint/SPT[%d]", path, i+1)); err != nil {
			return err
		}
	}
	return nil
}

func (s *SPT) validate(path string) error {
	if len(s.Groups) == 0 {
		return invalid(path+"/Group", "at least one Group is required")
	}
	var names []string
	if s.RequestURI != nil {
		names = append(names, "RequestURI")
		if strings.TrimSpace(*s.RequestURI) == "" {
			return invalid(path+"/RequestURI", "empty")
		}
	}
	if s.Method != nil {
		names = append(names, "Method")
		if *s.Method == "" || hasSpaceOrControl(*s.Method) {
			return invalid(path+"/Method", "%q is not a SIP method token", clip([]byte(*s.Method)))
		}
	}
	if s.SIPHeader != nil {
		names = append(names, "SIPHeader")
		if strings.TrimSpace(s.SIPHeader.Header) == "" {
			return invalid(path+"/SIPHeader/Header", "missing or empty")
		}
		if err := checkRegexp(s.SIPHeader.Content); err != nil {
			return invalid(path+"/SIPHeader/Content", "%v", err)
		}
	}
	if s.SessionCase != nil {
		names = append(names, "SessionCase")
		if *s.SessionCase > SessionCaseOriginatingCDIV {
			return invalid(path+"/SessionCase", "value %d out of range 0..4", *s.SessionCase)
		}
	}
	if s.SessionDescription != nil {
		names = append(names, "SessionDescription")
		if strings.TrimSpace(s.SessionDescription.Line) == "" {
			return invalid(path+"/SessionDescription/Line", "missing or empty")
		}
		if err := checkRegexp(s.SessionDescription.Content); err != nil {
			return invalid(path+"/SessionDescription/Content", "%v", err)
		}
	}
	switch len(names) {
	case 0:
		return invalid(path, "no condition element; exactly one of RequestURI, Method, SIPHeader, SessionCase, SessionDescription is required")
	case 1:
	default:
		return invalid(path, "has %d condition elements (%s); exactly one is allowed", len(names), strings.Join(names, ", "))
	}
	for i, r := range s.RegistrationTypes {
		if r > RegistrationDeRegistration {
			return invalid(fmt.Sprintf("%s/Extension/RegistrationType[%d]", path, i+1), "value %d out of range 0..2", r)
		}
	}
	return nil
}

func checkRegexp(p *string) error {
	if p == nil {
		return nil
	}
	if _, err := regexp.Compile(*p); err != nil {
		return fmt.Errorf("not a valid regular expression: %v", err)
	}
	return nil
}

func hasSpaceOrControl(s string) bool {
	return strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError
	}) >= 0
}

// checkURI checks that s looks like a sip: or sips: URI (with a host), or,
// when tel is true, also a tel: URI. It is a sanity check, not an RFC 3261
// parser.
func checkURI(s string, tel bool) error {
	if s == "" {
		return errors.New("missing or empty")
	}
	if hasSpaceOrControl(s) {
		return fmt.Errorf("%q contains white space or control characters", clip([]byte(s)))
	}
	scheme, rest, _ := strings.Cut(s, ":")
	switch strings.ToLower(scheme) {
	case "sip", "sips":
		host := rest
		if i := strings.LastIndexByte(host, '@'); i >= 0 {
			if i == 0 {
				return fmt.Errorf("%q has an empty user part", clip([]byte(s)))
			}
			host = host[i+1:]
		}
		if i := strings.IndexAny(host, ";?"); i >= 0 {
			host = host[:i]
		}
		if host == "" {
			return fmt.Errorf("%q has no host", clip([]byte(s)))
		}
		return nil
	case "tel":
		if tel {
			if rest == "" || rest[0] == ';' {
				return fmt.Errorf("%q has no number", clip([]byte(s)))
			}
			return nil
		}
	}
	if tel {
		return fmt.Errorf("%q is not a sip:, sips: or tel: URI", clip([]byte(s)))
	}
	return fmt.Errorf("%q is not a sip: or sips: URI", clip([]byte(s)))
}

// wildcardRegexp turns a wildcarded identity (TS 23.003 §13.5: literal text
// with one regular expression between two '!' marks) into an anchored
// regular expression. It returns nil, nil for text without '!'.
func wildcardRegexp(pattern string) (*regexp.Regexp, error) {
	before, after, ok := strings.Cut(pattern, "!")
	if !ok {
		return nil, nil
	}
	expr, suffix, ok := strings.Cut(after, "!")
	if !ok {
		return nil, fmt.Errorf("wildcard %q has an opening '!' but no closing '!'", clip([]byte(pattern)))
	}
	// Compiling the expression alone first guarantees balanced groups, so
	// wrapping it cannot change the anchoring.
	if _, err := regexp.Compile(expr); err != nil {
		return nil, fmt.Errorf("wildcard %q: %v", clip([]byte(pattern)), err)
	}
	re, err := regexp.Compile("^" + regexp.QuoteMeta(before) + "(?:" + expr + ")" + regexp.QuoteMeta(suffix) + "$")
	if err != nil {
		return nil, fmt.Errorf("wildcard %q: %v", clip([]byte(pattern)), err)
	}
	return re, nil
}
