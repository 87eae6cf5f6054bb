package cxclient

// Server-Assignment: SAR out, SAA in (TS 29.228 §6.1.2, TS 29.229 §6.1.3-4).

import (
	"context"

	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
)

// SAR sends a Server-Assignment-Request of type sat (diameter.SAT*) for
// impi ("" for none, e.g. UNREGISTERED_USER) and impu ("" for none), with
// this S-CSCF's Server-Name; dataAvailable sets User-Data-Already-Available.
// It returns the SAA's User-Data (TS 29.228 Annex E XML, nil when absent)
// and Charging-Information (nil when absent). Errors: *Error.
func (c *Client) SAR(ctx context.Context, impi, impu string, sat uint32, dataAvailable bool) (*ServerAssignment, error) {
	req := c.newRequest(diameter.CmdServerAssignment)
	if impi != "" {
		req.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
	}
	if impu != "" {
		req.AddAVP(diameter.NewAVP(diameter.AVPPublicIdentity, datatype.UTF8String(impu)))
	}
	req.AddAVP(diameter.NewAVP(diameter.AVPServerName, datatype.UTF8String(c.cfg.ServerName)))
	req.AddAVP(diameter.NewAVP(diameter.AVPServerAssignmentType, datatype.Enumerated(sat)))
	uda := diameter.UserDataNotAvailable
	if dataAvailable {
		uda = diameter.UserDataAlreadyAvailable
	}
	req.AddAVP(diameter.NewAVP(diameter.AVPUserDataAlreadyAvailable, datatype.Enumerated(uda)))
	ans, err := c.exchange(ctx, "SAR", req)
	if err != nil {
		return nil, err
	}
	out := &ServerAssignment{Charging: ParseChargingInformation(ans)}
	if a := diameter.Find(ans, diameter.AVPUserData); a != nil {
		out.UserData, _ = diameter.AsBytes(a)
	}
	return out, nil
}

// ServerAssignment is what an SAA gives the S-CSCF.
type ServerAssignment struct {
	// UserData is the User-Data XML (TS 29.228 Annex E); nil when absent
	// (User-Data-Already-Available, de-registrations).
	UserData []byte
	// Charging is the Charging-Information; nil when absent.
	Charging *ChargingInformation
}
