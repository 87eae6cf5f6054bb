package isc

// Caller preferences (RFC 3841) when the S-CSCF forks a terminating request
// to the contacts of a registered user (TS 24.229 §5.4.3.3 step 10: the
// S-CSCF applies caller preferences).

import (
	"strconv"
	"strings"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/scscf/binding"
)

// featureValue is one value of a feature parameter (RFC 3840 §9): a
// boolean, a token (compared case-insensitively), a string ("<...>",
// compared exactly) or a numeric range lo..hi ("#=n", "#<=n", "#>=n",
// "#a:b"). neg is the "!" prefix of a predicate value.
type featureValue struct {
	kind   byte // 'b' boolean, 't' token, 's' string, 'n' numeric
	neg    bool
	text   string // token (lower case) or string (as written); "true"/"false" for booleans
	lo, hi float64
}

// featurePred is one Accept-Contact or Reject-Contact value: the feature
// tags it names, each with its alternative values (any of them matches,
// RFC 3840 §9), and the require flag of Accept-Contact.
type featurePred struct {
	features map[string][]featureValue
	require  bool
}

// splitUnquoted splits s at sep outside double-quoted strings (a quoted
// value such as "INVITE,BYE" stays in one piece).
func splitUnquoted(s string, sep byte) []string {
	var out []string
	quoted, start := false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case c == sep && !quoted:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseFeatureValues parses the value of a feature parameter (RFC 3840
// §9 feature-param): none or TRUE/FALSE (boolean), "#..." (numeric),
// "<...>" (string) or a quoted comma-separated list of tokens and
// "!"-negated tokens.
func parseFeatureValues(v string) []featureValue {
	v = strings.TrimSpace(v)
	if v == "" {
		return []featureValue{{kind: 'b', text: "true"}}
	}
	if !strings.HasPrefix(v, `"`) {
		// An unquoted value is a single token (RFC 3261 gen-value).
		return []featureValue{tokenValue(v)}
	}
	v = strings.TrimSuffix(strings.TrimPrefix(v, `"`), `"`)
	if strings.HasPrefix(v, "<") && strings.HasSuffix(v, ">") {
		return []featureValue{{kind: 's', text: v[1 : len(v)-1]}}
	}
	var out []featureValue
	for _, one := range strings.Split(v, ",") {
		if one = strings.TrimSpace(one); one == "" {
			continue
		}
		neg := strings.HasPrefix(one, "!")
		one = strings.TrimPrefix(one, "!")
		fv := tokenValue(one)
		if strings.HasPrefix(one, "#") {
			var ok bool
			if fv, ok = numericValue(one[1:]); !ok {
				continue
			}
		}
		fv.neg = neg
		out = append(out, fv)
	}
	return out
}

func tokenValue(v string) featureValue {
	v = strings.ToLower(v)
	if v == "true" || v == "false" {
		return featureValue{kind: 'b', text: v}
	}
	return featureValue{kind: 't', text: v}
}

// numericValue parses the part after "#" of a numeric feature value:
// "=n", "<=n", ">=n" or "a:b" (RFC 3840 §9).
func numericValue(v string) (featureValue, bool) {
	num := func(s string) (float64, bool) {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		return f, err == nil
	}
	fv := featureValue{kind: 'n'}
	var ok1, ok2 bool
	switch {
	case strings.HasPrefix(v, "<="):
		fv.lo, ok1 = -1e308, true
		fv.hi, ok2 = num(v[2:])
	case strings.HasPrefix(v, ">="):
		fv.lo, ok1 = num(v[2:])
		fv.hi, ok2 = 1e308, true
	case strings.HasPrefix(v, "="):
		fv.lo, ok1 = num(v[1:])
		fv.hi, ok2 = fv.lo, ok1
	default:
		a, b, found := strings.Cut(v, ":")
		if !found {
			fv.lo, ok1 = num(v)
			fv.hi, ok2 = fv.lo, ok1
			break
		}
		fv.lo, ok1 = num(a)
		fv.hi, ok2 = num(b)
	}
	return fv, ok1 && ok2 && fv.lo <= fv.hi
}

// matchesValue reports whether predicate value p is satisfied by the
// contact's values of the same feature (RFC 3840 §9, RFC 2533 §3):
// tokens case-insensitively equal, strings exactly equal, booleans
// equal, a number inside the range; "!" negates.
func (p featureValue) matchesValue(have []featureValue) bool {
	hit := false
	for _, h := range have {
		switch {
		case p.kind == 'n' && h.kind == 'n':
			// A contact's number is a point (lo == hi); a contact range
			// matches when it lies inside the predicate's.
			hit = h.lo >= p.lo && h.hi <= p.hi
		case p.kind == h.kind:
			hit = p.text == h.text
		}
		if hit {
			break
		}
	}
	return hit != p.neg
}

// callerPrefs parses the values of header name (Accept-Contact or
// Reject-Contact; RFC 3841 §10: "*" followed by feature parameters;
// "require" and "explicit" are flags). Values other than "*" and values
// without a feature parameter are ignored.
func callerPrefs(req *sip.Request, name string) []featurePred {
	var out []featurePred
	for _, v := range imsheader.Values(req, name) {
		for _, one := range splitUnquoted(v, ',') {
			params := splitUnquoted(one, ';')
			if strings.TrimSpace(params[0]) != "*" {
				continue
			}
			fp := featurePred{features: map[string][]featureValue{}}
			for _, p := range params[1:] {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				k = strings.ToLower(strings.TrimSpace(k))
				switch k {
				case "":
				case "require":
					fp.require = true
				case "explicit":
				default:
					fp.features[k] = parseFeatureValues(val)
				}
			}
			if len(fp.features) > 0 {
				out = append(out, fp)
			}
		}
	}
	return out
}

// contactFeatures returns the feature parameters of a stored Contact
// value (name → values).
func contactFeatures(c binding.Contact) map[string][]featureValue {
	out := map[string][]featureValue{}
	v := c.Value
	if i := strings.IndexByte(v, '>'); i >= 0 {
		v = v[i+1:]
	}
	for _, p := range splitUnquoted(v, ';') {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if k = strings.ToLower(strings.TrimSpace(k)); k != "" {
			out[k] = parseFeatureValues(val)
		}
	}
	return out
}

// matches reports whether contact features f satisfy every feature of fp
// (RFC 3841 §7.4.2 with RFC 2533 matching): f has each feature tag of fp
// and, for each, one of fp's alternative values matches f's values.
func (fp featurePred) matches(f map[string][]featureValue) bool {
	for k, want := range fp.features {
		have, ok := f[k]
		if !ok {
			return false
		}
		any := false
		for _, w := range want {
			if w.matchesValue(have) {
				any = true
				break
			}
		}
		if !any {
			return false
		}
	}
	return true
}

// preferredContacts applies the request's caller preferences to contacts
// (RFC 3841 §7.4): a contact whose feature set matches any Reject-Contact
// value is dropped (§7.4.1); then contacts failing an Accept-Contact value
// with "require" are dropped and, among the others, those matching the
// most Accept-Contact values are kept (§7.4.2, simplified: lower-scored
// contacts are not tried later). A request without preferences keeps
// every contact. The result may be empty (every contact rejected, or a
// required feature nobody registered): the caller answers 480.
func preferredContacts(req *sip.Request, contacts []binding.Contact) []binding.Contact {
	reject := callerPrefs(req, "Reject-Contact")
	prefs := callerPrefs(req, "Accept-Contact")
	if len(prefs) == 0 && len(reject) == 0 {
		return contacts
	}
	best := -1
	var out []binding.Contact
next:
	for _, c := range contacts {
		f := contactFeatures(c)
		for _, rc := range reject {
			if rc.matches(f) {
				continue next
			}
		}
		score := 0
		for _, ac := range prefs {
			switch {
			case ac.matches(f):
				score++
			case ac.require:
				continue next
			}
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
