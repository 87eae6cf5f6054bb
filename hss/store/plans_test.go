package store

import (
	"context"
	"strings"
	"testing"

	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/jackc/pgx/v5"
)

// TestHotPathPlansUseIndexesOnYoungTables: scscf_assignment analysed
// while empty (autovacuum on a young system) must not make the Cx hot
// path's statements scan it sequentially, which would cost every UAR,
// MAR and SAR of a registration storm a scan of the whole growing table
// until the next automatic analysis (PoolConfig: enable_seqscan = off).
func TestHotPathPlansUseIndexesOnYoungTables(t *testing.T) {
	dsn, _ := pgtest.Migrated(t)
	ctx := context.Background()
	pgtest.Exec(t, dsn, `WITH s AS (INSERT INTO imsu (name) VALUES ('young') RETURNING id),
		r AS (INSERT INTO implicit_registration_set DEFAULT VALUES RETURNING id),
		i AS (INSERT INTO impi (imsu_id, identity, auth_schemes, password) SELECT id, 'young@ims', '{md5}', 'pw' FROM s RETURNING id),
		u AS (INSERT INTO impu (identity, service_profile_id, implicit_set_id)
			SELECT 'sip:young@ims', (SELECT id FROM service_profile WHERE name = 'default'), id FROM r RETURNING id)
		INSERT INTO impi_impu SELECT i.id, u.id FROM i, u`)
	pgtest.Exec(t, dsn, "ANALYZE scscf_assignment")

	statements := []struct {
		name string
		sql  string
		args []any
	}{
		{"UAR/LIR pair look-up", pairSQL, []any{"young@ims", "sip:young@ims"}},
		{"MAR pair + SQN reservation + pending S-CSCF", pairReserveSQL,
			[]any{"young@ims", "sip:young@ims", int64(1), "", "sip:scscf@ims", "scscf.ims"}},
		{"SAR pair + assignment", pairAssignSQL, []any{"young@ims", "sip:young@ims", "sip:scscf@ims", "scscf.ims", "registered"}},
	}
	plan := func(q interface {
		Query(context.Context, string, ...any) (pgx.Rows, error)
	}, sql string, args []any) string {
		t.Helper()
		rows, err := q.Query(ctx, "EXPLAIN (COSTS OFF) "+sql, args...)
		if err != nil {
			t.Fatal(err)
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		return strings.Join(lines, "\n")
	}
	const seqScan = "Seq Scan on scscf_assignment"

	// Control: without the setting this PostgreSQL does scan the table.
	plain, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(ctx)
	if p := plan(plain, pairSQL, statements[0].args); !strings.Contains(p, seqScan) {
		t.Skipf("this PostgreSQL plans an index scan on the empty analysed table even without enable_seqscan = off; nothing to show:\n%s", p)
	}

	st, err := Open(ctx, dsn, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, s := range statements {
		if p := plan(st.Pool(), s.sql, s.args); strings.Contains(p, seqScan) {
			t.Errorf("%s scans scscf_assignment sequentially on the HSS's connections:\n%s", s.name, p)
		}
	}
}
