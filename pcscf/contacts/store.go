// Package contacts is the P-CSCF contact store (after Kamailio's
// ims_usrloc_pcscf): one entry per registered UE contact and flow, keyed
// by the Contact URI plus the address, port and transport the REGISTER
// was received from. An entry holds the IMPUs of the implicit
// registration set (P-Associated-URI), the Service-Route, the expiry,
// the IPsec SA set when sec-agree was used, the charging function
// addresses, and the Rx sessions of the contact's calls. Entries can be written through to PostgreSQL (own
// tables pcscf_*) and reloaded at start-up.
package contacts

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/imscore/imscore/pkg/intern"
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
	// ChargingAddresses is the P-Charging-Function-Addresses value of the
	// latest 200 to the contact's REGISTER ("ccf=...;ecf=...", RFC 7315
	// §5.5), which the P-CSCF puts in the UE's initial requests and its
	// responses towards the core (TS 24.229 §5.2.2, §5.2.6.3, §5.2.6.4);
	// "" when the S-CSCF sent none. It is in the row's JSON, so it
	// survives a restart like ServiceRoute.
	ChargingAddresses string `json:"charging_addresses,omitempty"`
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
// the key, contacts are indexed by IMPU, by Contact URI, by host and port
// (of the Contact URI, and of the flow and the UE's protected ports), by
// the flow together with the Contact's address, by Rx Session-Id and by
// SA, so that the per-request look-ups cost the same with a hundred
// thousand contacts as with ten, even when all UEs share one flow (behind
// an SBC, a NAT without per-UE ports, or a load generator's one socket).
type Store struct {
	mu            sync.RWMutex
	byKey         map[string]*Contact
	byIMPU        index // lower-case IMPU
	byAOR         index // lower-case Contact URI
	byContactAddr index // hostPort of the Contact URI
	byFlowAddr    index // hostPort of the flow and of the SA's UE ports
	bySource      index // sourceKey: where the UE's requests come from
	bySourceUE    index // sourceKey + "|" + hostPort of the Contact URI
	bySourceHost  index // sourceKey + "|" + normHost of the Contact URI
	bySession     index // Rx Session-Id (RxSessions, RxSignalling)
	bySA          index // saKey of the P-CSCF's SPIs
	persist       Persister
	now           func() time.Time

	// keyLocks serialise the writes of one key: its in-memory change and
	// its write-through happen under the key's lock, so the persister gets
	// a key's snapshots in the order they were made. Without it, two
	// concurrent Updates (say the Rx signalling session and the reg-event
	// subscription stored right after a registration) could leave the
	// older snapshot in PostgreSQL, and an Update racing a Delete could
	// write a removed contact back.
	keyLocks keylock.Mutex
}

// New returns an empty store; p may be nil (memory only).
func New(p Persister) *Store {
	return &Store{byKey: map[string]*Contact{}, byIMPU: newIndex(), byAOR: newIndex(), byContactAddr: newIndex(), byFlowAddr: newIndex(),
		bySource: newIndex(), bySourceUE: newIndex(), bySourceHost: newIndex(), bySession: newIndex(), bySA: newIndex(), persist: p, now: time.Now}
}

// set stores c under key (s.mu held), keeping the indexes.
func (s *Store) set(key string, c *Contact) {
	intern.Strings(c.ServiceRoute) // c is the store's own copy
	c.ChargingAddresses = intern.String(c.ChargingAddresses)
	s.unset(key)
	s.byKey[key] = c
	s.indexContact(key, c, index.Add)
}

// unset removes key (s.mu held) and returns what it held.
func (s *Store) unset(key string) *Contact {
	old := s.byKey[key]
	if old != nil {
		delete(s.byKey, key)
		s.indexContact(key, old, index.Remove)
	}
	return old
}

// indexContact adds (op index.Add) or removes (index.Remove) the index
// entries of c under key; s.mu held.
func (s *Store) indexContact(key string, c *Contact, op func(index, string, string)) {
	for _, impu := range c.IMPUs {
		op(s.byIMPU, strings.ToLower(impu), key)
	}
	op(s.byAOR, strings.ToLower(c.AOR), key)
	op(s.byFlowAddr, hostPort(c.Flow.Host, c.Flow.Port), key)
	if c.SA != nil {
		op(s.byFlowAddr, hostPort(c.Flow.Host, int(c.SA.UE.PortC)), key)
		op(s.byFlowAddr, hostPort(c.Flow.Host, int(c.SA.UE.PortS)), key)
		op(s.bySA, saKey(c.SA), key)
	}
	_, h, p := splitURI(c.AOR)
	if h != "" {
		op(s.byContactAddr, hostPort(h, p), key)
	}
	for _, src := range c.sourceKeys() {
		op(s.bySource, src, key)
		if h != "" {
			op(s.bySourceUE, src+"|"+hostPort(h, p), key)
			op(s.bySourceHost, src+"|"+normHost(h), key)
		}
	}
	for i, sid := range c.RxSessions {
		if !slices.Contains(c.RxSessions[:i], sid) {
			op(s.bySession, sid, key)
		}
	}
	if c.RxSignalling != "" && !slices.Contains(c.RxSessions, c.RxSignalling) {
		op(s.bySession, c.RxSignalling, key)
	}
}

// sourceKeys are the sources c's requests may come from: its
// registration flow (transport, address, port) or, when it has an SA,
// the UE's protected ports (port-c, and port-s: TCP connections the UE
// opens from it) over any transport.
func (c *Contact) sourceKeys() []string {
	if c.SA != nil {
		return []string{saSource(c.Flow.Host, int(c.SA.UE.PortC)), saSource(c.Flow.Host, int(c.SA.UE.PortS))}
	}
	return []string{flowSource(c.Flow.Transport, c.Flow.Host, c.Flow.Port)}
}

func saSource(host string, port int) string { return keyOf("sa|", "", host, port) }

func flowSource(transport, host string, port int) string {
	return keyOf("t|", transport, host, port)
}

// keyOf is prefix, then transport in lower case and "|" when there is
// one, then hostPort(host, port): one allocation.
func keyOf(prefix, transport, host string, port int) string {
	h := normHost(host)
	b := make([]byte, 0, len(prefix)+len(transport)+len(h)+8)
	b = append(b, prefix...)
	if transport != "" {
		for i := 0; i < len(transport); i++ {
			c := transport[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
		}
		b = append(b, '|')
	}
	b = append(append(b, h...), '|')
	return string(strconv.AppendInt(b, int64(port), 10))
}

// sourcesOf are the sourceKeys a request from transport/host/port may be
// filed under.
func sourcesOf(transport, host string, port int) [2]string {
	return [2]string{saSource(host, port), flowSource(transport, host, port)}
}

// saKey identifies an SA set by the P-CSCF's SPIs.
func saKey(sa *ipsec.SecAssoc) string {
	return strconv.FormatUint(uint64(sa.PCSCF.SPIC), 10) + "|" + strconv.FormatUint(uint64(sa.PCSCF.SPIS), 10)
}

// hostPort is the byAddr form of a host and port: one allocation.
func hostPort(host string, port int) string { return keyOf("", "", host, port) }

// userOf is what tells the users of contacts apart: the default IMPU of
// the registration (the identity P-Asserted-Identity gets), else the
// Contact URI.
func userOf(c *Contact) string {
	if len(c.IMPUs) > 0 {
		return strings.ToLower(c.IMPUs[0])
	}
	return strings.ToLower(c.AOR)
}

// Counts returns the number of contacts and of distinct IMPUs (compared
// case-insensitively) they hold, expired ones not yet removed included.
func (s *Store) Counts() (contacts, impus int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byKey), s.byIMPU.Len()
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
	return s.put(ctx, c.Key(), c)
}

// PutKeyed is Put for a caller that has built c's key (Key(c.AOR,
// c.Flow)) already and keeps it: the table files c under that string, so
// one copy of the key serves both (a key is about 80 bytes per
// registered contact). A key that is not c's is an error, and nothing is
// stored.
func (s *Store) PutKeyed(ctx context.Context, key string, c *Contact) error {
	if want := c.Key(); key != want {
		return fmt.Errorf("contacts: key %q is not the contact's (%q)", key, want)
	}
	return s.put(ctx, key, c)
}

// put stores c under key, c's key.
func (s *Store) put(ctx context.Context, key string, c *Contact) error {
	defer s.keyLocks.Lock(key)()
	s.mu.Lock()
	s.set(key, c.Clone())
	s.mu.Unlock()
	if s.persist != nil {
		if err := s.persist.Save(ctx, c); err != nil {
			return fmt.Errorf("contacts: persist %s: %w", key, err)
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
	s.indexContact(key, c, index.Remove)
	fn(c)
	s.indexContact(key, c, index.Add)
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
// transport/host/port: one with an SA whose protected port (port-c, or
// port-s for TCP) it is, else one registered over that flow. When users
// share the flow (several registrations with different default IMPUs),
// it returns nil: the flow alone does not tell them apart, BySender does.
// Among the contacts of one user the most recently registered wins.
func (s *Store) BySource(transport, host string, port int) *Contact {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, src := range sourcesOf(transport, host, port) {
		var best *Contact
		ambiguous := false
		s.bySource.Each(src, func(key string) bool {
			c := s.byKey[key]
			if !c.Expires.After(now) {
				return true
			}
			if best != nil && userOf(best) != userOf(c) {
				ambiguous = true
				return false
			}
			if best == nil || c.Registered.After(best.Registered) {
				best = c
			}
			return true
		})
		if ambiguous {
			return nil
		}
		if best != nil {
			return best.Clone()
		}
	}
	return nil
}

// Sender is what a request tells about the UE that sent it: the flow it
// arrived on and the addresses it gives for its sender (RFC 3261 §8.1.1.7
// Via sent-by, §8.1.1.8 Contact), and the identities it prefers.
type Sender struct {
	Flow Flow
	// ViaHost and ViaPort are the sent-by of the top Via (port 0: 5060).
	ViaHost string
	ViaPort int
	// Contact is the request's Contact URI, "" when it has none.
	Contact string
	// Preferred are the P-Preferred-Identity URIs (RFC 3325).
	Preferred []string
}

// Errors of BySender.
var (
	// ErrAmbiguous: registrations of different users match the request's
	// flow and addresses; asserting one of them could give the request
	// another user's identity.
	ErrAmbiguous = errors.New("registrations of different users match the request's flow, Via and Contact")
	// ErrNoMatch: UEs are registered over the request's flow, but none
	// with the address its Via or Contact gives.
	ErrNoMatch = errors.New("no registration over the request's flow has the address of its Via or Contact")
)

// BySender finds the registration of the UE that sent a request: among
// the unexpired contacts registered over its flow (or holding an SA
// whose protected port it came from), the one the request names by its
// Contact URI, else those whose Contact host and port are the request's
// Contact or Via sent-by, else whose Contact host is theirs (TS 24.229
// §5.2.6.3.1: the P-CSCF checks a request comes from a registered UE;
// RFC 5626 §5.2 matches the flow and the UE's registration together).
// When those belong to different users, the P-Preferred-Identity may
// choose one; otherwise the result is ErrAmbiguous, never a guess. It
// returns (nil, nil) when nothing is registered over the flow, and
// ErrNoMatch when the Via and Contact name none of the UEs that are. Each
// step is an index look-up: the cost does not grow with the number of
// UEs sharing the flow.
func (s *Store) BySender(snd Sender) (*Contact, error) {
	now := s.now()
	srcs := sourcesOf(snd.Flow.Transport, snd.Flow.Host, snd.Flow.Port)
	viaPort := snd.ViaPort
	if viaPort == 0 {
		viaPort = 5060
	}
	var cu, ch string
	var cp int
	if snd.Contact != "" {
		_, ch, cp = splitURI(snd.Contact)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.bySource.Has(srcs[0]) && !s.bySource.Has(srcs[1]) {
		return nil, nil
	}
	var cands []*Contact
	seen := map[string]bool{}
	add := func(key string) bool {
		c := s.byKey[key]
		if !seen[key] && c.Expires.After(now) {
			seen[key] = true
			cands = append(cands, c)
		}
		return true
	}
	if snd.Contact != "" {
		cu = strings.ToLower(snd.Contact)
		s.byAOR.Each(cu, func(key string) bool {
			if c := s.byKey[key]; slices.ContainsFunc(c.sourceKeys(), func(k string) bool { return k == srcs[0] || k == srcs[1] }) {
				add(key)
			}
			return true
		})
	}
	lookup := func(ix index, values ...string) {
		for _, v := range values {
			for _, src := range srcs {
				ix.Each(src+"|"+v, add)
			}
		}
	}
	if len(cands) == 0 {
		var hps []string
		if ch != "" {
			hps = append(hps, hostPort(ch, cp))
		}
		if snd.ViaHost != "" {
			hps = append(hps, hostPort(snd.ViaHost, viaPort))
		}
		lookup(s.bySourceUE, hps...)
	}
	if len(cands) == 0 {
		var hosts []string
		if ch != "" {
			hosts = append(hosts, normHost(ch))
		}
		if snd.ViaHost != "" {
			hosts = append(hosts, normHost(snd.ViaHost))
		}
		lookup(s.bySourceHost, hosts...)
	}
	if len(cands) == 0 {
		return nil, ErrNoMatch
	}
	if !oneUser(cands) && len(snd.Preferred) > 0 {
		var pref []*Contact
		for _, c := range cands {
			if slices.ContainsFunc(snd.Preferred, func(p string) bool { return containsFold(c.IMPUs, p) }) {
				pref = append(pref, c)
			}
		}
		if len(pref) > 0 {
			cands = pref
		}
	}
	if !oneUser(cands) {
		return nil, ErrAmbiguous
	}
	return latest(cands).Clone(), nil
}

// oneUser reports whether the contacts belong to one user (userOf).
func oneUser(cs []*Contact) bool {
	for _, c := range cs[1:] {
		if userOf(c) != userOf(cs[0]) {
			return false
		}
	}
	return true
}

// latest is the most recently registered of cs (not empty).
func latest(cs []*Contact) *Contact {
	best := cs[0]
	for _, c := range cs[1:] {
		if c.Registered.After(best.Registered) {
			best = c
		}
	}
	return best
}

func containsFold(list []string, v string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, v) })
}

// ByURI finds an unexpired contact addressed by a Request-URI: first the
// one whose Contact URI it is; else one whose Contact URI has its user,
// host and port; else one whose flow (or the UE's protected server port)
// is its host and port, unless users share that flow (nil then: a
// request is not delivered to a guess). The most recently registered
// match wins.
func (s *Store) ByURI(user, host string, port int, full string) *Contact {
	now := s.now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var cands []*Contact
	s.byAOR.Each(strings.ToLower(full), func(key string) bool {
		if c := s.byKey[key]; c.Expires.After(now) {
			cands = append(cands, c)
		}
		return true
	})
	if len(cands) == 0 {
		s.byContactAddr.Each(hostPort(host, port), func(key string) bool {
			c := s.byKey[key]
			if u, h, p := splitURI(c.AOR); c.Expires.After(now) && strings.EqualFold(u, user) && sameIP(h, host) && p == port {
				cands = append(cands, c)
			}
			return true
		})
	}
	if len(cands) == 0 {
		ambiguous := false
		s.byFlowAddr.Each(hostPort(host, port), func(key string) bool {
			c := s.byKey[key]
			if !c.Expires.After(now) || !sameIP(c.Flow.Host, host) || (c.Flow.Port != port && (c.SA == nil || int(c.SA.UE.PortS) != port)) {
				return true
			}
			if len(cands) > 0 && userOf(cands[0]) != userOf(c) {
				ambiguous = true
				return false
			}
			cands = append(cands, c)
			return true
		})
		if ambiguous {
			return nil
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return latest(cands).Clone()
}

// BySession lists the contacts (expired ones included) holding the Rx
// session sid: a call's (RxSessions) or the signalling one (RxSignalling).
func (s *Store) BySession(sid string) []*Contact {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Contact
	s.bySession.Each(sid, func(key string) bool {
		out = append(out, s.byKey[key].Clone())
		return true
	})
	return out
}

// UsesSA reports whether a stored contact (expired ones included) holds
// an SA set with the P-CSCF SPIs of sa.
func (s *Store) UsesSA(sa ipsec.SecAssoc) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.bySA.Has(saKey(&sa))
}

// ByIMPU lists unexpired contacts registered with impu (compared
// case-insensitively).
func (s *Store) ByIMPU(impu string) []*Contact {
	now := s.now()
	var out []*Contact
	s.mu.RLock()
	defer s.mu.RUnlock()
	s.byIMPU.Each(strings.ToLower(impu), func(key string) bool {
		if c := s.byKey[key]; c.Expires.After(now) {
			out = append(out, c.Clone())
		}
		return true
	})
	return out
}

// ByAOR lists the contacts (expired ones included) whose Contact URI is
// aor exactly.
func (s *Store) ByAOR(aor string) []*Contact {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*Contact
	s.byAOR.Each(strings.ToLower(aor), func(key string) bool {
		if c := s.byKey[key]; c.AOR == aor {
			out = append(out, c.Clone())
		}
		return true
	})
	return out
}

// All returns copies of every contact ordered by key. It copies the whole
// table: per-request code uses the indexed look-ups.
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
// store's read lock and must not call the store. It scans every contact:
// not for per-request or per-session use (BySession, BySender are
// indexed).
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
// the contact or call the store. It scans every contact (UsesSA is
// indexed).
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
		if a.Is4() {
			// ParseAddr takes only the dotted-decimal form (no leading
			// zeros): h is already what String would allocate.
			return h
		}
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
