// Package profile builds the TS 29.228 user data (IMSSubscription: service
// profiles, public identities, iFCs, shared iFC sets) from what hss/store
// reads. Cx (SAA, PPR) and Sh (UDA, PNR) both send it; neither imports the
// other.
package profile

import (
	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/userdata"
)

// Subscription converts what store.SubscriptionData gathered into the
// TS 29.228 Annex B/E IMSSubscription carried in the User-Data AVP of SAA
// and PPR. iFC priorities that collide inside one profile (the schema wants
// them unique) are moved up to the next free value, keeping the order.
// Negative numbers (which the schema's CHECKs exclude) become 0. The
// result is not validated: userdata.Marshal does that. This is the only
// store → userdata conversion (Sh uses IFC).
func Subscription(sub *store.Subscription) *userdata.IMSSubscription {
	out := &userdata.IMSSubscription{PrivateID: sub.PrivateID}
	for _, sp := range sub.Profiles {
		p := userdata.ServiceProfile{}
		for _, pi := range sp.PublicIdentities {
			x := userdata.PublicIdentity{
				BarringIndication: userdata.Bool(pi.Barring),
				Identity:          pi.Identity,
				IdentityType:      userdata.IdentityType(pi.Type.Code()),
				DisplayName:       pi.DisplayName,
			}
			switch pi.Type {
			case store.WildcardedPSI:
				x.WildcardedPSI = pi.Identity
			case store.WildcardedIMPU:
				x.WildcardedIMPU = pi.Identity
			}
			p.PublicIdentities = append(p.PublicIdentities, x)
		}
		if sp.SubscribedMediaProfileID != nil {
			v := uint32(max(*sp.SubscribedMediaProfileID, 0))
			p.CoreNetworkServicesAuthorization = &userdata.CoreNetworkServicesAuthorization{SubscribedMediaProfileID: &v}
		}
		used := map[int]bool{}
		for _, f := range sp.IFCs {
			p.InitialFilterCriteria = append(p.InitialFilterCriteria, IFC(f, used))
		}
		for _, id := range sp.SharedIFCSetIDs {
			p.SharedIFCSetIDs = append(p.SharedIFCSetIDs, uint32(max(id, 0)))
		}
		out.ServiceProfiles = append(out.ServiceProfiles, p)
	}
	return out
}

// IFC converts one stored iFC; used records the priorities taken so
// far in the profile (nil: no de-duplication).
func IFC(f store.IFC, used map[int]bool) userdata.InitialFilterCriteria {
	prio := int(f.Priority)
	if used != nil {
		for used[prio] {
			prio++
		}
		used[prio] = true
	}
	dh := userdata.DefaultHandling(f.ApplicationServer.DefaultHandling)
	x := userdata.InitialFilterCriteria{
		Priority: prio,
		ApplicationServer: userdata.ApplicationServer{
			ServerName:              f.ApplicationServer.ServerName,
			DefaultHandling:         &dh,
			ServiceInfo:             f.ApplicationServer.ServiceInfo,
			IncludeRegisterRequest:  userdata.Flag(f.ApplicationServer.IncludeRegisterRequest),
			IncludeRegisterResponse: userdata.Flag(f.ApplicationServer.IncludeRegisterResponse),
		},
	}
	if f.ProfilePartIndicator != nil {
		v := userdata.ProfilePartIndicator(*f.ProfilePartIndicator)
		x.ProfilePartIndicator = &v
	}
	if tp := f.TriggerPoint; tp != nil {
		t := &userdata.TriggerPoint{ConditionTypeCNF: userdata.Bool(tp.ConditionTypeCNF)}
		for _, s := range tp.SPTs {
			t.SPTs = append(t.SPTs, buildSPT(s))
		}
		x.TriggerPoint = t
	}
	return x
}

func buildSPT(s store.SPT) userdata.SPT {
	out := userdata.SPT{ConditionNegated: userdata.Bool(s.ConditionNegated), Groups: []uint32{uint32(max(s.Group, 0))}}
	var content *string
	if s.Content != "" {
		c := s.Content
		content = &c
	}
	v := s.Value
	switch s.Type {
	case store.SPTMethod:
		out.Method = &v
		for _, r := range s.RegistrationTypes {
			out.RegistrationTypes = append(out.RegistrationTypes, userdata.RegistrationType(r))
		}
	case store.SPTRequestURI:
		out.RequestURI = &v
	case store.SPTSIPHeader:
		out.SIPHeader = &userdata.SIPHeader{Header: v, Content: content}
	case store.SPTSessionCase:
		sc := userdata.SessionCase(0)
		if len(v) == 1 && v[0] >= '0' && v[0] <= '4' {
			sc = userdata.SessionCase(v[0] - '0')
		}
		out.SessionCase = &sc
	case store.SPTSessionDescription:
		out.SessionDescription = &userdata.SessionDescription{Line: v, Content: content}
	}
	return out
}
