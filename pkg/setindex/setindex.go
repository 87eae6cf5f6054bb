// Package setindex is a secondary index for in-memory tables: a map from
// a value (an IMPU, an address, a flow) to the set of entries holding it.
// Nearly every value is held by one entry (a UE's own address, its
// Contact URI, the one subscriber of an IMPU's reg event), so a value
// held by one entry is a plain map slot, key and entry only; the rare
// values held by two and more have their sets in a second map. With a
// hundred thousand registrations and several indexes the slots are a
// large part of a CSCF's memory per registration (docs/performance.md,
// "Memory per registration"; a slot with a set inline cost 63 bytes per
// value, 53 without). Not safe for concurrent use: the table that owns
// an Index guards it.
package setindex

// Index maps a value of type K to the entries (of type V) holding it.
// The zero value is not usable; make one with New.
type Index[K, V comparable] struct {
	one  map[K]V              // values held by exactly one entry
	many map[K]map[V]struct{} // values held by two entries and more
}

// New returns an empty Index.
func New[K, V comparable]() Index[K, V] {
	return Index[K, V]{one: map[K]V{}, many: map[K]map[V]struct{}{}}
}

// Add files v under k (a no-op when it is there).
func (ix Index[K, V]) Add(k K, v V) {
	if len(ix.many) > 0 {
		if s, ok := ix.many[k]; ok {
			s[v] = struct{}{}
			return
		}
	}
	w, ok := ix.one[k]
	switch {
	case !ok:
		ix.one[k] = v
	case w != v:
		delete(ix.one, k)
		ix.many[k] = map[V]struct{}{w: {}, v: {}}
	}
}

// Remove takes v from under k (a no-op when it is not there); k goes
// when nothing is left under it.
func (ix Index[K, V]) Remove(k K, v V) {
	if len(ix.many) > 0 {
		if s, ok := ix.many[k]; ok {
			delete(s, v)
			if len(s) == 1 {
				for w := range s {
					ix.one[k] = w
				}
				delete(ix.many, k)
			}
			return
		}
	}
	if w, ok := ix.one[k]; ok && w == v {
		delete(ix.one, k)
	}
}

// Each calls fn for every entry under k, in no particular order, until
// fn returns false.
func (ix Index[K, V]) Each(k K, fn func(v V) bool) {
	if len(ix.many) > 0 {
		if s, ok := ix.many[k]; ok {
			for v := range s {
				if !fn(v) {
					return
				}
			}
			return
		}
	}
	if v, ok := ix.one[k]; ok {
		fn(v)
	}
}

// Has reports whether any entry is filed under k.
func (ix Index[K, V]) Has(k K) bool {
	if _, ok := ix.one[k]; ok || len(ix.many) == 0 {
		return ok
	}
	_, ok := ix.many[k]
	return ok
}

// Len returns the number of values with entries filed under them.
func (ix Index[K, V]) Len() int { return len(ix.one) + len(ix.many) }
