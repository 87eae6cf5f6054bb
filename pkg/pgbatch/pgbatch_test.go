package pgbatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imscore/imscore/pkg/metrictest"
	"github.com/imscore/imscore/pkg/pgtest"
)

func newBatcher(t *testing.T) (*Batcher, *pgxpool.Pool) {
	t.Helper()
	dsn := pgtest.NewDB(t)
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(context.Background(), `CREATE TABLE kv (k text PRIMARY KEY, v int NOT NULL CHECK (v >= 0))`); err != nil {
		t.Fatal(err)
	}
	return New(pool), pool
}

// blockFor starts a statement that keeps the Batcher busy for d and
// returns once it is in flight, so that what follows queues.
func blockFor(t *testing.T, b *Batcher, d time.Duration) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		done <- b.Exec(context.Background(), fmt.Sprintf("SELECT pg_sleep(%f)", d.Seconds()))
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b.mu.Lock()
		running := b.running
		b.mu.Unlock()
		if running {
			return done
		}
		if time.Now().After(deadline) {
			t.Fatal("the blocking statement never started")
		}
		time.Sleep(time.Millisecond)
	}
}

func count(t *testing.T, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM kv`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestQueuedStatementsShareOneBatch: statements that arrive while one is
// in flight go together in the next batch, and each caller returns only
// once its row is written.
func TestQueuedStatementsShareOneBatch(t *testing.T) {
	b, pool := newBatcher(t)
	blocked := blockFor(t, b, 300*time.Millisecond)
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := fmt.Sprint("k", i)
			err := b.Exec(context.Background(), `INSERT INTO kv (k, v) VALUES ($1, $2)`, k, i)
			if err == nil {
				var v int
				if err = pool.QueryRow(context.Background(), `SELECT v FROM kv WHERE k = $1`, k).Scan(&v); err != nil {
					err = fmt.Errorf("row %s after Exec returned: %w", k, err)
				}
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-blocked; err != nil {
		t.Fatal(err)
	}
	if got := count(t, pool); got != n {
		t.Fatalf("%d rows, want %d", got, n)
	}
	batches, statements := b.Stats()
	if statements != n+1 || batches != 2 {
		t.Fatalf("%d statements in %d batches, want %d in 2 (the blocking one, then one batch)", statements, batches, n+1)
	}
}

// TestFailedStatementFailsAlone: one statement of a batch violates a
// constraint; it gets that error, and the others of its batch are written
// (the batch is one transaction, so they are run again on their own).
func TestFailedStatementFailsAlone(t *testing.T) {
	b, pool := newBatcher(t)
	blocked := blockFor(t, b, 200*time.Millisecond)
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v := i
			if i == 4 {
				v = -1
			}
			errs[i] = b.Exec(context.Background(), `INSERT INTO kv (k, v) VALUES ($1, $2)`, fmt.Sprint("k", i), v)
		}()
	}
	wg.Wait()
	<-blocked
	for i, err := range errs {
		var pgErr *pgconn.PgError
		switch {
		case i == 4 && !(errors.As(err, &pgErr) && pgErr.Code == "23514"):
			t.Errorf("statement %d: %v, want a check violation", i, err)
		case i != 4 && err != nil:
			t.Errorf("statement %d: %v", i, err)
		}
	}
	if got := count(t, pool); got != 9 {
		t.Fatalf("%d rows, want 9", got)
	}
	if batches, _ := b.Stats(); batches != 2 {
		t.Fatalf("%d batches, want 2: the ten statements went as one batch before being run alone", batches)
	}
}

// TestCallerContextEnds: a caller whose context ends while it waits gets
// the context's error at once and its statement is not sent; the batch
// in flight is not cancelled for the others.
func TestCallerContextEnds(t *testing.T) {
	b, pool := newBatcher(t)
	blocked := blockFor(t, b, 300*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.Exec(ctx, `INSERT INTO kv (k, v) VALUES ('late', 1)`); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Exec after its deadline: %v", err)
	}
	if err := <-blocked; err != nil {
		t.Fatalf("the batch in flight: %v", err)
	}
	if err := b.Exec(context.Background(), `INSERT INTO kv (k, v) VALUES ('next', 1)`); err != nil {
		t.Fatal(err)
	}
	var late int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM kv WHERE k = 'late'`).Scan(&late); err != nil {
		t.Fatal(err)
	}
	if late != 0 {
		t.Fatal("the statement of a caller that gave up was written")
	}
	if got := count(t, pool); got != 1 {
		t.Fatalf("%d rows, want 1", got)
	}
}

// TestRunsAloneWithItsContext: a statement that finds no batch in flight
// runs at once on its caller's goroutine, under its caller's context.
func TestRunsAloneWithItsContext(t *testing.T) {
	b, pool := newBatcher(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Exec(ctx, `INSERT INTO kv (k, v) VALUES ('cancelled', 1)`); !errors.Is(err, context.Canceled) {
		t.Fatalf("Exec with an ended context: %v", err)
	}
	if err := b.Exec(context.Background(), `INSERT INTO kv (k, v) VALUES ('alone', 1)`); err != nil {
		t.Fatal(err)
	}
	if got := count(t, pool); got != 1 {
		t.Fatalf("%d rows, want 1", got)
	}
	if batches, statements := b.Stats(); batches != 1 || statements != 1 {
		t.Fatalf("%d statements in %d batches, want 1 in 1 (the cancelled one is not sent)", statements, batches)
	}
}

// TestRegisterExportsPool: Register adds the group-commit counters and the
// pool's statistics labelled with the prefix.
func TestRegisterExportsPool(t *testing.T) {
	b, pool := newBatcher(t)
	reg := prometheus.NewRegistry()
	if err := Register(reg, "scscf", b); err != nil {
		t.Fatal(err)
	}
	if err := b.Exec(context.Background(), `INSERT INTO kv VALUES ('a', 1)`); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, n := range []string{"pgxpool_max_conns", "pgxpool_acquire_count", "pgxpool_total_conns"} {
		got[n], _ = metrictest.Value(t, reg, n, map[string]string{"pool": "scscf"})
	}
	if want := float64(pool.Config().MaxConns); got["pgxpool_max_conns"] != want {
		t.Errorf("pgxpool_max_conns{pool=\"scscf\"} = %v, want %v (all: %v)", got["pgxpool_max_conns"], want, got)
	}
	if got["pgxpool_acquire_count"] < 1 || got["pgxpool_total_conns"] < 1 {
		t.Errorf("pool statistics after one statement: %v", got)
	}
	if err := Register(prometheus.NewRegistry(), "pcscf", b); err != nil {
		t.Errorf("a second registry: %v", err)
	}
}
