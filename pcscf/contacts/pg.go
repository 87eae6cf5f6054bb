package contacts

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"

	"github.com/imscore/imscore/pkg/pgbatch"
	"github.com/imscore/imscore/pkg/pgsession"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/tern/v2/migrate"
)

// VersionTable is the tern version table of the P-CSCF schema, separate
// from the HSS's and the S-CSCF's.
const VersionTable = "pcscf_schema_version"

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate brings the pcscf_* tables on conn to the newest version (tern,
// advisory lock; idempotent).
func Migrate(ctx context.Context, conn *pgx.Conn) error {
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return fmt.Errorf("contacts: migrator: %w", err)
	}
	if err := m.LoadMigrations(mustSub()); err != nil {
		return fmt.Errorf("contacts: load migrations: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("contacts: migrate: %w", err)
	}
	return nil
}

// PG is a Persister on PostgreSQL (table pcscf_contacts; each contact is a
// row with its JSON encoding). Writes go through a pgbatch.Batcher: each
// returns once its row is written; writes that arrive while one is in
// flight share the next round trip and commit.
type PG struct {
	pool  *pgxpool.Pool
	batch *pgbatch.Batcher
}

// OpenPG connects to dsn, runs the migrations and returns the persister.
func OpenPG(ctx context.Context, dsn string) (*PG, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("contacts: connect: %w", err)
	}
	err = Migrate(ctx, conn)
	_ = conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("contacts: dsn: %w", err)
	}
	cfg.MaxConns = 4
	// A contact row is still written before the REGISTER's 200 is
	// relayed, but its commit does not wait for the WAL fsync: a database
	// crash can lose the contacts of the last fraction of a second, whose
	// UEs register again. Key look-ups only: no sequential scans of a
	// table whose statistics lag behind a registration storm.
	pgsession.AsyncCommit(cfg.ConnConfig)
	pgsession.PreferIndexScans(cfg.ConnConfig)
	pgsession.RawSockets(cfg.ConnConfig)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("contacts: pool: %w", err)
	}
	return &PG{pool: pool, batch: pgbatch.New(pool)}, nil
}

// Writer is the group-commit writer of the contact rows (for its
// metrics, pgbatch.Register).
func (p *PG) Writer() *pgbatch.Batcher { return p.batch }

// Close closes the pool.
func (p *PG) Close() { p.pool.Close() }

// Save upserts c.
func (p *PG) Save(ctx context.Context, c *Contact) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return p.batch.Exec(ctx, `INSERT INTO pcscf_contacts (key, aor, transport, host, port, expires, data)
VALUES ($1,$2,$3,$4,$5,$6,$7)
ON CONFLICT (key) DO UPDATE SET aor=EXCLUDED.aor, transport=EXCLUDED.transport, host=EXCLUDED.host,
 port=EXCLUDED.port, expires=EXCLUDED.expires, data=EXCLUDED.data, updated_at=now()`,
		c.Key(), c.AOR, c.Flow.Transport, c.Flow.Host, c.Flow.Port, c.Expires, b)
}

// Delete removes the row of key.
func (p *PG) Delete(ctx context.Context, key string) error {
	return p.batch.Exec(ctx, `DELETE FROM pcscf_contacts WHERE key=$1`, key)
}

// LoadAll returns every stored contact.
func (p *PG) LoadAll(ctx context.Context) ([]*Contact, error) {
	rows, err := p.pool.Query(ctx, `SELECT data FROM pcscf_contacts ORDER BY key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Contact
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return nil, err
		}
		c := &Contact{}
		if err := json.Unmarshal(b, c); err != nil {
			return nil, fmt.Errorf("contacts: stored row: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// mustSub returns the migrations directory of the embedded files.
func mustSub() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory exists
	}
	return sub
}
