// Package cx answers the Cx requests of the I-CSCF and S-CSCF (TS 29.228
// §6, TS 29.229 §6): UAR, MAR, SAR and LIR, and sends the HSS-initiated RTR
// and PPR. Subscriber data comes from hss/store.
//
// Error mapping: an unknown identity is Experimental-Result
// DIAMETER_ERROR_USER_UNKNOWN (5001); any database failure or timeout is
// returned as a plain error, which the diameter.Node answers with
// DIAMETER_UNABLE_TO_COMPLY (5012) — never a positive answer.
package cx

import (
	"context"
	"errors"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"go.uber.org/zap"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/imsuri"
)

// Server answers Cx requests from the data in Store.
type Server struct {
	Store *store.Store
	Node  *diameter.Node
	Log   *zap.Logger
	// MaxAuthItems caps SIP-Number-Auth-Items (TS 29.228 §6.3: the HSS
	// may return fewer vectors than asked). Default 5, at most 64.
	MaxAuthItems int
	// OnRegistration, if set, is called after a SAR or an RTR wrote the
	// registration state or S-CSCF of implicit registration sets irs (Sh
	// notifications, TS 29.328 §6.1.4). It must return at once.
	OnRegistration func(irs ...int64)
}

// registrationChanged calls OnRegistration.
func (s *Server) registrationChanged(irs ...int64) {
	if s.OnRegistration != nil && len(irs) > 0 {
		s.OnRegistration(irs...)
	}
}

// Register installs the UAR, MAR, SAR and LIR handlers.
func (s *Server) Register(n diameter.Registrar) {
	n.Handle(diameter.CmdUserAuthorization, diameter.AppCx, s.UAR)
	n.Handle(diameter.CmdMultimediaAuth, diameter.AppCx, s.MAR)
	n.Handle(diameter.CmdServerAssignment, diameter.AppCx, s.SAR)
	n.Handle(diameter.CmdLocationInfo, diameter.AppCx, s.LIR)
}

func (s *Server) log() *zap.Logger {
	if s.Log == nil {
		return zap.NewNop()
	}
	return s.Log
}

func exp(code uint32) error { return &diameter.ResultError{Code: code, Experimental: true} }

func res(code uint32) error { return &diameter.ResultError{Code: code} }

// lookupErr maps a store error: ErrNotFound → 5001, others stay errors
// (→ 5012).
func lookupErr(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return exp(diameter.DiameterErrorUserUnknown)
	}
	return err
}

func vstr(code diameter.AVPCode, v string) *diam.AVP {
	return diameter.NewAVP(code, datatype.UTF8String(v))
}

// pair looks up impi and impu and their association with one query: 5001
// when either is unknown, 5002 when they do not belong together.
func (s *Server) pair(ctx context.Context, impi, impu string) (store.PairInfo, error) {
	pi, err := s.Store.Pair(ctx, impi, impu)
	if err != nil {
		return pi, lookupErr(err)
	}
	if !pi.Associated {
		return pi, exp(diameter.DiameterErrorIdentitiesDontMatch)
	}
	return pi, nil
}

// publicIdentity is the request's Public-Identity in the form IMPUs are
// stored in (imsuri.Canonical): "sip:+15550100@<domain>;user=phone" and
// "tel:+1-555-0100" find the IMPU "tel:+15550100" (TS 24.229 §5.3.2.1,
// RFC 3261 §19.1.6).
func publicIdentity(req *diam.Message) string {
	return imsuri.Canonical(diameter.String(req, diameter.AVPPublicIdentity))
}
