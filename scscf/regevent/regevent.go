// Package regevent is the S-CSCF's notifier of the reg event package
// (RFC 3680, TS 24.229 §5.4.2.1): SUBSCRIBE with Event: reg, the
// subscriptions (persisted in scscf_reg_subscription, store.go) and the
// NOTIFYs of every registration change.
//
// It reads the bindings through the Bindings interface (the registrar),
// is told of changes by OnRegistrationChange (a registration listener of
// the S-CSCF) and gets SUBSCRIBEs from session routing (Handles,
// HandleSubscribe: isc.RegEventHandler); NOTIFYs leave from the S-CSCF's
// socket and rows go to its database (Host).
package regevent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/gruu"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/intern"
	"github.com/imscore/imscore/pkg/pgbatch"
	"github.com/imscore/imscore/pkg/reginfo"
	"github.com/imscore/imscore/pkg/setindex"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/binding"
)

// Subscriber kinds a reg-event subscription is authorised as (TS 24.229
// §5.4.2.1.1).
const (
	SubscriberUE    = "ue"    // P-Asserted-Identity is an IMPU of the set
	SubscriberPCSCF = "pcscf" // P-Asserted-Identity host is the host of a Path entry of a binding
	SubscriberAS    = "as"    // P-Asserted-Identity host is the host of an iFC ApplicationServer
)

// Bindings is how the notifier reads the registrar (*registrar.Registrar
// implements it): the registration and the user profile of the set
// holding an IMPU. Changes come to OnRegistrationChange.
type Bindings interface {
	Lookup(impu string) (binding.Registration, bool)
	Profile(impu string) (*userdata.IMSSubscription, bool)
}

// Host is the S-CSCF around the notifier (*scscf.Server implements it).
type Host interface {
	// SIPProxy is the S-CSCF's SIP element, nil until it has started:
	// NOTIFYs leave from its socket.
	SIPProxy() *sipproxy.Proxy
	// DB is the S-CSCF's database (table scscf_reg_subscription), nil
	// without one; LoadSubscriptions reads it.
	DB() *pgxpool.Pool
	// DBWriter runs the writes on DB() (nil when DB is nil).
	DBWriter() *pgbatch.Batcher
}

// Config tunes the reg event notifier. Zero values take the defaults
// given per field.
type Config struct {
	// MinExpires: a SUBSCRIBE asking for less (but not 0) gets 423 with
	// Min-Expires. Default 60s.
	MinExpires time.Duration
	// MaxExpires: longer requests are granted this. Default 600000s (what
	// VoLTE P-CSCFs and UEs ask for).
	MaxExpires time.Duration
	// DefaultExpires applies when the SUBSCRIBE has no Expires header.
	// Default 3761s (RFC 3680 §4.1).
	DefaultExpires time.Duration
	// NotifyTimeout bounds one NOTIFY transaction. Default 10s.
	NotifyTimeout time.Duration
	// SweepInterval is the period of the subscription expiry timer.
	// Default 1s.
	SweepInterval time.Duration
	// RTREvent is the contact event sent for bindings removed by an HSS
	// RTR: reginfo.EventRejected (default: the UE is not expected to
	// register again, TS 24.229 §5.4.2.1.2) or reginfo.EventDeactivated.
	RTREvent reginfo.Event
	// GRUU seals the temporary GRUUs of the NOTIFYs (gruu.go); nil:
	// public GRUUs only. scscf.NewRegEventNotifier sets the S-CSCF's.
	GRUU *gruu.Codec

	// The S-CSCF's (scscf.NewRegEventNotifier sets them): SIPHost, its
	// host in the Contact of the 200 and of NOTIFYs; Warning, the Warning
	// header of a 500; Logger and Registry for the notifier's logs and
	// metrics.
	SIPHost  string
	Warning  func(text string) sip.Header
	Logger   *zap.Logger
	Registry prometheus.Registerer
}

func (c Config) withDefaults() Config {
	if c.MinExpires == 0 {
		c.MinExpires = 60 * time.Second
	}
	if c.MaxExpires == 0 {
		c.MaxExpires = 600000 * time.Second
	}
	if c.DefaultExpires == 0 {
		c.DefaultExpires = 3761 * time.Second
	}
	if c.NotifyTimeout == 0 {
		c.NotifyTimeout = 10 * time.Second
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Second
	}
	if c.RTREvent == "" {
		c.RTREvent = reginfo.EventRejected
	}
	return c
}

// Subscription is one reg-event subscription (a SUBSCRIBE dialog,
// RFC 6665 §4.1) as stored in scscf_reg_subscription.
type Subscription struct {
	CallID     string    `json:"call_id"`
	LocalTag   string    `json:"local_tag"`  // our To tag
	RemoteTag  string    `json:"remote_tag"` // subscriber's From tag
	IMPU       string    `json:"impu"`       // subscribed IMPU, canonical
	AOR        string    `json:"aor"`        // registration set AOR at subscribe time, canonical
	LocalURI   string    `json:"local_uri"`  // To URI of the SUBSCRIBE
	RemoteURI  string    `json:"remote_uri"` // From URI of the SUBSCRIBE
	Subscriber string    `json:"subscriber"` // authorised P-Asserted-Identity
	Kind       string    `json:"kind"`       // SubscriberUE, SubscriberPCSCF, SubscriberAS
	Target     string    `json:"target"`     // remote target (Contact URI)
	RouteSet   []string  `json:"route_set"`  // Record-Route URIs of the SUBSCRIBE, in order
	Event      string    `json:"-"`          // Event header value to echo (not stored: always "reg" + id)
	CSeq       uint32    `json:"cseq"`       // CSeq of the last NOTIFY sent
	Version    int       `json:"version"`    // reginfo version of the next NOTIFY
	Expires    time.Time `json:"expires"`
}

func (r *Subscription) key() string { return r.CallID + "\x00" + r.LocalTag }

// regSub is a subscription with its NOTIFY queue; guarded by
// Notifier.mu.
type regSub struct {
	Subscription
	queue []notifyJob
	busy  bool // a goroutine drains queue
	final bool // the terminating NOTIFY is queued; nothing is added after it

	// ceilCSeq and ceilVersion are what the store holds for the
	// subscription (see stateReserve): no NOTIFY goes out with a CSeq or
	// a next version above them before the store has higher ones.
	ceilCSeq    uint32
	ceilVersion int
	// reloaded: read from the store at start; its version may have
	// jumped (to the reserved ceiling), so its next NOTIFY carries the
	// full state (RFC 3680 §5.2: a subscriber takes a full document of
	// any higher version, a partial one only in sequence).
	reloaded bool
}

// stateReserve is how many CSeq numbers and reginfo versions the store
// reserves for a subscription at a time: the row holds a ceiling, raised
// by one write every stateReserve NOTIFYs instead of one write per
// NOTIFY, and a restarted S-CSCF continues above it (RFC 6665 §4.1.2:
// CSeq grows within the dialog; RFC 3680 §4.1: the version grows).
const stateReserve = 64

// notifyJob is one NOTIFY to send. A full job builds the whole state
// of the set when it is sent; a partial one carries the registrations
// that changed.
type notifyJob struct {
	full       bool
	regs       []reginfo.Registration
	terminated bool   // Subscription-State: terminated
	reason     string // its reason (RFC 6665 §4.1.3)
}

// Notifier is the S-CSCF's notifier of the reg event package
// (RFC 3680, TS 24.229 §5.4.2.1): it serves SUBSCRIBE with Event: reg for
// registered IMPUs, keeps the subscriptions (in PostgreSQL when the server
// has a database) and sends NOTIFYs in the subscription dialogs on every
// registration change reported to OnRegistrationChange.
type Notifier struct {
	reg  Bindings
	host Host
	cfg  Config
	log  *zap.Logger

	mu   sync.Mutex
	subs map[string]*regSub
	// byIMPU and byAOR index subs by their IMPU and AOR, so that a
	// registration change finds its subscribers without a scan of all.
	byIMPU, byAOR subIndex
	known         map[string][]string // canonical AOR -> keys of the active bindings seen
	pool          *pgxpool.Pool
	batch         *pgbatch.Batcher // writes on pool (group commit)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed sync.Once
	swept  sync.Once

	notifies *prometheus.CounterVec
}

// New builds the notifier of the S-CSCF host whose registrar is reg;
// LoadSubscriptions starts its expiry timer and Close stops it. It
// registers scscf_regevent_subscriptions and
// scscf_regevent_notifies_total{result} with cfg.Registry.
func New(reg Bindings, host Host, cfg Config) (*Notifier, error) {
	cfg = cfg.withDefaults()
	if cfg.MinExpires > cfg.MaxExpires || cfg.DefaultExpires < cfg.MinExpires {
		return nil, errors.New("scscf: reg event: need MinExpires <= DefaultExpires and MinExpires <= MaxExpires")
	}
	if cfg.RTREvent != reginfo.EventRejected && cfg.RTREvent != reginfo.EventDeactivated {
		return nil, fmt.Errorf("scscf: reg event: RTREvent %q is neither rejected nor deactivated", cfg.RTREvent)
	}
	n := &Notifier{reg: reg, host: host, cfg: cfg, log: cfg.Logger.Named("regevent"), subs: map[string]*regSub{},
		byIMPU: setindex.New[string, *regSub](), byAOR: setindex.New[string, *regSub](), known: map[string][]string{}}
	n.notifies = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scscf_regevent_notifies_total",
		Help: "reg-event NOTIFYs sent, by result (ok, error_response, no_answer, not_sent)."}, []string{"result"})
	gauge := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scscf_regevent_subscriptions",
		Help: "Active reg-event subscriptions."}, func() float64 {
		n.mu.Lock()
		defer n.mu.Unlock()
		return float64(len(n.subs))
	})
	for _, c := range []prometheus.Collector{n.notifies, gauge} {
		if err := cfg.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	return n, nil
}

// Close stops the expiry timer and waits for NOTIFYs in flight. The
// subscriptions stay in the database.
func (n *Notifier) Close() {
	n.closed.Do(func() {
		n.cancel()
		n.wg.Wait()
	})
}

// Subscriptions returns a copy of the active subscriptions.
func (n *Notifier) Subscriptions() []Subscription {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]Subscription, 0, len(n.subs))
	for _, s := range n.subs {
		c := s.Subscription
		c.RouteSet = append([]string(nil), s.RouteSet...)
		out = append(out, c)
	}
	return out
}

// Handles reports whether the SUBSCRIBE req is for this notifier: Event:
// reg and either in one of its dialogs (To tag known) or, outside a
// dialog, for an IMPU registered here. The session router calls it first
// and passes such requests to HandleSubscribe.
func (n *Notifier) Handles(req *sip.Request) bool {
	if !binding.IsRegEvent(req) {
		return false
	}
	if tag := toTag(req); tag != "" {
		if req.CallID() == nil {
			return false
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		_, ok := n.subs[req.CallID().Value()+"\x00"+tag]
		p := n.host.SIPProxy()
		return ok || (p != nil && p.IsSelf(req.Recipient))
	}
	_, ok := n.reg.Lookup(req.Recipient.String())
	return ok
}

func toTag(req *sip.Request) string {
	if to := req.To(); to != nil && to.Params != nil {
		if v, ok := to.Params.Get("tag"); ok {
			return v
		}
	}
	return ""
}

func fromTag(req *sip.Request) string {
	if f := req.From(); f != nil && f.Params != nil {
		if v, ok := f.Params.Get("tag"); ok {
			return v
		}
	}
	return ""
}

// HandleSubscribe serves a SUBSCRIBE with Event: reg (RFC 3680 §4,
// TS 24.229 §5.4.2.1.1):
//   - 489 for another event package, 406 when Accept excludes
//     application/reginfo+xml, 400 without Contact/From tag or with a bad
//     Expires, 423 (Min-Expires) for a non-zero Expires below MinExpires;
//   - outside a dialog: the Request-URI is the IMPU; 480 when it is not
//     registered here; 403 unless a P-Asserted-Identity is an IMPU of the
//     set (the user), has the host of a Path entry of one of the set's
//     bindings (its P-CSCF), or has the host of an ApplicationServer of
//     the set's iFCs (an AS); 500 when the subscription cannot be stored;
//   - in a dialog: 481 for an unknown one; a refresh (target refreshed);
//   - 200 with Expires (clamped to MaxExpires), To tag and Contact, then a
//     NOTIFY with the full state; Expires 0 ends the subscription with a
//     NOTIFY "Subscription-State: terminated;reason=timeout".
func (n *Notifier) HandleSubscribe(ctx context.Context, t *sipproxy.Txn) {
	req := t.Request()
	if !binding.IsRegEvent(req) {
		_ = t.Respond(489, "Bad Event", sip.NewHeader("Allow-Events", "reg"))
		return
	}
	if !acceptsReginfo(req) {
		_ = t.Respond(406, "Not Acceptable", sip.NewHeader("Accept", reginfo.ContentType))
		return
	}
	if req.CallID() == nil || req.From() == nil || req.To() == nil || fromTag(req) == "" {
		_ = t.Respond(400, "Bad Request - missing Call-ID, From tag or To")
		return
	}
	expires := n.cfg.DefaultExpires
	if h := req.GetHeader("Expires"); h != nil {
		v, err := strconv.ParseUint(strings.TrimSpace(h.Value()), 10, 32)
		if err != nil {
			_ = t.Respond(400, "Bad Request - bad Expires")
			return
		}
		expires = time.Duration(v) * time.Second
	}
	if expires > 0 && expires < n.cfg.MinExpires {
		_ = t.Respond(423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(int(n.cfg.MinExpires/time.Second))))
		return
	}
	if expires > n.cfg.MaxExpires {
		expires = n.cfg.MaxExpires
	}
	target := ""
	if c := req.Contact(); c != nil {
		target = c.Address.String()
	}
	if tag := toTag(req); tag != "" {
		n.refresh(t, req, tag, target, expires)
		return
	}
	if target == "" {
		_ = t.Respond(400, "Bad Request - no Contact")
		return
	}
	impu := binding.CanonURI(req.Recipient.String())
	reg, ok := n.reg.Lookup(impu)
	if !ok {
		_ = t.Respond(480, "Temporarily Unavailable - "+impu+" not registered")
		return
	}
	profile, _ := n.reg.Profile(impu)
	kind, who, ok := authorizeRegSubscriber(req, reg, profile)
	if !ok {
		n.log.Info("reg-event SUBSCRIBE refused", zap.String("impu", impu), zap.String("pai", strings.Join(imsheader.Values(req, "P-Asserted-Identity"), ", ")))
		_ = t.Respond(403, "Forbidden - not authorised for the reg event of "+impu)
		return
	}
	sub := &regSub{Subscription: Subscription{
		CallID: req.CallID().Value(), LocalTag: sip.GenerateTagN(16), RemoteTag: strings.Clone(fromTag(req)),
		IMPU: impu, AOR: binding.CanonURI(reg.AOR), LocalURI: req.To().Address.String(), RemoteURI: req.From().Address.String(),
		Subscriber: who, Kind: kind, Target: target, RouteSet: recordRoutes(req), Event: intern.String(req.GetHeader("Event").Value()),
		Expires: time.Now().Add(expires),
	}}
	if kind != SubscriberUE {
		// A P-CSCF (or an AS) subscribes to the reg event of every user
		// it serves, always from the same URIs and through the same hops:
		// one copy of them for all its subscriptions.
		sub.RemoteURI, sub.Subscriber, sub.Target = intern.String(sub.RemoteURI), intern.String(who), intern.String(target)
		intern.Strings(sub.RouteSet)
	}
	res := n.okResponse(t, req, sub.LocalTag, expires)
	if expires == 0 { // fetch: one NOTIFY, no state kept (RFC 6665 §4.4.3)
		sub.final, sub.busy = true, true
		sub.queue = []notifyJob{{full: true, terminated: true, reason: "timeout"}}
		_ = t.Relay(res)
		n.startDrain(sub)
		return
	}
	if err := n.save(ctx, &sub.Subscription); err != nil {
		n.log.Error("storing reg-event subscription", zap.String("impu", impu), zap.Error(err))
		_ = t.Respond(500, "Server Internal Error", n.cfg.Warning("subscription store failed"))
		return
	}
	sub.ceilCSeq, sub.ceilVersion = sub.CSeq+stateReserve, sub.Version+stateReserve
	n.mu.Lock()
	sub.busy = true // held until the 200 is sent: the full NOTIFY goes first
	sub.queue = []notifyJob{{full: true}}
	n.putSubLocked(sub)
	n.mu.Unlock()
	n.log.Debug("reg-event subscription", zap.String("impu", impu), zap.String("subscriber", who), zap.String("kind", kind),
		zap.Duration("expires", expires), zap.String("call-id", sub.CallID))
	_ = t.Relay(res)
	n.startDrain(sub)
}

// refresh serves a SUBSCRIBE inside an existing dialog (RFC 6665
// §4.2.1.2/§4.2.1.4).
func (n *Notifier) refresh(t *sipproxy.Txn, req *sip.Request, tag, target string, expires time.Duration) {
	n.mu.Lock()
	sub := n.subs[req.CallID().Value()+"\x00"+tag]
	if sub == nil || sub.final || sub.RemoteTag != fromTag(req) {
		n.mu.Unlock()
		_ = t.Respond(481, "Subscription Does Not Exist")
		return
	}
	if target != "" {
		sub.Target = target
	}
	job := notifyJob{full: true}
	if expires == 0 {
		job.terminated, job.reason = true, "timeout"
		sub.Expires = time.Now()
	} else {
		sub.Expires = time.Now().Add(expires)
	}
	snap := sub.Subscription
	n.mu.Unlock()
	if expires > 0 {
		if err := n.save(t.Context(), &snap); err != nil {
			n.log.Error("storing reg-event subscription", zap.String("impu", snap.IMPU), zap.Error(err))
		}
	}
	_ = t.Relay(n.okResponse(t, req, "", expires))
	n.enqueue(sub, job)
}

func (n *Notifier) okResponse(t *sipproxy.Txn, req *sip.Request, tag string, expires time.Duration) *sip.Response {
	res := t.NewResponse(200, "OK", sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))),
		&sip.ContactHeader{Address: n.contactURI(t.Proxy(), req.Transport()), Params: sip.NewParams()})
	if tag != "" {
		if to := res.To(); to != nil {
			nt := &sip.ToHeader{DisplayName: to.DisplayName, Address: to.Address, Params: to.Params.Clone()}
			nt.Params.Add("tag", tag)
			res.ReplaceHeader(nt)
		}
	}
	return res
}

// contactURI is the Contact of the 200 and of NOTIFYs: this S-CSCF's
// SIP address (SIPHost and the port of p, if any) with the transport the
// SUBSCRIBE came over.
func (n *Notifier) contactURI(p *sipproxy.Proxy, transport string) sip.Uri {
	u := sip.Uri{Scheme: "sip", Host: n.cfg.SIPHost, UriParams: sip.NewParams()}
	if p != nil {
		a := p.Addr("udp")
		u.Port = a.Port
	}
	if tr := strings.ToLower(transport); tr != "" && tr != "udp" {
		u.UriParams.Add("transport", tr)
	}
	return u
}

func acceptsReginfo(req *sip.Request) bool {
	hs := req.GetHeaders("Accept")
	if len(hs) == 0 {
		return true
	}
	for _, h := range hs {
		for _, v := range strings.Split(h.Value(), ",") {
			mt := strings.ToLower(strings.TrimSpace(strings.SplitN(v, ";", 2)[0]))
			if mt == reginfo.ContentType || mt == "*/*" || mt == "application/*" || mt == "" {
				return true
			}
		}
	}
	return false
}

// recordRoutes returns the Record-Route URIs of a request in order: the
// route set of the UAS side of the dialog (RFC 3261 §12.1.1).
func recordRoutes(req *sip.Request) []string {
	var out []string
	for _, h := range req.GetHeaders("Record-Route") {
		list, err := imsheader.ParseNameAddrList(h.Value())
		if err != nil {
			continue
		}
		for _, e := range list {
			out = append(out, e.URI)
		}
	}
	return out
}

// authorizeRegSubscriber applies TS 24.229 §5.4.2.1.1 to the
// P-Asserted-Identity entries of req: an IMPU of the registration set
// (the user itself), the host of a Path entry of one of its bindings (the
// P-CSCF that registered it: its P-Asserted-Identity carries its own SIP
// URI, whose host equals its Path entry's), or the host of the
// ServerName of an iFC of the user's profile (an AS). Ports are not
// compared. Without P-Asserted-Identity nobody is authorised.
func authorizeRegSubscriber(req *sip.Request, reg binding.Registration, prof *userdata.IMSSubscription) (kind, who string, ok bool) {
	ids, err := imsheader.GetPAssertedIdentity(req)
	if err != nil || len(ids) == 0 {
		return "", "", false
	}
	impus := map[string]bool{}
	for _, u := range reg.IMPUs {
		impus[binding.CanonURI(u)] = true
	}
	pathHosts := map[string]bool{}
	for _, c := range reg.Contacts {
		for _, p := range c.Path {
			list, err := imsheader.ParsePath(p)
			if err != nil {
				continue
			}
			for _, e := range list {
				if h := uriHost(e.URI); h != "" {
					pathHosts[h] = true
				}
			}
		}
	}
	asHosts := map[string]bool{}
	if prof != nil {
		for _, sp := range prof.ServiceProfiles {
			for _, f := range sp.InitialFilterCriteria {
				if h := uriHost(f.ApplicationServer.ServerName); h != "" {
					asHosts[h] = true
				}
			}
		}
	}
	for _, id := range ids {
		if impus[binding.CanonURI(id.URI)] {
			return SubscriberUE, id.URI, true
		}
		h := uriHost(id.URI)
		if h == "" {
			continue
		}
		if pathHosts[h] {
			return SubscriberPCSCF, id.URI, true
		}
		if asHosts[h] {
			return SubscriberAS, id.URI, true
		}
	}
	return "", "", false
}

// uriHost is the lower-case host of a sip:/sips: URI, "" otherwise.
func uriHost(s string) string {
	var u sip.Uri
	s = strings.TrimSpace(s)
	s = strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">")
	if err := sip.ParseUri(s, &u); err != nil {
		return ""
	}
	if u.Scheme != "sip" && u.Scheme != "sips" {
		return ""
	}
	return strings.ToLower(strings.Trim(u.Host, "[]"))
}

// OnRegistrationChange turns a registration change into partial
// NOTIFYs (version+1) for every subscription of the set (TS 24.229
// §5.4.2.1.2): contacts registered/refreshed (active), unregistered
// (user de-registration), expired, RTREvent (RTR); profile-updated: see
// profileUpdated. When no binding is left, the NOTIFY carries
// "Subscription-State: terminated" (reason noresource; rejected after an
// RTR with RTREvent rejected) and the subscriptions are removed. It
// does not block: NOTIFYs are sent by goroutines, in order per
// subscription.
func (n *Notifier) OnRegistrationChange(ev binding.Event) {
	if ev.Kind == binding.EventProfileUpdated {
		n.profileUpdated(ev)
		return
	}
	aor := binding.CanonURI(ev.After.AOR)
	now := time.Now()
	active := map[string]*binding.Contact{}
	for i := range ev.After.Contacts {
		active[ev.After.Contacts[i].Key()] = &ev.After.Contacts[i]
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	seen, haveSeen := n.known[aor]
	var changed []reginfo.Contact
	for i := range ev.Changed {
		c := ev.Changed[i]
		k := c.Key()
		if a := active[k]; a != nil {
			e := reginfo.EventRefreshed
			switch {
			case ev.Kind == binding.EventRegistered:
				e = reginfo.EventRegistered
			case haveSeen && !slices.Contains(seen, k):
				e = reginfo.EventRegistered
			case !haveSeen && now.Sub(a.Registered) < 2*time.Second: // not seen since start
				e = reginfo.EventRegistered
			}
			changed = append(changed, reginfoContact(*a, reginfo.ContactActive, e, now))
			continue
		}
		e := reginfo.EventUnregistered
		switch ev.Kind {
		case binding.EventExpired:
			e = reginfo.EventExpired
		case binding.EventTerminated:
			e = n.rtrEvent(ev)
		}
		changed = append(changed, reginfoContact(c, reginfo.ContactTerminated, e, now))
	}
	if len(ev.After.Contacts) == 0 {
		delete(n.known, aor)
	} else {
		m := make([]string, 0, len(active))
		for k := range active {
			m = append(m, k)
		}
		n.known[aor] = m
	}
	if len(changed) == 0 {
		return
	}
	terminal := len(ev.After.Contacts) == 0
	regState := reginfo.RegActive
	if terminal {
		regState = reginfo.RegTerminated
	}
	members := map[string]bool{aor: true}
	for _, u := range ev.After.IMPUs {
		members[binding.CanonURI(u)] = true
	}
	var regs []reginfo.Registration
	for _, u := range visibleIMPUs(ev.After) {
		regs = append(regs, reginfo.Registration{AOR: u, ID: regID(u), State: regState, Contacts: n.withGRUUs(u, changed, ev.After.Contacts)})
	}
	reason := "noresource"
	if ev.Kind == binding.EventTerminated {
		switch n.rtrEvent(ev) {
		case reginfo.EventRejected:
			reason = "rejected"
		case reginfo.EventDeactivated:
			reason = "deactivated" // RFC 6665 §4.1.3: the UE may subscribe again at once
		}
	}
	subs := collect(nil, n.byAOR, aor)
	for m := range members {
		subs = collect(subs, n.byIMPU, m)
	}
	for sub := range subs {
		if !sub.final {
			n.enqueueLocked(sub, notifyJob{regs: regs, terminated: terminal, reason: reason})
		}
	}
}

// profileUpdated sends a partial NOTIFY when a new profile (PPR) changes
// which IMPUs of the set the UE may use (TS 24.229 §5.4.2.1.2): an IMPU
// added to the implicit registration set, or no longer barred, is a
// registration element "active" whose contacts are "created"; an IMPU
// removed from the set, or barred, is "terminated" with contacts
// "rejected". Nothing is sent when the visible set did not change.
func (n *Notifier) profileUpdated(ev binding.Event) {
	if ev.Before == nil || len(ev.After.Contacts) == 0 {
		return
	}
	before, after := visibleIMPUs(*ev.Before), visibleIMPUs(ev.After)
	had, has := map[string]bool{}, map[string]bool{}
	for _, u := range before {
		had[binding.CanonURI(u)] = true
	}
	for _, u := range after {
		has[binding.CanonURI(u)] = true
	}
	now := time.Now()
	var regs []reginfo.Registration
	// changed appends a registration element for every IMPU of list not in
	// other, its contacts in state st with event e.
	changed := func(list []string, other map[string]bool, rs reginfo.RegState, st reginfo.ContactState, e reginfo.Event) {
		for _, u := range list {
			if other[binding.CanonURI(u)] {
				continue
			}
			var cs []reginfo.Contact
			for _, c := range ev.After.Contacts {
				cs = append(cs, reginfoContact(c, st, e, now))
			}
			regs = append(regs, reginfo.Registration{AOR: u, ID: regID(u), State: rs, Contacts: n.withGRUUs(u, cs, ev.After.Contacts)})
		}
	}
	changed(after, had, reginfo.RegActive, reginfo.ContactActive, reginfo.EventCreated)
	changed(before, has, reginfo.RegTerminated, reginfo.ContactTerminated, reginfo.EventRejected)
	if len(regs) == 0 {
		return
	}
	aor := binding.CanonURI(ev.After.AOR)
	n.mu.Lock()
	defer n.mu.Unlock()
	subs := collect(nil, n.byAOR, aor)
	for _, list := range [][]string{ev.Before.IMPUs, ev.After.IMPUs} {
		for _, u := range list {
			subs = collect(subs, n.byIMPU, binding.CanonURI(u))
		}
	}
	for sub := range subs {
		if !sub.final {
			n.enqueueLocked(sub, notifyJob{regs: regs})
		}
	}
}

// rtrEvent is the contact event of bindings an HSS RTR removed (TS 24.229
// §5.4.1.5, TS 29.228 §6.1.3): "deactivated" when the UE is to register
// again (Reason-Code NEW_SERVER_ASSIGNED, SERVER_CHANGE, REMOVE_S-CSCF),
// "rejected" for PERMANENT_TERMINATION, Config.RTREvent when the RTR gave
// no Reason-Code (or the removal was the S-CSCF's own decision).
func (n *Notifier) rtrEvent(ev binding.Event) reginfo.Event {
	switch {
	case ev.Reregister == nil:
		return n.cfg.RTREvent
	case *ev.Reregister:
		return reginfo.EventDeactivated
	}
	return reginfo.EventRejected
}

// subIndex maps an IMPU or AOR to the subscriptions for it; nearly every
// value has one subscriber (the UE's P-CSCF), kept without a map of its
// own (pkg/setindex).
type subIndex = setindex.Index[string, *regSub]

// collect adds the subscriptions under v in ix to into (allocated when
// nil) and returns it.
func collect(into map[*regSub]struct{}, ix subIndex, v string) map[*regSub]struct{} {
	ix.Each(v, func(s *regSub) bool {
		if into == nil {
			into = map[*regSub]struct{}{}
		}
		into[s] = struct{}{}
		return true
	})
	return into
}

// putSubLocked stores sub (replacing one with its key) and indexes it;
// n.mu held.
func (n *Notifier) putSubLocked(sub *regSub) {
	if old := n.subs[sub.key()]; old != nil {
		n.dropSubLocked(old)
	}
	n.subs[sub.key()] = sub
	n.byIMPU.Add(sub.IMPU, sub)
	n.byAOR.Add(sub.AOR, sub)
}

// dropSubLocked removes sub from the table and the indexes; n.mu held.
func (n *Notifier) dropSubLocked(sub *regSub) {
	if n.subs[sub.key()] == sub {
		delete(n.subs, sub.key())
	}
	n.byIMPU.Remove(sub.IMPU, sub)
	n.byAOR.Remove(sub.AOR, sub)
}

// visibleIMPUs are the IMPUs of a registration reported in reginfo: the
// set without its barred members (TS 24.229 §5.4.2.1.2), the AOR first.
func visibleIMPUs(r binding.Registration) []string {
	barred := map[string]bool{}
	for _, b := range r.Barred {
		barred[binding.CanonURI(b)] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, u := range append([]string{r.AOR}, r.IMPUs...) {
		k := binding.CanonURI(u)
		if u == "" || seen[k] || barred[k] {
			continue
		}
		seen[k] = true
		out = append(out, u)
	}
	return out
}

// regID and contactID are stable ids of a registration (per IMPU) and a
// contact (per binding key) across NOTIFYs and restarts.
func regID(impu string) string { return "r" + shortHash(binding.CanonURI(impu)) }

func contactID(c *binding.Contact) string { return "c" + shortHash(c.Key()) }

func shortHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:6])
}

// reginfoContact maps a binding to a reginfo contact element: URI,
// call-id, cseq, q, remaining expiry (0 when terminated), registered
// duration, and every Contact header parameter other than q and expires
// as unknown-param (quoted values unquoted, e.g. +sip.instance).
func reginfoContact(c binding.Contact, st reginfo.ContactState, ev reginfo.Event, now time.Time) reginfo.Contact {
	exp := 0
	if st == reginfo.ContactActive {
		exp = int(c.Expires.Sub(now).Round(time.Second) / time.Second)
		if exp < 0 {
			exp = 0
		}
	}
	dur := int(now.Sub(c.Registered) / time.Second)
	if dur < 0 || c.Registered.IsZero() {
		dur = 0
	}
	cseq := c.CSeq
	out := reginfo.Contact{ID: contactID(&c), State: st, Event: ev, Expires: &exp, DurationRegistered: &dur,
		CallID: c.CallID, CSeq: &cseq, URI: c.URI}
	var u sip.Uri
	params := sip.NewParams()
	if _, err := sip.ParseAddressValue(c.Value, &u, &params); err == nil {
		for _, kv := range params {
			switch strings.ToLower(kv.K) {
			case "q":
				out.Q = kv.V
			case "expires":
			default:
				out.UnknownParams = append(out.UnknownParams, reginfo.UnknownParam{Name: kv.K, Value: imsheader.Unquote(kv.V)})
			}
		}
	}
	if out.Q == "" {
		out.Q = c.Q
	}
	if out.Q != "" {
		if _, err := strconv.ParseFloat(out.Q, 64); err != nil {
			out.Q = ""
		}
	}
	return out
}

// fullRegistrations is the full state of the set holding impu (RFC 3680
// §5.3): one registration element per visible IMPU, each with every
// binding (active, event registered). ok is false when impu is no longer
// registered; the element is then in state init.
func (n *Notifier) fullRegistrations(impu string) ([]reginfo.Registration, bool) {
	reg, ok := n.reg.Lookup(impu)
	if !ok || len(reg.Contacts) == 0 {
		return []reginfo.Registration{{AOR: impu, ID: regID(impu), State: reginfo.RegInit}}, false
	}
	now := time.Now()
	var cs []reginfo.Contact
	for _, c := range reg.Contacts {
		cs = append(cs, reginfoContact(c, reginfo.ContactActive, reginfo.EventRegistered, now))
	}
	var regs []reginfo.Registration
	for _, u := range visibleIMPUs(reg) {
		regs = append(regs, reginfo.Registration{AOR: u, ID: regID(u), State: reginfo.RegActive, Contacts: n.withGRUUs(u, cs, reg.Contacts)})
	}
	return regs, true
}

func (n *Notifier) enqueue(sub *regSub, job notifyJob) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.enqueueLocked(sub, job)
}

// enqueueLocked adds job to sub's queue and starts its drain goroutine if
// none runs. A terminating job removes sub from the active set at once.
func (n *Notifier) enqueueLocked(sub *regSub, job notifyJob) {
	if sub.final {
		return
	}
	sub.queue = append(sub.queue, job)
	if job.terminated {
		sub.final = true
		n.dropSubLocked(sub)
	}
	if !sub.busy {
		sub.busy = true
		n.startDrain(sub)
	}
}

// startDrain starts the drain goroutine of a sub created busy, a pooled
// one (sip.GoPooled): sending a NOTIFY grows a new goroutine's stack.
func (n *Notifier) startDrain(sub *regSub) {
	n.wg.Add(1)
	sip.GoPooled(func() { n.drain(sub) })
}

func (n *Notifier) drain(sub *regSub) {
	defer n.wg.Done()
	for {
		n.mu.Lock()
		if len(sub.queue) == 0 {
			sub.busy = false
			n.mu.Unlock()
			return
		}
		job := sub.queue[0]
		sub.queue = sub.queue[1:]
		sub.CSeq++
		version := sub.Version
		sub.Version++
		if sub.reloaded && !job.terminated {
			job.full = true
		}
		sub.reloaded = false
		raise := sub.CSeq > sub.ceilCSeq || sub.Version > sub.ceilVersion
		snap := sub.Subscription
		snap.RouteSet = append([]string(nil), sub.RouteSet...)
		n.mu.Unlock()

		if raise {
			// The new ceiling is stored before the NOTIFY leaves, so
			// that a restart never reuses what was sent (a failed write
			// is tried again before the next NOTIFY).
			c, v := snap.CSeq+stateReserve, snap.Version+stateReserve
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			err := n.saveState(ctx, &snap, c, v)
			cancel()
			if err != nil {
				n.log.Warn("storing reg-event subscription state", zap.String("impu", snap.IMPU), zap.Error(err))
			} else {
				n.mu.Lock()
				sub.ceilCSeq, sub.ceilVersion = c, v
				n.mu.Unlock()
			}
		}
		drop := n.send(snap, version, job)
		if job.terminated || drop {
			// A context of its own: the send may have taken the NOTIFY
			// timeout.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := n.delete(ctx, &snap); err != nil {
				n.log.Warn("deleting reg-event subscription", zap.String("impu", snap.IMPU), zap.Error(err))
			}
			cancel()
		}
		if drop && !job.terminated {
			n.mu.Lock()
			sub.final = true
			sub.queue = nil
			n.dropSubLocked(sub)
			n.mu.Unlock()
		}
	}
}

// send sends one NOTIFY in the dialog of sub (RFC 6665 §4.2.2, RFC 3680
// §4.5). It reports whether the subscription must be removed: the
// subscriber answered 481, or the NOTIFY timed out / could not be sent
// (RFC 6665 §4.2.2).
func (n *Notifier) send(sub Subscription, version int, job notifyJob) (drop bool) {
	regs, state := job.regs, reginfo.StatePartial
	terminated, reason := job.terminated, job.reason
	if job.full {
		var ok bool
		regs, ok = n.fullRegistrations(sub.IMPU)
		state = reginfo.StateFull
		if !ok && !terminated { // the set went away before the first NOTIFY
			terminated, reason = true, "noresource"
			drop = true
		}
	}
	doc := &reginfo.Reginfo{Version: version, State: state, Registrations: regs}
	body, err := reginfo.Marshal(doc)
	if err != nil {
		n.log.Error("reginfo document", zap.String("impu", sub.IMPU), zap.Error(err))
		n.notifies.WithLabelValues("not_sent").Inc()
		return drop
	}
	subState := "active;expires=" + strconv.Itoa(max(0, int(time.Until(sub.Expires).Round(time.Second)/time.Second)))
	if terminated {
		subState = "terminated"
		if reason != "" {
			subState += ";reason=" + reason
		}
	}
	req, tg, err := n.buildNotify(sub, subState, body)
	if err != nil {
		n.log.Warn("reg-event NOTIFY not built", zap.String("impu", sub.IMPU), zap.Error(err))
		n.notifies.WithLabelValues("not_sent").Inc()
		return true
	}
	p := n.host.SIPProxy()
	if p == nil {
		n.log.Warn("reg-event NOTIFY before the SIP layer started; dropped", zap.String("impu", sub.IMPU))
		n.notifies.WithLabelValues("not_sent").Inc()
		return drop
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.NotifyTimeout)
	defer cancel()
	res, err := p.DoConsume(ctx, req, tg)
	if err != nil {
		n.notifies.WithLabelValues("no_answer").Inc()
		n.log.Info("reg-event NOTIFY not answered; subscription removed", zap.String("impu", sub.IMPU), zap.String("target", sub.Target), zap.Error(err))
		return true
	}
	if res.StatusCode >= 300 {
		n.notifies.WithLabelValues("error_response").Inc()
		n.log.Info("reg-event NOTIFY refused", zap.String("impu", sub.IMPU), zap.Int("status", res.StatusCode))
		return drop || res.StatusCode == 481
	}
	n.notifies.WithLabelValues("ok").Inc()
	return drop
}

// buildNotify builds the in-dialog NOTIFY: Request-URI the remote target
// with the route set as Route (loose routing), or, when the first route
// is a strict router, Request-URI that route and the target appended
// (RFC 3261 §12.2.1.1); From the SUBSCRIBE's To with our tag, To its
// From with the subscriber's tag.
func (n *Notifier) buildNotify(sub Subscription, subState string, body []byte) (*sip.Request, sipproxy.Target, error) {
	var target sip.Uri
	if err := sip.ParseUri(sub.Target, &target); err != nil {
		return nil, sipproxy.Target{}, fmt.Errorf("remote target %q: %w", sub.Target, err)
	}
	var routes []sip.Uri
	for _, r := range sub.RouteSet {
		var u sip.Uri
		if err := sip.ParseUri(r, &u); err != nil {
			return nil, sipproxy.Target{}, fmt.Errorf("route %q: %w", r, err)
		}
		routes = append(routes, u)
	}
	ruri := target
	if len(routes) > 0 && (routes[0].UriParams == nil || !routes[0].UriParams.Has("lr")) {
		ruri = routes[0]
		routes = append(routes[1:], target)
	}
	var local, remote sip.Uri
	if err := sip.ParseUri(sub.LocalURI, &local); err != nil {
		return nil, sipproxy.Target{}, fmt.Errorf("local URI %q: %w", sub.LocalURI, err)
	}
	if err := sip.ParseUri(sub.RemoteURI, &remote); err != nil {
		return nil, sipproxy.Target{}, fmt.Errorf("remote URI %q: %w", sub.RemoteURI, err)
	}
	req := sip.NewRequest(sip.NOTIFY, ruri)
	fp := sip.NewParams()
	fp.Add("tag", sub.LocalTag)
	req.AppendHeader(&sip.FromHeader{Address: local, Params: fp})
	tp := sip.NewParams()
	tp.Add("tag", sub.RemoteTag)
	req.AppendHeader(&sip.ToHeader{Address: remote, Params: tp})
	cid := sip.CallIDHeader(sub.CallID)
	req.AppendHeader(&cid)
	req.AppendHeader(&sip.CSeqHeader{SeqNo: sub.CSeq, MethodName: sip.NOTIFY})
	transport := ""
	if v, ok := target.UriParams.Get("transport"); ok {
		transport = v
	}
	req.AppendHeader(&sip.ContactHeader{Address: n.contactURI(n.host.SIPProxy(), transport), Params: sip.NewParams()})
	ev := sub.Event
	if ev == "" {
		ev = "reg"
	}
	req.AppendHeader(sip.NewHeader("Event", ev))
	req.AppendHeader(sip.NewHeader("Subscription-State", subState))
	ct := sip.ContentTypeHeader(reginfo.ContentType)
	req.AppendHeader(&ct)
	req.SetBody(body)
	return req, sipproxy.Target{Route: routes}, nil
}

// sweeper ends expired subscriptions with a NOTIFY
// "Subscription-State: terminated;reason=timeout" (RFC 6665 §4.2.2).
func (n *Notifier) sweeper() {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.SweepInterval)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-tick.C:
		}
		if n.host.SIPProxy() == nil {
			continue
		}
		now := time.Now()
		n.mu.Lock()
		for _, sub := range n.subs {
			if !sub.final && !sub.Expires.After(now) {
				n.log.Info("reg-event subscription expired", zap.String("impu", sub.IMPU), zap.String("call-id", sub.CallID))
				n.enqueueLocked(sub, notifyJob{full: true, terminated: true, reason: "timeout"})
			}
		}
		n.mu.Unlock()
	}
}
