package sh

import (
	"bytes"
	"context"
	"errors"

	"github.com/fiorix/go-diameter/v4/diam"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
)

// Profile-Update: PUR in, PUA out, and the notifications it triggers
// (TS 29.328 §6.1.2, TS 29.329 §6.1.3-4).

// PUR answers a Profile-Update-Request for RepositoryData (TS 29.328
// §6.1.2.1): a Data-Reference this HSS does not know → 5100, other data
// (which an AS cannot update here) → 5101, AS not allowed → 5103. The
// PNRs to the other subscribed ASes are queued with the write (TS 29.328
// §6.1.4).
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
	for _, r := range d.RepositoryData {
		var data []byte
		if r.ServiceData != nil {
			data = bytes.TrimSpace(r.ServiceData.Inner)
			if data == nil {
				data = []byte{}
			}
		}
		pnr, err := (&Data{RepositoryData: []RepositoryData{r}}).Marshal()
		if err != nil {
			return nil, err
		}
		err = s.Store.PutRepositoryData(ctx, u.Identity, r.ServiceIndication, r.SequenceNumber, data,
			&store.ShNotice{UserData: pnr, Except: as.DiameterHost})
		switch {
		case errors.Is(err, store.ErrOutOfSync), errors.Is(err, store.ErrNotFound):
			return nil, exp(diameter.DiameterErrorTransparentDataOutOfSync)
		case err != nil:
			return nil, err
		}
	}
	return s.Node.Answer(req, diameter.DiameterSuccess), nil
}
