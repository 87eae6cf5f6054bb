package imsheader

import "strings"

// HeaderPChargingFunctionAddresses is the P-Charging-Function-Addresses
// header (RFC 7315 §5.5; where the S-CSCF puts it: TS 24.229 §5.4.1.2.2, §5.4.3).
const HeaderPChargingFunctionAddresses = "P-Charging-Function-Addresses"

// PChargingFunctionAddresses is a P-Charging-Function-Addresses value (RFC
// 7315 §5.5): the charging collection functions (ccf) and event charging
// functions (ecf) of the home network, primary first. The S-CSCF fills it
// from the Charging-Information of the HSS (TS 29.229 §6.3.19) and sends
// it within the trust domain only.
type PChargingFunctionAddresses struct {
	CCF []string // charging collection function addresses, primary first
	ECF []string // event charging function addresses, primary first
}

// Empty reports whether no address is set.
func (p PChargingFunctionAddresses) Empty() bool { return len(p.CCF) == 0 && len(p.ECF) == 0 }

// String formats the value: "ccf=a;ccf=b;ecf=c", each address a token or,
// when it is not one (a Diameter URI with ':' and '/', an IPv6 address), a
// quoted string (RFC 7315 §5.5: ccf = "ccf" EQUAL gen-value).
func (p PChargingFunctionAddresses) String() string {
	var parts []string
	for _, v := range p.CCF {
		parts = append(parts, "ccf="+tokenOrQuoted(v))
	}
	for _, v := range p.ECF {
		parts = append(parts, "ecf="+tokenOrQuoted(v))
	}
	return strings.Join(parts, ";")
}

// ParsePChargingFunctionAddresses parses a P-Charging-Function-Addresses
// value; quotes are removed from the addresses. A value naming neither a
// ccf nor an ecf is an error.
func ParsePChargingFunctionAddresses(value string) (PChargingFunctionAddresses, error) {
	params, err := parseParamsOnly(HeaderPChargingFunctionAddresses, value)
	if err != nil {
		return PChargingFunctionAddresses{}, err
	}
	var p PChargingFunctionAddresses
	for _, x := range params {
		switch strings.ToLower(x.Name) {
		case "ccf":
			p.CCF = append(p.CCF, Unquote(x.Value))
		case "ecf":
			p.ECF = append(p.ECF, Unquote(x.Value))
		}
	}
	if p.Empty() {
		return p, perr(HeaderPChargingFunctionAddresses, 0, "neither ccf nor ecf")
	}
	return p, nil
}
