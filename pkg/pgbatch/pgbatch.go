// Package pgbatch runs the write statements of many goroutines in shared
// round trips to PostgreSQL: group commit on the client side.
//
// A CSCF writes state that must survive its restart (a registration, a
// reg-event subscription) before it answers the request that created it.
// Each such write on its own costs a round trip and a transaction on both
// sides: on the S-CSCF, two of them per registration were 13–20 % of its
// CPU and a quarter of PostgreSQL's (docs/performance.md, eighth session).
// A Batcher keeps the write-through contract — Exec returns only once the
// statement has run, with its own error — but while one batch is in
// flight the statements that arrive meanwhile wait and then go together,
// as one pipelined batch (one implicit transaction, one commit). Under
// light load every statement runs alone and at once, as before; the
// batches grow with the load and with PostgreSQL's latency, never by
// waiting on a timer.
//
// The HSS's Cx hot path has its own group commit (hss/store,
// groupcommit.go): jobs of several statements whose results are read
// back, lanes keyed by IMPI so that row locks do not queue batches. A
// Batcher is the single-statement, result-less case; folding the HSS's
// onto this package is left for when one of them changes.
package pgbatch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imscore/imscore/pkg/admin"
	"github.com/imscore/imscore/pkg/pgretry"
)

// MaxBatch is the most statements sent in one batch; the rest wait for
// the next one.
const MaxBatch = 128

// batchTimeout bounds one batch. A batch of queued statements runs for
// every caller in it, so no single caller's context may cancel it.
const batchTimeout = 10 * time.Second

// Batcher runs statements on a pool, one batch in flight at a time. The
// zero value is not usable; use New. Safe for concurrent use.
type Batcher struct {
	pool *pgxpool.Pool

	mu      sync.Mutex
	running bool    // a batch is in flight
	queue   []*item // statements waiting for the next batch

	batches    atomic.Int64
	statements atomic.Int64
}

type item struct {
	ctx  context.Context // the caller's: a statement whose caller gave up before its batch is not sent
	sql  string
	args []any
	err  error
	done chan struct{} // closed once err is set
}

// New returns a Batcher writing through pool.
func New(pool *pgxpool.Pool) *Batcher { return &Batcher{pool: pool} }

// Exec runs sql with args and returns its error: nil once the statement
// has run (and committed; each batch is one implicit transaction). When
// no batch is in flight it runs at once on the caller's goroutine;
// otherwise it waits for the batch in flight to end and goes with the
// next one. A statement that fails alone gets its own error: when a batch
// fails on a statement, every statement of it is run again on its own
// (a failed batch has committed nothing). A lost connection is retried
// once (pgretry). When ctx ends first Exec returns ctx's error, and the
// statement is not sent unless its batch had already started (a caller
// that answered 500 must not find its row written later).
func (b *Batcher) Exec(ctx context.Context, sql string, args ...any) error {
	it := &item{ctx: ctx, sql: sql, args: args}
	b.mu.Lock()
	if !b.running {
		b.running = true
		b.mu.Unlock()
		b.run(ctx, []*item{it})
		b.next()
		return it.err
	}
	it.done = make(chan struct{})
	b.queue = append(b.queue, it)
	b.mu.Unlock()
	select {
	case <-it.done:
		return it.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns how many batches and statements have run.
func (b *Batcher) Stats() (batches, statements int64) {
	return b.batches.Load(), b.statements.Load()
}

// next starts the batch of the statements that queued while one was in
// flight, on a goroutine of its own (the caller that ran the last batch
// returns at once), or marks the Batcher idle.
func (b *Batcher) next() {
	b.mu.Lock()
	if len(b.queue) == 0 {
		b.running = false
		b.mu.Unlock()
		return
	}
	batch := b.take()
	b.mu.Unlock()
	go func() {
		for batch != nil {
			b.run(context.Background(), batch)
			b.mu.Lock()
			if len(b.queue) == 0 {
				b.running = false
				batch = nil
			} else {
				batch = b.take()
			}
			b.mu.Unlock()
		}
	}()
}

// take removes up to MaxBatch statements from the queue; b.mu is held.
func (b *Batcher) take() []*item {
	n := min(len(b.queue), MaxBatch)
	batch := make([]*item, n)
	copy(batch, b.queue)
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	return batch
}

// run executes batch within batchTimeout and ctx (the caller's own for
// a statement that runs alone on its caller's goroutine, so that it ends
// with that caller's context as a plain Exec would) and sets every
// item's error.
func (b *Batcher) run(ctx context.Context, batch []*item) {
	ctx, cancel := context.WithTimeout(ctx, batchTimeout)
	defer cancel()
	live := batch[:0:0]
	for _, it := range batch {
		if err := it.ctx.Err(); err != nil {
			it.err = err
			finish(it)
			continue
		}
		live = append(live, it)
	}
	batch = live
	if len(batch) == 0 {
		return
	}
	b.batches.Add(1)
	b.statements.Add(int64(len(batch)))
	if len(batch) == 1 {
		it := batch[0]
		_, it.err = pgretry.Exec(ctx, b.pool, it.sql, it.args...)
		finish(it)
		return
	}
	err := pgretry.Do(ctx, b.pool, func() error {
		var q pgx.Batch
		for _, it := range batch {
			q.Queue(it.sql, it.args...)
		}
		res := b.pool.SendBatch(ctx, &q)
		var first error
		for range batch {
			if _, err := res.Exec(); err != nil && first == nil {
				first = err
			}
		}
		if err := res.Close(); err != nil && first == nil {
			first = err
		}
		return first
	})
	if err == nil || pgretry.ConnectionLost(err) || ctx.Err() != nil {
		for _, it := range batch {
			it.err = err
			finish(it)
		}
		return
	}
	// One statement failed and the implicit transaction rolled back:
	// give each statement its own outcome.
	for _, it := range batch {
		_, it.err = pgretry.Exec(ctx, b.pool, it.sql, it.args...)
		finish(it)
	}
}

func finish(it *item) {
	if it.done != nil {
		close(it.done)
	}
}

// Register adds two counters of b to reg: <prefix>_db_write_batches_total
// and <prefix>_db_write_statements_total (statements / batches is the
// mean batch size), and the statistics of b's connection pool as the
// pgxpool_* metrics labelled pool=<prefix> (admin.RegisterPool).
func Register(reg prometheus.Registerer, prefix string, b *Batcher) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: prefix + "_db_write_batches_total",
			Help: "Round trips (one transaction each) that carried the state writes to PostgreSQL (group commit, pkg/pgbatch)."},
			func() float64 { n, _ := b.Stats(); return float64(n) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: prefix + "_db_write_statements_total",
			Help: "State writes carried by those round trips; statements / batches is the mean batch size."},
			func() float64 { _, n := b.Stats(); return float64(n) }),
	} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return admin.RegisterPool(reg, prefix, b.pool)
}
