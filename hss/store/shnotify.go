package store

// Sh notifications (TS 29.328 §6.1.3-6.1.4): the subscriptions a change
// may concern, the digest of what each was last told, and the queue of
// Push-Notification-Requests (migrations/005_sh_notifications.sql).

import (
	"context"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// ShChannel is the PostgreSQL NOTIFY channel of the Sh notification
// tables: the payload is ShQueueChanged when PNRs were queued,
// ShSubscriptionsChanged when subscriptions were added or removed.
const ShChannel = "hss_sh"

// Payloads of ShChannel notifications (the table that changed).
const (
	ShQueueChanged         = "sh_notification"
	ShSubscriptionsChanged = "sh_subscription"
)

// ShNotificationMaxAge is how long a queued PNR waits for its AS (not
// connected, or answering with a transient failure) before it is dropped.
const ShNotificationMaxAge = 24 * time.Hour

// ShWatch is a subscription together with what is needed to rebuild the
// data it is about: the subscribed IMPU's row and its assigned S-CSCF.
type ShWatch struct {
	ShSubscription
	User         IMPU    // the subscribed IMPU's row
	SCSCFName    string  // its assigned S-CSCF, "" when none
	ASID         int64   // the subscribing AS
	ASServerName string  // its SIP URI
	IdentitySets []int16 // IMSPublicIdentity: the Identity-Set values, empty = ALL_IDENTITIES
	Digest       []byte  // SHA-256 of the data last notified; nil when not known yet
}

const watchCols = `x.id, x.data_reference, x.service_indication, x.expires_at, x.identity_sets, x.notified_digest,
	a.id, a.name, coalesce(a.diameter_host, ''), a.server_name, coalesce(sa.scscf_name, ''), ` + impuCols

const watchFrom = ` FROM sh_subscription x JOIN application_server a ON a.id = x.application_server_id
	JOIN impu u ON u.id = x.impu_id JOIN service_profile p ON p.id = u.service_profile_id
	LEFT JOIN scscf_assignment sa ON sa.impu_id = u.id
	WHERE (x.expires_at IS NULL OR x.expires_at > now()) AND x.data_reference = ANY($1::smallint[]) `

func scanWatches(rows pgx.Rows, err error) ([]ShWatch, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ShWatch
	for rows.Next() {
		var w ShWatch
		var exp *time.Time
		var typ, st string
		u := &w.User
		if err := rows.Scan(&w.ID, &w.DataReference, &w.ServiceIndication, &exp, &w.IdentitySets, &w.Digest,
			&w.ASID, &w.AS, &w.ASHost, &w.ASServerName, &w.SCSCFName,
			&u.ID, &u.Identity, &typ, &u.Barring, &u.CanRegister, &u.DisplayName,
			&st, &u.ServiceProfileID, &u.ServiceProfile, &u.IRSID, &u.PSIActivation,
			&u.WildcardPattern, &u.MSISDN); err != nil {
			return nil, err
		}
		u.Type, u.State = IdentityType(typ), UserState(st)
		w.IMPU = u.Identity
		if exp != nil {
			w.ExpiresAt = *exp
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

func refArray(refs []DataReference) []int16 {
	out := make([]int16, len(refs))
	for i, r := range refs {
		out[i] = int16(r)
	}
	return out
}

// ShWatchesNear returns the unexpired subscriptions to refs of the IMPUs
// a registration change of implicit registration set irsID can concern:
// the set's own IMPUs and every IMPU of the subscriptions (IMSUs) whose
// private identities use them (IMSPublicIdentity's ALL_IDENTITIES and
// REGISTERED_IDENTITIES span the whole subscription).
func (s *Store) ShWatchesNear(ctx context.Context, irsID int64, refs []DataReference) (out []ShWatch, err error) {
	err = s.conn(ctx, "ShWatchesNear", func(c *pgx.Conn) error {
		out, err = scanWatches(c.Query(ctx, `SELECT `+watchCols+watchFrom+`AND x.impu_id IN (
			SELECT id FROM impu WHERE implicit_set_id = $2
			UNION
			SELECT xi.impu_id FROM impi_impu xi JOIN impi i ON i.id = xi.impi_id WHERE i.imsu_id IN (
				SELECT i2.imsu_id FROM impu u2 JOIN impi_impu x2 ON x2.impu_id = u2.id JOIN impi i2 ON i2.id = x2.impi_id
				WHERE u2.implicit_set_id = $2))
			ORDER BY x.id`, refArray(refs), irsID))
		return err
	})
	return out, err
}

// ShWatchesByRef returns up to limit unexpired subscriptions to refs with
// an id above after, ordered by id (pages of every subscription a
// provisioning change may concern).
func (s *Store) ShWatchesByRef(ctx context.Context, refs []DataReference, after int64, limit int) (out []ShWatch, err error) {
	err = s.conn(ctx, "ShWatchesByRef", func(c *pgx.Conn) error {
		out, err = scanWatches(c.Query(ctx, `SELECT `+watchCols+watchFrom+`AND x.id > $2 ORDER BY x.id LIMIT $3`,
			refArray(refs), after, limit))
		return err
	})
	return out, err
}

// ShWatchesByID returns the unexpired subscriptions among ids to refs.
func (s *Store) ShWatchesByID(ctx context.Context, refs []DataReference, ids []int64) (out []ShWatch, err error) {
	err = s.conn(ctx, "ShWatchesByID", func(c *pgx.Conn) error {
		out, err = scanWatches(c.Query(ctx, `SELECT `+watchCols+watchFrom+`AND x.id = ANY($2::bigint[]) ORDER BY x.id`,
			refArray(refs), ids))
		return err
	})
	return out, err
}

// ShSubscribed reports whether any subscription (expired ones included,
// until they are purged) is to one of refs.
func (s *Store) ShSubscribed(ctx context.Context, refs []DataReference) (ok bool, err error) {
	err = s.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sh_subscription WHERE data_reference = ANY($1::smallint[]))`,
		refArray(refs)).Scan(&ok)
	return ok, wrap("ShSubscribed", err)
}

// QueueShNotification queues a PNR carrying userData for subscription id
// and records digest as what it was told, in one statement, provided the
// subscription is unexpired and its stored digest is still old: of
// several HSS processes that noticed the same change, one queues it.
// With old nil (nothing known yet) the digest is recorded and nothing is
// queued. queued reports whether a PNR was queued.
func (s *Store) QueueShNotification(ctx context.Context, id int64, old, digest, userData []byte) (queued bool, err error) {
	var n int64
	err = s.queryRow(ctx, `WITH x AS (
		UPDATE sh_subscription SET notified_digest = $3
		WHERE id = $1 AND notified_digest IS NOT DISTINCT FROM $2::bytea AND (expires_at IS NULL OR expires_at > now())
		RETURNING id)
	, q AS (INSERT INTO sh_notification (subscription_id, user_data)
		SELECT id, $4 FROM x WHERE $2::bytea IS NOT NULL RETURNING id)
	SELECT count(*) FROM q`, id, old, digest, userData).Scan(&n)
	return n > 0, wrap("QueueShNotification", err)
}

// ShNotice asks PutRepositoryData to queue a PNR carrying UserData for
// every unexpired subscription to the changed repository data, except
// those of the AS whose Diameter host is Except (the writer, TS 29.328
// §6.1.4: it knows).
type ShNotice struct {
	UserData []byte
	Except   string
}

// queueRepositoryNotice is ShNotice's statement, in PutRepositoryData's
// transaction.
func queueRepositoryNotice(ctx context.Context, tx pgx.Tx, impuID int64, serviceIndication string, n *ShNotice) error {
	if n == nil {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO sh_notification (subscription_id, user_data)
		SELECT x.id, $3 FROM sh_subscription x JOIN application_server a ON a.id = x.application_server_id
		WHERE x.impu_id = $1 AND x.data_reference = 0 AND x.service_indication = $2
			AND (x.expires_at IS NULL OR x.expires_at > now()) AND lower(coalesce(a.diameter_host, '')) <> lower($4)
		ORDER BY x.id`, impuID, serviceIndication, n.UserData, n.Except)
	return err
}

// ShNotification is one queued PNR.
type ShNotification struct {
	ID             int64
	SubscriptionID int64
	IMPU           string // User-Identity/Public-Identity
	ASHost         string // Destination-Host
	UserData       []byte // Sh-Data
	Attempts       int    // including this one
	CreatedAt      time.Time
}

// ClaimShNotifications leases up to limit due PNRs for the ASes whose
// Diameter hosts are hosts (the ones connected here): each is not handed
// out again for lease unless ShNotificationRetry or ShNotificationSent is
// called. Per subscription only the oldest queued PNR is handed out, so
// an AS sees the notifications of one subscription in the order they were
// queued. Ordered by id.
func (s *Store) ClaimShNotifications(ctx context.Context, hosts []string, lease time.Duration, limit int) (out []ShNotification, err error) {
	if len(hosts) == 0 {
		return nil, nil
	}
	lower := make([]string, len(hosts))
	for i, h := range hosts {
		lower[i] = strings.ToLower(h)
	}
	err = s.conn(ctx, "ClaimShNotifications", func(c *pgx.Conn) error {
		out = nil // a retry (Store.conn) starts over
		rows, err := c.Query(ctx, `WITH c AS (
			SELECT n.id FROM sh_notification n
			JOIN sh_subscription x ON x.id = n.subscription_id
			JOIN application_server a ON a.id = x.application_server_id
			WHERE n.due_at <= now() AND lower(a.diameter_host) = ANY($1::text[])
				AND (x.expires_at IS NULL OR x.expires_at > now())
				AND NOT EXISTS (SELECT 1 FROM sh_notification o WHERE o.subscription_id = n.subscription_id AND o.id < n.id)
			ORDER BY n.id LIMIT $3
			FOR UPDATE OF n SKIP LOCKED)
		UPDATE sh_notification n SET due_at = now() + make_interval(secs => $2), attempts = n.attempts + 1
		FROM c, sh_subscription x, impu u, application_server a
		WHERE n.id = c.id AND x.id = n.subscription_id AND u.id = x.impu_id AND a.id = x.application_server_id
		RETURNING n.id, n.subscription_id, u.identity, a.diameter_host, n.user_data, n.attempts, n.created_at`,
			lower, lease.Seconds(), limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (n ShNotification, err error) {
			err = r.Scan(&n.ID, &n.SubscriptionID, &n.IMPU, &n.ASHost, &n.UserData, &n.Attempts, &n.CreatedAt)
			return n, err
		})
		return err
	})
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].ID < out[j-1].ID; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, err
}

// ShNotificationSent removes a PNR the AS answered (or refused for good).
func (s *Store) ShNotificationSent(ctx context.Context, id int64) error {
	_, err := s.exec(ctx, `DELETE FROM sh_notification WHERE id = $1`, id)
	return wrap("ShNotificationSent", err)
}

// ShNotificationRetry makes a PNR due again after d.
func (s *Store) ShNotificationRetry(ctx context.Context, id int64, d time.Duration) error {
	_, err := s.exec(ctx, `UPDATE sh_notification SET due_at = now() + make_interval(secs => $2) WHERE id = $1`, id, d.Seconds())
	return wrap("ShNotificationRetry", err)
}

// PurgeSh deletes expired subscriptions (with their queued PNRs; TS
// 29.328 §6.1.3: a subscription ends at its Expiry-Time) and PNRs queued
// longer than maxAge ago.
func (s *Store) PurgeSh(ctx context.Context, maxAge time.Duration) (subs, notifications int64, err error) {
	err = s.conn(ctx, "PurgeSh", func(c *pgx.Conn) error {
		tag, err := c.Exec(ctx, `DELETE FROM sh_subscription WHERE expires_at <= now()`)
		if err != nil {
			return err
		}
		subs = tag.RowsAffected()
		tag, err = c.Exec(ctx, `DELETE FROM sh_notification WHERE created_at < now() - make_interval(secs => $1)`, maxAge.Seconds())
		notifications = tag.RowsAffected()
		return err
	})
	return subs, notifications, err
}

// PublicIdentitiesOf returns every public identity of the user of IMPU
// row id, ordered by id: the IMPUs of its implicit registration set and
// every IMPU associated with a private identity of the subscriptions
// (IMSUs) whose private identities use that set (Sh IMSPublicIdentity,
// Identity-Set ALL_IDENTITIES; the caller picks the other sets out).
func (s *Store) PublicIdentitiesOf(ctx context.Context, id int64) (us []IMPU, err error) {
	err = s.conn(ctx, "PublicIdentitiesOf", func(c *pgx.Conn) error {
		us, err = collectIMPUs(c.Query(ctx, `WITH me AS (SELECT implicit_set_id AS irs FROM impu WHERE id = $1)
			SELECT `+impuCols+impuFrom+`WHERE u.id IN (
				SELECT id FROM impu WHERE implicit_set_id = (SELECT irs FROM me)
				UNION
				SELECT xi.impu_id FROM impi_impu xi JOIN impi i ON i.id = xi.impi_id WHERE i.imsu_id IN (
					SELECT i2.imsu_id FROM impu u2 JOIN impi_impu x2 ON x2.impu_id = u2.id JOIN impi i2 ON i2.id = x2.impi_id
					WHERE u2.implicit_set_id = (SELECT irs FROM me)))
			ORDER BY u.id`, id))
		if err == nil && len(us) == 0 {
			err = pgx.ErrNoRows
		}
		return err
	})
	return us, err
}

// ShChargingInfo returns the charging functions of IMPU row id for Sh
// ChargingInformation (TS 29.328 §7.6.5): the IMPU's own, else those of
// its subscription (IMSU), else of its service profile; nil when none.
func (s *Store) ShChargingInfo(ctx context.Context, id int64) (ci *ChargingInfo, err error) {
	var x ChargingInfo
	err = s.queryRow(ctx, `SELECT coalesce(c.primary_ccf, ''), coalesce(c.secondary_ccf, ''),
			coalesce(c.primary_ecf, ''), coalesce(c.secondary_ecf, '')
		FROM impu u JOIN service_profile p ON p.id = u.service_profile_id
		JOIN charging_function c ON c.id = coalesce(u.charging_function_id,
			(SELECT s.charging_function_id FROM impi_impu xi JOIN impi i ON i.id = xi.impi_id JOIN imsu s ON s.id = i.imsu_id
			 WHERE xi.impu_id = u.id AND s.charging_function_id IS NOT NULL ORDER BY i.id LIMIT 1),
			p.charging_function_id)
		WHERE u.id = $1`, id).Scan(&x.PrimaryCCF, &x.SecondaryCCF, &x.PrimaryECF, &x.SecondaryECF)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("ShChargingInfo", err)
	}
	return &x, nil
}
