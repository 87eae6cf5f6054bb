package store

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
)

// IdentityType is the kind of an IMPU (TS 29.228 Annex B.2.1 IdentityType;
// TS 23.003 §13.5 for wildcards).
type IdentityType string

// Identity types as stored in impu.type.
const (
	PublicUserIdentity IdentityType = "public_user_identity" // IdentityType 0
	DistinctPSI        IdentityType = "distinct_psi"         // IdentityType 1
	WildcardedPSI      IdentityType = "wildcarded_psi"       // IdentityType 2
	WildcardedIMPU     IdentityType = "wildcarded_impu"      // IdentityType 3
)

// Code returns the TS 29.228 IdentityType value (0..3).
func (t IdentityType) Code() int {
	switch t {
	case DistinctPSI:
		return 1
	case WildcardedPSI:
		return 2
	case WildcardedIMPU:
		return 3
	}
	return 0
}

// UserState is the registration state the HSS keeps per IMPU
// (TS 29.328 §7.6.4 IMSUserState; TS 29.228 §6.1.2 / Annex).
type UserState string

// User states as stored in impu.user_state.
const (
	NotRegistered UserState = "not_registered" // IMSUserState 0
	Registered    UserState = "registered"     // IMSUserState 1
	Unregistered  UserState = "unregistered"   // IMSUserState 2 (S-CSCF kept for unregistered services)
)

// Code returns the TS 29.328 IMSUserState value (0 NOT_REGISTERED,
// 1 REGISTERED, 2 REGISTERED_UNREG_SERVICES).
func (u UserState) Code() int {
	switch u {
	case Registered:
		return 1
	case Unregistered:
		return 2
	}
	return 0
}

// IMPU is one public identity row.
type IMPU struct {
	ID                int64
	Identity          string // as provisioned (for wildcards, with the !...! part)
	Type              IdentityType
	Barring           bool
	CanRegister       bool
	DisplayName       string
	State             UserState
	ServiceProfileID  int64
	ServiceProfile    string // service profile name
	IRSID             int64  // implicit registration set id
	PSIActivation     bool
	WildcardPattern   string // anchored POSIX regexp, wildcarded types only
	MSISDN            string // digits, "" when none
	MatchedByWildcard bool   // the look-up matched WildcardPattern, not Identity
}

const impuCols = `u.id, u.identity, u.type, u.barring, u.can_register, coalesce(u.display_name, ''),
	u.user_state, u.service_profile_id, p.name, u.implicit_set_id, u.psi_activation,
	coalesce(u.wildcard_pattern, ''), coalesce(u.msisdn, '')`

const impuFrom = ` FROM impu u JOIN service_profile p ON p.id = u.service_profile_id `

func scanIMPU(r pgx.Row) (IMPU, error) {
	var u IMPU
	var typ, st string
	err := r.Scan(&u.ID, &u.Identity, &typ, &u.Barring, &u.CanRegister, &u.DisplayName,
		&st, &u.ServiceProfileID, &u.ServiceProfile, &u.IRSID, &u.PSIActivation,
		&u.WildcardPattern, &u.MSISDN)
	u.Type, u.State = IdentityType(typ), UserState(st)
	return u, err
}

func collectIMPUs(rows pgx.Rows, err error) ([]IMPU, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []IMPU
	for rows.Next() {
		u, err := scanIMPU(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

type querier interface {
	rowQuerier
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// rowQuerier runs one-row statements: a pool, a connection, a transaction,
// a batch's next result or the Store with retry (retrying).
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// lookupIMPU finds the row for identity: the exact identity first, then
// the most specific (longest) wildcarded IMPU/PSI whose pattern matches.
func lookupIMPU(ctx context.Context, q querier, identity string, lock bool) (IMPU, error) {
	suffix := ""
	if lock {
		suffix = " FOR UPDATE OF u"
	}
	u, err := scanIMPU(q.QueryRow(ctx, `SELECT `+impuCols+impuFrom+`WHERE u.identity = $1`+suffix, identity))
	if err == nil || !errors.Is(err, pgx.ErrNoRows) {
		return u, err
	}
	u, err = scanIMPU(q.QueryRow(ctx, `SELECT `+impuCols+impuFrom+`
		WHERE u.wildcard_pattern IS NOT NULL AND $1 ~ u.wildcard_pattern
		ORDER BY length(u.identity) DESC, u.id LIMIT 1`+suffix, identity))
	u.MatchedByWildcard = err == nil
	return u, err
}

// LookupIMPU returns the IMPU with this identity (sip:, sips: or tel: URI,
// compared exactly). When no row has the identity, the wildcarded
// IMPU/PSI (TS 23.003 §13.5, TS 29.228 §6.1.1.1 / §6.3) whose pattern
// matches is returned with MatchedByWildcard set. Serves UAR, SAR, LIR
// (TS 29.228 §6.1.1, 6.1.2, 6.1.4) and Sh UDR (TS 29.328 §6.1.1).
// ErrNotFound when nothing matches (DIAMETER_ERROR_USER_UNKNOWN).
func (s *Store) LookupIMPU(ctx context.Context, impu string) (u IMPU, err error) {
	err = s.conn(ctx, "LookupIMPU", func(c *pgx.Conn) error {
		u, err = lookupIMPU(ctx, c, impu, false)
		return err
	})
	return u, err
}

// IRSMembers returns the IMPUs of implicit registration set irsID, ordered
// by id (the first provisioned first). TS 29.228 §6.1.2: SAR and its user
// data cover the whole set. ErrNotFound when the set has no IMPU.
func (s *Store) IRSMembers(ctx context.Context, irsID int64) (us []IMPU, err error) {
	err = s.conn(ctx, "IRSMembers", func(c *pgx.Conn) error {
		us, err = collectIMPUs(c.Query(ctx, `SELECT `+impuCols+impuFrom+`WHERE u.implicit_set_id = $1 ORDER BY u.id`, irsID))
		if err == nil && len(us) == 0 {
			err = pgx.ErrNoRows
		}
		return err
	})
	return us, err
}

// IMPUsOfIMPI returns the IMPUs associated with a private identity, ordered
// by id. ErrNotFound when the IMPI does not exist.
func (s *Store) IMPUsOfIMPI(ctx context.Context, impi string) (us []IMPU, err error) {
	err = s.conn(ctx, "IMPUsOfIMPI", func(c *pgx.Conn) error {
		var id int64
		if err := c.QueryRow(ctx, `SELECT id FROM impi WHERE identity = $1`, impi).Scan(&id); err != nil {
			return err
		}
		us, err = collectIMPUs(c.Query(ctx, `SELECT `+impuCols+impuFrom+`
			JOIN impi_impu x ON x.impu_id = u.id WHERE x.impi_id = $1 ORDER BY u.id`, id))
		return err
	})
	return us, err
}

// IMPI is one private identity row (without the AKA secrets; see
// ReserveSQNs).
type IMPI struct {
	ID              int64
	Identity        string
	IMSUID          int64
	IMSU            string   // subscription name
	PreferredSCSCF  string   // SIP URI or ""
	AuthSchemes     []string // subset of "aka", "akav2", "md5"
	DefaultScheme   string   // "" when not set
	HasAKA          bool     // K and OP/OPc are provisioned
	DigestRealm     string
	DigestHA1       string // lower-case hex MD5(IMPI:realm:password), "" when none
	Password        []byte // nil when none
	LineIdentifiers []string
}

// LookupIMPI returns the private identity (TS 29.228 User-Name). Serves
// UAR/MAR/SAR (TS 29.228 §6.1.1, 6.3, 6.1.2): the auth schemes decide
// which SIP-Authentication-Scheme MAR may ask for; HA1 answers a digest
// MAR (TS 29.228 §6.3, SIP-Digest-Authenticate). ErrNotFound when unknown.
func (s *Store) LookupIMPI(ctx context.Context, impi string) (p IMPI, err error) {
	err = s.conn(ctx, "LookupIMPI", func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT i.id, i.identity, i.imsu_id, s.name, coalesce(s.preferred_scscf, ''),
				i.auth_schemes, coalesce(i.default_scheme, ''), i.k IS NOT NULL,
				coalesce(i.digest_realm, ''), coalesce(i.digest_ha1, ''), i.password, i.line_identifiers
			FROM impi i JOIN imsu s ON s.id = i.imsu_id WHERE i.identity = $1`, impi).Scan(
			&p.ID, &p.Identity, &p.IMSUID, &p.IMSU, &p.PreferredSCSCF, &p.AuthSchemes, &p.DefaultScheme,
			&p.HasAKA, &p.DigestRealm, &p.DigestHA1, &p.Password, &p.LineIdentifiers)
	})
	return p, err
}

// IMPIHasIMPU reports whether the private identity impi may use the public
// identity impu (directly or through a wildcarded IMPU that matches it).
// ErrNotFound when either is unknown (DIAMETER_ERROR_USER_UNKNOWN 5001);
// false means DIAMETER_ERROR_IDENTITIES_DONT_MATCH 5002 (TS 29.228 §6.1.1,
// 6.1.2, 6.3).
func (s *Store) IMPIHasIMPU(ctx context.Context, impi, impu string) (ok bool, err error) {
	err = s.conn(ctx, "IMPIHasIMPU", func(c *pgx.Conn) error {
		var id int64
		if err := c.QueryRow(ctx, `SELECT id FROM impi WHERE identity = $1`, impi).Scan(&id); err != nil {
			return err
		}
		u, err := lookupIMPU(ctx, c, impu, false)
		if err != nil {
			return err
		}
		return c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM impi_impu WHERE impi_id = $1 AND impu_id = $2)`,
			id, u.ID).Scan(&ok)
	})
	return ok, err
}

// IMPUByMSISDN returns the IMPU provisioned with this MSISDN (digits only,
// or a tel: URI whose digits are compared), for Sh requests that identify
// the user by MSISDN (TS 29.328 §7.1 User-Identity). ErrNotFound when none.
func (s *Store) IMPUByMSISDN(ctx context.Context, msisdn string) (u IMPU, err error) {
	d := digits(msisdn)
	err = s.conn(ctx, "IMPUByMSISDN", func(c *pgx.Conn) error {
		u, err = scanIMPU(c.QueryRow(ctx, `SELECT `+impuCols+impuFrom+`
			WHERE u.msisdn = $1 OR u.identity = 'tel:+' || $1 OR u.identity = 'tel:' || $1
			ORDER BY (u.msisdn = $1) DESC NULLS LAST, u.id LIMIT 1`, d))
		return err
	})
	return u, err
}

// MSISDNs returns the MSISDNs of the IMPU's implicit registration set: the
// provisioned msisdn values and the digits of tel: IMPUs, without
// duplicates (TS 29.328 §7.6.9 MSISDN data reference). ErrNotFound when the
// IMPU is unknown.
func (s *Store) MSISDNs(ctx context.Context, impu string) (out []string, err error) {
	err = s.conn(ctx, "MSISDNs", func(c *pgx.Conn) error {
		out = nil // a retry (Store.conn) starts over
		u, err := lookupIMPU(ctx, c, impu, false)
		if err != nil {
			return err
		}
		rows, err := c.Query(ctx, `SELECT coalesce(msisdn, ''), identity FROM impu WHERE implicit_set_id = $1 ORDER BY id`, u.IRSID)
		if err != nil {
			return err
		}
		defer rows.Close()
		seen := map[string]bool{}
		for rows.Next() {
			var m, id string
			if err := rows.Scan(&m, &id); err != nil {
				return err
			}
			if m == "" && len(id) > 4 && id[:4] == "tel:" {
				m = digits(id)
			}
			if m != "" && !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
		return rows.Err()
	})
	return out, err
}

func digits(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == ';' {
			break
		}
		if s[i] >= '0' && s[i] <= '9' {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// VisitedNetworkAllowed reports whether the subscription of impi may
// register from visitedNetwork (the Visited-Network-Identifier of a UAR,
// TS 29.228 §6.1.1: false → DIAMETER_ERROR_ROAMING_NOT_ALLOWED 5004). The
// home network (the IMPI's realm, the part after '@') is always allowed;
// otherwise the network must be allowed for everyone or linked to the
// IMSU. ErrNotFound when the IMPI is unknown.
func (s *Store) VisitedNetworkAllowed(ctx context.Context, impi, visitedNetwork string) (ok bool, err error) {
	err = s.conn(ctx, "VisitedNetworkAllowed", func(c *pgx.Conn) error {
		var imsu int64
		if err := c.QueryRow(ctx, `SELECT imsu_id FROM impi WHERE identity = $1`, impi).Scan(&imsu); err != nil {
			return err
		}
		if realmOf(impi) != "" && strings.EqualFold(realmOf(impi), visitedNetwork) {
			ok = true
			return nil
		}
		return c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM visited_network v
			LEFT JOIN imsu_visited_network x ON x.visited_network_id = v.id AND x.imsu_id = $2
			WHERE lower(v.identity) = lower($1) AND (v.allowed_for_all OR x.imsu_id IS NOT NULL))`,
			visitedNetwork, imsu).Scan(&ok)
	})
	return ok, err
}

// VisitedNetworkAllowedIMSU is VisitedNetworkAllowed for an IMPI already
// looked up (imsuID its subscription): the home realm answers without a
// query.
func (s *Store) VisitedNetworkAllowedIMSU(ctx context.Context, imsuID int64, impi, visitedNetwork string) (ok bool, err error) {
	if realmOf(impi) != "" && strings.EqualFold(realmOf(impi), visitedNetwork) {
		return true, nil
	}
	err = s.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM visited_network v
		LEFT JOIN imsu_visited_network x ON x.visited_network_id = v.id AND x.imsu_id = $2
		WHERE lower(v.identity) = lower($1) AND (v.allowed_for_all OR x.imsu_id IS NOT NULL))`,
		visitedNetwork, imsuID).Scan(&ok)
	return ok, wrap("VisitedNetworkAllowedIMSU", err)
}

func realmOf(impi string) string {
	for i := len(impi) - 1; i >= 0; i-- {
		if impi[i] == '@' {
			return impi[i+1:]
		}
	}
	return ""
}
