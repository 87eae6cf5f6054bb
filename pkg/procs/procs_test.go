package procs

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestParse(t *testing.T) {
	t.Setenv("GOMAXPROCS", "")
	for _, tc := range []struct {
		in   string
		want Mode
		bad  bool
	}{
		{in: "auto", want: Mode{Auto: true, From: "auto"}},
		{in: "", want: Mode{Auto: true, From: "auto"}},
		{in: " MAX ", want: Mode{From: "max"}},
		{in: "3", want: Mode{Fixed: 3, From: "setting"}},
		{in: "0", bad: true},
		{in: "-2", bad: true},
		{in: "two", bad: true},
	} {
		got, err := Parse(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("Parse(%q) = %+v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	t.Setenv("GOMAXPROCS", "3")
	if got, err := Parse("auto"); err != nil || got.Auto || got.From != "GOMAXPROCS" {
		t.Errorf("Parse(auto) with GOMAXPROCS set = %+v, %v; want the environment's value kept", got, err)
	}
}

func TestControllerRaisesAtOnceLowersLate(t *testing.T) {
	c := &controller{max: 4, cur: 1, every: time.Second, lowerAfter: 10 * time.Second}
	step := func(share float64, want int) {
		t.Helper()
		if got := c.next(share); got != want {
			t.Fatalf("sample %.2f: %d Ps, want %d", share, got, want)
		}
	}
	step(0.2, 1)
	step(RaiseAt-0.01, 1) // busy, but one P still copes
	step(RaiseAt, 4)      // short of CPU: raised at the first such sample
	for range 9 {
		step(LowerAt-0.01, 4)
	}
	step(LowerAt, 4) // one sample at LowerAt starts the wait again
	for range 9 {
		step(0.1, 4)
	}
	step(0.1, 1) // ten seconds below LowerAt
	step(0.5, 1) // between the thresholds: stays
}

// fakeCPU is a CPU-time meter that advances at a share of the wall clock
// the test sets.
type fakeCPU struct {
	mu    sync.Mutex
	share float64
	at    time.Time
	total time.Duration
}

func (f *fakeCPU) set(share float64) {
	f.read()
	f.mu.Lock()
	f.share = share
	f.mu.Unlock()
}

func (f *fakeCPU) read() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if !f.at.IsZero() {
		f.total += time.Duration(float64(now.Sub(f.at)) * f.share)
	}
	f.at = now
	return f.total
}

func TestAdaptFollowsTheProcessCPU(t *testing.T) {
	cpu := &fakeCPU{share: 0.1}
	var procs atomic.Int64
	procs.Store(1)
	oldCPU, oldSet := cpuTime, setProcs
	cpuTime, setProcs = cpu.read, func(n int) { procs.Store(int64(n)) }
	t.Cleanup(func() { cpuTime, setProcs = oldCPU, oldSet })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		adapt(ctx, &controller{max: 2, cur: 1, every: 10 * time.Millisecond, lowerAfter: 100 * time.Millisecond}, zap.NewNop())
	}()
	defer func() { cancel(); <-done }()

	waitFor := func(want int64, what string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for procs.Load() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: Ps %d, want %d", what, procs.Load(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if procs.Load() != 1 {
		t.Fatalf("idle process raised to %d Ps", procs.Load())
	}
	cpu.set(0.95)
	waitFor(0, "a process using 95% of a core") // 0: the runtime's default
	cpu.set(0.05)
	waitFor(1, "a process idle again")
}

func TestApply(t *testing.T) {
	t.Cleanup(func() { runtime.SetDefaultGOMAXPROCS() })
	runtime.SetDefaultGOMAXPROCS()
	def := runtime.GOMAXPROCS(0)
	if n, max := Apply(Mode{Auto: true}); n != 1 || max != def {
		t.Errorf("auto: %d Ps, max %d; want 1 and the runtime's default %d", n, max, def)
	}
	if n, _ := Apply(Mode{Fixed: 3}); n != 3 {
		t.Errorf("fixed 3: %d Ps", n)
	}
}
