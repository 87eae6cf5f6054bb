package contacts

// index maps a normalised value (an IMPU, a host and port, a flow...) to
// the keys of the contacts holding it. Most values are held by one
// contact (a UE's own address, its Contact URI), so a set of one key is
// kept inline, without a map of its own: with a hundred thousand
// contacts and several indexes, a map per value would cost more memory
// than the contacts themselves.
type index map[string]keySet

// keySet is the set of keys under one index value: one key inline, or
// two and more in many.
type keySet struct {
	one  string
	many map[string]struct{}
}

func (ix index) add(v, key string) {
	ks, ok := ix[v]
	switch {
	case !ok:
		ix[v] = keySet{one: key}
	case ks.many != nil:
		ks.many[key] = struct{}{}
	case ks.one != key:
		ix[v] = keySet{many: map[string]struct{}{ks.one: {}, key: {}}}
	}
}

func (ix index) remove(v, key string) {
	ks, ok := ix[v]
	switch {
	case !ok:
	case ks.many != nil:
		delete(ks.many, key)
		if len(ks.many) == 1 {
			for k := range ks.many {
				ix[v] = keySet{one: k}
			}
		}
	case ks.one == key:
		delete(ix, v)
	}
}

// each calls fn for every key under v until fn returns false.
func (ix index) each(v string, fn func(key string) bool) {
	ks, ok := ix[v]
	switch {
	case !ok:
	case ks.many != nil:
		for k := range ks.many {
			if !fn(k) {
				return
			}
		}
	default:
		fn(ks.one)
	}
}

// has reports whether any key is listed under v.
func (ix index) has(v string) bool {
	_, ok := ix[v]
	return ok
}
