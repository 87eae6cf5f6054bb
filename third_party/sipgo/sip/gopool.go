package sip

import "time"

// imscore fork: goroutines that outlive the work they run.
//
// A goroutine started per response or per transaction branch runs a deep
// call chain (transaction state machine, relay, socket write) on a new
// stack, which the runtime grows by copying it, two or three times, each
// time: 5-9 % of a proxy's CPU (docs/performance.md, eighteenth session).
// A pooled goroutine keeps its grown stack for the next function.

// poolIdle is how long a goroutine of the package's pool waits for work
// before it ends.
const poolIdle = 10 * time.Second

// goPool runs functions on pooled goroutines: an idle one when there is
// one, else a new one that joins the pool when done. Goroutines that stay
// idle for idle end, so the pool follows the load.
type goPool struct {
	jobs chan func() // unbuffered: a send succeeds only to an idle goroutine
	idle time.Duration
}

var pooled = &goPool{jobs: make(chan func()), idle: poolIdle}

// GoPooled runs f on a goroutine of the package's pool, as "go f()" would
// but on a goroutine whose stack has grown for earlier work (imscore
// fork). f must not rely on a goroutine of its own (no goroutine-local
// state such as runtime.LockOSThread).
func GoPooled(f func()) { pooled.Go(f) }

// Go runs f on an idle pooled goroutine, or a new one.
func (p *goPool) Go(f func()) {
	select {
	case p.jobs <- f:
	default:
		go p.run(f)
	}
}

// run runs f, then every function passed to it until it has been idle
// for p.idle.
func (p *goPool) run(f func()) {
	f()
	idle := time.NewTimer(p.idle)
	defer idle.Stop()
	for {
		select {
		case f = <-p.jobs:
			f()
			idle.Reset(p.idle)
		case <-idle.C:
			return
		}
	}
}
