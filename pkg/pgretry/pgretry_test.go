package pgretry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"

	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// warmPool opens a pool of n connections and makes sure all n are open.
func warmPool(t *testing.T, dsn string, n int) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = int32(n)
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var conns []*pgxpool.Conn
	for range n {
		c, err := pool.Acquire(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		c.Release()
	}
	return pool
}

func selectOne(ctx context.Context, pool *pgxpool.Pool) error {
	var one int
	return pool.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// The failure Do exists for: after the server ends the sessions, the
// pooled connections fail their next statement.
func TestDeadConnectionsFailWithoutRetry(t *testing.T) {
	dsn := pgtest.NewDB(t)
	pool := warmPool(t, dsn, 4)
	if n := pgtest.TerminateBackends(t, dsn); n != 4 {
		t.Fatalf("terminated %d sessions, want 4", n)
	}
	err := selectOne(context.Background(), pool)
	if err == nil {
		t.Fatal("statement on a terminated connection succeeded")
	}
	if !ConnectionLost(err) {
		t.Fatalf("ConnectionLost(%v) = false", err)
	}
}

func TestDoAfterSessionsEnded(t *testing.T) {
	dsn := pgtest.NewDB(t)
	pool := warmPool(t, dsn, 4)
	ctx := context.Background()
	for round := range 3 {
		if n := pgtest.TerminateBackends(t, dsn); n == 0 {
			t.Fatalf("round %d: no session to terminate", round)
		}
		// As many requests at once as the pool has connections: every
		// one of them may pick a dead connection.
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- Do(ctx, pool, func() error { return selectOne(ctx, pool) })
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("round %d: %v", round, err)
			}
		}
	}
}

func TestDoDoesNotRepeatStatementErrors(t *testing.T) {
	pool := warmPool(t, pgtest.NewDB(t), 1)
	ctx := context.Background()
	calls := 0
	err := Do(ctx, pool, func() error {
		calls++
		_, err := pool.Exec(ctx, "SELECT 1/0")
		return err
	})
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "22012" {
		t.Fatalf("err = %v, want division_by_zero", err)
	}
	if calls != 1 {
		t.Errorf("op ran %d times", calls)
	}
}

func TestConnectionLost(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{&pgconn.PgError{Severity: "FATAL", Code: "57P01"}, true},
		{fmt.Errorf("wrapped: %w", &pgconn.PgError{Severity: "ERROR", Code: "57P02"}), true},
		{&pgconn.PgError{Severity: "ERROR", Code: "23505"}, false},
		{&pgconn.PgError{Severity: "ERROR", Code: "40P01"}, false},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{context.Canceled, false},
		{errors.New("no rows in result set"), false},
	} {
		if got := ConnectionLost(c.err); got != c.want {
			t.Errorf("ConnectionLost(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
