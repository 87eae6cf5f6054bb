package hss_test

import (
	"bytes"
	"encoding/xml"
	"testing"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/hss/provision"
	"github.com/imscore/imscore/pkg/diameter"
)

// Helpers of the Sh tests (sh_udr_test.go, sh_notify_test.go).

// Data-Reference, Identity-Set and Send-Data-Indication values as they go
// on the wire (TS 29.329 §6.3.4, §6.3.10, §6.3.17).
const (
	refRepositoryData   = 0
	refPublicIdentity   = 10
	refIMSUserState     = 11
	refSCSCFName        = 12
	refIFC              = 13
	refLocation         = 14
	refCharging         = 16
	refMSISDN           = 17
	refPSIActivation    = 18
	refDSAI             = 19
	refPrivateIdentity  = 33
	setAll              = 0
	setRegistered       = 1
	setImplicit         = 2
	setAlias            = 3
	sendUserDataRequest = 1
)

// shDoc reads an Sh-Data document by the element names of TS 29.328
// Annex D (ShDataType.xsd), independently of the HSS's own model.
type shDoc struct {
	XMLName           xml.Name `xml:"Sh-Data"`
	PublicIdentifiers *struct {
		IMSPublicIdentity []string `xml:"IMSPublicIdentity"`
		MSISDN            []string `xml:"MSISDN"`
	} `xml:"PublicIdentifiers"`
	IMS *struct {
		SCSCFName *string `xml:"SCSCFName"`
		IFCs      *struct {
			IFC []struct {
				Priority   int    `xml:"Priority"`
				ServerName string `xml:"ApplicationServer>ServerName"`
			} `xml:"InitialFilterCriteria"`
		} `xml:"IFCs"`
		IMSUserState        *int `xml:"IMSUserState"`
		ChargingInformation *struct {
			PrimaryECF string `xml:"PrimaryEventChargingFunctionName"`
			PrimaryCCF string `xml:"PrimaryChargingCollectionFunctionName"`
		} `xml:"ChargingInformation"`
		PSIActivation *int `xml:"Extension>PSIActivation"`
	} `xml:"Sh-IMS-Data"`
	Extension *struct {
		Registered *identityList `xml:"RegisteredIdentities"`
		Implicit   *identityList `xml:"ImplicitIdentities"`
		All        *identityList `xml:"AllIdentities"`
		Alias      *identityList `xml:"AliasIdentities"`
		IMPIs      []string      `xml:"Extension>Extension>Extension>Extension>IMSPrivateUserIdentity"`
	} `xml:"Extension"`
	raw string
}

type identityList struct {
	IMSPublicIdentity []string `xml:"IMSPublicIdentity"`
}

func (d *shDoc) identities() []string {
	if d.PublicIdentifiers == nil {
		return nil
	}
	return d.PublicIdentifiers.IMSPublicIdentity
}

// parseSh reads the Sh User-Data of m.
func parseSh(t *testing.T, m *diam.Message) *shDoc {
	t.Helper()
	a := diameter.Find(m, diameter.AVPShUserData)
	if a == nil {
		t.Fatalf("no User-Data in\n%v", m)
	}
	b, _ := diameter.AsBytes(a)
	d := &shDoc{raw: string(b)}
	if err := xml.Unmarshal(b, d); err != nil {
		t.Fatalf("Sh-Data: %v\n%s", err, b)
	}
	return d
}

// addAS provisions application server name (Diameter host name + "." +
// realm, SIP URI sip:host) with Sh permissions perms ("REF=udr,pur,snr",
// as imsctl as add --sh) and returns its host.
func addAS(t *testing.T, e *env, name string, perms ...string) string {
	t.Helper()
	host := name + "." + realm
	args := []string{"as", "add", name, "--server-name", "sip:" + host, "--diameter-host", host}
	for _, p := range perms {
		args = append(args, "--sh", p)
	}
	imsctl(t, e, args...)
	return host
}

// imsctl runs the provisioning tool on the test database.
func imsctl(t *testing.T, e *env, args ...string) {
	t.Helper()
	var out bytes.Buffer
	if err := provision.Run(append([]string{"imsctl", "--database-url", e.dsn}, args...), &out); err != nil {
		t.Fatalf("imsctl %v: %v\n%s", args, err, out.String())
	}
}

// shRequest builds an Sh request (UDR, PUR or SNR) about impu for refs,
// with further AVPs.
func shRequest(n *diameter.Node, cmd uint32, impu string, refs []uint32, more ...*diam.AVP) *diam.Message {
	m := n.NewRequest(cmd, diameter.AppSh, realm, "")
	m.AddAVP(userIdentity(impu))
	for _, r := range refs {
		m.AddAVP(diameter.NewAVP(diameter.AVPDataReference, datatype.Enumerated(r)))
	}
	for _, a := range more {
		m.AddAVP(a)
	}
	return m
}

func enum(code diameter.AVPCode, v uint32) *diam.AVP {
	return diameter.NewAVP(code, datatype.Enumerated(v))
}
