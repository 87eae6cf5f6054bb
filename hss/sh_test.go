package hss_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/hss/sh"
	"github.com/imscore/imscore/pkg/diameter"
)

const (
	as1Host = "as1." + realm
	as2Host = "as2." + realm
)

// addASes provisions as1 (UDR on 0,10,11,12,13,17; PUR and SNR on 0) and
// as2 (UDR+SNR on 0 only), and an iFC towards as1 in the default profile.
func addASes(t *testing.T, e *env) {
	t.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO application_server (name, server_name, diameter_host) VALUES ('as1', 'sip:as1.` + realm + `', '` + as1Host + `'), ('as2', 'sip:as2.` + realm + `', '` + as2Host + `')`,
		`INSERT INTO as_permission (application_server_id, data_reference, udr, pur, snr)
			SELECT id, d, true, d = 0, d = 0 FROM application_server, unnest(ARRAY[0,10,11,12,13,17]) d WHERE name = 'as1'`,
		`INSERT INTO as_permission (application_server_id, data_reference, udr, pur, snr)
			SELECT id, 0, true, false, true FROM application_server WHERE name = 'as2'`,
		`INSERT INTO ifc (name, priority, application_server_id) SELECT 'mmtel', 10, id FROM application_server WHERE name = 'as1'`,
		`INSERT INTO spt (ifc_id, type, value) SELECT id, 'method', 'INVITE' FROM ifc WHERE name = 'mmtel'`,
		`INSERT INTO service_profile_ifc (service_profile_id, ifc_id) SELECT p.id, f.id FROM service_profile p, ifc f WHERE p.name = 'default' AND f.name = 'mmtel'`,
	} {
		if _, err := e.db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func userIdentity(impu string) *diam.AVP {
	return diameter.Grouped(diameter.AVPUserIdentity, vs(diameter.AVPPublicIdentity, impu))
}

func udr(n *diameter.Node, impu string, refs ...uint32) *diam.Message {
	m := n.NewRequest(diameter.CmdUserData, diameter.AppSh, realm, "")
	m.AddAVP(userIdentity(impu))
	for _, r := range refs {
		m.AddAVP(diameter.NewAVP(diameter.AVPDataReference, datatype.Enumerated(r)))
	}
	if len(refs) > 0 && refs[0] == 0 {
		m.AddAVP(vs(diameter.AVPServiceIndication, "mmtel-settings"))
	}
	return m
}

func pur(n *diameter.Node, impu string, seq int, data string) *diam.Message {
	m := n.NewRequest(diameter.CmdProfileUpdate, diameter.AppSh, realm, "")
	m.AddAVP(userIdentity(impu))
	m.AddAVP(diameter.NewAVP(diameter.AVPDataReference, datatype.Enumerated(0)))
	d := &sh.Data{RepositoryData: []sh.RepositoryData{{ServiceIndication: "mmtel-settings", SequenceNumber: seq,
		ServiceData: &sh.ServiceData{Inner: []byte(data)}}}}
	x, _ := d.Marshal()
	m.AddAVP(diameter.NewAVP(diameter.AVPShUserData, datatype.OctetString(x)))
	return m
}

func snr(n *diameter.Node, impu string, ref uint32) *diam.Message {
	m := n.NewRequest(diameter.CmdSubscribeNotifications, diameter.AppSh, realm, "")
	m.AddAVP(userIdentity(impu))
	m.AddAVP(diameter.NewAVP(diameter.AVPSubsReqType, datatype.Enumerated(sh.SubsSubscribe)))
	m.AddAVP(diameter.NewAVP(diameter.AVPDataReference, datatype.Enumerated(ref)))
	m.AddAVP(vs(diameter.AVPServiceIndication, "mmtel-settings"))
	return m
}

func shData(t *testing.T, a *diam.Message) *sh.Data {
	t.Helper()
	b, _ := diameter.AsBytes(diameter.Find(a, diameter.AVPShUserData))
	d, err := sh.ParseData(b)
	if err != nil {
		t.Fatalf("Sh-Data: %v\n%s", err, b)
	}
	return d
}

func TestSh(t *testing.T) {
	e := newEnv(t)
	addASes(t, e)
	as1 := e.client(as1Host)
	as2 := e.client(as2Host)
	pnr := make(chan *diam.Message, 4)
	as2.Handle(diameter.CmdPushNotification, diameter.AppSh, func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
		pnr <- req
		return as2.Answer(req, diameter.DiameterSuccess), nil
	})
	scscf := e.client(scscfHost)
	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATRegistration, 0)), diameter.DiameterSuccess, false)

	// UDR for the IMS data references.
	a := send(t, as1, udr(as1, aliceIMPU, 10, 11, 12, 13, 17))
	wantResult(t, a, diameter.DiameterSuccess, false)
	d := shData(t, a)
	if d.PublicIdentifiers == nil || len(d.PublicIdentifiers.IMSPublicIdentity) != 2 || len(d.PublicIdentifiers.MSISDN) != 1 ||
		d.PublicIdentifiers.MSISDN[0] != "15550001" {
		t.Fatalf("PublicIdentifiers %+v", d.PublicIdentifiers)
	}
	if d.IMSData == nil || d.IMSData.SCSCFName == nil || *d.IMSData.SCSCFName != scscfName || d.IMSData.IMSUserState == nil || *d.IMSData.IMSUserState != 1 ||
		d.IMSData.IFCs == nil || len(d.IMSData.IFCs.InitialFilterCriteria) != 1 ||
		d.IMSData.IFCs.InitialFilterCriteria[0].ApplicationServer.ServerName != "sip:as1."+realm {
		t.Fatalf("Sh-IMS-Data %+v", d.IMSData)
	}
	// Permissions: as2 may not read S-CSCFName, nor update; unknown AS.
	wantResult(t, send(t, as2, udr(as2, aliceIMPU, 12)), diameter.DiameterErrorUserDataCannotBeRead, true)
	wantResult(t, send(t, as2, pur(as2, aliceIMPU, 0, "<x/>")), diameter.DiameterErrorUserDataCannotBeModified, true)
	wantResult(t, send(t, as1, snr(as1, aliceIMPU, 11)), diameter.DiameterErrorUserDataCannotBeNotified, true)
	stranger := e.client("as9." + realm)
	wantResult(t, send(t, stranger, udr(stranger, aliceIMPU, 0)), diameter.DiameterErrorUserDataCannotBeRead, true)
	wantResult(t, send(t, as1, udr(as1, "sip:nobody@"+realm, 10)), diameter.DiameterErrorUserUnknown, true)

	// as2 subscribes to the repository data; as1 writes it.
	wantResult(t, send(t, as2, snr(as2, aliceIMPU, 0)), diameter.DiameterSuccess, false)
	wantResult(t, send(t, as1, pur(as1, aliceIMPU, 0, "<cdiv>on</cdiv>")), diameter.DiameterSuccess, false)
	select {
	case m := <-pnr:
		d := shData(t, m)
		if len(d.RepositoryData) != 1 || !strings.Contains(string(d.RepositoryData[0].ServiceData.Inner), "<cdiv>on</cdiv>") {
			t.Fatalf("PNR data %+v", d.RepositoryData)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no PNR reached the subscribed AS")
	}
	// Sequence numbers: 0 again is out of sync, 1 updates.
	wantResult(t, send(t, as1, pur(as1, aliceIMPU, 0, "<cdiv>off</cdiv>")), diameter.DiameterErrorTransparentDataOutOfSync, true)
	wantResult(t, send(t, as1, pur(as1, aliceIMPU, 1, "<cdiv>off</cdiv>")), diameter.DiameterSuccess, false)
	a = send(t, as2, udr(as2, aliceIMPU, 0))
	wantResult(t, a, diameter.DiameterSuccess, false)
	d = shData(t, a)
	if len(d.RepositoryData) != 1 || d.RepositoryData[0].SequenceNumber != 1 || string(d.RepositoryData[0].ServiceData.Inner) != "<cdiv>off</cdiv>" {
		t.Fatalf("repository data %+v", d.RepositoryData)
	}
	// Missing Data-Reference → 5005.
	wantResult(t, send(t, as1, udr(as1, aliceIMPU)), diameter.DiameterMissingAVP, false)
}
