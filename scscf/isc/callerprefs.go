package isc

// Caller preferences (RFC 3841) when the S-CSCF forks a terminating request
// to the contacts of a registered user (TS 24.229 §5.4.3.3 step 10: the
// S-CSCF applies caller preferences).

import (
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/scscf/binding"
)

// acceptContact is one Accept-Contact value: the feature tags it asks for
// (name → value, "" for a boolean tag) and its require/explicit flags.
type acceptContact struct {
	features map[string]string
	require  bool
}

// acceptContacts parses the Accept-Contact headers of req (RFC 3841 §10:
// "*" followed by feature parameters; "require" and "explicit" are flags).
func acceptContacts(req *sip.Request) []acceptContact {
	var out []acceptContact
	for _, v := range imsheader.Values(req, "Accept-Contact") {
		for _, one := range strings.Split(v, ",") {
			params := strings.Split(one, ";")
			if strings.TrimSpace(params[0]) != "*" {
				continue
			}
			ac := acceptContact{features: map[string]string{}}
			for _, p := range params[1:] {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				k = strings.ToLower(strings.TrimSpace(k))
				switch k {
				case "":
				case "require":
					ac.require = true
				case "explicit":
				default:
					ac.features[k] = normFeature(val)
				}
			}
			if len(ac.features) > 0 {
				out = append(out, ac)
			}
		}
	}
	return out
}

// normFeature is a feature value for comparison: unquoted, lower case
// (token and string values of RFC 3840 §9 compare case-insensitively here;
// "TRUE" and a missing value are the same boolean).
func normFeature(v string) string {
	v = strings.ToLower(strings.Trim(strings.TrimSpace(v), `"`))
	if v == "true" {
		return ""
	}
	return v
}

// contactFeatures returns the feature parameters of a stored Contact
// value (name → normalised value).
func contactFeatures(c binding.Contact) map[string]string {
	out := map[string]string{}
	v := c.Value
	if i := strings.IndexByte(v, '>'); i >= 0 {
		v = v[i+1:]
	}
	for _, p := range strings.Split(v, ";") {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if k = strings.ToLower(strings.TrimSpace(k)); k != "" {
			out[k] = normFeature(val)
		}
	}
	return out
}

// matches reports whether contact features f satisfy every feature of ac
// (RFC 3841 §7.4.2, simplified to exact values; a value list in ac such as
// "<a>,<b>" matches when any listed value is present in f's).
func (ac acceptContact) matches(f map[string]string) bool {
	for k, want := range ac.features {
		have, ok := f[k]
		if !ok {
			return false
		}
		if want != "" && have != want && !strings.Contains(have, want) && !strings.Contains(want, have) {
			return false
		}
	}
	return true
}

// preferredContacts applies the request's Accept-Contact preferences to
// contacts (RFC 3841 §7.4): contacts failing a preference with "require"
// are dropped; among the others, those matching the most preferences are
// kept. A request without preferences keeps every contact. The result
// may be empty (a required feature nobody registered: 480).
func preferredContacts(req *sip.Request, contacts []binding.Contact) []binding.Contact {
	prefs := acceptContacts(req)
	if len(prefs) == 0 {
		return contacts
	}
	best := -1
	var out []binding.Contact
	for _, c := range contacts {
		f := contactFeatures(c)
		score, ok := 0, true
		for _, ac := range prefs {
			switch {
			case ac.matches(f):
				score++
			case ac.require:
				ok = false
			}
		}
		if !ok {
			continue
		}
		switch {
		case score > best:
			best, out = score, []binding.Contact{c}
		case score == best:
			out = append(out, c)
		}
	}
	return out
}
