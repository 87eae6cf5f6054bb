package isc

// Charging headers of requests the S-CSCF sends within its network
// (TS 24.229 §5.4.3.2, §5.4.3.3; RFC 7315 §5.5-5.6).

import (
	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/imsheader"
)

// setChargingAddresses puts the served user's charging function addresses
// in P-Charging-Function-Addresses (replacing any), for a next hop inside
// the home network: an AS, or the terminating P-CSCF (TS 24.229 §5.4.3.2
// step 5, §5.4.3.3 step 9). Without addresses from the HSS any value from
// upstream is left as it is.
func setChargingAddresses(req *sip.Request, p imsheader.PChargingFunctionAddresses) {
	if p.Empty() {
		return
	}
	imsheader.SetHeader(req, imsheader.HeaderPChargingFunctionAddresses, p.String())
}

// chargingTowardsAS prepares the charging headers of a request to an AS
// (ISC): the served user's P-Charging-Function-Addresses, and in
// P-Charging-Vector the icid kept, orig-ioi set to the home domain and
// term-ioi removed (a type 3 IOI exchange between the S-CSCF and the AS,
// TS 24.229 §5.4.3.2 step 4, §5.4.3.3 step 3).
func (s *Router) chargingTowardsAS(req *sip.Request, st *iscState) {
	setChargingAddresses(req, st.charging)
	pcv, err := imsheader.GetPChargingVector(req)
	if err != nil || pcv == nil {
		fresh := imsheader.NewPChargingVector(imsheader.NewICID(), s.cfg.SIPHost)
		pcv = &fresh
	}
	out := imsheader.NewPChargingVector(pcv.ICID(), pcv.ICIDGeneratedAt())
	out.SetOrigIOI(s.cfg.Domain)
	imsheader.SetPChargingVector(req, out)
}
