package cx

// Server-Assignment: SAR in, SAA out with the user profile (TS 29.228
// §6.1.2, TS 29.229 §6.1.3-4).

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/hss/profile"
	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/imsuri"
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
			impus = append(impus, imsuri.Canonical(v))
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
		if pi.IMPU.State != store.Registered || pi.SCSCFName != serverName {
			// pi is the state before: this SAR changed it.
			s.registrationChanged(pi.IMPU.IRSID)
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
			s.registrationChanged(irss...)
			ans := ok()
			ans.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
			return s.addUserData(ans, primary, sub, others, store.Registered)
		}
		for _, irs := range irss {
			if err := s.Store.AssignIRS(ctx, irs, serverName, origin, impiID, store.Registered); err != nil {
				return nil, lookupErr(err)
			}
		}
		s.registrationChanged(irss...)
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
		s.registrationChanged(irss...)
		return withData(ok(), store.Unregistered)

	case diameter.SATTimeoutDeregistration, diameter.SATUserDeregistration,
		diameter.SATAdministrativeDeregistration, diameter.SATDeregistrationTooMuchData:
		if !foreign {
			for _, u := range impus {
				if _, err := s.Store.ClearAssignment(ctx, u); err != nil {
					return nil, lookupErr(err)
				}
			}
			s.registrationChanged(irss...)
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
			s.registrationChanged(irss...)
		}
		return ok(), nil

	case diameter.SATAuthenticationFailure, diameter.SATAuthenticationTimeout:
		// Clear the name stored by MAR while registration was pending;
		// a registered user keeps its S-CSCF. The state is checked again
		// under the row lock: a registration that completed since a was
		// read (the UE retried at once) must not be undone.
		if a.State == store.NotRegistered && !foreign {
			changed := false
			for _, u := range impus {
				_, cleared, err := s.Store.ClearPendingAssignment(ctx, u)
				if err != nil {
					return nil, lookupErr(err)
				}
				changed = changed || cleared
			}
			if changed {
				s.registrationChanged(irss...)
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
		s.registrationChanged(irss...)
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
	data, err := userdata.Marshal(profile.Subscription(sub))
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

// UserData builds the User-Data XML (TS 29.228 Annex E) for impu's
// implicit registration set as seen by impi ("" = none), and the
// Charging-Information AVP (nil when none).
func (s *Server) UserData(ctx context.Context, impi, impu string) ([]byte, *diam.AVP, error) {
	if impi == "" {
		// No User-Name (e.g. UNREGISTERED_USER): report the first IMPI
		// associated with the IMPU; PrivateID is mandatory in the XML.
		list, err := s.Store.IMPIsOfIMPU(ctx, impu)
		if err != nil {
			return nil, nil, lookupErr(err)
		}
		if len(list) > 0 {
			impi = list[0]
		}
	}
	sub, err := s.Store.SubscriptionData(ctx, impi, impu)
	if err != nil {
		return nil, nil, lookupErr(err)
	}
	x, err := userdata.Marshal(profile.Subscription(sub))
	if err != nil {
		return nil, nil, fmt.Errorf("cx: user data of %s: %w", impu, err)
	}
	return x, chargingAVP(sub.Charging), nil
}

func chargingAVP(ci *store.ChargingInfo) *diam.AVP {
	if ci == nil {
		return nil
	}
	return (&cxclient.ChargingInformation{PrimaryECF: ci.PrimaryECF, SecondaryECF: ci.SecondaryECF,
		PrimaryCCF: ci.PrimaryCCF, SecondaryCCF: ci.SecondaryCCF}).AVP()
}
