package icscf

// Originating requests through the I-CSCF (TS 24.229 §5.3.2.1A): an AS
// originating on behalf of a user, or a network element routing an
// originating request of an unregistered user, sends it to the I-CSCF with
// the "orig" parameter in the Route entry for the I-CSCF. The I-CSCF finds
// the served user's S-CSCF with an LIR carrying Originating-Request
// (TS 29.228 §6.1.4) and forwards the request with "orig" in the S-CSCF's
// Route entry.

import (
	"context"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// origParam is the Route URI parameter marking an originating request
// (TS 24.229 §5.3.2.1A, §5.4.3.2).
const origParam = "orig"

// isOriginating reports whether the Route entry the I-CSCF popped asks for
// originating treatment: the "orig" URI parameter (TS 24.229), or the user
// part "orig" that Kamailio-style Service-Routes and AS configurations use.
func isOriginating(popped *sip.Uri) bool {
	if popped == nil {
		return false
	}
	if popped.UriParams != nil && popped.UriParams.Has(origParam) {
		return true
	}
	return popped.User == origParam
}

// originating serves an originating request (TS 24.229 §5.3.2.1A): the
// served user is P-Served-User (RFC 5502) when present, else the first
// P-Asserted-Identity; without either the request is refused 403.
func (s *Server) originating(ctx context.Context, t *sipproxy.Txn) int {
	req := t.Request()
	served := ""
	if psu, err := imsheader.GetPServedUser(req); err != nil {
		return s.reply(t, &sipError{code: 400, reason: "Bad Request", warning: "malformed P-Served-User"})
	} else if psu != nil {
		served = psu.URI
	}
	if served == "" {
		pai, err := imsheader.GetPAssertedIdentity(req)
		if err != nil {
			return s.reply(t, &sipError{code: 400, reason: "Bad Request", warning: "malformed P-Asserted-Identity"})
		}
		if len(pai) > 0 {
			served = pai[0].URI
		}
	}
	if served == "" {
		return s.reply(t, &sipError{code: 403, reason: "Forbidden", warning: "originating request without P-Served-User or P-Asserted-Identity"})
	}
	var u sip.Uri
	if err := sip.ParseUri(served, &u); err != nil {
		return s.reply(t, &sipError{code: 400, reason: "Bad Request", warning: "served user " + served + " is not a URI"})
	}
	return s.locate(ctx, t, publicIdentity(u), true)
}
