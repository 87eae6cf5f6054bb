package cx

// Registration-Termination: RTR out, RTA in (TS 29.228 §6.1.3, TS 29.229
// §6.1.9-10).

import (
	"context"
	"fmt"
	"strings"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/diameter"
)

// ReasonCode maps an operator reason ("", "permanent", "new-server",
// "server-change", "remove-scscf") to Deregistration-Reason/Reason-Code
// (TS 29.229 §6.3.17); unknown text is PERMANENT_TERMINATION.
func ReasonCode(reason string) uint32 {
	switch strings.ToLower(strings.ReplaceAll(strings.TrimSpace(reason), "_", "-")) {
	case "new-server", "new-server-assigned":
		return diameter.ReasonNewServerAssigned
	case "server-change":
		return diameter.ReasonServerChange
	case "remove-scscf", "remove-s-cscf":
		return diameter.ReasonRemoveSCSCF
	}
	return diameter.ReasonPermanentTermination
}

// SendRTR sends a Registration-Termination-Request for impu's implicit
// registration set to its assigned S-CSCF over the open connection (TS
// 29.228 §6.1.3) and clears the assignment when the RTA is successful (or
// the S-CSCF does not know the user). ErrNotAssigned when nothing is
// assigned; ErrNoPeer when the S-CSCF is not connected.
func (s *Server) SendRTR(ctx context.Context, impu string, reason uint32, info string) error {
	a, conn, impi, members, err := s.target(ctx, impu)
	if err != nil {
		return err
	}
	req := s.Node.NewRequest(diameter.CmdRegistrationTermination, diameter.AppCx, conn.PeerRealm(), conn.PeerHost())
	req.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
	for _, m := range members {
		req.AddAVP(vstr(diameter.AVPPublicIdentity, m.Identity))
	}
	dr := []*diam.AVP{diameter.NewAVP(diameter.AVPReasonCode, datatype.Enumerated(reason))}
	if info != "" {
		dr = append(dr, vstr(diameter.AVPReasonInfo, info))
	}
	req.AddAVP(diameter.Grouped(diameter.AVPDeregistrationReason, dr...))
	ans, err := conn.Send(ctx, req)
	if err != nil {
		return fmt.Errorf("cx: RTR to %s: %w", a.DiameterHost, err)
	}
	code, _, _ := diameter.Result(ans)
	if !diameter.IsSuccess(ans) && code != diameter.DiameterErrorUserUnknown {
		return answerError("RTA", a.DiameterHost, ans)
	}
	cleared, err := s.Store.ClearAssignment(ctx, impu)
	if err != nil {
		return err
	}
	if len(cleared) > 0 {
		s.registrationChanged(cleared[0].IRSID)
	}
	s.log().Info("RTR done", zap.String("impu", impu), zap.String("scscf", a.DiameterHost), zap.Uint32("result", code))
	return nil
}
