package store

// The Cx hot path (UAR, MAR, SAR on every registration and re-registration)
// in as few round trips as possible: each method below is one SQL
// statement, atomic on its own, so none needs an explicit transaction.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/imscore/imscore/pkg/aka"
	"github.com/jackc/pgx/v5"
)

// pairSQL finds the IMPU (exact identity first, else the most specific
// matching wildcarded IMPU/PSI: the second branch of the UNION only runs
// when the first returns nothing), the IMPI with its IMSU, their
// association and the IMPU's assigned S-CSCF. No row: either identity is
// unknown.
const pairSQL = pairCTE + `
` + pairSelectSQL

// pairCTE resolves IMPU $2 as u (the first part of pairSQL).
const pairCTE = `WITH u (id, identity, type, barring, can_register, display_name, user_state, service_profile_id,
		profile_name, irs_id, psi_activation, wildcard_pattern, msisdn, wild) AS (
	(SELECT ` + impuCols + `, false` + impuFrom + `WHERE u.identity = $2)
	UNION ALL
	(SELECT ` + impuCols + `, true` + impuFrom + `WHERE u.wildcard_pattern IS NOT NULL AND $2 ~ u.wildcard_pattern
		ORDER BY length(u.identity) DESC, u.id LIMIT 1)
	LIMIT 1)`

// pairSelectSQL is the SELECT of pairSQL, on u.
const pairSelectSQL = `SELECT u.id, u.identity, u.type, u.barring, u.can_register, u.display_name, u.user_state, u.service_profile_id,
	u.profile_name, u.irs_id, u.psi_activation, u.wildcard_pattern, u.msisdn, u.wild,
	i.id, i.identity, i.imsu_id, s.name, coalesce(s.preferred_scscf, ''),
	i.auth_schemes, coalesce(i.default_scheme, ''), i.k IS NOT NULL,
	coalesce(i.digest_realm, ''), coalesce(i.digest_ha1, ''), i.password, i.line_identifiers,
	EXISTS (SELECT 1 FROM impi_impu x WHERE x.impi_id = i.id AND x.impu_id = u.id),
	coalesce(a.scscf_name, ''), coalesce(a.diameter_host, '')` + pairFromSQL

const pairFromSQL = `
FROM u CROSS JOIN impi i JOIN imsu s ON s.id = i.imsu_id
	LEFT JOIN scscf_assignment a ON a.impu_id = u.id
WHERE i.identity = $1`

// pairAKASQL is pairSQL plus, read without a lock, the IMPI's stored SQN,
// its row version (xmin) and AKA secrets, and whether the IMPI may use AKA
// scheme $3 (as pairReserveSQL decides): the MAR look-up when the SQN block
// cache already holds the SQNs (sqnblock.go). Read-only, so nothing waits
// for a WAL flush.
var pairAKASQL = strings.TrimSuffix(pairSQL, pairFromSQL) + `,
	i.sqn, i.xmin::text::bigint, i.k, i.op, coalesce(i.op_type, ''), i.amf,
	(i.k IS NOT NULL AND i.op IS NOT NULL AND i.op_type IS NOT NULL
		AND CASE WHEN $3::text = '' THEN coalesce(i.default_scheme, i.auth_schemes[1]) IN ('aka', 'akav2')
			ELSE $3::text = ANY (i.auth_schemes) END)` + pairFromSQL

// Pair looks up impi and impu (wildcard matching as LookupIMPU), their
// association (TS 29.228 §6.1.1.1 steps 1-2, §6.3.1, §6.1.2.1) and the
// IMPU's assigned S-CSCF with one SQL statement: the hot path of UAR, MAR
// and SAR. ErrNotFound when either identity is unknown
// (DIAMETER_ERROR_USER_UNKNOWN).
func (s *Store) Pair(ctx context.Context, impi, impu string) (pi PairInfo, err error) {
	err = s.groupedRow(ctx, impi, func(r pgx.Row) (err error) {
		pi, err = scanPair(r)
		return err
	}, pairSQL, impi, impu)
	return pi, wrap("Pair", err)
}

// scanPair scans a pairSQL row; extra receives the columns that follow
// (pairAKASQL).
func scanPair(r pgx.Row, extra ...any) (pi PairInfo, err error) {
	u, p := &pi.IMPU, &pi.IMPI
	var typ, st string
	err = r.Scan(append([]any{
		&u.ID, &u.Identity, &typ, &u.Barring, &u.CanRegister, &u.DisplayName, &st, &u.ServiceProfileID,
		&u.ServiceProfile, &u.IRSID, &u.PSIActivation, &u.WildcardPattern, &u.MSISDN, &u.MatchedByWildcard,
		&p.ID, &p.Identity, &p.IMSUID, &p.IMSU, &p.PreferredSCSCF, &p.AuthSchemes, &p.DefaultScheme,
		&p.HasAKA, &p.DigestRealm, &p.DigestHA1, &p.Password, &p.LineIdentifiers, &pi.Associated,
		&pi.SCSCFName, &pi.DiameterHost}, extra...)...)
	u.Type, u.State = IdentityType(typ), UserState(st)
	return pi, err
}

// PairInfo is what Cx needs about an IMPI/IMPU pair in one look-up.
type PairInfo struct {
	IMPI         IMPI
	IMPU         IMPU   // State is the IMPU's registration state
	Associated   bool   // the IMPI may use the IMPU (TS 29.228 §6.1.1 step 2)
	SCSCFName    string // assigned (or pending) S-CSCF of the IMPU, "" when none
	DiameterHost string // that S-CSCF's Diameter host, "" when none
}

// seqMask43 keeps SEQ (the top 43 bits of a 48-bit SQN, IND = 5 bits) as
// aka.NextSQN does.
const seqMask43 = 1<<43 - 1

// reserveSQL takes n SQNs in one statement: the CTE locks the IMPI row
// (FOR UPDATE re-reads the newest version after waiting for a concurrent
// reservation), the UPDATE stores ((SEQ + n) mod 2^43) << 5, which is n
// applications of aka.NextSQN, and RETURNING gives the SQN before and the
// secrets.
const reserveSQL = `WITH o AS (
	SELECT id, sqn FROM impi WHERE identity = $1 AND k IS NOT NULL AND op IS NOT NULL AND op_type IS NOT NULL
	FOR UPDATE)
UPDATE impi i SET sqn = (((o.sqn >> 5) + $2::bigint) & 8796093022207) << 5
FROM o WHERE i.id = o.id
RETURNING o.sqn, i.sqn, i.k, i.op, i.op_type, i.amf, i.id, i.xmin::text::bigint`

// ReserveSQNs hands out n fresh sequence numbers for MAR
// (TS 29.228 §6.3, SIP-Number-Auth-Items; TS 33.102 §6.3.2 and Annex C)
// with one atomic UPDATE … RETURNING: n successive SQNs as aka.NextSQN
// gives them (SEQ + 1 each, IND = 0, i.e. +32, SEQ modulo 2^43), the last
// one stored. Concurrent callers never receive the same SQN (the row lock
// serialises them). n must be 1..64. ErrNotFound for an unknown IMPI,
// ErrNoAKA when it has no K/OP. With EnableSQNBlocks the SQNs come from
// the IMPI's cached block when the stored counter still matches it, else a
// new block is reserved (sqnblock.go); cr.SQN is then the SQN before the
// first one returned.
func (s *Store) ReserveSQNs(ctx context.Context, impi string, n int) (cr AKACredentials, sqns []uint64, err error) {
	if n < 1 || n > 64 {
		return cr, nil, fmt.Errorf("hss/store: ReserveSQNs: n = %d, want 1..64", n)
	}
	if s.sqn != nil {
		return s.reserveSQNsBlock(ctx, impi, n)
	}
	cr, sqns, _, err = s.reserveDB(ctx, impi, n)
	return cr, sqns, err
}

// reserveDB reserves n SQNs (n ≥ 1) with reserveSQL; ver identifies the
// row version the reservation wrote.
func (s *Store) reserveDB(ctx context.Context, impi string, n int) (cr AKACredentials, sqns []uint64, ver sqnVersion, err error) {
	var k, op, amf []byte
	var opType string
	var before, after int64
	err = s.queryRow(ctx, reserveSQL, impi, int64(n)).Scan(&before, &after, &k, &op, &opType, &amf, &ver.id, &ver.xmin)
	ver.sqn = uint64(after)
	if errors.Is(err, pgx.ErrNoRows) {
		var exists bool
		if err = s.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM impi WHERE identity = $1)`, impi).Scan(&exists); err == nil {
			err = ErrNoAKA
			if !exists {
				err = pgx.ErrNoRows
			}
		}
	}
	if err != nil {
		return AKACredentials{}, nil, ver, wrap("ReserveSQNs", err)
	}
	cr, sqns, err = reservation(impi, before, after, k, op, opType, amf, n)
	if err != nil {
		return AKACredentials{}, nil, ver, wrap("ReserveSQNs", err)
	}
	return cr, sqns, ver, nil
}

// assignSQL records the S-CSCF for every IMPU of an implicit registration
// set and sets their state, in one statement. IMPUs whose assignment
// already holds these values are filtered out before the upsert, and the
// state UPDATE skips IMPUs already in the state, so a re-registration
// neither writes nor locks a row (no WAL flush at commit).
const assignSQL = `WITH a AS (
	INSERT INTO scscf_assignment (impu_id, scscf_name, diameter_host, impi_id)
	SELECT u.id, $2, nullif($3, ''), $4 FROM impu u LEFT JOIN scscf_assignment x ON x.impu_id = u.id
	WHERE u.implicit_set_id = $1 AND (x.impu_id IS NULL OR
		(x.scscf_name, x.diameter_host, x.impi_id) IS DISTINCT FROM ($2, nullif($3, ''), $4::bigint))
	ORDER BY u.id
	ON CONFLICT (impu_id) DO UPDATE SET scscf_name = EXCLUDED.scscf_name,
		diameter_host = EXCLUDED.diameter_host, impi_id = EXCLUDED.impi_id,
		assigned_at = CASE WHEN scscf_assignment.scscf_name = EXCLUDED.scscf_name
			THEN scscf_assignment.assigned_at ELSE now() END
	RETURNING impu_id)
UPDATE impu SET user_state = $5 WHERE implicit_set_id = $1 AND user_state <> $5`

// AssignIRS records that S-CSCF scscfName (Diameter host diameterHost)
// serves every IMPU of implicit registration set irsID, registered by the
// IMPI with id impiID (0 for unregistered services), in state Registered
// or Unregistered, with one atomic statement (SAR REGISTRATION,
// RE_REGISTRATION, UNREGISTERED_USER; TS 29.228 §6.1.2.1 applies the SAR
// to the implicit set). The assignment is persisted; an unknown irsID
// changes nothing.
func (s *Store) AssignIRS(ctx context.Context, irsID int64, scscfName, diameterHost string, impiID int64, state UserState) error {
	if state != Registered && state != Unregistered {
		return fmt.Errorf("hss/store: AssignIRS: state %q, want registered or unregistered", state)
	}
	if scscfName == "" {
		return fmt.Errorf("hss/store: AssignIRS: empty S-CSCF name")
	}
	_, err := s.exec(ctx, assignSQL, assignArgs(irsID, scscfName, diameterHost, impiID, state)...)
	return wrap("AssignIRS", err)
}

func assignArgs(irsID int64, scscfName, diameterHost string, impiID int64, state UserState) []any {
	var id *int64
	if impiID != 0 {
		id = &impiID
	}
	return []any{irsID, scscfName, diameterHost, id, string(state)}
}

// AssignIRSAndSubscription is AssignIRS for each set in irsIDs followed
// by SubscriptionIRS(impi, profileIRS), pipelined in one round trip (one
// implicit transaction): SAR REGISTRATION / RE_REGISTRATION. impi must not
// be empty.
func (s *Store) AssignIRSAndSubscription(ctx context.Context, irsIDs []int64, scscfName, diameterHost string, impiID int64,
	state UserState, impi string, profileIRS int64) (sub *Subscription, associated []string, err error) {
	if state != Registered && state != Unregistered {
		return nil, nil, fmt.Errorf("hss/store: AssignIRSAndSubscription: state %q, want registered or unregistered", state)
	}
	if scscfName == "" || impi == "" {
		return nil, nil, fmt.Errorf("hss/store: AssignIRSAndSubscription: empty S-CSCF name or IMPI")
	}
	err = s.retry(ctx, func() error {
		sub, associated, err = s.assignIRSAndSubscriptionOnce(ctx, irsIDs, scscfName, diameterHost, impiID, state, impi, profileIRS)
		return err
	})
	return sub, associated, err
}

// assignIRSAndSubscriptionOnce is AssignIRSAndSubscription's batch on one
// connection.
func (s *Store) assignIRSAndSubscriptionOnce(ctx context.Context, irsIDs []int64, scscfName, diameterHost string, impiID int64,
	state UserState, impi string, profileIRS int64) (sub *Subscription, associated []string, err error) {
	b := &pgx.Batch{}
	for _, irs := range irsIDs {
		b.Queue(assignSQL, assignArgs(irs, scscfName, diameterHost, impiID, state)...)
	}
	b.Queue(subscriptionSQL, profileIRS, impi)
	br := s.pool.SendBatch(ctx, b)
	for range irsIDs {
		if _, err = br.Exec(); err != nil {
			br.Close()
			return nil, nil, wrap("AssignIRSAndSubscription", err)
		}
	}
	sub, associated, err = subscriptionIRS(ctx, batchRow{br}, impi, profileIRS)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, wrap("AssignIRSAndSubscription", err)
	}
	return sub, associated, nil
}

// impuIRSCTE resolves IMPU $IMPU (as pairSQL) to its id and IRS.
const impuIRSCTE = `ux (id, irs) AS (
	(SELECT id, implicit_set_id FROM impu WHERE identity = $IMPU)
	UNION ALL
	(SELECT id, implicit_set_id FROM impu WHERE wildcard_pattern IS NOT NULL AND $IMPU ~ wildcard_pattern
		ORDER BY length(identity) DESC, id LIMIT 1)
	LIMIT 1)`

// pairAssignSQL is pairSQL and the IRS-wide assignment in one statement
// (SAR REGISTRATION / RE_REGISTRATION): it returns the pair row as read before
// the assignment (a statement's SELECT does not see its own CTEs' writes)
// and, when IMPI $1 is associated with IMPU $2, assigns $2's IRS to
// S-CSCF $3 (Diameter host $4) in state $5, writing only rows whose values
// change, as assignSQL.
const pairAssignSQL = pairCTE + `,
ok (impi_id, irs) AS (
	SELECT i.id, u.irs_id FROM u JOIN impi i ON i.identity = $1
	WHERE EXISTS (SELECT 1 FROM impi_impu x WHERE x.impi_id = i.id AND x.impu_id = u.id)),
a AS (
	INSERT INTO scscf_assignment (impu_id, scscf_name, diameter_host, impi_id)
	SELECT m.id, $3, nullif($4, ''), ok.impi_id FROM ok JOIN impu m ON m.implicit_set_id = ok.irs
		LEFT JOIN scscf_assignment x ON x.impu_id = m.id
	WHERE x.impu_id IS NULL OR
		(x.scscf_name, x.diameter_host, x.impi_id) IS DISTINCT FROM ($3, nullif($4, ''), ok.impi_id)
	ORDER BY m.id
	ON CONFLICT (impu_id) DO UPDATE SET scscf_name = EXCLUDED.scscf_name,
		diameter_host = EXCLUDED.diameter_host, impi_id = EXCLUDED.impi_id,
		assigned_at = CASE WHEN scscf_assignment.scscf_name = EXCLUDED.scscf_name
			THEN scscf_assignment.assigned_at ELSE now() END
	RETURNING impu_id),
st AS (
	UPDATE impu SET user_state = $5
	WHERE implicit_set_id = (SELECT irs FROM ok) AND user_state <> $5
	RETURNING id)
` + pairSelectSQL

// subscriptionByIMPUSQL is subscriptionSQL for the IRS of IMPU $1 ($2 the
// IMPI).
var subscriptionByIMPUSQL = strings.Replace(
	strings.Replace(subscriptionSQL, "WITH m AS (", "WITH "+strings.ReplaceAll(impuIRSCTE, "$IMPU", "$1")+", m AS (", 1),
	"FROM impu WHERE implicit_set_id = $1", "FROM impu WHERE implicit_set_id = (SELECT irs FROM ux)", 1)

// PairAssignSubscription is the SAR REGISTRATION / RE_REGISTRATION hot
// path for one Public-Identity in one round trip (one pipelined implicit
// transaction): Pair(impi, impu) and AssignIRS of impu's IRS to scscfName
// in state, made only when impi is associated with impu, in one statement
// (pairAssignSQL); and, when withProfile and the profile is not cached,
// SubscriptionIRS(impi, that IRS). The caller answers from
// pi (5001/5002 when the pair does not hold: nothing was written then).
// With EnableUserDataCache the profile may come from the cache
// (userdatacache.go): sub and associated are then shared with other
// callers and must not be modified.
func (s *Store) PairAssignSubscription(ctx context.Context, impi, impu, scscfName, diameterHost string, state UserState,
	withProfile bool) (pi PairInfo, sub *Subscription, associated []string, err error) {
	if state != Registered && state != Unregistered {
		return pi, nil, nil, fmt.Errorf("hss/store: PairAssignSubscription: state %q, want registered or unregistered", state)
	}
	if scscfName == "" || impi == "" {
		return pi, nil, nil, fmt.Errorf("hss/store: PairAssignSubscription: empty S-CSCF name or IMPI")
	}
	// With the user data cache (userdatacache.go) a cached profile is
	// used instead of the profile query; gen/cacheable tell whether the
	// profile read now may be stored.
	var cached *udEntry
	var gen uint64
	var cacheable bool
	key := udKey{impi, impu}
	sent := time.Now()
	if withProfile && s.ud != nil {
		cached, gen, cacheable = s.ud.lookup(key)
	}
	readProfile := withProfile && cached == nil
	// One job: the pair with the assignment, and the profile when it is
	// read. A missing pair (pairErr) is a result; a profile that cannot
	// be read matters only for an associated pair.
	var pairErr error
	err = s.grouped(ctx, impi, func(b *pgx.Batch) {
		b.Queue(pairAssignSQL, impi, impu, scscfName, diameterHost, string(state))
		if readProfile {
			b.Queue(subscriptionByIMPUSQL, impu, impi)
		}
	}, func(br pgx.BatchResults) error {
		sub, associated = nil, nil
		if pi, pairErr = scanPair(br.QueryRow()); pairErr != nil && !errors.Is(pairErr, pgx.ErrNoRows) {
			return pairErr
		}
		if readProfile {
			var err error
			sub, associated, err = subscriptionIRS(ctx, batchRow{br}, impi, pi.IMPU.IRSID)
			if err != nil && pairErr == nil && pi.Associated {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return PairInfo{}, nil, nil, wrap("PairAssignSubscription", err)
	}
	if pairErr != nil {
		return pi, nil, nil, wrap("PairAssignSubscription", pairErr)
	}
	if !withProfile || !pi.Associated {
		return pi, nil, nil, nil
	}
	if cached != nil {
		if cached.irs == pi.IMPU.IRSID {
			return pi, cached.sub, cached.associated, nil
		}
		// The IMPU moved to another set and the notification is not
		// handled yet: read the profile (second round trip), do not store.
		sub, associated, err = subscriptionIRS(ctx, retrying{s}, impi, pi.IMPU.IRSID)
		if err != nil {
			return pi, nil, nil, wrap("PairAssignSubscription", err)
		}
		return pi, sub, associated, nil
	}
	if cacheable && sub != nil {
		s.ud.store(gen, sent, &udEntry{key: key, irs: pi.IMPU.IRSID, sub: sub, associated: associated})
	}
	return pi, sub, associated, nil
}

// batchRow lets subscriptionIRS read the next result of a batch.
type batchRow struct{ br pgx.BatchResults }

func (b batchRow) QueryRow(context.Context, string, ...any) pgx.Row { return b.br.QueryRow() }
func (b batchRow) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return b.br.Query()
}

// PairReserve is Pair and, in the same round trip (one pipelined implicit
// transaction), a reservation of n SQNs as ReserveSQNs does — made only
// when the IMPI is associated with the IMPU, has K/OP and may use AKA
// scheme ("aka", "akav2", or "" for its default scheme). reserved tells
// whether SQNs were taken; when it is false the caller decides with the
// PairInfo and calls ReserveSQNs itself. SQNs stay unique either way.
// The MAR hot path (TS 29.228 §6.3.1). With EnableSQNBlocks, when the
// IMPI's cached block holds n SQNs for the stored counter, the round trip
// is a read-only look-up (pairAKASQL) and the SQNs come from memory.
func (s *Store) PairReserve(ctx context.Context, impi, impu, scheme string, n int) (pi PairInfo, cr AKACredentials, sqns []uint64, reserved bool, err error) {
	return s.PairReservePending(ctx, impi, impu, scheme, n, "", "")
}

// PairReservePending is PairReserve that, when it reserves (reserved is
// true), has also stored scscfName (Diameter host diameterHost) as the
// pending S-CSCF of impu's implicit registration set as
// SetPendingAssignment does, unless scscfName is empty or already
// pi.SCSCFName (pi is read before that write). A first registration's MAR
// (TS 29.228 §6.3.1) is then one round trip and one commit.
func (s *Store) PairReservePending(ctx context.Context, impi, impu, scheme string, n int, scscfName, diameterHost string) (pi PairInfo, cr AKACredentials, sqns []uint64, reserved bool, err error) {
	if n < 1 || n > 64 {
		return pi, cr, nil, false, fmt.Errorf("hss/store: PairReserve: n = %d, want 1..64", n)
	}
	if s.sqn != nil {
		return s.pairReserveBlock(ctx, impi, impu, scheme, n, scscfName, diameterHost)
	}
	pi, cr, sqns, reserved, _, err = s.pairReserveDB(ctx, impi, impu, scheme, n, scscfName, diameterHost)
	return pi, cr, sqns, reserved, err
}

// pairReserveSQL is pairSQL and, in the same statement, reserveSQL made
// only when the IMPI is associated with the IMPU ($2) and may use the AKA
// scheme $4 (empty: its default, else its first scheme, must be AKA), and
// then, only when it reserved, S-CSCF $5 (Diameter host $6) stored as the
// pending assignment of the IMPU's implicit registration set when $5 is
// not empty and differs from the IMPU's stored S-CSCF
// (SetPendingAssignment; TS 29.228 §6.3.1). It returns the pair row as
// read before those writes (a statement's SELECT does not see its own
// CTEs' writes) followed by the reservation's columns, NULL when nothing
// was reserved.
var pairReserveSQL = pairCTE + `, o AS (
	SELECT i.id, i.sqn FROM impi i
	WHERE i.identity = $1 AND i.k IS NOT NULL AND i.op IS NOT NULL AND i.op_type IS NOT NULL
		AND EXISTS (SELECT 1 FROM impi_impu x JOIN u ON u.id = x.impu_id WHERE x.impi_id = i.id)
		AND CASE WHEN $4::text = '' THEN coalesce(i.default_scheme, i.auth_schemes[1]) IN ('aka', 'akav2')
			ELSE $4::text = ANY (i.auth_schemes) END
	FOR UPDATE OF i
), r AS (
	UPDATE impi i SET sqn = (((o.sqn >> 5) + $3::bigint) & 8796093022207) << 5
	FROM o WHERE i.id = o.id
	RETURNING o.sqn AS before, i.sqn AS after, i.k, i.op, i.op_type, i.amf, i.id, i.xmin::text::bigint AS xmin
), p AS (` + strings.NewReplacer("$NAME", "$5", "$HOST", "$6", "$IMPI", "(SELECT id FROM r)", "$IRS", "(SELECT irs_id FROM u)",
	"$COND", `$5 <> '' AND EXISTS (SELECT 1 FROM r)
		AND NOT EXISTS (SELECT 1 FROM scscf_assignment x WHERE x.impu_id = (SELECT id FROM u) AND x.scscf_name = $5)`).Replace(pendingUpsert) + `
	RETURNING impu_id)
` + strings.Replace(strings.TrimSuffix(pairSQL[len(pairCTE)+1:], pairFromSQL), "coalesce(a.diameter_host, '')",
	"coalesce(a.diameter_host, ''),\n\tr.before, r.after, r.k, r.op, r.op_type, r.amf, r.id, r.xmin", 1) +
	strings.Replace(pairFromSQL, "\nWHERE i.identity = $1", "\n\tLEFT JOIN r ON true\nWHERE i.identity = $1", 1)

// pairReserveDB is PairReservePending reserving n (≥ 1) SQNs in the
// database with pairReserveSQL (one statement, one commit); ver
// identifies the row version the reservation wrote.
func (s *Store) pairReserveDB(ctx context.Context, impi, impu, scheme string, n int, scscfName, diameterHost string) (pi PairInfo, cr AKACredentials, sqns []uint64, reserved bool, ver sqnVersion, err error) {
	var k, op, amf []byte
	var opType *string
	var before, after, id, xmin *int64
	err = s.groupedRow(ctx, impi, func(r pgx.Row) (err error) {
		pi, err = scanPair(r, &before, &after, &k, &op, &opType, &amf, &id, &xmin)
		return err
	}, pairReserveSQL, impi, impu, int64(n), scheme, scscfName, diameterHost)
	if err != nil {
		return pi, cr, nil, false, ver, wrap("PairReserve", err)
	}
	if before == nil {
		return pi, cr, nil, false, ver, nil
	}
	ver = sqnVersion{id: *id, sqn: uint64(*after), xmin: *xmin}
	cr, sqns, err = reservation(impi, *before, *after, k, op, *opType, amf, n)
	if err != nil {
		return pi, cr, nil, false, ver, wrap("PairReserve", err)
	}
	return pi, cr, sqns, true, ver, nil
}

func reservation(impi string, before, after int64, k, op []byte, opType string, amf []byte, n int) (cr AKACredentials, sqns []uint64, err error) {
	if len(k) != 16 || len(op) != 16 || len(amf) != 2 {
		return cr, nil, ErrNoAKA
	}
	cr = AKACredentials{IMPI: impi, OPIsOPc: opType == "opc", SQN: uint64(before)}
	copy(cr.K[:], k)
	copy(cr.OP[:], op)
	copy(cr.AMF[:], amf)
	cur := uint64(before)
	sqns = make([]uint64, n)
	for i := range sqns {
		cur = aka.NextSQN(cur)
		sqns[i] = cur
	}
	if cur != uint64(after) {
		return AKACredentials{}, nil, fmt.Errorf("stored SQN %#x, computed %#x", after, cur)
	}
	return cr, sqns, nil
}

// subscriptionSQL gathers the user data of one implicit registration set
// ($1) as JSON in one statement: the service profiles of its IMPUs with
// their public identities, iFCs (trigger points, SPTs, application
// servers) and shared iFC sets; the charging functions (of the IMSU of
// IMPI $2, else of the first profile that has some); the other IMPIs of
// that IMSU (Associated-Identities); and whether IMPI $2 exists.
const subscriptionSQL = `WITH m AS (
	SELECT id, identity, type, barring, coalesce(display_name, '') AS display_name, service_profile_id
	FROM impu WHERE implicit_set_id = $1
), prof AS (
	SELECT p.id, p.name, p.subscribed_media_profile_id, p.charging_function_id
	FROM service_profile p WHERE p.id IN (SELECT service_profile_id FROM m)
), me AS (
	SELECT i.id, i.imsu_id, s.charging_function_id FROM impi i JOIN imsu s ON s.id = i.imsu_id WHERE i.identity = $2
), cf AS (
	SELECT c.* FROM charging_function c WHERE c.id = coalesce((SELECT charging_function_id FROM me),
		(SELECT charging_function_id FROM prof WHERE charging_function_id IS NOT NULL ORDER BY id LIMIT 1))
)
SELECT
	(SELECT json_agg(json_build_object(
		'id', p.id, 'name', p.name, 'smp', p.subscribed_media_profile_id,
		'pis', (SELECT json_agg(json_build_object('identity', m.identity, 'type', m.type, 'barring', m.barring,
				'display', m.display_name) ORDER BY m.id) FROM m WHERE m.service_profile_id = p.id),
		'ifcs', (SELECT json_agg(json_build_object('id', f.id, 'name', f.name, 'prio', coalesce(x.priority, f.priority),
				'ppi', f.profile_part_indicator, 'cnf', f.condition_type_cnf,
				'as', json_build_object('id', a.id, 'name', a.name, 'server', a.server_name, 'dh', a.default_handling,
					'info', coalesce(a.service_info, ''), 'req', a.include_register_request,
					'resp', a.include_register_response, 'host', coalesce(a.diameter_host, '')),
				'spts', (SELECT json_agg(json_build_object('g', t.group_id, 'neg', t.condition_negated, 'type', t.type,
						'v', t.value, 'c', coalesce(t.content, ''), 'rt', t.registration_types) ORDER BY t.group_id, t.id)
					FROM spt t WHERE t.ifc_id = f.id))
			ORDER BY coalesce(x.priority, f.priority), f.id)
			FROM service_profile_ifc x JOIN ifc f ON f.id = x.ifc_id JOIN application_server a ON a.id = f.application_server_id
			WHERE x.service_profile_id = p.id),
		'shared', (SELECT json_agg(z.shared_ifc_set_id ORDER BY z.shared_ifc_set_id)
			FROM service_profile_shared_ifc_set z WHERE z.service_profile_id = p.id)
	) ORDER BY p.id) FROM prof p),
	EXISTS (SELECT 1 FROM me),
	(SELECT coalesce(array_agg(o.identity ORDER BY o.id), '{}') FROM me JOIN impi o ON o.imsu_id = me.imsu_id AND o.id <> me.id),
	EXISTS (SELECT 1 FROM cf),
	coalesce((SELECT primary_ccf FROM cf), ''), coalesce((SELECT secondary_ccf FROM cf), ''),
	coalesce((SELECT primary_ecf FROM cf), ''), coalesce((SELECT secondary_ecf FROM cf), '')`

type jsonProfile struct {
	ID     int64   `json:"id"`
	Name   string  `json:"name"`
	SMP    *int32  `json:"smp"`
	Shared []int32 `json:"shared"`
	PIs    []struct {
		Identity string `json:"identity"`
		Type     string `json:"type"`
		Barring  bool   `json:"barring"`
		Display  string `json:"display"`
	} `json:"pis"`
	IFCs []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
		Prio int32  `json:"prio"`
		PPI  *int16 `json:"ppi"`
		CNF  bool   `json:"cnf"`
		AS   struct {
			ID     int64  `json:"id"`
			Name   string `json:"name"`
			Server string `json:"server"`
			DH     int16  `json:"dh"`
			Info   string `json:"info"`
			Req    bool   `json:"req"`
			Resp   bool   `json:"resp"`
			Host   string `json:"host"`
		} `json:"as"`
		SPTs []struct {
			G    int32   `json:"g"`
			Neg  bool    `json:"neg"`
			Type string  `json:"type"`
			V    string  `json:"v"`
			C    string  `json:"c"`
			RT   []int16 `json:"rt"`
		} `json:"spts"`
	} `json:"ifcs"`
}

// SubscriptionIRS is SubscriptionData for implicit registration set irsID
// in one SQL statement, plus the other IMPIs of impi's subscription
// (Associated-Identities of SAA, TS 29.229 §6.3.33). impi is the IMPI to
// report ("" for none); ErrNotFound when a non-empty impi is unknown or
// the set has no IMPU.
func (s *Store) SubscriptionIRS(ctx context.Context, impi string, irsID int64) (sub *Subscription, associated []string, err error) {
	sub, associated, err = subscriptionIRS(ctx, retrying{s}, impi, irsID)
	return sub, associated, wrap("SubscriptionIRS", err)
}

func subscriptionIRS(ctx context.Context, q rowQuerier, impi string, irsID int64) (*Subscription, []string, error) {
	var raw []byte
	var impiOK, hasCF bool
	var others []string
	var ci ChargingInfo
	if err := q.QueryRow(ctx, subscriptionSQL, irsID, impi).Scan(&raw, &impiOK, &others, &hasCF,
		&ci.PrimaryCCF, &ci.SecondaryCCF, &ci.PrimaryECF, &ci.SecondaryECF); err != nil {
		return nil, nil, err
	}
	if raw == nil || (impi != "" && !impiOK) {
		return nil, nil, pgx.ErrNoRows
	}
	var profiles []jsonProfile
	if err := json.Unmarshal(raw, &profiles); err != nil {
		return nil, nil, fmt.Errorf("decode user data of IRS %d: %w", irsID, err)
	}
	sub := &Subscription{PrivateID: impi, IRSID: irsID, Profiles: make([]ServiceProfile, 0, len(profiles))}
	if hasCF {
		sub.Charging = &ci
	}
	for _, jp := range profiles {
		sp := ServiceProfile{ID: jp.ID, Name: jp.Name, SubscribedMediaProfileID: jp.SMP, SharedIFCSetIDs: jp.Shared}
		for _, x := range jp.PIs {
			t := IdentityType(x.Type)
			sp.PublicIdentities = append(sp.PublicIdentities, PublicIdentity{Identity: x.Identity, Type: t,
				Barring: x.Barring, DisplayName: x.Display, Wildcarded: t == WildcardedPSI || t == WildcardedIMPU})
		}
		for _, x := range jp.IFCs {
			f := IFC{ID: x.ID, Name: x.Name, Priority: x.Prio, ProfilePartIndicator: x.PPI,
				ApplicationServer: ApplicationServer{ID: x.AS.ID, Name: x.AS.Name, ServerName: x.AS.Server,
					DefaultHandling: x.AS.DH, ServiceInfo: x.AS.Info, IncludeRegisterRequest: x.AS.Req,
					IncludeRegisterResponse: x.AS.Resp, DiameterHost: x.AS.Host}}
			if len(x.SPTs) > 0 {
				f.TriggerPoint = &TriggerPoint{ConditionTypeCNF: x.CNF, SPTs: make([]SPT, 0, len(x.SPTs))}
				for _, t := range x.SPTs {
					f.TriggerPoint.SPTs = append(f.TriggerPoint.SPTs, SPT{Group: t.G, ConditionNegated: t.Neg,
						Type: SPTType(t.Type), Value: t.V, Content: t.C, RegistrationTypes: t.RT})
				}
			}
			sp.IFCs = append(sp.IFCs, f)
		}
		sub.Profiles = append(sub.Profiles, sp)
	}
	return sub, others, nil
}
