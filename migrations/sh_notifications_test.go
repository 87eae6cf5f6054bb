package migrations_test

import (
	"context"
	"testing"

	"github.com/imscore/imscore/migrations"
	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

// Migration 005: queued PNRs go with their subscription, the queue and
// subscription changes NOTIFY hss_sh (and IMPI↔IMPU changes hss_userdata),
// a digest is 32 bytes; it migrates down to 004 and up again.
func TestShNotificationsMigration(t *testing.T) {
	ctx := context.Background()
	dsn, conn := pgtest.Migrated(t)
	l, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	for _, ch := range []string{"hss_sh", "hss_userdata"} {
		if _, err := l.Exec(ctx, "LISTEN "+ch); err != nil {
			t.Fatal(err)
		}
	}
	notified := func() map[string]bool { t.Helper(); return pgtest.Notified(t, l) }
	exec := func(q string) {
		t.Helper()
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`INSERT INTO imsu (name) VALUES ('u')`)
	exec(`INSERT INTO impi (imsu_id, identity) SELECT id, 'u@ims' FROM imsu`)
	exec(`INSERT INTO implicit_registration_set DEFAULT VALUES`)
	exec(`INSERT INTO impu (identity, service_profile_id, implicit_set_id)
		SELECT 'sip:u@ims', p.id, s.id FROM service_profile p, implicit_registration_set s`)
	exec(`INSERT INTO application_server (name, server_name, diameter_host) VALUES ('as', 'sip:as', 'as.ims')`)
	notified()
	exec(`INSERT INTO impi_impu SELECT i.id, u.id FROM impi i, impu u`)
	if got := notified(); !got["hss_userdata/impi_impu"] {
		t.Fatalf("impi_impu insert: %v", got)
	}
	exec(`INSERT INTO sh_subscription (impu_id, application_server_id, data_reference, identity_sets)
		SELECT u.id, a.id, 10, '{1,2}' FROM impu u, application_server a`)
	if got := notified(); !got["hss_sh/sh_subscription"] {
		t.Fatalf("subscription insert: %v", got)
	}
	exec(`INSERT INTO sh_notification (subscription_id, user_data) SELECT id, '<Sh-Data/>' FROM sh_subscription`)
	if got := notified(); !got["hss_sh/sh_notification"] || got["hss_sh/sh_subscription"] {
		t.Fatalf("queue insert: %v", got)
	}
	if _, err := conn.Exec(ctx, `UPDATE sh_subscription SET notified_digest = '\x01'`); err == nil {
		t.Fatal("a digest of 1 byte was accepted")
	}
	if _, err := conn.Exec(ctx, `UPDATE sh_subscription SET identity_sets = '{4}'`); err == nil {
		t.Fatal("Identity-Set 4 was accepted")
	}
	exec(`DELETE FROM sh_subscription WHERE expires_at <= now()`)
	if got := notified(); len(got) != 0 {
		t.Fatalf("a purge that deleted nothing notified %v", got)
	}
	exec(`DELETE FROM sh_subscription`)
	if got := notified(); !got["hss_sh/sh_subscription"] {
		t.Fatalf("subscription delete: %v", got)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM sh_notification`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d queued PNRs left after their subscription, %v", n, err)
	}

	migrateTo(t, conn, 4)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('sh_notification') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Fatalf("sh_notification after migrating down: %v %v", exists, err)
	}
	migrateTo(t, conn, 0)
}

// migrateTo migrates the database of conn to version v (0: the newest).
func migrateTo(t *testing.T, conn *pgx.Conn, v int32) {
	t.Helper()
	ctx := context.Background()
	m, err := migrate.NewMigrator(ctx, conn, migrations.VersionTable)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.LoadMigrations(migrations.FS()); err != nil {
		t.Fatal(err)
	}
	if v == 0 {
		v = int32(len(m.Migrations))
	}
	if err := m.MigrateTo(ctx, v); err != nil {
		t.Fatal(err)
	}
}
