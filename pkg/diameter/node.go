package diameter

// Why not go-diameter's sm.StateMachine / diam.Server: with
// Server.MaxConcurrentHandlers > 0 (needed so one slow HSS lookup does not
// block a connection) the library dispatches every message in its own
// goroutine, and its CER handler writes the CEA *before* it stores the peer
// metadata in the connection context. A request sent right after the CEA can
// therefore be dispatched before that store, fails sm's "handshake done"
// check and is dropped without an answer. Its client side also cannot
// receive requests (RTR/PPR/ASR) on the connection it opened. This package
// therefore runs its own connection loop: one reader per connection handles
// CER/CEA, DWR and DPR in order, then hands other requests to goroutines
// (bounded per connection); answers are matched by Hop-by-Hop id. go-diameter
// is used for the dictionaries and for message encoding/decoding.
//
// The base protocol as standard peers (Kamailio's cdp, freeDiameter,
// open5gs) expect it: CER/CEA contents of RFC 6733 §5.3 (Conn.capabilities),
// one connection per configured peer with the election of §5.6.4
// (Conn.serverHandshake, Peer.inbound), the RFC 3539 watchdog with
// fail-over and fail-back (Conn.watchdog, Node.Send, Node.route), DPR/DPA
// with a back-off by Disconnect-Cause (§5.4, Peer.waitAfterLocked) and
// duplicate detection by Origin-Host and End-to-End id for requests with
// the T flag (§5.5.4, dupCache).

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/avp"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"github.com/fiorix/go-diameter/v4/diam/dict"
	"go.uber.org/zap"
)

// Config configures a Node.
type Config struct {
	OriginHost  string // our Diameter identity (FQDN), required
	OriginRealm string // our realm, required
	// HostIPs are the Host-IP-Address values of our CER/CEA; unspecified
	// addresses (0.0.0.0, ::) are skipped. Default: the connection's local
	// address.
	HostIPs []net.IP
	// VendorID is the Vendor-Id of our CER/CEA (RFC 6733 §5.3.3, the
	// vendor of the software); 0 means the default, Vendor3GPP (10415),
	// which is also what Kamailio's and OpenIMSCore's CSCFs and HSS send.
	VendorID         uint32
	ProductName      string // Product-Name; default "imscore"
	FirmwareRevision uint32 // Firmware-Revision in CER/CEA when not 0
	Apps             []App  // applications served and advertised; at least one

	// AllowedPeers lists the Origin-Host values accepted on inbound
	// connections (case-insensitive). Others get CEA 3010
	// DIAMETER_UNKNOWN_PEER and are closed, unless AcceptAnyPeer is set.
	AllowedPeers  []string
	AcceptAnyPeer bool

	// WatchdogInterval is Tw (RFC 3539 §3.4.1), used with ±2 s of jitter
	// (at most ±Tw/4); default 30s. A silent peer is SUSPECT after 2 Tw
	// and closed after 3 Tw (see WatchdogState).
	WatchdogInterval time.Duration
	CETimeout        time.Duration // wait for CER/CEA; default 10s
	ReconnectMin     time.Duration // first back-off after a failed attempt; default 500ms
	ReconnectMax     time.Duration // back-off ceiling; default 30s
	// BusyBackoff is how long a Peer waits before reconnecting after the
	// peer sent DPR with Disconnect-Cause BUSY or answered our CER with
	// 3004 DIAMETER_TOO_BUSY; default 60s.
	BusyBackoff time.Duration
	// DoNotWantToTalkBackoff is how long a Peer waits before reconnecting
	// after a DPR with DO_NOT_WANT_TO_TALK_TO_YOU (RFC 6733 §5.4.3); the
	// peer may still connect to us. Default 1h.
	DoNotWantToTalkBackoff time.Duration
	// DuplicateWindow and DuplicateEntries bound the cache of recent
	// answers used for duplicate detection (RFC 6733 §5.5.4): an answer
	// is kept DuplicateWindow (default 10s) and at most DuplicateEntries
	// (default 8192, about 8 MB of 1 kB answers) are kept, the oldest
	// dropped first. A negative DuplicateEntries disables the cache.
	DuplicateWindow  time.Duration
	DuplicateEntries int
	// OnWatchdog, if set, is called on every watchdog state change of a
	// connection (RFC 3539; for metrics and tests). It runs synchronously
	// and must not block.
	OnWatchdog func(c *Conn, from, to WatchdogState)
	// MaxConcurrentRequests bounds requests handled at once per connection;
	// the reader waits when it is reached. Default 256.
	MaxConcurrentRequests int
	Logger                *zap.Logger // default zap.NewNop()
}

// HandlerFunc serves one request received from peer c and returns the answer
// (build it with Node.Answer). The node fills missing Session-Id,
// Origin-Host/Realm, Auth-Session-State, Vendor-Specific-Application-Id and
// Proxy-Info. A returned *MissingAVPError becomes 5005 DIAMETER_MISSING_AVP
// with Failed-AVP, a *ResultError its own Result-Code, any other error (and
// a panic) 5012 DIAMETER_UNABLE_TO_COMPLY. ctx ends when the connection does.
type HandlerFunc func(ctx context.Context, c *Conn, req *diam.Message) (*diam.Message, error)

// MissingAVPError reports a mandatory AVP missing from a request (answered
// 5005 with Failed-AVP holding a zero-filled example, RFC 6733 §7.5).
type MissingAVPError struct{ AVP AVPCode }

func (e *MissingAVPError) Error() string {
	return fmt.Sprintf("diameter: missing AVP %s", e.AVP)
}

// MissingAVP returns a *MissingAVPError for a handler to return.
func MissingAVP(a AVPCode) error { return &MissingAVPError{AVP: a} }

// ResultError makes the node answer with Result-Code (or, when Experimental
// is set, Experimental-Result with vendor 10415) and optional Failed-AVP and
// Error-Message.
type ResultError struct {
	Code         uint32
	Experimental bool
	FailedAVP    *diam.AVP
	Message      string
}

func (e *ResultError) Error() string {
	return fmt.Sprintf("diameter: result %d: %s", e.Code, e.Message)
}

// Errors of Send.
var (
	ErrNoRoute    = errors.New("diameter: no open peer for destination")
	ErrConnClosed = errors.New("diameter: connection closed")
	ErrNodeClosed = errors.New("diameter: node closed")
)

type cmdKey struct{ app, cmd uint32 }

// Node is a Diameter node: it listens for peers, connects to peers, answers
// requests with registered handlers and sends requests to any open peer.
type Node struct {
	cfg  Config
	dict *dict.Parser
	log  *zap.Logger
	apps map[uint32]bool

	hmu      sync.RWMutex
	handlers map[cmdKey]HandlerFunc

	mu        sync.Mutex
	conns     map[*Conn]struct{}
	peers     []*Peer
	listeners []net.Listener
	closed    bool

	rmu     sync.Mutex
	rchange chan struct{} // closed and replaced when routes may have changed

	dups *dupCache

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stateID   uint32
	sessionHi uint32
	sessionLo atomic.Uint32
	e2e       atomic.Uint32
}

// New validates cfg and returns a Node with a dictionary holding base plus
// cfg.Apps only.
func New(cfg Config) (*Node, error) {
	if cfg.OriginHost == "" || cfg.OriginRealm == "" {
		return nil, errors.New("diameter: OriginHost and OriginRealm are required")
	}
	if len(cfg.Apps) == 0 {
		return nil, errors.New("diameter: at least one application is required")
	}
	p, err := NewParser(cfg.Apps...)
	if err != nil {
		return nil, err
	}
	if cfg.ProductName == "" {
		cfg.ProductName = "imscore"
	}
	if cfg.VendorID == 0 {
		cfg.VendorID = Vendor3GPP
	}
	if cfg.BusyBackoff <= 0 {
		cfg.BusyBackoff = 60 * time.Second
	}
	if cfg.DoNotWantToTalkBackoff <= 0 {
		cfg.DoNotWantToTalkBackoff = time.Hour
	}
	if cfg.DuplicateWindow <= 0 {
		cfg.DuplicateWindow = 10 * time.Second
	}
	if cfg.DuplicateEntries == 0 {
		cfg.DuplicateEntries = 8192
	}
	if cfg.WatchdogInterval <= 0 {
		cfg.WatchdogInterval = 30 * time.Second
	}
	if cfg.CETimeout <= 0 {
		cfg.CETimeout = 10 * time.Second
	}
	if cfg.ReconnectMin <= 0 {
		cfg.ReconnectMin = 500 * time.Millisecond
	}
	if cfg.ReconnectMax < cfg.ReconnectMin {
		cfg.ReconnectMax = 30 * time.Second
	}
	if cfg.MaxConcurrentRequests <= 0 {
		cfg.MaxConcurrentRequests = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	now := uint32(time.Now().Unix())
	n := &Node{
		cfg: cfg, dict: p, log: cfg.Logger.Named("diameter"),
		apps: map[uint32]bool{}, handlers: map[cmdKey]HandlerFunc{},
		conns: map[*Conn]struct{}{}, ctx: ctx, cancel: cancel,
		stateID: now, sessionHi: now, rchange: make(chan struct{}),
		dups: newDupCache(cfg.DuplicateWindow, cfg.DuplicateEntries),
	}
	n.sessionLo.Store(rand.Uint32())
	n.e2e.Store((now&0xfff)<<20 | rand.Uint32()&0xfffff)
	for _, a := range cfg.Apps {
		n.apps[uint32(a)] = true
	}
	return n, nil
}

// Dictionary returns the node's dictionary parser.
func (n *Node) Dictionary() *dict.Parser { return n.dict }

// Config returns the node's configuration with defaults applied.
func (n *Node) Config() Config { return n.cfg }

// Handle registers h for requests with command code cmd of application app
// (replacing an earlier one). Requests without a handler are answered 3001
// DIAMETER_COMMAND_UNSUPPORTED.
func (n *Node) Handle(cmd uint32, app App, h HandlerFunc) {
	n.hmu.Lock()
	n.handlers[cmdKey{uint32(app), cmd}] = h
	n.hmu.Unlock()
}

func (n *Node) handler(app, cmd uint32) HandlerFunc {
	n.hmu.RLock()
	defer n.hmu.RUnlock()
	return n.handlers[cmdKey{app, cmd}]
}

// NewSessionID returns a Session-Id "<origin-host>;<hi32>;<lo32>"
// (RFC 6733 §8.8): hi is the node start time, lo a counter.
func (n *Node) NewSessionID() string {
	return fmt.Sprintf("%s;%d;%d", n.cfg.OriginHost, n.sessionHi, n.sessionLo.Add(1))
}

// NewRequest builds a request of application app: Session-Id, then for Cx and
// Sh Vendor-Specific-Application-Id and Auth-Session-State
// NO_STATE_MAINTAINED (TS 29.229 §5.3), for Rx Auth-Application-Id, then
// Origin-Host, Origin-Realm, Destination-Host (if not empty) and
// Destination-Realm. Callers append the command's own AVPs.
func (n *Node) NewRequest(cmd uint32, app App, destRealm, destHost string) *diam.Message {
	m := diam.NewMessage(cmd, diam.RequestFlag|diam.ProxiableFlag, uint32(app), 0, n.e2e.Add(1), n.dict)
	m.AddAVP(NewAVP(AVPSessionID, datatype.UTF8String(n.NewSessionID())))
	switch app {
	case AppCx, AppSh:
		m.AddAVP(VendorSpecificAppID(app))
		m.AddAVP(NewAVP(AVPAuthSessionState, datatype.Enumerated(NoStateMaintained)))
	default:
		m.AddAVP(NewAVP(AVPAuthApplicationID, datatype.Unsigned32(uint32(app))))
	}
	m.AddAVP(NewAVP(AVPOriginHost, datatype.DiameterIdentity(n.cfg.OriginHost)))
	m.AddAVP(NewAVP(AVPOriginRealm, datatype.DiameterIdentity(n.cfg.OriginRealm)))
	if destHost != "" {
		m.AddAVP(NewAVP(AVPDestinationHost, datatype.DiameterIdentity(destHost)))
	}
	m.AddAVP(NewAVP(AVPDestinationRealm, datatype.DiameterIdentity(destRealm)))
	return m
}

// Answer builds the answer to req with Result-Code code: Session-Id echo,
// Vendor-Specific-Application-Id and Auth-Session-State echo (when in req),
// Result-Code, Origin-Host, Origin-Realm. The E bit is set for 3xxx codes.
func (n *Node) Answer(req *diam.Message, code uint32) *diam.Message {
	a := n.answerHead(req)
	a.AddAVP(NewAVP(AVPResultCode, datatype.Unsigned32(code)))
	if code >= 3000 && code < 4000 {
		a.Header.CommandFlags |= diam.ErrorFlag
	}
	n.addOrigin(a)
	return a
}

// AnswerExperimental is Answer with Experimental-Result (vendor 10415,
// code) instead of Result-Code, e.g. DiameterFirstRegistration or
// DiameterErrorUserUnknown.
func (n *Node) AnswerExperimental(req *diam.Message, code uint32) *diam.Message {
	a := n.answerHead(req)
	a.AddAVP(ExperimentalResult(code))
	n.addOrigin(a)
	return a
}

func (n *Node) answerHead(req *diam.Message) *diam.Message {
	a := diam.NewMessage(req.Header.CommandCode, req.Header.CommandFlags&diam.ProxiableFlag,
		req.Header.ApplicationID, req.Header.HopByHopID, req.Header.EndToEndID, n.dict)
	if s := Find(req, AVPSessionID); s != nil {
		a.AddAVP(NewAVP(AVPSessionID, s.Data))
	}
	if v := Find(req, AVPVendorSpecificApplicationID); v != nil {
		a.AddAVP(VendorSpecificAppID(App(req.Header.ApplicationID)))
	}
	if s := Find(req, AVPAuthSessionState); s != nil {
		a.AddAVP(NewAVP(AVPAuthSessionState, s.Data))
	}
	return a
}

func (n *Node) addOrigin(a *diam.Message) {
	a.AddAVP(NewAVP(AVPOriginHost, datatype.DiameterIdentity(n.cfg.OriginHost)))
	a.AddAVP(NewAVP(AVPOriginRealm, datatype.DiameterIdentity(n.cfg.OriginRealm)))
}

// completeAnswer adds what a handler's answer lacks (see HandlerFunc).
func (n *Node) completeAnswer(req, a *diam.Message) {
	a.Header.HopByHopID = req.Header.HopByHopID
	a.Header.EndToEndID = req.Header.EndToEndID
	a.Header.CommandCode = req.Header.CommandCode
	a.Header.ApplicationID = req.Header.ApplicationID
	a.Header.CommandFlags &^= diam.RequestFlag
	if s := Find(req, AVPSessionID); s != nil && Find(a, AVPSessionID) == nil {
		a.InsertAVP(NewAVP(AVPSessionID, s.Data))
	}
	if Find(a, AVPOriginHost) == nil {
		a.AddAVP(NewAVP(AVPOriginHost, datatype.DiameterIdentity(n.cfg.OriginHost)))
	}
	if Find(a, AVPOriginRealm) == nil {
		a.AddAVP(NewAVP(AVPOriginRealm, datatype.DiameterIdentity(n.cfg.OriginRealm)))
	}
	for _, p := range FindAll(req, AVPProxyInfo) {
		a.AddAVP(p)
	}
	if c, exp, ok := Result(a); ok && !exp && c >= 3000 && c < 4000 {
		a.Header.CommandFlags |= diam.ErrorFlag
	}
}

// errorAnswer builds an answer for err returned by a handler or found by
// validation.
func (n *Node) errorAnswer(req *diam.Message, err error) *diam.Message {
	var miss *MissingAVPError
	var rerr *ResultError
	switch {
	case errors.As(err, &miss):
		a := n.Answer(req, DiameterMissingAVP)
		a.AddAVP(NewAVP(AVPFailedAVP, &diam.GroupedAVP{AVP: []*diam.AVP{n.exampleAVP(req.Header.ApplicationID, miss.AVP)}}))
		return a
	case errors.As(err, &rerr):
		var a *diam.Message
		if rerr.Experimental {
			a = n.AnswerExperimental(req, rerr.Code)
		} else {
			a = n.Answer(req, rerr.Code)
		}
		if rerr.Message != "" {
			a.AddAVP(NewAVP(AVPErrorMessage, datatype.UTF8String(rerr.Message)))
		}
		if rerr.FailedAVP != nil {
			a.AddAVP(NewAVP(AVPFailedAVP, &diam.GroupedAVP{AVP: []*diam.AVP{rerr.FailedAVP}}))
		}
		return a
	}
	return n.Answer(req, DiameterUnableToComply)
}

// exampleAVP is a zero-filled AVP of minimum length for Failed-AVP.
func (n *Node) exampleAVP(app uint32, a AVPCode) *diam.AVP {
	var data datatype.Type = datatype.OctetString("")
	if d, err := n.dict.FindAVPWithVendor(app, a.Code(), a.Vendor()); err == nil {
		switch d.Data.Type {
		case datatype.Unsigned32Type, datatype.EnumeratedType, datatype.Integer32Type:
			data = datatype.Unsigned32(0)
		case datatype.Unsigned64Type, datatype.Integer64Type:
			data = datatype.Unsigned64(0)
		case datatype.AddressType:
			data = datatype.Address(net.IPv4zero.To4())
		case datatype.GroupedType:
			data = &diam.GroupedAVP{}
		case datatype.TimeType:
			data = datatype.Time(time.Unix(0, 0))
		}
	}
	return NewAVP(a, data)
}

// validate checks req before its handler runs: an AVP with the M bit that
// no dictionary defines — a known code with another vendor counts as
// unknown — is DIAMETER_AVP_UNSUPPORTED (5001) with that AVP in Failed-AVP
// (RFC 6733 §4.1, §7.5); unknown AVPs without the M bit are ignored. Then
// the first mandatory top-level AVP (required="true" in the dictionary)
// missing from req is a *MissingAVPError (5005).
func (n *Node) validate(req *diam.Message) error {
	if a := unsupportedMandatory(req.AVP); a != nil {
		return &ResultError{Code: DiameterAVPUnsupported, FailedAVP: a,
			Message: fmt.Sprintf("AVP %s with the M bit is not supported", IdentityOf(a))}
	}
	cmd, err := n.dict.FindCommand(req.Header.ApplicationID, req.Header.CommandCode)
	if err != nil {
		return nil
	}
	for _, r := range cmd.Request.Rule {
		if !r.Required {
			continue
		}
		d, err := n.dict.FindAVP(req.Header.ApplicationID, r.AVP)
		if err != nil {
			continue
		}
		if id := AVPOf(d.Code, d.VendorID); Find(req, id) == nil {
			return &MissingAVPError{AVP: id}
		}
	}
	return nil
}

// unsupportedMandatory returns the first AVP in avps, or inside a known
// grouped AVP among them, that has the M bit and no dictionary entry.
func unsupportedMandatory(avps []*diam.AVP) *diam.AVP {
	for _, a := range avps {
		if a == nil {
			continue
		}
		if !IdentityOf(a).Known() {
			if a.Flags&avp.Mbit != 0 {
				return a
			}
			continue
		}
		if g, ok := a.Data.(*diam.GroupedAVP); ok {
			if x := unsupportedMandatory(g.AVP); x != nil {
				return x
			}
		}
	}
	return nil
}

// Listen accepts peers on network ("tcp", "tcp4" or "tcp6") and
// addr until ctx ends or Close; it returns the bound address (useful with
// port 0).
func (n *Node) Listen(ctx context.Context, network, addr string) (net.Addr, error) {
	// SCTP is not supported yet (go-diameter's SCTP listener returns a
	// non-nil unusable listener with its error on kernels without SCTP).
	l, err := net.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("diameter: listen %s %s: %w", network, addr, err)
	}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		l.Close()
		return nil, ErrNodeClosed
	}
	n.listeners = append(n.listeners, l)
	n.mu.Unlock()
	n.wg.Add(2)
	go func() {
		defer n.wg.Done()
		select {
		case <-ctx.Done():
		case <-n.ctx.Done():
		}
		l.Close()
	}()
	go func() {
		defer n.wg.Done()
		n.acceptLoop(l)
	}()
	n.log.Info("listening", zap.String("network", network), zap.Stringer("addr", l.Addr()))
	return l.Addr(), nil
}

func (n *Node) acceptLoop(l net.Listener) {
	var delay time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return
		}
		delay = 0
		c := n.newConn(nc, true)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			if err := c.serverHandshake(); err != nil {
				n.log.Info("inbound capabilities exchange failed", zap.Stringer("remote", nc.RemoteAddr()),
					zap.String("peer", c.peerHost), zap.Error(err))
				c.close(err)
				return
			}
			c.run()
		}()
	}
}

func (n *Node) register(c *Conn) bool {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return false
	}
	n.conns[c] = struct{}{}
	c.opened.Store(true)
	n.mu.Unlock()
	n.routesChanged()
	return true
}

func (n *Node) unregister(c *Conn) {
	n.mu.Lock()
	delete(n.conns, c)
	n.mu.Unlock()
}

// routesChanged wakes requests waiting for a better route (see Send).
func (n *Node) routesChanged() {
	n.rmu.Lock()
	close(n.rchange)
	n.rchange = make(chan struct{})
	n.rmu.Unlock()
}

// routeChange returns a channel closed at the next routesChanged.
func (n *Node) routeChange() <-chan struct{} {
	n.rmu.Lock()
	defer n.rmu.Unlock()
	return n.rchange
}

// Conns returns the open connections (capabilities exchanged).
func (n *Node) Conns() []*Conn {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]*Conn, 0, len(n.conns))
	for c := range n.conns {
		out = append(out, c)
	}
	return out
}

// Send routes req (see route) and waits for its answer, failing over as
// RFC 6733 §5.5.4 and RFC 3539 §5.1 describe: when the connection carrying
// the request becomes SUSPECT (see WatchdogState) and another connection
// to the destination is OKAY, or when it closes before the answer and any
// other connection can take the request, the request is sent again there
// with the T flag (same End-to-End Identifier and Origin-Host, so that the
// receiver can recognise a duplicate). Without an alternative it keeps
// waiting on the suspect connection, which may recover. Errors:
// ErrNoRoute, ErrConnClosed, ctx.Err() on timeout.
func (n *Node) Send(ctx context.Context, req *diam.Message) (*diam.Message, error) {
	var tried []*Conn
	var lastErr error
	for {
		c := n.route(req, tried, false)
		if c == nil {
			if lastErr != nil {
				return nil, lastErr
			}
			return nil, fmt.Errorf("%w (host %q realm %q app %d)", ErrNoRoute,
				String(req, AVPDestinationHost), String(req, AVPDestinationRealm), req.Header.ApplicationID)
		}
		if len(tried) > 0 {
			req.Header.CommandFlags |= diam.RetransmittedFlag
			n.log.Info("failing over request", zap.Uint32("cmd", req.Header.CommandCode),
				zap.Uint32("end_to_end", req.Header.EndToEndID), zap.String("from", tried[len(tried)-1].PeerHost()),
				zap.String("to", c.PeerHost()))
		}
		a, err := n.sendOn(ctx, c, req, tried)
		switch {
		case err == nil:
			return a, nil
		case errors.Is(err, errFailover), errors.Is(err, ErrConnClosed):
			lastErr = err
			if errors.Is(err, errFailover) {
				lastErr = ErrConnClosed
			}
			tried = append(tried, c)
		default:
			return nil, err
		}
	}
}

// errFailover: the connection became SUSPECT and another one is OKAY.
var errFailover = errors.New("diameter: failing over")

// sendOn sends req on c and waits for its answer, or until c is SUSPECT
// while an OKAY alternative (not in tried) exists (errFailover).
func (n *Node) sendOn(ctx context.Context, c *Conn, req *diam.Message, tried []*Conn) (*diam.Message, error) {
	id, ch, err := c.start(req)
	if err != nil {
		return nil, err
	}
	for {
		var wake <-chan struct{}
		if c.Watchdog() == WatchdogSuspect {
			wake = n.routeChange()
			if n.route(req, append(tried[:len(tried):len(tried)], c), true) != nil {
				c.forget(id)
				return nil, errFailover
			}
		} else {
			wake = c.failover()
		}
		select {
		case a, ok := <-ch:
			if !ok {
				return nil, ErrConnClosed
			}
			return a, nil
		case <-ctx.Done():
			c.forget(id)
			return nil, ctx.Err()
		case <-wake:
		}
	}
}

// route chooses the connection for req among the open ones that support
// its application, are not excluded and are not closing (DPR sent or
// received), in this order: OKAY to Destination-Host, OKAY to another
// host of Destination-Realm, then REOPEN, then SUSPECT ones in the same
// host/realm order (RFC 3539 §5: SUSPECT and REOPEN connections take
// traffic only when nothing better exists). Within a rank the lowest
// PeerConfig.Priority wins, at random among equals. A Destination-Host
// therefore does not pin a request to a peer that is not OKAY, as it did
// not to a peer that is not connected: a standby HSS sharing the primary's
// database takes it. okayOnly restricts the choice to OKAY connections.
func (n *Node) route(req *diam.Message, exclude []*Conn, okayOnly bool) *Conn {
	host := String(req, AVPDestinationHost)
	realm := String(req, AVPDestinationRealm)
	app := req.Header.ApplicationID
	var best *Conn
	bestTier, bestPrio, ties := 0, 0, 0
	for _, c := range n.Conns() {
		if slices.Contains(exclude, c) || c.closing() || !c.Supports(app) {
			continue
		}
		hostMatch := host != "" && strings.EqualFold(c.PeerHost(), host)
		if !hostMatch && realm != "" && !strings.EqualFold(c.PeerRealm(), realm) {
			continue
		}
		tier := 0
		switch c.Watchdog() {
		case WatchdogOkay:
		case WatchdogReopen:
			tier = 2
		case WatchdogSuspect:
			tier = 4
		default:
			continue
		}
		if okayOnly && tier != 0 {
			continue
		}
		if !hostMatch {
			tier++
		}
		prio := c.priority()
		switch {
		case best == nil || tier < bestTier || tier == bestTier && prio < bestPrio:
			best, bestTier, bestPrio, ties = c, tier, prio, 1
		case tier == bestTier && prio == bestPrio:
			if ties++; rand.IntN(ties) == 0 {
				best = c
			}
		}
	}
	return best
}

// dupKey identifies a request for duplicate detection: Origin-Host
// (case-insensitive) and End-to-End Identifier (RFC 6733 §3).
type dupKey struct {
	host string
	e2e  uint32
}

func dupKeyOf(req *diam.Message) (dupKey, bool) {
	h := String(req, AVPOriginHost)
	if h == "" {
		return dupKey{}, false
	}
	return dupKey{strings.ToLower(h), req.Header.EndToEndID}, true
}

// dupEntry is one request being answered or answered recently.
type dupEntry struct {
	key    dupKey
	done   chan struct{} // closed once answer is set
	answer []byte        // encoded answer; nil if none could be encoded
	at     time.Time     // when answered
}

// dupCache remembers the answers of recent requests for duplicate
// detection (RFC 6733 §5.5.4): entries of requests being handled, and
// answers for window, at most max of them (oldest evicted first). Only
// requests with the T flag are looked up; every request is recorded.
type dupCache struct {
	window time.Duration
	max    int

	mu sync.Mutex
	m  map[dupKey]*dupEntry
	q  []*dupEntry // answered entries, oldest first
}

func newDupCache(window time.Duration, max int) *dupCache {
	if max < 0 {
		return nil
	}
	return &dupCache{window: window, max: max, m: map[dupKey]*dupEntry{}}
}

// begin records a request with key. With retransmitted (T flag) and an
// entry for key still in the window, it returns that entry as orig (wait
// for orig.done, then use orig.answer) and no new entry.
func (d *dupCache) begin(key dupKey, retransmitted bool) (ent, orig *dupEntry) {
	if d == nil {
		return nil, nil
	}
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.m[key]; ok && retransmitted && (e.at.IsZero() || now.Sub(e.at) <= d.window) {
		return nil, e
	}
	e := &dupEntry{key: key, done: make(chan struct{})}
	d.m[key] = e
	return e, nil
}

// finish stores the answer of e (nil if none) and evicts old entries.
func (d *dupCache) finish(e *dupEntry, answer []byte) {
	if d == nil || e == nil {
		return
	}
	now := time.Now()
	d.mu.Lock()
	e.answer, e.at = answer, now
	d.q = append(d.q, e)
	for len(d.q) > 0 && (len(d.q) > d.max || now.Sub(d.q[0].at) > d.window) {
		old := d.q[0]
		d.q[0] = nil
		d.q = d.q[1:]
		if d.m[old.key] == old {
			delete(d.m, old.key)
		}
	}
	d.mu.Unlock()
	close(e.done)
}

// Ready reports whether every peer added with Connect is open (true when
// there are none). Use it for /readyz.
func (n *Node) Ready() bool {
	n.mu.Lock()
	peers := append([]*Peer(nil), n.peers...)
	n.mu.Unlock()
	for _, p := range peers {
		if p.State() != PeerOpen {
			return false
		}
	}
	return true
}

// Routable reports whether a request of app for realm can be sent now: an
// open connection (OKAY, REOPEN or SUSPECT, not closing) to a peer of realm
// shares app. With a standby peer (PeerConfig.Priority) it is the
// readiness test to use instead of Ready, which wants every peer open.
func (n *Node) Routable(realm string, app App) bool {
	req := diam.NewMessage(0, diam.RequestFlag, uint32(app), 0, 0, n.dict)
	req.AddAVP(NewAVP(AVPDestinationRealm, datatype.DiameterIdentity(realm)))
	return n.route(req, nil, false) != nil
}

// PeerStatus describes one connection or configured peer for status pages.
type PeerStatus struct {
	Host     string    `json:"host"`
	Realm    string    `json:"realm"`
	Addr     string    `json:"addr"`
	State    string    `json:"state"`
	Watchdog string    `json:"watchdog"` // RFC 3539 state: okay, suspect, reopen, down
	Priority int       `json:"priority"`
	Inbound  bool      `json:"inbound"` // the connection was opened by the peer
	Apps     []uint32  `json:"apps,omitempty"`
	Since    time.Time `json:"since"`
}

// Status lists configured outbound peers (with the connection they use,
// which may be the peer's own after an election) and the other inbound
// connections.
func (n *Node) Status() []PeerStatus {
	n.mu.Lock()
	peers := append([]*Peer(nil), n.peers...)
	n.mu.Unlock()
	var out []PeerStatus
	for _, p := range peers {
		st := PeerStatus{Host: p.cfg.Host, Realm: p.cfg.Realm, Addr: p.cfg.Addr, State: p.State().String(),
			Watchdog: WatchdogDown.String(), Priority: p.cfg.Priority}
		if c := p.Conn(); c != nil {
			st.Host, st.Realm, st.Apps, st.Since = c.PeerHost(), c.PeerRealm(), c.Apps(), c.since
			st.Watchdog, st.Inbound = c.Watchdog().String(), c.Inbound()
		}
		out = append(out, st)
	}
	for _, c := range n.Conns() {
		if c.inbound && c.Peer() == nil {
			out = append(out, PeerStatus{Host: c.PeerHost(), Realm: c.PeerRealm(), Addr: c.RemoteAddr().String(),
				State: PeerOpen.String(), Watchdog: c.Watchdog().String(), Inbound: true, Apps: c.Apps(), Since: c.since})
		}
	}
	return out
}

// Close stops listening and reconnecting, sends DPR (Disconnect-Cause
// REBOOTING) on every open connection, waits up to ctx for the DPAs and
// closes everything.
func (n *Node) Close(ctx context.Context) error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	conns := make([]*Conn, 0, len(n.conns))
	for c := range n.conns {
		conns = append(conns, c)
	}
	n.mu.Unlock()
	n.cancel()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Disconnect(ctx, DisconnectRebooting)
		}()
	}
	wg.Wait()
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
