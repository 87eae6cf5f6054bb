// Package contacts is the P-CSCF contact store (after Kamailio's
// ims_usrloc_pcscf): one entry per registered UE contact and flow, keyed
// by the Contact URI plus the address, port and transport the REGISTER
// was received from. An entry holds the IMPUs of the implicit
// registration set (P-Associated-URI), the Service-Route, the expiry,
// the IPsec SA set when sec-agree was used, and the Rx sessions of the
// contact's calls. Entries can be written through to PostgreSQL (own
// tables pcscf_*) and reloaded at start-up.
package contacts

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imscore/imscore/pkg/ipsec"
	"github.com/imscore/imscore/pkg/keylock"
)

// Flow is where a UE's requests come from (RFC 5626 sense, simplified):
// transport ("udp"/"tcp"), source IP and port.
type Flow struct {
	Transport string `json:"transport"`
	Host      string `json:"host"`
	Port      int    `json:"port"`
}

// String formats "udp:1.2.3.4:5060".
func (f Flow) String() string {
	return f.Transport + ":" + net.JoinHostPort(f.Host, strconv.Itoa(f.Port))
}

// Contact is one registered UE contact.
type Contact struct {
	// AOR is the Contact URI of the REGISTER (without header params).
	AOR string `json:"aor"`
	// Flow is the source the REGISTER arrived from.
	Flow Flow `json:"flow"`
	// IMPUs from P-Associated-URI of the 200 (first is the default
	// identity for P-Asserted-Identity); the registered To IMPU first
	// when P-Associated-URI is absent.
	IMPUs []string `json:"impus"`
	// ServiceRoute entries (URIs) of the 200, in order.
	ServiceRoute []string `json:"service_route"`
	// Expires is when the registration ends.
	Expires time.Time `json:"expires"`
	// Registered is when the first successful REGISTER was seen.
	Registered time.Time `json:"registered"`
	// SA is the IPsec SA set in use (nil without sec-agree).
	SA *ipsec.SecAssoc `json:"sa,omitempty"`
	// SecurityServer is what the P-CSCF offered (for Security-Verify).
	SecurityServer string `json:"security_server,omitempty"`
	// RxSessions are the Diameter Session-Ids of the contact's Rx sessions.
	RxSessions []string `json:"rx_sessions,omitempty"`
	// RxSignalling is the Session-Id of the Rx session for the contact's
	// SIP signalling flows (TS 29.214 §4.4.5a); it is in RxSessions too.
	RxSignalling string `json:"rx_signalling,omitempty"`
	// RegSubscription is the Call-ID of the reg-event SUBSCRIBE dialog.
	RegSubscription string `json:"reg_subscription,omitempty"`
	// SignallingLost is set (to the Specific-Action that told it) when
	// the PCRF reported the loss or release of the bearer of the
	// contact's signalling flows; the next successful REGISTER of the
	// contact clears it.
	SignallingLost string `json:"signalling_lost,omitempty"`
}

// Key is the store key: AOR + flow.
func (c *Contact) Key() string { return Key(c.AOR, c.Flow) }

// Key builds a store key.
func Key(aor string, f Flow) string {
	return strings.ToLower(aor) + "|" + strings.ToLower(f.String())
}

// Clone returns a deep copy.
func (c *Contact) Clone() *Contact {
	d := *c
	d.IMPUs = append([]string(nil), c.IMPUs...)
	d.ServiceRoute = append([]string(nil), c.ServiceRoute...)
	d.RxSessions = append([]string(nil), c.RxSessions...)
	if c.SA != nil {
		sa := *c.SA
		d.SA = &sa
	}
	return &d
}

// Persister stores contacts durably (see PG).
type Persister interface {
	Save(ctx context.Context, c *Contact) error
	Delete(ctx context.Context, key string) error
	LoadAll(ctx context.Context) ([]*Contact, error)
}

// Store is the in-memory contact table, safe for concurrent use. Besides
// the key, contacts are indexed by IMPU, by Contact URI and by host and
// port (of the flow, of the UE's protected ports and of the Contact URI),
// so that the per-request look-ups cost the same with a hundred thousand
// contacts as with ten, even when all UEs share one address (NAT, sipp).
type Store struct {
	mu      sync.RWMutex
	byKey   map[string]*Contact
	byIMPU  index // lower-case IMPU
	byAOR   index // lower-case Contact URI
	byAddr  index // hostPort of the flow, the SA's UE ports, the Contact URI
	persist Persister
	now     func() time.Time

	// keyLocks serialise the writes of one key: its in-memory change and
	// its write-through happen under the key's lock, so the persister gets
	// a key's snapshots in the order they were made. Without it, two
	// concurrent Updates (say the Rx signalling session and the reg-event
	// subscription stored right after a registration) could leave the
	// older snapshot in PostgreSQL, and an Update racing a Delete could
	// write a removed contact back.
	keyLocks keylock.Mutex
}

// index maps a normalised value to the keys of the contacts holding it.
type index map[string]map[string]struct{}

func (ix index) add(v, key string) {
	set := ix[v]
	if set == nil {
		set = map[string]struct{}{}
		ix[v] = set
	}
	set[key] = struct{}{}
}

func (ix index) remove(v, key string) {
	if set := ix[v]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(ix, v)
		}
	}
}

// New returns an empty store; p may be nil (memory only).
func New(p Persister) *Store {
	return &Store{byKey: map[string]*Contact{}, byIMPU: index{}, byAOR: index{}, byAddr: index{}, persist: p, now: time.Now}
}

// set stores c under key (s.mu held), keeping the indexes.
func (s *Store) set(key string, c *Contact) {
	s.unset(key)
	s.byKey[key] = c
	s.indexContact(key, c, index.add)
}

// unset removes key (s.mu held) and returns what it held.
func (s *Store) unset(key string) *Contact {
	old := s.byKey[key]
	if old != nil {
		delete(s.byKey, key)
		s.indexContact(key, old, index.remove)
	}
	return old
}

// indexContact adds (op index.add) or removes (index.remove) the index
// entries of c under key; s.mu held.
func (s *Store) indexContact(key string, c *Contact, op func(index, string, string)) {
	for _, impu := range c.IMPUs {
		op(s.byIMPU, strings.ToLower(impu), key)
	}
	op(s.byAOR, strings.ToLower(c.AOR), key)
	op(s.byAddr, hostPort(c.Flow.Host, c.Flow.Port), key)
	if c.SA != nil {
		op(s.byAddr, hostPort(c.Flow.Host, int(c.SA.UE.PortC)), key)
		op(s.byAddr, hostPort(c.Flow.Host, int(c.SA.UE.PortS)), key)
	}
	if _, h, p := splitURI(c.AOR); h != "" {
		op(s.byAddr, hostPort(h, p), key)
	}
}

// hostPort is the byAddr form of a host and port.
func hostPort(host string, port int) string { return normHost(host) + "|" + strconv.Itoa(port) }

// Counts returns the number of contacts and of distinct IMPUs (compared
// case-insensitively) they hold, expired ones not yet removed included.
func (s *Store) Counts() (contacts, impus int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byKey), len(s.byIMPU)
}

// Load reads every stored contact from the persister (expired ones are
// returned too, so the caller can clean them up) and fills the store.
func (s *Store) Load(ctx context.Context) ([]*Contact, error) {
	if s.persist == nil {
		return nil, nil
	}
	all, err := s.persist.LoadAll(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	for _, c := range all {
		s.set(c.Key(), c.Clone())
	}
	s.mu.Unlock()
	return all, nil
}

// Put inserts or replaces c (a copy is stored) and writes it through.
func (s *Store) Put(ctx context.Context, c *Contact) error {
	defer s.keyLocks.Lock(c.Key())()
	s.mu.Lock()
	s.set(c.Key(), c.Clone())
	s.mu.Unlock()
	if s.persist != nil {
		if err := s.persist.Save(ctx, c); err != nil {
			return fmt.Errorf("contacts: persist %s: %w", c.Key(), err)
		}
	}
	return nil
}

// Update applies fn to the stored contact under key and writes it
// through; false when there is none.
func (s *Store) Update(ctx context.Context, key string, fn func(c *Contact)) (bool, error) {
	defer s.keyLocks.Lock(key)()
	s.mu.Lock()
	c, ok := s.byKey[key]
	if !ok {
		s.mu.Unlock()
		return false, nil
	}
	s.indexContact(key, c, index.remove)
	fn(c)
	s.indexContact(key, c, index.add)
	cp := c.Clone()
	s.mu.Unlock()
	if s.persist != nil {
		if err := s.persist.Save(ctx, cp); err != nil {
			return true, fmt.Errorf("contacts: persist %s: %w", key, err)
		}
	}
	return true, nil
}

// Delete removes the contact under key and returns it (nil when absent).
func (s *Store) Delete(ctx context.Context, key string) (*Contact, error) {
	defer s.keyLocks.Lock(key)()
	s.mu.Lock()
	c := s.unset(key)
	s.mu.Unlock()
	if s.persist != nil && c != nil {
		if err := s.persist.Delete(ctx, key); err != nil {
			return c, fmt.Errorf("contacts: persist delete %s: %w", key, err)
		}
	}
	return c, nil
}

// Get returns a copy of the contact under key, nil when absent.
func (s *Store) Get(key string) *Contact {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.byKey[key]; c != nil {
		return c.Clone()
	}
	return nil
}

// BySource finds an unexpired contact whose requests may come from
// transport/host/port: its registration flow, or, when it has an SA,
// the UE's protected ports (port-c, and port-s for TCP replies are not
// requests). The most recently registered match wins.
func (s *Store) BySource(transport, host string, port int) *Contact {
	now := s.now()
	return s.find([]index{s.byAddr}, []string{hostPort(host, port)}, func(c *Contact) bool {
		if !c.Expires.After(now) || !sameIP(c.Flow.Host, host) {
			return false
		}
		if c.SA != nil {
			return int(c.SA.UE.PortC) == port || int(c.SA.UE.PortS) == port
		}
		return strings.EqualFold(c.Flow.Transport, transport) && c.Flow.Port == port
	})
}

// ByURI finds an unexpired contact addressed by a Request-URI: its
// Contact URI, or a URI whose host:port is the contact's flow or the
// UE's protected server port.
func (s *Store) ByURI(user, host string, port int, full string) *Contact {
	now := s.now()
	full = strings.ToLower(full)
	return s.find([]index{s.byAOR, s.byAddr}, []string{full, hostPort(host, port)}, func(c *Contact) bool {
		if !c.Expires.After(now) {
			return false
		}
		if strings.EqualFold(c.AOR, full) {
			return true
		}
		u, h, p := splitURI(c.AOR)
		if strings.EqualFold(u, user) && sameIP(h, host) && p == port {
			return true
		}
		if sameIP(c.Flow.Host, host) && (c.Flow.Port == port || (c.SA != nil && int(c.SA.UE.PortS) == port)) {
			return true
		}
		return false
	})
}

// ByIMPU lists unexpired contacts registered with impu (compared
// case-insensitively).
func (s *Store) ByIMPU(impu string) []*Contact {
	now := s.now()
	var out []*Contact
	s.mu.RLock()
	defer s.mu.RUnlock()
	for key := range s.byIMPU[strings.ToLower(impu)] {
		if c := s.byKey[key]; c.Expires.After(now) {
			out = append(out, c.Clone())
		}
	}
	return out
}

// ByAOR lists the contacts (expired ones included) whose Contact URI is
// aor exactly.
func (s *Store) ByAOR(aor string) []*Contact {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Contact
	for key := range s.byAOR[strings.ToLower(aor)] {
		if c := s.byKey[key]; c.AOR == aor {
			out = append(out, c.Clone())
		}
	}
	return out
}

// find returns a copy of the most recently registered contact for which
// match is true among those listed under values[i] in indexes[i].
func (s *Store) find(indexes []index, values []string, match func(*Contact) bool) *Contact {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var best *Contact
	for i, ix := range indexes {
		for key := range ix[values[i]] {
			c := s.byKey[key]
			if match(c) && (best == nil || c.Registered.After(best.Registered)) {
				best = c
			}
		}
	}
	if best == nil {
		return nil
	}
	return best.Clone()
}

// All returns copies of every contact ordered by key. It copies the whole
// table: per-request code uses Matching or Any.
func (s *Store) All() []*Contact {
	s.mu.RLock()
	keys := make([]string, 0, len(s.byKey))
	for k := range s.byKey {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]*Contact, len(keys))
	for i, k := range keys {
		out[i] = s.byKey[k].Clone()
	}
	s.mu.RUnlock()
	return out
}

// Matching returns copies of the contacts (expired ones included) for
// which match is true, in no particular order. match runs under the
// store's read lock and must not call the store.
func (s *Store) Matching(match func(*Contact) bool) []*Contact {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Contact
	for _, c := range s.byKey {
		if match(c) {
			out = append(out, c.Clone())
		}
	}
	return out
}

// Any reports whether match is true for a contact (expired ones
// included); match runs under the store's read lock and must not modify
// the contact or call the store.
func (s *Store) Any(match func(*Contact) bool) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.byKey {
		if match(c) {
			return true
		}
	}
	return false
}

// Expired removes and returns the contacts whose Expires is not after now.
func (s *Store) Expired(ctx context.Context) ([]*Contact, error) {
	now := s.now()
	s.mu.RLock()
	var keys []string
	for k, c := range s.byKey {
		if !c.Expires.After(now) {
			keys = append(keys, k)
		}
	}
	s.mu.RUnlock()
	var out []*Contact
	var first error
	for _, k := range keys {
		if c, err := s.deleteExpired(ctx, k, now); c != nil {
			out = append(out, c)
			if err != nil && first == nil {
				first = err
			}
		}
	}
	return out, first
}

// deleteExpired removes the contact under key if it is still expired at
// now (a re-registration may have renewed it since it was listed).
func (s *Store) deleteExpired(ctx context.Context, key string, now time.Time) (*Contact, error) {
	defer s.keyLocks.Lock(key)()
	s.mu.Lock()
	c := s.byKey[key]
	if c == nil || c.Expires.After(now) {
		s.mu.Unlock()
		return nil, nil
	}
	s.unset(key)
	s.mu.Unlock()
	if s.persist != nil {
		return c, s.persist.Delete(ctx, key)
	}
	return c, nil
}

// Len returns the number of contacts (expired ones not yet swept included).
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byKey)
}

// normHost is the index form of a host: an IP address in its canonical
// text (IPv4-mapped IPv6 as IPv4, brackets removed), lower-cased like any
// other host. Hosts that sameIP finds equal have the same normHost.
func normHost(h string) string {
	h = strings.Trim(h, "[]")
	if a, err := netip.ParseAddr(h); err == nil {
		h = a.Unmap().String()
	}
	return strings.ToLower(h)
}

func sameIP(a, b string) bool {
	a, b = strings.Trim(a, "[]"), strings.Trim(b, "[]")
	if ia, ib := net.ParseIP(a), net.ParseIP(b); ia != nil && ib != nil {
		return ia.Equal(ib)
	}
	return strings.EqualFold(a, b)
}

// splitURI extracts user, host and port (5060 default) from a sip: URI
// string without parsing parameters precisely.
func splitURI(u string) (user, host string, port int) {
	s := u
	if i := strings.IndexByte(s, ':'); i >= 0 && !strings.Contains(s[:i], "@") {
		s = s[i+1:]
	}
	if i := strings.IndexAny(s, ";?>"); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		user, s = s[:i], s[i+1:]
	}
	port = 5060
	if h, p, err := net.SplitHostPort(s); err == nil {
		host = h
		if n, err := strconv.Atoi(p); err == nil {
			port = n
		}
	} else {
		host = strings.Trim(s, "[]")
	}
	return user, host, port
}
