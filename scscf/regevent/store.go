package regevent

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/intern"
	"github.com/imscore/imscore/pkg/pgbatch"
)

// LoadSubscriptions starts the subscription expiry timer, attaches the
// notifier to the S-CSCF's database (Host.DB: table
// scscf_reg_subscription, migration 002 of scscf/migrations) and reloads
// the stored subscriptions; expired ones are ended by the next sweep (a
// terminated NOTIFY, reason timeout). Call it after the S-CSCF's Start
// (which opens the database), with or without a database
// (without, subscriptions live in memory only). The NOTIFYs of reloaded
// subscriptions continue above the stored CSeq and version ceilings
// (stateReserve); the first carries the full state.
func (n *Notifier) LoadSubscriptions(ctx context.Context) error {
	n.swept.Do(func() {
		if n.ctx.Err() == nil {
			n.wg.Add(1)
			go n.sweeper()
		}
	})
	pool := n.host.DB()
	if pool == nil {
		return nil
	}
	n.mu.Lock()
	n.pool = pool
	n.batch = n.host.DBWriter()
	n.mu.Unlock()
	rows, err := pool.Query(ctx, `SELECT call_id, local_tag, remote_tag, impu, aor, local_uri, remote_uri, subscriber, kind,
		target, route_set, local_cseq, version, expires FROM scscf_reg_subscription`)
	if err != nil {
		return fmt.Errorf("scscf: loading reg-event subscriptions: %w", err)
	}
	defer rows.Close()
	var loaded []*regSub
	for rows.Next() {
		var r Subscription
		var cseq int64
		if err := rows.Scan(&r.CallID, &r.LocalTag, &r.RemoteTag, &r.IMPU, &r.AOR, &r.LocalURI, &r.RemoteURI, &r.Subscriber,
			&r.Kind, &r.Target, &r.RouteSet, &cseq, &r.Version, &r.Expires); err != nil {
			return fmt.Errorf("scscf: loading reg-event subscriptions: %w", err)
		}
		r.CSeq = uint32(cseq)
		if r.Kind != SubscriberUE { // as HandleSubscribe keeps them
			r.RemoteURI, r.Subscriber, r.Target = intern.String(r.RemoteURI), intern.String(r.Subscriber), intern.String(r.Target)
			intern.Strings(r.RouteSet)
		}
		loaded = append(loaded, &regSub{Subscription: r, ceilCSeq: r.CSeq, ceilVersion: r.Version, reloaded: true})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("scscf: loading reg-event subscriptions: %w", err)
	}
	n.mu.Lock()
	for _, s := range loaded {
		n.putSubLocked(s)
	}
	n.mu.Unlock()
	n.log.Info("reg-event subscriptions reloaded", zap.Int("subscriptions", len(loaded)))
	return nil
}

func (n *Notifier) db() *pgbatch.Batcher {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.batch
}

// save inserts a subscription row, reserving stateReserve CSeq numbers
// and versions above r's, or updates its target, route set and expiry.
func (n *Notifier) save(ctx context.Context, r *Subscription) error {
	p := n.db()
	if p == nil {
		return nil
	}
	routes := r.RouteSet
	if routes == nil {
		routes = []string{}
	}
	return p.Exec(ctx, `INSERT INTO scscf_reg_subscription (call_id, local_tag, remote_tag, impu, aor, local_uri, remote_uri,
			subscriber, kind, target, route_set, local_cseq, version, expires, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, now())
		ON CONFLICT (call_id, local_tag) DO UPDATE SET target = EXCLUDED.target, route_set = EXCLUDED.route_set,
			expires = EXCLUDED.expires, updated_at = now()`,
		r.CallID, r.LocalTag, r.RemoteTag, r.IMPU, r.AOR, r.LocalURI, r.RemoteURI, r.Subscriber, r.Kind, r.Target, routes,
		int64(r.CSeq)+stateReserve, r.Version+stateReserve, r.Expires.UTC().Truncate(time.Microsecond))
}

// saveState raises the stored CSeq and version ceilings of r to cseq and
// version.
func (n *Notifier) saveState(ctx context.Context, r *Subscription, cseq uint32, version int) error {
	p := n.db()
	if p == nil {
		return nil
	}
	return p.Exec(ctx, `UPDATE scscf_reg_subscription SET local_cseq = GREATEST(local_cseq, $3), version = GREATEST(version, $4),
		updated_at = now() WHERE call_id = $1 AND local_tag = $2`, r.CallID, r.LocalTag, int64(cseq), version)
}

func (n *Notifier) delete(ctx context.Context, r *Subscription) error {
	p := n.db()
	if p == nil {
		return nil
	}
	return p.Exec(ctx, `DELETE FROM scscf_reg_subscription WHERE call_id = $1 AND local_tag = $2`, r.CallID, r.LocalTag)
}
