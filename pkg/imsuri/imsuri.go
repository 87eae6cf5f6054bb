// Package imsuri puts public user identities in the one form the core
// stores and compares them in, so that a tel URI (RFC 3966) and a SIP URI
// with user=phone (RFC 3261 §19.1.6) that carry the same telephone number
// name the same IMPU (TS 23.003 §13.4, TS 24.229 §5.3.2.1 and §5.4.3.3).
package imsuri

import "strings"

// Canonical returns identity in canonical form:
//
//   - tel URIs: the visual separators "-", ".", "(", ")" and spaces are
//     removed from the number (RFC 3966 §5.1.1); parameters are kept, with
//     lower-case names and a lower-case phone-context domain:
//     "tel:+1-555-0100" → "tel:+15550100";
//   - SIP and SIPS URIs with user=phone whose user part is a telephone
//     number become the tel URI of that number (RFC 3261 §19.1.6): its
//     parameters (phone-context) come from the user part, the host and the
//     other URI parameters are dropped:
//     "sip:+1-555-0100@ims.example;user=phone" → "tel:+15550100",
//     "sip:5550100;phone-context=ims.example@ims.example;user=phone" →
//     "tel:5550100;phone-context=ims.example";
//   - anything else is returned unchanged.
//
// A local number (no "+") keeps its phone-context: without it, it is not
// the same number in another context (RFC 3966 §5.1.5).
func Canonical(identity string) string {
	s := strings.TrimSpace(identity)
	colon := strings.IndexByte(s, ':')
	if colon < 0 {
		return identity
	}
	scheme, rest := strings.ToLower(s[:colon]), s[colon+1:]
	switch scheme {
	case "tel":
		if t, ok := telOf(rest); ok {
			return t
		}
	case "sip", "sips":
		at := strings.LastIndexByte(rest, '@')
		if at < 0 || !userPhone(rest[at+1:]) {
			return identity
		}
		if t, ok := telOf(rest[:at]); ok {
			return t
		}
	}
	return identity
}

// userPhone reports whether the host part of a SIP URI (host, port and
// parameters) carries user=phone.
func userPhone(hostpart string) bool {
	if i := strings.IndexByte(hostpart, '?'); i >= 0 {
		hostpart = hostpart[:i]
	}
	params := strings.Split(hostpart, ";")
	for _, p := range params[1:] {
		if k, v, _ := strings.Cut(p, "="); strings.EqualFold(strings.TrimSpace(k), "user") && strings.EqualFold(strings.TrimSpace(v), "phone") {
			return true
		}
	}
	return false
}

// telOf builds "tel:<number>[;params]" from a telephone-subscriber
// (number and parameters); false when the number holds anything but
// digits, visual separators and a leading "+" (or the DTMF/pause
// characters *#ABCDpw that RFC 3966 allows).
func telOf(sub string) (string, bool) {
	parts := strings.Split(sub, ";")
	var b strings.Builder
	b.WriteString("tel:")
	num := strings.TrimSpace(parts[0])
	digits := 0
	for i, r := range num {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
			digits++
		case r == '+' && i == 0:
			b.WriteRune(r)
		case r == '-' || r == '.' || r == '(' || r == ')' || r == ' ':
		case strings.ContainsRune("*#ABCDabcdpPwW", r):
			b.WriteRune(r)
		default:
			return "", false
		}
	}
	if digits == 0 {
		return "", false
	}
	for _, p := range parts[1:] {
		k, v, hasV := strings.Cut(strings.TrimSpace(p), "=")
		if k == "" {
			continue
		}
		k = strings.ToLower(k)
		b.WriteString(";" + k)
		if hasV {
			if k == "phone-context" && !strings.HasPrefix(v, "+") {
				v = strings.ToLower(v)
			}
			b.WriteString("=" + v)
		}
	}
	return b.String(), true
}
