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

// SNR answers a Subscribe-Notifications-Request (TS 29.328 §6.1.3.1).
// Subscriptions are accepted for RepositoryData (per Service-Indication),
// IMSPublicIdentity (with its Identity-Set values), IMSUserState,
// S-CSCFName and InitialFilterCriteria (the AS's own iFCs); PUR sends the
// PNRs of repository data changes. Other data this HSS holds → 5101, data
// it does not know → 5100, AS not allowed → 5104. An Expiry-Time that is
// not in the future → 5004; otherwise it is accepted and echoed, and the
// subscription ends then. Send-Data-Indication USER_DATA_REQUESTED adds
// the current data to the SNA, as a UDR would read it.
func (s *Server) SNR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	typ, _ := diameter.Uint32(req, diameter.AVPSubsReqType)
	if typ != SubsSubscribe && typ != SubsUnsubscribe {
		return nil, &diameter.ResultError{Code: diameter.DiameterInvalidAVPValue,
			FailedAVP: diameter.Find(req, diameter.AVPSubsReqType)}
	}
	refs, err := dataRefs(req, opSubscribe)
	if err != nil {
		return nil, err
	}
	as, err := s.authorise(ctx, req, opSubscribe, refs, diameter.DiameterErrorUserDataCannotBeNotified)
	if err != nil {
		return nil, err
	}
	u, err := s.user(ctx, req)
	if err != nil {
		return nil, err
	}
	ws, err := wants(req, refs, as, u, diameter.DiameterErrorUserDataCannotBeNotified)
	if err != nil {
		return nil, err
	}
	if typ == SubsUnsubscribe {
		for _, w := range ws {
			for _, si := range siKeys(w) {
				if err := s.Store.Unsubscribe(ctx, u.Identity, as.DiameterHost, w.ref, si); err != nil && !errors.Is(err, store.ErrNotFound) {
					return nil, err
				}
			}
		}
		return s.Node.Answer(req, diameter.DiameterSuccess), nil
	}
	var expiry time.Time
	if a := diameter.Find(req, diameter.AVPExpiryTime); a != nil {
		t, ok := a.Data.(datatype.Time)
		if !ok || !time.Time(t).After(time.Now()) {
			return nil, &diameter.ResultError{Code: diameter.DiameterInvalidAVPValue, FailedAVP: a}
		}
		expiry = time.Time(t)
	}
	sdi, _ := diameter.Uint32(req, diameter.AVPSendDataIndication)
	who := &user{IMPU: u}
	current := &Data{} // Send-Data-Indication
	for _, w := range ws {
		for _, si := range siKeys(w) {
			if _, _, err := s.Store.SubscribeWith(ctx, store.SubscribeRequest{IMPU: u.Identity, ASHost: as.DiameterHost,
				Ref: w.ref, ServiceIndication: si, IdentitySets: w.identitySets16(), Expires: expiry}); err != nil {
				return nil, notFound(err)
			}
		}
		if sdi == diameter.UserDataRequested {
			if err := s.fill(ctx, current, who, w); err != nil {
				return nil, err
			}
		}
	}
	ans := s.Node.Answer(req, diameter.DiameterSuccess)
	if sdi == diameter.UserDataRequested {
		x, err := current.Marshal()
		if err != nil {
			return nil, err
		}
		ans.AddAVP(diameter.NewAVP(diameter.AVPShUserData, datatype.OctetString(x)))
	}
	if !expiry.IsZero() {
		ans.AddAVP(diameter.NewAVP(diameter.AVPExpiryTime, datatype.Time(expiry)))
	}
	return ans, nil
}

// siKeys are the service_indication values of w's subscriptions: its
// Service-Indications for RepositoryData, "" otherwise.
func siKeys(w want) []string {
	if w.ref == store.RepositoryData {
		return w.sis
	}
	return []string{""}
}

// Subs-Req-Type values (TS 29.329 §6.3.6).
const (
	SubsSubscribe   uint32 = 0
	SubsUnsubscribe uint32 = 1
)
