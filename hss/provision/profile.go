package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Profile is a service profile (TS 29.228 Annex B.2.2 ServiceProfile):
// its iFCs with an optional per-profile priority and its shared iFC sets.
type Profile struct {
	Name                     string       `json:"name" required:"true" doc:"profile name"`
	SubscribedMediaProfileID *int32       `json:"subscribed_media_profile_id,omitempty" doc:"CoreNetworkServicesAuthorization/SubscribedMediaProfileId"`
	IFCs                     []ProfileIFC `json:"ifcs" doc:"iFCs of the profile"`
	SharedIFCSets            []int32      `json:"shared_ifc_sets" doc:"shared iFC set ids (SharedIFCSetID; created when new)"`
	IMPUs                    int64        `json:"impus" access:"read" doc:"number of IMPUs using the profile"`
}

// ProfileIFC is one iFC of a Profile.
type ProfileIFC struct {
	Name     string `json:"name" required:"true" doc:"iFC name"`
	Priority *int32 `json:"priority,omitempty" doc:"priority inside this profile (default: the iFC's own)"`
}

func checkName(field, what, name string) error {
	if strings.TrimSpace(name) == "" || name != strings.TrimSpace(name) || strings.ContainsAny(name, "/\r\n\t") {
		return fieldErr(field, "%s name %q must be non-empty, without slashes, tabs or surrounding spaces", what, name)
	}
	return nil
}

func (p *Profile) validate() error {
	if err := checkName("/name", "profile", p.Name); err != nil {
		return err
	}
	if p.IFCs == nil {
		p.IFCs = []ProfileIFC{}
	}
	if p.SharedIFCSets == nil {
		p.SharedIFCSets = []int32{}
	}
	for i, f := range p.IFCs {
		if f.Priority != nil && *f.Priority < 0 {
			return fieldErr(fmt.Sprintf("/ifcs/%d/priority", i), "priority must not be negative")
		}
	}
	for i, s := range p.SharedIFCSets {
		if s < 0 {
			return fieldErr(fmt.Sprintf("/shared_ifc_sets/%d", i), "a shared iFC set id must not be negative")
		}
	}
	return nil
}

// linkProfile attaches p's iFCs and shared iFC sets to profile id (after
// removing the current ones when replace).
func linkProfile(ctx context.Context, tx pgx.Tx, id int64, p Profile, replace bool) error {
	if replace {
		if _, err := tx.Exec(ctx, `DELETE FROM service_profile_ifc WHERE service_profile_id = $1`, id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM service_profile_shared_ifc_set WHERE service_profile_id = $1`, id); err != nil {
			return err
		}
	}
	for i, f := range p.IFCs {
		tag, err := tx.Exec(ctx, `INSERT INTO service_profile_ifc (service_profile_id, ifc_id, priority)
			SELECT $1, id, $3 FROM ifc WHERE name = $2
			ON CONFLICT (service_profile_id, ifc_id) DO UPDATE SET priority = EXCLUDED.priority`, id, f.Name, f.Priority)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fieldErr(fmt.Sprintf("/ifcs/%d/name", i), "iFC %s does not exist", f.Name)
		}
	}
	for _, n := range p.SharedIFCSets {
		if _, err := tx.Exec(ctx, `INSERT INTO shared_ifc_set (id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, n, fmt.Sprintf("set-%d", n)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO service_profile_shared_ifc_set VALUES ($1, $2) ON CONFLICT DO NOTHING`, id, n); err != nil {
			return err
		}
	}
	return nil
}

var profileObj = object[Profile]{table: "service_profile", column: "name", what: "profile", get: GetProfile}

// CreateProfile creates the service profile p (Conflict when the name is
// taken, Invalid when an iFC does not exist).
func CreateProfile(ctx context.Context, db DB, p Profile) (out Profile, err error) {
	if err := p.validate(); err != nil {
		return out, err
	}
	return profileObj.create(ctx, db, p.Name, func(tx pgx.Tx) error {
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO service_profile (name, subscribed_media_profile_id) VALUES ($1, $2)
			ON CONFLICT (name) DO NOTHING RETURNING id`, p.Name, p.SubscribedMediaProfileID).Scan(&id); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return conflict("/name", "profile %s already exists", p.Name)
			}
			return err
		}
		return linkProfile(ctx, tx, id, p, false)
	})
}

// sameKey checks that the key of a replacement (empty: taken from the
// path) names the object replaced.
func sameKey(field, what string, given *string, key string) error {
	if *given == "" {
		*given = key
	}
	if *given != key {
		return fieldErr(field, "%s %s differs from the %s replaced (%s)", strings.TrimPrefix(field, "/"), *given, what, key)
	}
	return nil
}

// ReplaceProfile replaces profile name with p (same name) after check
// accepted the stored one.
func ReplaceProfile(ctx context.Context, db DB, name string, p Profile, check Check[Profile]) (out Profile, err error) {
	if err := sameKey("/name", "profile", &p.Name, name); err != nil {
		return out, err
	}
	if err := p.validate(); err != nil {
		return out, err
	}
	return profileObj.replace(ctx, db, name, check, func(tx pgx.Tx, id int64) error {
		if _, err := tx.Exec(ctx, `UPDATE service_profile SET subscribed_media_profile_id = $2 WHERE id = $1`, id, p.SubscribedMediaProfileID); err != nil {
			return err
		}
		return linkProfile(ctx, tx, id, p, true)
	})
}

// AddToProfile attaches further iFCs and shared iFC sets to profile name.
func AddToProfile(ctx context.Context, db DB, name string, ifcs []ProfileIFC, sets []int32) error {
	p := Profile{Name: name, IFCs: ifcs, SharedIFCSets: sets}
	if err := p.validate(); err != nil {
		return err
	}
	_, err := profileObj.replace(ctx, db, name, nil, func(tx pgx.Tx, id int64) error {
		return linkProfile(ctx, tx, id, p, false)
	})
	return err
}

// DeleteProfile deletes profile name after check accepted it (Conflict
// while an IMPU uses it).
func DeleteProfile(ctx context.Context, db DB, name string, check Check[Profile]) error {
	return profileObj.remove(ctx, db, name, check, func(tx pgx.Tx, id int64) error {
		var used bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM impu WHERE service_profile_id = $1)`, id).Scan(&used); err != nil {
			return err
		}
		if used {
			return conflict("/name", "profile %s is used by IMPUs", name)
		}
		return nil
	})
}

// GetProfile returns profile name (NotFound when none).
func GetProfile(ctx context.Context, db DB, name string) (Profile, error) {
	ps, _, err := listProfiles(ctx, db, `p.name = $1`, 1, name)
	return oneOf(ps, err, "profile", name)
}

// ListProfiles returns a page of service profiles ordered by name.
func ListProfiles(ctx context.Context, db DB, o ListOptions) ([]Profile, bool, error) {
	return listProfiles(ctx, db, `p.name > $1 AND p.name ILIKE $2`, o.limit(), o.After, likePattern(o.Query))
}

func listProfiles(ctx context.Context, db DB, where string, limit int, args ...any) ([]Profile, bool, error) {
	return masterDetail(ctx, db, `SELECT p.id, p.name, p.subscribed_media_profile_id,
		coalesce((SELECT array_agg(s.shared_ifc_set_id ORDER BY 1) FROM service_profile_shared_ifc_set s WHERE s.service_profile_id = p.id), '{}'),
		(SELECT count(*) FROM impu u WHERE u.service_profile_id = p.id)
		FROM service_profile p WHERE `+where+` ORDER BY p.name`, args, limit,
		func(rows pgx.Rows) (p Profile, id int64, err error) {
			err = rows.Scan(&id, &p.Name, &p.SubscribedMediaProfileID, &p.SharedIFCSets, &p.IMPUs)
			p.IFCs = []ProfileIFC{}
			return p, id, err
		},
		`SELECT x.service_profile_id, f.name, x.priority FROM service_profile_ifc x JOIN ifc f ON f.id = x.ifc_id
		WHERE x.service_profile_id = ANY($1) ORDER BY x.service_profile_id, coalesce(x.priority, f.priority), f.id`,
		func(rows pgx.Rows) (id int64, add func(*Profile), err error) {
			var f ProfileIFC
			err = rows.Scan(&id, &f.Name, &f.Priority)
			return id, func(p *Profile) { p.IFCs = append(p.IFCs, f) }, err
		})
}
