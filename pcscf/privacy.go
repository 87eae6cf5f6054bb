package pcscf

// Privacy at the edge of the trust domain (RFC 3323, RFC 3325, TS 24.229
// §4.4 and §5.2.6.4): the UE is outside the trust domain of
// P-Asserted-Identity.

import (
	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/imsheader"
)

// terminatingPrivacy prepares a request the core sends to the served UE:
// when its Privacy header asks for "id" (and not "none"),
// P-Asserted-Identity is removed before the request leaves the trust
// domain (RFC 3325 §7; TS 24.229 §5.2.6.4.4), so a caller who withheld
// their identity is not shown to the callee. Other privacy types
// ("header", "session", "user") are the privacy service's (the
// originating S-CSCF or an AS, RFC 3323 §5) and pass unchanged. It
// reports whether the identity was removed.
func terminatingPrivacy(req *sip.Request) bool {
	if !imsheader.WantsPrivacy(req, "id") {
		return false
	}
	return imsheader.RemoveHeaders(req, imsheader.HeaderPAssertedIdentity) > 0
}

// responsePrivacy prepares a response the P-CSCF relays to the UE that
// sent the request: when the response's Privacy header asks for "id"
// (and not "none"), P-Asserted-Identity (the callee's asserted identity,
// RFC 3325 §9.1 in responses) is removed, because the UE is outside the
// trust domain (RFC 3325 §5 and §7 apply to every message leaving it;
// TS 24.229 §4.4, §5.2.6.3). A response without Privacy: id keeps it. It
// reports whether the identity was removed.
func responsePrivacy(res *sip.Response) bool {
	if !imsheader.WantsPrivacy(res, "id") {
		return false
	}
	return imsheader.RemoveHeaders(res, imsheader.HeaderPAssertedIdentity) > 0
}
