// Package memlimit bounds a process's memory: it sets the Go runtime's
// soft memory limit (the GOMEMLIMIT setting, runtime/debug.SetMemoryLimit)
// from a flag, and returns freed heap memory to the operating system when
// a burst has left much of it unused (a flood of SIP junk holds parsed
// messages for the 32 s of the transaction timers, then frees them; the
// runtime's background scavenger gives that memory back only slowly).
package memlimit

import (
	"context"
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// DefaultLimit is the limit "auto" sets when neither GOMEMLIMIT nor a
// cgroup memory limit says otherwise.
const DefaultLimit = 1 << 30

// Parse reads a size the way GOMEMLIMIT is written: a number of bytes
// with an optional unit B, KiB, MiB, GiB or TiB.
func Parse(s string) (int64, error) {
	s = strings.TrimSpace(s)
	units := []struct {
		suffix string
		mult   float64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseFloat(s, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return 0, fmt.Errorf("memory size %q: want bytes with an optional unit B, KiB, MiB, GiB, TiB", s)
	}
	v := n * mult
	if v >= math.MaxInt64 {
		return math.MaxInt64, nil
	}
	return int64(v), nil
}

// Set applies setting and returns the limit in force (math.MaxInt64 for
// none) and where it comes from:
//
//   - "auto": GOMEMLIMIT when the environment sets it (the runtime read it
//     at start-up); else 80 % of the cgroup's memory limit (a container's
//     memory.max); else DefaultLimit;
//   - "off": no limit;
//   - a size (Parse): that.
func Set(setting string) (int64, string, error) {
	switch strings.ToLower(strings.TrimSpace(setting)) {
	case "off":
		debug.SetMemoryLimit(math.MaxInt64)
		return math.MaxInt64, "off", nil
	case "auto", "":
		if os.Getenv("GOMEMLIMIT") != "" {
			return debug.SetMemoryLimit(-1), "GOMEMLIMIT", nil
		}
		if cg := cgroupLimit(); cg > 0 {
			l := cg / 10 * 8
			debug.SetMemoryLimit(l)
			return l, "80% of the cgroup memory limit", nil
		}
		debug.SetMemoryLimit(DefaultLimit)
		return DefaultLimit, "default", nil
	}
	l, err := Parse(setting)
	if err != nil {
		return 0, "", err
	}
	debug.SetMemoryLimit(l)
	return l, "setting", nil
}

// String writes a limit for logs: "1GiB", "300MiB", "off".
func String(limit int64) string {
	switch {
	case limit == math.MaxInt64:
		return "off"
	case limit%(1<<30) == 0:
		return strconv.FormatInt(limit>>30, 10) + "GiB"
	case limit%(1<<20) == 0:
		return strconv.FormatInt(limit>>20, 10) + "MiB"
	}
	return strconv.FormatInt(limit, 10) + "B"
}

// cgroupLimit returns the memory limit of the process's cgroup (v2
// memory.max, else v1 memory.limit_in_bytes), 0 when there is none.
func cgroupLimit() int64 {
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil || v <= 0 || v >= 1<<60 { // "max", or v1's "no limit"
			return 0
		}
		return v
	}
	return 0
}

// ReturnThreshold is how much freed, not yet returned heap memory makes
// ReturnFreed hand it to the operating system.
const ReturnThreshold = 16 << 20

// ReturnCPUShare bounds the CPU ReturnFreed's forced collections take:
// at most this share of one core over time.
const ReturnCPUShare = 0.01

// Hooks for the tests.
var (
	freeOSMemory = debug.FreeOSMemory
	heapFree     = func() (uint64, bool) {
		s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindUint64 {
			return 0, false
		}
		return s[0].Value.Uint64(), true
	}
)

// ReturnFreed checks every interval until ctx ends how much heap memory is
// free but still held by the process, and returns it to the operating
// system (runtime/debug.FreeOSMemory: a garbage collection, then the free
// pages released) when that is ReturnThreshold or more: the resident size
// follows what is in use, during a burst and after it, where the runtime's
// own scavenger gives memory back over minutes.
//
// A forced collection costs CPU in proportion to the live heap (measured
// on a 2-core host, GOMAXPROCS 2: about 28 ms at 41 MiB live, 180–200 ms
// at 250 MiB, about what an S-CSCF holding 80,000 registrations keeps),
// and under steady load there is always that much free memory again a
// second later; so after each one ReturnFreed waits until it has spent at
// most ReturnCPUShare of one core on them (its duration, times GOMAXPROCS
// for the collector's parallel workers, over ReturnCPUShare) before it
// forces the next: every ~6 s at 41 MiB, every ~40 s at 250 MiB.
func ReturnFreed(ctx context.Context, interval time.Duration, log *zap.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var notBefore time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Now().Before(notBefore) {
			continue
		}
		free, ok := heapFree()
		if !ok {
			return
		}
		if free < ReturnThreshold {
			continue
		}
		start := time.Now()
		freeOSMemory()
		took := time.Since(start)
		notBefore = start.Add(returnSpacing(took, runtime.GOMAXPROCS(0)))
		log.Debug("returned freed memory to the OS", zap.Uint64("bytes", free), zap.Duration("took", took))
	}
}

// returnSpacing is the least time from the start of a forced collection
// that took took, on procs Ps, to the next: ReturnCPUShare of one core.
func returnSpacing(took time.Duration, procs int) time.Duration {
	return time.Duration(float64(took) * float64(max(procs, 1)) / ReturnCPUShare)
}
