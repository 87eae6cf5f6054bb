package sh

// What this HSS does with each Data-Reference (TS 29.329 §6.3.4), the
// qualifiers a request gives one (Service-Indication, Identity-Set,
// Server-Name, Requested-Domain), and reading its data into an Sh-Data
// document. UDR, SNR (Send-Data-Indication, the digest of a new
// subscription) and the notifications all read through fill.

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/fiorix/go-diameter/v4/diam"

	"github.com/imscore/imscore/hss/profile"
	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
)

// Sh operations, as named by store.ASAccess.Allowed.
const (
	opRead      = "udr"
	opUpdate    = "pur"
	opSubscribe = "snr"
)

// readable: the data UDR serves from this HSS's database.
func readable(r store.DataReference) bool {
	switch r {
	case store.RepositoryData, store.IMSPublicIdentity, store.IMSUserState, store.SCSCFName,
		store.InitialFilterCriteria, store.ChargingInformation, store.MSISDN, store.PSIActivation,
		store.IMSPrivateUserIdentity:
		return true
	}
	return false
}

// domainData: CS/PS-domain location and state (LocationInformation,
// UserState), which the HSS would get from the serving MSC/SGSN/MME. This
// IMS HSS has none of those: a UDR for them is understood and answered
// DIAMETER_USER_DATA_NOT_AVAILABLE.
func domainData(r store.DataReference) bool {
	return r == store.LocationInformation || r == store.UserStateCS
}

// subscribable: the data the HSS notifies changes of (PNR).
func subscribable(r store.DataReference) bool {
	switch r {
	case store.RepositoryData, store.IMSPublicIdentity, store.IMSUserState, store.SCSCFName,
		store.InitialFilterCriteria:
		return true
	}
	return false
}

// dataRefs reads the Data-Reference AVPs of req (none: 5005) and checks
// that this HSS serves op for each: a reference it does not know or hold
// is DIAMETER_ERROR_USER_DATA_NOT_RECOGNIZED (5100); data it holds but
// cannot update or notify is DIAMETER_ERROR_OPERATION_NOT_ALLOWED (5101).
func dataRefs(req *diam.Message, op string) ([]store.DataReference, error) {
	var refs []store.DataReference
	for _, a := range diameter.FindAll(req, diameter.AVPDataReference) {
		if v, ok := diameter.AsUint32(a); ok {
			refs = append(refs, store.DataReference(min(v, 1<<15-1)))
		}
	}
	if len(refs) == 0 {
		return nil, diameter.MissingAVP(diameter.AVPDataReference)
	}
	for _, r := range refs {
		served := false
		switch op {
		case opRead:
			served = readable(r) || domainData(r)
		case opUpdate:
			served = r == store.RepositoryData
		case opSubscribe:
			served = subscribable(r)
		}
		switch {
		case served:
		case readable(r) || domainData(r):
			return nil, exp(diameter.DiameterErrorOperationNotAllowed)
		default:
			return nil, exp(diameter.DiameterErrorUserDataNotRecognized)
		}
	}
	return refs, nil
}

// want is one Data-Reference of a request with what qualifies it.
type want struct {
	ref  store.DataReference
	sis  []string // RepositoryData: the Service-Indications
	sets []uint32 // IMSPublicIdentity: Identity-Set values, none = ALL_IDENTITIES
	as   int64    // InitialFilterCriteria: the AS whose iFCs
}

// identitySets16 is w.sets as stored with a subscription.
func (w want) identitySets16() []int16 {
	out := make([]int16, len(w.sets))
	for i, v := range w.sets {
		out[i] = int16(v)
	}
	return out
}

// wants pairs each of refs with its qualifiers from req for user u and
// the requesting AS: RepositoryData without Service-Indication and
// LocationInformation/UserState without Requested-Domain are 5005; an
// Identity-Set value outside TS 29.329 §6.3.10 is 5004; PSIActivation of
// an identity that is not a PSI is DIAMETER_ERROR_OPERATION_NOT_ALLOWED
// (TS 29.328 §7.6: the data applies to PSIs only); a Server-Name other
// than the AS's own for InitialFilterCriteria is denied (an AS reads its
// own iFCs only).
func wants(req *diam.Message, refs []store.DataReference, as store.ASAccess, u store.IMPU, denied uint32) ([]want, error) {
	var sis []string
	for _, a := range diameter.FindAll(req, diameter.AVPServiceIndication) {
		if v, ok := diameter.AsString(a); ok && !slices.Contains(sis, v) {
			sis = append(sis, v)
		}
	}
	var sets []uint32
	for _, a := range diameter.FindAll(req, diameter.AVPIdentitySet) {
		v, ok := diameter.AsUint32(a)
		if !ok || v > diameter.IdentitySetAlias {
			return nil, &diameter.ResultError{Code: diameter.DiameterInvalidAVPValue, FailedAVP: a}
		}
		if !slices.Contains(sets, v) {
			sets = append(sets, v)
		}
	}
	out := make([]want, 0, len(refs))
	for _, r := range refs {
		w := want{ref: r}
		switch {
		case r == store.RepositoryData:
			if len(sis) == 0 {
				return nil, diameter.MissingAVP(diameter.AVPServiceIndication)
			}
			w.sis = sis
		case r == store.IMSPublicIdentity:
			w.sets = sets
		case r == store.InitialFilterCriteria:
			if sn := diameter.String(req, diameter.AVPServerName); sn != "" && !strings.EqualFold(sn, as.ServerName) {
				return nil, exp(denied)
			}
			w.as = as.ID
		case r == store.PSIActivation:
			if u.Type != store.DistinctPSI && u.Type != store.WildcardedPSI {
				return nil, exp(diameter.DiameterErrorOperationNotAllowed)
			}
		case domainData(r):
			if diameter.Find(req, diameter.AVPRequestedDomain) == nil {
				return nil, diameter.MissingAVP(diameter.AVPRequestedDomain)
			}
		}
		if !slices.ContainsFunc(out, func(x want) bool { return x.ref == r }) {
			out = append(out, w)
		}
	}
	return out, nil
}

// user is the IMPU a request or a subscription is about.
type user struct {
	store.IMPU
	scscf    string // its S-CSCF, when scscfSet
	scscfSet bool
}

func (d *Data) ims() *IMSData {
	if d.IMSData == nil {
		d.IMSData = &IMSData{}
	}
	return d.IMSData
}

func (d *Data) pub() *PublicIdentifiers {
	if d.PublicIdentifiers == nil {
		d.PublicIdentifiers = &PublicIdentifiers{}
	}
	return d.PublicIdentifiers
}

func (d *Data) ext() *DataExtension {
	if d.Extension == nil {
		d.Extension = &DataExtension{}
	}
	return d.Extension
}

// fill adds the data of w about u to d (TS 29.328 §7.6). Data the user
// has none of is left out (no RepositoryData for a Service-Indication
// without data, no ChargingInformation when no charging function is
// provisioned); an S-CSCFName is always present, empty when no S-CSCF is
// assigned.
func (s *Server) fill(ctx context.Context, d *Data, u *user, w want) error {
	switch w.ref {
	case store.RepositoryData:
		for _, si := range w.sis {
			rep, err := s.Store.RepositoryData(ctx, u.Identity, si)
			if errors.Is(err, store.ErrNotFound) {
				continue // nothing stored: no RepositoryData element
			}
			if err != nil {
				return err
			}
			d.RepositoryData = append(d.RepositoryData, RepositoryData{
				ServiceIndication: rep.ServiceIndication, SequenceNumber: rep.SequenceNumber,
				ServiceData: serviceData(rep.Data)})
		}
	case store.IMSPublicIdentity:
		return s.fillIdentities(ctx, d, u.IMPU, w.sets)
	case store.IMSUserState:
		st := u.State.Code()
		d.ims().IMSUserState = &st
	case store.SCSCFName:
		if !u.scscfSet {
			a, err := s.Store.Assignment(ctx, u.Identity)
			if err != nil {
				return notFound(err)
			}
			u.scscf, u.scscfSet = a.SCSCFName, true
		}
		name := u.scscf
		d.ims().SCSCFName = &name
	case store.InitialFilterCriteria:
		sub, _, err := s.Store.SubscriptionIRS(ctx, "", u.IRSID)
		if err != nil {
			return notFound(err)
		}
		list := &IFCs{}
		for _, sp := range sub.Profiles {
			if sp.ID != u.ServiceProfileID {
				continue
			}
			used := map[int]bool{} // priorities as the S-CSCF gets them
			for _, f := range sp.IFCs {
				x := profile.IFC(f, used)
				if f.ApplicationServer.ID == w.as {
					list.InitialFilterCriteria = append(list.InitialFilterCriteria, x)
				}
			}
		}
		d.ims().IFCs = list
	case store.ChargingInformation:
		ci, err := s.Store.ShChargingInfo(ctx, u.ID)
		if err != nil {
			return err
		}
		if ci != nil {
			d.ims().ChargingInformation = &ChargingInformation{
				PrimaryEventChargingFunctionName:        ci.PrimaryECF,
				SecondaryEventChargingFunctionName:      ci.SecondaryECF,
				PrimaryChargingCollectionFunctionName:   ci.PrimaryCCF,
				SecondaryChargingCollectionFunctionName: ci.SecondaryCCF,
			}
		}
	case store.MSISDN:
		ms, err := s.Store.MSISDNs(ctx, u.Identity)
		if err != nil {
			return notFound(err)
		}
		d.pub().MSISDN = append(d.pub().MSISDN, ms...)
	case store.PSIActivation:
		v := 0
		if u.PSIActivation {
			v = 1
		}
		d.ims().PSIActivation = &v
	case store.IMSPrivateUserIdentity:
		impis, err := s.Store.IMPIsOfIMPU(ctx, u.Identity)
		if err != nil {
			return notFound(err)
		}
		if len(impis) > 0 {
			d.ext().IMSPrivateUserIdentity = append(d.ext().IMSPrivateUserIdentity, impis...)
		}
	}
	return nil
}

// fillIdentities adds IMSPublicIdentity data (TS 29.328 §7.6.2, Identity-Set
// TS 29.329 §6.3.10): ALL_IDENTITIES every public identity of the user
// (store.PublicIdentitiesOf), REGISTERED_IDENTITIES those of them that are
// registered, IMPLICIT_IDENTITIES the implicit registration set,
// ALIAS_IDENTITIES the identities of the set that share u's service
// profile (aliases, TS 23.228 §4.3.3.4). One set goes into
// PublicIdentifiers; several each into their element of the Sh-Data
// extension.
func (s *Server) fillIdentities(ctx context.Context, d *Data, u store.IMPU, sets []uint32) error {
	all, err := s.Store.PublicIdentitiesOf(ctx, u.ID)
	if err != nil {
		return notFound(err)
	}
	pick := func(set uint32) *PublicIdentifiers {
		p := &PublicIdentifiers{}
		for _, x := range all {
			ok := true
			switch set {
			case diameter.IdentitySetRegistered:
				ok = x.State == store.Registered
			case diameter.IdentitySetImplicit:
				ok = x.IRSID == u.IRSID
			case diameter.IdentitySetAlias:
				ok = x.IRSID == u.IRSID && x.ServiceProfileID == u.ServiceProfileID
			}
			if ok {
				p.IMSPublicIdentity = append(p.IMSPublicIdentity, x.Identity)
			}
		}
		return p
	}
	if len(sets) <= 1 {
		set := diameter.IdentitySetAll
		if len(sets) == 1 {
			set = sets[0]
		}
		d.pub().IMSPublicIdentity = append(d.pub().IMSPublicIdentity, pick(set).IMSPublicIdentity...)
		return nil
	}
	for _, set := range sets {
		p := pick(set)
		switch set {
		case diameter.IdentitySetAll:
			d.ext().AllIdentities = p
		case diameter.IdentitySetRegistered:
			d.ext().RegisteredIdentities = p
		case diameter.IdentitySetImplicit:
			d.ext().ImplicitIdentities = p
		case diameter.IdentitySetAlias:
			d.ext().AliasIdentities = p
		}
	}
	return nil
}
