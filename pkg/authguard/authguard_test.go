package authguard

import (
	"testing"
	"time"
)

func TestGuard(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	var locked []string
	g := New(Config{Burst: 3, Every: 10 * time.Second, MaxKeys: 2,
		OnLockout: func(k string, d time.Duration) { locked = append(locked, k) }})
	g.now = func() time.Time { return now }
	for i := 0; i < 2; i++ {
		if _, l := g.Failed("a"); l {
			t.Fatalf("locked after %d failures", i+1)
		}
	}
	if _, ok := g.Check("a"); !ok {
		t.Fatal("refused before the burst is used")
	}
	d, l := g.Failed("a")
	if !l || d != 10*time.Second {
		t.Fatalf("third failure: locked %v for %v, want 10s", l, d)
	}
	if w, ok := g.Check("a"); ok || w != 10*time.Second {
		t.Fatalf("Check after lockout: %v %v", w, ok)
	}
	if len(locked) != 1 || g.Locked() != 1 {
		t.Fatalf("OnLockout %v, Locked %d", locked, g.Locked())
	}
	g.Failed("a") // while locked: no second OnLockout
	if len(locked) != 1 {
		t.Fatalf("OnLockout called again: %v", locked)
	}
	now = now.Add(20 * time.Second)
	if _, ok := g.Check("a"); !ok {
		t.Fatal("still locked after the refill")
	}
	g.Succeeded("a")
	if _, ok := g.Check("a"); !ok || len(g.keys) != 0 {
		t.Fatal("success did not forget the key")
	}
	// Bound: two keys tracked, a third is not (fail open) until a sweep
	// can drop a refilled one.
	g.Failed("b")
	g.Failed("c")
	var full []string
	g.cfg.OnFull = func(k string) { full = append(full, k) }
	now = now.Add(500 * time.Millisecond)
	g.swept = now
	if _, l := g.Failed("d"); l || len(full) != 1 {
		t.Fatalf("fourth key: locked %v, OnFull %v", l, full)
	}
	now = now.Add(time.Minute)
	g.Failed("d")
	if _, ok := g.keys["d"]; !ok {
		t.Fatal("refilled keys not swept to make room")
	}
	if New(Config{}).Enabled() {
		t.Fatal("Burst 0 throttles")
	}
}

func TestRetryAfter(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, 300 * time.Millisecond: 1, 1500 * time.Millisecond: 2, 30 * time.Second: 30} {
		if got := RetryAfter(d); got != want {
			t.Errorf("RetryAfter(%v) = %d, want %d", d, got, want)
		}
	}
}
