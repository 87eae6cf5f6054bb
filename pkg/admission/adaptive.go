package admission

import (
	"math"
	"sync"
	"time"
)

// The adaptive limit (docs/adr/0003-admission-from-latency.md): the
// limit on transactions in progress follows their latency, after the
// gradient limiter of Netflix's concurrency-limits (Gradient2): while a
// window's mean latency stays within adaptiveTolerance of the long-run
// latency (nothing is queueing) the limit grows by a tenth per window;
// when the latency rises above it (work queues up somewhere: the next
// hops, the HSS, PostgreSQL, the CPU) and above adaptiveFloor (queueing
// the UEs would notice) the limit shrinks in proportion. A
// fixed limit is either too low for a fast chain (503s while it still
// has CPU to spare) or too high for a slow one.
const (
	// adaptiveMin and adaptiveMax bound the limit.
	adaptiveMin = 32
	adaptiveMax = 20000
	// adaptiveWindow is the shortest sampling window; a window also needs
	// adaptiveMinSamples completed REGISTERs.
	adaptiveWindow     = 100 * time.Millisecond
	adaptiveMinSamples = 10
	// adaptiveTolerance is how much slower than the long-run latency a
	// window may be before the limit shrinks.
	adaptiveTolerance = 1.5
	// adaptiveLongWindows is the span, in windows, of the long-run
	// latency's exponential average.
	adaptiveLongWindows = 100
	// adaptiveSmoothing is the weight of each new, lower estimate.
	adaptiveSmoothing = 0.2
	// adaptiveFloor (ms) is the window latency under which the limit
	// never shrinks: 0.3 × RFC 3261's T1 (500 ms), the time after which
	// a UE sends its REGISTER or INVITE again over UDP. A window whose
	// mean stays under it keeps nearly all of its transactions inside
	// T1: a busy chain keeping up, not an overloaded one, and refusing
	// work there costs the UEs a Retry-After for nothing. Measured
	// (docs/performance.md, twentieth session): with the limit shrinking
	// on any rise past 1.5 × the long run (4 → 50-150 ms), 900
	// shared-socket registrations/s were shed by 1.4-7 % although the
	// same chain with admission off completed 17,999 of 18,000 (p99
	// 480 ms); with floors of 100 / 150 / 250 ms: 411 / 0 / 0 refused at
	// 900/s, and at 1,200/s (over capacity) 20,601 / 23,375 / 18,812 of
	// 24,000 completed (the 250-ms floor let the queues grow until the
	// sockets shed, behind the P-CSCF too).
	adaptiveFloor = 150.0
)

// adaptiveLimit estimates the admission limit from the latency of
// completed transactions. Safe for concurrent use.
type adaptiveLimit struct {
	mu      sync.Mutex
	limit   float64
	initial float64 // the configured limit, where a shrunk limit returns
	long    float64 // ms: exponential average of the windows' mean latencies
	// the current window
	start       time.Time
	sum         float64 // ms
	n           int
	maxInflight int64
}

func newAdaptiveLimit(initial int) *adaptiveLimit {
	l := math.Max(adaptiveMin, math.Min(adaptiveMax, float64(initial)))
	return &adaptiveLimit{limit: l, initial: l}
}

// current is the limit now.
func (a *adaptiveLimit) current() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return int64(a.limit)
}

// observe records a transaction that took rtt and found inflight
// transactions in progress (itself included) when it was admitted; at
// the end of a window it updates the limit and returns it with true.
func (a *adaptiveLimit) observe(now time.Time, rtt time.Duration, inflight int64) (int64, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.start.IsZero() {
		a.start = now
	}
	a.sum += float64(rtt) / float64(time.Millisecond)
	a.n++
	a.maxInflight = max(a.maxInflight, inflight)
	if now.Sub(a.start) < adaptiveWindow || a.n < adaptiveMinSamples {
		return 0, false
	}
	short := a.sum / float64(a.n)
	busy := float64(a.maxInflight) >= a.limit/2
	a.start, a.sum, a.n, a.maxInflight = now, 0, 0, 0
	if short <= 0 {
		return int64(a.limit), false
	}
	switch {
	case a.long == 0:
		a.long = short
	default:
		a.long += (short - a.long) * 2 / (adaptiveLongWindows + 1)
		// Latency fell far below the long-run average (a burst is over):
		// forget the slow past faster.
		if a.long > 2*short {
			a.long = (a.long + short) / 2
		}
	}
	gradient := math.Max(0.5, math.Min(1, adaptiveTolerance*a.long/short))
	if short <= adaptiveFloor {
		gradient = 1
	}
	if !busy {
		// The limit was not the constraint: nothing says it is too high,
		// nor that the chain could take more than the configured limit.
		// But a limit that a burst pushed below the configured one comes
		// back up while the latency is normal again: the load rarely
		// fills half of a lowered limit, so waiting for busy windows kept
		// it low for good, and the next short burst (a collection, a
		// PostgreSQL checkpoint) was refused with the chain idle.
		if gradient >= 1 && a.limit < a.initial {
			a.limit = math.Min(a.initial, a.limit+math.Max(math.Sqrt(a.limit), a.limit/10))
			return int64(a.limit), true
		}
		return int64(a.limit), false
	}
	if gradient >= 1 {
		// Not queueing and the limit is in use: grow by a tenth (at least
		// √limit) a window, from 128 to about 1,000 in two seconds.
		a.limit += math.Max(math.Sqrt(a.limit), a.limit/10)
	} else {
		next := a.limit*gradient + math.Sqrt(a.limit)
		a.limit = a.limit*(1-adaptiveSmoothing) + next*adaptiveSmoothing
	}
	a.limit = math.Max(adaptiveMin, math.Min(adaptiveMax, a.limit))
	return int64(a.limit), true
}
