package cx

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"go.uber.org/zap"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/userdata"
)

// SAR answers a Server-Assignment-Request (TS 29.228 §6.1.2.1, TS 29.229
// §6.1.3-4) for every Server-Assignment-Type of TS 29.229 §6.3.15.
func (s *Server) SAR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	impi := diameter.String(req, diameter.AVPUserName)
	serverName := diameter.String(req, diameter.AVPServerName)
	origin := diameter.String(req, diameter.AVPOriginHost)
	sat, _ := diameter.Uint32(req, diameter.AVPServerAssignmentType)
	udaa, _ := diameter.Uint32(req, diameter.AVPUserDataAlreadyAvailable)
	var impus []string
	for _, a := range diameter.FindAll(req, diameter.AVPPublicIdentity) {
		if v, ok := diameter.AsString(a); ok && v != "" {
			impus = append(impus, v)
		}
	}
	if len(impus) == 0 {
		if impi == "" {
			return nil, diameter.MissingAVP(diameter.AVPPublicIdentity)
		}
		// No Public-Identity: the request covers every IRS of the IMPI
		// (TS 29.228 §6.1.2, deregistration by User-Name only).
		us, err := s.Store.IMPUsOfIMPI(ctx, impi)
		if err != nil {
			return nil, lookupErr(err)
		}
		seen := map[int64]bool{}
		for _, u := range us {
			if !seen[u.IRSID] {
				seen[u.IRSID] = true
				impus = append(impus, u.Identity)
			}
		}
		if len(impus) == 0 {
			return nil, exp(diameter.DiameterErrorUserUnknown)
		}
	}
	if len(impus) == 1 && impi != "" && serverName != "" &&
		(sat == diameter.SATRegistration || sat == diameter.SATReRegistration) {
		// Hot path: look-up, IRS-wide assignment and user data in one
		// round trip; nothing is written unless the pair holds.
		pi, sub, others, err := s.Store.PairAssignSubscription(ctx, impi, impus[0], serverName, origin,
			store.Registered, udaa != diameter.UserDataAlreadyAvailable)
		if err != nil {
			return nil, lookupErr(err)
		}
		if !pi.Associated {
			return nil, exp(diameter.DiameterErrorIdentitiesDontMatch)
		}
		ans := s.Node.Answer(req, diameter.DiameterSuccess)
		ans.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
		if udaa == diameter.UserDataAlreadyAvailable {
			return ans, nil
		}
		return s.addUserData(ans, impus[0], sub, others, store.Registered)
	}
	// One look-up per IMPU (pair with the IMPI when there is one): 5001 /
	// 5002, the IRS, the assigned S-CSCF and the state.
	var irss []int64 // distinct IRSs, in request order
	var impiID int64
	var a store.Assignment // of the primary (first) IMPU
	var primaryIRS int64
	for i, u := range impus {
		var info store.IMPU
		if impi != "" {
			pi, err := s.pair(ctx, impi, u)
			if err != nil {
				return nil, err
			}
			info, impiID = pi.IMPU, pi.IMPI.ID
			if i == 0 {
				a = store.Assignment{IMPU: pi.IMPU.Identity, SCSCFName: pi.SCSCFName, DiameterHost: pi.DiameterHost, State: pi.IMPU.State}
			}
		} else {
			var err error
			if info, err = s.Store.LookupIMPU(ctx, u); err != nil {
				return nil, lookupErr(err)
			}
			if i == 0 {
				if a, err = s.Store.Assignment(ctx, u); err != nil {
					return nil, lookupErr(err)
				}
			}
		}
		if i == 0 {
			primaryIRS = info.IRSID
		}
		if !slices.Contains(irss, info.IRSID) {
			irss = append(irss, info.IRSID)
		}
	}
	primary := impus[0]
	withData := func(ans *diam.Message, state store.UserState) (*diam.Message, error) {
		if impi != "" {
			ans.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
		}
		if udaa == diameter.UserDataAlreadyAvailable {
			// TS 29.228 §6.1.2.1: the S-CSCF has the profile; the HSS
			// need not build it again.
			return ans, nil
		}
		if impi == "" {
			data, charging, err := s.UserData(ctx, impi, primary)
			if err != nil {
				return nil, err
			}
			ans.AddAVP(diameter.NewAVP(diameter.AVPUserData, datatype.OctetString(data)))
			if charging != nil {
				ans.AddAVP(charging)
			}
			return ans, nil
		}
		sub, others, err := s.Store.SubscriptionIRS(ctx, impi, primaryIRS)
		if err != nil {
			return nil, lookupErr(err)
		}
		return s.addUserData(ans, primary, sub, others, state)
	}
	ok := func() *diam.Message { return s.Node.Answer(req, diameter.DiameterSuccess) }
	foreign := a.SCSCFName != "" && serverName != "" && !strings.EqualFold(a.SCSCFName, serverName)

	switch sat {
	case diameter.SATNoAssignment:
		// Profile download by the serving S-CSCF only.
		if a.SCSCFName == "" || foreign {
			return nil, res(diameter.DiameterUnableToComply)
		}
		return withData(ok(), a.State)

	case diameter.SATRegistration, diameter.SATReRegistration:
		if impi == "" {
			return nil, diameter.MissingAVP(diameter.AVPUserName)
		}
		if serverName == "" {
			return nil, diameter.MissingAVP(diameter.AVPServerName)
		}
		if udaa != diameter.UserDataAlreadyAvailable {
			// Assignment and user data in one round trip.
			sub, others, err := s.Store.AssignIRSAndSubscription(ctx, irss, serverName, origin, impiID,
				store.Registered, impi, primaryIRS)
			if err != nil {
				return nil, lookupErr(err)
			}
			ans := ok()
			ans.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
			return s.addUserData(ans, primary, sub, others, store.Registered)
		}
		for _, irs := range irss {
			if err := s.Store.AssignIRS(ctx, irs, serverName, origin, impiID, store.Registered); err != nil {
				return nil, lookupErr(err)
			}
		}
		return withData(ok(), store.Registered)

	case diameter.SATUnregisteredUser:
		if foreign && a.State != store.NotRegistered {
			ans := s.Node.AnswerExperimental(req, diameter.DiameterErrorIdentityAlreadyRegistered)
			ans.AddAVP(vstr(diameter.AVPServerName, a.SCSCFName))
			return ans, nil
		}
		if a.State == store.Registered {
			return withData(ok(), a.State)
		}
		if serverName == "" {
			return nil, diameter.MissingAVP(diameter.AVPServerName)
		}
		for _, irs := range irss {
			if err := s.Store.AssignIRS(ctx, irs, serverName, origin, 0, store.Unregistered); err != nil {
				return nil, lookupErr(err)
			}
		}
		return withData(ok(), store.Unregistered)

	case diameter.SATTimeoutDeregistration, diameter.SATUserDeregistration,
		diameter.SATAdministrativeDeregistration, diameter.SATDeregistrationTooMuchData:
		if !foreign {
			for _, u := range impus {
				if _, err := s.Store.ClearAssignment(ctx, u); err != nil {
					return nil, lookupErr(err)
				}
			}
		}
		return ok(), nil

	case diameter.SATTimeoutDeregistrationStoreServerName, diameter.SATUserDeregistrationStoreServerName:
		// The HSS keeps the S-CSCF name (DIAMETER_SUCCESS, not 2004); the
		// state becomes unregistered when services for that state exist.
		if !foreign {
			for _, u := range impus {
				st := store.NotRegistered
				has, err := s.Store.HasUnregisteredServices(ctx, u)
				if err != nil {
					return nil, lookupErr(err)
				}
				if has {
					st = store.Unregistered
				}
				if _, err := s.Store.SetUserState(ctx, u, st); err != nil {
					return nil, lookupErr(err)
				}
			}
		}
		return ok(), nil

	case diameter.SATAuthenticationFailure, diameter.SATAuthenticationTimeout:
		// Clear the name stored by MAR while registration was pending;
		// a registered user keeps its S-CSCF.
		if a.State == store.NotRegistered && !foreign {
			for _, u := range impus {
				if _, err := s.Store.ClearAssignment(ctx, u); err != nil {
					return nil, lookupErr(err)
				}
			}
		}
		return ok(), nil

	case diameter.SATRestoration:
		if serverName == "" {
			return nil, diameter.MissingAVP(diameter.AVPServerName)
		}
		for _, u := range impus {
			if _, err := s.Store.SetPendingAssignment(ctx, u, serverName, origin, impi); err != nil {
				return nil, lookupErr(err)
			}
		}
		return withData(ok(), a.State)

	case diameter.SATAAAUserDataRequest, diameter.SATPGWUpdate:
		// Wx/SWx only; an IMS HSS does not serve them on Cx.
		return nil, exp(diameter.DiameterErrorInAssignmentType)
	}
	return nil, &diameter.ResultError{Code: diameter.DiameterInvalidAVPValue,
		FailedAVP: diameter.Find(req, diameter.AVPServerAssignmentType)}
}

// addUserData adds User-Data (TS 29.228 Annex E), Charging-Information and,
// for a registered user, Associated-Identities (the other IMPIs of the
// subscription, TS 29.229 §6.3.33) to a SAA.
func (s *Server) addUserData(ans *diam.Message, impu string, sub *store.Subscription, others []string, state store.UserState) (*diam.Message, error) {
	data, err := userdata.Marshal(BuildSubscription(sub))
	if err != nil {
		return nil, fmt.Errorf("cx: user data of %s: %w", impu, err)
	}
	ans.AddAVP(diameter.NewAVP(diameter.AVPUserData, datatype.OctetString(data)))
	if charging := chargingAVP(sub.Charging); charging != nil {
		ans.AddAVP(charging)
	}
	if state == store.Registered && len(others) > 0 {
		kids := make([]*diam.AVP, 0, len(others))
		for _, o := range others {
			kids = append(kids, diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(o)))
		}
		ans.AddAVP(diameter.Grouped(diameter.AVPAssociatedIdentities, kids...))
	}
	return ans, nil
}

// LIR answers a Location-Info-Request (TS 29.228 §6.1.4.1).
func (s *Server) LIR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	impu := diameter.String(req, diameter.AVPPublicIdentity)
	a, err := s.Store.Assignment(ctx, impu)
	if err != nil {
		return nil, lookupErr(err)
	}
	if a.State == store.Registered && a.SCSCFName != "" {
		ans := s.Node.Answer(req, diameter.DiameterSuccess)
		ans.AddAVP(vstr(diameter.AVPServerName, a.SCSCFName))
		return ans, nil
	}
	has, err := s.Store.HasUnregisteredServices(ctx, impu)
	if err != nil {
		return nil, lookupErr(err)
	}
	if !has {
		return nil, exp(diameter.DiameterErrorIdentityNotRegistered)
	}
	if a.SCSCFName != "" {
		ans := s.Node.Answer(req, diameter.DiameterSuccess)
		ans.AddAVP(vstr(diameter.AVPServerName, a.SCSCFName))
		return ans, nil
	}
	caps, err := s.serverCapabilities(ctx)
	if err != nil {
		return nil, err
	}
	ans := s.Node.AnswerExperimental(req, diameter.DiameterUnregisteredService)
	ans.AddAVP(caps)
	return ans, nil
}

// Errors of SendRTR and SendPPR.
var (
	// ErrNotAssigned: no S-CSCF serves the IMPU, there is nobody to tell.
	ErrNotAssigned = errors.New("cx: no S-CSCF assigned")
	// ErrNoPeer: the assigned S-CSCF has no open Diameter connection.
	ErrNoPeer = errors.New("cx: assigned S-CSCF not connected")
)

// peerConn finds the open Cx connection of Diameter host host.
func (s *Server) peerConn(host string) *diameter.Conn {
	for _, c := range s.Node.Conns() {
		if strings.EqualFold(c.PeerHost(), host) && c.Supports(uint32(diameter.AppCx)) {
			return c
		}
	}
	return nil
}

// target resolves the serving S-CSCF of impu, its connection, a User-Name
// and the IRS members.
func (s *Server) target(ctx context.Context, impu string) (a store.Assignment, conn *diameter.Conn, impi string, members []store.IMPU, err error) {
	a, err = s.Store.Assignment(ctx, impu)
	if err != nil {
		return
	}
	if a.SCSCFName == "" {
		err = ErrNotAssigned
		return
	}
	if conn = s.peerConn(a.DiameterHost); conn == nil {
		err = fmt.Errorf("%w: %q", ErrNoPeer, a.DiameterHost)
		return
	}
	impi = a.IMPI
	if impi == "" {
		var list []string
		if list, err = s.Store.IMPIsOfIMPU(ctx, impu); err != nil {
			return
		}
		if len(list) > 0 {
			impi = list[0]
		}
	}
	u, err := s.Store.LookupIMPU(ctx, impu)
	if err != nil {
		return
	}
	members, err = s.Store.IRSMembers(ctx, u.IRSID)
	return
}

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
		return fmt.Errorf("cx: RTA from %s: result %d", a.DiameterHost, code)
	}
	if _, err := s.Store.ClearAssignment(ctx, impu); err != nil {
		return err
	}
	s.log().Info("RTR done", zap.String("impu", impu), zap.String("scscf", a.DiameterHost), zap.Uint32("result", code))
	return nil
}

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
		code, _, _ := diameter.Result(ans)
		return fmt.Errorf("cx: PPA from %s: result %d", a.DiameterHost, code)
	}
	return nil
}
