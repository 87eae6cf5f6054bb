package provision

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/imscore/imscore/pkg/imsuri"
)

// SubscriberRecord is one subscriber as the API and the console write and
// read it: a private identity (IMPI) of a subscription (IMSU), its
// authentication data and its public identities (IMPUs) grouped into
// implicit registration sets. The secrets K, OP, OPc and Password are
// write-only: they are never read back (HasK, OPType and HasPassword say
// what is stored). SQN is write-only too: the current counter, which
// every authentication moves, is in Registration.
type SubscriberRecord struct {
	IMPI string `json:"impi" required:"true" doc:"private identity (IMPI), user@realm"`
	IMSU string `json:"imsu,omitempty" doc:"subscription (IMSU) name; default: the IMPI; an existing subscription is joined"`
	// AuthSchemes: aka, akav2, md5; the first is the default. Default:
	// aka when K is stored, md5 when a password is.
	AuthSchemes []string `json:"auth_schemes,omitempty" doc:"authentication schemes (aka, akav2, md5), the first is the default; default: aka with K, md5 with a password"`
	K           string   `json:"k,omitempty" access:"write" doc:"AKA key K, 32 hex digits (write-only; kept when omitted on replace)"`
	OP          string   `json:"op,omitempty" access:"write" doc:"operator key OP, 32 hex digits (write-only)"`
	OPc         string   `json:"opc,omitempty" access:"write" doc:"OPc, 32 hex digits, instead of OP (write-only)"`
	HasK        bool     `json:"has_k" access:"read" doc:"K and OP/OPc are stored"`
	OPType      string   `json:"op_type,omitempty" access:"read" doc:"op or opc: which of the two is stored"`
	AMF         string   `json:"amf,omitempty" doc:"AMF, 4 hex digits (default 8000)"`
	SQN         *uint64  `json:"sqn,omitempty" access:"write" doc:"last SQN used (48 bits); on replace, resets the counter (write-only: the current value is in the registration state)"`
	Password    string   `json:"password,omitempty" access:"write" doc:"SIP digest password (write-only; HA1 = MD5(IMPI:realm:password) is stored with it)"`
	DigestRealm string   `json:"digest_realm,omitempty" doc:"digest realm (default: the IMPI's domain)"`
	HasPassword bool     `json:"has_password" access:"read" doc:"digest credentials are stored"`
	// PreferredSCSCF is the IMSU's S-CSCF (UAA Server-Name when nothing is
	// assigned).
	PreferredSCSCF string           `json:"preferred_scscf,omitempty" doc:"S-CSCF SIP URI the subscription prefers"`
	IMPUs          []PublicIdentity `json:"impus" required:"true" doc:"public identities; at least one, at least one not barred"`

	secrets []byte // K, OP, OPc, HA1 and password as stored (ETag input, never shown)
}

// PublicIdentity is one IMPU of a SubscriberRecord.
type PublicIdentity struct {
	Identity string `json:"identity" required:"true" doc:"sip:, sips: or tel: URI (tel:+1-555 is stored as tel:+1555)"`
	Type     string `json:"type,omitempty" access:"read" doc:"public_user_identity, distinct_psi, wildcarded_psi or wildcarded_impu"`
	Barred   bool   `json:"barred" doc:"barred: may not register nor be used"`
	Profile  string `json:"profile,omitempty" doc:"service profile name (default: default)"`
	// ImplicitSet is the implicit registration set: the set's id when
	// read; when written, IMPUs with the same value form one set, and a
	// value that is the id of a set the subscriber's IMPUs are in now
	// keeps that set (so a read, modify, write round trip keeps them).
	ImplicitSet int64 `json:"implicit_set,omitempty" doc:"implicit registration set: read, its id; written, IMPUs with the same value register together (an id of one of the subscriber's sets keeps it)"`
}

// Secrets returns the stored secrets of a record read from the database
// (nil otherwise), for a validator (ETag) that must change when they do.
// Never show them.
func (r SubscriberRecord) Secrets() []byte { return r.secrets }

// Subscriber is the flat form of a subscriber that imsctl's flags and the
// CSV import columns give: one IMPI, its IMPUs (one implicit
// registration set, one service profile) and credentials. Hex strings may
// contain spaces or colons.
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

// Record returns s as a SubscriberRecord.
func (s Subscriber) Record() (SubscriberRecord, error) {
	sqn := s.SQN
	r := SubscriberRecord{IMPI: s.IMPI, IMSU: s.IMSU, K: s.K, OP: s.OP, OPc: s.OPc, AMF: s.AMF, SQN: &sqn,
		Password: s.Password, DigestRealm: s.Realm, AuthSchemes: s.AuthSchemes, PreferredSCSCF: s.SCSCF}
	index := map[string]int{}
	for i, u := range s.IMPUs {
		index[imsuri.Canonical(strings.TrimSpace(u))] = i
		r.IMPUs = append(r.IMPUs, PublicIdentity{Identity: u, Profile: s.Profile})
	}
	for _, b := range s.Barred {
		i, ok := index[imsuri.Canonical(strings.TrimSpace(b))]
		if !ok {
			return r, fieldErr("/barred", "barred %s is not one of the IMPUs", b)
		}
		r.IMPUs[i].Barred = true
	}
	return r, nil
}

var hexSeparators = strings.NewReplacer(" ", "", ":", "", "-", "")

func parseHex(field, s string, n int) ([]byte, error) {
	clean := hexSeparators.Replace(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
	b, err := hex.DecodeString(clean)
	name := strings.TrimPrefix(field, "/")
	if err != nil {
		if len(clean)%2 == 1 {
			return nil, fieldErr(field, "%s must be %d bytes (%d hex digits), got %d hex digits", name, n, 2*n, len(clean))
		}
		return nil, fieldErr(field, "%s is not hexadecimal: %q", name, s)
	}
	if len(b) != n {
		return nil, fieldErr(field, "%s must be %d bytes (%d hex digits), got %d", name, n, 2*n, len(b))
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

// subRow is a validated SubscriberRecord in the columns' forms.
type subRow struct {
	impi, imsu, scscf string
	k, op, amf        []byte
	opType            *string
	sqn               *int64
	schemes           []string
	realm, ha1        *string
	password          []byte
	impus             []impuRow
}

type impuRow struct {
	identity string
	barred   bool
	profile  string
	set      int64 // ImplicitSet as written (a label or a set id)
}

// storedAuth is what a replace keeps when the record omits it.
type storedAuth struct {
	k, op, amf []byte
	opType     *string
	realm, ha1 *string
	password   []byte
}

// validate checks r and returns it in column form; cur (nil on create)
// supplies the credentials a replace omits.
func (r *SubscriberRecord) validate(cur *storedAuth) (*subRow, error) {
	row := &subRow{impi: strings.TrimSpace(r.IMPI), imsu: strings.TrimSpace(r.IMSU), scscf: strings.TrimSpace(r.PreferredSCSCF)}
	if row.impi == "" || strings.ContainsAny(row.impi, " \t\r\n") {
		return nil, fieldErr("/impi", "impi is required and must not contain spaces")
	}
	if len(r.IMPUs) == 0 {
		return nil, fieldErr("/impus", "at least one IMPU is required")
	}
	seen := map[string]bool{}
	barred := 0
	for i, pu := range r.IMPUs {
		// tel:+1-555-0100 and sip:+15550100@domain;user=phone are stored
		// as tel:+15550100, the form every look-up uses (imsuri).
		u := imsuri.Canonical(strings.TrimSpace(pu.Identity))
		if err := CheckIMPU(u); err != nil {
			return nil, fieldErr(fmt.Sprintf("/impus/%d/identity", i), "%s", err)
		}
		if seen[u] {
			return nil, fieldErr(fmt.Sprintf("/impus/%d/identity", i), "IMPU %s given twice", u)
		}
		seen[u] = true
		p := strings.TrimSpace(pu.Profile)
		if p == "" {
			p = "default"
		}
		if pu.Barred {
			barred++
		}
		row.impus = append(row.impus, impuRow{identity: u, barred: pu.Barred, profile: p, set: pu.ImplicitSet})
	}
	if barred == len(row.impus) {
		// TS 29.228 §6.1.1: at least one non-barred IMPU is needed to register.
		return nil, fieldErr("/impus", "every IMPU is barred; at least one must be usable to register")
	}
	if row.scscf != "" && !isSIPURI(row.scscf) {
		return nil, fieldErr("/preferred_scscf", "preferred S-CSCF %q must be a sip: or sips: URI", row.scscf)
	}
	if row.imsu == "" {
		row.imsu = row.impi
	}
	if err := r.validateAuth(row, cur); err != nil {
		return nil, err
	}
	return row, nil
}

func (r *SubscriberRecord) validateAuth(row *subRow, cur *storedAuth) error {
	if cur == nil {
		cur = &storedAuth{}
	}
	if r.OP != "" && r.OPc != "" {
		return fieldErr("/opc", "give either op or opc, not both")
	}
	var err error
	row.k, row.op, row.opType = cur.k, cur.op, cur.opType
	if r.K != "" {
		if row.k, err = parseHex("/k", r.K, 16); err != nil {
			return err
		}
	}
	switch {
	case r.OP != "":
		t := "op"
		row.opType = &t
		row.op, err = parseHex("/op", r.OP, 16)
	case r.OPc != "":
		t := "opc"
		row.opType = &t
		row.op, err = parseHex("/opc", r.OPc, 16)
	}
	if err != nil {
		return err
	}
	switch {
	case row.k != nil && row.op == nil:
		return fieldErr("/op", "k needs op or opc")
	case row.k == nil && (row.op != nil || r.AMF != ""):
		return fieldErr("/k", "op, opc and amf need k")
	}
	switch {
	case r.AMF != "":
		if row.amf, err = parseHex("/amf", r.AMF, 2); err != nil {
			return err
		}
	case cur.amf != nil:
		row.amf = cur.amf
	case row.k != nil:
		row.amf = []byte{0x80, 0}
	}
	if r.SQN != nil {
		if *r.SQN >= 1<<48 {
			return fieldErr("/sqn", "sqn %d does not fit in 48 bits", *r.SQN)
		}
		v := int64(*r.SQN)
		row.sqn = &v
	}
	realm := strings.TrimSpace(r.DigestRealm)
	row.realm, row.ha1, row.password = cur.realm, cur.ha1, cur.password
	switch {
	case r.Password != "":
		if realm == "" && cur.realm != nil {
			realm = *cur.realm
		}
		if realm == "" {
			if i := strings.LastIndexByte(row.impi, '@'); i >= 0 && i < len(row.impi)-1 {
				realm = row.impi[i+1:]
			} else {
				return fieldErr("/digest_realm", "a password needs digest_realm (the IMPI %s has no @domain)", row.impi)
			}
		}
		ha1 := HA1(row.impi, realm, r.Password)
		row.realm, row.ha1, row.password = &realm, &ha1, []byte(r.Password)
	case realm != "" && (cur.realm == nil || *cur.realm != realm):
		return fieldErr("/digest_realm", "digest_realm needs password (HA1 is computed from it)")
	}
	schemes := r.AuthSchemes
	if len(schemes) == 0 {
		if row.k != nil {
			schemes = append(schemes, "aka")
		}
		if row.ha1 != nil || row.password != nil {
			schemes = append(schemes, "md5")
		}
		if len(schemes) == 0 {
			return fieldErr("/k", "give k with op or opc (AKA) or a password (digest)")
		}
	}
	have := map[string]bool{}
	row.schemes = nil
	for _, sc := range schemes {
		sc = strings.ToLower(strings.TrimSpace(sc))
		switch sc {
		case "aka", "akav2":
			if row.k == nil {
				return fieldErr("/auth_schemes", "auth scheme %s needs k and op or opc", sc)
			}
		case "md5":
			if row.ha1 == nil && row.password == nil {
				return fieldErr("/auth_schemes", "auth scheme md5 needs a password")
			}
		default:
			return fieldErr("/auth_schemes", "unknown auth scheme %q (want aka, akav2, md5)", sc)
		}
		if !have[sc] {
			have[sc] = true
			row.schemes = append(row.schemes, sc)
		}
	}
	return nil
}

// AddSubscriber validates s and creates it (CreateSubscriber). It returns
// the id of its implicit registration set.
func AddSubscriber(ctx context.Context, db DB, s Subscriber) (irsID int64, err error) {
	r, err := s.Record()
	if err != nil {
		return 0, err
	}
	out, err := CreateSubscriber(ctx, db, r)
	if err != nil {
		return 0, err
	}
	return out.IMPUs[0].ImplicitSet, nil
}

// CreateSubscriber validates r and creates, in one transaction, the IMSU
// (or joins an existing one named r.IMSU), the IMPI, the implicit
// registration sets and the IMPUs, linked to the IMPI and to their service
// profiles. It returns the subscriber as stored. Errors in the input are
// *UserError (Conflict when the IMPI or an IMPU exists); nothing is
// written on any error.
func CreateSubscriber(ctx context.Context, db DB, r SubscriberRecord) (out SubscriberRecord, err error) {
	row, err := r.validate(nil)
	if err != nil {
		return out, err
	}
	err = inTx(ctx, db, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM impi WHERE identity = $1)`, row.impi).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return conflict("/impi", "IMPI %s already exists", row.impi)
		}
		if err := writeSubscriber(ctx, tx, row, nil); err != nil {
			return err
		}
		out, err = getSubscriber(ctx, tx, row.impi)
		return err
	})
	return out, err
}

// existingSub is the stored state a replace starts from.
type existingSub struct {
	impiID, imsuID int64
	impus          map[string]curIMPU
	sets           map[int64]bool
}

type curIMPU struct{ id, set int64 }

// writeSubscriber writes row: a new subscriber when cur is nil, else over
// the stored one.
func writeSubscriber(ctx context.Context, tx pgx.Tx, row *subRow, cur *existingSub) error {
	var imsuID int64
	upsert := `ON CONFLICT (name) DO UPDATE SET preferred_scscf = coalesce(EXCLUDED.preferred_scscf, imsu.preferred_scscf)`
	if cur != nil { // a replace says exactly which S-CSCF is preferred
		upsert = `ON CONFLICT (name) DO UPDATE SET preferred_scscf = EXCLUDED.preferred_scscf`
	}
	if err := tx.QueryRow(ctx, `INSERT INTO imsu (name, preferred_scscf) VALUES ($1, nullif($2, '')) `+upsert+` RETURNING id`,
		row.imsu, row.scscf).Scan(&imsuID); err != nil {
		return err
	}
	var impiID int64
	if cur == nil {
		sqn := int64(0)
		if row.sqn != nil {
			sqn = *row.sqn
		}
		if err := tx.QueryRow(ctx, `INSERT INTO impi (imsu_id, identity, k, op, op_type, amf, sqn, auth_schemes,
			default_scheme, digest_realm, digest_ha1, password)
			VALUES ($1, $2, $3, $4, $5, coalesce($6, '\x8000'::bytea), $7, $8, $9, $10, $11, $12) RETURNING id`,
			imsuID, row.impi, row.k, row.op, row.opType, row.amf, sqn, row.schemes, row.schemes[0], row.realm, row.ha1,
			row.password).Scan(&impiID); err != nil {
			return err
		}
		cur = &existingSub{impiID: impiID, imsuID: imsuID, impus: map[string]curIMPU{}, sets: map[int64]bool{}}
	} else {
		impiID = cur.impiID
		if _, err := tx.Exec(ctx, `UPDATE impi SET imsu_id = $2, k = $3, op = $4, op_type = $5, amf = coalesce($6, amf),
			sqn = coalesce($7, sqn), auth_schemes = $8, default_scheme = $9, digest_realm = $10, digest_ha1 = $11, password = $12
			WHERE id = $1`, impiID, imsuID, row.k, row.op, row.opType, row.amf, row.sqn, row.schemes, row.schemes[0],
			row.realm, row.ha1, row.password); err != nil {
			return err
		}
		if cur.imsuID != imsuID {
			if _, err := tx.Exec(ctx, `DELETE FROM imsu s WHERE s.id = $1 AND NOT EXISTS (SELECT 1 FROM impi i WHERE i.imsu_id = s.id)`, cur.imsuID); err != nil {
				return err
			}
		}
	}
	return writeIMPUs(ctx, tx, impiID, row, cur)
}

func writeIMPUs(ctx context.Context, tx pgx.Tx, impiID int64, row *subRow, cur *existingSub) error {
	var ids, profiles []string
	for _, u := range row.impus {
		ids = append(ids, u.identity)
		profiles = append(profiles, u.profile)
	}
	rows, err := tx.Query(ctx, `SELECT identity FROM impu WHERE identity = ANY($1)`, ids)
	if err != nil {
		return err
	}
	taken, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, t := range taken {
		if _, mine := cur.impus[t]; !mine {
			for i, u := range row.impus {
				if u.identity == t {
					return conflict(fmt.Sprintf("/impus/%d/identity", i), "IMPU %s already exists", t)
				}
			}
		}
	}
	profileIDs := map[string]int64{}
	rows, err = tx.Query(ctx, `SELECT name, id FROM service_profile WHERE name = ANY($1)`, profiles)
	if err != nil {
		return err
	}
	for rows.Next() {
		var n string
		var id int64
		if err := rows.Scan(&n, &id); err != nil {
			rows.Close()
			return err
		}
		profileIDs[n] = id
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for i, u := range row.impus {
		if _, ok := profileIDs[u.profile]; !ok {
			return fieldErr(fmt.Sprintf("/impus/%d/profile", i), "service profile %s does not exist (create it with: imsctl profile add %s)", u.profile, u.profile)
		}
	}
	// Implicit registration sets: a value naming a set the subscriber's
	// IMPUs are in keeps it; any other value is a label for a new set.
	// A label whose IMPUs all are in one current set, which no other
	// value keeps, keeps that set too (a write without set values).
	sets := map[int64]int64{}
	used := map[int64]bool{}
	for _, u := range row.impus {
		if cur.sets[u.set] {
			sets[u.set], used[u.set] = u.set, true
		}
	}
	for _, u := range row.impus {
		if _, ok := sets[u.set]; ok {
			continue
		}
		if s := soleSet(row.impus, u.set, cur); s != 0 && !used[s] {
			sets[u.set], used[s] = s, true
			continue
		}
		var id int64
		if err := tx.QueryRow(ctx, `INSERT INTO implicit_registration_set DEFAULT VALUES RETURNING id`).Scan(&id); err != nil {
			return err
		}
		sets[u.set] = id
	}
	want := map[string]bool{}
	for _, u := range row.impus {
		want[u.identity] = true
	}
	var removed []int64
	for id, c := range cur.impus {
		if !want[id] {
			removed = append(removed, c.id)
		}
	}
	if len(removed) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM impi_impu WHERE impi_id = $1 AND impu_id = ANY($2)`, impiID, removed); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM impu u WHERE u.id = ANY($1)
			AND NOT EXISTS (SELECT 1 FROM impi_impu x WHERE x.impu_id = u.id)`, removed); err != nil {
			return err
		}
	}
	for _, u := range row.impus {
		if c, ok := cur.impus[u.identity]; ok {
			if _, err := tx.Exec(ctx, `UPDATE impu SET barring = $2, service_profile_id = $3, implicit_set_id = $4
				WHERE id = $1 AND (barring, service_profile_id, implicit_set_id) IS DISTINCT FROM ($2, $3, $4)`,
				c.id, u.barred, profileIDs[u.profile], sets[u.set]); err != nil {
				return err
			}
			continue
		}
		if _, err := tx.Exec(ctx, `WITH n AS (INSERT INTO impu (identity, barring, service_profile_id, implicit_set_id)
			VALUES ($1, $2, $3, $4) RETURNING id) INSERT INTO impi_impu (impi_id, impu_id) SELECT $5, id FROM n`,
			u.identity, u.barred, profileIDs[u.profile], sets[u.set], impiID); err != nil {
			return err
		}
	}
	if len(cur.sets) > 0 {
		var old []int64
		for s := range cur.sets {
			old = append(old, s)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM implicit_registration_set s WHERE s.id = ANY($1)
			AND NOT EXISTS (SELECT 1 FROM impu u WHERE u.implicit_set_id = s.id)`, old); err != nil {
			return err
		}
	}
	return nil
}

// soleSet returns the one current set of the stored IMPUs written with
// set value label, 0 when they are in several or none is stored.
func soleSet(impus []impuRow, label int64, cur *existingSub) int64 {
	var s int64
	for _, u := range impus {
		if u.set != label {
			continue
		}
		c, ok := cur.impus[u.identity]
		if !ok {
			continue
		}
		if s != 0 && c.set != s {
			return 0
		}
		s = c.set
	}
	return s
}

// loadExisting locks the IMPI row and reads what a replace or delete
// starts from; NotFound when the IMPI does not exist.
func loadExisting(ctx context.Context, tx pgx.Tx, impi string) (*existingSub, *storedAuth, error) {
	cur := &existingSub{impus: map[string]curIMPU{}, sets: map[int64]bool{}}
	a := &storedAuth{}
	err := tx.QueryRow(ctx, `SELECT id, imsu_id, k, op, op_type, amf, digest_realm, digest_ha1, password
		FROM impi WHERE identity = $1 FOR UPDATE`, impi).Scan(&cur.impiID, &cur.imsuID, &a.k, &a.op, &a.opType, &a.amf,
		&a.realm, &a.ha1, &a.password)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, notFound("/impi", "no subscriber with IMPI %s", impi)
	}
	if err != nil {
		return nil, nil, err
	}
	rows, err := tx.Query(ctx, `SELECT u.identity, u.id, u.implicit_set_id FROM impi_impu x JOIN impu u ON u.id = x.impu_id
		WHERE x.impi_id = $1`, cur.impiID)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var c curIMPU
		if err := rows.Scan(&id, &c.id, &c.set); err != nil {
			return nil, nil, err
		}
		cur.impus[id] = c
		cur.sets[c.set] = true
	}
	return cur, a, rows.Err()
}

// ReplaceSubscriber replaces the subscriber impi with r in one
// transaction: r.IMPI must be impi or empty; credentials r omits (K,
// OP/OPc, AMF, password) are kept; IMPUs no longer listed are removed
// (deleted when no other IMPI uses them); SQN is reset only when given.
// check sees the stored subscriber first (row locked). It returns the
// subscriber as stored.
func ReplaceSubscriber(ctx context.Context, db DB, impi string, r SubscriberRecord, check Check[SubscriberRecord]) (out SubscriberRecord, err error) {
	if r.IMPI == "" {
		r.IMPI = impi
	}
	if strings.TrimSpace(r.IMPI) != impi {
		return out, fieldErr("/impi", "impi %s differs from the subscriber %s replaced (an IMPI cannot be renamed)", r.IMPI, impi)
	}
	err = inTx(ctx, db, func(tx pgx.Tx) error {
		cur, auth, err := loadExisting(ctx, tx, impi)
		if err != nil {
			return err
		}
		if check != nil {
			now, err := getSubscriber(ctx, tx, impi)
			if err != nil {
				return err
			}
			if err := check(now); err != nil {
				return err
			}
		}
		row, err := r.validate(auth)
		if err != nil {
			return err
		}
		if err := writeSubscriber(ctx, tx, row, cur); err != nil {
			return err
		}
		out, err = getSubscriber(ctx, tx, impi)
		return err
	})
	return out, err
}

// DeleteSubscriber deletes the IMPI (RemoveSubscriber without a check).
func DeleteSubscriber(ctx context.Context, db DB, impi string) (deleted []string, err error) {
	return RemoveSubscriber(ctx, db, impi, nil)
}

// RemoveSubscriber deletes the IMPI, the IMPUs no other IMPI uses (with
// their assignments, Sh data and empty implicit sets) and the IMSU when it
// has no IMPI left, in one transaction, after check (nil: none) accepted
// the stored subscriber. It returns the deleted IMPUs.
func RemoveSubscriber(ctx context.Context, db DB, impi string, check Check[SubscriberRecord]) (deleted []string, err error) {
	err = inTx(ctx, db, func(tx pgx.Tx) error {
		deleted = nil
		cur, _, err := loadExisting(ctx, tx, impi)
		if err != nil {
			return err
		}
		if check != nil {
			now, err := getSubscriber(ctx, tx, impi)
			if err != nil {
				return err
			}
			if err := check(now); err != nil {
				return err
			}
		}
		var impus, sets []int64
		for _, c := range cur.impus {
			impus = append(impus, c.id)
		}
		for s := range cur.sets {
			sets = append(sets, s)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM impi WHERE id = $1`, cur.impiID); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `DELETE FROM impu u WHERE u.id = ANY($1)
			AND NOT EXISTS (SELECT 1 FROM impi_impu x WHERE x.impu_id = u.id) RETURNING identity`, impus)
		if err != nil {
			return err
		}
		if deleted, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		sort.Strings(deleted)
		if _, err := tx.Exec(ctx, `DELETE FROM implicit_registration_set s WHERE s.id = ANY($1)
			AND NOT EXISTS (SELECT 1 FROM impu u WHERE u.implicit_set_id = s.id)`, sets); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM imsu s WHERE s.id = $1 AND NOT EXISTS (SELECT 1 FROM impi i WHERE i.imsu_id = s.id)`, cur.imsuID)
		return err
	})
	return deleted, err
}
