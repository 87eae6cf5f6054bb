// Package admission bounds the transactions a SIP function has in
// progress, so that under overload new work is refused at once (503 with
// Retry-After, RFC 3261 §21.5.4) instead of queueing until every
// transaction is late: the I-CSCF's REGISTERs (docs/icscf.md,
// "Overload") and the P-CSCF's initial requests (docs/pcscf.md). The
// limit is fixed, or follows the latency of the admitted transactions
// (docs/adr/0003-admission-from-latency.md).
package admission

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Modes of a Limiter.
const (
	// Adaptive: the limit starts at the configured value and follows the
	// latency of the admitted transactions, between 32 and 20,000.
	Adaptive = "adaptive"
	// Fixed: the limit is the configured value.
	Fixed = "fixed"
)

// CheckMode reports an unknown mode.
func CheckMode(mode string) error {
	if mode != Adaptive && mode != Fixed {
		return fmt.Errorf("admission %q: want %s or %s", mode, Adaptive, Fixed)
	}
	return nil
}

// Limiter counts the transactions in progress and admits a new one while
// fewer than its limit (times the caller's factor) are. Safe for
// concurrent use; the zero value admits everything.
type Limiter struct {
	limit    atomic.Int64 // <= 0: none
	pending  atomic.Int64
	adaptive *adaptiveLimit
}

// New returns a limiter: none when initial <= 0, else fixed at initial
// or adaptive starting there (mode Adaptive or Fixed).
func New(initial int, mode string) *Limiter {
	l := &Limiter{}
	if initial <= 0 {
		return l
	}
	l.limit.Store(int64(initial))
	if mode == Adaptive {
		l.adaptive = newAdaptiveLimit(initial)
		l.limit.Store(l.adaptive.current())
	}
	return l
}

// Admit takes a slot when fewer than factor × the limit are in progress
// (a factor of 2 lets work that is already half done, such as a challenge
// answer, in beyond the limit of new work). It returns the release func,
// to call once the transaction has its final response, and the number in
// progress; ok false (nothing taken) when the request must be refused.
func (l *Limiter) Admit(factor int64) (release func(), pending int64, ok bool) {
	n := l.pending.Add(1)
	if limit := l.limit.Load(); limit > 0 && n-1 >= factor*limit {
		l.pending.Add(-1)
		return nil, n - 1, false
	}
	if l.adaptive == nil {
		return func() { l.pending.Add(-1) }, n, true
	}
	start := time.Now()
	return func() {
		l.pending.Add(-1)
		now := time.Now()
		if limit, changed := l.adaptive.observe(now, now.Sub(start), n); changed {
			l.limit.Store(limit)
		}
	}, n, true
}

// Limit is the limit in force (0: none).
func (l *Limiter) Limit() int64 { return max(l.limit.Load(), 0) }

// Pending is the number of transactions in progress.
func (l *Limiter) Pending() int64 { return l.pending.Load() }
