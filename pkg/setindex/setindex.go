// Package setindex is a secondary index for in-memory tables: a map from
// a value (an IMPU, an address, a flow) to the set of entries holding it.
// Nearly every value is held by one entry (a UE's own address, its
// Contact URI, the one subscriber of an IMPU's reg event), so a set of
// one is kept inline, without a map of its own: with a hundred thousand
// registrations and several indexes, a map per value would cost more
// memory than the entries themselves (docs/performance.md, "Memory per
// registration"). Not safe for concurrent use: the table that owns an
// Index guards it.
package setindex

// Index maps a value of type K to the entries (of type V) holding it.
// The zero value is not usable; make one with make(Index[K, V]).
type Index[K, V comparable] map[K]Set[V]

// Set is the entries under one value: one inline, or two and more in
// many.
type Set[V comparable] struct {
	one  V
	many map[V]struct{}
}

// Add files v under k (a no-op when it is there).
func (ix Index[K, V]) Add(k K, v V) {
	s, ok := ix[k]
	switch {
	case !ok:
		ix[k] = Set[V]{one: v}
	case s.many != nil:
		s.many[v] = struct{}{}
	case s.one != v:
		ix[k] = Set[V]{many: map[V]struct{}{s.one: {}, v: {}}}
	}
}

// Remove takes v from under k (a no-op when it is not there); k goes
// when nothing is left under it.
func (ix Index[K, V]) Remove(k K, v V) {
	s, ok := ix[k]
	switch {
	case !ok:
	case s.many != nil:
		delete(s.many, v)
		if len(s.many) == 1 {
			for w := range s.many {
				ix[k] = Set[V]{one: w}
			}
		}
	case s.one == v:
		delete(ix, k)
	}
}

// Each calls fn for every entry under k, in no particular order, until
// fn returns false.
func (ix Index[K, V]) Each(k K, fn func(v V) bool) {
	s, ok := ix[k]
	switch {
	case !ok:
	case s.many != nil:
		for v := range s.many {
			if !fn(v) {
				return
			}
		}
	default:
		fn(s.one)
	}
}

// Has reports whether any entry is filed under k.
func (ix Index[K, V]) Has(k K) bool {
	_, ok := ix[k]
	return ok
}
