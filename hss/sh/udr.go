package sh

import (
	"context"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
)

// User-Data: UDR in, UDA out (TS 29.328 §6.1.1, TS 29.329 §6.1.1-2).

// UDR answers a User-Data-Request (TS 29.328 §6.1.1.1), in this order:
// Data-Reference missing → 5005; one this HSS does not know or hold →
// 5100; AS not allowed to read every reference (as_permission) → 5102;
// unknown user → 5001; a qualifier missing (Service-Indication,
// Requested-Domain) → 5005; data that does not apply to the identity →
// 5101; CS/PS-domain data → 4100. Otherwise Sh-Data with the data of every
// reference (read.go).
func (s *Server) UDR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	refs, err := dataRefs(req, opRead)
	if err != nil {
		return nil, err
	}
	as, err := s.authorise(ctx, req, opRead, refs, diameter.DiameterErrorUserDataCannotBeRead)
	if err != nil {
		return nil, err
	}
	u, err := s.user(ctx, req)
	if err != nil {
		return nil, err
	}
	ws, err := wants(req, refs, as, u, diameter.DiameterErrorUserDataCannotBeRead)
	if err != nil {
		return nil, err
	}
	for _, w := range ws {
		if domainData(w.ref) {
			return nil, exp(diameter.DiameterUserDataNotAvailable)
		}
	}
	d := &Data{}
	who := &user{IMPU: u}
	for _, w := range ws {
		if err := s.fill(ctx, d, who, w); err != nil {
			return nil, err
		}
	}
	x, err := d.Marshal()
	if err != nil {
		return nil, err
	}
	ans := s.Node.Answer(req, diameter.DiameterSuccess)
	ans.AddAVP(diameter.NewAVP(diameter.AVPShUserData, datatype.OctetString(x)))
	return ans, nil
}
