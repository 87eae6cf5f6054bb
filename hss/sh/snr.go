package sh

import (
	"context"
	"crypto/sha256"
	"errors"
	"slices"
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
// S-CSCFName and InitialFilterCriteria (the AS's own iFCs): every change
// of that data is sent in a PNR (notify.go). Other data this HSS holds →
// 5101, data it does not know → 5100, AS not allowed → 5104. An
// Expiry-Time that is not in the future → 5004; otherwise it is accepted
// and echoed, and the subscription ends then (no PNR afterwards, the row
// is purged). Send-Data-Indication USER_DATA_REQUESTED adds the current
// data to the SNA, as a UDR would read it.
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
	var ids []int64
	for _, w := range ws {
		var digest []byte
		if w.ref != store.RepositoryData {
			// What the AS is told from now on is compared with this.
			x, err := s.dataOf(ctx, who, w)
			if err != nil {
				return nil, err
			}
			sum := sha256.Sum256(x)
			digest = sum[:]
		}
		for _, si := range siKeys(w) {
			id, _, err := s.Store.SubscribeWith(ctx, store.SubscribeRequest{IMPU: u.Identity, ASHost: as.DiameterHost,
				Ref: w.ref, ServiceIndication: si, IdentitySets: w.identitySets16(), Expires: expiry, Digest: digest})
			if err != nil {
				return nil, notFound(err)
			}
			ids = append(ids, id)
		}
		if sdi == diameter.UserDataRequested {
			if err := s.fill(ctx, current, who, w); err != nil {
				return nil, err
			}
		}
	}
	s.subscribed(refs, ids)
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

// dataOf is the Sh-Data document of w alone about u: what a PNR of that
// subscription carries.
func (s *Server) dataOf(ctx context.Context, u *user, w want) ([]byte, error) {
	d := &Data{}
	if err := s.fill(ctx, d, u, w); err != nil {
		return nil, err
	}
	return d.Marshal()
}

// subscribed tells the notifier about new subscriptions ids (to refs):
// the Cx hook must look at registrations from now on, and the data is
// compared once more, in case it changed between the read and the
// subscription's commit.
func (s *Server) subscribed(refs []store.DataReference, ids []int64) {
	n := s.notifier()
	if slices.ContainsFunc(refs, func(r store.DataReference) bool { return slices.Contains(registrationRefs, r) }) {
		n.gate.set()
	}
	n.addIDs(ids...)
}

// Subs-Req-Type values (TS 29.329 §6.3.6).
const (
	SubsSubscribe   uint32 = 0
	SubsUnsubscribe uint32 = 1
)
