package store

import "time"

// SQNCached returns how many unused SQNs the block cache holds for impi
// (0 when none), without creating an entry.
func (s *Store) SQNCached(impi string) int {
	if s.sqn == nil {
		return 0
	}
	s.sqn.mu.Lock()
	el, ok := s.sqn.m[impi]
	s.sqn.mu.Unlock()
	if !ok {
		return 0
	}
	return el.Value.(*sqnEntry).available()
}

// SQNCacheLen returns the number of IMPIs in the block cache.
func (s *Store) SQNCacheLen() int {
	if s.sqn == nil {
		return 0
	}
	return s.sqn.len()
}

// UserDataCacheLen returns the number of entries of the user data cache.
func (s *Store) UserDataCacheLen() int {
	if s.ud == nil {
		return 0
	}
	return s.ud.len()
}

// UserDataGen returns the cache's generation (as a query sent now would
// record it) and whether it is live.
func (s *Store) UserDataGen() (uint64, bool) {
	_, gen, ok := s.ud.lookup(udKey{})
	return gen, ok
}

// StoreUserData stores sub for impi/impu/irs as a query sent at gen would.
func (s *Store) StoreUserData(gen uint64, impi, impu string, irs int64, sub *Subscription) {
	s.ud.store(gen, time.Now(), &udEntry{key: udKey{impi, impu}, irs: irs, sub: sub})
}

// AgeUserData moves the cache's clock forward by d.
func (s *Store) AgeUserData(d time.Duration) {
	s.ud.mu.Lock()
	defer s.ud.mu.Unlock()
	now := s.ud.now
	s.ud.now = func() time.Time { return now().Add(d) }
}
