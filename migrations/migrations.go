// Package migrations holds the HSS database schema as tern SQL migrations
// (github.com/jackc/tern/v2/migrate), embedded in the binary.
//
// Migrate brings a database to the newest version; running it again on a
// migrated database changes nothing. The applied version is kept in the
// table named by VersionTable.
package migrations

import (
	"context"
	"embed"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

// VersionTable is the table tern keeps the schema version in.
const VersionTable = "schema_version"

//go:embed *.sql
var files embed.FS

// FS returns the embedded migration files (NNN_name.sql).
func FS() embed.FS { return files }

// Migrate applies every migration newer than the database's version on
// conn, each in its own transaction, under tern's advisory lock (so two
// concurrent callers do not race). Errors name the failing migration.
func Migrate(ctx context.Context, conn *pgx.Conn) error {
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return fmt.Errorf("migrations: prepare %s: %w", VersionTable, err)
	}
	if err := m.LoadMigrations(files); err != nil {
		return fmt.Errorf("migrations: load: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}

// MigrateDSN connects to the PostgreSQL database at dsn (a libpq URL or
// key=value string), runs Migrate and disconnects.
func MigrateDSN(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("migrations: connect: %w", err)
	}
	defer conn.Close(context.Background())
	return Migrate(ctx, conn)
}

// Version returns the schema version of the database on conn (0 when no
// migration has run) and the newest version embedded in this binary.
func Version(ctx context.Context, conn *pgx.Conn) (current, latest int32, err error) {
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return 0, 0, fmt.Errorf("migrations: prepare %s: %w", VersionTable, err)
	}
	if err := m.LoadMigrations(files); err != nil {
		return 0, 0, fmt.Errorf("migrations: load: %w", err)
	}
	current, err = m.GetCurrentVersion(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("migrations: read version: %w", err)
	}
	return current, int32(len(m.Migrations)), nil
}
