// Package binding is the S-CSCF's model of registration state, shared by
// the registrar (scscf/registrar), the reg-event notifier (scscf/regevent)
// and session routing with iFC/ISC (scscf/isc): the bindings of a
// registered implicit registration set (RFC 3261 §10.3, RFC 3327,
// RFC 5626), the set and its barred members as the user profile gives
// them (TS 29.228 §6.6.1), the changes the registrar reports (event.go),
// the comparison form of the URIs they are keyed by, and the two names
// the packages agree on (names.go): the user part of the Service-Route
// and the reg event package (RFC 3680) that reports these bindings. It
// imports no other S-CSCF package.
package binding

import (
	"sort"
	"strings"
	"time"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/imsuri"
	"github.com/imscore/imscore/pkg/userdata"
)

// Contact is one binding of a registration (RFC 3261 §10.3, RFC 3327,
// RFC 5626), as stored and as shown on /status/registrar.
type Contact struct {
	// URI is the contact URI.
	URI string `json:"uri"`
	// Value is the Contact header value as received, all parameters kept
	// (+sip.instance, reg-id, feature tags, q) except expires.
	Value string `json:"value"`
	// Instance and RegID are +sip.instance and reg-id (RFC 5626), "" if
	// absent; with both present they identify the binding.
	Instance string `json:"instance,omitempty"`
	RegID    string `json:"reg_id,omitempty"`
	// Q is the q parameter as written, "" if absent.
	Q string `json:"q,omitempty"`
	// Expires is when the binding ends (granted expiry).
	Expires time.Time `json:"expires"`
	// CallID and CSeq of the REGISTER that last refreshed the binding
	// (RFC 3261 §10.3 step 7 ordering).
	CallID string `json:"call_id"`
	CSeq   uint32 `json:"cseq"`
	// FirstCSeq is the CSeq of the first REGISTER with CallID for this
	// binding: its temporary GRUUs are the ones issued from FirstCSeq to
	// CSeq (RFC 5628 §4 first-cseq, RFC 5627 §5.3); 0 in rows written
	// before it existed (read as CSeq).
	FirstCSeq uint32 `json:"first_cseq,omitempty"`
	// Path is the Path header entries (RFC 3327) of that REGISTER.
	Path []string `json:"path,omitempty"`
	// VisitedNetwork is P-Visited-Network-ID, ChargingVector the P-CSCF's
	// P-Charging-Vector, UserAgent the User-Agent header.
	VisitedNetwork string `json:"visited_network,omitempty"`
	ChargingVector string `json:"charging_vector,omitempty"`
	UserAgent      string `json:"user_agent,omitempty"`
	// Source is the transport address the REGISTER came from.
	Source string `json:"source,omitempty"`
	// Registered is when the binding was created.
	Registered time.Time `json:"registered"`
}

// Key identifies the binding within its registration: +sip.instance and
// reg-id (RFC 5626 §6), +sip.instance alone, else the contact URI in
// comparison form.
func (c *Contact) Key() string {
	if c.Instance != "" && c.RegID != "" {
		return "i:" + c.Instance + ";" + c.RegID
	}
	if c.Instance != "" {
		return "i:" + c.Instance
	}
	return "u:" + CanonURI(c.URI)
}

// Registration is a snapshot of one registered implicit registration set.
type Registration struct {
	// AOR is the IMPU the set was first registered with.
	AOR string `json:"aor"`
	// IMPI is the private identity that authenticated.
	IMPI string `json:"impi"`
	// IMPUs is the implicit registration set (TS 29.228 §6.6.1) as the
	// HSS sent it, AOR first; Barred lists the barred ones among them.
	IMPUs  []string `json:"impus"`
	Barred []string `json:"barred,omitempty"`
	// Contacts are the bindings, shared by every IMPU of the set.
	Contacts []Contact `json:"contacts"`
	// UserData is the User-Data XML (TS 29.228 Annex E) of the SAA or PPR
	// that has just changed the profile, for the write-through; nil when
	// the profile did not change (the stored one stands). The registrar
	// keeps only the parsed profile in memory.
	UserData []byte `json:"-"`
	// Charging is the P-Charging-Function-Addresses built from the
	// Charging-Information of the last SAA or PPR that had one (TS 29.229
	// §6.3.19); empty when the HSS sent none.
	Charging imsheader.PChargingFunctionAddresses `json:"charging,omitempty"`
}

// Served is what the registrar knows of one IMPU, as session routing
// reads it (TS 24.229 §5.4.3.2, §5.4.3.3).
type Served struct {
	// IMPU is the IMPU in comparison form.
	IMPU string
	// Registered: the set has at least one unexpired binding.
	Registered bool
	// Barred: the IMPU is barred (TS 29.228 §6.6.1).
	Barred bool
	// Profile is the user profile of the set (read-only, shared).
	Profile *userdata.IMSSubscription
	// Contacts are the unexpired bindings (copies).
	Contacts []Contact
	// Charging is the set's charging function addresses (Registration.Charging).
	Charging imsheader.PChargingFunctionAddresses
}

// IRS returns the implicit registration set of profile p with impu first
// (TS 29.228 §6.6.1: every non-wildcarded PublicIdentity of the
// subscription, in comparison form), and which of its members are barred
// (by comparison form).
func IRS(p *userdata.IMSSubscription, impu string) ([]string, map[string]bool) {
	barred := map[string]bool{}
	out := []string{impu}
	seen := map[string]bool{CanonURI(impu): true}
	for _, pi := range p.PublicIdentities() {
		if pi.IdentityType.Wildcarded() {
			continue
		}
		k := CanonURI(pi.Identity)
		if bool(pi.BarringIndication) {
			barred[k] = true
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, CanonURI(pi.Identity))
	}
	return out, barred
}

// CanonURI gives the comparison form of an IMPU or contact URI: angle
// brackets and header parameters dropped, scheme and host lower-cased; a
// telephone number in a tel URI or in a SIP URI with user=phone is the tel
// URI of the number without visual separators (imsuri.Canonical, RFC 3261
// §19.1.6, TS 24.229 §5.4.3.3), so sip:+15550100@<domain>;user=phone and
// tel:+1-555-0100 name the IMPU tel:+15550100.
func CanonURI(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			s = s[i+1 : i+j]
		}
	}
	if telForm(s) {
		s = imsuri.Canonical(s)
	}
	colon := strings.IndexByte(s, ':')
	if colon < 0 {
		return strings.ToLower(s)
	}
	// strings.ToLower returns its argument when it has no upper case, so
	// an already canonical URI is returned as a substring of s (no copy:
	// this runs several times per REGISTER).
	scheme := strings.ToLower(s[:colon])
	rest := s[colon+1:]
	if scheme == "tel" {
		if i := strings.IndexByte(rest, ';'); i >= 0 {
			rest = rest[:i]
		}
		if scheme == s[:colon] {
			return s[:colon+1+len(rest)]
		}
		return scheme + ":" + rest
	}
	user, host := "", rest
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		user, host = rest[:at+1], rest[at+1:]
	}
	if i := strings.IndexAny(host, ";?"); i >= 0 {
		host = host[:i]
	}
	if lower := strings.ToLower(host); scheme != s[:colon] || lower != host {
		return scheme + ":" + user + lower
	}
	return s[:colon+1+len(user)+len(host)]
}

// telForm reports whether s may be a telephone number URI: a tel URI, or a
// URI with a user=phone parameter (any case). It allocates nothing, so the
// SIP URIs of the REGISTER hot path stay a substring of their input.
func telForm(s string) bool {
	if len(s) >= 4 && strings.EqualFold(s[:4], "tel:") {
		return true
	}
	for i := strings.IndexByte(s, ';'); i >= 0 && i+11 <= len(s); {
		if strings.EqualFold(s[i+1:i+11], "user=phone") {
			return true
		}
		j := strings.IndexByte(s[i+1:], ';')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// HSSOrder returns impus in the order profile p lists them (TS 29.228
// Annex B: the HSS lists the implicit registration set with the default
// public user identity first, TS 24.229 §5.4.1.2.2), IMPUs p does not list
// last in their given order. With p nil, impus unchanged.
func HSSOrder(p *userdata.IMSSubscription, impus []string) []string {
	if p == nil {
		return impus
	}
	pos := map[string]int{}
	for i, pi := range p.PublicIdentities() {
		if k := CanonURI(pi.Identity); k != "" {
			if _, ok := pos[k]; !ok {
				pos[k] = i
			}
		}
	}
	out := append([]string(nil), impus...)
	rank := func(u string) int {
		if i, ok := pos[CanonURI(u)]; ok {
			return i
		}
		return len(pos)
	}
	sort.SliceStable(out, func(i, j int) bool { return rank(out[i]) < rank(out[j]) })
	return out
}

// Unregistered is what SAR UNREGISTERED_USER gives the S-CSCF for an IMPU
// served while not registered (TS 29.228 §6.1.2, TS 24.229 §5.4.3.3).
type Unregistered struct {
	// Profile is the user profile of the SAA; nil without User-Data.
	Profile *userdata.IMSSubscription
	// Charging is built from its Charging-Information; empty without.
	Charging imsheader.PChargingFunctionAddresses
}

// Supersedes reports whether a Contact c of a REGISTER replaces the
// existing binding b although their keys differ: same contact URI
// (comparison form) with another +sip.instance (or none). Only one device
// listens at one address, so b is that device's binding from before it
// restarted with a new instance-id; left alone it would outlive the
// device's de-registration until it expired (RFC 3261 §10.3 step 7 binds
// by contact URI; RFC 5626 §6 keys by instance only to tell flows of one
// device apart).
func Supersedes(c, b *Contact) bool {
	return c.Key() != b.Key() && c.Instance != b.Instance && CanonURI(c.URI) == CanonURI(b.URI)
}
