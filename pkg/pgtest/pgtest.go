// Package pgtest gives tests throw-away PostgreSQL databases on the server
// named by DATABASE_URL (default DefaultURL). A test that cannot reach
// PostgreSQL fails; it is never skipped (CI installs and starts it).
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/imscore/imscore/migrations"
	"github.com/jackc/pgx/v5"
)

// DefaultURL is the server used when DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// ServerURL returns DATABASE_URL or DefaultURL.
func ServerURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// NewDB creates an empty database with a random name (pgtest_<hex>) on the
// server of ServerURL and returns its DSN. The database is dropped WITH
// (FORCE) when the test ends. DATABASE_URL must be a URL (postgres://...).
func NewDB(t testing.TB) string {
	t.Helper()
	admin := ServerURL()
	u, err := url.Parse(admin)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("pgtest: DATABASE_URL %q is not a postgres:// URL", admin)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	name := "pgtest_" + hex.EncodeToString(b[:])

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("pgtest: PostgreSQL at %s is unreachable (set DATABASE_URL, start the server): %v", redact(u), err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("pgtest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("pgtest: drop %s: %v", name, err)
		}
	})
	nu := *u
	nu.Path = "/" + name
	return nu.String()
}

// Migrated is NewDB followed by the project migrations (package
// migrations). It returns the DSN and one open connection to the new
// database, closed when the test ends; open a store.Pool on dsn for
// concurrent use.
func Migrated(t testing.TB) (dsn string, conn *pgx.Conn) {
	t.Helper()
	dsn = NewDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: connect %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if err := migrations.Migrate(ctx, conn); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return dsn, conn
}

// Exec runs sql (one or more statements, no parameters) on dsn's database
// over a connection of its own.
func Exec(t testing.TB, dsn, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("pgtest: %s: %v", sql, err)
	}
}

// Notified returns the notifications, as "channel/payload", that conn
// (which LISTENs) has received for everything committed before the call:
// a ping's round trip delivers them, then it waits 50 ms for more.
func Notified(t testing.TB, conn *pgx.Conn) map[string]bool {
	t.Helper()
	ctx := context.Background()
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	got := map[string]bool{}
	for {
		wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil {
			return got
		}
		got[n.Channel+"/"+n.Payload] = true
	}
}

// TerminateBackends ends every session of dsn's database except its own,
// as a PostgreSQL restart or an administrator's pg_terminate_backend
// would, and returns how many it ended.
func TerminateBackends(t testing.TB, dsn string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(context.Background())
	var n int
	// OFFSET 0 keeps the filter apart from pg_terminate_backend: no
	// session of another database, nor this one, is ended.
	err = conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM (
		SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() OFFSET 0) x`).Scan(&n)
	if err != nil {
		t.Fatalf("pgtest: terminate backends: %v", err)
	}
	return n
}

func redact(u *url.URL) string {
	c := *u
	if _, ok := c.User.Password(); ok {
		c.User = url.UserPassword(c.User.Username(), "xxx")
	}
	return strings.TrimSpace(c.String())
}

// WithParams returns URL dsn with the query parameters params
// ("k=v&k2=v2") appended.
func WithParams(dsn, params string) string {
	if strings.Contains(dsn, "?") {
		return dsn + "&" + params
	}
	return dsn + "?" + params
}

// Settings returns the session's current values of the run-time
// parameters names, read on a connection of q (a pool or a connection).
func Settings(t testing.TB, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, names ...string) []string {
	t.Helper()
	out := make([]string, len(names))
	for i, name := range names {
		if err := q.QueryRow(context.Background(), "SELECT current_setting($1)", name).Scan(&out[i]); err != nil {
			t.Fatalf("pgtest: current_setting(%s): %v", name, err)
		}
	}
	return out
}
