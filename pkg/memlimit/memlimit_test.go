package memlimit

import (
	"context"
	"math"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "1024": 1024, "512MiB": 512 << 20, "1GiB": 1 << 30, "1.5 GiB": 3 << 29, "64KiB": 64 << 10, "10B": 10} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x", "-1", "12 MB", "1e400"} {
		if _, err := Parse(in); err == nil {
			t.Errorf("Parse(%q): no error", in)
		}
	}
}

func TestSet(t *testing.T) {
	old := debug.SetMemoryLimit(-1)
	defer debug.SetMemoryLimit(old)
	if l, how, err := Set("300MiB"); err != nil || l != 300<<20 || debug.SetMemoryLimit(-1) != 300<<20 || how != "setting" {
		t.Errorf("Set(300MiB) = %d %q %v", l, how, err)
	}
	if l, _, _ := Set("off"); l != math.MaxInt64 || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Errorf("off: %d", l)
	}
	t.Setenv("GOMEMLIMIT", "")
	if l, how, err := Set("auto"); err != nil || l <= 0 || l == math.MaxInt64 || debug.SetMemoryLimit(-1) != l {
		t.Errorf("auto = %d %q %v", l, how, err)
	}
	if _, _, err := Set("lots"); err == nil {
		t.Error("Set(lots): no error")
	}
}

// TestReturnFreed frees 64 MiB of small objects and checks that ReturnFreed gives
// it back: the heap's free, unreleased bytes fall under the threshold
// (without ReturnFreed they stay above it for seconds: the runtime's
// scavenger is slow on purpose).
func TestReturnFreed(t *testing.T) {
	// Small objects, as parsed SIP messages are.
	keep := make([][]byte, 128<<10)
	for i := range keep {
		keep[i] = make([]byte, 512)
		keep[i][0] = 1
	}
	keep = nil
	runtime.GC()
	free := func() uint64 {
		s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	if f := free(); f < ReturnThreshold {
		t.Skipf("the runtime already returned the memory (%d free bytes left)", f)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	defer func() { cancel(); <-done }() // ended before another test swaps the hooks
	go func() { ReturnFreed(ctx, 10*time.Millisecond, zap.NewNop()); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for free() >= ReturnThreshold {
		if time.Now().After(deadline) {
			t.Fatalf("%d free bytes still held", free())
		}
		time.Sleep(10 * time.Millisecond)
	}
	_ = keep
}

// TestReturnFreedCPUBudget: under steady load there is always free heap
// memory again, and a forced collection of a large heap takes long.
// ReturnFreed then spaces them to keep within ReturnCPUShare of a core:
// with collections taking 20 ms, checked every millisecond for 600 ms, it
// forces one, not one per check (without the spacing: about 30, as an
// S-CSCF holding 40,000 registrations under load forced one every second).
func TestReturnFreedCPUBudget(t *testing.T) {
	var calls atomic.Int32
	defer func(f func(), h func() (uint64, bool)) { freeOSMemory, heapFree = f, h }(freeOSMemory, heapFree)
	freeOSMemory = func() { calls.Add(1); time.Sleep(20 * time.Millisecond) }
	heapFree = func() (uint64, bool) { return 1 << 30, true }
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	ReturnFreed(ctx, time.Millisecond, zap.NewNop())
	if n := calls.Load(); n != 1 {
		t.Errorf("%d forced collections in 600 ms, want 1 (then none for %v)", n, returnSpacing(20*time.Millisecond, runtime.GOMAXPROCS(0)))
	}
	if got, want := returnSpacing(5*time.Millisecond, 2), time.Second; got != want {
		t.Errorf("returnSpacing(5 ms, 2 Ps) = %v, want %v (5 ms x 2 Ps / 1 %%)", got, want)
	}
}
