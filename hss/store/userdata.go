package store

import (
	"strconv"

	"github.com/imscore/imscore/pkg/userdata"
)

// BuildIMSSubscription converts SubscriptionData's result into the
// TS 29.228 Annex E user profile (User-Data of SAA/PPR, TS 29.229 §6.3.15).
// Negative numbers (which the schema's CHECKs exclude) are clamped to 0.
// The result is not validated: call its Validate or userdata.Marshal.
func BuildIMSSubscription(sub *Subscription) *userdata.IMSSubscription {
	out := &userdata.IMSSubscription{PrivateID: sub.PrivateID}
	for _, p := range sub.Profiles {
		sp := userdata.ServiceProfile{}
		for _, pi := range p.PublicIdentities {
			x := userdata.PublicIdentity{
				BarringIndication: userdata.Bool(pi.Barring),
				Identity:          pi.Identity,
				IdentityType:      userdata.IdentityType(pi.Type.Code()),
				DisplayName:       pi.DisplayName,
			}
			switch pi.Type {
			case WildcardedPSI:
				x.WildcardedPSI = pi.Identity
			case WildcardedIMPU:
				x.WildcardedIMPU = pi.Identity
			}
			sp.PublicIdentities = append(sp.PublicIdentities, x)
		}
		if p.SubscribedMediaProfileID != nil {
			v := uint32(max(*p.SubscribedMediaProfileID, 0))
			sp.CoreNetworkServicesAuthorization = &userdata.CoreNetworkServicesAuthorization{SubscribedMediaProfileID: &v}
		}
		for _, f := range p.IFCs {
			a := f.ApplicationServer
			dh := userdata.DefaultHandling(a.DefaultHandling)
			x := userdata.InitialFilterCriteria{
				Priority: int(f.Priority),
				ApplicationServer: userdata.ApplicationServer{
					ServerName:              a.ServerName,
					DefaultHandling:         &dh,
					ServiceInfo:             a.ServiceInfo,
					IncludeRegisterRequest:  userdata.Flag(a.IncludeRegisterRequest),
					IncludeRegisterResponse: userdata.Flag(a.IncludeRegisterResponse),
				},
			}
			if f.ProfilePartIndicator != nil {
				ppi := userdata.ProfilePartIndicator(*f.ProfilePartIndicator)
				x.ProfilePartIndicator = &ppi
			}
			if tp := f.TriggerPoint; tp != nil {
				x.TriggerPoint = &userdata.TriggerPoint{ConditionTypeCNF: userdata.Bool(tp.ConditionTypeCNF)}
				for _, s := range tp.SPTs {
					x.TriggerPoint.SPTs = append(x.TriggerPoint.SPTs, buildSPT(s))
				}
			}
			sp.InitialFilterCriteria = append(sp.InitialFilterCriteria, x)
		}
		for _, id := range p.SharedIFCSetIDs {
			sp.SharedIFCSetIDs = append(sp.SharedIFCSetIDs, uint32(max(id, 0)))
		}
		out.ServiceProfiles = append(out.ServiceProfiles, sp)
	}
	return out
}

func buildSPT(s SPT) userdata.SPT {
	x := userdata.SPT{ConditionNegated: userdata.Bool(s.ConditionNegated), Groups: []uint32{uint32(max(s.Group, 0))}}
	v := s.Value
	var content *string
	if s.Content != "" {
		c := s.Content
		content = &c
	}
	switch s.Type {
	case SPTMethod:
		x.Method = &v
		for _, r := range s.RegistrationTypes {
			x.RegistrationTypes = append(x.RegistrationTypes, userdata.RegistrationType(r))
		}
	case SPTRequestURI:
		x.RequestURI = &v
	case SPTSIPHeader:
		x.SIPHeader = &userdata.SIPHeader{Header: v, Content: content}
	case SPTSessionCase:
		n, _ := strconv.Atoi(v)
		sc := userdata.SessionCase(n)
		x.SessionCase = &sc
	case SPTSessionDescription:
		x.SessionDescription = &userdata.SessionDescription{Line: v, Content: content}
	}
	return x
}
