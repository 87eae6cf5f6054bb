package sipproxy

import (
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// Handler goroutines kept between requests.
//
// sipgo starts a new goroutine for every request it receives. An IMS
// handler (Diameter, PostgreSQL, XML, logging) needs tens of KiB of stack,
// so each of those goroutines grew its stack by copying it several times:
// 4–8 % of every CSCF's CPU in a registration profile (ADR 0004, sixth
// session). The requests are now handed to goroutines that stay after
// their request and so keep their grown stacks: an idle one takes the next
// request; when none is idle a new one is started, up to maxWorkers, and
// above that the request gets a goroutine of its own that ends with it. A
// goroutine idle for workerIdle ends, so the pool shrinks after a peak.
//
// The goroutines of a transaction's branches, and those sipgo starts per
// response, run on the sipgo fork's own pool (sip.GoPooled, item 14) for
// the same reason; that pool is the process's, not a proxy's: its idle
// goroutines end 10 s after their last work, not when the proxy closes.
// Requests stay here, where closing the proxy ends its workers.
//
// dispatch runs on the socket's read goroutine (our sipgo fork's
// WithTransactionLayerRequestsOnReadLoop, third_party/sipgo/FORK.md), so it
// never blocks and never serves a request itself.
const (
	maxWorkers = 512
	workerIdle = 20 * time.Second
)

type request struct {
	req *sip.Request
	stx *sip.ServerTx
}

type workerPool struct {
	jobs    chan request // unbuffered: a send succeeds only to an idle worker
	running atomic.Int32
}

func newWorkerPool() *workerPool { return &workerPool{jobs: make(chan request)} }

// dispatch is sipgo's transaction-layer callback, called on the read
// goroutine: it passes the request to an idle worker, or a new one, or,
// when maxWorkers run, to a goroutine of its own.
func (p *Proxy) dispatch(req *sip.Request, stx *sip.ServerTx) {
	w := p.workers
	select {
	case w.jobs <- request{req, stx}:
		return
	default:
	}
	if w.running.Add(1) <= maxWorkers {
		go p.work(request{req, stx})
		return
	}
	w.running.Add(-1)
	go p.handleRequest(req, stx)
}

// work serves first, then every request passed to it until it has been
// idle for workerIdle or the proxy closes.
func (p *Proxy) work(first request) {
	w := p.workers
	defer w.running.Add(-1)
	p.handleRequest(first.req, first.stx)
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		select {
		case r := <-w.jobs:
			p.handleRequest(r.req, r.stx)
			idle.Reset(workerIdle)
		case <-idle.C:
			return
		case <-p.baseCtx.Done():
			return
		}
	}
}
