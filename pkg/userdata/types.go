package userdata

import (
	"encoding/xml"
	"fmt"
	"strings"
)

// IMSSubscription is the root of the Cx user profile (TS 29.228 Annex E,
// tIMSSubscription; UML model in Annex B.2.1): one private identity and the
// service profiles of the public identities that belong to it. It is the
// content of the User-Data AVP of SAA and PPR (TS 29.229 §6.3.15).
type IMSSubscription struct {
	// PrivateID is the IMPI, in NAI form (user@realm).
	PrivateID string `xml:"PrivateID"`
	// ServiceProfiles holds one or more profiles (ServiceProfile+).
	ServiceProfiles []ServiceProfile `xml:"ServiceProfile"`
}

// ServiceProfile is tServiceProfile (TS 29.228 Annex E, Annex B.2.1): the
// public identities sharing one set of services and their iFCs.
type ServiceProfile struct {
	// PublicIdentities holds one or more entries (PublicIdentity+).
	PublicIdentities []PublicIdentity `xml:"PublicIdentity"`
	// CoreNetworkServicesAuthorization is optional (Annex B.2.4).
	CoreNetworkServicesAuthorization *CoreNetworkServicesAuthorization `xml:"CoreNetworkServicesAuthorization,omitempty"`
	// InitialFilterCriteria holds zero or more iFCs, in document order; use
	// SortedIFCs for evaluation order.
	InitialFilterCriteria []InitialFilterCriteria `xml:"InitialFilterCriteria"`
	// SharedIFCSetIDs are the Extension/SharedIFCSetID values: references to
	// iFC sets the S-CSCF holds locally (TS 29.228 §6.6.3, Annex E).
	SharedIFCSetIDs []uint32 `xml:"Extension>SharedIFCSetID"`
}

// PublicIdentity is tPublicIdentity (TS 29.228 Annex E, Annex B.2.1) with the
// elements of its Extension chain flattened into fields; its MarshalXML and
// UnmarshalXML methods map them to and from the chain.
//
// Marshal writes the chain as
//
//	Extension{IdentityType, WildcardedPSI,
//	          Extension{DisplayName, AliasIdentityGroupID, Extension{WildcardedIMPU}}}
//
// The first level is tPublicIdentityExtension and the second
// tPublicIdentityExtension2 of the Annex E schema.
//
// leaving out levels that would be empty. Parse accepts each of these
// elements at any depth of the chain (the outermost occurrence wins),
// because HSS implementations differ on the level at which DisplayName and
// WildcardedIMPU appear.
type PublicIdentity struct {
	// BarringIndication: the identity is barred (TS 29.228 §6.6.1, TS 23.228
	// §4.5.6.2); barred identities take part only in registration.
	BarringIndication Bool `xml:"BarringIndication"`
	// Identity is a sip:, sips: or tel: URI, or for the wildcarded identity
	// types a pattern holding a '!'-delimited regular expression (TS 23.003
	// §13.5).
	Identity string `xml:"Identity"`
	// IdentityType is Extension/IdentityType; absent means
	// IdentityPublicUser (which is therefore not written).
	IdentityType IdentityType `xml:"-"`
	// WildcardedPSI is Extension/WildcardedPSI (only with IdentityWildcardedPSI).
	WildcardedPSI string `xml:"-"`
	// DisplayName is Extension/Extension/DisplayName, the display name the S-CSCF may
	// put into P-Asserted-Identity (TS 29.228 Annex B).
	DisplayName string `xml:"-"`
	// AliasIdentityGroupID is Extension/Extension/AliasIdentityGroupID; it
	// groups alias public identities (TS 29.228 §6.6.4).
	AliasIdentityGroupID string `xml:"-"`
	// WildcardedIMPU is Extension/Extension/Extension/WildcardedIMPU, the
	// wildcarded IMPU pattern (only with IdentityWildcardedIMPU).
	WildcardedIMPU string `xml:"-"`
}

// CoreNetworkServicesAuthorization is tCoreNetworkServicesAuthorization
// (TS 29.228 Annex E, Annex B.2.4).
type CoreNetworkServicesAuthorization struct {
	// SubscribedMediaProfileID is SubscribedMediaProfileId: an operator
	// defined media profile number; nil when absent.
	SubscribedMediaProfileID *uint32 `xml:"SubscribedMediaProfileId,omitempty"`
}

// InitialFilterCriteria is tInitialFilterCriteria (TS 29.228 Annex E, Annex
// B.2.2): when TriggerPoint matches, the request goes to ApplicationServer.
type InitialFilterCriteria struct {
	// Priority orders iFCs within a profile: lower values are evaluated
	// first, and values are unique within a ServiceProfile.
	Priority int `xml:"Priority"`
	// TriggerPoint is optional: without it the iFC always matches.
	TriggerPoint *TriggerPoint `xml:"TriggerPoint,omitempty"`
	// ApplicationServer is the AS the request is sent to.
	ApplicationServer ApplicationServer `xml:"ApplicationServer"`
	// ProfilePartIndicator restricts the iFC to the registered or the
	// unregistered part of the profile; nil means it applies to both.
	ProfilePartIndicator *ProfilePartIndicator `xml:"ProfilePartIndicator,omitempty"`
}

// TriggerPoint is tTrigger (TS 29.228 Annex E, Annex B.2.2, Annex C): a
// boolean expression of SPTs in conjunctive (ConditionTypeCNF = 1: AND of
// groups, each group an OR of its SPTs) or disjunctive normal form (0: OR of
// groups, each group an AND of its SPTs). An SPT may belong to several groups.
type TriggerPoint struct {
	ConditionTypeCNF Bool  `xml:"ConditionTypeCNF"`
	SPTs             []SPT `xml:"SPT"`
}

// SPT is tSePoTri, a service point trigger (TS 29.228 Annex E, Annex B.2.2).
// Exactly one of RequestURI, Method, SIPHeader, SessionCase and
// SessionDescription is set. RegistrationTypes (Extension/RegistrationType)
// narrows a Method=REGISTER SPT to the listed kinds of registration.
type SPT struct {
	ConditionNegated   Bool                `xml:"ConditionNegated"`
	Groups             []uint32            `xml:"Group"`
	RequestURI         *string             `xml:"RequestURI,omitempty"`
	Method             *string             `xml:"Method,omitempty"`
	SIPHeader          *SIPHeader          `xml:"SIPHeader,omitempty"`
	SessionCase        *SessionCase        `xml:"SessionCase,omitempty"`
	SessionDescription *SessionDescription `xml:"SessionDescription,omitempty"`
	RegistrationTypes  []RegistrationType  `xml:"Extension>RegistrationType"`
}

// SIPHeader is tHeader (TS 29.228 Annex E): the SPT matches when a header
// named Header is present and, if Content is set, its value matches the
// regular expression Content.
type SIPHeader struct {
	Header  string  `xml:"Header"`
	Content *string `xml:"Content,omitempty"`
}

// SessionDescription is tSessionDescription (TS 29.228 Annex E): the SPT
// matches an SDP line whose type is Line and, if Content is set, whose value
// matches the regular expression Content.
type SessionDescription struct {
	Line    string  `xml:"Line"`
	Content *string `xml:"Content,omitempty"`
}

// ApplicationServer is tApplicationServer (TS 29.228 Annex E, Annex B.2.3).
type ApplicationServer struct {
	// ServerName is the SIP URI of the AS.
	ServerName string `xml:"ServerName"`
	// DefaultHandling applies when the AS does not answer; nil when absent
	// (treat as SessionContinued, see Handling).
	DefaultHandling *DefaultHandling `xml:"DefaultHandling,omitempty"`
	// ServiceInfo is opaque data for the AS (sent in a third-party REGISTER
	// body, TS 24.229 §5.4.1.7).
	ServiceInfo string `xml:"ServiceInfo,omitempty"`
	// IncludeRegisterRequest and IncludeRegisterResponse are the empty
	// Extension elements asking the S-CSCF to include the incoming REGISTER
	// or its 200 response in the third-party REGISTER.
	IncludeRegisterRequest  Flag `xml:"Extension>IncludeRegisterRequest"`
	IncludeRegisterResponse Flag `xml:"Extension>IncludeRegisterResponse"`
}

// Handling returns DefaultHandling, or SessionContinued when it is absent.
func (a *ApplicationServer) Handling() DefaultHandling {
	if a.DefaultHandling == nil {
		return SessionContinued
	}
	return *a.DefaultHandling
}

// Flag is an element of the schema's tEmpty type used as a presence flag
// (TS 29.228 Annex E): true marshals as an empty element, false as nothing.
// Unmarshalling sets it true unless the element's text is "0" or "false".
type Flag bool

// MarshalXML writes <name></name> when f is true and nothing otherwise.
func (f Flag) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	if !f {
		return nil
	}
	return e.EncodeElement("", start)
}

// UnmarshalXML records the element's presence.
func (f *Flag) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var s string
	if err := d.DecodeElement(&s, &start); err != nil {
		return err
	}
	switch strings.TrimSpace(s) {
	case "0", "false":
		*f = false
	default:
		*f = true
	}
	return nil
}

// publicIdentityExt is one level of the PublicIdentity Extension chain: on
// input every known element is accepted at every level; on output nil
// pointers are left out.
type publicIdentityExt struct {
	IdentityType         *IdentityType      `xml:"IdentityType,omitempty"`
	WildcardedPSI        *string            `xml:"WildcardedPSI,omitempty"`
	DisplayName          *string            `xml:"DisplayName,omitempty"`
	AliasIdentityGroupID *string            `xml:"AliasIdentityGroupID,omitempty"`
	WildcardedIMPU       *string            `xml:"WildcardedIMPU,omitempty"`
	Extension            *publicIdentityExt `xml:"Extension,omitempty"`
}

type publicIdentityWire struct {
	BarringIndication Bool               `xml:"BarringIndication"`
	Identity          string             `xml:"Identity"`
	Extension         *publicIdentityExt `xml:"Extension,omitempty"`
}

// UnmarshalXML reads a PublicIdentity, collecting the Extension chain's
// elements from whichever level holds them (outermost first).
func (p *PublicIdentity) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var in publicIdentityWire
	if err := d.DecodeElement(&in, &start); err != nil {
		return err
	}
	*p = PublicIdentity{BarringIndication: in.BarringIndication, Identity: strings.TrimSpace(in.Identity)}
	var seenType bool
	for x := in.Extension; x != nil; x = x.Extension {
		if x.IdentityType != nil && !seenType {
			p.IdentityType, seenType = *x.IdentityType, true
		}
		takeFirst(&p.WildcardedPSI, x.WildcardedPSI, true)
		takeFirst(&p.DisplayName, x.DisplayName, false)
		takeFirst(&p.AliasIdentityGroupID, x.AliasIdentityGroupID, false)
		takeFirst(&p.WildcardedIMPU, x.WildcardedIMPU, true)
	}
	return nil
}

func takeFirst(dst *string, v *string, trim bool) {
	if *dst != "" || v == nil {
		return
	}
	if trim {
		*dst = strings.TrimSpace(*v)
	} else {
		*dst = *v
	}
}

// MarshalXML writes the PublicIdentity with its Extension chain; levels that
// would be empty are left out.
func (p PublicIdentity) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	out := publicIdentityWire{BarringIndication: p.BarringIndication, Identity: p.Identity}
	var ext3 *publicIdentityExt
	if p.WildcardedIMPU != "" {
		ext3 = &publicIdentityExt{WildcardedIMPU: &p.WildcardedIMPU}
	}
	var ext2 *publicIdentityExt
	if p.DisplayName != "" || p.AliasIdentityGroupID != "" || ext3 != nil {
		ext2 = &publicIdentityExt{Extension: ext3}
		if p.DisplayName != "" {
			ext2.DisplayName = &p.DisplayName
		}
		if p.AliasIdentityGroupID != "" {
			ext2.AliasIdentityGroupID = &p.AliasIdentityGroupID
		}
	}
	if p.IdentityType != IdentityPublicUser || p.WildcardedPSI != "" || ext2 != nil {
		ext1 := &publicIdentityExt{Extension: ext2}
		if p.IdentityType != IdentityPublicUser {
			ext1.IdentityType = &p.IdentityType
		}
		if p.WildcardedPSI != "" {
			ext1.WildcardedPSI = &p.WildcardedPSI
		}
		out.Extension = ext1
	}
	return e.EncodeElement(out, start)
}

type sptIn struct {
	ConditionNegated   Bool                 `xml:"ConditionNegated"`
	Groups             []uint32             `xml:"Group"`
	RequestURI         []string             `xml:"RequestURI"`
	Method             []string             `xml:"Method"`
	SIPHeader          []SIPHeader          `xml:"SIPHeader"`
	SessionCase        []SessionCase        `xml:"SessionCase"`
	SessionDescription []SessionDescription `xml:"SessionDescription"`
	RegistrationTypes  []RegistrationType   `xml:"Extension>RegistrationType"`
}

// UnmarshalXML reads an SPT and rejects one holding more than one condition
// element (the schema's xs:choice, TS 29.228 Annex E). An SPT with none is
// rejected by validation.
func (s *SPT) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var in sptIn
	if err := d.DecodeElement(&in, &start); err != nil {
		return err
	}
	var names []string
	total := 0
	count := func(name string, n int) bool {
		if n > 0 {
			names = append(names, name)
			total += n
		}
		return n > 0
	}
	*s = SPT{ConditionNegated: in.ConditionNegated, Groups: in.Groups, RegistrationTypes: in.RegistrationTypes}
	if count("RequestURI", len(in.RequestURI)) {
		s.RequestURI = &in.RequestURI[0]
	}
	if count("Method", len(in.Method)) {
		m := strings.TrimSpace(in.Method[0])
		s.Method = &m
	}
	if count("SIPHeader", len(in.SIPHeader)) {
		s.SIPHeader = &in.SIPHeader[0]
	}
	if count("SessionCase", len(in.SessionCase)) {
		s.SessionCase = &in.SessionCase[0]
	}
	if count("SessionDescription", len(in.SessionDescription)) {
		s.SessionDescription = &in.SessionDescription[0]
	}
	if total > 1 {
		return &ValidationError{Path: "SPT", Msg: fmt.Sprintf(
			"has %d condition elements (%s); exactly one of RequestURI, Method, SIPHeader, SessionCase, SessionDescription is allowed",
			total, strings.Join(names, ", "))}
	}
	return nil
}

type registrationTypesOut struct {
	RegistrationTypes []RegistrationType `xml:"RegistrationType"`
}

type sptOut struct {
	ConditionNegated   Bool                  `xml:"ConditionNegated"`
	Groups             []uint32              `xml:"Group"`
	RequestURI         *string               `xml:"RequestURI,omitempty"`
	Method             *string               `xml:"Method,omitempty"`
	SIPHeader          *SIPHeader            `xml:"SIPHeader,omitempty"`
	SessionCase        *SessionCase          `xml:"SessionCase,omitempty"`
	SessionDescription *SessionDescription   `xml:"SessionDescription,omitempty"`
	Extension          *registrationTypesOut `xml:"Extension,omitempty"`
}

// MarshalXML writes the SPT; Extension appears only with RegistrationTypes.
// (The *Out types exist because an xml:"a>b" path writes an empty parent
// even when the child is omitted.)
func (s SPT) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	out := sptOut{
		ConditionNegated: s.ConditionNegated, Groups: s.Groups, RequestURI: s.RequestURI, Method: s.Method,
		SIPHeader: s.SIPHeader, SessionCase: s.SessionCase, SessionDescription: s.SessionDescription,
	}
	if len(s.RegistrationTypes) > 0 {
		out.Extension = &registrationTypesOut{RegistrationTypes: s.RegistrationTypes}
	}
	return e.EncodeElement(out, start)
}

type applicationServerExtOut struct {
	IncludeRegisterRequest  Flag `xml:"IncludeRegisterRequest,omitempty"`
	IncludeRegisterResponse Flag `xml:"IncludeRegisterResponse,omitempty"`
}

type applicationServerOut struct {
	ServerName      string                   `xml:"ServerName"`
	DefaultHandling *DefaultHandling         `xml:"DefaultHandling,omitempty"`
	ServiceInfo     string                   `xml:"ServiceInfo,omitempty"`
	Extension       *applicationServerExtOut `xml:"Extension,omitempty"`
}

// MarshalXML writes the ApplicationServer; Extension appears only when one
// of the Include flags is set.
func (a ApplicationServer) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	out := applicationServerOut{ServerName: a.ServerName, DefaultHandling: a.DefaultHandling, ServiceInfo: a.ServiceInfo}
	if a.IncludeRegisterRequest || a.IncludeRegisterResponse {
		out.Extension = &applicationServerExtOut{a.IncludeRegisterRequest, a.IncludeRegisterResponse}
	}
	return e.EncodeElement(out, start)
}

type sharedIFCSetsOut struct {
	SharedIFCSetIDs []uint32 `xml:"SharedIFCSetID"`
}

type serviceProfileOut struct {
	PublicIdentities                 []PublicIdentity                  `xml:"PublicIdentity"`
	CoreNetworkServicesAuthorization *CoreNetworkServicesAuthorization `xml:"CoreNetworkServicesAuthorization,omitempty"`
	InitialFilterCriteria            []InitialFilterCriteria           `xml:"InitialFilterCriteria"`
	Extension                        *sharedIFCSetsOut                 `xml:"Extension,omitempty"`
}

// MarshalXML writes the ServiceProfile; Extension appears only with
// SharedIFCSetIDs.
func (sp ServiceProfile) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	out := serviceProfileOut{
		PublicIdentities:                 sp.PublicIdentities,
		CoreNetworkServicesAuthorization: sp.CoreNetworkServicesAuthorization,
		InitialFilterCriteria:            sp.InitialFilterCriteria,
	}
	if len(sp.SharedIFCSetIDs) > 0 {
		out.Extension = &sharedIFCSetsOut{SharedIFCSetIDs: sp.SharedIFCSetIDs}
	}
	return e.EncodeElement(out, start)
}
