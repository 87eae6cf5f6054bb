package cxclient

// Charging-Information of SAA and PPR (TS 29.228 §6.3.19, TS 29.229
// §6.3.19-23).

import (
	"strings"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/imsheader"
)

// ChargingInformation is the Charging-Information AVP: the Diameter URIs
// (or FQDNs) of the home network's event charging functions (ECF, online)
// and charging collection functions (CCF, offline), primary and secondary;
// "" where absent.
type ChargingInformation struct {
	PrimaryECF, SecondaryECF string
	PrimaryCCF, SecondaryCCF string
}

// ParseChargingInformation reads the Charging-Information AVP of msg (an
// SAA or a PPR); nil when msg has none or it names no function.
func ParseChargingInformation(msg *diam.Message) *ChargingInformation {
	if diameter.Find(msg, diameter.AVPChargingInformation) == nil {
		return nil
	}
	str := func(code diameter.AVPCode) string {
		return diameter.String(msg, diameter.AVPChargingInformation, code)
	}
	ci := &ChargingInformation{
		PrimaryECF: str(diameter.AVPPrimaryEventChargingFunctionName), SecondaryECF: str(diameter.AVPSecondaryEventChargingFunctionName),
		PrimaryCCF: str(diameter.AVPPrimaryChargingCollectionFunctionName), SecondaryCCF: str(diameter.AVPSecondaryChargingCollectionFunctionName),
	}
	if *ci == (ChargingInformation{}) {
		return nil
	}
	return ci
}

// Header returns the P-Charging-Function-Addresses value (RFC 7315 §5.5)
// the S-CSCF sends for these functions (TS 24.229 §5.4.1.2.2): ccf the
// CCFs, ecf the ECFs, primary first.
func (ci *ChargingInformation) Header() imsheader.PChargingFunctionAddresses {
	var p imsheader.PChargingFunctionAddresses
	if ci == nil {
		return p
	}
	for _, v := range []string{ci.PrimaryCCF, ci.SecondaryCCF} {
		if v != "" {
			p.CCF = append(p.CCF, v)
		}
	}
	for _, v := range []string{ci.PrimaryECF, ci.SecondaryECF} {
		if v != "" {
			p.ECF = append(p.ECF, v)
		}
	}
	return p
}

// AVP builds the Charging-Information AVP (TS 29.229 §6.3.19) with the
// functions that are set, as DiameterURI AVPs (RFC 6733 §4.3.1); a bare
// FQDN is written as "aaa://FQDN". nil when no function is set.
func (ci *ChargingInformation) AVP() *diam.AVP {
	if ci == nil {
		return nil
	}
	var kids []*diam.AVP
	add := func(code diameter.AVPCode, v string) {
		if v == "" {
			return
		}
		if l := strings.ToLower(v); !strings.HasPrefix(l, "aaa://") && !strings.HasPrefix(l, "aaas://") {
			v = "aaa://" + v
		}
		kids = append(kids, diameter.NewAVP(code, datatype.DiameterURI(v)))
	}
	add(diameter.AVPPrimaryEventChargingFunctionName, ci.PrimaryECF)
	add(diameter.AVPSecondaryEventChargingFunctionName, ci.SecondaryECF)
	add(diameter.AVPPrimaryChargingCollectionFunctionName, ci.PrimaryCCF)
	add(diameter.AVPSecondaryChargingCollectionFunctionName, ci.SecondaryCCF)
	if len(kids) == 0 {
		return nil
	}
	return diameter.Grouped(diameter.AVPChargingInformation, kids...)
}
