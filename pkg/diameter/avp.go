package diameter

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/avp"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"github.com/fiorix/go-diameter/v4/diam/dict"
)

// AVPCode identifies an AVP by its code and Vendor-Id (RFC 6733 §4.1): the
// vendor in the upper 32 bits, the code in the lower 32. Two AVPs with the
// same code and different vendors are different AVPs; every look-up (Find,
// FindIn, String, Uint32), builder (NewAVP, Grouped) and check in this
// package matches both. The declared identities are the AVP* constants.
type AVPCode uint64

// AVPOf returns the identity of the AVP with code and vendor (0 for IETF
// AVPs).
func AVPOf(code, vendor uint32) AVPCode { return AVPCode(vendor)<<32 | AVPCode(code) }

// IdentityOf returns the identity (code, Vendor-Id) of a decoded or built
// AVP; 0 for nil. An AVP without the V bit has vendor 0 whatever its
// VendorID field says.
func IdentityOf(a *diam.AVP) AVPCode {
	if a == nil {
		return 0
	}
	if a.Flags&avp.Vbit == 0 {
		return AVPOf(a.Code, 0)
	}
	return AVPOf(a.Code, a.VendorID)
}

// Code returns the AVP code.
func (a AVPCode) Code() uint32 { return uint32(a) }

// Vendor returns the Vendor-Id (0 for IETF AVPs).
func (a AVPCode) Vendor() uint32 { return uint32(a >> 32) }

// Is reports whether x is this AVP: same code and same vendor.
func (a AVPCode) Is(x *diam.AVP) bool { return x != nil && IdentityOf(x) == a }

// Known reports whether an embedded dictionary defines the AVP.
func (a AVPCode) Known() bool {
	_, ok := avpDefs[a]
	return ok
}

// Flags returns the header flags (V and M bits) the dictionary defines for
// the AVP. An AVP no dictionary defines gets V when its vendor is not 0 and
// never M (a receiver may then ignore it, RFC 6733 §4.1).
func (a AVPCode) Flags() uint8 {
	if d, ok := avpDefs[a]; ok {
		return d.flags
	}
	if a.Vendor() != 0 {
		return avp.Vbit
	}
	return 0
}

// Name returns the dictionary name ("Public-Identity"), or
// "AVP-<code>/<vendor>" for an AVP no dictionary defines.
func (a AVPCode) Name() string {
	if d, ok := avpDefs[a]; ok {
		return d.name
	}
	return fmt.Sprintf("AVP-%d/%d", a.Code(), a.Vendor())
}

// String renders the identity for messages and logs:
// "Public-Identity(601, vendor 10415)", "User-Name(1)".
func (a AVPCode) String() string {
	if a.Vendor() == 0 {
		return fmt.Sprintf("%s(%d)", a.Name(), a.Code())
	}
	return fmt.Sprintf("%s(%d, vendor %d)", a.Name(), a.Code(), a.Vendor())
}

// NewAVP builds the AVP a holding data, with the Vendor-Id and flags of its
// dictionary entry: a caller cannot produce a User-Name with a 3GPP Vendor-Id
// or a Public-Identity without the M bit. Example:
// NewAVP(AVPPublicIdentity, datatype.UTF8String("sip:alice@ims.example")).
func NewAVP(a AVPCode, data datatype.Type) *diam.AVP {
	return diam.NewAVP(a.Code(), a.Flags(), a.Vendor(), data)
}

// Grouped builds the grouped AVP a holding children (see NewAVP).
func Grouped(a AVPCode, children ...*diam.AVP) *diam.AVP {
	return NewAVP(a, &diam.GroupedAVP{AVP: children})
}

// VendorSpecificAppID builds Vendor-Specific-Application-Id{Vendor-Id,
// Auth-Application-Id} for app (RFC 6733 §6.11).
func VendorSpecificAppID(app App) *diam.AVP {
	return Grouped(AVPVendorSpecificApplicationID,
		NewAVP(AVPVendorID, datatype.Unsigned32(app.Vendor())),
		NewAVP(AVPAuthApplicationID, datatype.Unsigned32(uint32(app))))
}

// ExperimentalResult builds Experimental-Result{Vendor-Id 10415,
// Experimental-Result-Code code}.
func ExperimentalResult(code uint32) *diam.AVP {
	return Grouped(AVPExperimentalResult,
		NewAVP(AVPVendorID, datatype.Unsigned32(Vendor3GPP)),
		NewAVP(AVPExperimentalResultCode, datatype.Unsigned32(code)))
}

// FindIn returns every AVP reached by following path (AVP identities: code
// and vendor) down grouped AVPs from avps: FindIn(m.AVP, AVPSIPAuthDataItem,
// AVPSIPAuthenticate) gives the SIP-Authenticate of every SIP-Auth-Data-Item.
// An AVP with the right code and another vendor is not matched.
func FindIn(avps []*diam.AVP, path ...AVPCode) []*diam.AVP {
	var out []*diam.AVP
	walk(avps, path, func(a *diam.AVP) bool { out = append(out, a); return true })
	return out
}

// Find returns the first AVP at path in m (see FindIn) or nil. It
// stops at the first match and allocates nothing: the hot path of every
// request's look-ups (Session-Id, Origin-Host, User-Name, ...).
func Find(m *diam.Message, path ...AVPCode) *diam.AVP {
	if m == nil {
		return nil
	}
	var first *diam.AVP
	walk(m.AVP, path, func(a *diam.AVP) bool { first = a; return false })
	return first
}

// walk calls visit, in message order, for every AVP reached by following
// path down grouped AVPs from avps (FindIn's matching), until visit
// returns false; it reports whether the walk went to the end.
func walk(avps []*diam.AVP, path []AVPCode, visit func(*diam.AVP) bool) bool {
	if len(path) == 0 {
		return true
	}
	for _, a := range avps {
		if !path[0].Is(a) {
			continue
		}
		if len(path) == 1 {
			if !visit(a) {
				return false
			}
			continue
		}
		if g, ok := a.Data.(*diam.GroupedAVP); ok && !walk(g.AVP, path[1:], visit) {
			return false
		}
	}
	return true
}

// FindAll returns every AVP at path in m (see FindIn).
func FindAll(m *diam.Message, path ...AVPCode) []*diam.AVP {
	if m == nil {
		return nil
	}
	return FindIn(m.AVP, path...)
}

// Children returns the AVPs inside a grouped AVP, or nil.
func Children(a *diam.AVP) []*diam.AVP {
	if a == nil {
		return nil
	}
	if g, ok := a.Data.(*diam.GroupedAVP); ok {
		return g.AVP
	}
	return nil
}

// AsString returns the value of a UTF8String, OctetString, DiameterIdentity
// or DiameterURI AVP as plain text (never the library's String() rendering).
func AsString(a *diam.AVP) (string, bool) {
	if a == nil {
		return "", false
	}
	switch v := a.Data.(type) {
	case datatype.UTF8String:
		return string(v), true
	case datatype.OctetString:
		return string(v), true
	case datatype.DiameterIdentity:
		return string(v), true
	case datatype.DiameterURI:
		return string(v), true
	}
	return "", false
}

// AsBytes returns the raw value of an OctetString-like AVP (see AsString).
func AsBytes(a *diam.AVP) ([]byte, bool) {
	s, ok := AsString(a)
	if !ok {
		return nil, false
	}
	return []byte(s), true
}

// AsUint32 returns the value of an Unsigned32, Enumerated or Integer32 AVP.
func AsUint32(a *diam.AVP) (uint32, bool) {
	if a == nil {
		return 0, false
	}
	switch v := a.Data.(type) {
	case datatype.Unsigned32:
		return uint32(v), true
	case datatype.Enumerated:
		return uint32(v), true
	case datatype.Integer32:
		return uint32(v), true
	}
	return 0, false
}

// AsIP returns the value of an Address AVP, or of a 4/16-byte OctetString
// (Framed-IP-Address).
func AsIP(a *diam.AVP) (net.IP, bool) {
	if a == nil {
		return nil, false
	}
	switch v := a.Data.(type) {
	case datatype.Address:
		return net.IP(v), true
	case datatype.OctetString:
		if len(v) == 4 || len(v) == 16 {
			return net.IP(v), true
		}
	}
	return nil, false
}

// String returns the text at path in m, or "" (see AsString).
func String(m *diam.Message, path ...AVPCode) string {
	s, _ := AsString(Find(m, path...))
	return s
}

// Uint32 returns the number at path in m (see AsUint32).
func Uint32(m *diam.Message, path ...AVPCode) (uint32, bool) {
	return AsUint32(Find(m, path...))
}

// Result returns the outcome of an answer: Result-Code (experimental=false)
// or, when absent, Experimental-Result/Experimental-Result-Code
// (experimental=true). ok is false when the answer carries neither.
func Result(m *diam.Message) (code uint32, experimental, ok bool) {
	if c, ok := Uint32(m, AVPResultCode); ok {
		return c, false, true
	}
	if c, ok := Uint32(m, AVPExperimentalResult, AVPExperimentalResultCode); ok {
		return c, true, true
	}
	return 0, false, false
}

// IsSuccess reports whether an answer's Result-Code or
// Experimental-Result-Code is in the 2xxx class.
func IsSuccess(m *diam.Message) bool {
	c, _, ok := Result(m)
	return ok && c >= 2000 && c < 3000
}

// TransientFailure reports whether a request answered with code
// (Experimental-Result-Code when experimental) may succeed when sent again
// later: DIAMETER_UNABLE_TO_DELIVER (3002), DIAMETER_TOO_BUSY (3004),
// DIAMETER_UNABLE_TO_COMPLY (5012) and every 4xxx transient failure
// (RFC 6733 §7.1.4). Other failures (3001/3007 the command is not
// supported, 5xxx refusals, every experimental code) do not change by
// retrying.
func TransientFailure(code uint32, experimental bool) bool {
	if experimental {
		return false
	}
	switch {
	case code == DiameterUnableToDeliver, code == DiameterTooBusy, code == DiameterUnableToComply:
		return true
	case code >= 4000 && code < 5000:
		return true
	}
	return false
}

// ErrMalformed is wrapped by Decode errors for bytes that are not a
// Diameter message.
var ErrMalformed = errors.New("diameter: malformed message")

// MaxMessageLength bounds accepted messages (bytes); longer ones are refused.
const MaxMessageLength = 1 << 20

// Decode parses one complete Diameter message from b with dictionary p. It
// never panics: go-diameter v4.3.0 can panic on some inputs, which is
// recovered and returned as an error wrapping ErrMalformed. When the header
// is valid but the body does not decode, the partially decoded message is
// returned with the error (its Header is usable for an error answer).
func Decode(b []byte, p *dict.Parser) (m *diam.Message, err error) {
	if len(b) < diam.HeaderLength {
		return nil, fmt.Errorf("%w: %d bytes, shorter than a header", ErrMalformed, len(b))
	}
	if b[0] != 1 {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, b[0])
	}
	l := int(binary.BigEndian.Uint32(b[0:4]) & 0xffffff)
	if l != len(b) || l%4 != 0 {
		return nil, fmt.Errorf("%w: length field %d, have %d bytes", ErrMalformed, l, len(b))
	}
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%w: decoder panic: %v", ErrMalformed, r)
		}
	}()
	m, err = diam.ReadMessage(bytes.NewReader(b), p)
	if err != nil {
		if m == nil || m.Header == nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		return m, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return m, nil
}

// readFrame reads one message's bytes (header + body) from r.
func readFrame(r io.Reader) ([]byte, error) {
	var hdr [diam.HeaderLength]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	if hdr[0] != 1 {
		return nil, fmt.Errorf("%w: version %d", ErrMalformed, hdr[0])
	}
	l := int(binary.BigEndian.Uint32(hdr[0:4]) & 0xffffff)
	if l < diam.HeaderLength || l%4 != 0 || l > MaxMessageLength {
		return nil, fmt.Errorf("%w: message length %d", ErrMalformed, l)
	}
	b := make([]byte, l)
	copy(b, hdr[:])
	if _, err := io.ReadFull(r, b[diam.HeaderLength:]); err != nil {
		return nil, err
	}
	return b, nil
}
