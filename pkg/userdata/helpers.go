package userdata

import (
	"slices"
	"strings"
)

// ProfileFor finds the ServiceProfile and PublicIdentity entry that serve
// impu (TS 29.228 §6.6, TS 24.229 §5.4.3.2): first an entry whose Identity
// equals impu (scheme and host compared case-insensitively, user part and
// the rest exactly, surrounding '<' '>' ignored), then, for the wildcarded
// identity types, an entry whose WildcardedPSI, WildcardedIMPU or Identity
// pattern (TS 23.003 §13.5) matches impu. Barred entries are returned too:
// the caller decides what barring means for the request. It returns nil, nil
// when no entry matches. The pointers alias s.
func (s *IMSSubscription) ProfileFor(impu string) (*ServiceProfile, *PublicIdentity) {
	if s == nil {
		return nil, nil
	}
	want := canonicalURI(impu)
	for i := range s.ServiceProfiles {
		sp := &s.ServiceProfiles[i]
		for j := range sp.PublicIdentities {
			if canonicalURI(sp.PublicIdentities[j].Identity) == want {
				return sp, &sp.PublicIdentities[j]
			}
		}
	}
	target := strings.Trim(strings.TrimSpace(impu), "<>")
	for i := range s.ServiceProfiles {
		sp := &s.ServiceProfiles[i]
		for j := range sp.PublicIdentities {
			pi := &sp.PublicIdentities[j]
			if !pi.IdentityType.Wildcarded() {
				continue
			}
			for _, pat := range []string{pi.WildcardedPSI, pi.WildcardedIMPU, pi.Identity} {
				if pat == "" {
					continue
				}
				re, err := wildcardRegexp(pat)
				if err == nil && re != nil && re.MatchString(target) {
					return sp, pi
				}
			}
		}
	}
	return nil, nil
}

// PublicIdentities returns every PublicIdentity of the subscription (the
// implicit registration set as the HSS sent it, TS 29.228 §6.6.1) in document
// order. The pointers alias s.
func (s *IMSSubscription) PublicIdentities() []*PublicIdentity {
	if s == nil {
		return nil
	}
	var out []*PublicIdentity
	for i := range s.ServiceProfiles {
		for j := range s.ServiceProfiles[i].PublicIdentities {
			out = append(out, &s.ServiceProfiles[i].PublicIdentities[j])
		}
	}
	return out
}

// NonBarred returns the PublicIdentities whose BarringIndication is not set,
// in document order: the identities for P-Associated-URI in the 200 to
// REGISTER (TS 24.229 §5.4.1.2.2). The pointers alias s.
func (s *IMSSubscription) NonBarred() []*PublicIdentity {
	var out []*PublicIdentity
	for _, pi := range s.PublicIdentities() {
		if !pi.BarringIndication {
			out = append(out, pi)
		}
	}
	return out
}

// SortedIFCs returns the profile's InitialFilterCriteria in evaluation order,
// lowest Priority first (TS 29.228 Annex B.2.2, TS 23.218 §6.5); ties, which
// Validate rejects, keep document order. The pointers alias sp.
func (sp *ServiceProfile) SortedIFCs() []*InitialFilterCriteria {
	if sp == nil {
		return nil
	}
	out := make([]*InitialFilterCriteria, len(sp.InitialFilterCriteria))
	for i := range sp.InitialFilterCriteria {
		out[i] = &sp.InitialFilterCriteria[i]
	}
	slices.SortStableFunc(out, func(a, b *InitialFilterCriteria) int {
		switch {
		case a.Priority < b.Priority:
			return -1
		case a.Priority > b.Priority:
			return 1
		}
		return 0
	})
	return out
}

// canonicalURI is the comparison key of a public identity: white space and
// angle brackets removed, scheme and (for SIP) host lower-cased, and (for
// tel) visual separators removed. It is not full RFC 3261 §19.1.4 equality.
func canonicalURI(u string) string {
	u = strings.Trim(strings.TrimSpace(u), "<>")
	scheme, rest, ok := strings.Cut(u, ":")
	if !ok {
		return u
	}
	scheme = strings.ToLower(scheme)
	switch scheme {
	case "sip", "sips":
		user, hostport := "", rest
		if i := strings.LastIndexByte(rest, '@'); i >= 0 {
			user, hostport = rest[:i+1], rest[i+1:]
		}
		host, params := hostport, ""
		if i := strings.IndexAny(hostport, ";?"); i >= 0 {
			host, params = hostport[:i], hostport[i:]
		}
		return scheme + ":" + user + strings.ToLower(host) + params
	case "tel":
		num, params, _ := strings.Cut(rest, ";")
		num = strings.Map(func(r rune) rune {
			if r == '-' || r == '.' || r == '(' || r == ')' {
				return -1
			}
			return r
		}, num)
		if params != "" {
			return scheme + ":" + strings.ToLower(num) + ";" + params
		}
		return scheme + ":" + strings.ToLower(num)
	}
	return scheme + ":" + rest
}
