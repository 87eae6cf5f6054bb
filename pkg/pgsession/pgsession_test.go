package pgsession_test

import (
	"context"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/pgsession"
	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/imscore/imscore/pkg/rawsock"
	"github.com/jackc/pgx/v5"
)

// show connects with cfg and returns the session's value of name.
func show(t *testing.T, cfg *pgx.ConnConfig, name string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	return pgtest.Settings(t, conn, name)[0]
}

func TestDefaultsApplyUnlessTheDSNChooses(t *testing.T) {
	dsn := pgtest.NewDB(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if got := show(t, cfg.Copy(), "enable_seqscan"); got != "on" {
		t.Fatalf("server default enable_seqscan = %q, want on (test precondition)", got)
	}
	pgsession.PreferIndexScans(cfg)
	pgsession.AsyncCommit(cfg)
	if got := show(t, cfg.Copy(), "enable_seqscan"); got != "off" {
		t.Errorf("PreferIndexScans: enable_seqscan = %q, want off", got)
	}
	if got := show(t, cfg.Copy(), "synchronous_commit"); got != "off" {
		t.Errorf("AsyncCommit: synchronous_commit = %q, want off", got)
	}

	// The DSN's choice wins.
	cfg, err = pgx.ParseConfig(pgtest.WithParams(dsn, "enable_seqscan=on&synchronous_commit=on"))
	if err != nil {
		t.Fatal(err)
	}
	pgsession.PreferIndexScans(cfg)
	pgsession.AsyncCommit(cfg)
	if got := show(t, cfg, "enable_seqscan"); got != "on" {
		t.Errorf("DSN enable_seqscan=on: got %q", got)
	}
	if got := show(t, cfg, "synchronous_commit"); got != "on" {
		t.Errorf("DSN synchronous_commit=on: got %q", got)
	}
}

// On raw sockets a connection still queries, and a context that ends
// mid-query still cancels it (pgx sets a deadline on the connection);
// the connection under pgx is rawsock's. A configuration without a
// dialler gets one.
func TestRawSocketsQueryAndCancel(t *testing.T) {
	dsn := pgtest.NewDB(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	pgsession.RawSockets(cfg)
	ctx := context.Background()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, ok := conn.PgConn().Conn().(*rawsock.Conn); !ok {
		t.Fatalf("pgx runs on %T, want *rawsock.Conn", conn.PgConn().Conn())
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM generate_series(1, 100000)").Scan(&n); err != nil || n != 100000 {
		t.Fatalf("query: %d, %v", n, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = conn.Exec(cctx, "SELECT pg_sleep(10)")
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("pg_sleep(10) under a 100-ms context: %v after %v", err, time.Since(start))
	}

	bare := cfg.Copy()
	bare.DialFunc = nil
	pgsession.RawSockets(bare)
	c2, err := pgx.ConnectConfig(ctx, bare)
	if err != nil {
		t.Fatal(err)
	}
	c2.Close(ctx)
}
