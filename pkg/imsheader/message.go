package imsheader

import (
	"io"
	"strings"

	"github.com/emiago/sipgo/sip"
)

// Editable is a SIP message whose headers can be changed; *sip.Request and
// *sip.Response satisfy it.
type Editable interface {
	sip.Message
	Headers() []sip.Header
	RemoveHeader(name string) bool
}

// Values returns the values of every header called name (case-insensitive),
// in message order; nil when there is none.
func Values(msg sip.Message, name string) []string {
	var out []string
	for _, h := range msg.GetHeaders(name) {
		out = append(out, h.Value())
	}
	return out
}

// RemoveHeaders removes every header called name (case-insensitive) and
// returns how many were removed.
func RemoveHeaders(msg Editable, name string) int {
	n := 0
	for _, h := range msg.GetHeaders(name) {
		if msg.RemoveHeader(h.Name()) {
			n++
		}
	}
	return n
}

// indexOf returns the position of the first header called name in
// msg.Headers(), or -1.
func indexOf(msg Editable, name string) int {
	for i, h := range msg.Headers() {
		if strings.EqualFold(h.Name(), name) {
			return i
		}
	}
	return -1
}

// moveLast moves the last header of msg to position idx, shifting the
// following ones down. sipgo's Headers() is the live header slice, so this
// reorders the message.
func moveLast(msg Editable, idx int) {
	hs := msg.Headers()
	if idx < 0 || idx >= len(hs)-1 {
		return
	}
	last := hs[len(hs)-1]
	copy(hs[idx+1:], hs[idx:len(hs)-1])
	hs[idx] = last
}

// SetHeader replaces every header called name by one header carrying value,
// placed where the first one was (appended when there was none). The name
// keeps the spelling of the existing header, else name is used as given.
func SetHeader(msg Editable, name, value string) {
	idx := indexOf(msg, name)
	if idx >= 0 {
		name = msg.Headers()[idx].Name()
	}
	RemoveHeaders(msg, name)
	msg.AppendHeader(sip.NewHeader(name, value))
	moveLast(msg, idx)
}

// PrependHeader inserts a header called name with value just before the
// first header of that name (appended when there is none). A proxy adding
// itself to Path or Record-Route-like lists uses this (RFC 3327 §5.3).
func PrependHeader(msg Editable, name, value string) {
	idx := indexOf(msg, name)
	msg.AppendHeader(sip.NewHeader(name, value))
	moveLast(msg, idx)
}

// GetNameAddrList parses and joins all headers called name as name-addr
// lists (Path, Service-Route, P-Asserted-Identity, Route...). It returns
// nil, nil when the header is absent.
func GetNameAddrList(msg sip.Message, name string) ([]NameAddr, error) {
	var out []NameAddr
	for _, v := range Values(msg, name) {
		list, err := parseNameAddrList(name, v)
		if err != nil {
			return nil, err
		}
		if len(out) > 0 && len(list) > 0 {
			list[0].Lead = " "
		}
		out = append(out, list...)
	}
	return out, nil
}

// SetNameAddrList replaces all headers called name by one header with the
// formatted list; an empty list removes them.
func SetNameAddrList(msg Editable, name string, list []NameAddr) {
	if len(list) == 0 {
		RemoveHeaders(msg, name)
		return
	}
	SetHeader(msg, name, FormatNameAddrList(list))
}

// GetPath returns all Path entries in order (RFC 3327), nil if absent.
func GetPath(msg sip.Message) ([]NameAddr, error) { return GetNameAddrList(msg, HeaderPath) }

// SetPath replaces Path by list (one header, comma-separated).
func SetPath(msg Editable, list ...NameAddr) { SetNameAddrList(msg, HeaderPath, list) }

// PrependPath adds entry as a new topmost Path header (RFC 3327 §5.3: a
// proxy adds its URI "as the first entry").
func PrependPath(msg Editable, entry NameAddr) { PrependHeader(msg, HeaderPath, entry.String()) }

// GetServiceRoute returns all Service-Route entries (RFC 3608), nil if
// absent.
func GetServiceRoute(msg sip.Message) ([]NameAddr, error) {
	return GetNameAddrList(msg, HeaderServiceRoute)
}

// SetServiceRoute replaces Service-Route by list.
func SetServiceRoute(msg Editable, list ...NameAddr) {
	SetNameAddrList(msg, HeaderServiceRoute, list)
}

// GetPAssertedIdentity returns the asserted identities (RFC 3325 §9.1), nil
// if absent.
func GetPAssertedIdentity(msg sip.Message) ([]NameAddr, error) {
	return GetNameAddrList(msg, HeaderPAssertedIdentity)
}

// SetPAssertedIdentity replaces P-Asserted-Identity by ids.
func SetPAssertedIdentity(msg Editable, ids ...NameAddr) {
	SetNameAddrList(msg, HeaderPAssertedIdentity, ids)
}

// GetPPreferredIdentity returns the preferred identities (RFC 3325 §9.2),
// nil if absent.
func GetPPreferredIdentity(msg sip.Message) ([]NameAddr, error) {
	return GetNameAddrList(msg, HeaderPPreferredIdentity)
}

// SetPPreferredIdentity replaces P-Preferred-Identity by ids.
func SetPPreferredIdentity(msg Editable, ids ...NameAddr) {
	SetNameAddrList(msg, HeaderPPreferredIdentity, ids)
}

// GetPAssociatedURI returns the associated URIs (RFC 3455 §4.1); an empty
// header and an absent one both give nil, nil.
func GetPAssociatedURI(msg sip.Message) ([]NameAddr, error) {
	var out []NameAddr
	for _, v := range Values(msg, HeaderPAssociatedURI) {
		list, err := ParsePAssociatedURI(v)
		if err != nil {
			return nil, err
		}
		if len(out) > 0 && len(list) > 0 {
			list[0].Lead = " "
		}
		out = append(out, list...)
	}
	return out, nil
}

// SetPAssociatedURI replaces P-Associated-URI by uris; an empty list writes
// an empty header, which RFC 3455 §5.1 allows (no associated URI).
func SetPAssociatedURI(msg Editable, uris ...NameAddr) {
	SetHeader(msg, HeaderPAssociatedURI, FormatNameAddrList(uris))
}

func single(msg sip.Message, name string) (string, bool, error) {
	vs := Values(msg, name)
	switch len(vs) {
	case 0:
		return "", false, nil
	case 1:
		return vs[0], true, nil
	}
	return "", false, perr(name, 0, "header appears %d times, expected once", len(vs))
}

// GetPServedUser returns P-Served-User (RFC 5502), nil if absent; more than
// one instance is an error.
func GetPServedUser(msg sip.Message) (*PServedUser, error) {
	v, ok, err := single(msg, HeaderPServedUser)
	if !ok {
		return nil, err
	}
	p, err := ParsePServedUser(v)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// SetPServedUser replaces P-Served-User.
func SetPServedUser(msg Editable, p PServedUser) { SetHeader(msg, HeaderPServedUser, p.String()) }

// GetPChargingVector returns P-Charging-Vector (RFC 3455 §4.6), nil if
// absent; more than one instance is an error.
func GetPChargingVector(msg sip.Message) (*PChargingVector, error) {
	v, ok, err := single(msg, HeaderPChargingVector)
	if !ok {
		return nil, err
	}
	p, err := ParsePChargingVector(v)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// SetPChargingVector replaces P-Charging-Vector.
func SetPChargingVector(msg Editable, p PChargingVector) {
	SetHeader(msg, HeaderPChargingVector, p.String())
}

// GetPVisitedNetworkID returns all P-Visited-Network-ID entries (RFC 3455
// §4.3) joined in order, nil if absent.
func GetPVisitedNetworkID(msg sip.Message) ([]VisitedNetwork, error) {
	var out []VisitedNetwork
	for _, v := range Values(msg, HeaderPVisitedNetworkID) {
		list, err := ParsePVisitedNetworkID(v)
		if err != nil {
			return nil, err
		}
		if len(out) > 0 {
			list[0].Lead = " "
		}
		out = append(out, list...)
	}
	return out, nil
}

// SetPVisitedNetworkID replaces P-Visited-Network-ID by list; an empty list
// removes it.
func SetPVisitedNetworkID(msg Editable, list ...VisitedNetwork) {
	if len(list) == 0 {
		RemoveHeaders(msg, HeaderPVisitedNetworkID)
		return
	}
	SetHeader(msg, HeaderPVisitedNetworkID, FormatPVisitedNetworkID(list))
}

// GetPAccessNetworkInfo returns one PAccessNetworkInfo per header instance
// (a UE-provided and a network-provided one may both be present, RFC 7315
// §5.4), nil if absent.
func GetPAccessNetworkInfo(msg sip.Message) ([]PAccessNetworkInfo, error) {
	var out []PAccessNetworkInfo
	for _, v := range Values(msg, HeaderPAccessNetworkInfo) {
		p, err := ParsePAccessNetworkInfo(v)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// SetPAccessNetworkInfo replaces P-Access-Network-Info by one header per
// entry, in order; an empty list removes it.
func SetPAccessNetworkInfo(msg Editable, list ...PAccessNetworkInfo) {
	if len(list) == 0 {
		RemoveHeaders(msg, HeaderPAccessNetworkInfo)
		return
	}
	SetHeader(msg, HeaderPAccessNetworkInfo, list[0].Raw)
	idx := indexOf(msg, HeaderPAccessNetworkInfo)
	for i, p := range list[1:] {
		msg.AppendHeader(sip.NewHeader(HeaderPAccessNetworkInfo, p.Raw))
		moveLast(msg, idx+1+i)
	}
}

func getSecurity(msg sip.Message, name string) ([]SecurityMechanism, error) {
	var out []SecurityMechanism
	for _, v := range Values(msg, name) {
		list, err := ParseSecurity(name, v)
		if err != nil {
			return nil, err
		}
		if len(out) > 0 {
			list[0].Lead = " "
		}
		out = append(out, list...)
	}
	return out, nil
}

func setSecurity(msg Editable, name string, list []SecurityMechanism) {
	if len(list) == 0 {
		RemoveHeaders(msg, name)
		return
	}
	SetHeader(msg, name, FormatSecurity(list))
}

// GetSecurityClient returns all Security-Client mechanisms (RFC 3329 §2.2),
// nil if absent.
func GetSecurityClient(msg sip.Message) ([]SecurityMechanism, error) {
	return getSecurity(msg, HeaderSecurityClient)
}

// GetSecurityServer returns all Security-Server mechanisms, nil if absent.
func GetSecurityServer(msg sip.Message) ([]SecurityMechanism, error) {
	return getSecurity(msg, HeaderSecurityServer)
}

// GetSecurityVerify returns all Security-Verify mechanisms, nil if absent.
func GetSecurityVerify(msg sip.Message) ([]SecurityMechanism, error) {
	return getSecurity(msg, HeaderSecurityVerify)
}

// SetSecurityClient replaces Security-Client by list; empty removes it.
func SetSecurityClient(msg Editable, list ...SecurityMechanism) {
	setSecurity(msg, HeaderSecurityClient, list)
}

// SetSecurityServer replaces Security-Server by list; empty removes it.
func SetSecurityServer(msg Editable, list ...SecurityMechanism) {
	setSecurity(msg, HeaderSecurityServer, list)
}

// SetSecurityVerify replaces Security-Verify by list; empty removes it.
func SetSecurityVerify(msg Editable, list ...SecurityMechanism) {
	setSecurity(msg, HeaderSecurityVerify, list)
}

var (
	_ Editable = (*sip.Request)(nil)
	_ Editable = (*sip.Response)(nil)
)

// WireSize is the length in bytes of msg as sipgo writes it (the length
// of msg.String(): start line, header fields, empty line, body), counted
// without keeping the text (about a quarter of String's allocated bytes).
// Used to choose the transport of a request by size (RFC 3261 §18.1.1:
// over 1,300 bytes, TCP).
func WireSize(msg interface{ StringWrite(io.StringWriter) }) int {
	var n byteCounter
	msg.StringWrite(&n)
	return int(n)
}

// byteCounter is an io.StringWriter that counts what is written to it.
type byteCounter int

func (c *byteCounter) WriteString(s string) (int, error) {
	*c += byteCounter(len(s))
	return len(s), nil
}
