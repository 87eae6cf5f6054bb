package scscf

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/imscore/imscore/pkg/pgretry"
	"github.com/imscore/imscore/pkg/pgsession"
	"github.com/imscore/imscore/scscf/binding"
)

// MigrationVersionTable is the tern version table of the S-CSCF schema,
// separate from the HSS's so both can share one database.
const MigrationVersionTable = "scscf_schema_version"

//go:embed migrations/*.sql
var migrationFiles embed.FS

// store writes registrations through to PostgreSQL (table
// scscf_registration).
type store struct {
	pool *pgxpool.Pool
}

// openStore connects, applies the embedded migrations and returns the store.
func openStore(ctx context.Context, dsn string) (*store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("scscf: database-url: %w", err)
	}
	if cfg.MaxConns < 8 {
		cfg.MaxConns = 8
	}
	// Bindings are re-created by re-registration: no fsync wait per
	// commit. Key look-ups only: no sequential scans of a table whose
	// statistics lag behind a registration storm.
	pgsession.AsyncCommit(cfg.ConnConfig)
	pgsession.PreferIndexScans(cfg.ConnConfig)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("scscf: database: %w", err)
	}
	if err := migrateDB(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return &store{pool: pool}, nil
}

func migrateDB(ctx context.Context, pool *pgxpool.Pool) error {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("scscf: database: %w", err)
	}
	defer c.Release()
	m, err := migrate.NewMigrator(ctx, c.Conn(), MigrationVersionTable)
	if err != nil {
		return fmt.Errorf("scscf: migrations: %w", err)
	}
	sub, err := subFS()
	if err != nil {
		return err
	}
	if err := m.LoadMigrations(sub); err != nil {
		return fmt.Errorf("scscf: migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("scscf: migrations: %w", err)
	}
	return nil
}

func (st *store) close() { st.pool.Close() }

func (st *store) save(ctx context.Context, r binding.Registration) error {
	contacts, err := json.Marshal(r.Contacts)
	if err != nil {
		return err
	}
	barred := r.Barred
	if barred == nil {
		barred = []string{}
	}
	_, err = pgretry.Exec(ctx, st.pool, `INSERT INTO scscf_registration (aor, impi, impus, barred, user_data, contacts, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, now())
		ON CONFLICT (aor) DO UPDATE SET impi = EXCLUDED.impi, impus = EXCLUDED.impus, barred = EXCLUDED.barred,
			user_data = EXCLUDED.user_data, contacts = EXCLUDED.contacts, updated_at = now()`,
		r.AOR, r.IMPI, r.IMPUs, barred, r.UserData, contacts)
	return err
}

func (st *store) delete(ctx context.Context, aor string) error {
	_, err := pgretry.Exec(ctx, st.pool, `DELETE FROM scscf_registration WHERE aor = $1`, aor)
	return err
}

func (st *store) loadAll(ctx context.Context) ([]binding.Registration, error) {
	rows, err := st.pool.Query(ctx, `SELECT aor, impi, impus, barred, user_data, contacts FROM scscf_registration ORDER BY aor`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []binding.Registration
	for rows.Next() {
		var r binding.Registration
		var contacts []byte
		if err := rows.Scan(&r.AOR, &r.IMPI, &r.IMPUs, &r.Barred, &r.UserData, &contacts); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(contacts, &r.Contacts); err != nil {
			return nil, fmt.Errorf("scscf_registration %s: contacts: %w", r.AOR, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func subFS() (fs.FS, error) {
	s, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("scscf: migrations: %w", err)
	}
	return s, nil
}
