package pcscf

// Charging headers at the edge (TS 24.229 §5.2.6.3, §5.2.6.4, §5.2.7;
// RFC 7315 §4.5-4.6): P-Charging-Vector and P-Charging-Function-Addresses
// are for the network's elements only, never for the UE.

import (
	"github.com/imscore/imscore/pkg/imsheader"
)

// chargingTowardsUE removes P-Charging-Vector and
// P-Charging-Function-Addresses from a request or response the P-CSCF
// sends to the UE.
func chargingTowardsUE(msg imsheader.Editable) {
	imsheader.RemoveHeaders(msg, imsheader.HeaderPChargingVector)
	imsheader.RemoveHeaders(msg, imsheader.HeaderPChargingFunctionAddresses)
}
