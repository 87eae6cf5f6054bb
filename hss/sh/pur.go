package sh

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"go.uber.org/zap"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
)

// Profile-Update: PUR in, PUA out, and the notifications it triggers
// (TS 29.328 §6.1.2, TS 29.329 §6.1.3-4).

// PUR answers a Profile-Update-Request for RepositoryData (TS 29.328
// §6.1.2.1): a Data-Reference this HSS does not know → 5100, other data
// (which an AS cannot update here) → 5101, AS not allowed → 5103; then
// notifies subscribed ASes (PNR) of the change.
func (s *Server) PUR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	refs, err := dataRefs(req, opUpdate)
	if err != nil {
		return nil, err
	}
	as, err := s.authorise(ctx, req, opUpdate, refs, diameter.DiameterErrorUserDataCannotBeModified)
	if err != nil {
		return nil, err
	}
	u, err := s.user(ctx, req)
	if err != nil {
		return nil, err
	}
	ud := diameter.Find(req, diameter.AVPShUserData)
	if ud == nil {
		return nil, diameter.MissingAVP(diameter.AVPShUserData)
	}
	raw, _ := diameter.AsBytes(ud)
	d, err := ParseData(raw)
	if err != nil || len(d.RepositoryData) == 0 {
		return nil, exp(diameter.DiameterErrorUserDataNotRecognized)
	}
	var changed []RepositoryData
	for _, r := range d.RepositoryData {
		var data []byte
		if r.ServiceData != nil {
			data = bytes.TrimSpace(r.ServiceData.Inner)
			if data == nil {
				data = []byte{}
			}
		}
		err := s.Store.PutRepositoryData(ctx, u.Identity, r.ServiceIndication, r.SequenceNumber, data, nil)
		switch {
		case errors.Is(err, store.ErrOutOfSync), errors.Is(err, store.ErrNotFound):
			return nil, exp(diameter.DiameterErrorTransparentDataOutOfSync)
		case err != nil:
			return nil, err
		}
		changed = append(changed, r)
	}
	go s.notify(u.Identity, as.DiameterHost, changed)
	return s.Node.Answer(req, diameter.DiameterSuccess), nil
}

// notify sends PNR to every AS subscribed to the changed repository data
// except the one that changed it (TS 29.328 §6.1.4).
func (s *Server) notify(impu, except string, changed []RepositoryData) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, r := range changed {
		subs, err := s.Store.Subscribers(ctx, impu, store.RepositoryData, r.ServiceIndication)
		if err != nil {
			s.log().Warn("PNR: subscribers", zap.String("impu", impu), zap.Error(err))
			continue
		}
		for _, sub := range subs {
			if strings.EqualFold(sub.ASHost, except) || sub.ASHost == "" {
				continue
			}
			if err := s.SendPNR(ctx, sub.ASHost, impu, &Data{RepositoryData: []RepositoryData{r}}); err != nil {
				s.log().Warn("PNR failed", zap.String("as", sub.ASHost), zap.String("impu", impu), zap.Error(err))
			}
		}
	}
}
