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
	"time"

	"github.com/imscore/imscore/pkg/pgretry"
	"github.com/imscore/imscore/pkg/pgsession"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
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

// Store runs the HSS queries on a pgxpool connection pool. It is safe for
// concurrent use. Every connection caches its prepared statements
// (pgx.QueryExecModeCacheStatement, the default), so the hot Cx queries are
// parsed and planned once per connection.
type Store struct {
	pool *pgxpool.Pool
	sqn  *sqnCache    // nil: one reservation per MAR (EnableSQNBlocks)
	ud   *udCache     // nil: no user data cache (EnableUserDataCache)
	gc   *groupCommit // nil: every hot path request is its own batch (EnableGroupCommit)
}

// DefaultLockTimeout is the session's lock_timeout unless the DSN sets
// one: a statement that waits longer for a row lock (an administrator's
// open transaction on a subscriber's row, say) fails with SQLSTATE 55P03,
// answered DIAMETER_UNABLE_TO_COMPLY. With group commit it bounds how
// long such a lock holds up a whole batch: the batch fails, and every
// other request in it succeeds when run again alone.
const DefaultLockTimeout = "500ms"

// DefaultMaxConns is the pool size used when Open/OpenLazy get maxConns < 1.
const DefaultMaxConns = 8

// PoolConfig parses dsn (a libpq URL or key=value string) into a pgxpool
// configuration of at most maxConns connections (values < 1 mean
// DefaultMaxConns), a connect timeout of at most 5 s, a health check of
// idle connections every 30 s, enable_seqscan = off unless the DSN sets
// it (pgsession.PreferIndexScans: Cx and Sh find rows by key, also in a
// registration storm on a young scscf_assignment table) and lock_timeout
// = DefaultLockTimeout unless the DSN sets it. Nothing is dialled.
func PoolConfig(dsn string, maxConns int) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("hss/store: parse DSN: %w", err)
	}
	if maxConns < 1 {
		maxConns = DefaultMaxConns
	}
	cfg.MaxConns = int32(maxConns)
	cfg.MinConns = 0
	cfg.HealthCheckPeriod = 30 * time.Second
	if cfg.ConnConfig.ConnectTimeout == 0 || cfg.ConnConfig.ConnectTimeout > 5*time.Second {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pgsession.PreferIndexScans(cfg.ConnConfig)
	pgsession.RawSockets(cfg.ConnConfig)
	pgsession.Default(cfg.ConnConfig, "lock_timeout", DefaultLockTimeout)
	return cfg, nil
}

// Open connects to dsn with a pool of at most maxConns connections
// (values < 1 mean DefaultMaxConns) and pings the server once, so that an
// unreachable database fails here. The schema must already be migrated
// (migrations.Migrate / "imsctl db migrate").
func Open(ctx context.Context, dsn string, maxConns int) (*Store, error) {
	s, err := OpenLazy(dsn, maxConns)
	if err != nil {
		return nil, err
	}
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// OpenLazy is Open without the initial connection: it only parses dsn
// (pgxpool dials on first use), so the HSS can start, and answer 5012,
// while the database is down. It fails only for a malformed dsn.
func OpenLazy(dsn string, maxConns int) (*Store, error) {
	cfg, err := PoolConfig(dsn, maxConns)
	if err != nil {
		return nil, err
	}
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("hss/store: pool: %w", err)
	}
	return &Store{pool: p}, nil
}

// New returns a Store using p (which the Store then owns: Close closes it).
func New(p *pgxpool.Pool) *Store { return &Store{pool: p} }

// Pool returns the underlying pool.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// ConnConfig returns a copy of the connection configuration (for a
// dedicated LISTEN connection outside the pool).
func (s *Store) ConnConfig() *pgx.ConnConfig { return s.pool.Config().ConnConfig.Copy() }

// Close stops the group commit lanes (after their queued jobs) and closes
// the pool; it waits for acquired connections to be released.
func (s *Store) Close() {
	s.closeGroupCommit()
	s.pool.Close()
}

// Ping checks the database answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error {
	return wrap("Ping", s.pool.Ping(ctx))
}

// conn runs fn on a pooled connection; errors other than ErrNotFound /
// the sentinels are wrapped with op. When the connection turns out to be
// dead (PostgreSQL restarted or ended the session), fn runs once more on
// a fresh one (pkg/pgretry): every fn given here may run twice, so it must
// start from scratch (no appending to what an earlier attempt gathered).
func (s *Store) conn(ctx context.Context, op string, fn func(*pgx.Conn) error) error {
	return wrap(op, s.retry(ctx, func() error { return s.onConn(ctx, fn) }))
}

// connOnce is conn without the retry, for a write that must not be
// repeated when the server may have committed it just before ending the
// session.
func (s *Store) connOnce(ctx context.Context, op string, fn func(*pgx.Conn) error) error {
	return wrap(op, s.onConn(ctx, fn))
}

func (s *Store) onConn(ctx context.Context, fn func(*pgx.Conn) error) error {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer c.Release()
	return fn(c.Conn())
}

// retry runs op, and once more over fresh connections when the first
// attempt failed on a connection PostgreSQL had ended (pgretry.Do).
func (s *Store) retry(ctx context.Context, op func() error) error {
	return pgretry.Do(ctx, s.pool, op)
}

// queryRow is the pool's QueryRow with retry: Scan runs the statement,
// again over a fresh connection when the first one was dead.
func (s *Store) queryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return retryRow{s: s, ctx: ctx, sql: sql, args: args}
}

type retryRow struct {
	s    *Store
	ctx  context.Context
	sql  string
	args []any
}

func (r retryRow) Scan(dest ...any) error {
	return r.s.retry(r.ctx, func() error { return r.s.pool.QueryRow(r.ctx, r.sql, r.args...).Scan(dest...) })
}

// exec is the pool's Exec with retry.
func (s *Store) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return pgretry.Exec(ctx, s.pool, sql, args...)
}

// retrying is the Store as a querier (QueryRow with retry), for the
// helpers that also run inside batches and transactions.
type retrying struct{ s *Store }

func (q retrying) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return q.s.queryRow(ctx, sql, args...)
}

// tx runs fn in one transaction on a pooled connection, committing when fn
// returns nil and rolling back otherwise.
func (s *Store) tx(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	return s.conn(ctx, op, func(c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, fn)
	})
}

// txOnce is tx without the retry (connOnce).
func (s *Store) txOnce(ctx context.Context, op string, fn func(pgx.Tx) error) error {
	return s.connOnce(ctx, op, func(c *pgx.Conn) error {
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
