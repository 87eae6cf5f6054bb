package provision

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imscore/imscore/pkg/imsuri"
)

// SubscriberFilter selects subscribers for ListSubscriberRecords.
type SubscriberFilter struct {
	ListOptions        // After: an IMPI; Query: substring of the IMPI or of one of its IMPUs
	IMPU        string // only the IMPI(s) of this IMPU
	Profile     string // only subscribers with an IMPU of this service profile
	IMSU        string // only this subscription's IMPIs
	Registered  *bool  // only subscribers with (true) or without (false) a registered IMPU
}

const subscriberCols = `i.id, i.identity, s.name, i.auth_schemes, coalesce(i.default_scheme, ''), i.k IS NOT NULL,
	coalesce(i.op_type, ''), i.amf, coalesce(i.digest_realm, ''), i.digest_ha1 IS NOT NULL OR i.password IS NOT NULL,
	coalesce(s.preferred_scscf, ''), coalesce(i.k, ''), coalesce(i.op, ''), coalesce(i.op_type, ''),
	coalesce(i.digest_ha1, ''), coalesce(i.password, '')`

// readSubscribers returns the subscribers the WHERE clause where (over
// impi i JOIN imsu s) selects, ordered by IMPI, at most limit, and
// whether more follow.
func readSubscribers(ctx context.Context, q DB, where string, limit int, args ...any) ([]SubscriberRecord, bool, error) {
	return masterDetail(ctx, q, `SELECT `+subscriberCols+` FROM impi i JOIN imsu s ON s.id = i.imsu_id WHERE `+where+` ORDER BY i.identity`,
		args, limit,
		func(rows pgx.Rows) (r SubscriberRecord, id int64, err error) {
			var amf, k, op, pw []byte
			var def, opType, ha1 string
			err = rows.Scan(&id, &r.IMPI, &r.IMSU, &r.AuthSchemes, &def, &r.HasK, &r.OPType, &amf, &r.DigestRealm,
				&r.HasPassword, &r.PreferredSCSCF, &k, &op, &opType, &ha1, &pw)
			if r.HasK {
				r.AMF = hex.EncodeToString(amf)
			}
			r.AuthSchemes = defaultFirst(r.AuthSchemes, def)
			r.secrets = []byte(fmt.Sprintf("%x|%x|%s|%s|%x", k, op, opType, ha1, pw))
			r.IMPUs = []PublicIdentity{}
			return r, id, err
		},
		`SELECT x.impi_id, u.identity, u.type, u.barring, p.name, u.implicit_set_id
		FROM impi_impu x JOIN impu u ON u.id = x.impu_id JOIN service_profile p ON p.id = u.service_profile_id
		WHERE x.impi_id = ANY($1) ORDER BY x.impi_id, u.id`,
		func(rows pgx.Rows) (id int64, add func(*SubscriberRecord), err error) {
			var u PublicIdentity
			err = rows.Scan(&id, &u.Identity, &u.Type, &u.Barred, &u.Profile, &u.ImplicitSet)
			return id, func(r *SubscriberRecord) { r.IMPUs = append(r.IMPUs, u) }, err
		})
}

func defaultFirst(schemes []string, def string) []string {
	if def == "" || len(schemes) == 0 || schemes[0] == def {
		return schemes
	}
	out := []string{def}
	for _, s := range schemes {
		if s != def {
			out = append(out, s)
		}
	}
	return out
}

func getSubscriber(ctx context.Context, q DB, impi string) (SubscriberRecord, error) {
	rs, _, err := readSubscribers(ctx, q, `i.identity = $1`, 1, impi)
	if err == nil && len(rs) == 0 {
		err = notFound("/impi", "no subscriber with IMPI %s", impi)
	}
	if err != nil {
		return SubscriberRecord{}, err
	}
	return rs[0], nil
}

// GetSubscriber returns the subscriber with this IMPI (NotFound when none).
func GetSubscriber(ctx context.Context, db DB, impi string) (SubscriberRecord, error) {
	return getSubscriber(ctx, db, impi)
}

// ListSubscriberRecords returns one page of the subscribers f selects,
// ordered by IMPI, and whether more follow.
func ListSubscriberRecords(ctx context.Context, db DB, f SubscriberFilter) (out []SubscriberRecord, more bool, err error) {
	where := []string{"true"}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.After != "" {
		where = append(where, "i.identity > "+arg(f.After))
	}
	if f.Query != "" {
		p := arg(likePattern(f.Query))
		where = append(where, `(i.identity ILIKE `+p+` OR EXISTS (SELECT 1 FROM impi_impu x JOIN impu u ON u.id = x.impu_id
			WHERE x.impi_id = i.id AND u.identity ILIKE `+p+`))`)
	}
	if f.IMPU != "" {
		where = append(where, `i.id IN (SELECT x.impi_id FROM impi_impu x JOIN impu u ON u.id = x.impu_id WHERE u.identity = `+
			arg(imsuri.Canonical(f.IMPU))+`)`)
	}
	if f.Profile != "" {
		where = append(where, `EXISTS (SELECT 1 FROM impi_impu x JOIN impu u ON u.id = x.impu_id
			JOIN service_profile p ON p.id = u.service_profile_id WHERE x.impi_id = i.id AND p.name = `+arg(f.Profile)+`)`)
	}
	if f.IMSU != "" {
		where = append(where, "s.name = "+arg(f.IMSU))
	}
	if f.Registered != nil {
		not := "NOT "
		if *f.Registered {
			not = ""
		}
		where = append(where, not+`EXISTS (SELECT 1 FROM impi_impu x JOIN impu u ON u.id = x.impu_id
			WHERE x.impi_id = i.id AND u.user_state = 'registered')`)
	}
	return readSubscribers(ctx, db, strings.Join(where, " AND "), f.limit(), args...)
}

// Registration is the registration state the HSS keeps for a subscriber:
// per IMPU the state and the serving S-CSCF (TS 29.228 §6.1.2), and the
// IMPI's SQN counter (TS 33.102 Annex C). Read-only.
type Registration struct {
	IMPI       string      `json:"impi" required:"true" doc:"private identity"`
	Registered bool        `json:"registered" required:"true" doc:"at least one IMPU is registered"`
	SQN        uint64      `json:"sqn" required:"true" doc:"last SQN reserved for this IMPI (48 bits)"`
	IMPUs      []IMPUState `json:"impus" required:"true" doc:"state of each IMPU"`
}

// IMPUState is one IMPU in Registration.
type IMPUState struct {
	Identity     string     `json:"identity" required:"true" doc:"the IMPU"`
	State        string     `json:"state" required:"true" doc:"not_registered, registered, or unregistered (an S-CSCF serves it for unregistered services)"`
	ImplicitSet  int64      `json:"implicit_set" required:"true" doc:"implicit registration set id"`
	SCSCF        string     `json:"scscf,omitempty" doc:"SIP URI of the assigned S-CSCF"`
	DiameterHost string     `json:"scscf_diameter_host,omitempty" doc:"Diameter identity of the assigned S-CSCF"`
	AssignedAt   *time.Time `json:"assigned_at,omitempty" doc:"when the S-CSCF was assigned"`
}

// GetRegistration returns the registration state of the subscriber impi
// (NotFound when unknown).
func GetRegistration(ctx context.Context, db DB, impi string) (Registration, error) {
	reg := Registration{IMPI: impi, IMPUs: []IMPUState{}}
	var id int64
	var sqn int64
	err := db.QueryRow(ctx, `SELECT id, sqn FROM impi WHERE identity = $1`, impi).Scan(&id, &sqn)
	if errors.Is(err, pgx.ErrNoRows) {
		return reg, notFound("/impi", "no subscriber with IMPI %s", impi)
	}
	if err != nil {
		return reg, err
	}
	reg.SQN = uint64(sqn)
	rows, err := db.Query(ctx, `SELECT u.identity, u.user_state, u.implicit_set_id, coalesce(a.scscf_name, ''),
		coalesce(a.diameter_host, ''), a.assigned_at
		FROM impi_impu x JOIN impu u ON u.id = x.impu_id LEFT JOIN scscf_assignment a ON a.impu_id = u.id
		WHERE x.impi_id = $1 ORDER BY u.id`, id)
	if err != nil {
		return reg, err
	}
	reg.IMPUs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (IMPUState, error) {
		var s IMPUState
		err := r.Scan(&s.Identity, &s.State, &s.ImplicitSet, &s.SCSCF, &s.DiameterHost, &s.AssignedAt)
		return s, err
	})
	for _, s := range reg.IMPUs {
		reg.Registered = reg.Registered || s.State == "registered"
	}
	return reg, err
}

// SubscriberInfo is what "imsctl subscriber show/list" print: the
// subscriber and its registration state. Secrets are never printed.
type SubscriberInfo struct {
	Subscriber   SubscriberRecord `json:"subscriber"`
	Registration Registration     `json:"registration"`
}

// WriteText prints s as human-readable lines.
func (s SubscriberInfo) WriteText(w io.Writer) {
	r, reg := s.Subscriber, s.Registration
	fmt.Fprintf(w, "IMPI %s (IMSU %s)\n", r.IMPI, r.IMSU)
	def := ""
	if len(r.AuthSchemes) > 0 {
		def = r.AuthSchemes[0]
	}
	fmt.Fprintf(w, "  auth schemes: %s (default %s)\n", strings.Join(r.AuthSchemes, ","), def)
	if r.HasK {
		fmt.Fprintf(w, "  AKA: K set, %s set, AMF %s, SQN %d (0x%012x)\n", strings.ToUpper(r.OPType), r.AMF, reg.SQN, reg.SQN)
	}
	if r.HasPassword {
		fmt.Fprintf(w, "  digest: HA1 set for realm %s\n", r.DigestRealm)
	}
	if r.PreferredSCSCF != "" {
		fmt.Fprintf(w, "  preferred S-CSCF: %s\n", r.PreferredSCSCF)
	}
	state := map[string]IMPUState{}
	for _, u := range reg.IMPUs {
		state[u.Identity] = u
	}
	for _, u := range r.IMPUs {
		bar := ""
		if u.Barred {
			bar = " BARRED"
		}
		st := state[u.Identity]
		fmt.Fprintf(w, "  IMPU %s type=%s state=%s profile=%s implicit-set=%d%s", u.Identity, u.Type, st.State, u.Profile, u.ImplicitSet, bar)
		if st.SCSCF != "" {
			fmt.Fprintf(w, " scscf=%s", st.SCSCF)
		}
		fmt.Fprintln(w)
	}
}

func infoOf(ctx context.Context, db DB, r SubscriberRecord) (SubscriberInfo, error) {
	reg, err := GetRegistration(ctx, db, r.IMPI)
	return SubscriberInfo{Subscriber: r, Registration: reg}, err
}

// ShowSubscriber returns the subscriber(s) of id: the IMPI itself, or for
// an IMPU (sip:, sips:, tel:) every IMPI using it.
func ShowSubscriber(ctx context.Context, db DB, id string) ([]SubscriberInfo, error) {
	var rs []SubscriberRecord
	var err error
	if CheckIMPU(id) == nil {
		id = imsuri.Canonical(id)
		rs, _, err = ListSubscriberRecords(ctx, db, SubscriberFilter{IMPU: id, ListOptions: ListOptions{Limit: MaxLimit}})
	} else {
		var r SubscriberRecord
		if r, err = GetSubscriber(ctx, db, id); err == nil {
			rs = []SubscriberRecord{r}
		} else if IsNotFound(err) {
			err = nil
		}
	}
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return nil, notFound("", "no subscriber with IMPI or IMPU %s", id)
	}
	var out []SubscriberInfo
	for _, r := range rs {
		in, err := infoOf(ctx, db, r)
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

// ListSubscribers returns every IMPI with its registration state, ordered
// by identity.
func ListSubscribers(ctx context.Context, db DB) ([]SubscriberInfo, error) {
	out := []SubscriberInfo{}
	f := SubscriberFilter{ListOptions: ListOptions{Limit: MaxLimit}}
	for {
		rs, more, err := ListSubscriberRecords(ctx, db, f)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			in, err := infoOf(ctx, db, r)
			if err != nil {
				return nil, err
			}
			out = append(out, in)
		}
		if !more {
			return out, nil
		}
		f.After = rs[len(rs)-1].IMPI
	}
}
