package sh

import (
	"context"
	"errors"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
)

// Subscribe-Notifications: SNR in, SNA out (TS 29.328 §6.1.3, TS 29.329
// §6.1.5-6).

// SNR answers a Subscribe-Notifications-Request (TS 29.328 §6.1.3).
func (s *Server) SNR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	as, refs, err := s.access(ctx, req, "snr", diameter.DiameterErrorUserDataCannotBeNotified)
	if err != nil {
		return nil, err
	}
	u, err := s.user(ctx, req)
	if err != nil {
		return nil, err
	}
	typ, _ := diameter.Uint32(req, diameter.AVPSubsReqType)
	sis := []string{""}
	if all := diameter.FindAll(req, diameter.AVPServiceIndication); len(all) > 0 {
		sis = sis[:0]
		for _, a := range all {
			v, _ := diameter.AsString(a)
			sis = append(sis, v)
		}
	}
	var expiry time.Time
	if a := diameter.Find(req, diameter.AVPExpiryTime); a != nil {
		if t, ok := a.Data.(datatype.Time); ok {
			expiry = time.Time(t)
		}
	}
	for _, r := range refs {
		for _, si := range sis {
			if r != store.RepositoryData {
				si = ""
			}
			switch typ {
			case SubsSubscribe:
				if _, err := s.Store.Subscribe(ctx, u.Identity, as.DiameterHost, r, si, expiry); err != nil {
					return nil, notFound(err)
				}
			case SubsUnsubscribe:
				if err := s.Store.Unsubscribe(ctx, u.Identity, as.DiameterHost, r, si); err != nil && !errors.Is(err, store.ErrNotFound) {
					return nil, err
				}
			default:
				return nil, &diameter.ResultError{Code: diameter.DiameterInvalidAVPValue,
					FailedAVP: diameter.Find(req, diameter.AVPSubsReqType)}
			}
		}
	}
	ans := s.Node.Answer(req, diameter.DiameterSuccess)
	if typ == SubsSubscribe && !expiry.IsZero() {
		ans.AddAVP(diameter.NewAVP(diameter.AVPExpiryTime, datatype.Time(expiry)))
	}
	return ans, nil
}

// Subs-Req-Type values (TS 29.329 §6.3.6).
const (
	SubsSubscribe   uint32 = 0
	SubsUnsubscribe uint32 = 1
)
