package store

// User data cache for the SAR hot path (TS 29.228 §6.1.2.1: User-Data,
// Charging-Information and Associated-Identities of the implicit
// registration set).
//
// The assembled Subscription of a SAR REGISTRATION/RE_REGISTRATION is kept
// per (IMPI, requested IMPU) so that a re-registration does not rebuild
// the profile (the json_agg statement, the most expensive one of the Cx
// hot path) every time. Freshness rests on LISTEN/NOTIFY: migration 002
// makes every committed change to the tables the user data is read from
// (impu and impi in their user-data columns, imsu, service_profile,
// service_profile_ifc, service_profile_shared_ifc_set, ifc, spt,
// application_server, charging_function) send NOTIFY UserDataChannel.
// The HSS keeps a LISTEN connection (hss.Server) and calls
// InvalidateUserData for each notification; it turns the cache on with
// SetUserDataCacheLive(true) only once that connection listens, and off
// when it is lost.
//
// Rules (each one checked by tests):
//   - A notification empties the cache and moves its generation on; an
//     entry is stored only when the generation read before its query was
//     sent is still current when the answer arrives, and the cache was
//     live all along. NOTIFY is delivered after the commit, so a query
//     sent after a notification was handled sees that change, and a query
//     answered before it is handled is dropped by it.
//   - While the LISTEN connection is down (or before it is up, or when
//     the database lacks migration 002's triggers) nothing is served from
//     or stored in the cache.
//   - Window: a change is visible to SARs once the HSS has handled its
//     notification; between the commit and that moment (normally well
//     below a millisecond on one host, longer when the listening goroutine
//     or the network is slow) a SAR may still get the older profile. An
//     entry older than UserDataMaxAge is never served, which also bounds
//     the window when the LISTEN connection breaks without the HSS
//     noticing.

import (
	"container/list"
	"sync"
	"time"
)

// UserDataChannel is the PostgreSQL NOTIFY channel of user data changes
// (migrations/002_userdata_notify.sql).
const UserDataChannel = "hss_userdata"

// Limits of the user data cache.
const (
	// DefaultUserDataCacheEntries is the size of the cache when
	// EnableUserDataCache gets max < 1.
	DefaultUserDataCacheEntries = 100_000
	// UserDataMaxAge is the age beyond which an entry is read again.
	UserDataMaxAge = 30 * time.Second
)

// udCache is a bounded LRU of assembled user data, keyed by IMPI and IMPU.
type udCache struct {
	mu   sync.Mutex
	max  int
	live bool   // the LISTEN connection is up: entries may be used
	gen  uint64 // moved on by every invalidation and liveness change
	lru  *list.List
	m    map[udKey]*list.Element
	now  func() time.Time

	// The S-CSCF list of UAA Server-Capabilities (SCSCFCapabilities),
	// valid while capsGen is the current generation: migration 003 makes
	// changes to the scscf table notify UserDataChannel too.
	caps    []SCSCF
	capsGen uint64
	capsAt  time.Time
	capsOK  bool
}

type udKey struct{ impi, impu string }

type udEntry struct {
	key        udKey
	at         time.Time
	irs        int64
	sub        *Subscription
	associated []string
}

// EnableUserDataCache keeps the user data of at most max (< 1:
// DefaultUserDataCacheEntries) IMPI/IMPU pairs for the SAR hot path
// (PairAssignSubscription). The cache stays off until
// SetUserDataCacheLive(true). Call it before the Store is used.
func (s *Store) EnableUserDataCache(max int) {
	if max < 1 {
		max = DefaultUserDataCacheEntries
	}
	s.ud = &udCache{max: max, lru: list.New(), m: map[udKey]*list.Element{}, now: time.Now}
}

// SetUserDataCacheLive turns the user data cache on (the caller LISTENs on
// UserDataChannel and the triggers exist) or off (the LISTEN connection
// was lost); either way it is emptied. No-op without EnableUserDataCache.
func (s *Store) SetUserDataCacheLive(live bool) {
	if s.ud == nil {
		return
	}
	c := s.ud
	c.mu.Lock()
	c.live = live
	c.gen++
	c.lru.Init()
	clear(c.m)
	c.mu.Unlock()
}

// InvalidateUserData empties the user data cache: call it for every
// notification on UserDataChannel. No-op without EnableUserDataCache.
func (s *Store) InvalidateUserData() {
	if s.ud == nil {
		return
	}
	c := s.ud
	c.mu.Lock()
	c.gen++
	c.lru.Init()
	clear(c.m)
	c.mu.Unlock()
}

// lookup returns the entry of k when the cache is live and the entry young
// enough, and the generation to pass to store for a query sent now
// (ok false: do not store).
func (c *udCache) lookup(k udKey) (e *udEntry, gen uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live {
		return nil, 0, false
	}
	if el, found := c.m[k]; found {
		e = el.Value.(*udEntry)
		if c.now().Sub(e.at) < UserDataMaxAge {
			c.lru.MoveToFront(el)
			return e, c.gen, true
		}
		c.lru.Remove(el)
		delete(c.m, k)
	}
	return nil, c.gen, true
}

// store records what a query sent at generation gen (and time at) read,
// unless an invalidation or a liveness change happened since.
func (c *udCache) store(gen uint64, at time.Time, e *udEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.gen != gen {
		return
	}
	e.at = at
	if el, found := c.m[e.key]; found {
		el.Value = e
		c.lru.MoveToFront(el)
		return
	}
	c.m[e.key] = c.lru.PushFront(e)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.m, old.Value.(*udEntry).key)
	}
}

// lookupCaps returns the cached S-CSCF list (ok) when the cache is live,
// no invalidation happened since it was read and it is young enough;
// gen is the generation to pass to storeCaps for a query sent now (live
// false: do not store).
func (c *udCache) lookupCaps() (caps []SCSCF, ok bool, gen uint64, live bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live {
		return nil, false, 0, false
	}
	if c.capsOK && c.capsGen == c.gen && c.now().Sub(c.capsAt) < UserDataMaxAge {
		return c.caps, true, c.gen, true
	}
	return nil, false, c.gen, true
}

// storeCaps records the S-CSCF list a query sent at generation gen (and
// time at) read, unless an invalidation or a liveness change happened
// since.
func (c *udCache) storeCaps(gen uint64, at time.Time, caps []SCSCF) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.live || c.gen != gen {
		return
	}
	c.caps, c.capsGen, c.capsAt, c.capsOK = caps, gen, at, true
}

// len is the number of entries (tests).
func (c *udCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
