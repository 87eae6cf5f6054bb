package store

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// gcStore opens a Store with one group commit lane on a fresh database
// holding table kv (k unique, checked at commit).
func gcStore(t *testing.T) (*Store, string) {
	t.Helper()
	dsn := pgtest.NewDB(t)
	pgtest.Exec(t, dsn, `CREATE TABLE kv (k text, v int, CONSTRAINT kv_k UNIQUE (k) DEFERRABLE INITIALLY DEFERRED)`)
	s, err := Open(context.Background(), dsn, 4)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnableGroupCommit(1); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, dsn
}

// insertKV is a job inserting (k, v) and returning v.
func insertKV(s *Store, ctx context.Context, k string, v int) (got int, err error) {
	err = s.groupedRow(ctx, k, func(r pgx.Row) error { return r.Scan(&got) },
		`INSERT INTO kv (k, v) VALUES ($1, $2) RETURNING v`, k, v)
	return got, err
}

// holdLane occupies the store's only lane for d, so that jobs submitted
// meanwhile form one batch; it returns when the lane is busy.
func holdLane(t *testing.T, s *Store, d time.Duration) <-chan error {
	t.Helper()
	b0, _ := s.GroupCommitStats()
	done := make(chan error, 1)
	go func() {
		done <- s.groupedRow(context.Background(), "hold", func(r pgx.Row) error { var x any; return r.Scan(&x) },
			`SELECT pg_sleep($1::float8)`, d.Seconds())
	}()
	for {
		if b, _ := s.GroupCommitStats(); b > b0 {
			return done
		}
		time.Sleep(time.Millisecond)
	}
}

// submitWhileHeld runs fn for each of n jobs concurrently once the lane is held,
// and waits for all of them.
func submitWhileHeld(t *testing.T, s *Store, n int, fn func(i int) error) []error {
	t.Helper()
	hold := holdLane(t, s, 300*time.Millisecond)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn(i) }()
	}
	// All n queued behind the held batch before it ends.
	waitQueued(s, n)
	if err := <-hold; err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	return errs
}

func TestGroupCommitOneBatch(t *testing.T) {
	s, _ := gcStore(t)
	b0, _ := s.GroupCommitStats()
	got := make([]int, 5)
	errs := submitWhileHeld(t, s, 5, func(i int) (err error) {
		got[i], err = insertKV(s, context.Background(), string(rune('a'+i)), i)
		return err
	})
	for i, err := range errs {
		if err != nil || got[i] != i {
			t.Fatalf("job %d: %d %v", i, got[i], err)
		}
	}
	// The held batch and one batch of five.
	if b, j := s.GroupCommitStats(); b-b0 != 2 {
		t.Fatalf("%d batches (%d jobs), want 2", b-b0, j)
	}
}

// A statement that fails fails its own job only: the batch is rolled back
// and every job runs again alone.
func TestGroupCommitBadJobFailsAlone(t *testing.T) {
	s, dsn := gcStore(t)
	errs := submitWhileHeld(t, s, 4, func(i int) error {
		if i == 2 {
			return s.groupedRow(context.Background(), "bad", func(r pgx.Row) error { var x int; return r.Scan(&x) },
				`SELECT 1 / 0`)
		}
		_, err := insertKV(s, context.Background(), string(rune('a'+i)), i)
		return err
	})
	var pgErr *pgconn.PgError
	if !errors.As(errs[2], &pgErr) || pgErr.Code != "22012" {
		t.Fatalf("bad job: %v, want division_by_zero", errs[2])
	}
	for _, i := range []int{0, 1, 3} {
		if errs[i] != nil {
			t.Fatalf("job %d: %v", i, errs[i])
		}
	}
	if n := countKV(t, dsn); n != 3 {
		t.Fatalf("%d rows committed, want 3", n)
	}
}

// A job's success is reported only once its write is committed: here the
// batch's commit fails (a deferred unique check), so both jobs run again
// alone; the one whose insert holds is visible to another connection as
// soon as its caller hears of it, the other gets the violation.
func TestGroupCommitAnswersAfterCommit(t *testing.T) {
	s, dsn := gcStore(t)
	pgtest.Exec(t, dsn, `INSERT INTO kv VALUES ('taken', 0)`)
	var seen int
	errs := submitWhileHeld(t, s, 2, func(i int) error {
		k := []string{"fresh", "taken"}[i]
		if _, err := insertKV(s, context.Background(), k, 1); err != nil {
			return err
		}
		if k == "fresh" {
			seen = countKV(t, dsn)
		}
		return nil
	})
	var pgErr *pgconn.PgError
	if errs[0] != nil || !errors.As(errs[1], &pgErr) || pgErr.Code != "23505" {
		t.Fatalf("results %v, want nil and unique_violation", errs)
	}
	if seen != 2 {
		t.Fatalf("rows visible when the insert was reported done: %d, want 2", seen)
	}
}

// A row lock held elsewhere fails only the job that waits for it, after
// lock_timeout (DefaultLockTimeout): the rest of its batch succeeds when
// run again alone, long before their deadlines.
func TestGroupCommitLockedRowFailsAlone(t *testing.T) {
	s, dsn := gcStore(t)
	pgtest.Exec(t, dsn, `INSERT INTO kv VALUES ('locked', 0)`)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	tx, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE kv SET v = 9 WHERE k = 'locked'`); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	errs := submitWhileHeld(t, s, 3, func(i int) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if i == 0 {
			return s.groupedRow(ctx, "locked", func(r pgx.Row) error { var v int; return r.Scan(&v) },
				`UPDATE kv SET v = 1 WHERE k = 'locked' RETURNING v`)
		}
		_, err := insertKV(s, ctx, string(rune('a'+i)), i)
		return err
	})
	var pgErr *pgconn.PgError
	if !errors.As(errs[0], &pgErr) || pgErr.Code != "55P03" {
		t.Fatalf("locked job: %v, want lock_not_available", errs[0])
	}
	if errs[1] != nil || errs[2] != nil {
		t.Fatalf("other jobs: %v", errs[1:])
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Fatalf("took %v: the other jobs waited for their deadline", el)
	}
}

// The database ends the session in the middle of a batch (a restart, a
// fail-over, pg_terminate_backend): nothing of the batch was committed,
// every job of it runs again alone on a fresh connection and succeeds,
// and each write is there exactly once.
func TestGroupCommitSessionLostMidBatch(t *testing.T) {
	s, dsn := gcStore(t)
	b0, _ := s.GroupCommitStats()
	hold := holdLane(t, s, 300*time.Millisecond)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == 1 { // keeps the batch busy while its session is ended
				errs[i] = s.groupedRow(context.Background(), "slow", func(r pgx.Row) error { var x any; return r.Scan(&x) },
					`SELECT pg_sleep(0.5)`)
				return
			}
			_, errs[i] = insertKV(s, context.Background(), string(rune('a'+i)), i)
		}()
		// Queued in this order behind the held batch.
		waitQueued(s, i+1)
	}
	if err := <-hold; err != nil {
		t.Fatal(err)
	}
	for { // the batch of three is running
		if b, _ := s.GroupCommitStats(); b == b0+2 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	if n := pgtest.TerminateBackends(t, dsn); n == 0 {
		t.Fatal("no session to end")
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("job %d: %v", i, err)
		}
	}
	if n := countKV(t, dsn); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}
}

// A job whose deadline passed while it waited is answered with that error
// and never sent.
func TestGroupCommitExpiredWhileQueued(t *testing.T) {
	s, dsn := gcStore(t)
	errs := submitWhileHeld(t, s, 2, func(i int) error {
		ctx := context.Background()
		if i == 1 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
		}
		_, err := insertKV(s, ctx, string(rune('a'+i)), i)
		return err
	})
	if errs[0] != nil || !errors.Is(errs[1], context.DeadlineExceeded) {
		t.Fatalf("results %v, want nil and deadline exceeded", errs)
	}
	if n := countKV(t, dsn); n != 1 {
		t.Fatalf("%d rows, want 1", n)
	}
}

// Close answers every queued job before the lanes stop; later jobs fail.
func TestGroupCommitClose(t *testing.T) {
	s, dsn := gcStore(t)
	hold := holdLane(t, s, 200*time.Millisecond)
	results := make(chan error, 3)
	for i := range 3 {
		go func() { _, err := insertKV(s, context.Background(), string(rune('a'+i)), i); results <- err }()
	}
	waitQueued(s, 3)
	s.closeGroupCommit()
	<-hold
	for range 3 {
		if err := <-results; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := insertKV(s, context.Background(), "late", 9); !errors.Is(err, errStoreClosed) {
		t.Fatalf("after close: %v", err)
	}
	if n := countKV(t, dsn); n != 3 {
		t.Fatalf("%d rows, want 3", n)
	}
}

func countKV(t *testing.T, dsn string) int {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int
	if err := c.QueryRow(context.Background(), `SELECT count(*) FROM kv`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitQueued waits until the store's only lane holds n queued jobs.
func waitQueued(s *Store, n int) {
	for {
		s.gc.lanes[0].mu.Lock()
		q := len(s.gc.lanes[0].queue)
		s.gc.lanes[0].mu.Unlock()
		if q == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}
