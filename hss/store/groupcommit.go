package store

// Group commit of the Cx hot path (docs/adr/0002-registration-capacity.md).
//
// A statement that carries one request pays its protocol round trip,
// its backend wake-up and, for a write, its commit (a WAL flush) alone;
// that is most of PostgreSQL's cost per Cx request. With
// EnableGroupCommit the hot path's statements (Pair, PairReserve,
// PairReservePending, PairAssignSubscription) become jobs: a job is the
// statements of one request and the code that reads their results. Each
// lane has a worker that sends every job waiting in its queue as one
// pgx batch: one round trip and one implicit transaction, so one commit
// for all of them.
//
// Rules (each one checked by tests in groupcommit_test.go):
//   - The statements of a batch run one after the other in one
//     transaction, so a job sees the writes of the jobs before it exactly
//     as if they had been sent one by one: two SQN reservations of one
//     IMPI in a batch never hand out the same SQN.
//   - A job's results are handed to its caller only after the batch's
//     commit succeeded: no Diameter answer gets ahead of durability.
//   - Any failure in a batch (a statement's error, the commit, the
//     connection) rolls the whole transaction back; every job of the
//     batch then runs again alone, so a bad request fails only itself.
//     A job may therefore run twice, and its read code must start from
//     scratch (as for pgretry).
//   - Jobs of one IMPI always go to the same lane, so concurrent batches
//     do not queue behind each other's lock of that IMPI's row.
//   - A batch never waits for more jobs: the worker takes whatever queued
//     while its previous batch ran. Under low load every job is a batch
//     of one and waits for nothing; under load the batches grow by
//     themselves.

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Limits of EnableGroupCommit.
const (
	// MaxGroupCommitLanes bounds the number of lanes (workers).
	MaxGroupCommitLanes = 64
	// maxGroupCommitJobs bounds the jobs of one batch.
	maxGroupCommitJobs = 64
)

// errStoreClosed is the result of a job submitted after Close.
var errStoreClosed = errors.New("store closed")

// gcJob is one request's statements and the code that reads their
// results.
type gcJob struct {
	ctx context.Context
	// queue adds the job's statements to b.
	queue func(b *pgx.Batch)
	// read reads the results of those statements, in order. An error
	// wrapping pgx.ErrNoRows is a result of the job (an unknown
	// identity); any other error fails the batch.
	read func(br pgx.BatchResults) error
	done chan error // receives the job's result once
}

// groupCommit holds the lanes.
type groupCommit struct {
	seed  maphash.Seed
	lanes []*gcLane
	wg    sync.WaitGroup

	// batches, jobs count what was sent (GroupCommitStats).
	statsMu       sync.Mutex
	batches, jobs uint64
}

// gcLane is one worker's queue.
type gcLane struct {
	mu     sync.Mutex
	queue  []*gcJob
	closed bool
	wake   chan struct{} // buffered 1: the queue is not empty
}

// EnableGroupCommit sends the Cx hot path's statements through lanes
// (1..MaxGroupCommitLanes) workers, each sending what waited in its queue
// as one batch and one transaction. lanes = 0 turns group commit off
// (every request is its own batch, as before). Each busy lane holds one
// pool connection. Call it before the Store is used.
func (s *Store) EnableGroupCommit(lanes int) error {
	if lanes < 0 || lanes > MaxGroupCommitLanes {
		return fmt.Errorf("hss/store: group commit lanes %d, want 0..%d", lanes, MaxGroupCommitLanes)
	}
	if lanes == 0 {
		return nil
	}
	g := &groupCommit{seed: maphash.MakeSeed()}
	for range lanes {
		l := &gcLane{wake: make(chan struct{}, 1)}
		g.lanes = append(g.lanes, l)
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			s.serveLane(l)
		}()
	}
	s.gc = g
	return nil
}

// GroupCommitStats returns how many batches the lanes sent and how many
// jobs they carried (jobs/batches is the mean batch size); zeros without
// EnableGroupCommit.
func (s *Store) GroupCommitStats() (batches, jobs uint64) {
	if s.gc == nil {
		return 0, 0
	}
	s.gc.statsMu.Lock()
	defer s.gc.statsMu.Unlock()
	return s.gc.batches, s.gc.jobs
}

// closeGroupCommit stops the lanes once their queues are drained.
func (s *Store) closeGroupCommit() {
	if s.gc == nil {
		return
	}
	for _, l := range s.gc.lanes {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	s.gc.wg.Wait()
}

// grouped runs a job (see gcJob) for IMPI key: in its lane's next batch
// with group commit, else alone. It returns the job's result: nil, an
// error wrapping pgx.ErrNoRows, or the failure of its statements when it
// ran alone.
func (s *Store) grouped(ctx context.Context, key string, queue func(*pgx.Batch), read func(pgx.BatchResults) error) error {
	j := &gcJob{ctx: ctx, queue: queue, read: read, done: make(chan error, 1)}
	if s.gc == nil {
		return s.runAlone(j)
	}
	l := s.gc.lanes[maphash.String(s.gc.seed, key)%uint64(len(s.gc.lanes))]
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errStoreClosed
	}
	l.queue = append(l.queue, j)
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
	// The worker always answers: at the latest when the batch's context
	// (the latest deadline of its jobs) ends.
	return <-j.done
}

// groupedRow is grouped for a job of one statement read with scan.
func (s *Store) groupedRow(ctx context.Context, key string, scan func(pgx.Row) error, sql string, args ...any) error {
	return s.grouped(ctx, key, func(b *pgx.Batch) { b.Queue(sql, args...) },
		func(br pgx.BatchResults) error { return scan(br.QueryRow()) })
}

// serveLane is a lane's worker.
func (s *Store) serveLane(l *gcLane) {
	for range l.wake {
		for {
			l.mu.Lock()
			n := min(len(l.queue), maxGroupCommitJobs)
			jobs := make([]*gcJob, n)
			copy(jobs, l.queue)
			l.queue = append(l.queue[:0], l.queue[n:]...)
			closed := l.closed && len(l.queue) == 0
			l.mu.Unlock()
			if n > 0 {
				s.runBatch(jobs)
			}
			if closed {
				return
			}
			if n == 0 {
				break
			}
		}
	}
}

// runBatch sends jobs as one batch and delivers their results after the
// commit; when the batch fails, each job runs again alone.
func (s *Store) runBatch(jobs []*gcJob) {
	live := jobs[:0]
	for _, j := range jobs {
		if err := j.ctx.Err(); err != nil {
			j.done <- err // expired while queued: nothing was sent
			continue
		}
		live = append(live, j)
	}
	if len(live) == 0 {
		return
	}
	s.gc.statsMu.Lock()
	s.gc.batches++
	s.gc.jobs += uint64(len(live))
	s.gc.statsMu.Unlock()
	if len(live) == 1 {
		live[0].done <- s.runAlone(live[0])
		return
	}
	ctx, cancel := batchContext(live)
	results := make([]error, len(live))
	err := s.onConn(ctx, func(c *pgx.Conn) error { return sendJobs(ctx, c, live, results) })
	cancel()
	if err == nil {
		for i, j := range live {
			j.done <- results[i]
		}
		return
	}
	// Rolled back as a whole: find the culprit by running each job alone,
	// concurrently so that a slow failure does not hold the lane.
	for _, j := range live {
		go func() { j.done <- s.runAlone(j) }()
	}
}

// runAlone runs one job as a batch of its own, again over a fresh
// connection when the first one was dead (pgretry).
func (s *Store) runAlone(j *gcJob) error {
	var result error
	err := s.retry(j.ctx, func() error {
		return s.onConn(j.ctx, func(c *pgx.Conn) error {
			r := []error{nil}
			err := sendJobs(j.ctx, c, []*gcJob{j}, r)
			result = r[0]
			return err
		})
	})
	if err != nil {
		return err
	}
	return result
}

// sendJobs sends jobs as one pgx batch on c (one implicit transaction)
// and reads their results into results; it fails when any statement or
// the commit failed.
func sendJobs(ctx context.Context, c *pgx.Conn, jobs []*gcJob, results []error) error {
	b := &pgx.Batch{}
	for _, j := range jobs {
		j.queue(b)
	}
	br := c.SendBatch(ctx, b)
	for i, j := range jobs {
		err := j.read(br)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			br.Close()
			return err
		}
		results[i] = err
	}
	return br.Close() // Sync: the commit
}

// batchContext is the context of a batch: it ends at the latest deadline
// of its jobs (never, when one has none), so that no job's own deadline
// cancels the others' statements.
func batchContext(jobs []*gcJob) (context.Context, context.CancelFunc) {
	var latest time.Time
	for _, j := range jobs {
		d, ok := j.ctx.Deadline()
		if !ok {
			return context.WithCancel(context.Background())
		}
		if d.After(latest) {
			latest = d
		}
	}
	return context.WithDeadline(context.Background(), latest)
}
