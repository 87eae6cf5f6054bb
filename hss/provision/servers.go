package provision

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/imscore/imscore/hss/store"
)

// AppServer is an application server (TS 29.228 Annex B.2.2
// ApplicationServer) with its Sh permissions (TS 29.328 §6.1, per
// Data-Reference: which of UDR, PUR, SNR it may send).
type AppServer struct {
	Name                    string `json:"name" required:"true" doc:"application server name"`
	ServerName              string `json:"server_name" required:"true" doc:"SIP URI of the AS (ServerName)"`
	DefaultHandling         string `json:"default_handling,omitempty" doc:"continue (default) or terminate"`
	ServiceInfo             string `json:"service_info,omitempty" doc:"ServiceInfo text"`
	IncludeRegisterRequest  bool   `json:"include_register_request" doc:"third-party REGISTER carries the REGISTER"`
	IncludeRegisterResponse bool   `json:"include_register_response" doc:"third-party REGISTER carries the 200"`
	DiameterHost            string `json:"diameter_host,omitempty" doc:"Origin-Host of the AS on Sh (absent: no Sh access)"`
	// Sh maps a Data-Reference name (TS 29.328: RepositoryData,
	// IMSPublicIdentity, IMSUserState, S-CSCFName, ...) or number to the
	// requests allowed for it (udr, pur, snr).
	Sh map[string][]string `json:"sh_permissions,omitempty" doc:"Data-Reference name or number → allowed requests (udr, pur, snr)"`
}

type shPerm struct {
	ref           store.DataReference
	udr, pur, snr bool
}

func (a *AppServer) validate() (dh int16, perms []shPerm, err error) {
	if err := checkName("/name", "application server", a.Name); err != nil {
		return 0, nil, err
	}
	if !isSIPURI(a.ServerName) {
		return 0, nil, fieldErr("/server_name", "server_name %q must be a sip: or sips: URI", a.ServerName)
	}
	switch strings.ToLower(a.DefaultHandling) {
	case "", "continue", "session_continued", "0":
	case "terminate", "session_terminated", "1":
		dh = 1
	default:
		return 0, nil, fieldErr("/default_handling", "default_handling must be continue or terminate")
	}
	refs := make([]string, 0, len(a.Sh))
	for r := range a.Sh {
		refs = append(refs, r)
	}
	sort.Strings(refs)
	for _, ref := range refs {
		d, ok := store.DataReferenceNames[ref]
		if !ok {
			if n, err := strconv.Atoi(ref); err == nil && n >= 0 && n < 64 {
				d, ok = store.DataReference(n), true
			}
		}
		if !ok {
			var names []string
			for n := range store.DataReferenceNames {
				names = append(names, n)
			}
			sort.Strings(names)
			return 0, nil, fieldErr("/sh_permissions/"+ref, "unknown data reference %q (known: %s or a number)", ref, strings.Join(names, ", "))
		}
		p := shPerm{ref: d}
		for _, o := range a.Sh[ref] {
			switch strings.ToLower(strings.TrimSpace(o)) {
			case "udr":
				p.udr = true
			case "pur":
				p.pur = true
			case "snr":
				p.snr = true
			default:
				return 0, nil, fieldErr("/sh_permissions/"+ref, "%q is not udr, pur or snr", o)
			}
		}
		perms = append(perms, p)
	}
	return dh, perms, nil
}

func writeAS(ctx context.Context, tx pgx.Tx, a AppServer, id *int64) error {
	dh, perms, err := a.validate()
	if err != nil {
		return err
	}
	if *id == 0 {
		if err := tx.QueryRow(ctx, `INSERT INTO application_server (name, server_name, default_handling, service_info,
			include_register_request, include_register_response, diameter_host)
			VALUES ($1, $2, $3, nullif($4, ''), $5, $6, nullif($7, '')) ON CONFLICT (name) DO NOTHING RETURNING id`,
			a.Name, a.ServerName, dh, a.ServiceInfo, a.IncludeRegisterRequest, a.IncludeRegisterResponse,
			a.DiameterHost).Scan(id); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return conflict("/name", "application server %s already exists", a.Name)
			}
			return err
		}
	} else {
		if _, err := tx.Exec(ctx, `UPDATE application_server SET server_name = $2, default_handling = $3,
			service_info = nullif($4, ''), include_register_request = $5, include_register_response = $6,
			diameter_host = nullif($7, '') WHERE id = $1`, *id, a.ServerName, dh, a.ServiceInfo, a.IncludeRegisterRequest,
			a.IncludeRegisterResponse, a.DiameterHost); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM as_permission WHERE application_server_id = $1`, *id); err != nil {
			return err
		}
	}
	for _, p := range perms {
		if _, err := tx.Exec(ctx, `INSERT INTO as_permission VALUES ($1, $2, $3, $4, $5)`, *id, int16(p.ref), p.udr, p.pur, p.snr); err != nil {
			return err
		}
	}
	return nil
}

var asObj = object[AppServer]{table: "application_server", column: "name", what: "application server", get: GetAS}

// CreateAS creates application server a.
func CreateAS(ctx context.Context, db DB, a AppServer) (out AppServer, err error) {
	return asObj.create(ctx, db, a.Name, func(tx pgx.Tx) error {
		var id int64
		return writeAS(ctx, tx, a, &id)
	})
}

// ReplaceAS replaces application server name with a after check accepted
// the stored one.
func ReplaceAS(ctx context.Context, db DB, name string, a AppServer, check Check[AppServer]) (out AppServer, err error) {
	if err := sameKey("/name", "application server", &a.Name, name); err != nil {
		return out, err
	}
	return asObj.replace(ctx, db, name, check, func(tx pgx.Tx, id int64) error { return writeAS(ctx, tx, a, &id) })
}

// DeleteAS deletes application server name after check accepted it
// (Conflict while an iFC uses it).
func DeleteAS(ctx context.Context, db DB, name string, check Check[AppServer]) error {
	return asObj.remove(ctx, db, name, check, func(tx pgx.Tx, id int64) error {
		rows, err := tx.Query(ctx, `SELECT name FROM ifc WHERE application_server_id = $1 ORDER BY name`, id)
		if err != nil {
			return err
		}
		used, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(used) > 0 {
			return conflict("/name", "application server %s is used by iFC %s", name, strings.Join(used, ", "))
		}
		return nil
	})
}

// GetAS returns application server name (NotFound when none).
func GetAS(ctx context.Context, db DB, name string) (AppServer, error) {
	as, _, err := listAS(ctx, db, `name = $1`, 1, name)
	return oneOf(as, err, "application server", name)
}

// ListAS returns a page of application servers ordered by name.
func ListAS(ctx context.Context, db DB, o ListOptions) ([]AppServer, bool, error) {
	return listAS(ctx, db, `name > $1 AND name ILIKE $2`, o.limit(), o.After, likePattern(o.Query))
}

func listAS(ctx context.Context, db DB, where string, limit int, args ...any) ([]AppServer, bool, error) {
	rows, err := db.Query(ctx, `SELECT id, name, server_name, default_handling, coalesce(service_info, ''), include_register_request,
		include_register_response, coalesce(diameter_host, ''),
		coalesce((SELECT json_agg(json_build_array(data_reference, udr, pur, snr) ORDER BY data_reference)
			FROM as_permission p WHERE p.application_server_id = a.id), '[]')
		FROM application_server a WHERE `+where+fmt.Sprintf(` ORDER BY name LIMIT %d`, limit+1), args...)
	if err != nil {
		return nil, false, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AppServer, error) {
		var a AppServer
		var id int64
		var dh int16
		var perms [][4]any
		err := r.Scan(&id, &a.Name, &a.ServerName, &dh, &a.ServiceInfo, &a.IncludeRegisterRequest, &a.IncludeRegisterResponse,
			&a.DiameterHost, &perms)
		a.DefaultHandling = map[int16]string{0: "continue", 1: "terminate"}[dh]
		for _, p := range perms {
			ref, _ := p[0].(float64)
			ops := []string{}
			for i, n := range []string{"udr", "pur", "snr"} {
				if ok, _ := p[i+1].(bool); ok {
					ops = append(ops, n)
				}
			}
			if a.Sh == nil {
				a.Sh = map[string][]string{}
			}
			a.Sh[store.DataReference(ref).String()] = ops
		}
		return a, err
	})
	if err != nil {
		return nil, false, err
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// SCSCF is an S-CSCF known to the HSS with the capabilities used for
// S-CSCF selection (TS 29.228 §6.1.1 Server-Capabilities, TS 29.229
// §6.3.10).
type SCSCF struct {
	Name                  string  `json:"name" required:"true" doc:"SIP URI of the S-CSCF (Server-Name)"`
	DiameterHost          string  `json:"diameter_host,omitempty" doc:"Diameter identity of the S-CSCF"`
	MandatoryCapabilities []int32 `json:"mandatory_capabilities" doc:"Mandatory-Capability values"`
	OptionalCapabilities  []int32 `json:"optional_capabilities" doc:"Optional-Capability values"`
}

func (s *SCSCF) validate() error {
	if !isSIPURI(s.Name) {
		return fieldErr("/name", "S-CSCF name %q must be a sip: or sips: URI", s.Name)
	}
	if strings.Contains(s.Name, "/") {
		return fieldErr("/name", "S-CSCF name %q must not contain '/'", s.Name)
	}
	if s.MandatoryCapabilities == nil {
		s.MandatoryCapabilities = []int32{}
	}
	if s.OptionalCapabilities == nil {
		s.OptionalCapabilities = []int32{}
	}
	return nil
}

var scscfObj = object[SCSCF]{table: "scscf", column: "name", what: "S-CSCF", get: GetSCSCF}

// CreateSCSCF adds S-CSCF s.
func CreateSCSCF(ctx context.Context, db DB, s SCSCF) (out SCSCF, err error) {
	if err := s.validate(); err != nil {
		return out, err
	}
	return scscfObj.create(ctx, db, s.Name, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO scscf (name, diameter_host, mandatory_capabilities, optional_capabilities)
			VALUES ($1, nullif($2, ''), $3, $4) ON CONFLICT (name) DO NOTHING`, s.Name, s.DiameterHost,
			s.MandatoryCapabilities, s.OptionalCapabilities)
		if err == nil && tag.RowsAffected() == 0 {
			err = conflict("/name", "S-CSCF %s already exists", s.Name)
		}
		return err
	})
}

// ReplaceSCSCF replaces S-CSCF name with s after check accepted the stored one.
func ReplaceSCSCF(ctx context.Context, db DB, name string, s SCSCF, check Check[SCSCF]) (out SCSCF, err error) {
	if err := sameKey("/name", "S-CSCF", &s.Name, name); err != nil {
		return out, err
	}
	if err := s.validate(); err != nil {
		return out, err
	}
	return scscfObj.replace(ctx, db, name, check, func(tx pgx.Tx, id int64) error {
		_, err := tx.Exec(ctx, `UPDATE scscf SET diameter_host = nullif($2, ''), mandatory_capabilities = $3,
			optional_capabilities = $4 WHERE id = $1`, id, s.DiameterHost, s.MandatoryCapabilities, s.OptionalCapabilities)
		return err
	})
}

// DeleteSCSCF deletes S-CSCF name after check accepted it.
func DeleteSCSCF(ctx context.Context, db DB, name string, check Check[SCSCF]) error {
	return scscfObj.remove(ctx, db, name, check, nil)
}

// GetSCSCF returns S-CSCF name (NotFound when none).
func GetSCSCF(ctx context.Context, db DB, name string) (SCSCF, error) {
	ss, _, err := listSCSCFs(ctx, db, `name = $1`, 1, name)
	return oneOf(ss, err, "S-CSCF", name)
}

// ListSCSCFs returns a page of S-CSCFs ordered by name.
func ListSCSCFs(ctx context.Context, db DB, o ListOptions) ([]SCSCF, bool, error) {
	return listSCSCFs(ctx, db, `name > $1 AND name ILIKE $2`, o.limit(), o.After, likePattern(o.Query))
}

func listSCSCFs(ctx context.Context, db DB, where string, limit int, args ...any) ([]SCSCF, bool, error) {
	rows, err := db.Query(ctx, `SELECT name, coalesce(diameter_host, ''), mandatory_capabilities, optional_capabilities
		FROM scscf WHERE `+where+fmt.Sprintf(` ORDER BY name LIMIT %d`, limit+1), args...)
	if err != nil {
		return nil, false, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SCSCF, error) {
		var s SCSCF
		err := r.Scan(&s.Name, &s.DiameterHost, &s.MandatoryCapabilities, &s.OptionalCapabilities)
		return s, err
	})
	if err != nil {
		return nil, false, err
	}
	if out == nil {
		out = []SCSCF{}
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// SharedIFCSet is a shared iFC set (TS 29.228 Annex B.2.2
// SharedIFCSetID): the HSS sends only its id; the S-CSCF holds the
// content, which is recorded here for reference.
type SharedIFCSet struct {
	ID   int32    `json:"id" required:"true" doc:"SharedIFCSetID"`
	Name string   `json:"name,omitempty" doc:"name (default set-<id>)"`
	IFCs []string `json:"ifcs" doc:"iFCs the S-CSCFs hold in this set"`
}

func writeSharedSet(ctx context.Context, tx pgx.Tx, s SharedIFCSet, replace bool) error {
	if s.ID < 0 {
		return fieldErr("/id", "a shared iFC set id must not be negative")
	}
	if s.Name == "" {
		s.Name = fmt.Sprintf("set-%d", s.ID)
	}
	if replace {
		if _, err := tx.Exec(ctx, `UPDATE shared_ifc_set SET name = $2 WHERE id = $1`, s.ID, s.Name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM shared_ifc_set_ifc WHERE shared_ifc_set_id = $1`, s.ID); err != nil {
			return err
		}
	} else {
		tag, err := tx.Exec(ctx, `INSERT INTO shared_ifc_set (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, s.ID, s.Name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return conflict("/id", "shared iFC set %d already exists", s.ID)
		}
	}
	for i, f := range s.IFCs {
		tag, err := tx.Exec(ctx, `INSERT INTO shared_ifc_set_ifc SELECT $1, id FROM ifc WHERE name = $2 ON CONFLICT DO NOTHING`, s.ID, f)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fieldErr(fmt.Sprintf("/ifcs/%d", i), "iFC %s does not exist or is listed twice", f)
		}
	}
	return nil
}

var sharedSetObj = object[SharedIFCSet]{table: "shared_ifc_set", column: "id", what: "shared iFC set",
	get: func(ctx context.Context, db DB, key string) (SharedIFCSet, error) {
		ss, _, err := listSharedSets(ctx, db, `s.id::text = $1`, 1, key)
		return oneOf(ss, err, "shared iFC set", key)
	}}

// CreateSharedIFCSet creates shared iFC set s.
func CreateSharedIFCSet(ctx context.Context, db DB, s SharedIFCSet) (out SharedIFCSet, err error) {
	return sharedSetObj.create(ctx, db, strconv.Itoa(int(s.ID)), func(tx pgx.Tx) error { return writeSharedSet(ctx, tx, s, false) })
}

// ReplaceSharedIFCSet replaces shared iFC set id with s after check
// accepted the stored one.
func ReplaceSharedIFCSet(ctx context.Context, db DB, id int32, s SharedIFCSet, check Check[SharedIFCSet]) (out SharedIFCSet, err error) {
	if s.ID == 0 {
		s.ID = id
	}
	if s.ID != id {
		return out, fieldErr("/id", "id %d differs from the shared iFC set %d replaced", s.ID, id)
	}
	return sharedSetObj.replace(ctx, db, strconv.Itoa(int(id)), check, func(tx pgx.Tx, _ int64) error { return writeSharedSet(ctx, tx, s, true) })
}

// DeleteSharedIFCSet deletes shared iFC set id (and removes it from every
// profile) after check accepted it.
func DeleteSharedIFCSet(ctx context.Context, db DB, id int32, check Check[SharedIFCSet]) error {
	return sharedSetObj.remove(ctx, db, strconv.Itoa(int(id)), check, nil)
}

// GetSharedIFCSet returns shared iFC set id (NotFound when none).
func GetSharedIFCSet(ctx context.Context, db DB, id int32) (SharedIFCSet, error) {
	return sharedSetObj.get(ctx, db, strconv.Itoa(int(id)))
}

// ListSharedIFCSets returns a page of shared iFC sets ordered by id
// (After: the last id, as a decimal string).
func ListSharedIFCSets(ctx context.Context, db DB, o ListOptions) ([]SharedIFCSet, bool, error) {
	after := int64(-1)
	if o.After != "" {
		n, err := strconv.ParseInt(o.After, 10, 32)
		if err != nil {
			return nil, false, fieldErr("/after", "after must be a shared iFC set id")
		}
		after = n
	}
	return listSharedSets(ctx, db, `s.id > $1 AND s.name ILIKE $2`, o.limit(), after, likePattern(o.Query))
}

func listSharedSets(ctx context.Context, db DB, where string, limit int, args ...any) ([]SharedIFCSet, bool, error) {
	rows, err := db.Query(ctx, `SELECT s.id, s.name, coalesce((SELECT array_agg(f.name ORDER BY f.name) FROM shared_ifc_set_ifc x
		JOIN ifc f ON f.id = x.ifc_id WHERE x.shared_ifc_set_id = s.id), '{}')
		FROM shared_ifc_set s WHERE `+where+fmt.Sprintf(` ORDER BY s.id LIMIT %d`, limit+1), args...)
	if err != nil {
		return nil, false, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SharedIFCSet, error) {
		var s SharedIFCSet
		err := r.Scan(&s.ID, &s.Name, &s.IFCs)
		return s, err
	})
	if err != nil {
		return nil, false, err
	}
	if out == nil {
		out = []SharedIFCSet{}
	}
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}
