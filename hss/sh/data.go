package sh

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"

	"github.com/imscore/imscore/pkg/userdata"
)

// The Sh-Data XML document (TS 29.328 Annex C/D) carried in User-Data.

// Data is the Sh-Data document (TS 29.328 Annex C/D, ShDataType.xsd) in the
// User-Data AVP of UDA, PUR and PNR, limited to the IMS parts the HSS
// serves. Element names and order follow the schema (tSh-Data).
type Data struct {
	XMLName           xml.Name           `xml:"Sh-Data"`
	PublicIdentifiers *PublicIdentifiers `xml:"PublicIdentifiers,omitempty"`
	RepositoryData    []RepositoryData   `xml:"RepositoryData"`
	IMSData           *IMSData           `xml:"Sh-IMS-Data,omitempty"`
	Extension         *DataExtension     `xml:"Extension,omitempty"`
}

// PublicIdentifiers is tPublicIdentity of the Sh schema.
type PublicIdentifiers struct {
	IMSPublicIdentity []string `xml:"IMSPublicIdentity"`
	MSISDN            []string `xml:"MSISDN"`
}

// DataExtension is tSh-Data-Extension: the identity sets of an
// IMSPublicIdentity request with several Identity-Set values, and (three
// extensions further, tSh-Data-Extension5) the IMS private identities.
type DataExtension struct {
	RegisteredIdentities *PublicIdentifiers `xml:"RegisteredIdentities,omitempty"`
	ImplicitIdentities   *PublicIdentifiers `xml:"ImplicitIdentities,omitempty"`
	AllIdentities        *PublicIdentifiers `xml:"AllIdentities,omitempty"`
	AliasIdentities      *PublicIdentifiers `xml:"AliasIdentities,omitempty"`
	// IMSPrivateUserIdentity (Data-Reference 33) sits in
	// Extension (tSh-Data-Extension2) > Extension (3) > Extension (4) >
	// Extension (5).
	IMSPrivateUserIdentity []string `xml:"Extension>Extension>Extension>Extension>IMSPrivateUserIdentity,omitempty"`
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

// IMSData is tShIMSData. SCSCFName present and empty means that no
// S-CSCF is assigned; PSIActivation sits in its Extension
// (tShIMSDataExtension).
type IMSData struct {
	SCSCFName           *string              `xml:"SCSCFName,omitempty"`
	IFCs                *IFCs                `xml:"IFCs,omitempty"`
	IMSUserState        *int                 `xml:"IMSUserState,omitempty"`
	ChargingInformation *ChargingInformation `xml:"ChargingInformation,omitempty"`
	PSIActivation       *int                 `xml:"Extension>PSIActivation,omitempty"`
}

// IFCs is tIFCs: iFCs in the TS 29.228 format.
type IFCs struct {
	InitialFilterCriteria []userdata.InitialFilterCriteria `xml:"InitialFilterCriteria"`
}

// ChargingInformation is tChargingInformation (Diameter URIs).
type ChargingInformation struct {
	PrimaryEventChargingFunctionName        string `xml:"PrimaryEventChargingFunctionName,omitempty"`
	SecondaryEventChargingFunctionName      string `xml:"SecondaryEventChargingFunctionName,omitempty"`
	PrimaryChargingCollectionFunctionName   string `xml:"PrimaryChargingCollectionFunctionName,omitempty"`
	SecondaryChargingCollectionFunctionName string `xml:"SecondaryChargingCollectionFunctionName,omitempty"`
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
