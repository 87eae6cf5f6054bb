package cx

// User-Authorization: UAR in, UAA out (TS 29.228 §6.1.1, TS 29.229 §6.1.1-2).

import (
	"context"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
)

// serverCapabilities builds Server-Capabilities (TS 29.229 §6.3.4) from the
// provisioned S-CSCFs: the union of their capabilities and their names;
// nil when no S-CSCF is provisioned.
func (s *Server) serverCapabilities(ctx context.Context) (*diam.AVP, error) {
	list, err := s.Store.SCSCFCapabilities(ctx)
	if err != nil {
		return nil, err
	}
	var kids []*diam.AVP
	seenM, seenO := map[int32]bool{}, map[int32]bool{}
	for _, x := range list {
		for _, c := range x.MandatoryCapabilities {
			if !seenM[c] {
				seenM[c] = true
				kids = append(kids, diameter.NewAVP(diameter.AVPMandatoryCapability, datatype.Unsigned32(uint32(c))))
			}
		}
	}
	for _, x := range list {
		for _, c := range x.OptionalCapabilities {
			if !seenO[c] {
				seenO[c] = true
				kids = append(kids, diameter.NewAVP(diameter.AVPOptionalCapability, datatype.Unsigned32(uint32(c))))
			}
		}
	}
	for _, x := range list {
		kids = append(kids, vstr(diameter.AVPServerName, x.Name))
	}
	if len(kids) == 0 {
		// Nothing provisioned: no requirement, and no empty grouped AVP
		// (Wireshark flags one; Kamailio's and our I-CSCF read an absent
		// Server-Capabilities as "any S-CSCF").
		return nil, nil
	}
	return diameter.Grouped(diameter.AVPServerCapabilities, kids...), nil
}

// UAR answers a User-Authorization-Request (TS 29.228 §6.1.1.1).
func (s *Server) UAR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	impi := diameter.String(req, diameter.AVPUserName)
	impuS := publicIdentity(req)
	visited := diameter.String(req, diameter.AVPVisitedNetworkIdentifier)
	uat, ok := diameter.Uint32(req, diameter.AVPUserAuthorizationType)
	if !ok {
		uat = diameter.UATRegistration
	}
	if uat > diameter.UATRegistrationAndCapabilities {
		return nil, &diameter.ResultError{Code: diameter.DiameterInvalidAVPValue,
			FailedAVP: diameter.Find(req, diameter.AVPUserAuthorizationType)}
	}
	pi, err := s.pair(ctx, impi, impuS)
	if err != nil {
		return nil, err
	}
	p, u := pi.IMPI, pi.IMPU
	if uat != diameter.UATDeRegistration {
		// Step 3: identities that may not register at all (PSIs,
		// can-register false) → DIAMETER_AUTHORIZATION_REJECTED.
		if !u.CanRegister || u.Type == store.DistinctPSI || u.Type == store.WildcardedPSI {
			return nil, res(diameter.DiameterAuthorizationRejected)
		}
		// A barred IMPU registers when its implicit registration set holds
		// a non-barred one (TS 29.228 §6.1.1.1 step 3, TS 23.003 §13.4B: a
		// USIM-only UE registers with its barred temporary IMPU); only a
		// set that is barred throughout is rejected.
		if u.Barring {
			usable, err := s.irsHasNonBarred(ctx, u)
			if err != nil {
				return nil, err
			}
			if !usable {
				return nil, res(diameter.DiameterAuthorizationRejected)
			}
		}
		// Step 4: roaming (no query for the home network).
		allowed, err := s.Store.VisitedNetworkAllowedIMSU(ctx, p.IMSUID, impi, visited)
		if err != nil {
			return nil, lookupErr(err)
		}
		if !allowed {
			return nil, exp(diameter.DiameterErrorRoamingNotAllowed)
		}
	}
	state, scscf := u.State, pi.SCSCFName
	switch uat {
	case diameter.UATDeRegistration:
		if state == store.NotRegistered || scscf == "" {
			return nil, exp(diameter.DiameterErrorIdentityNotRegistered)
		}
		ans := s.Node.Answer(req, diameter.DiameterSuccess)
		ans.AddAVP(vstr(diameter.AVPServerName, scscf))
		return ans, nil
	case diameter.UATRegistrationAndCapabilities:
		// Step 5: the I-CSCF wants to select an S-CSCF anew (the assigned
		// one did not answer): capabilities whatever the state, Result-Code
		// DIAMETER_SUCCESS, no Server-Name.
		caps, err := s.serverCapabilities(ctx)
		if err != nil {
			return nil, err
		}
		ans := s.Node.Answer(req, diameter.DiameterSuccess)
		if caps != nil {
			ans.AddAVP(caps)
		}
		return ans, nil
	}
	// REGISTRATION. Step 5: registered, unregistered (S-CSCF kept for
	// unregistered services), or not registered with an S-CSCF name
	// stored (pending after MAR, or kept by *_STORE_SERVER_NAME) →
	// DIAMETER_SUBSEQUENT_REGISTRATION + that name.
	if scscf != "" {
		ans := s.Node.AnswerExperimental(req, diameter.DiameterSubsequentRegistration)
		ans.AddAVP(vstr(diameter.AVPServerName, scscf))
		return ans, nil
	}
	// No S-CSCF name stored → DIAMETER_FIRST_REGISTRATION with the
	// subscription's preferred S-CSCF, else Server-Capabilities.
	ans := s.Node.AnswerExperimental(req, diameter.DiameterFirstRegistration)
	if p.PreferredSCSCF != "" {
		ans.AddAVP(vstr(diameter.AVPServerName, p.PreferredSCSCF))
		return ans, nil
	}
	caps, err := s.serverCapabilities(ctx)
	if err != nil {
		return nil, err
	}
	if caps != nil {
		ans.AddAVP(caps)
	}
	return ans, nil
}

// irsHasNonBarred reports whether u's implicit registration set holds an
// IMPU that is not barred.
func (s *Server) irsHasNonBarred(ctx context.Context, u store.IMPU) (bool, error) {
	members, err := s.Store.IRSMembers(ctx, u.IRSID)
	if err != nil {
		return false, lookupErr(err)
	}
	for _, m := range members {
		if !m.Barring {
			return true, nil
		}
	}
	return false, nil
}
