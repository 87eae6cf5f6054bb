package store

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
