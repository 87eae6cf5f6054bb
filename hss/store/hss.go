package store

// Queries the running HSS needs beyond the provisioning-oriented ones in
// the other files: the MAR "registration pending" assignment, LIR's unregistered-services test,
// SAA Associated-Identities and the hss_command queue (RTR/PPR requests).

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// pendingUpsert stores S-CSCF $NAME (Diameter host $HOST) for every IMPU
// of implicit registration set $IRS, recording IMPI id $IMPI when it is not
// NULL, without touching the user state: the MAR "registration pending"
// write (TS 29.228 §6.3.1). Lock order is by IMPU id, as assignSQL.
const pendingUpsert = `INSERT INTO scscf_assignment (impu_id, scscf_name, diameter_host, impi_id)
	SELECT m.id, $NAME, nullif($HOST, ''), $IMPI FROM impu m WHERE m.implicit_set_id = $IRS AND $COND
	ORDER BY m.id
	ON CONFLICT (impu_id) DO UPDATE SET scscf_name = EXCLUDED.scscf_name,
		diameter_host = EXCLUDED.diameter_host, impi_id = coalesce(EXCLUDED.impi_id, scscf_assignment.impi_id),
		assigned_at = now()`

// setPendingSQL is SetPendingAssignment in one statement: IMPU $1
// (resolved as pairSQL), S-CSCF $2, Diameter host $3, IMPI $4 (empty for
// none). It returns whether the IMPU and the IMPI exist and the previous
// S-CSCF name; it writes only when both exist and the name changes.
var setPendingSQL = `WITH ` + strings.ReplaceAll(impuIRSCTE, "$IMPU", "$1") + `, i AS (SELECT id FROM impi WHERE identity = $4),
prev AS (SELECT x.scscf_name FROM ux JOIN scscf_assignment x ON x.impu_id = ux.id),
p AS (` + strings.NewReplacer("$NAME", "$2", "$HOST", "$3", "$IMPI", "(SELECT id FROM i)", "$IRS", "(SELECT irs FROM ux)",
	"$COND", "($4 = '' OR EXISTS (SELECT 1 FROM i)) AND (SELECT scscf_name FROM prev) IS DISTINCT FROM $2").Replace(pendingUpsert) + `
	RETURNING impu_id)
SELECT EXISTS (SELECT 1 FROM ux), $4 = '' OR EXISTS (SELECT 1 FROM i), coalesce((SELECT scscf_name FROM prev), '')`

// SetPendingAssignment stores scscfName (Diameter host diameterHost) as the
// S-CSCF of impu's implicit registration set without changing the user
// state (TS 29.228 §6.3.1: on MAR the HSS stores the S-CSCF name while the
// registration is pending; a different stored name is overwritten). The
// IMPI is recorded when given. It returns the previous S-CSCF name of impu
// ("" when none). ErrNotFound for an unknown IMPU, or an unknown IMPI when
// the name changes. One atomic statement.
func (s *Store) SetPendingAssignment(ctx context.Context, impu, scscfName, diameterHost, impi string) (previous string, err error) {
	if scscfName == "" {
		return "", fmt.Errorf("hss/store: SetPendingAssignment: empty S-CSCF name")
	}
	var impuOK, impiOK bool
	err = s.queryRow(ctx, setPendingSQL, impu, scscfName, diameterHost, impi).Scan(&impuOK, &impiOK, &previous)
	switch {
	case err != nil:
	case !impuOK:
		err = pgx.ErrNoRows
	case previous != scscfName && !impiOK:
		err = pgx.ErrNoRows
	}
	return previous, wrap("SetPendingAssignment", err)
}

// HasUnregisteredServices reports whether impu has services for the
// unregistered state (TS 29.228 §6.1.4.1, LIR): it is a PSI, or its
// service profile holds an iFC whose ProfilePartIndicator is absent or
// UNREGISTERED. ErrNotFound for an unknown IMPU.
func (s *Store) HasUnregisteredServices(ctx context.Context, impu string) (ok bool, err error) {
	err = s.conn(ctx, "HasUnregisteredServices", func(c *pgx.Conn) error {
		u, err := lookupIMPU(ctx, c, impu, false)
		if err != nil {
			return err
		}
		if u.Type == DistinctPSI || u.Type == WildcardedPSI {
			ok = u.PSIActivation
			return nil
		}
		return c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM service_profile_ifc x JOIN ifc f ON f.id = x.ifc_id
			WHERE x.service_profile_id = $1 AND (f.profile_part_indicator IS NULL OR f.profile_part_indicator = 1))`,
			u.ServiceProfileID).Scan(&ok)
	})
	return ok, err
}

// AssociatedIMPIs returns the private identities of the subscription (IMSU)
// that owns impi, other than impi itself, ordered by id (SAA
// Associated-Identities, TS 29.228 §6.1.2, TS 29.229 §6.3.33).
func (s *Store) AssociatedIMPIs(ctx context.Context, impi string) (out []string, err error) {
	err = s.conn(ctx, "AssociatedIMPIs", func(c *pgx.Conn) error {
		rows, err := c.Query(ctx, `SELECT o.identity FROM impi i JOIN impi o ON o.imsu_id = i.imsu_id
			WHERE i.identity = $1 AND o.id <> i.id ORDER BY o.id`, impi)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return out, err
}

// Command is one row of hss_command: an operator request for the running
// HSS (kind "rtr": Registration-Termination, TS 29.228 §6.1.3; "ppr":
// Push-Profile, §6.2.2).
type Command struct {
	ID        int64
	Kind      string
	IMPU      string
	Reason    string
	CreatedAt time.Time
}

// PendingCommands returns up to limit commands not yet done, oldest first.
func (s *Store) PendingCommands(ctx context.Context, limit int) (out []Command, err error) {
	err = s.conn(ctx, "PendingCommands", func(c *pgx.Conn) error {
		out = nil // a retry (Store.conn) starts over
		rows, err := c.Query(ctx, `SELECT id, kind, impu, reason, created_at FROM hss_command
			WHERE done_at IS NULL ORDER BY id LIMIT $1`, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var x Command
			if err := rows.Scan(&x.ID, &x.Kind, &x.IMPU, &x.Reason, &x.CreatedAt); err != nil {
				return err
			}
			out = append(out, x)
		}
		return rows.Err()
	})
	return out, err
}

// CommandDone marks a command done. ErrNotFound when it does not exist or
// was already done.
func (s *Store) CommandDone(ctx context.Context, id int64) error {
	return s.conn(ctx, "CommandDone", func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `UPDATE hss_command SET done_at = now() WHERE id = $1 AND done_at IS NULL`, id)
		if err == nil && tag.RowsAffected() == 0 {
			err = pgx.ErrNoRows
		}
		return err
	})
}

// CommandID parses the payload of a hss_commands notification.
func CommandID(payload string) (int64, error) {
	return strconv.ParseInt(payload, 10, 64)
}

// Credentials returns the AKA secrets of impi and its last SQN without
// reserving anything (to verify AUTS before ResyncSQN, TS 33.102 §6.3.5).
// ErrNotFound for an unknown IMPI, ErrNoAKA when it has no K/OP.
func (s *Store) Credentials(ctx context.Context, impi string) (cr AKACredentials, err error) {
	err = s.conn(ctx, "Credentials", func(c *pgx.Conn) error {
		var k, op, amf []byte
		var opType *string
		var sqn int64
		if err := c.QueryRow(ctx, `SELECT k, op, op_type, amf, sqn FROM impi WHERE identity = $1`,
			impi).Scan(&k, &op, &opType, &amf, &sqn); err != nil {
			return err
		}
		if len(k) != 16 || len(op) != 16 || len(amf) != 2 || opType == nil {
			return ErrNoAKA
		}
		cr = AKACredentials{IMPI: impi, OPIsOPc: *opType == "opc", SQN: uint64(sqn)}
		copy(cr.K[:], k)
		copy(cr.OP[:], op)
		copy(cr.AMF[:], amf)
		return nil
	})
	return cr, err
}

// IMPIsOfIMPU returns the private identities associated with impu (wildcard
// matching as LookupIMPU), ordered by id; RTR needs one as User-Name
// (TS 29.228 §6.1.3). ErrNotFound for an unknown IMPU.
func (s *Store) IMPIsOfIMPU(ctx context.Context, impu string) (out []string, err error) {
	err = s.conn(ctx, "IMPIsOfIMPU", func(c *pgx.Conn) error {
		u, err := lookupIMPU(ctx, c, impu, false)
		if err != nil {
			return err
		}
		rows, err := c.Query(ctx, `SELECT i.identity FROM impi i JOIN impi_impu x ON x.impi_id = i.id
			WHERE x.impu_id = $1 ORDER BY i.id`, u.ID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	return out, err
}
