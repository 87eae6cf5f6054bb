// Package authguard throttles failed authentication per key: an IMPI at
// the S-CSCF and the I-CSCF, a UE's source address at the P-CSCF. Each key
// has a token bucket (golang.org/x/time/rate) of Burst failures that
// refills one failure every Every; a key whose bucket is empty is locked
// out until a token is back, and its requests are refused with
// Retry-After instead of being challenged or checked. A success forgets
// the key, so a UE that mistyped once, resynchronised its SQN or needed a
// new vector carries nothing forward. Memory is bounded by MaxKeys.
package authguard

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Config configures a Guard. Burst 0 disables throttling (every Check
// passes).
type Config struct {
	// Burst is the number of failures a key may have in a row before it
	// is locked out (the bucket size).
	Burst int
	// Every is how long it takes to forgive one failure (the refill
	// interval); a locked key may try again after Every.
	Every time.Duration
	// MaxKeys bounds the keys tracked; default 100,000. When it is
	// reached, keys whose bucket has refilled are dropped; when none has,
	// new keys are not tracked until some have (fail open, and
	// OnFull reports it).
	MaxKeys int
	// OnLockout, when set, is called (outside the Guard's lock) when a
	// failure locks key out, with how long it stays locked.
	OnLockout func(key string, for_ time.Duration)
	// OnFull, when set, is called when a key cannot be tracked.
	OnFull func(key string)
}

// Guard holds the buckets. Its methods are safe for concurrent use.
type Guard struct {
	cfg   Config
	mu    sync.Mutex
	keys  map[string]*rate.Limiter
	swept time.Time
	now   func() time.Time
}

// New returns a Guard for cfg.
func New(cfg Config) *Guard {
	if cfg.MaxKeys <= 0 {
		cfg.MaxKeys = 100_000
	}
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	return &Guard{cfg: cfg, keys: map[string]*rate.Limiter{}, now: time.Now}
}

// Enabled reports whether the Guard throttles at all.
func (g *Guard) Enabled() bool { return g != nil && g.cfg.Burst > 0 }

// Check reports whether key may authenticate now; when it may not, wait
// is how long until it may (round it up for Retry-After).
func (g *Guard) Check(key string) (wait time.Duration, ok bool) {
	if !g.Enabled() {
		return 0, true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	lim := g.keys[key]
	if lim == nil {
		return 0, true
	}
	return g.waitLocked(lim)
}

func (g *Guard) waitLocked(lim *rate.Limiter) (time.Duration, bool) {
	tokens := lim.TokensAt(g.now())
	if tokens >= 1 {
		return 0, true
	}
	return time.Duration(math.Ceil((1 - tokens) * float64(g.cfg.Every))), false
}

// Failed records a failed authentication of key. It reports whether key
// is now locked out (and for how long).
func (g *Guard) Failed(key string) (lockedFor time.Duration, locked bool) {
	if !g.Enabled() {
		return 0, false
	}
	now := g.now()
	g.mu.Lock()
	lim := g.keys[key]
	if lim == nil {
		if len(g.keys) >= g.cfg.MaxKeys {
			g.sweepLocked(now)
		}
		if len(g.keys) >= g.cfg.MaxKeys {
			g.mu.Unlock()
			if g.cfg.OnFull != nil {
				g.cfg.OnFull(key)
			}
			return 0, false
		}
		lim = rate.NewLimiter(rate.Every(g.cfg.Every), g.cfg.Burst)
		g.keys[key] = lim
	}
	wasOpen := lim.TokensAt(now) >= 1
	lim.AllowN(now, 1)
	wait, ok := g.waitLocked(lim)
	g.mu.Unlock()
	if ok {
		return 0, false
	}
	if wasOpen && g.cfg.OnLockout != nil {
		g.cfg.OnLockout(key, wait)
	}
	return wait, true
}

// Succeeded forgets key: a successful authentication clears its failures.
func (g *Guard) Succeeded(key string) {
	if !g.Enabled() {
		return
	}
	g.mu.Lock()
	delete(g.keys, key)
	g.mu.Unlock()
}

// Locked returns the number of keys locked out now.
func (g *Guard) Locked() int {
	if !g.Enabled() {
		return 0
	}
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, lim := range g.keys {
		if lim.TokensAt(now) < 1 {
			n++
		}
	}
	return n
}

// Sweep drops the keys whose bucket has refilled (nothing left to
// remember); call it from a timer. It runs at most once a second.
func (g *Guard) Sweep() {
	if !g.Enabled() {
		return
	}
	g.mu.Lock()
	g.sweepLocked(g.now())
	g.mu.Unlock()
}

func (g *Guard) sweepLocked(now time.Time) {
	if now.Sub(g.swept) < time.Second {
		return
	}
	g.swept = now
	for k, lim := range g.keys {
		if lim.TokensAt(now) >= float64(g.cfg.Burst) {
			delete(g.keys, k)
		}
	}
}

// RetryAfter is d in whole seconds, at least 1, for a Retry-After header
// (RFC 3261 §20.33).
func RetryAfter(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}
