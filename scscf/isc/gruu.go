package isc

// Requests to a public GRUU (RFC 5627 §5.4, TS 24.229 §5.4.3.3 step 9):
// only the bindings of the instance the GRUU names are targets.

import (
	"net/url"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/scscf/binding"
)

// gruuInstance returns the instance URN of a public GRUU Request-URI (the
// value of its "gr" parameter) and true; false for any other URI,
// including a "gr" without value (a temporary GRUU of another registrar).
func gruuInstance(u sip.Uri) (string, bool) {
	if u.UriParams == nil {
		return "", false
	}
	v, ok := u.UriParams.Get("gr")
	if !ok || v == "" {
		return "", false
	}
	if x, err := url.PathUnescape(v); err == nil {
		v = x // gr=urn%3Auuid%3A... as some UEs escape it
	}
	return v, true
}

// instanceContacts returns the contacts registered with +sip.instance
// instance (compared without angle brackets; URNs case-insensitively,
// RFC 8141 §3.1 is stricter but no UE varies the case).
func instanceContacts(cs []binding.Contact, instance string) []binding.Contact {
	var out []binding.Contact
	for _, c := range cs {
		if strings.EqualFold(strings.Trim(c.Instance, "<>"), instance) {
			out = append(out, c)
		}
	}
	return out
}
