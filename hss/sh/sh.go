// Package sh answers the Sh requests of application servers (TS 29.328
// §6.1, TS 29.329 §6.1): UDR (Sh-Pull), PUR (Sh-Update of RepositoryData),
// SNR (Sh-Subs-Notif) and sends PNR (Sh-Notif) when subscribed data
// changes: repository data (PUR), the registration state and S-CSCF name
// (the Cx SAR/RTR hook, RegistrationChanged), iFCs and public identities
// (provisioning changes, ProvisioningChanged). Per-AS permissions come
// from the store (as_permission).
//
// Errors: a Data-Reference this HSS does not know or hold →
// DIAMETER_ERROR_USER_DATA_NOT_RECOGNIZED (5100); data it holds but does
// not update or notify, or that does not apply to the identity →
// DIAMETER_ERROR_OPERATION_NOT_ALLOWED (5101); AS not allowed →
// DIAMETER_ERROR_USER_DATA_CANNOT_BE_READ (5102), _CANNOT_BE_MODIFIED
// (5103) or _CANNOT_BE_NOTIFIED (5104); unknown user →
// DIAMETER_ERROR_USER_UNKNOWN (5001); CS/PS-domain data →
// DIAMETER_USER_DATA_NOT_AVAILABLE (4100); wrong sequence number →
// DIAMETER_ERROR_TRANSPARENT_DATA_OUT_OF_SYNC (5105); database failure →
// DIAMETER_UNABLE_TO_COMPLY (5012).
package sh

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"go.uber.org/zap"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/imsuri"
)

// Server answers Sh requests and, once Run, sends the queued PNRs.
type Server struct {
	Store *store.Store
	Node  *diameter.Node
	Log   *zap.Logger
	// PollInterval is how often the PNR queue is looked at without a
	// notification (default 5 s).
	PollInterval time.Duration
	// Outcome, if set, counts every PNR sent by outcome: "answered",
	// "refused" (a permanent failure answer: dropped), "retry" (no
	// answer, not connected or a transient failure) and "dropped"
	// (queued longer than store.ShNotificationMaxAge).
	Outcome func(outcome string)

	once sync.Once
	n    *notifier
}

// Register installs the UDR, PUR and SNR handlers.
func (s *Server) Register(n diameter.Registrar) {
	n.Handle(diameter.CmdUserData, diameter.AppSh, s.UDR)
	n.Handle(diameter.CmdProfileUpdate, diameter.AppSh, s.PUR)
	n.Handle(diameter.CmdSubscribeNotifications, diameter.AppSh, s.SNR)
}

func (s *Server) log() *zap.Logger {
	if s.Log == nil {
		return zap.NewNop()
	}
	return s.Log
}

func exp(code uint32) error { return &diameter.ResultError{Code: code, Experimental: true} }

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return exp(diameter.DiameterErrorUserUnknown)
	}
	return err
}

// authorise returns the AS (by Origin-Host) after checking it may make
// request (opRead, opUpdate, opSubscribe) for every data reference of
// refs; denied is the Experimental-Result-Code otherwise (also for an AS
// the HSS does not know).
func (s *Server) authorise(ctx context.Context, req *diam.Message, request string, refs []store.DataReference, denied uint32) (store.ASAccess, error) {
	as, err := s.Store.ASByOriginHost(ctx, diameter.String(req, diameter.AVPOriginHost))
	if errors.Is(err, store.ErrNotFound) {
		return as, exp(denied)
	}
	if err != nil {
		return as, err
	}
	for _, r := range refs {
		if !as.Allowed(r, request) {
			return as, exp(denied)
		}
	}
	return as, nil
}

// user resolves User-Identity {Public-Identity | MSISDN} to the IMPU.
func (s *Server) user(ctx context.Context, req *diam.Message) (store.IMPU, error) {
	if pi := diameter.String(req, diameter.AVPUserIdentity, diameter.AVPPublicIdentity); pi != "" {
		// The form IMPUs are stored in, as Cx looks them up:
		// sip:+15550100@<domain>;user=phone finds tel:+15550100.
		pi = imsuri.Canonical(pi)
		u, err := s.Store.LookupIMPU(ctx, pi)
		if err == nil && u.MatchedByWildcard {
			u.Identity = pi
		}
		return u, notFound(err)
	}
	if a := diameter.Find(req, diameter.AVPUserIdentity, diameter.AVPMSISDN); a != nil {
		b, _ := diameter.AsBytes(a)
		u, err := s.Store.IMPUByMSISDN(ctx, decodeMSISDN(b))
		return u, notFound(err)
	}
	return store.IMPU{}, diameter.MissingAVP(diameter.AVPUserIdentity)
}
