package migrations_test

import (
	"context"
	"errors"
	"testing"

	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// impiViolations are rows (as the columns after imsu_id) that each break
// one of impi's former CHECK constraints, now checked by impi_check()
// (migration 004).
var impiViolations = []struct {
	constraint string
	set        string // an UPDATE's SET list that breaks it on a valid AKA row
	values     string // identity, k, op, op_type, amf, auth_schemes, default_scheme, digest_realm, digest_ha1, password
}{
	{"impi_identity_check", `identity = 'with space'`, `'a b', NULL, NULL, NULL, '\x8000', '{}', NULL, NULL, NULL, NULL`},
	{"impi_k_check", `k = '\x01'`, `'x', '\x01', '\x00000000000000000000000000000000', 'op', '\x8000', '{}', NULL, NULL, NULL, NULL`},
	{"impi_op_check", `op = '\x01'`, `'x', '\x00000000000000000000000000000000', '\x01', 'op', '\x8000', '{}', NULL, NULL, NULL, NULL`},
	{"impi_op_type_check", `op_type = 'xx'`, `'x', '\x00000000000000000000000000000000', '\x00000000000000000000000000000000', 'xx', '\x8000', '{}', NULL, NULL, NULL, NULL`},
	{"impi_amf_check", `amf = '\x01'`, `'x', NULL, NULL, NULL, '\x01', '{}', NULL, NULL, NULL, NULL`},
	{"impi_auth_schemes_check", `auth_schemes = '{aka,sha}'`, `'x', NULL, NULL, NULL, '\x8000', '{sha}', NULL, NULL, NULL, NULL`},
	{"impi_check", `default_scheme = 'md5'`, `'x', NULL, NULL, NULL, '\x8000', '{}', 'aka', NULL, NULL, NULL`},
	{"impi_digest_ha1_check", `digest_ha1 = 'zz', digest_realm = 'r'`, `'x', NULL, NULL, NULL, '\x8000', '{}', NULL, 'r', 'zz', NULL`},
	{"impi_check1", `op_type = NULL`, `'x', '\x00000000000000000000000000000000', NULL, NULL, '\x8000', '{}', NULL, NULL, NULL, NULL`},
	{"impi_check2", `k = NULL, op = NULL, op_type = NULL`, `'x', NULL, NULL, NULL, '\x8000', '{aka}', NULL, NULL, NULL, NULL`},
	{"impi_check3", `auth_schemes = '{aka,md5}'`, `'x', NULL, NULL, NULL, '\x8000', '{md5}', NULL, NULL, NULL, NULL`},
	{"impi_check4", `digest_realm = 'r'`, `'x', NULL, NULL, NULL, '\x8000', '{}', NULL, NULL, '00000000000000000000000000000000', NULL`},
}

const impiColumns = `imsu_id, identity, k, op, op_type, amf, auth_schemes, default_scheme, digest_realm, digest_ha1, password`

// Each former CHECK constraint of impi still rejects an INSERT and an
// UPDATE with SQLSTATE 23514 and its own name, as migration 001 made it,
// both after migration 004 and after migrating back down to 003.
func TestIMPIChecks(t *testing.T) {
	ctx := context.Background()
	_, conn := pgtest.Migrated(t)
	var imsu int64
	if err := conn.QueryRow(ctx, `INSERT INTO imsu (name) VALUES ('u') RETURNING id`).Scan(&imsu); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO impi (`+impiColumns+`) VALUES ($1, 'valid', '\x00000000000000000000000000000000',
		'\x00000000000000000000000000000000', 'op', '\x8000', '{aka}', NULL, NULL, NULL, NULL)`, imsu); err != nil {
		t.Fatalf("valid row refused: %v", err)
	}
	check := func(t *testing.T) {
		for _, v := range impiViolations {
			_, err := conn.Exec(ctx, `INSERT INTO impi (`+impiColumns+`) VALUES ($1, `+v.values+`)`, imsu)
			expectViolation(t, "INSERT", v.constraint, err)
			_, err = conn.Exec(ctx, `UPDATE impi SET `+v.set+` WHERE identity = 'valid'`)
			expectViolation(t, "UPDATE", v.constraint, err)
		}
		_, err := conn.Exec(ctx, `UPDATE impi SET sqn = -1 WHERE identity = 'valid'`)
		expectViolation(t, "UPDATE", "impi_sqn_check", err)
	}
	t.Run("004", check)

	migrateTo(t, conn, 3)
	t.Run("003", check)
	migrateTo(t, conn, 0)
	t.Run("004 again", check)
}

func expectViolation(t *testing.T, stmt, constraint string, err error) {
	t.Helper()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "23514" || pe.ConstraintName != constraint {
		t.Errorf("%s breaking %s: %v, want check_violation of %s", stmt, constraint, err, constraint)
	}
}

// An UPDATE of impi.sqn alone (MAR's SQN reservation) does not run
// impi_check(); an UPDATE of a provisioning column does.
func TestIMPICheckSkipsSQNUpdates(t *testing.T) {
	ctx := context.Background()
	_, conn := pgtest.Migrated(t)
	if _, err := conn.Exec(ctx, `WITH s AS (INSERT INTO imsu (name) VALUES ('u') RETURNING id)
		INSERT INTO impi (imsu_id, identity) SELECT id, 'valid' FROM s`); err != nil {
		t.Fatal(err)
	}
	calls := func(update string) int64 {
		t.Helper()
		var n int64
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL track_functions = 'pl'`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, update); err != nil {
				return err
			}
			return tx.QueryRow(ctx, `SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions WHERE funcname = 'impi_check'`).Scan(&n)
		})
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42501" {
			t.Skipf("SKIP: track_functions needs a superuser here: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := calls(`UPDATE impi SET sqn = sqn + 32 WHERE identity = 'valid'`); n != 0 {
		t.Errorf("SQN update ran impi_check %d times, want 0", n)
	}
	if n := calls(`UPDATE impi SET amf = '\x0000' WHERE identity = 'valid'`); n != 1 {
		t.Errorf("AMF update ran impi_check %d times, want 1", n)
	}
}
