package binding

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// ServiceRouteUser is the user part of the Service-Route URI the
// registrar hands out in the 200 to a REGISTER (TS 24.229 §5.4.1.2.2):
// session routing takes a request whose popped Route has it for an
// originating request of a registered user (TS 24.229 §5.4.3.2).
const ServiceRouteUser = "orig"

// IsRegEvent reports whether req is a SUBSCRIBE for the reg event
// package (Event: reg, with or without parameters).
func IsRegEvent(req *sip.Request) bool {
	if req.Method != sip.SUBSCRIBE {
		return false
	}
	h := req.GetHeader("Event")
	if h == nil {
		h = req.GetHeader("o")
	}
	return h != nil && eventPackage(h.Value()) == "reg"
}

func eventPackage(v string) string {
	return strings.ToLower(strings.TrimSpace(strings.SplitN(v, ";", 2)[0]))
}
