package sh

import (
	"context"
	"errors"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/hss/profile"
	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
)

// User-Data: UDR in, UDA out (TS 29.328 §6.1.1, TS 29.329 §6.1.1-2).

// UDR answers a User-Data-Request (TS 29.328 §6.1.1).
func (s *Server) UDR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	_, refs, err := s.access(ctx, req, "udr", diameter.DiameterErrorUserDataCannotBeRead)
	if err != nil {
		return nil, err
	}
	u, err := s.user(ctx, req)
	if err != nil {
		return nil, err
	}
	d := &Data{}
	ims := func() *IMSData {
		if d.IMSData == nil {
			d.IMSData = &IMSData{}
		}
		return d.IMSData
	}
	pub := func() *PublicIdentifiers {
		if d.PublicIdentifiers == nil {
			d.PublicIdentifiers = &PublicIdentifiers{}
		}
		return d.PublicIdentifiers
	}
	for _, r := range refs {
		switch r {
		case store.RepositoryData:
			var sis []string
			for _, a := range diameter.FindAll(req, diameter.AVPServiceIndication) {
				if v, ok := diameter.AsString(a); ok {
					sis = append(sis, v)
				}
			}
			if len(sis) == 0 {
				return nil, diameter.MissingAVP(diameter.AVPServiceIndication)
			}
			for _, si := range sis {
				rep, err := s.Store.RepositoryData(ctx, u.Identity, si)
				if errors.Is(err, store.ErrNotFound) {
					continue // nothing stored: no RepositoryData element
				}
				if err != nil {
					return nil, err
				}
				d.RepositoryData = append(d.RepositoryData, RepositoryData{
					ServiceIndication: rep.ServiceIndication, SequenceNumber: rep.SequenceNumber,
					ServiceData: serviceData(rep.Data)})
			}
		case store.IMSPublicIdentity:
			members, err := s.Store.IRSMembers(ctx, u.IRSID)
			if err != nil {
				return nil, notFound(err)
			}
			for _, m := range members {
				pub().IMSPublicIdentity = append(pub().IMSPublicIdentity, m.Identity)
			}
		case store.IMSUserState:
			a, err := s.Store.Assignment(ctx, u.Identity)
			if err != nil {
				return nil, notFound(err)
			}
			st := a.State.Code()
			ims().IMSUserState = &st
		case store.SCSCFName:
			a, err := s.Store.Assignment(ctx, u.Identity)
			if err != nil {
				return nil, notFound(err)
			}
			ims().SCSCFName = a.SCSCFName
		case store.InitialFilterCriteria:
			sub, err := s.Store.SubscriptionData(ctx, "", u.Identity)
			if err != nil {
				return nil, notFound(err)
			}
			list := &IFCs{}
			used := map[int]bool{}
			for _, sp := range sub.Profiles {
				if sp.ID != u.ServiceProfileID {
					continue
				}
				for _, f := range sp.IFCs {
					list.InitialFilterCriteria = append(list.InitialFilterCriteria, profile.IFC(f, used))
				}
			}
			ims().IFCs = list
		case store.MSISDN:
			ms, err := s.Store.MSISDNs(ctx, u.Identity)
			if err != nil {
				return nil, notFound(err)
			}
			pub().MSISDN = append(pub().MSISDN, ms...)
		default:
			return nil, exp(diameter.DiameterErrorUserDataCannotBeRead)
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
