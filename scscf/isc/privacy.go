package isc

// Privacy requested by the originating user (RFC 3323, RFC 3325, TS
// 24.229 §5.4.3.2, TS 24.607).
//
// The split of the work (TS 24.229 §4.4, §5.2.6, §5.4.3.2, §5.10; TS
// 24.607 §4.5.2):
//   - "id": P-Asserted-Identity is removed where the request leaves the
//     trust domain: by the terminating P-CSCF towards the UE
//     (pcscf/privacy.go), by the S-CSCF towards --breakout (here); the
//     IBCF does the same at a network border.
//   - "header", "user", "session": the privacy service of RFC 3323 §5.
//     In IMS that is the originating user's OIR AS (TS 24.607), reached
//     through the originating iFCs, and the IBCF at the border
//     (topology hiding). The S-CSCF is a proxy, not that service: at
//     --breakout it does the stateless part of "header" and "user"
//     (stripHeaderPrivacy, anonymiseFrom) and nothing inside the
//     network; "session" (a media relay) it never gives.
//   - "critical" privacy still missing when the request leaves the
//     S-CSCF after the originating iFCs is refused with 500 Privacy
//     Unavailable (RFC 3323 §5). An AS that provided a type removes it
//     from Privacy (RFC 3323 §5), which lets the request pass.

import (
	"strings"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// Privacy outcomes, the "outcome" label of scscf_privacy_total.
const (
	privacyProvided    = "provided"     // done here (or already done by an AS)
	privacyPartial     = "partial"      // the stateless part done here
	privacyNotProvided = "not_provided" // left as it was (best effort, RFC 3323 §4.2)
	privacyRefused     = "refused"      // critical and not provided: 500
)

// newPrivacyCounter is scscf_privacy_total{type,outcome}: the privacy
// types ("id", "header", "session", "user") that originating requests
// asked for, by what the S-CSCF did when they left it.
func newPrivacyCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scscf_privacy_total",
		Help: "Privacy types asked for by originating requests leaving the S-CSCF, by outcome (provided, partial, not_provided, refused)."},
		[]string{"type", "outcome"})
}

// headerPrivacyHeaders are the headers RFC 3323 §5.1 lists as revealing
// the user that a privacy service can remove without keeping state
// (Via, Contact, Record-Route and Call-ID need a B2BUA and are kept).
var headerPrivacyHeaders = []string{"Call-Info", "Organization", "Subject", "Reply-To", "In-Reply-To", "User-Agent", "Server", "Warning"}

// anonymousURI is the From of RFC 3323 §4.1 for "user" privacy.
const anonymousURI = "sip:anonymous@anonymous.invalid"

// requestedPrivacy returns the privacy types (id, header, session, user)
// req asks for, in order and without repeats; nil with "none" (RFC 3323
// §4.2: none overrides the others) or without Privacy.
func requestedPrivacy(req *sip.Request) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range imsheader.PrivacyValues(req) {
		switch v {
		case "none":
			return nil
		case "id", "header", "session", "user":
			if !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	return out
}

// fromAnonymous reports whether req's From is already anonymous (an AS
// gave "user" privacy before, RFC 3323 §4.1: host anonymous.invalid).
func fromAnonymous(req *sip.Request) bool {
	f := req.From()
	return f != nil && strings.EqualFold(f.Address.Host, "anonymous.invalid")
}

// unavailablePrivacy returns the privacy types req asks for with
// "critical" that are not provided where it goes next, or nil (RFC 3323
// §5). leaving is true when the next hop is outside the trust domain
// (--breakout): there "id" and "user" are provided here; "header" only
// in part, so it stays missing. Inside the network "id" is provided by
// the terminating P-CSCF and nothing else is. "user" is also provided
// when an AS already anonymised From.
func unavailablePrivacy(req *sip.Request, leaving bool) []string {
	if !imsheader.WantsPrivacy(req, "critical") {
		return nil
	}
	var out []string
	for _, v := range requestedPrivacy(req) {
		switch {
		case v == "id":
		case v == "user" && (leaving || fromAnonymous(req)):
		default:
			out = append(out, v)
		}
	}
	return out
}

// exitPrivacy applies the originating user's privacy to req as it leaves
// the S-CSCF after the originating iFCs (TS 24.229 §5.4.3.2 step 10);
// leaving is true for --breakout. Critical privacy that is not provided
// is answered 500 Privacy Unavailable with a Warning naming the types
// (RFC 3323 §5), and exitPrivacy reports false. Otherwise, when leaving,
// "id" removes P-Asserted-Identity (RFC 3325 §7), "header" removes the
// headers of headerPrivacyHeaders and "user" anonymises From (RFC 3323
// §5.1, §5.3). Every requested type is counted in
// scscf_privacy_total by outcome and what was not given is logged (at
// debug level inside the network, where nothing is changed).
func (s *Router) exitPrivacy(t *sipproxy.Txn, leaving bool) bool {
	req := t.Request()
	if missing := unavailablePrivacy(req, leaving); len(missing) > 0 {
		for _, v := range missing {
			s.privacy.WithLabelValues(v, privacyRefused).Inc()
		}
		s.log.Info("critical privacy not provided: request refused", zap.Strings("privacy", missing),
			zap.Bool("breakout", leaving), zap.String("call-id", callID(req)))
		_ = t.Respond(500, "Privacy Unavailable", sip.NewHeader("Warning",
			"399 "+s.cfg.SIPHost+` "requested privacy not provided: `+strings.Join(missing, ", ")+`"`))
		return false
	}
	var notGiven []string
	for _, v := range requestedPrivacy(req) {
		outcome := privacyNotProvided
		switch {
		case v == "id" && !leaving:
			continue // the terminating P-CSCF's (pcscf/privacy.go)
		case v == "user" && fromAnonymous(req):
			outcome = privacyProvided
		case !leaving:
		case v == "id":
			leavingTrustDomain(req)
			outcome = privacyProvided
		case v == "header":
			stripHeaderPrivacy(req)
			outcome = privacyPartial
		case v == "user":
			anonymiseFrom(req)
			outcome = privacyProvided
		}
		if outcome != privacyProvided {
			notGiven = append(notGiven, v+"="+outcome)
		}
		s.privacy.WithLabelValues(v, outcome).Inc()
	}
	if len(notGiven) > 0 {
		// Inside the network this is every CLIR call of a phone that asks
		// for header privacy: counted, logged at debug level only.
		lvl := zap.DebugLevel
		if leaving {
			lvl = zap.InfoLevel
		}
		s.log.Log(lvl, "requested privacy not (fully) provided: request goes on (RFC 3323 §4.2 best effort)",
			zap.Strings("privacy", notGiven), zap.Bool("breakout", leaving), zap.String("call-id", callID(req)))
	}
	return true
}

func callID(req *sip.Request) string {
	if c := req.CallID(); c != nil {
		return c.Value()
	}
	return ""
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

// stripHeaderPrivacy removes the headers of headerPrivacyHeaders from req
// (RFC 3323 §5.1, the part of "header" privacy that needs no state) and
// returns how many it removed.
func stripHeaderPrivacy(req *sip.Request) int {
	n := 0
	for _, h := range headerPrivacyHeaders {
		n += imsheader.RemoveHeaders(req, h)
	}
	return n
}

// anonymiseFrom sets req's From to "Anonymous" <sip:anonymous@anonymous.invalid>
// keeping its tag (RFC 3323 §4.1, §5.3). Privacy keeps "user" (and
// "header"), so a privacy service further on can complete them.
func anonymiseFrom(req *sip.Request) {
	f := req.From()
	if f == nil {
		return
	}
	var u sip.Uri
	_ = sip.ParseUri(anonymousURI, &u)
	f.DisplayName = "Anonymous"
	f.Address = u
}
