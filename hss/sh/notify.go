package sh

// Notifications of changes the HSS learns of outside Sh (TS 29.328
// §6.1.4): registrations (the Cx hook: SAR and RTR call
// RegistrationChanged with the implicit registration sets they wrote) and
// provisioning (every NOTIFY hss_userdata: ProvisioningChanged).
//
// Each subscription stores the digest of the data it was last told
// (store.ShWatch.Digest). After a change the notifier rebuilds the data
// of the subscriptions it may concern, exactly as a PNR would carry it,
// and queues a PNR for each whose digest differs
// (store.QueueShNotification, a compare-and-set: one HSS process queues a
// change that several noticed). So an AS is told the data it now reads,
// each change once; changes between two looks are folded into one PNR
// with the latest data.
//
// The Cx hook is gated: registrations cost nothing while nobody
// subscribes to registration data. The gate is what the database says
// (any subscription to IMSPublicIdentity, IMSUserState or S-CSCFName),
// read again after every NOTIFY hss_sh 'sh_subscription', and set at once
// by an SNR here. While the HSS does not listen to the notifications
// (SetLive false) the gate is open.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/imscore/imscore/hss/store"
)

// registrationRefs change with a registration (SAR, RTR): the data the
// Cx hook looks at. provisioningRefs change with provisioning (imsctl,
// NOTIFY hss_userdata).
var (
	registrationRefs = []store.DataReference{store.IMSPublicIdentity, store.IMSUserState, store.SCSCFName}
	provisioningRefs = []store.DataReference{store.IMSPublicIdentity, store.InitialFilterCriteria}
	watchedRefs      = []store.DataReference{store.IMSPublicIdentity, store.IMSUserState, store.SCSCFName, store.InitialFilterCriteria}
)

// provisioningDelay gathers the notifications of one provisioning
// transaction (one per table it wrote) into one look.
const provisioningDelay = 100 * time.Millisecond

// watchPage is the number of subscriptions read at once after a
// provisioning change.
const watchPage = 500

// gate says whether registrations may concern a subscription.
type gate struct {
	mu        sync.Mutex
	listening bool   // the HSS listens to hss_sh (SetLive)
	known     bool   // any is what the database said since then
	any       bool   // some subscription is to registration data
	gen       uint64 // moved on by set and SetLive: a read begun before is stale
}

func (g *gate) open() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.known || g.any
}

func (g *gate) set() {
	g.mu.Lock()
	g.any = true
	g.gen++
	g.mu.Unlock()
}

func (g *gate) setListening(l bool) {
	g.mu.Lock()
	g.listening, g.known = l, false
	g.gen++
	g.mu.Unlock()
}

// reload stores what read says, unless set or setListening was called
// meanwhile or the HSS does not listen (then the gate stays open).
func (g *gate) reload(read func() (bool, error)) error {
	g.mu.Lock()
	gen := g.gen
	g.mu.Unlock()
	v, err := read()
	if err != nil {
		return err
	}
	g.mu.Lock()
	if g.gen == gen && g.listening {
		g.any, g.known = v, true
	}
	g.mu.Unlock()
	return nil
}

// notifier holds the work waiting for the notifier's goroutines.
type notifier struct {
	gate gate

	mu           sync.Mutex
	irs          map[int64]bool // implicit registration sets to look at
	ids          map[int64]bool // subscriptions to look at
	provisioning bool           // look at every provisioning-dependent subscription
	reloadGate   bool
	work         chan struct{} // the reconciler has work
	kick         chan struct{} // the PNR queue has rows
}

func (s *Server) notifier() *notifier {
	s.once.Do(func() {
		s.n = &notifier{irs: map[int64]bool{}, ids: map[int64]bool{},
			work: make(chan struct{}, 1), kick: make(chan struct{}, 1)}
	})
	return s.n
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (n *notifier) addIRS(irs ...int64) { n.add(func() map[int64]bool { return n.irs }, irs) }

func (n *notifier) addIDs(ids ...int64) { n.add(func() map[int64]bool { return n.ids }, ids) }

// add puts ids into the set set returns (n.irs or n.ids, read under the
// lock) and wakes the reconciler.
func (n *notifier) add(set func() map[int64]bool, ids []int64) {
	n.mu.Lock()
	m := set()
	for _, id := range ids {
		m[id] = true
	}
	n.mu.Unlock()
	wake(n.work)
}

// putBack records work that failed, to be done again at the next wake-up
// (reconcileLoop schedules one a poll interval later).
func (n *notifier) putBack(f func()) {
	n.mu.Lock()
	f()
	n.mu.Unlock()
}

// request records work (f runs under the lock) and wakes the reconciler.
func (n *notifier) request(f func()) {
	n.putBack(f)
	wake(n.work)
}

// RegistrationChanged tells the notifier that the registration state or
// S-CSCF of implicit registration sets irs may have changed (SAR, RTR).
// It returns at once; nothing is read unless some AS subscribes to
// registration data.
func (s *Server) RegistrationChanged(irs ...int64) {
	n := s.notifier()
	if len(irs) > 0 && n.gate.open() {
		n.addIRS(irs...)
	}
}

// ProvisioningChanged tells the notifier that provisioned data changed
// (NOTIFY hss_userdata): iFC and public identity subscriptions are looked
// at shortly.
func (s *Server) ProvisioningChanged() {
	n := s.notifier()
	n.request(func() { n.provisioning = true })
}

// SubscriptionsChanged tells the notifier that subscriptions were added
// or removed (NOTIFY hss_sh 'sh_subscription').
func (s *Server) SubscriptionsChanged() {
	n := s.notifier()
	n.request(func() { n.reloadGate = true })
}

// SetLive reports whether the HSS listens to the hss_sh and hss_userdata
// notifications. Becoming live re-reads the gate and looks at every
// provisioning-dependent subscription (changes made while not listening);
// not live opens the gate.
func (s *Server) SetLive(live bool) {
	n := s.notifier()
	n.gate.setListening(live)
	if live {
		n.request(func() { n.reloadGate, n.provisioning = true, true })
	}
}

// Kick makes the sender look at the PNR queue now (NOTIFY hss_sh
// 'sh_notification').
func (s *Server) Kick() { wake(s.notifier().kick) }

// Run sends queued PNRs and looks at the data of subscriptions after
// changes, until ctx ends.
func (s *Server) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); s.reconcileLoop(ctx) }()
	go func() { defer wg.Done(); s.sendLoop(ctx) }()
	wg.Wait()
}

func (s *Server) poll() time.Duration {
	if s.PollInterval > 0 {
		return s.PollInterval
	}
	return 5 * time.Second
}

// sendLoop sends the queue when kicked and every poll interval, and
// purges expired subscriptions and PNRs too old to matter.
func (s *Server) sendLoop(ctx context.Context) {
	n := s.notifier()
	t := time.NewTicker(s.poll())
	defer t.Stop()
	for {
		s.sendQueued(ctx)
		select {
		case <-ctx.Done():
			return
		case <-n.kick:
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			subs, stale, err := s.Store.PurgeSh(pctx, store.ShNotificationMaxAge)
			cancel()
			switch {
			case err != nil:
				s.log().Debug("Sh purge failed", zap.Error(err))
			case subs > 0 || stale > 0:
				s.log().Info("Sh purge", zap.Int64("expired_subscriptions", subs), zap.Int64("stale_pnrs", stale))
				for range stale {
					if s.Outcome != nil {
						s.Outcome("dropped")
					}
				}
			}
		}
	}
}

// reconcileLoop does the notifier's work; what fails is tried again after
// a poll interval.
func (s *Server) reconcileLoop(ctx context.Context) {
	n := s.notifier()
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.work:
		}
		n.mu.Lock()
		prov := n.provisioning
		n.mu.Unlock()
		if prov {
			select { // let the rest of the transaction's notifications arrive
			case <-ctx.Done():
				return
			case <-time.After(provisioningDelay):
			}
		}
		n.mu.Lock()
		irs, ids, prov, reload := n.irs, n.ids, n.provisioning, n.reloadGate
		n.irs, n.ids, n.provisioning, n.reloadGate = map[int64]bool{}, map[int64]bool{}, false, false
		n.mu.Unlock()
		if err := s.reconcileOnce(ctx, irs, ids, prov, reload); err != nil && ctx.Err() == nil {
			s.log().Warn("Sh notifications: looking at changed data failed, trying again", zap.Error(err))
			time.AfterFunc(s.poll(), func() { wake(n.work) })
		}
	}
}

// reconcileOnce does one round of work; what fails is put back.
func (s *Server) reconcileOnce(ctx context.Context, irs, ids map[int64]bool, prov, reload bool) error {
	n := s.notifier()
	var errs []error
	if reload {
		err := n.gate.reload(func() (bool, error) {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			return s.Store.ShSubscribed(cctx, registrationRefs)
		})
		if err != nil {
			errs = append(errs, err)
			n.putBack(func() { n.reloadGate = true })
		}
	}
	if prov {
		if err := s.reconcileProvisioning(ctx); err != nil {
			errs = append(errs, err)
			n.putBack(func() { n.provisioning = true })
		}
	}
	for id := range irs {
		_, err := s.reconcileFrom(ctx, nil, func(ctx context.Context) ([]store.ShWatch, error) {
			return s.Store.ShWatchesNear(ctx, id, registrationRefs)
		})
		if err != nil {
			errs = append(errs, fmt.Errorf("IRS %d: %w", id, err))
			n.putBack(func() { n.irs[id] = true })
		}
	}
	if len(ids) > 0 {
		list := make([]int64, 0, len(ids))
		for id := range ids {
			list = append(list, id)
		}
		_, err := s.reconcileFrom(ctx, nil, func(ctx context.Context) ([]store.ShWatch, error) {
			return s.Store.ShWatchesByID(ctx, watchedRefs, list)
		})
		if err != nil {
			errs = append(errs, err)
			n.putBack(func() {
				for _, id := range list {
					n.ids[id] = true
				}
			})
		}
	}
	return errors.Join(errs...)
}

// reconcileProvisioning looks at every subscription to data that
// provisioning changes (iFCs, public identities).
func (s *Server) reconcileProvisioning(ctx context.Context) error {
	cache := map[string][]byte{}
	for after := int64(0); ; {
		ws, err := s.reconcileFrom(ctx, cache, func(ctx context.Context) ([]store.ShWatch, error) {
			return s.Store.ShWatchesByRef(ctx, provisioningRefs, after, watchPage)
		})
		if err != nil {
			return err
		}
		if len(ws) < watchPage {
			return nil
		}
		after = ws[len(ws)-1].ID
	}
}

// reconcileFrom reads subscriptions with fetch and reconciles them, within
// 10 s; it returns what fetch read.
func (s *Server) reconcileFrom(ctx context.Context, cache map[string][]byte,
	fetch func(context.Context) ([]store.ShWatch, error)) ([]store.ShWatch, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, err := fetch(ctx)
	if err != nil {
		return nil, err
	}
	if cache == nil {
		cache = map[string][]byte{}
	}
	return ws, s.reconcile(ctx, ws, cache)
}

// reconcile queues a PNR for each of ws whose data changed since it was
// last told. cache holds the documents already built this round: the
// iFCs of one AS are the same for every IMPU of a service profile.
func (s *Server) reconcile(ctx context.Context, ws []store.ShWatch, cache map[string][]byte) error {
	for _, w := range ws {
		if w.DataReference == store.RepositoryData {
			continue // PUR queues those with the write
		}
		key := ""
		if w.DataReference == store.InitialFilterCriteria {
			key = fmt.Sprintf("ifc/%d/%d", w.User.ServiceProfileID, w.ASID)
		}
		x, ok := cache[key]
		if !ok || key == "" {
			sets := make([]uint32, len(w.IdentitySets))
			for i, v := range w.IdentitySets {
				sets[i] = uint32(v)
			}
			var err error
			x, err = s.dataOf(ctx, &user{IMPU: w.User, scscf: w.SCSCFName, scscfSet: true},
				want{ref: w.DataReference, sets: sets, as: w.ASID})
			if errors.Is(err, store.ErrNotFound) {
				continue // the IMPU went away (its subscriptions go with it)
			}
			if err != nil {
				return err
			}
			if key != "" {
				cache[key] = x
			}
		}
		sum := sha256.Sum256(x)
		if bytes.Equal(sum[:], w.Digest) {
			continue
		}
		queued, err := s.Store.QueueShNotification(ctx, w.ID, w.Digest, sum[:], x)
		if err != nil {
			return err
		}
		if queued {
			s.log().Debug("PNR queued", zap.Int64("subscription", w.ID), zap.String("impu", w.IMPU),
				zap.String("as", w.ASHost), zap.Stringer("data", w.DataReference))
		}
	}
	return nil
}
