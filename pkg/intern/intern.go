// Package intern shares one copy of the text that many registrations
// hold alike: the P-CSCF's Path entry and Contact in every binding and
// reg-event subscription of the S-CSCF, the S-CSCF's Service-Route in
// every contact of the P-CSCF, a phone model's User-Agent. With a
// hundred thousand registrations each such field costs a few megabytes
// when every registration keeps its own copy (docs/performance.md,
// "Memory per registration").
//
// A Pool keeps at most a fixed number of distinct values and never
// forgets one, so it is meant for fields with few distinct values, and
// for values from requests that were authenticated; a value that does
// not fit (the pool is full, or the value is long) is returned as given.
// String and Strings use the process's one pool (8,192 values of up to
// 512 bytes: at most 4 MiB of text).
package intern

import (
	"strings"
	"sync"
	"sync/atomic"
)

// Pool is a bounded set of canonical strings, safe for concurrent use.
// The zero value is not usable; make one with New.
type Pool struct {
	m      sync.Map // string -> string (the canonical copy)
	n      atomic.Int64
	max    int64
	maxLen int
}

// New returns a Pool that keeps up to max distinct values of up to
// maxLen bytes each (so at most max×maxLen bytes of text).
func New(max, maxLen int) *Pool {
	return &Pool{max: int64(max), maxLen: maxLen}
}

// String returns the pool's copy of s, adding a copy of s (detached
// from whatever larger string s is a slice of) when it is new and fits.
// Otherwise s itself is returned.
func (p *Pool) String(s string) string {
	if s == "" || len(s) > p.maxLen {
		return s
	}
	if v, ok := p.m.Load(s); ok {
		return v.(string)
	}
	if p.n.Load() >= p.max {
		return s
	}
	if p.n.Add(1) > p.max { // a slot is taken before the value is stored
		p.n.Add(-1)
		return s
	}
	c := strings.Clone(s)
	v, loaded := p.m.LoadOrStore(c, c)
	if loaded {
		p.n.Add(-1)
	}
	return v.(string)
}

// Strings replaces each element of ss by its pooled copy, in place, and
// returns ss.
func (p *Pool) Strings(ss []string) []string {
	for i, s := range ss {
		ss[i] = p.String(s)
	}
	return ss
}

// Len returns the number of distinct values kept.
func (p *Pool) Len() int { return int(p.n.Load()) }

var shared = New(8192, 512)

// String is Pool.String on the process's pool.
func String(s string) string { return shared.String(s) }

// Strings is Pool.Strings on the process's pool.
func Strings(ss []string) []string { return shared.Strings(ss) }
