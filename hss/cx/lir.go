package cx

// Location-Info: LIR in, LIA out (TS 29.228 §6.1.4, TS 29.229 §6.1.5-6).

import (
	"context"

	"github.com/fiorix/go-diameter/v4/diam"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
)

// LIR answers a Location-Info-Request (TS 29.228 §6.1.4.1): the assigned
// S-CSCF's Server-Name (2001) when impu is registered, or when it is not
// but has services for the unregistered state or the request carries
// Originating-Request (an originating request of an unregistered served
// user, TS 24.229 §5.3.2.1A); 2003 with Server-Capabilities when no S-CSCF
// is assigned yet; otherwise Experimental-Result 5003
// (DIAMETER_ERROR_IDENTITY_NOT_REGISTERED).
func (s *Server) LIR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	impu := publicIdentity(req)
	a, err := s.Store.Assignment(ctx, impu)
	if err != nil {
		return nil, lookupErr(err)
	}
	if a.State == store.Registered && a.SCSCFName != "" {
		ans := s.Node.Answer(req, diameter.DiameterSuccess)
		ans.AddAVP(vstr(diameter.AVPServerName, a.SCSCFName))
		return ans, nil
	}
	_, originating := diameter.Uint32(req, diameter.AVPOriginatingRequest)
	if !originating {
		has, err := s.Store.HasUnregisteredServices(ctx, impu)
		if err != nil {
			return nil, lookupErr(err)
		}
		if !has {
			return nil, exp(diameter.DiameterErrorIdentityNotRegistered)
		}
	}
	if a.SCSCFName != "" {
		ans := s.Node.Answer(req, diameter.DiameterSuccess)
		ans.AddAVP(vstr(diameter.AVPServerName, a.SCSCFName))
		return ans, nil
	}
	caps, err := s.serverCapabilities(ctx)
	if err != nil {
		return nil, err
	}
	ans := s.Node.AnswerExperimental(req, diameter.DiameterUnregisteredService)
	if caps != nil {
		ans.AddAVP(caps)
	}
	return ans, nil
}
