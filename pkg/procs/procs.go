// Package procs chooses how many OS threads run Go code at once in a
// binary of the IMS core (the runtime's GOMAXPROCS).
//
// A CSCF spends most of its time waiting for datagrams. With several
// processors (Ps) and little work each, the runtime wakes idle threads for
// every goroutine that becomes runnable, and those threads look for work,
// find none and sleep again: on the 2-core lab host, with four Go processes
// and PostgreSQL sharing it, one P per process cut the CPU per
// registration and per call by 15–20 % (ADR 0004, fifth-session update).
// One P also caps a process at one core of Go code, which a CSCF alone on
// a large host must not be. So "auto" adapts: one P while the process uses
// less than RaiseAt of a core, the runtime's default (the host's cores or
// the container's CPU limit) from the moment it needs more while the host
// has RaiseIdle of a core idle, and back to one once it has used less than
// LowerAt of a core for LowerAfter, or, on a host with less than LowerIdle
// idle, less than one core for LowerBusyAfter (then it stays at one for
// HoldAfterBusy). More Ps on a host whose
// cores are all busy only add the wake-ups' cost: in the 2-core lab a
// P-CSCF raised at 500 calls/s spent 1.58 ms per call against 1.16 at one P
// and queued until its admission control refused calls.
package procs

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
	"go.uber.org/zap"
)

// Thresholds of "auto", in shares of one core of process CPU time (user
// plus system) per sample interval.
const (
	// RaiseAt: at one P, a sample at or above this share raises the Ps to
	// the runtime's default. One P runs at most one core of Go code, so a
	// process near it is short of CPU, not idle.
	RaiseAt = 0.7
	// LowerAt: at the default Ps, LowerAfter of samples all below this
	// share lower them to one. The same work costs up to a fifth more
	// with several Ps, so LowerAt sits well below RaiseAt: a load that
	// raised the Ps does not lower them at once.
	LowerAt = 0.4
	// LowerAfter is how long the use must stay below LowerAt.
	LowerAfter = 10 * time.Second
	// RaiseIdle: the Ps are raised only while the host has at least this
	// many cores idle (from /proc/stat); more Ps cannot run on a busy host.
	RaiseIdle = 0.5
	// LowerIdle and LowerBusyAfter: at the default Ps, a process using less
	// than one core on a host with less than LowerIdle cores idle for
	// LowerBusyAfter goes back to one P, where the same work costs less.
	LowerIdle      = 0.2
	LowerBusyAfter = 3 * time.Second
	// HoldAfterBusy: after lowering on a busy host the Ps stay at one for
	// this long, so that a process whose own extra threads fill the host
	// does not switch back and forth (each switch stops the world and
	// writes a log line).
	HoldAfterBusy = 60 * time.Second
)

// Mode is what the --procs flag asked for.
type Mode struct {
	Auto  bool // adapt between 1 and the runtime's default
	Fixed int  // > 0: exactly this many Ps; 0 with Auto false: the runtime's default
	From  string
}

// Parse reads a --procs value: "auto", "max" (the runtime's default: the
// host's cores, or the container's CPU limit) or a whole number ≥ 1. An
// explicit GOMAXPROCS in the environment wins over "auto" (the runtime has
// applied it already).
func Parse(s string) (Mode, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "auto", "":
		if os.Getenv("GOMAXPROCS") != "" {
			return Mode{From: "GOMAXPROCS"}, nil
		}
		return Mode{Auto: true, From: "auto"}, nil
	case "max":
		return Mode{From: "max"}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return Mode{}, fmt.Errorf("procs %q: want auto, max or a whole number of at least 1", s)
	}
	return Mode{Fixed: n, From: "setting"}, nil
}

// Apply sets the Ps of m and returns the number in force and the
// runtime's default (the most "auto" raises to). "auto" starts at one P;
// Adapt then moves it.
func Apply(m Mode) (procs, max int) {
	max = runtime.GOMAXPROCS(0)
	switch {
	case m.Fixed > 0:
		setProcs(m.Fixed)
	case m.Auto:
		setProcs(0)
		max = runtime.GOMAXPROCS(0)
		setProcs(1)
	}
	return runtime.GOMAXPROCS(0), max
}

// controller is the decision of Adapt, apart from the clock and the meter.
type controller struct {
	max        int           // the runtime's default Ps
	cur        int           // Ps in force
	low        time.Duration // how long the use has been below LowerAt
	busy       time.Duration // how long the host has been busy (LowerIdle) with the use under a core
	every      time.Duration // sample interval
	lowerAfter time.Duration // LowerAfter
	busyAfter  time.Duration // LowerBusyAfter
	holdFor    time.Duration // HoldAfterBusy
	hold       time.Duration // left of the hold after a lowering on a busy host
}

// next takes one sample, the share of a core the process used and the
// cores of the host idle over the last interval, and returns the Ps to
// run with from now on.
func (c *controller) next(share, idle float64) int {
	if c.cur < c.max {
		if c.hold > 0 {
			c.hold -= c.every
			return c.cur
		}
		if share >= RaiseAt && idle >= RaiseIdle {
			c.cur, c.low, c.busy = c.max, 0, 0
		}
		return c.cur
	}
	if share < LowerAt {
		c.low += c.every
	} else {
		c.low = 0
	}
	if idle < LowerIdle && share < 1 {
		c.busy += c.every
	} else {
		c.busy = 0
	}
	if c.busy >= c.busyAfter {
		c.hold = c.holdFor
	}
	if c.low >= c.lowerAfter || c.busy >= c.busyAfter {
		c.cur, c.low, c.busy = 1, 0, 0
	}
	return c.cur
}

// cpuTime is the process's CPU time so far, user plus system (getrusage).
var cpuTime = func() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// hostCPU returns the host's idle (idle plus iowait) and total CPU time
// so far in seconds, summed over its CPUs, and how many CPUs it has
// (/proc/stat, read with prometheus/procfs); ok false where it cannot be
// read.
var hostCPU = func() (idle, total float64, cpus int, ok bool) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, 0, 0, false
	}
	st, err := fs.Stat()
	if err != nil {
		return 0, 0, 0, false
	}
	c := st.CPUTotal
	idle = c.Idle + c.Iowait
	total = c.User + c.Nice + c.System + c.Idle + c.Iowait + c.IRQ + c.SoftIRQ + c.Steal
	return idle, total, len(st.CPU), total > 0 && len(st.CPU) > 0
}

// hostIdle turns two readings of hostCPU into the cores idle between
// them; a host it cannot read counts as idle (the Ps then follow the
// process's own use only).
type hostIdle struct {
	idle, total float64
	ok          bool
}

func (h *hostIdle) sample() float64 {
	idle, total, cpus, ok := hostCPU()
	prev := *h
	*h = hostIdle{idle: idle, total: total, ok: ok}
	if !ok || !prev.ok || total <= prev.total || idle < prev.idle {
		return float64(max(cpus, 1))
	}
	return (idle - prev.idle) / (total - prev.total) * float64(cpus)
}

// setProcs applies a number of Ps; n 0 restores the runtime's default.
var setProcs = func(n int) {
	if n == 0 {
		runtime.SetDefaultGOMAXPROCS()
		return
	}
	runtime.GOMAXPROCS(n)
}

// Adapt runs "auto" after Apply until ctx ends: every interval it reads
// the process's CPU time and the host's idle CPU and moves between one P
// and max, the runtime's default that Apply returned (RaiseAt, RaiseIdle,
// LowerAt, LowerAfter, LowerIdle, LowerBusyAfter), logging each move at
// info level. With max one there is nothing to adapt and it
// returns at once.
func Adapt(ctx context.Context, max int, interval time.Duration, log *zap.Logger) {
	adapt(ctx, &controller{max: max, cur: 1, every: interval, lowerAfter: LowerAfter, busyAfter: LowerBusyAfter, holdFor: HoldAfterBusy}, log)
}

func adapt(ctx context.Context, c *controller, log *zap.Logger) {
	if c.max <= 1 {
		return
	}
	interval := c.every
	t := time.NewTicker(interval)
	defer t.Stop()
	var host hostIdle
	host.sample()
	last, lastAt := cpuTime(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now, at := cpuTime(), time.Now()
		wall := at.Sub(lastAt)
		if wall <= 0 {
			continue
		}
		share := float64(now-last) / float64(wall)
		idle := host.sample()
		last, lastAt = now, at
		was := c.cur
		if n := c.next(share, idle); n != was {
			if n == c.max {
				setProcs(0)
			} else {
				setProcs(n)
			}
			log.Info("Go processors changed", zap.Int("from", was), zap.Int("to", n),
				zap.Float64("cpu_share", share), zap.Float64("host_idle_cores", idle))
		}
	}
}
