package cx

// Push-Profile: PPR out, PPA in (TS 29.228 §6.2.2, TS 29.229 §6.1.11-12).

import (
	"context"
	"fmt"

	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
)

// SendPPR pushes the current user profile of impu's implicit registration
// set to its S-CSCF (Push-Profile-Request, TS 29.228 §6.2.2) with User-Data
// and Charging-Information. ErrNotAssigned / ErrNoPeer as SendRTR.
func (s *Server) SendPPR(ctx context.Context, impu string) error {
	a, conn, impi, _, err := s.target(ctx, impu)
	if err != nil {
		return err
	}
	if a.State == store.NotRegistered {
		return ErrNotAssigned
	}
	data, charging, err := s.UserData(ctx, impi, impu)
	if err != nil {
		return err
	}
	req := s.Node.NewRequest(diameter.CmdPushProfile, diameter.AppCx, conn.PeerRealm(), conn.PeerHost())
	req.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
	req.AddAVP(diameter.NewAVP(diameter.AVPUserData, datatype.OctetString(data)))
	if charging != nil {
		req.AddAVP(charging)
	}
	ans, err := conn.Send(ctx, req)
	if err != nil {
		return fmt.Errorf("cx: PPR to %s: %w", a.DiameterHost, err)
	}
	if !diameter.IsSuccess(ans) {
		return answerError("PPA", a.DiameterHost, ans)
	}
	return nil
}
