package cxclient

// User-Authorization: UAR out, UAA in (TS 29.228 §6.1.1, TS 29.229 §6.1.1-2).

import (
	"context"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
)

// Assignment is what a successful UAA or LIA says about the S-CSCF: its
// name, or the capabilities the I-CSCF selects one by (TS 29.228 §6.1.1.2,
// §6.1.4.2).
type Assignment struct {
	Code         uint32 // Result-Code or Experimental-Result-Code (2xxx)
	Experimental bool
	ServerName   string        // Server-Name; "" when absent
	Capabilities *Capabilities // Server-Capabilities; nil when absent
}

// Mandatory returns the Mandatory-Capability values of Server-Capabilities
// (nil when a is nil or has none).
func (a *Assignment) Mandatory() []uint32 {
	if a == nil || a.Capabilities == nil {
		return nil
	}
	return a.Capabilities.Mandatory
}

// Capabilities is Server-Capabilities (TS 29.229 §6.3.4).
type Capabilities struct {
	Mandatory   []uint32 // Mandatory-Capability values
	Optional    []uint32 // Optional-Capability values
	ServerNames []string // Server-Name values inside Server-Capabilities
}

// UAR sends a User-Authorization-Request for impu/impi registering from
// visited network visited with User-Authorization-Type uat (0
// REGISTRATION, 1 DE_REGISTRATION, 2 REGISTRATION_AND_CAPABILITIES).
// Errors: *Error.
func (c *Client) UAR(ctx context.Context, impu, impi, visited string, uat uint32) (*Assignment, error) {
	req := c.newRequest(diameter.CmdUserAuthorization)
	req.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
	req.AddAVP(diameter.NewAVP(diameter.AVPPublicIdentity, datatype.UTF8String(impu)))
	req.AddAVP(diameter.NewAVP(diameter.AVPVisitedNetworkIdentifier, datatype.OctetString(visited)))
	req.AddAVP(diameter.NewAVP(diameter.AVPUserAuthorizationType, datatype.Enumerated(int32(uat))))
	ans, err := c.exchange(ctx, "UAR", req)
	if err != nil {
		return nil, err
	}
	return parseAssignment(ans), nil
}

func parseAssignment(m *diam.Message) *Assignment {
	a := &Assignment{ServerName: diameter.String(m, diameter.AVPServerName)}
	a.Code, a.Experimental, _ = diameter.Result(m)
	for _, sc := range diameter.FindAll(m, diameter.AVPServerCapabilities) {
		if a.Capabilities == nil {
			a.Capabilities = &Capabilities{}
		}
		caps := a.Capabilities
		for _, x := range diameter.Children(sc) {
			switch diameter.IdentityOf(x) {
			case diameter.AVPMandatoryCapability:
				if v, ok := diameter.AsUint32(x); ok {
					caps.Mandatory = append(caps.Mandatory, v)
				}
			case diameter.AVPOptionalCapability:
				if v, ok := diameter.AsUint32(x); ok {
					caps.Optional = append(caps.Optional, v)
				}
			case diameter.AVPServerName:
				if v, ok := diameter.AsString(x); ok && v != "" {
					caps.ServerNames = append(caps.ServerNames, v)
				}
			}
		}
	}
	return a
}
