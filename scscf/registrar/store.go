package registrar

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/pgbatch"
	"github.com/imscore/imscore/scscf/binding"
)

// store writes registrations through to PostgreSQL: one row of table
// scscf_registration per registered set, the bindings as JSON (the schema
// is scscf/migrations; the S-CSCF opens the pool). The User-Data column
// is written only when a Registration carries one (a new profile).
//
// Writes go through a pgbatch.Batcher: a save still returns only once its
// row is written, but saves that arrive while one is in flight share the
// next round trip and commit.
type store struct {
	pool  *pgxpool.Pool
	batch *pgbatch.Batcher
}

func (st *store) save(ctx context.Context, r binding.Registration) error {
	contacts, err := json.Marshal(r.Contacts)
	if err != nil {
		return err
	}
	barred := r.Barred
	if barred == nil {
		barred = []string{}
	}
	return st.batch.Exec(ctx, `INSERT INTO scscf_registration (aor, impi, impus, barred, user_data, contacts, charging, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, now())
		ON CONFLICT (aor) DO UPDATE SET impi = EXCLUDED.impi, impus = EXCLUDED.impus, barred = EXCLUDED.barred,
			user_data = COALESCE(EXCLUDED.user_data, scscf_registration.user_data), contacts = EXCLUDED.contacts, charging = EXCLUDED.charging, updated_at = now()`,
		r.AOR, r.IMPI, r.IMPUs, barred, r.UserData, contacts, r.Charging.String())
}

func (st *store) delete(ctx context.Context, aor string) error {
	return st.batch.Exec(ctx, `DELETE FROM scscf_registration WHERE aor = $1`, aor)
}

func (st *store) loadAll(ctx context.Context) ([]binding.Registration, error) {
	rows, err := st.pool.Query(ctx, `SELECT aor, impi, impus, barred, user_data, contacts, charging FROM scscf_registration ORDER BY aor`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []binding.Registration
	for rows.Next() {
		var r binding.Registration
		var contacts []byte
		var charging string
		if err := rows.Scan(&r.AOR, &r.IMPI, &r.IMPUs, &r.Barred, &r.UserData, &contacts, &charging); err != nil {
			return nil, err
		}
		if charging != "" {
			if r.Charging, err = imsheader.ParsePChargingFunctionAddresses(charging); err != nil {
				return nil, fmt.Errorf("scscf_registration %s: charging: %w", r.AOR, err)
			}
		}
		if err := json.Unmarshal(contacts, &r.Contacts); err != nil {
			return nil, fmt.Errorf("scscf_registration %s: contacts: %w", r.AOR, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
