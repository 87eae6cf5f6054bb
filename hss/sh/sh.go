// Package sh answers the Sh requests of application servers (TS 29.328
// §6.1, TS 29.329 §6.1): UDR (Sh-Pull), PUR (Sh-Update of RepositoryData),
// SNR (Sh-Subs-Notif) and sends PNR (Sh-Notif) when subscribed repository
// data changes. Per-AS permissions come from the store (as_permission).
//
// Errors: AS not allowed → DIAMETER_ERROR_USER_DATA_CANNOT_BE_READ (5102),
// _CANNOT_BE_MODIFIED (5103) or _CANNOT_BE_NOTIFIED (5104); unknown user
// → DIAMETER_ERROR_USER_UNKNOWN (5001); wrong sequence number →
// DIAMETER_ERROR_TRANSPARENT_DATA_OUT_OF_SYNC (5105); database failure →
// DIAMETER_UNABLE_TO_COMPLY (5012).
package sh

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"go.uber.org/zap"

	"github.com/imscore/imscore/hss/cx"
	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/userdata"
)

// Data is the Sh-Data document (TS 29.328 Annex C/D, ShDataType.xsd) in the
// User-Data AVP of UDA, PUR and PNR, limited to the IMS parts the HSS
// serves.
type Data struct {
	XMLName           xml.Name           `xml:"Sh-Data"`
	PublicIdentifiers *PublicIdentifiers `xml:"PublicIdentifiers,omitempty"`
	RepositoryData    []RepositoryData   `xml:"RepositoryData"`
	IMSData           *IMSData           `xml:"Sh-IMS-Data,omitempty"`
}

// PublicIdentifiers is tPublicIdentity of the Sh schema.
type PublicIdentifiers struct {
	IMSPublicIdentity []string `xml:"IMSPublicIdentity"`
	MSISDN            []string `xml:"MSISDN"`
}

// RepositoryData is tTransparentData: transparent data of one service
// indication. ServiceData nil means "delete" in a PUR.
type RepositoryData struct {
	ServiceIndication string       `xml:"ServiceIndication"`
	SequenceNumber    int          `xml:"SequenceNumber"`
	ServiceData       *ServiceData `xml:"ServiceData,omitempty"`
}

// ServiceData holds the AS's XML content unchanged.
type ServiceData struct {
	Inner []byte `xml:",innerxml"`
}

// IMSData is tShIMSData.
type IMSData struct {
	SCSCFName    string `xml:"S-CSCFName,omitempty"`
	IFCs         *IFCs  `xml:"IFCs,omitempty"`
	IMSUserState *int   `xml:"IMSUserState,omitempty"`
}

// IFCs is tIFCs: iFCs in the TS 29.228 format.
type IFCs struct {
	InitialFilterCriteria []userdata.InitialFilterCriteria `xml:"InitialFilterCriteria"`
}

// Marshal encodes d with the XML declaration.
func (d *Data) Marshal() ([]byte, error) {
	b, err := xml.Marshal(d)
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), b...), nil
}

// ParseData decodes an Sh-Data document.
func ParseData(b []byte) (*Data, error) {
	var d Data
	if err := xml.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	if d.XMLName.Local != "Sh-Data" {
		return nil, fmt.Errorf("sh: root element %q, want Sh-Data", d.XMLName.Local)
	}
	return &d, nil
}

// Server answers Sh requests.
type Server struct {
	Store *store.Store
	Node  *diameter.Node
	Log   *zap.Logger
}

// Register installs the UDR, PUR and SNR handlers.
func (s *Server) Register(n cx.Handler) {
	n.Handle(diameter.CmdUserData, diameter.AppSh, s.UDR)
	n.Handle(diameter.CmdProfileUpdate, diameter.AppSh, s.PUR)
	n.Handle(diameter.CmdSubscribeNotifications, diameter.AppSh, s.SNR)
}

func (s *Server) log() *zap.Logger {
	if s.Log == nil {
		return zap.NewNop()
	}
	return s.Log
}

func exp(code uint32) error { return &diameter.ResultError{Code: code, Experimental: true} }

func notFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return exp(diameter.DiameterErrorUserUnknown)
	}
	return err
}

// access returns the AS (by Origin-Host) after checking it may make
// request ("udr", "pur", "snr") for every data reference; denied is the
// Experimental-Result-Code to use otherwise.
func (s *Server) access(ctx context.Context, req *diam.Message, request string, denied uint32) (store.ASAccess, []store.DataReference, error) {
	var refs []store.DataReference
	for _, a := range diameter.FindAll(req, diameter.AVPDataReference) {
		if v, ok := diameter.AsUint32(a); ok {
			refs = append(refs, store.DataReference(v))
		}
	}
	if len(refs) == 0 {
		return store.ASAccess{}, nil, diameter.MissingAVP(diameter.AVPDataReference)
	}
	as, err := s.Store.ASByOriginHost(ctx, diameter.String(req, diameter.AVPOriginHost))
	if errors.Is(err, store.ErrNotFound) {
		return as, nil, exp(denied)
	}
	if err != nil {
		return as, nil, err
	}
	for _, r := range refs {
		if !as.Allowed(r, request) {
			return as, nil, exp(denied)
		}
	}
	return as, refs, nil
}

// user resolves User-Identity {Public-Identity | MSISDN} to the IMPU.
func (s *Server) user(ctx context.Context, req *diam.Message) (store.IMPU, error) {
	if pi := diameter.String(req, diameter.AVPUserIdentity, diameter.AVPPublicIdentity); pi != "" {
		u, err := s.Store.LookupIMPU(ctx, pi)
		if err == nil && u.MatchedByWildcard {
			u.Identity = pi
		}
		return u, notFound(err)
	}
	if a := diameter.Find(req, diameter.AVPUserIdentity, diameter.AVPMSISDN); a != nil {
		b, _ := diameter.AsBytes(a)
		u, err := s.Store.IMPUByMSISDN(ctx, decodeMSISDN(b))
		return u, notFound(err)
	}
	return store.IMPU{}, diameter.MissingAVP(diameter.AVPUserIdentity)
}

// decodeMSISDN reads the MSISDN AVP: TBCD digits (TS 29.329 §6.3.2), or
// plain ASCII digits as some ASes send them.
func decodeMSISDN(b []byte) string {
	ascii := true
	for _, c := range b {
		if c < '0' || c > '9' {
			ascii = false
		}
	}
	if ascii {
		return string(b)
	}
	var sb strings.Builder
	for _, c := range b {
		for _, d := range []byte{c & 0x0f, c >> 4} {
			if d <= 9 {
				sb.WriteByte('0' + d)
			}
		}
	}
	return sb.String()
}

// serviceData wraps stored bytes for ServiceData: kept as XML when they
// are well-formed, escaped as text otherwise.
func serviceData(b []byte) *ServiceData {
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		_, err := dec.Token()
		if err != nil {
			if err == io.EOF {
				return &ServiceData{Inner: b}
			}
			break
		}
	}
	var buf bytes.Buffer
	_ = xml.EscapeText(&buf, b)
	return &ServiceData{Inner: buf.Bytes()}
}

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
					list.InitialFilterCriteria = append(list.InitialFilterCriteria, cx.BuildIFC(f, used))
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

// PUR answers a Profile-Update-Request for RepositoryData (TS 29.328
// §6.1.2.1) and notifies subscribed ASes (PNR) of the change.
func (s *Server) PUR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	as, refs, err := s.access(ctx, req, "pur", diameter.DiameterErrorUserDataCannotBeModified)
	if err != nil {
		return nil, err
	}
	for _, r := range refs {
		if r != store.RepositoryData {
			return nil, exp(diameter.DiameterErrorOperationNotAllowed)
		}
	}
	u, err := s.user(ctx, req)
	if err != nil {
		return nil, err
	}
	ud := diameter.Find(req, diameter.AVPShUserData)
	if ud == nil {
		return nil, diameter.MissingAVP(diameter.AVPShUserData)
	}
	raw, _ := diameter.AsBytes(ud)
	d, err := ParseData(raw)
	if err != nil || len(d.RepositoryData) == 0 {
		return nil, exp(diameter.DiameterErrorUserDataNotRecognized)
	}
	var changed []RepositoryData
	for _, r := range d.RepositoryData {
		var data []byte
		if r.ServiceData != nil {
			data = bytes.TrimSpace(r.ServiceData.Inner)
			if data == nil {
				data = []byte{}
			}
		}
		err := s.Store.PutRepositoryData(ctx, u.Identity, r.ServiceIndication, r.SequenceNumber, data)
		switch {
		case errors.Is(err, store.ErrOutOfSync), errors.Is(err, store.ErrNotFound):
			return nil, exp(diameter.DiameterErrorTransparentDataOutOfSync)
		case err != nil:
			return nil, err
		}
		changed = append(changed, r)
	}
	go s.notify(u.Identity, as.DiameterHost, changed)
	return s.Node.Answer(req, diameter.DiameterSuccess), nil
}

// notify sends PNR to every AS subscribed to the changed repository data
// except the one that changed it (TS 29.328 §6.1.4).
func (s *Server) notify(impu, except string, changed []RepositoryData) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, r := range changed {
		subs, err := s.Store.Subscribers(ctx, impu, store.RepositoryData, r.ServiceIndication)
		if err != nil {
			s.log().Warn("PNR: subscribers", zap.String("impu", impu), zap.Error(err))
			continue
		}
		for _, sub := range subs {
			if strings.EqualFold(sub.ASHost, except) || sub.ASHost == "" {
				continue
			}
			if err := s.SendPNR(ctx, sub.ASHost, impu, &Data{RepositoryData: []RepositoryData{r}}); err != nil {
				s.log().Warn("PNR failed", zap.String("as", sub.ASHost), zap.String("impu", impu), zap.Error(err))
			}
		}
	}
}

// SendPNR sends a Push-Notification-Request with d to the AS whose Diameter
// host is host over its open connection.
func (s *Server) SendPNR(ctx context.Context, host, impu string, d *Data) error {
	var conn *diameter.Conn
	for _, c := range s.Node.Conns() {
		if strings.EqualFold(c.PeerHost(), host) && c.Supports(uint32(diameter.AppSh)) {
			conn = c
			break
		}
	}
	if conn == nil {
		return fmt.Errorf("sh: AS %s not connected", host)
	}
	x, err := d.Marshal()
	if err != nil {
		return err
	}
	req := s.Node.NewRequest(diameter.CmdPushNotification, diameter.AppSh, conn.PeerRealm(), conn.PeerHost())
	req.AddAVP(diameter.Grouped(diameter.AVPUserIdentity,
		diameter.NewAVP(diameter.AVPPublicIdentity, datatype.UTF8String(impu))))
	req.AddAVP(diameter.NewAVP(diameter.AVPShUserData, datatype.OctetString(x)))
	ans, err := conn.Send(ctx, req)
	if err != nil {
		return err
	}
	if !diameter.IsSuccess(ans) {
		code, _, _ := diameter.Result(ans)
		return fmt.Errorf("sh: PNA from %s: result %d", host, code)
	}
	return nil
}

// Subs-Req-Type values (TS 29.329 §6.3.6).
const (
	SubsSubscribe   uint32 = 0
	SubsUnsubscribe uint32 = 1
)

// SNR answers a Subscribe-Notifications-Request (TS 29.328 §6.1.3).
func (s *Server) SNR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	as, refs, err := s.access(ctx, req, "snr", diameter.DiameterErrorUserDataCannotBeNotified)
	if err != nil {
		return nil, err
	}
	u, err := s.user(ctx, req)
	if err != nil {
		return nil, err
	}
	typ, _ := diameter.Uint32(req, diameter.AVPSubsReqType)
	sis := []string{""}
	if all := diameter.FindAll(req, diameter.AVPServiceIndication); len(all) > 0 {
		sis = sis[:0]
		for _, a := range all {
			v, _ := diameter.AsString(a)
			sis = append(sis, v)
		}
	}
	var expiry time.Time
	if a := diameter.Find(req, diameter.AVPExpiryTime); a != nil {
		if t, ok := a.Data.(datatype.Time); ok {
			expiry = time.Time(t)
		}
	}
	for _, r := range refs {
		for _, si := range sis {
			if r != store.RepositoryData {
				si = ""
			}
			switch typ {
			case SubsSubscribe:
				if _, err := s.Store.Subscribe(ctx, u.Identity, as.DiameterHost, r, si, expiry); err != nil {
					return nil, notFound(err)
				}
			case SubsUnsubscribe:
				if err := s.Store.Unsubscribe(ctx, u.Identity, as.DiameterHost, r, si); err != nil && !errors.Is(err, store.ErrNotFound) {
					return nil, err
				}
			default:
				return nil, &diameter.ResultError{Code: diameter.DiameterInvalidAVPValue,
					FailedAVP: diameter.Find(req, diameter.AVPSubsReqType)}
			}
		}
	}
	ans := s.Node.Answer(req, diameter.DiameterSuccess)
	if typ == SubsSubscribe && !expiry.IsZero() {
		ans.AddAVP(diameter.NewAVP(diameter.AVPExpiryTime, datatype.Time(expiry)))
	}
	return ans, nil
}
