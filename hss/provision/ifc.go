package provision

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// IFC is an initial filter criteria (TS 29.228 Annex B.2.2
// InitialFilterCriteria): priority, trigger point, application server.
type IFC struct {
	Name              string `json:"name" required:"true" doc:"iFC name"`
	Priority          int32  `json:"priority" doc:"priority, lower runs first (a profile may override it)"`
	ProfilePart       string `json:"profile_part,omitempty" doc:"ProfilePartIndicator: registered or unregistered (absent: both)"`
	ApplicationServer string `json:"application_server" required:"true" doc:"name of the application server"`
	// ConditionType: cnf (groups ANDed, SPTs of a group ORed; the default)
	// or dnf (groups ORed, SPTs of a group ANDed).
	ConditionType string   `json:"condition_type,omitempty" doc:"cnf (default: groups ANDed, SPTs in a group ORed) or dnf"`
	SPTs          []SPT    `json:"spts" doc:"service point triggers; none: the iFC always applies"`
	Trigger       string   `json:"trigger" access:"read" doc:"the trigger point as a formula"`
	Profiles      []string `json:"profiles" access:"read" doc:"service profiles using the iFC"`
}

type storedSPT struct {
	SPT
	value    string
	regTypes []int16
}

func (f *IFC) validate() (ppi *int16, cnf bool, spts []storedSPT, err error) {
	if err := checkName("/name", "iFC", f.Name); err != nil {
		return nil, false, nil, err
	}
	if f.Priority < 0 {
		return nil, false, nil, fieldErr("/priority", "priority must not be negative")
	}
	switch f.ProfilePart {
	case "":
	case "registered", "0":
		v := int16(0)
		ppi = &v
	case "unregistered", "1":
		v := int16(1)
		ppi = &v
	default:
		return nil, false, nil, fieldErr("/profile_part", "profile_part must be registered or unregistered")
	}
	switch f.ConditionType {
	case "", "cnf", "CNF":
		cnf = true
	case "dnf", "DNF":
	default:
		return nil, false, nil, fieldErr("/condition_type", "condition_type must be cnf or dnf")
	}
	if f.ApplicationServer == "" {
		return nil, false, nil, fieldErr("/application_server", "application_server is required")
	}
	for i, s := range f.SPTs {
		v, rt, err := s.normalize(fmt.Sprintf("/spts/%d", i))
		if err != nil {
			return nil, false, nil, err
		}
		spts = append(spts, storedSPT{SPT: s, value: v, regTypes: rt})
	}
	return ppi, cnf, spts, nil
}

func writeIFC(ctx context.Context, tx pgx.Tx, f IFC, id *int64) error {
	ppi, cnf, spts, err := f.validate()
	if err != nil {
		return err
	}
	var asID int64
	if err := tx.QueryRow(ctx, `SELECT id FROM application_server WHERE name = $1`, f.ApplicationServer).Scan(&asID); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return fieldErr("/application_server", "application server %s does not exist", f.ApplicationServer)
		}
		return err
	}
	if *id == 0 {
		if err := tx.QueryRow(ctx, `INSERT INTO ifc (name, priority, profile_part_indicator, application_server_id, condition_type_cnf)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING id`,
			f.Name, f.Priority, ppi, asID, cnf).Scan(id); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return conflict("/name", "iFC %s already exists", f.Name)
			}
			return err
		}
	} else {
		if _, err := tx.Exec(ctx, `UPDATE ifc SET priority = $2, profile_part_indicator = $3, application_server_id = $4,
			condition_type_cnf = $5 WHERE id = $1`, *id, f.Priority, ppi, asID, cnf); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM spt WHERE ifc_id = $1`, *id); err != nil {
			return err
		}
	}
	for _, s := range spts {
		if _, err := tx.Exec(ctx, `INSERT INTO spt (ifc_id, group_id, condition_negated, type, value, content, registration_types)
			VALUES ($1, $2, $3, $4, $5, $6, $7)`, *id, s.Group, s.Negated, s.Type, s.value, s.Content, s.regTypes); err != nil {
			return err
		}
	}
	return nil
}

var ifcObj = object[IFC]{table: "ifc", column: "name", what: "iFC", get: GetIFC}

// CreateIFC creates the iFC f; with profiles, attaches it to those
// service profiles too (Invalid when one does not exist).
func CreateIFC(ctx context.Context, db DB, f IFC, profiles ...string) (out IFC, err error) {
	return ifcObj.create(ctx, db, f.Name, func(tx pgx.Tx) error {
		var id int64
		if err := writeIFC(ctx, tx, f, &id); err != nil {
			return err
		}
		for _, p := range profiles {
			if err := AddToProfile(ctx, tx, p, []ProfileIFC{{Name: f.Name}}, nil); err != nil {
				if IsNotFound(err) {
					return fieldErr("/profiles", "profile %s does not exist", p)
				}
				return err
			}
		}
		return nil
	})
}

// ReplaceIFC replaces iFC name (its trigger point too) with f after check
// accepted the stored one.
func ReplaceIFC(ctx context.Context, db DB, name string, f IFC, check Check[IFC]) (out IFC, err error) {
	if err := sameKey("/name", "iFC", &f.Name, name); err != nil {
		return out, err
	}
	return ifcObj.replace(ctx, db, name, check, func(tx pgx.Tx, id int64) error { return writeIFC(ctx, tx, f, &id) })
}

// DeleteIFC deletes iFC name (and removes it from every profile and shared
// set) after check accepted it.
func DeleteIFC(ctx context.Context, db DB, name string, check Check[IFC]) error {
	return ifcObj.remove(ctx, db, name, check, nil)
}

// GetIFC returns iFC name (NotFound when none).
func GetIFC(ctx context.Context, db DB, name string) (IFC, error) {
	fs, _, err := listIFCs(ctx, db, `f.name = $1`, 1, name)
	return oneOf(fs, err, "iFC", name)
}

// ListIFCs returns a page of iFCs ordered by name.
func ListIFCs(ctx context.Context, db DB, o ListOptions) ([]IFC, bool, error) {
	return listIFCs(ctx, db, `f.name > $1 AND f.name ILIKE $2`, o.limit(), o.After, likePattern(o.Query))
}

func listIFCs(ctx context.Context, db DB, where string, limit int, args ...any) ([]IFC, bool, error) {
	out, more, err := masterDetail(ctx, db, `SELECT f.id, f.name, f.priority, coalesce(f.profile_part_indicator, -1), a.name,
		f.condition_type_cnf, coalesce((SELECT array_agg(p.name ORDER BY p.name) FROM service_profile_ifc x
			JOIN service_profile p ON p.id = x.service_profile_id WHERE x.ifc_id = f.id), '{}')
		FROM ifc f JOIN application_server a ON a.id = f.application_server_id WHERE `+where+` ORDER BY f.name`, args, limit,
		func(rows pgx.Rows) (f IFC, id int64, err error) {
			var ppi int16
			var cnf bool
			err = rows.Scan(&id, &f.Name, &f.Priority, &ppi, &f.ApplicationServer, &cnf, &f.Profiles)
			f.ProfilePart = map[int16]string{0: "registered", 1: "unregistered"}[ppi]
			f.ConditionType = map[bool]string{true: "cnf", false: "dnf"}[cnf]
			f.SPTs = []SPT{}
			return f, id, err
		},
		`SELECT ifc_id, group_id, condition_negated, type, value, content, registration_types
		FROM spt WHERE ifc_id = ANY($1) ORDER BY ifc_id, group_id, id`,
		func(rows pgx.Rows) (id int64, add func(*IFC), err error) {
			var s SPT
			var rt []int16
			err = rows.Scan(&id, &s.Group, &s.Negated, &s.Type, &s.Value, &s.Content, &rt)
			if s.Type == "session_case" {
				if n, err := strconv.Atoi(s.Value); err == nil && n >= 0 && n < len(SessionCaseNames) {
					s.Value = SessionCaseNames[n]
				}
			}
			for _, r := range rt {
				if r >= 0 && int(r) < len(registrationTypeNames) {
					s.RegistrationTypes = append(s.RegistrationTypes, registrationTypeNames[r])
				}
			}
			return id, func(f *IFC) { f.SPTs = append(f.SPTs, s) }, err
		})
	for i := range out {
		out[i].Trigger = Formula(out[i].ConditionType == "cnf", out[i].SPTs)
	}
	return out, more, err
}
