package pcscf

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pcscf/contacts"
	"github.com/imscore/imscore/pcscf/rx"
	"github.com/imscore/imscore/pkg/admission"
	"github.com/imscore/imscore/pkg/authguard"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/ipsec"
	"github.com/imscore/imscore/pkg/pgbatch"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// TermUser is the user part of the P-CSCF's Path entry: Path
// <sip:term@host:port;lr> marks requests routed back to a UE.
const TermUser = "term"

// regEventUser is the user part of the Contact of the reg-event
// subscription; NOTIFYs arrive with it in the Request-URI.
const regEventUser = "pcscf-reginfo"

// UDPSizeLimit is the size above which a request to a UE that can be
// reached over TCP (its own TCP flow, or its protected server port over
// the SA) goes over TCP (RFC 3261 §18.1.1).
const UDPSizeLimit = 1300

// PCSCF is the P-CSCF: a stateful proxy between UEs (Gm) and the home
// network (Mw), with a contact store, IPsec sec-agree and Rx.
type PCSCF struct {
	cfg     Config
	log     *zap.Logger
	proxy   *sipproxy.Proxy
	store   *contacts.Store
	pg      *contacts.PG
	backend ipsec.Backend
	ipsecOK bool // SAs can be installed
	spis    *ipsec.SPIAllocator
	rx      *rx.Client
	m       *metrics
	// srcGuard throttles failed authentication per UE address (throttle.go).
	srcGuard *authguard.Guard
	// limiter is the admission control of new work (overload.go).
	limiter *admission.Limiter
	icscf   sip.Uri
	// expired counts contacts removed by the expiry timer since start or
	// the last ResetExpired (the resettable statistic of ulpcscf).
	expired atomic.Int64

	mu sync.Mutex
	// secAgree: the SA sets and protected ports (secagree.go), under mu.
	secAgree
	retired *contacts.Store  // contacts ended, kept Config.RetireGrace for in-flight NOTIFYs
	calls   map[string]*call // by callKey (Rx)
	// callBySID indexes the calls of s.calls by their Rx Session-Id (ASR, RAR).
	callBySID map[string]*call
	callsOf   map[string]map[string]struct{} // contact key → callKeys of its calls
	subs      map[string]*regSub             // reg-event subscriptions by Call-ID
	wg        sync.WaitGroup
	cancel    context.CancelFunc
	closing   atomic.Bool // Close has begun
}

// New validates cfg and builds a P-CSCF (no sockets yet).
func New(cfg Config) (*PCSCF, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	s := &PCSCF{cfg: cfg, log: cfg.Logger, secAgree: newSecAgree(cfg), retired: contacts.New(nil),
		calls: map[string]*call{}, callBySID: map[string]*call{}, callsOf: map[string]map[string]struct{}{}, subs: map[string]*regSub{}}
	_ = sip.ParseUri(cfg.ICSCF, &s.icscf)
	var err error
	s.spis, err = ipsec.NewSPIAllocator(cfg.SPIMin, cfg.SPIMax)
	if err != nil {
		return nil, err
	}
	s.m = newMetrics(cfg.Registerer)
	s.srcGuard = s.newSourceGuard()
	s.limiter = s.newLimiter()
	s.proxy, err = sipproxy.New(sipproxy.Config{
		ListenAddr: cfg.SIPListen, Host: cfg.SIPHost, Aliases: cfg.Aliases, Advertised: advertised(cfg.Advertise),
		Handler: s.handle, Logger: cfg.Logger.Named("sip"), HideWarnings: cfg.HideWarnings,
		Limits: cfg.SIPLimits, Registerer: cfg.Registerer,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Proxy returns the SIP proxy core (tests: addresses).
func (s *PCSCF) Proxy() *sipproxy.Proxy { return s.proxy }

// Store returns the contact store.
func (s *PCSCF) Store() *contacts.Store { return s.store }

// IPsecActive reports whether SAs are set up for UEs that offer them.
func (s *PCSCF) IPsecActive() bool { return s.ipsecOK }

// Start probes IPsec, opens the database, reloads contacts (re-installing
// their SAs), opens the SIP sockets and protected ports, connects Rx and
// starts the expiry timer.
func (s *PCSCF) Start(ctx context.Context) error {
	if err := s.setupIPsec(); err != nil {
		return err
	}
	var p contacts.Persister
	if s.cfg.DatabaseURL != "" {
		pg, err := contacts.OpenPG(ctx, s.cfg.DatabaseURL)
		if err != nil {
			return err
		}
		if s.cfg.Registerer != nil {
			if err := pgbatch.Register(s.cfg.Registerer, "pcscf", pg.Writer()); err != nil {
				pg.Close()
				return err
			}
		}
		s.pg, p = pg, pg
	}
	s.store = contacts.New(p)
	if err := s.proxy.Start(ctx); err != nil {
		return err
	}
	if err := s.openFirstPair(); err != nil {
		_ = s.proxy.Close()
		return err
	}
	restored, err := s.reload(ctx)
	if err != nil {
		_ = s.proxy.Close()
		return err
	}
	if s.cfg.Rx != nil {
		rc := *s.cfg.Rx
		if rc.Logger == nil {
			rc.Logger = s.log.Named("rx")
		}
		if rc.Latency == nil {
			rc.Latency = s.m.rxLatency
		}
		c, err := rx.New(rc, s.onAbort, s.m.rxResult)
		if err != nil {
			_ = s.proxy.Close()
			return err
		}
		c.OnReAuth(s.onReAuth)
		if err := c.Start(ctx); err != nil {
			_ = s.proxy.Close()
			return err
		}
		s.rx = c
	}
	tctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if s.rx != nil {
		s.restoreRx(tctx, restored)
	}
	s.wg.Add(1)
	go s.timer(tctx)
	return nil
}

// restoredRx are the Rx Session-Ids of the contacts reloaded at start:
// those of live contacts and those of contacts that expired while the
// P-CSCF was down.
type restoredRx struct{ live, stale []string }

// restoreRx makes the Rx client answer the PCRF's ASR/RAR for the
// sessions of reloaded contacts (they were opened before the restart) and
// ends, with STR once the PCRF is connected, the sessions of contacts
// that expired while the P-CSCF was down (TS 29.214 §4.4.4).
func (s *PCSCF) restoreRx(ctx context.Context, r restoredRx) {
	s.rx.Restore(r.live...)
	if len(r.live) > 0 {
		s.log.Info("Rx sessions of reloaded contacts restored", zap.Int("count", len(r.live)))
	}
	if len(r.stale) == 0 {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if err := s.rx.WaitOpen(wctx); err != nil {
			s.log.Warn("Rx sessions of contacts expired during the restart not ended: PCRF not connected", zap.Int("count", len(r.stale)), zap.Error(err))
			return
		}
		for _, sid := range r.stale {
			if err := s.rx.STR(ctx, sid); err != nil {
				s.log.Warn("Rx STR for a contact expired during the restart", zap.String("session-id", sid), zap.Error(err))
			}
		}
	}()
}

// Ready reports whether Rx (when enabled) has its PCRF peer open.
func (s *PCSCF) Ready(ctx context.Context) error {
	if s.rx != nil && !s.rx.Ready() {
		return errors.New("PCRF not connected")
	}
	return nil
}

// Close stops everything. Installed SAs stay (they are re-used after a
// restart from the stored contacts).
func (s *PCSCF) Close() error {
	s.closing.Store(true)
	if s.cancel != nil {
		s.cancel()
	}
	err := s.proxy.Close()
	s.wg.Wait()
	if s.rx != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = s.rx.Close(ctx)
		cancel()
	}
	if s.pg != nil {
		s.pg.Close()
	}
	return err
}

// reload fills the store from PostgreSQL and re-installs SAs/policies of
// the contacts still registered; expired ones are dropped.
func (s *PCSCF) reload(ctx context.Context) (restoredRx, error) {
	var rxs restoredRx
	all, err := s.store.Load(ctx)
	if err != nil {
		return rxs, fmt.Errorf("pcscf: reload contacts: %w", err)
	}
	n := 0
	now := time.Now()
	for _, c := range all {
		if c.Expires.After(now) {
			rxs.live = append(rxs.live, c.RxSessions...)
			if c.RegSubscription != "" {
				s.trackRegSubscription(c.RegSubscription, c.Key()) // its NOTIFYs are accepted
			}
		} else {
			rxs.stale = append(rxs.stale, c.RxSessions...)
		}
		if c.SA != nil && s.ipsecOK && c.Expires.After(time.Now()) {
			if err := s.adoptStored(c); err != nil {
				s.log.Warn("re-install SA of reloaded contact", zap.String("aor", c.AOR), zap.Error(err))
			}
		}
		n++
	}
	if n > 0 {
		s.log.Info("contacts reloaded", zap.Int("count", n))
	}
	s.sweep(ctx)
	s.updateGauges()
	return rxs, nil
}

func (s *PCSCF) timer(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.TimerInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweep(ctx)
		}
	}
}

// sweep removes expired contacts (and their SAs and Rx sessions) and old
// pending SAs.
func (s *PCSCF) sweep(ctx context.Context) {
	exp, err := s.store.Expired(ctx)
	if err != nil {
		s.log.Warn("expire contacts", zap.Error(err))
	}
	for _, c := range exp {
		s.log.Info("contact expired", zap.String("aor", c.AOR), zap.Stringer("flow", c.Flow))
		s.m.expired.Inc()
		s.expired.Add(1)
		s.dropContactState(ctx, c, false)
	}
	s.sweepSets()
	s.refreshRegSubs()
	s.updateGauges()
}

// moveCalls hands the calls (Rx) of the contact under key from to the
// contact to (the same UE, which switched transport).
func (s *PCSCF) moveCalls(from string, to *contacts.Contact) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.callsOf[from] {
		if cl := s.calls[k]; cl != nil {
			s.removeCallLocked(k)
			cl.contact = to.Clone()
			s.addCallLocked(k, cl)
		}
	}
}

// dropContactState removes the SA set and Rx sessions of a removed
// contact. With linger (a de-registration, not an expiry), the SA set
// stays Config.RetireGrace and the contact stays reachable for terminating
// requests meanwhile: the 200 to the de-REGISTER and the S-CSCF's reg
// event NOTIFY to the UE still go through the SA (TS 24.229 §5.2.2.3,
// §5.2.3).
func (s *PCSCF) dropContactState(ctx context.Context, c *contacts.Contact, linger bool) {
	if c.RegSubscription != "" {
		// No more refreshes: the subscription ends with the registration
		// (its last NOTIFY is still accepted).
		s.mu.Lock()
		if sub := s.subs[c.RegSubscription]; sub != nil {
			sub.refreshAt = time.Time{}
		}
		s.mu.Unlock()
	}
	s.endSetOf(ctx, c, linger)
	if s.rx != nil {
		for _, sid := range c.RxSessions {
			_ = s.rx.STR(ctx, sid)
		}
		// Its calls end with it (their sessions were just ended): a call
		// whose BYE never came through would otherwise be kept forever.
		s.mu.Lock()
		for key := range s.callsOf[c.Key()] {
			s.removeCallLocked(key)
		}
		s.mu.Unlock()
	}
}

func (s *PCSCF) updateGauges() {
	n, impus := s.store.Counts()
	s.m.contacts.Set(float64(n))
	s.m.impus.Set(float64(impus))
}

// handle dispatches one new request.
func (s *PCSCF) handle(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	over := s.arrivedOver(t)
	s.answerOverSA(t, over)
	switch {
	case req.Method == sip.REGISTER:
		ctx, release, ok := s.admit(ctx, t, registerFactor(req))
		if !ok {
			return
		}
		defer release()
		s.handleRegister(ctx, t, over)
		return
	case req.Method == sip.NOTIFY && strings.EqualFold(req.Recipient.User, regEventUser) && s.proxy.IsSelf(req.Recipient):
		s.handleRegNotify(ctx, t)
		return
	}
	src := flowOf(req)
	var c *contacts.Contact
	var err error
	if over != nil {
		c = s.protectedSender(over)
	} else if c, err = s.store.BySender(senderOf(req, src)); c != nil && c.SA != nil {
		// A contact registered with SAs sends only through them (TS
		// 24.229 §5.2.6.3): plaintext from its address is not its.
		c, err = nil, nil
	}
	switch {
	case c != nil:
		if !s.inDialogThroughUs(t) {
			s.m.rejected.WithLabelValues("no_dialog").Inc()
			s.log.Info("request within a dialog that does not go through this P-CSCF", zap.String("method", string(req.Method)), zap.Stringer("flow", src), zap.String("call-id", req.CallID().Value()))
			if !req.IsAck() {
				_ = t.Respond(sip.StatusCallTransactionDoesNotExists, "Call/Transaction Does Not Exist",
					sip.NewHeader("Warning", `399 `+hostRef(s.cfg.SIPHost)+` "no dialog through this P-CSCF: the request has a To tag but no Route to it"`))
			}
			return
		}
		if initial := req.To() == nil || !req.To().Params.Has("tag"); initial && !req.IsAck() && !req.IsCancel() {
			var release func()
			var ok bool
			if ctx, release, ok = s.admit(ctx, t, 1); !ok {
				return
			}
			defer release()
		}
		s.originating(ctx, t, c)
		return
	case errors.Is(err, contacts.ErrAmbiguous):
		// Several users registered over this flow with the address the
		// request gives: asserting one of them could give it another
		// user's identity.
		s.m.rejected.WithLabelValues("ambiguous_sender").Inc()
		s.log.Info("request refused: its flow and Via/Contact match registrations of different users", zap.String("method", string(req.Method)), zap.Stringer("flow", src))
		if !req.IsAck() {
			_ = t.Respond(sip.StatusForbidden, "Forbidden - Ambiguous Sender",
				sip.NewHeader("Warning", `399 `+hostRef(s.cfg.SIPHost)+` "several users are registered over this flow with the request's Via/Contact address; send P-Preferred-Identity or register a distinct Contact"`))
		}
		return
	}
	unmatched := errors.Is(err, contacts.ErrNoMatch)
	// Terminating: our Path entry (term marker) was the top Route, or the
	// Request-URI is a registered contact (in-dialog requests follow our
	// Record-Route, which carries no marker). A contact that just ended
	// stays reachable Config.RetireGrace (the NOTIFY telling the UE, the 200 of
	// its de-REGISTER).
	term := isTermRoute(t.RemovedRoute())
	if over == nil {
		for _, st := range []*contacts.Store{s.store, s.retired} {
			if c := st.ByURI(req.Recipient.User, req.Recipient.Host, portOr(req.Recipient.Port), req.Recipient.String()); c != nil {
				s.terminating(ctx, t, c)
				return
			}
		}
	}
	if req.IsAck() {
		return
	}
	if term {
		s.m.rejected.WithLabelValues("term_not_registered").Inc()
		s.log.Info("terminating request for a contact not registered here", zap.String("method", string(req.Method)), zap.String("ruri", req.Recipient.String()))
		_ = t.Respond(sip.StatusNotFound, "Not Found - Terminating user not registered")
		return
	}
	s.m.rejected.WithLabelValues("not_registered").Inc()
	why := "sender is not registered at this P-CSCF"
	if unmatched {
		why = "no UE registered over this flow has the request's Via/Contact address"
	}
	s.log.Info("request from an unregistered UE", zap.String("method", string(req.Method)), zap.Stringer("flow", src), zap.String("why", why))
	_ = t.Respond(sip.StatusForbidden, "Forbidden - Not Registered", sip.NewHeader("Warning", `399 `+hostRef(s.cfg.SIPHost)+` "`+why+`"`))
}

// inDialogThroughUs reports whether a request from a UE may be forwarded
// as the request it is: an initial one (no To tag), an ACK, or one within
// a dialog whose route set runs through this P-CSCF (our Record-Route was
// its top Route, which the proxy core removed). A request with a To tag
// and no Route to us belongs to no dialog set up through here: RFC 3261
// §12.2.2 answers it 481, and forwarding it by its Request-URI would
// bypass the S-CSCF (TS 24.229 §5.2.6.3.3 routes the UE's requests along
// the Service-Route or the dialog's route set only).
func (s *PCSCF) inDialogThroughUs(t *sipproxy.Txn) bool {
	req := t.Request()
	if req.IsAck() || req.To() == nil || !req.To().Params.Has("tag") {
		return true
	}
	return t.RemovedRoute() != nil
}

// senderOf is what req tells about its sender (contacts.Sender): the flow
// src, the top Via sent-by, the Contact URI and the P-Preferred-Identity.
func senderOf(req *sip.Request, src contacts.Flow) contacts.Sender {
	snd := contacts.Sender{Flow: src}
	if v := req.Via(); v != nil {
		snd.ViaHost, snd.ViaPort = v.Host, v.Port
	}
	if ct := req.Contact(); ct != nil && !ct.Address.Wildcard {
		snd.Contact = ct.Address.String()
	}
	if pp, err := imsheader.GetPPreferredIdentity(req); err == nil {
		for _, p := range pp {
			snd.Preferred = append(snd.Preferred, p.URI)
		}
	}
	return snd
}

// isTermRoute reports whether u, the own Route entry sipproxy removed, is
// this P-CSCF's Path entry <sip:term@host:port;lr> (TS 24.229 §5.2.6.4:
// requests the S-CSCF routes to a UE along the Path).
func isTermRoute(u *sip.Uri) bool {
	return u != nil && strings.EqualFold(u.User, TermUser)
}

func flowOf(req *sip.Request) contacts.Flow {
	host, port, _ := sip.ParseAddr(req.Source())
	return contacts.Flow{Transport: strings.ToLower(req.Transport()), Host: host, Port: port}
}

func portOr(p int) int {
	if p == 0 {
		return 5060
	}
	return p
}
