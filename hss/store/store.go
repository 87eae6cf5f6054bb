// Package store is the HSS's PostgreSQL data access: the look-ups and
// updates the Cx (TS 29.228/29.229) and Sh (TS 29.328/29.329) procedures
// need, on the schema in /migrations.
//
// Every method takes a context, returns ErrNotFound (possibly wrapped;
// test with errors.Is) for an unknown identity, and wraps database
// failures with the method name; a Diameter server should answer those
// with DIAMETER_UNABLE_TO_COMPLY (5012).
package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Errors returned by Store methods.
var (
	// ErrNotFound: the IMPI, IMPU, AS or data asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrNoAKA: the IMPI has no K/OP (it authenticates with digest only).
	ErrNoAKA = errors.New("IMPI has no AKA credentials")
	// ErrOutOfSync: a Sh-Update of repository data carried the wrong
	// sequence number (TS 29.328 §6.1.2.1,
	// DIAMETER_ERROR_TRANSPARENT_DATA_OUT_OF_SYNC 5105).
	ErrOutOfSync = errors.New("repository data sequence number out of sync")
)

// Store runs the HSS queries on a connection pool. It is safe for
// concurrent use.
type Store struct {
	pool *Pool
}

// Open connects to dsn with a pool of at most maxConns connections
// (values < 1 mean 8). The schema must already be migrated
// (migrations.Migrate / "imsctl db migrate").
func Open(ctx context.Context, dsn string, maxConns int) (*Store, error) {
	p, err := NewPool(ctx, dsn, maxConns)
	if err != nil {
		return nil, err
	}
	return &Store{pool: p}, nil
}

// New returns a Store using p.
func New(p *Pool) *Store { return &Store{pool: p} }

// Close closes the pool.
func (s *Store) Close() { s.pool.Close() }

// Ping checks the database answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error {
	return s.conn(ctx, "Ping", func(c *pgx.Conn) error { return c.Ping(ctx) })
}

// conn runs fn on a pooled connection; errors other than ErrNotFound /
// the sentinels are wrapped with op.
func (s *Store) conn(ctx context.Context, op string, fn func(*pgx.Conn) error) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("hss/store: %s: %w", op, err)
	}
	defer s.pool.Release(c)
	return wrap(op, fn(c))
}

// tx runs fn in one transaction on a pooled connection, committing when fn
// returns nil and rolling back otherwise.
func (s *Store) tx(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	return s.conn(ctx, op, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, fn)
	})
}

func wrap(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return fmt.Errorf("hss/store: %s: %w", op, ErrNotFound)
	default:
		return fmt.Errorf("hss/store: %s: %w", op, err)
	}
}
