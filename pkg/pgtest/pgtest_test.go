package pgtest_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/imscore/imscore/migrations"
	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/jackc/pgx/v5"
)

func TestNewDBIsEmptyAndDropped(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		dsn := pgtest.NewDB(t)
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if err := conn.QueryRow(context.Background(), "SELECT current_database()").Scan(&name); err != nil {
			t.Fatal(err)
		}
	})
	conn, err := pgx.Connect(context.Background(), pgtest.ServerURL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname=$1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if name == "" || n != 0 {
		t.Fatalf("database %q still exists after cleanup (count %d)", name, n)
	}
}

// Migrations apply on a fresh database and a second run is a no-op.
func TestMigrateTwice(t *testing.T) {
	ctx := context.Background()
	dsn, conn := pgtest.Migrated(t)
	cur, latest, err := migrations.Version(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if cur != latest || cur < 1 {
		t.Fatalf("version %d, latest %d", cur, latest)
	}
	var tables int
	q := "SELECT count(*) FROM information_schema.tables WHERE table_schema='public'"
	if err := conn.QueryRow(ctx, q).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if err := migrations.MigrateDSN(ctx, dsn); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	var tables2, profiles int
	if err := conn.QueryRow(ctx, q).Scan(&tables2); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM service_profile WHERE name='default'").Scan(&profiles); err != nil {
		t.Fatal(err)
	}
	cur2, _, _ := migrations.Version(ctx, conn)
	if tables2 != tables || cur2 != cur || profiles != 1 {
		t.Fatalf("second migrate changed something: tables %d→%d version %d→%d default profiles %d", tables, tables2, cur, cur2, profiles)
	}
}

// An unreachable server fails the test (run in a child process).
func TestUnreachableFails(t *testing.T) {
	if os.Getenv("PGTEST_CHILD") == "1" {
		pgtest.NewDB(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestUnreachableFails$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PGTEST_CHILD=1", "DATABASE_URL=postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unreachable") || strings.Contains(string(out), "SKIP") {
		t.Fatalf("child did not fail clearly: err=%v\n%s", err, out)
	}
}

// TestCPUSeconds checks that the CPU a query burns in its back end shows up
// for its database and for the whole server, and not for another database.
func TestCPUSeconds(t *testing.T) {
	dsn := pgtest.NewDB(t)
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var db string
	if err := conn.QueryRow(context.Background(), `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	self0, ours0 := pgtest.CPUSeconds(db)
	_, other0 := pgtest.CPUSeconds("no_such_database")
	// About half a second of back-end CPU.
	if _, err := conn.Exec(context.Background(), `SELECT count(*) FROM generate_series(1, 5000000) g WHERE g % 7 = 3`); err != nil {
		t.Fatal(err)
	}
	self1, ours1 := pgtest.CPUSeconds(db)
	_, all1 := pgtest.CPUSeconds("")
	_, other1 := pgtest.CPUSeconds("no_such_database")
	if ours1-ours0 < 0.1 {
		t.Errorf("back ends of %s: %.2f s CPU for the query, want ≥ 0.1", db, ours1-ours0)
	}
	// The whole server's total includes our back end, read just before
	// (its CPU only grows). Deltas of the whole server are not compared:
	// back ends of other tests' databases may exit between two readings.
	if all1 < ours1 {
		t.Errorf("whole server %.2f s < one database's %.2f s", all1, ours1)
	}

	if other0 != 0 || other1 != 0 {
		t.Errorf("a database with no back ends counts %.2f / %.2f s", other0, other1)
	}
	if self1 < self0 {
		t.Errorf("own CPU %.2f then %.2f s", self0, self1)
	}
	// A fixed amount of work (about 0.3 s of CPU on the 2-core machine),
	// so that a loaded machine only makes it take longer.
	x := uint64(1)
	for range 300_000_000 {
		x = x*6364136223846793005 + 1442695040888963407
	}
	if self2, _ := pgtest.CPUSeconds(db); self2-self1 < 0.05 {
		t.Errorf("own CPU %.2f s after a busy loop (%d)", self2-self1, x&1)
	}
}
