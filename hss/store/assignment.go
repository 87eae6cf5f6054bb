package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Assignment is the S-CSCF serving one IMPU (TS 29.228 §6.1.2, §6.1.1
// UAA Server-Name) and the IMPU's state.
type Assignment struct {
	IMPU         string
	SCSCFName    string // SIP URI; "" when no S-CSCF is assigned
	DiameterHost string // Origin-Host of that S-CSCF (RTR/PPR go there)
	IMPI         string // IMPI it registered with; "" for unregistered services
	State        UserState
	AssignedAt   time.Time // zero when not assigned
}

// Assignment returns the S-CSCF assignment of impu (wildcard matching as
// LookupIMPU). For UAR (TS 29.228 §6.1.1: Server-Name of the assigned
// S-CSCF), LIR (§6.1.4) and Sh S-CSCFName/IMSUserState (TS 29.328 §7.6.3,
// 7.6.4). SCSCFName is "" when none. ErrNotFound for an unknown IMPU.
func (s *Store) Assignment(ctx context.Context, impu string) (a Assignment, err error) {
	err = s.conn(ctx, "Assignment", func(c *pgx.Conn) error {
		u, err := lookupIMPU(ctx, c, impu, false)
		if err != nil {
			return err
		}
		a = Assignment{IMPU: u.Identity, State: u.State}
		var at *time.Time
		err = c.QueryRow(ctx, `SELECT a.scscf_name, coalesce(a.diameter_host, ''), coalesce(i.identity, ''), a.assigned_at
			FROM scscf_assignment a LEFT JOIN impi i ON i.id = a.impi_id WHERE a.impu_id = $1`, u.ID).Scan(
			&a.SCSCFName, &a.DiameterHost, &a.IMPI, &at)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if at != nil {
			a.AssignedAt = *at
		}
		return err
	})
	return a, err
}

// SetAssignment records that the S-CSCF scscfName (Diameter host
// diameterHost) serves impu and every other IMPU of its implicit
// registration set, registered by impi ("" for unregistered services), in
// state (Registered or Unregistered), all in one transaction (SAR with
// REGISTRATION, RE_REGISTRATION or UNREGISTERED_USER, TS 29.228 §6.1.2:
// the HSS applies the SAR to the implicit set). It returns the IRS members
// after the update. ErrNotFound for an unknown IMPU or IMPI.
func (s *Store) SetAssignment(ctx context.Context, impu, scscfName, diameterHost, impi string, state UserState) (members []IMPU, err error) {
	if state != Registered && state != Unregistered {
		return nil, fmt.Errorf("hss/store: SetAssignment: state %q, want registered or unregistered", state)
	}
	if scscfName == "" {
		return nil, fmt.Errorf("hss/store: SetAssignment: empty S-CSCF name")
	}
	err = s.tx(ctx, "SetAssignment", func(tx pgx.Tx) error {
		u, err := lookupIMPU(ctx, tx, impu, true)
		if err != nil {
			return err
		}
		impiID, err := impiIDOf(ctx, tx, impi)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO scscf_assignment (impu_id, scscf_name, diameter_host, impi_id)
			SELECT id, $2, nullif($3, ''), $4 FROM impu WHERE implicit_set_id = $1
			ON CONFLICT (impu_id) DO UPDATE SET scscf_name = EXCLUDED.scscf_name,
				diameter_host = EXCLUDED.diameter_host, impi_id = EXCLUDED.impi_id,
				assigned_at = CASE WHEN scscf_assignment.scscf_name = EXCLUDED.scscf_name
					THEN scscf_assignment.assigned_at ELSE now() END`,
			u.IRSID, scscfName, diameterHost, impiID); err != nil {
			return err
		}
		members, err = collectIMPUs(tx.Query(ctx, `UPDATE impu u SET user_state = $2
			FROM service_profile p WHERE p.id = u.service_profile_id AND u.implicit_set_id = $1
			RETURNING `+impuCols, u.IRSID, string(state)))
		return err
	})
	return sortByID(members), err
}

// ClearAssignment removes the S-CSCF assignment of impu's implicit
// registration set and sets its IMPUs to NotRegistered, in one
// transaction (SAR with USER_DEREGISTRATION, TIMEOUT_DEREGISTRATION,
// ADMINISTRATIVE_DEREGISTRATION..., TS 29.228 §6.1.2; and after an RTR).
// It returns the IRS members. ErrNotFound for an unknown IMPU.
func (s *Store) ClearAssignment(ctx context.Context, impu string) (members []IMPU, err error) {
	err = s.tx(ctx, "ClearAssignment", func(tx pgx.Tx) error {
		u, err := lookupIMPU(ctx, tx, impu, true)
		if err != nil {
			return err
		}
		if err := deleteAssignments(ctx, tx, u.IRSID); err != nil {
			return err
		}
		members, err = collectIMPUs(tx.Query(ctx, `UPDATE impu u SET user_state = 'not_registered'
			FROM service_profile p WHERE p.id = u.service_profile_id AND u.implicit_set_id = $1
			RETURNING `+impuCols, u.IRSID))
		return err
	})
	return sortByID(members), err
}

// ClearPendingAssignment is ClearAssignment for SAR AUTHENTICATION_FAILURE
// and AUTHENTICATION_TIMEOUT (TS 29.228 §6.1.2): the S-CSCF name stored by
// MAR while the registration was pending is removed only if the set is
// still Not Registered when its row is locked. A registered user keeps its
// S-CSCF; so does one whose new registration completed between the failed
// attempt and this request (the UE retried at once, and its SAR
// REGISTRATION got here first). cleared tells whether anything changed.
// ErrNotFound for an unknown IMPU.
func (s *Store) ClearPendingAssignment(ctx context.Context, impu string) (members []IMPU, cleared bool, err error) {
	err = s.tx(ctx, "ClearPendingAssignment", func(tx pgx.Tx) error {
		u, err := lookupIMPU(ctx, tx, impu, true)
		if err != nil {
			return err
		}
		if u.State != NotRegistered {
			return nil
		}
		if err := deleteAssignments(ctx, tx, u.IRSID); err != nil {
			return err
		}
		cleared = true
		members, err = collectIMPUs(tx.Query(ctx, `SELECT `+impuCols+impuFrom+`WHERE u.implicit_set_id = $1`, u.IRSID))
		return err
	})
	return sortByID(members), cleared, err
}

// deleteAssignments removes the S-CSCF assignment rows of the IMPUs of
// implicit registration set irsID.
func deleteAssignments(ctx context.Context, tx pgx.Tx, irsID int64) error {
	_, err := tx.Exec(ctx, `DELETE FROM scscf_assignment a USING impu u
		WHERE a.impu_id = u.id AND u.implicit_set_id = $1`, irsID)
	return err
}

// SetUserState sets the state of impu's whole implicit registration set
// (TS 29.228 §6.1.2; e.g. SAR with USER_DEREGISTRATION_STORE_SERVER_NAME
// keeps the S-CSCF but moves to Unregistered). The assignment rows are not
// touched. ErrNotFound for an unknown IMPU.
func (s *Store) SetUserState(ctx context.Context, impu string, state UserState) (members []IMPU, err error) {
	switch state {
	case NotRegistered, Registered, Unregistered:
	default:
		return nil, fmt.Errorf("hss/store: SetUserState: unknown state %q", state)
	}
	err = s.tx(ctx, "SetUserState", func(tx pgx.Tx) error {
		u, err := lookupIMPU(ctx, tx, impu, true)
		if err != nil {
			return err
		}
		members, err = collectIMPUs(tx.Query(ctx, `UPDATE impu u SET user_state = $2
			FROM service_profile p WHERE p.id = u.service_profile_id AND u.implicit_set_id = $1
			RETURNING `+impuCols, u.IRSID, string(state)))
		return err
	})
	return sortByID(members), err
}

func sortByID(us []IMPU) []IMPU {
	for i := 1; i < len(us); i++ {
		for j := i; j > 0 && us[j].ID < us[j-1].ID; j-- {
			us[j], us[j-1] = us[j-1], us[j]
		}
	}
	return us
}

// SCSCF is one S-CSCF known to the HSS with its capabilities
// (TS 29.228 §6.1.1 UAA Server-Capabilities, TS 29.229 §6.3.10).
type SCSCF struct {
	Name                  string // SIP URI (Server-Name)
	DiameterHost          string
	MandatoryCapabilities []int32
	OptionalCapabilities  []int32
}

// SCSCFCapabilities lists the S-CSCFs, ordered by name, for the
// Server-Capabilities of a UAA when no S-CSCF is assigned (TS 29.228
// §6.1.1, TS 29.229 §6.3.10). With the user data cache live
// (userdatacache.go) the list is kept in memory until the next
// notification: the returned slice may then be shared and must not be
// modified.
func (s *Store) SCSCFCapabilities(ctx context.Context) (out []SCSCF, err error) {
	var gen uint64
	var cacheable bool
	sent := time.Now()
	if s.ud != nil {
		var cached []SCSCF
		var ok bool
		if cached, ok, gen, cacheable = s.ud.lookupCaps(); ok {
			return cached, nil
		}
	}
	defer func() {
		if err == nil && cacheable {
			s.ud.storeCaps(gen, sent, out)
		}
	}()
	err = s.conn(ctx, "SCSCFCapabilities", func(c *pgx.Conn) error {
		out = nil // a retry (Store.conn) starts over
		rows, err := c.Query(ctx, `SELECT name, coalesce(diameter_host, ''), mandatory_capabilities, optional_capabilities
			FROM scscf ORDER BY name`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var x SCSCF
			if err := rows.Scan(&x.Name, &x.DiameterHost, &x.MandatoryCapabilities, &x.OptionalCapabilities); err != nil {
				return err
			}
			out = append(out, x)
		}
		return rows.Err()
	})
	return out, err
}

// impiIDOf returns the row id of impi, nil for "" (an assignment without an
// IMPI, e.g. unregistered-state service); pgx.ErrNoRows when unknown.
func impiIDOf(ctx context.Context, tx pgx.Tx, impi string) (*int64, error) {
	if impi == "" {
		return nil, nil
	}
	var id int64
	if err := tx.QueryRow(ctx, `SELECT id FROM impi WHERE identity = $1`, impi).Scan(&id); err != nil {
		return nil, err
	}
	return &id, nil
}
