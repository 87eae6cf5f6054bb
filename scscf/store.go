package scscf

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"

	"github.com/imscore/imscore/pkg/pgsession"
)

// MigrationVersionTable is the tern version table of the S-CSCF schema,
// separate from the HSS's so both can share one database.
const MigrationVersionTable = "scscf_schema_version"

//go:embed migrations/*.sql
var migrationFiles embed.FS

// openStore connects to the S-CSCF's database and applies the embedded
// migrations: the tables of the registrar (scscf_registration,
// scscf/registrar/store.go) and of the reg-event notifier
// (scscf_reg_subscription), one tern version table for both. Each writes
// its own rows on the pool.
func openStore(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
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
	pgsession.RawSockets(cfg.ConnConfig)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("scscf: database: %w", err)
	}
	if err := migrateDB(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
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

func subFS() (fs.FS, error) {
	s, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("scscf: migrations: %w", err)
	}
	return s, nil
}
