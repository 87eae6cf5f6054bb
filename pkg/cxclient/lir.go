package cxclient

// Location-Info: LIR out, LIA in (TS 29.228 §6.1.4, TS 29.229 §6.1.5-6).

import (
	"context"

	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
)

// LIR sends a Location-Info-Request for impu. capabilities asks for
// Server-Capabilities (User-Authorization-Type
// REGISTRATION_AND_CAPABILITIES) after the S-CSCF the HSS named did not
// answer. originating adds Originating-Request (TS 29.229 §6.3.34): the
// request is an originating one of impu as served user (TS 24.229
// §5.3.2.1A, e.g. an AS originating on behalf of an unregistered user), for
// which the HSS names or lets the I-CSCF choose an S-CSCF even when impu
// has no services for the unregistered state. Errors: *Error (e.g.
// Experimental-Result-Code 5001 user unknown, 5003 identity not
// registered).
func (c *Client) LIR(ctx context.Context, impu string, capabilities, originating bool) (*Assignment, error) {
	req := c.newRequest(diameter.CmdLocationInfo)
	if originating {
		req.AddAVP(diameter.NewAVP(diameter.AVPOriginatingRequest, datatype.Enumerated(int32(diameter.OriginatingRequestOriginating))))
	}
	req.AddAVP(diameter.NewAVP(diameter.AVPPublicIdentity, datatype.UTF8String(impu)))
	if capabilities {
		req.AddAVP(diameter.NewAVP(diameter.AVPUserAuthorizationType, datatype.Enumerated(int32(diameter.UATRegistrationAndCapabilities))))
	}
	ans, err := c.exchange(ctx, "LIR", req)
	if err != nil {
		return nil, err
	}
	return parseAssignment(ans), nil
}
