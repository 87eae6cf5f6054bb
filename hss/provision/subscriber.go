// Package provision writes HSS data (subscribers, service profiles, iFCs,
// application servers, S-CSCFs) into the schema of /migrations, each
// operation in one transaction, and holds the imsctl command tree (App).
package provision

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/imscore/imscore/pkg/imsuri"
)

// Subscriber is the input of AddSubscriber: one IMPI, its IMPUs (one
// implicit registration set) and credentials. Hex strings may contain
// spaces or colons.
type Subscriber struct {
	IMPI        string
	IMPUs       []string // sip:, sips: or tel: URIs; at least one
	IMSU        string   // subscription name; default IMPI; reused when it exists
	K           string   // hex, 16 bytes
	OP, OPc     string   // hex, 16 bytes; at most one
	AMF         string   // hex, 2 bytes; default 8000
	SQN         uint64   // last SQN used; default 0
	Password    string   // SIP digest password
	Realm       string   // digest realm; default the IMPI's domain
	AuthSchemes []string // aka, akav2, md5; default from K/password
	Profile     string   // service profile name; default "default"
	SCSCF       string   // preferred S-CSCF SIP URI
	Barred      []string // IMPUs (of IMPUs) to bar
}

// UserError is an error in the operator's input (as opposed to a database
// failure).
type UserError struct{ Msg string }

func (e *UserError) Error() string { return e.Msg }

func userErr(format string, args ...any) error { return &UserError{fmt.Sprintf(format, args...)} }

func parseHex(flag, s string, n int) ([]byte, error) {
	clean := strings.NewReplacer(" ", "", ":", "", "-", "").Replace(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	b, err := hex.DecodeString(clean)
	if err != nil {
		if len(clean)%2 == 1 {
			return nil, userErr("--%s must be %d bytes (%d hex digits), got %d hex digits", flag, n, 2*n, len(clean))
		}
		return nil, userErr("--%s is not hexadecimal: %q", flag, s)
	}
	if len(b) != n {
		return nil, userErr("--%s must be %d bytes (%d hex digits), got %d", flag, n, 2*n, len(b))
	}
	return b, nil
}

// CheckIMPU validates a public identity: a sip:, sips: or tel: URI
// without spaces.
func CheckIMPU(u string) error {
	l := strings.ToLower(u)
	if !(strings.HasPrefix(l, "sip:") || strings.HasPrefix(l, "sips:") || strings.HasPrefix(l, "tel:")) {
		return userErr("IMPU %q must be a sip:, sips: or tel: URI", u)
	}
	if strings.ContainsAny(u, " \t\r\n") || len(u) <= strings.Index(u, ":")+1 {
		return userErr("IMPU %q is not a valid URI", u)
	}
	if strings.HasPrefix(l, "sip") && !strings.Contains(u, "@") {
		return userErr("IMPU %q has no user@domain part", u)
	}
	return nil
}

// HA1 returns hex(MD5(impi ":" realm ":" password)) (RFC 2617 §3.2.2.2).
func HA1(impi, realm, password string) string {
	h := md5.Sum([]byte(impi + ":" + realm + ":" + password))
	return hex.EncodeToString(h[:])
}

type subRow struct {
	k, op, amf  []byte
	opType      *string
	schemes     []string
	realm, ha1  *string
	password    []byte
	barred      map[string]bool
	profile     string
	imsu, scscf string
	impi        string
	impus       []string
	sqn         int64
	authSummary string
}

func (s *Subscriber) validate() (*subRow, error) {
	r := &subRow{impi: strings.TrimSpace(s.IMPI), profile: s.Profile, imsu: s.IMSU, scscf: s.SCSCF, barred: map[string]bool{}}
	if r.impi == "" || strings.ContainsAny(r.impi, " \t\r\n") {
		return nil, userErr("--impi is required and must not contain spaces")
	}
	if len(s.IMPUs) == 0 {
		return nil, userErr("at least one --impu is required")
	}
	seen := map[string]bool{}
	for _, u := range s.IMPUs {
		// tel:+1-555-0100 and sip:+15550100@domain;user=phone are stored
		// as tel:+15550100, the form every look-up uses (imsuri).
		u = imsuri.Canonical(strings.TrimSpace(u))
		if err := CheckIMPU(u); err != nil {
			return nil, err
		}
		if seen[u] {
			return nil, userErr("IMPU %s given twice", u)
		}
		seen[u] = true
		r.impus = append(r.impus, u)
	}
	for _, b := range s.Barred {
		b = imsuri.Canonical(strings.TrimSpace(b))
		if !seen[b] {
			return nil, userErr("--barred %s is not one of the --impu values", b)
		}
		r.barred[b] = true
	}
	if len(r.barred) == len(r.impus) {
		// TS 29.228 §6.1.1: at least one non-barred IMPU is needed to register.
		return nil, userErr("every IMPU is barred; at least one must be usable to register")
	}
	if s.SCSCF != "" && !strings.HasPrefix(strings.ToLower(s.SCSCF), "sip:") && !strings.HasPrefix(strings.ToLower(s.SCSCF), "sips:") {
		return nil, userErr("--scscf %q must be a sip: or sips: URI", s.SCSCF)
	}
	if r.profile == "" {
		r.profile = "default"
	}
	if r.imsu == "" {
		r.imsu = r.impi
	}
	if s.OP != "" && s.OPc != "" {
		return nil, userErr("give either --op or --opc, not both")
	}
	if s.K != "" {
		var err error
		if r.k, err = parseHex("k", s.K, 16); err != nil {
			return nil, err
		}
		switch {
		case s.OP != "":
			r.op, err = parseHex("op", s.OP, 16)
			t := "op"
			r.opType = &t
		case s.OPc != "":
			r.op, err = parseHex("opc", s.OPc, 16)
			t := "opc"
			r.opType = &t
		default:
			return nil, userErr("--k needs --op or --opc")
		}
		if err != nil {
			return nil, err
		}
		amf := s.AMF
		if amf == "" {
			amf = "8000"
		}
		if r.amf, err = parseHex("amf", amf, 2); err != nil {
			return nil, err
		}
	} else if s.OP != "" || s.OPc != "" || s.AMF != "" {
		return nil, userErr("--op, --opc and --amf need --k")
	}
	if s.SQN >= 1<<48 {
		return nil, userErr("--sqn %d does not fit in 48 bits", s.SQN)
	}
	r.sqn = int64(s.SQN)
	if s.Password != "" {
		realm := s.Realm
		if realm == "" {
			if i := strings.LastIndexByte(r.impi, '@'); i >= 0 && i < len(r.impi)-1 {
				realm = r.impi[i+1:]
			} else {
				return nil, userErr("--password needs --realm (the IMPI %s has no @domain)", r.impi)
			}
		}
		ha1 := HA1(r.impi, realm, s.Password)
		r.realm, r.ha1, r.password = &realm, &ha1, []byte(s.Password)
	} else if s.Realm != "" {
		return nil, userErr("--realm needs --password")
	}
	schemes := s.AuthSchemes
	if len(schemes) == 0 {
		if r.k != nil {
			schemes = append(schemes, "aka")
		}
		if r.password != nil {
			schemes = append(schemes, "md5")
		}
		if len(schemes) == 0 {
			return nil, userErr("give --k with --op/--opc (AKA) or --password (digest)")
		}
	}
	have := map[string]bool{}
	for _, sc := range schemes {
		sc = strings.ToLower(strings.TrimSpace(sc))
		switch sc {
		case "aka", "akav2":
			if r.k == nil {
				return nil, userErr("auth scheme %s needs --k and --op or --opc", sc)
			}
		case "md5":
			if r.password == nil {
				return nil, userErr("auth scheme md5 needs --password")
			}
		default:
			return nil, userErr("unknown auth scheme %q (want aka, akav2, md5)", sc)
		}
		if !have[sc] {
			have[sc] = true
			r.schemes = append(r.schemes, sc)
		}
	}
	r.authSummary = strings.Join(r.schemes, ",")
	return r, nil
}

// AddSubscriber validates s and creates, in one transaction, the IMSU (or
// reuses an existing one named s.IMSU), the IMPI, one implicit registration
// set holding every IMPU, the IMPUs linked to the IMPI and to the service
// profile. Errors in the input are *UserError; nothing is written on any
// error. It returns the id of the implicit registration set.
func AddSubscriber(ctx context.Context, conn *pgx.Conn, s Subscriber) (irsID int64, err error) {
	r, err := s.validate()
	if err != nil {
		return 0, err
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		irsID, err = addSubscriberTx(ctx, tx, r)
		return err
	})
	return irsID, err
}

func addSubscriberTx(ctx context.Context, tx pgx.Tx, r *subRow) (int64, error) {
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM impi WHERE identity = $1)`, r.impi).Scan(&exists); err != nil {
		return 0, err
	}
	if exists {
		return 0, userErr("IMPI %s already exists", r.impi)
	}
	for _, u := range r.impus {
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM impu WHERE identity = $1)`, u).Scan(&exists); err != nil {
			return 0, err
		}
		if exists {
			return 0, userErr("IMPU %s already exists", u)
		}
	}
	var profileID int64
	if err := tx.QueryRow(ctx, `SELECT id FROM service_profile WHERE name = $1`, r.profile).Scan(&profileID); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, userErr("service profile %s does not exist (create it with: imsctl profile add %s)", r.profile, r.profile)
		}
		return 0, err
	}
	var imsuID int64
	if err := tx.QueryRow(ctx, `INSERT INTO imsu (name, preferred_scscf) VALUES ($1, nullif($2, ''))
		ON CONFLICT (name) DO UPDATE SET preferred_scscf = coalesce(EXCLUDED.preferred_scscf, imsu.preferred_scscf)
		RETURNING id`, r.imsu, r.scscf).Scan(&imsuID); err != nil {
		return 0, err
	}
	var impiID int64
	if err := tx.QueryRow(ctx, `INSERT INTO impi (imsu_id, identity, k, op, op_type, amf, sqn, auth_schemes,
		default_scheme, digest_realm, digest_ha1, password)
		VALUES ($1, $2, $3, $4, $5, coalesce($6, '\x8000'::bytea), $7, $8, $9, $10, $11, $12) RETURNING id`,
		imsuID, r.impi, r.k, r.op, r.opType, r.amf, r.sqn, r.schemes, r.schemes[0], r.realm, r.ha1, r.password).Scan(&impiID); err != nil {
		return 0, err
	}
	var irs int64
	if err := tx.QueryRow(ctx, `INSERT INTO implicit_registration_set DEFAULT VALUES RETURNING id`).Scan(&irs); err != nil {
		return 0, err
	}
	for _, u := range r.impus {
		if _, err := tx.Exec(ctx, `WITH n AS (INSERT INTO impu (identity, barring, service_profile_id, implicit_set_id)
			VALUES ($1, $2, $3, $4) RETURNING id) INSERT INTO impi_impu (impi_id, impu_id) SELECT $5, id FROM n`,
			u, r.barred[u], profileID, irs, impiID); err != nil {
			return 0, err
		}
	}
	return irs, nil
}

// DeleteSubscriber deletes the IMPI, the IMPUs no other IMPI uses (with
// their assignments, Sh data and empty implicit sets) and the IMSU when it
// has no IMPI left, in one transaction. It returns the deleted IMPUs.
func DeleteSubscriber(ctx context.Context, conn *pgx.Conn, impi string) (deleted []string, err error) {
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var id, imsu int64
		if err := tx.QueryRow(ctx, `SELECT id, imsu_id FROM impi WHERE identity = $1 FOR UPDATE`, impi).Scan(&id, &imsu); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return userErr("IMPI %s does not exist", impi)
			}
			return err
		}
		rows, err := tx.Query(ctx, `SELECT impu_id FROM impi_impu WHERE impi_id = $1`, id)
		if err != nil {
			return err
		}
		impus, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM impi WHERE id = $1`, id); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `DELETE FROM impu u WHERE u.id = ANY($1)
			AND NOT EXISTS (SELECT 1 FROM impi_impu x WHERE x.impu_id = u.id) RETURNING identity`, impus)
		if err != nil {
			return err
		}
		if deleted, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM implicit_registration_set s
			WHERE NOT EXISTS (SELECT 1 FROM impu u WHERE u.implicit_set_id = s.id)`); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM imsu s WHERE s.id = $1 AND NOT EXISTS (SELECT 1 FROM impi i WHERE i.imsu_id = s.id)`, imsu)
		return err
	})
	return deleted, err
}

// friendly turns constraint violations into readable errors.
func friendly(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			return userErr("already exists (%s)", pe.Detail)
		case "23503":
			return userErr("still in use or refers to something missing (%s)", firstNonEmpty(pe.Detail, pe.Message))
		case "23514":
			return userErr("invalid value (constraint %s)", pe.ConstraintName)
		}
	}
	return err
}

func firstNonEmpty(a ...string) string {
	for _, s := range a {
		if s != "" {
			return s
		}
	}
	return ""
}
