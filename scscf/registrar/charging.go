package registrar

// Charging headers of the 200 to a REGISTER (TS 24.229 §5.4.1.2.2 steps
// g-h; RFC 7315 §5.5-5.6).

import (
	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/scscf/binding"
)

// chargingHeaders returns the charging headers of the 200 to REGISTER req
// for registration snap:
//   - P-Charging-Function-Addresses with the charging functions the HSS
//     gave in Charging-Information (none when it gave none), which the
//     P-CSCF stores and removes before the UE;
//   - P-Charging-Vector with the icid and orig-ioi of the REGISTER and a
//     type 1 term-ioi naming the home network (the home domain).
//
// A REGISTER without a usable P-Charging-Vector gets no vector back.
func (s *Registrar) chargingHeaders(req *sip.Request, snap binding.Registration) []sip.Header {
	var out []sip.Header
	if !snap.Charging.Empty() {
		out = append(out, sip.NewHeader(imsheader.HeaderPChargingFunctionAddresses, snap.Charging.String()))
	}
	if in, err := imsheader.GetPChargingVector(req); err == nil && in != nil {
		pcv := imsheader.NewPChargingVector(in.ICID(), in.ICIDGeneratedAt())
		if v := in.OrigIOI(); v != "" {
			pcv.SetOrigIOI(v)
		}
		pcv.SetTermIOI(s.cfg.Domain)
		out = append(out, sip.NewHeader(imsheader.HeaderPChargingVector, pcv.String()))
	}
	return out
}
