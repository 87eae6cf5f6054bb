package store

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// DataReference is the Sh Data-Reference AVP value (TS 29.329 §6.3.4).
type DataReference int16

// Data references (TS 29.329 §6.3.4).
const (
	RepositoryData         DataReference = 0
	IMSPublicIdentity      DataReference = 10
	IMSUserState           DataReference = 11
	SCSCFName              DataReference = 12
	InitialFilterCriteria  DataReference = 13
	LocationInformation    DataReference = 14
	UserStateCS            DataReference = 15
	ChargingInformation    DataReference = 16
	MSISDN                 DataReference = 17
	PSIActivation          DataReference = 18
	DSAI                   DataReference = 19
	AliasesRepositoryData  DataReference = 20
	IMSPrivateUserIdentity DataReference = 33
)

// MaxDataReference is the highest Data-Reference value TS 29.329 §6.3.4
// defines (UE-5G-SRVCC-Capability); 1..9 are not used.
const MaxDataReference DataReference = 35

// Defined reports whether d is a Data-Reference value TS 29.329 §6.3.4
// defines (whether or not this HSS serves it).
func (d DataReference) Defined() bool {
	return d == RepositoryData || (d >= IMSPublicIdentity && d <= MaxDataReference)
}

// DataReferenceNames maps the names used by imsctl and logs to codes.
var DataReferenceNames = map[string]DataReference{
	"RepositoryData":         RepositoryData,
	"IMSPublicIdentity":      IMSPublicIdentity,
	"IMSUserState":           IMSUserState,
	"S-CSCFName":             SCSCFName,
	"InitialFilterCriteria":  InitialFilterCriteria,
	"LocationInformation":    LocationInformation,
	"UserState":              UserStateCS,
	"ChargingInformation":    ChargingInformation,
	"MSISDN":                 MSISDN,
	"PSIActivation":          PSIActivation,
	"DSAI":                   DSAI,
	"AliasesRepositoryData":  AliasesRepositoryData,
	"IMSPrivateUserIdentity": IMSPrivateUserIdentity,
}

// String returns the TS 29.329 name, or the number.
func (d DataReference) String() string {
	for n, v := range DataReferenceNames {
		if v == d {
			return n
		}
	}
	return "DataReference(" + strconv.Itoa(int(d)) + ")"
}

// ShPermission says which Sh requests an AS may make for one data
// reference (TS 29.328 §6.1.1-6.1.3: otherwise
// DIAMETER_ERROR_USER_DATA_CANNOT_BE_READ / _MODIFIED / _NOT_ALLOWED).
type ShPermission struct {
	DataReference DataReference
	UDR, PUR, SNR bool
}

// ASAccess is an application server and its Sh permissions.
type ASAccess struct {
	ApplicationServer
	Permissions map[DataReference]ShPermission
}

// Allowed reports whether the AS may send request ("udr", "pur" or "snr")
// for data reference d.
func (a ASAccess) Allowed(d DataReference, request string) bool {
	p, ok := a.Permissions[d]
	if !ok {
		return false
	}
	switch request {
	case "udr":
		return p.UDR
	case "pur":
		return p.PUR
	case "snr":
		return p.SNR
	}
	return false
}

// ASByOriginHost returns the application server whose Sh Diameter identity
// is originHost and its permissions, for authorising UDR/PUR/SNR
// (TS 29.328 §6.1; unknown AS → DIAMETER_ERROR_USER_DATA_CANNOT_BE_READ or
// _NOT_ALLOWED by the caller). ErrNotFound when no AS has that host.
func (s *Store) ASByOriginHost(ctx context.Context, originHost string) (a ASAccess, err error) {
	return s.asAccess(ctx, "ASByOriginHost", `lower(diameter_host) = lower($1)`, originHost)
}

// ASByName is ASByOriginHost keyed by the provisioned AS name.
func (s *Store) ASByName(ctx context.Context, name string) (a ASAccess, err error) {
	return s.asAccess(ctx, "ASByName", `name = $1`, name)
}

func (s *Store) asAccess(ctx context.Context, op, where, arg string) (a ASAccess, err error) {
	err = s.conn(ctx, op, func(c *pgx.Conn) error {
		x := &a.ApplicationServer
		if err := c.QueryRow(ctx, `SELECT id, name, server_name, default_handling, coalesce(service_info, ''),
			include_register_request, include_register_response, coalesce(diameter_host, '')
			FROM application_server WHERE `+where, arg).Scan(&x.ID, &x.Name, &x.ServerName, &x.DefaultHandling,
			&x.ServiceInfo, &x.IncludeRegisterRequest, &x.IncludeRegisterResponse, &x.DiameterHost); err != nil {
			return err
		}
		rows, err := c.Query(ctx, `SELECT data_reference, udr, pur, snr FROM as_permission WHERE application_server_id = $1`, x.ID)
		if err != nil {
			return err
		}
		defer rows.Close()
		a.Permissions = map[DataReference]ShPermission{}
		for rows.Next() {
			var p ShPermission
			if err := rows.Scan(&p.DataReference, &p.UDR, &p.PUR, &p.SNR); err != nil {
				return err
			}
			a.Permissions[p.DataReference] = p
		}
		return rows.Err()
	})
	return a, err
}

// Repository is one piece of Sh transparent data (TS 29.328 §7.6.1).
type Repository struct {
	ServiceIndication string
	SequenceNumber    int // 0..65535
	Data              []byte
	UpdatedAt         time.Time
}

// RepositoryData returns the transparent data stored for impu under
// serviceIndication (UDR with Data-Reference RepositoryData, TS 29.328
// §6.1.1). ErrNotFound when the IMPU is unknown or nothing is stored
// (check LookupIMPU first to tell the two apart).
func (s *Store) RepositoryData(ctx context.Context, impu, serviceIndication string) (r Repository, err error) {
	err = s.conn(ctx, "RepositoryData", func(c *pgx.Conn) error {
		u, err := lookupIMPU(ctx, c, impu, false)
		if err != nil {
			return err
		}
		return c.QueryRow(ctx, `SELECT service_indication, sequence_number, data, updated_at FROM sh_repository_data
			WHERE impu_id = $1 AND service_indication = $2`, u.ID, serviceIndication).Scan(
			&r.ServiceIndication, &r.SequenceNumber, &r.Data, &r.UpdatedAt)
	})
	return r, err
}

// NextSequenceNumber returns the sequence number that follows n for
// repository data (TS 29.328 §7.6.1: 0 is used only for creation; after
// 65535 comes 1).
func NextSequenceNumber(n int) int {
	if n >= 65535 {
		return 1
	}
	return n + 1
}

// PutRepositoryData stores (or, with data == nil, deletes) transparent
// data for impu (PUR with RepositoryData, TS 29.328 §6.1.2.1). The
// sequence number must be 0 to create data that does not exist and
// NextSequenceNumber(stored) to change or delete existing data; otherwise
// ErrOutOfSync (DIAMETER_ERROR_TRANSPARENT_DATA_OUT_OF_SYNC). Deleting data
// that does not exist returns ErrNotFound. The row is locked for the
// check-and-write. With notice, the PNRs to the subscribed ASes are queued
// in the same transaction (TS 29.328 §6.1.4).
func (s *Store) PutRepositoryData(ctx context.Context, impu, serviceIndication string, seq int, data []byte, notice *ShNotice) error {
	// Not retried: a repeat of a write committed just before the session
	// ended would find its own sequence number and answer out of sync.
	return s.txOnce(ctx, "PutRepositoryData", func(tx pgx.Tx) error {
		u, err := lookupIMPU(ctx, tx, impu, false)
		if err != nil {
			return err
		}
		var cur int
		err = tx.QueryRow(ctx, `SELECT sequence_number FROM sh_repository_data
			WHERE impu_id = $1 AND service_indication = $2 FOR UPDATE`, u.ID, serviceIndication).Scan(&cur)
		exists := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		switch {
		case !exists && data == nil:
			return ErrNotFound
		case !exists && seq != 0:
			return ErrOutOfSync
		case exists && seq != NextSequenceNumber(cur):
			return ErrOutOfSync
		case data == nil:
			_, err = tx.Exec(ctx, `DELETE FROM sh_repository_data WHERE impu_id = $1 AND service_indication = $2`, u.ID, serviceIndication)
		default:
			_, err = tx.Exec(ctx, `INSERT INTO sh_repository_data (impu_id, service_indication, sequence_number, data)
				VALUES ($1, $2, $3, $4) ON CONFLICT (impu_id, service_indication)
				DO UPDATE SET sequence_number = EXCLUDED.sequence_number, data = EXCLUDED.data, updated_at = now()`,
				u.ID, serviceIndication, seq, data)
		}
		if err != nil {
			return err
		}
		return queueRepositoryNotice(ctx, tx, u.ID, serviceIndication, notice)
	})
}

// ShSubscription is an AS's subscription to notifications (SNR, TS 29.328
// §6.1.3); the HSS sends PNR (§6.1.4) while it lasts.
type ShSubscription struct {
	ID                int64
	IMPU              string
	AS                string // AS name
	ASHost            string // its Diameter host
	DataReference     DataReference
	ServiceIndication string
	ExpiresAt         time.Time // zero = no expiry
}

// Subscribe records (or renews) the subscription of the AS with Diameter
// host asHost to data reference d of impu (SNR with Subs-Req-Type
// Subscribe, TS 29.328 §6.1.3). expires zero means no expiry. ErrNotFound
// when the IMPU or AS is unknown.
func (s *Store) Subscribe(ctx context.Context, impu, asHost string, d DataReference, serviceIndication string, expires time.Time) (id int64, err error) {
	id, _, err = s.SubscribeWith(ctx, SubscribeRequest{IMPU: impu, ASHost: asHost, Ref: d,
		ServiceIndication: serviceIndication, Expires: expires})
	return id, err
}

// SubscribeRequest is one subscription of an SNR (TS 29.328 §6.1.3).
type SubscribeRequest struct {
	IMPU              string
	ASHost            string // the subscribing AS's Diameter host
	Ref               DataReference
	ServiceIndication string    // RepositoryData; "" otherwise
	IdentitySets      []int16   // IMSPublicIdentity: Identity-Set values, empty = ALL_IDENTITIES
	Expires           time.Time // zero: no expiry
	// Digest is the SHA-256 of the data the subscription is about as it
	// is now (what a later change is compared with); nil when not known.
	Digest []byte
}

// SubscribeWith records (or renews) a subscription. A renewal sets the
// expiry and the identity sets, and keeps the stored digest unless the
// identity sets changed (then the data differs) or none was stored.
// created reports a new subscription. ErrNotFound when the IMPU or AS is
// unknown.
func (s *Store) SubscribeWith(ctx context.Context, r SubscribeRequest) (id int64, created bool, err error) {
	var exp *time.Time
	if !r.Expires.IsZero() {
		exp = &r.Expires
	}
	sets := r.IdentitySets
	if sets == nil {
		sets = []int16{}
	}
	err = s.tx(ctx, "Subscribe", func(tx pgx.Tx) error {
		u, err := lookupIMPU(ctx, tx, r.IMPU, false)
		if err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO sh_subscription (impu_id, application_server_id, data_reference, service_indication,
				expires_at, identity_sets, notified_digest)
			SELECT $1, id, $3, $4, $5, $6, $7 FROM application_server WHERE lower(diameter_host) = lower($2)
			ON CONFLICT (impu_id, application_server_id, data_reference, service_indication)
			DO UPDATE SET expires_at = EXCLUDED.expires_at, identity_sets = EXCLUDED.identity_sets,
				notified_digest = CASE WHEN sh_subscription.notified_digest IS NULL
					OR sh_subscription.identity_sets IS DISTINCT FROM EXCLUDED.identity_sets
					THEN EXCLUDED.notified_digest ELSE sh_subscription.notified_digest END
			RETURNING id, xmax = 0`,
			u.ID, r.ASHost, int16(r.Ref), r.ServiceIndication, exp, sets, r.Digest).Scan(&id, &created)
	})
	return id, created, err
}

// Unsubscribe removes the subscription (SNR with Subs-Req-Type
// Unsubscribe). ErrNotFound when there was none.
func (s *Store) Unsubscribe(ctx context.Context, impu, asHost string, d DataReference, serviceIndication string) error {
	return s.conn(ctx, "Unsubscribe", func(c *pgx.Conn) error {
		u, err := lookupIMPU(ctx, c, impu, false)
		if err != nil {
			return err
		}
		tag, err := c.Exec(ctx, `DELETE FROM sh_subscription x USING application_server a
			WHERE x.application_server_id = a.id AND lower(a.diameter_host) = lower($2)
			AND x.impu_id = $1 AND x.data_reference = $3 AND x.service_indication = $4`,
			u.ID, asHost, int16(d), serviceIndication)
		if err == nil && tag.RowsAffected() == 0 {
			err = pgx.ErrNoRows
		}
		return err
	})
}

// Subscribers returns the unexpired subscriptions to data reference d of
// impu, i.e. who gets a PNR when it changes (TS 29.328 §6.1.4).
// serviceIndication filters RepositoryData subscriptions ("" = all).
func (s *Store) Subscribers(ctx context.Context, impu string, d DataReference, serviceIndication string) (out []ShSubscription, err error) {
	err = s.conn(ctx, "Subscribers", func(c *pgx.Conn) error {
		out = nil // a retry (Store.conn) starts over
		u, err := lookupIMPU(ctx, c, impu, false)
		if err != nil {
			return err
		}
		rows, err := c.Query(ctx, `SELECT x.id, a.name, coalesce(a.diameter_host, ''), x.data_reference, x.service_indication, x.expires_at
			FROM sh_subscription x JOIN application_server a ON a.id = x.application_server_id
			WHERE x.impu_id = $1 AND x.data_reference = $2 AND ($3 = '' OR x.service_indication = $3)
			AND (x.expires_at IS NULL OR x.expires_at > now()) ORDER BY x.id`, u.ID, int16(d), serviceIndication)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			x := ShSubscription{IMPU: u.Identity}
			var exp *time.Time
			if err := rows.Scan(&x.ID, &x.AS, &x.ASHost, &x.DataReference, &x.ServiceIndication, &exp); err != nil {
				return err
			}
			if exp != nil {
				x.ExpiresAt = *exp
			}
			out = append(out, x)
		}
		return rows.Err()
	})
	return out, err
}
