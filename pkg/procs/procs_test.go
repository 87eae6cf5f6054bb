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
	c := &controller{max: 4, cur: 1, every: time.Second, lowerAfter: 10 * time.Second, busyAfter: 3 * time.Second}
	const idleHost = 3.0
	step := func(share, idle float64, want int) {
		t.Helper()
		if got := c.next(share, idle); got != want {
			t.Fatalf("sample %.2f of a core, host %.2f cores idle: %d Ps, want %d", share, idle, got, want)
		}
	}
	step(0.2, idleHost, 1)
	step(RaiseAt-0.01, idleHost, 1) // busy, but one P still copes
	step(RaiseAt, idleHost, 4)      // short of CPU: raised at the first such sample
	for range 9 {
		step(LowerAt-0.01, idleHost, 4)
	}
	step(LowerAt, idleHost, 4) // one sample at LowerAt starts the wait again
	for range 9 {
		step(0.1, idleHost, 4)
	}
	step(0.1, idleHost, 1) // ten seconds below LowerAt
	step(0.5, idleHost, 1) // between the thresholds: stays
}

func TestControllerOnABusyHost(t *testing.T) {
	c := &controller{max: 2, cur: 1, every: time.Second, lowerAfter: 10 * time.Second, busyAfter: 3 * time.Second, holdFor: 5 * time.Second}
	step := func(share, idle float64, want int) {
		t.Helper()
		if got := c.next(share, idle); got != want {
			t.Fatalf("sample %.2f of a core, host %.2f cores idle: %d Ps, want %d", share, idle, got, want)
		}
	}
	// Every core busy: a second P could not run, so none is added.
	step(0.9, RaiseIdle-0.01, 1)
	step(0.95, 0.1, 1)
	step(0.9, RaiseIdle, 2) // a core's half idle: raised
	// The host fills up while the process needs less than a core: back
	// to one P after LowerBusyAfter.
	step(0.8, LowerIdle-0.01, 2)
	step(0.8, 0.1, 2)
	step(0.8, 0.1, 1)
	// Lowered on a busy host: held at one P for holdFor even when the host
	// frees up again (its own second thread may be what filled it).
	for range 5 {
		step(0.9, 1, 1)
	}
	// A process using more than a core keeps its Ps on a busy host
	// (lowering would only move its queue into it).
	step(0.9, 1, 2)
	for range 5 {
		step(1.6, 0.05, 2)
	}
	step(0.9, 0.05, 2)
	step(0.9, 0.3, 2) // the busy count starts again
	step(0.9, 0.05, 2)
	step(0.9, 0.05, 2)
	step(0.9, 0.05, 1)
}

func TestHostIdle(t *testing.T) {
	old := hostCPU
	t.Cleanup(func() { hostCPU = old })
	readings := []struct {
		idle, total float64
		cpus        int
		ok          bool
	}{{100, 1000, 2, true}, {250, 1200, 2, true}, {0, 0, 0, false}, {300, 1300, 2, true}}
	i := 0
	hostCPU = func() (float64, float64, int, bool) {
		r := readings[i]
		i++
		return r.idle, r.total, r.cpus, r.ok
	}
	var h hostIdle
	h.sample()
	if got := h.sample(); got != 1.5 { // 150 of 200 ticks idle on 2 CPUs
		t.Errorf("idle cores %.2f, want 1.50", got)
	}
	if got := h.sample(); got != 1 {
		t.Errorf("unreadable: idle cores %.2f, want 1 (counted idle)", got)
	}
	if got := h.sample(); got != 2 {
		t.Errorf("after an unreadable sample: idle cores %.2f, want 2 (counted idle)", got)
	}
	// The real /proc/stat of this host.
	hostCPU = old
	if _, total, cpus, ok := hostCPU(); ok && (total == 0 || cpus < 1) {
		t.Errorf("/proc/stat: total %v s, cpus %d", total, cpus)
	}
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
	oldCPU, oldSet, oldHost := cpuTime, setProcs, hostCPU
	cpuTime, setProcs = cpu.read, func(n int) { procs.Store(int64(n)) }
	hostCPU = func() (float64, float64, int, bool) { return 0, 0, 0, false } // an idle host
	t.Cleanup(func() { cpuTime, setProcs, hostCPU = oldCPU, oldSet, oldHost })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		adapt(ctx, &controller{max: 2, cur: 1, every: 10 * time.Millisecond, lowerAfter: 100 * time.Millisecond, busyAfter: time.Second}, zap.NewNop())
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
