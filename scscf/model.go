package scscf

import (
	"sort"
	"strings"
	"sync"
	"time"

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

func (c *Contact) key() string {
	if c.Instance != "" && c.RegID != "" {
		return "i:" + c.Instance + ";" + c.RegID
	}
	if c.Instance != "" {
		return "i:" + c.Instance
	}
	return "u:" + canonURI(c.URI)
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
	// UserData is the User-Data XML of the last SAA or PPR.
	UserData []byte `json:"-"`
}

// EventKind says what happened to a registration.
type EventKind string

// Event kinds of RegistrationEvent.
const (
	EventRegistered     EventKind = "registered"      // first binding of the set
	EventRefreshed      EventKind = "refreshed"       // re-registration, bindings added/refreshed
	EventDeregistered   EventKind = "deregistered"    // binding(s) removed by the UE (Expires 0)
	EventExpired        EventKind = "expired"         // binding(s) reached their expiry
	EventTerminated     EventKind = "terminated"      // HSS RTR (administrative)
	EventProfileUpdated EventKind = "profile-updated" // HSS PPR
)

// RegistrationEvent is passed to Config.OnRegistrationChange.
// After is the registration after the change (no Contacts when the set is
// no longer registered); Changed holds the bindings added, refreshed or
// removed by this change.
type RegistrationEvent struct {
	Kind    EventKind
	After   Registration
	Changed []Contact
	// Reason is the Reason-Info of an RTR, or "" otherwise.
	Reason string

	// profile is After.UserData already parsed (read-only, shared with
	// the record), when the emitter had it; nil otherwise.
	profile *userdata.IMSSubscription
}

// record is the in-memory registration; guarded by registrar.mu.
type record struct {
	aor      string
	impi     string
	impus    []string
	barred   map[string]bool // canonical IMPU -> barred
	userData []byte
	profile  *userdata.IMSSubscription
	contacts []*Contact

	keys        []string // byIMPU keys (guarded by registrar.mu)
	indexedIMPI string   // byIMPI key
}

func (r *record) snapshot() Registration {
	out := Registration{AOR: r.aor, IMPI: r.impi, IMPUs: append([]string(nil), r.impus...), UserData: r.userData}
	for _, u := range r.impus {
		if r.barred[canonURI(u)] {
			out.Barred = append(out.Barred, u)
		}
	}
	out.Contacts = make([]Contact, 0, len(r.contacts))
	for _, c := range r.contacts {
		cc := *c
		cc.Path = append([]string(nil), c.Path...)
		out.Contacts = append(out.Contacts, cc)
	}
	return out
}

// registrar holds the registrations, indexed by AOR, IMPU and IMPI.
type registrar struct {
	mu     sync.RWMutex
	byAOR  map[string]*record            // canonical AOR
	byIMPU map[string]*record            // canonical IMPU of every IRS member
	byIMPI map[string]map[string]*record // impi -> aor -> record
}

func newRegistrar() *registrar {
	return &registrar{byAOR: map[string]*record{}, byIMPU: map[string]*record{}, byIMPI: map[string]map[string]*record{}}
}

func (g *registrar) lookup(impu string) *record {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.byIMPU[canonURI(impu)]
}

func (g *registrar) ofIMPI(impi string) []*record {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]*record, 0, len(g.byIMPI[impi]))
	for _, r := range g.byIMPI[impi] {
		out = append(out, r)
	}
	return out
}

// put indexes r (new, or with a changed IRS or IMPI).
func (g *registrar) put(r *record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	key := canonURI(r.aor)
	if old := g.byAOR[key]; old != nil {
		g.unindexLocked(old)
	}
	g.unindexLocked(r)
	g.byAOR[key] = r
	r.keys = r.keys[:0]
	for _, u := range append([]string{r.aor}, r.impus...) {
		k := canonURI(u)
		g.byIMPU[k] = r
		r.keys = append(r.keys, k)
	}
	r.indexedIMPI = r.impi
	m := g.byIMPI[r.impi]
	if m == nil {
		m = map[string]*record{}
		g.byIMPI[r.impi] = m
	}
	m[key] = r
}

func (g *registrar) remove(r *record) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.unindexLocked(r)
}

func (g *registrar) unindexLocked(r *record) {
	key := canonURI(r.aor)
	if g.byAOR[key] == r {
		delete(g.byAOR, key)
	}
	for _, k := range r.keys {
		if g.byIMPU[k] == r {
			delete(g.byIMPU, k)
		}
	}
	r.keys = nil
	if m := g.byIMPI[r.indexedIMPI]; m != nil && m[key] == r {
		delete(m, key)
		if len(m) == 0 {
			delete(g.byIMPI, r.indexedIMPI)
		}
	}
}

func (g *registrar) all() []*record {
	g.mu.RLock()
	defer g.mu.RUnlock()
	out := make([]*record, 0, len(g.byAOR))
	for _, r := range g.byAOR {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].aor < out[j].aor })
	return out
}

// canonURI gives the comparison form of an IMPU or contact URI: angle
// brackets and header parameters dropped, scheme and host lower-cased.
func canonURI(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '<'); i >= 0 {
		if j := strings.IndexByte(s[i:], '>'); j > 0 {
			s = s[i+1 : i+j]
		}
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
