package cxclient

// Multimedia-Auth: MAR out, MAA in (TS 29.228 §6.3, TS 29.229 §6.1.7-8).

import (
	"context"
	"errors"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
)

// AuthItem is one SIP-Auth-Data-Item of an MAA (TS 29.229 §6.3.13), as the
// HSS wrote it; the S-CSCF validates lengths for the scheme it uses.
type AuthItem struct {
	Scheme        string // SIP-Authentication-Scheme
	Authenticate  []byte // SIP-Authenticate: RAND‖AUTN for AKA
	Authorization []byte // SIP-Authorization: XRES for AKA
	CK, IK        []byte // Confidentiality-Key, Integrity-Key
	HA1           string // Digest-HA1 inside SIP-Digest-Authenticate (SIP Digest)
}

// MAR sends a Multimedia-Auth-Request for impi/impu asking n vectors of
// scheme (e.g. "Digest-AKAv1-MD5", "SIP Digest", "Unknown") with this
// S-CSCF's Server-Name; resync, when not nil, is RAND‖AUTS sent as
// SIP-Authorization for SQN resynchronisation (TS 33.203 §6.1.2). It returns
// the SIP-Auth-Data-Items of the MAA. Errors: *Error; an MAA without any
// SIP-Auth-Data-Item is an *Error with Code 5012.
func (c *Client) MAR(ctx context.Context, impi, impu, scheme string, n int, resync []byte) ([]AuthItem, error) {
	req := c.newRequest(diameter.CmdMultimediaAuth)
	req.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
	req.AddAVP(diameter.NewAVP(diameter.AVPPublicIdentity, datatype.UTF8String(impu)))
	item := []*diam.AVP{diameter.NewAVP(diameter.AVPSIPAuthenticationScheme, datatype.UTF8String(scheme))}
	if resync != nil {
		item = append(item, diameter.NewAVP(diameter.AVPSIPAuthorization, datatype.OctetString(resync)))
	}
	req.AddAVP(diameter.Grouped(diameter.AVPSIPAuthDataItem, item...))
	req.AddAVP(diameter.NewAVP(diameter.AVPSIPNumberAuthItems, datatype.Unsigned32(uint32(n))))
	req.AddAVP(diameter.NewAVP(diameter.AVPServerName, datatype.UTF8String(c.cfg.ServerName)))
	ans, err := c.exchange(ctx, "MAR", req)
	if err != nil {
		return nil, err
	}
	var out []AuthItem
	for _, it := range diameter.FindAll(ans, diameter.AVPSIPAuthDataItem) {
		var v AuthItem
		for _, a := range diameter.Children(it) {
			switch diameter.IdentityOf(a) {
			case diameter.AVPSIPAuthenticationScheme:
				v.Scheme, _ = diameter.AsString(a)
			case diameter.AVPSIPAuthenticate:
				v.Authenticate, _ = diameter.AsBytes(a)
			case diameter.AVPSIPAuthorization:
				v.Authorization, _ = diameter.AsBytes(a)
			case diameter.AVPConfidentialityKey:
				v.CK, _ = diameter.AsBytes(a)
			case diameter.AVPIntegrityKey:
				v.IK, _ = diameter.AsBytes(a)
			case diameter.AVPSIPDigestAuthenticate:
				if h := diameter.FindIn(diameter.Children(a), diameter.AVPDigestHA1); len(h) > 0 {
					v.HA1, _ = diameter.AsString(h[0])
				}
			}
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, &Error{Command: "MAR", Code: diameter.DiameterUnableToComply, Err: errors.New("MAA holds no SIP-Auth-Data-Item"), Answer: ans}
	}
	return out, nil
}
