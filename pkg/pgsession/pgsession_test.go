package pgsession_test

import (
	"context"
	"testing"

	"github.com/imscore/imscore/pkg/pgsession"
	"github.com/imscore/imscore/pkg/pgtest"
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
