package imsheader

import "strings"

// HeaderPrivacy is the Privacy header of RFC 3323 §4.2.
const HeaderPrivacy = "Privacy"

// PrivacyValues returns the priv-values of every Privacy header of msg,
// lower-cased and in order: "header", "session", "user", "none",
// "critical", "id" (RFC 3323 §4.2, RFC 3325 §9.3), or any other token as
// sent. Values are separated by ";" (and, leniently, ","); empty ones are
// dropped. nil when msg has no Privacy header.
func PrivacyValues(msg Editable) []string {
	var out []string
	for _, h := range msg.GetHeaders(HeaderPrivacy) {
		for _, v := range strings.FieldsFunc(h.Value(), func(r rune) bool { return r == ';' || r == ',' }) {
			if v = strings.ToLower(strings.TrimSpace(v)); v != "" {
				out = append(out, v)
			}
		}
	}
	return out
}

// WantsPrivacy reports whether msg's Privacy header asks for privacy type
// v ("id", "header", ...). "none" (RFC 3323 §4.2: no privacy) overrides
// every other value.
func WantsPrivacy(msg Editable, v string) bool {
	found := false
	for _, x := range PrivacyValues(msg) {
		switch x {
		case "none":
			return false
		case v:
			found = true
		}
	}
	return found
}
