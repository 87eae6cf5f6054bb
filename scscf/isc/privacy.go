package isc

// Privacy requested by the originating user (RFC 3323, RFC 3325, TS
// 24.229 §5.4.3.2).

import (
	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/imsheader"
)

// unavailablePrivacy returns the privacy types the request asks for with
// "critical" that this core does not provide, or nil. "id" is provided:
// P-Asserted-Identity is removed where the request leaves the trust domain
// (the terminating P-CSCF, RFC 3325 §7); "none" asks for nothing.
// "header", "session" and "user" need a privacy service (an AS, RFC 3323
// §5) that the core itself is not. Without "critical" such requests go on
// (RFC 3323 §4.2: the requested privacy is then best effort).
func unavailablePrivacy(req *sip.Request) []string {
	if !imsheader.WantsPrivacy(req, "critical") {
		return nil
	}
	var out []string
	for _, v := range imsheader.PrivacyValues(req) {
		switch v {
		case "header", "session", "user":
			out = append(out, v)
		}
	}
	return out
}

// leavingTrustDomain applies "id" privacy to a request the S-CSCF sends
// out of the network (--breakout): with Privacy: id (and not "none")
// P-Asserted-Identity is removed (RFC 3325 §7, TS 24.229 §5.4.3.2 step
// 10). It reports whether it removed one.
func leavingTrustDomain(req *sip.Request) bool {
	if !imsheader.WantsPrivacy(req, "id") {
		return false
	}
	return imsheader.RemoveHeaders(req, imsheader.HeaderPAssertedIdentity) > 0
}
