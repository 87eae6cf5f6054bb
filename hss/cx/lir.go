package cx

// Location-Info: LIR in, LIA out (TS 29.228 §6.1.4, TS 29.229 §6.1.5-6).

import (
	"context"

	"github.com/fiorix/go-diameter/v4/diam"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
)

// LIR answers a Location-Info-Request (TS 29.228 §6.1.4.1).
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
	has, err := s.Store.HasUnregisteredServices(ctx, impu)
	if err != nil {
		return nil, lookupErr(err)
	}
	if !has {
		return nil, exp(diameter.DiameterErrorIdentityNotRegistered)
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
