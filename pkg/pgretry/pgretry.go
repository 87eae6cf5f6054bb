// Package pgretry runs a PostgreSQL operation a second time when the first
// attempt failed only because the server had ended the connection: a
// PostgreSQL restart or fail-over, or an administrator's
// pg_terminate_backend, leaves every pooled connection dead, and without a
// retry each of them would fail one request (a Diameter 5012, a SIP 500)
// before the pool notices.
//
// Only operations that may safely run twice belong here: idempotent
// upserts and deletes, reads, and writes whose repetition is harmless
// (the HSS's SQN reservation then skips a few SQNs, which TS 33.102
// Annex C allows). A statement the server may have committed just before
// it ended the session is exactly such a case.
package pgretry

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Do runs op; if op fails with ConnectionLost and ctx is still live, it
// drops every idle connection of pool (pgxpool.Pool.Reset: they died with
// the same server session end, and connections in use are closed when
// released) and runs op once more, returning that attempt's error. Any
// other result of the first attempt is returned as it is.
func Do(ctx context.Context, pool *pgxpool.Pool, op func() error) error {
	err := op()
	if err == nil || !ConnectionLost(err) || ctx.Err() != nil {
		return err
	}
	pool.Reset()
	return op()
}

// Exec is pool.Exec under Do: the statement must be safe to run twice.
func Exec(ctx context.Context, pool *pgxpool.Pool, sql string, args ...any) (tag pgconn.CommandTag, err error) {
	err = Do(ctx, pool, func() error {
		tag, err = pool.Exec(ctx, sql, args...)
		return err
	})
	return tag, err
}

// ConnectionLost reports whether err means the connection was gone rather
// than that the statement itself failed: the request never reached the
// server (pgconn.SafeToRetry), the server ended the session (a FATAL
// error, e.g. SQLSTATE 57P01 admin_shutdown, 57P02 crash_shutdown), or the
// socket was closed or reset under the statement.
func ConnectionLost(err error) bool {
	if err == nil {
		return false
	}
	if pgconn.SafeToRetry(err) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Severity == "FATAL" || pgErr.Severity == "PANIC" ||
			pgErr.Code == "57P01" || pgErr.Code == "57P02"
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
