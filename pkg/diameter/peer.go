package diameter

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"go.uber.org/zap"
)

// PeerConfig is an outbound peer.
type PeerConfig struct {
	Addr    string // host:port
	Network string // "tcp" (default), "tcp4" or "tcp6"
	// Host is the expected Origin-Host in its CEA; empty accepts any. With
	// Host set, a CER from that host is recognised as this peer's (RFC
	// 6733 §5.6: election when both sides connect at once, one connection
	// per peer); with Host empty only after a first connection told it.
	Host  string
	Realm string // its realm (informational, status)
	// Priority orders the peers Node.Send may choose for a request (same
	// Destination-Realm and application): among OKAY connections the
	// lowest Priority wins, at random among equals. 0 (the default) is the
	// primary; give a standby peer 1. Requests fail over to the standby
	// when the primary's watchdog says SUSPECT and fail back once the
	// primary is OKAY again (RFC 3539 §5). Inbound connections without a
	// Peer count as 0.
	Priority int
}

// PeerState is the state of an outbound peer.
type PeerState int32

// Peer states.
const (
	PeerDown PeerState = iota
	PeerConnecting
	PeerOpen
	PeerClosed // Close was called
)

func (s PeerState) String() string {
	return [...]string{"down", "connecting", "open", "closed"}[s]
}

// Peer is an outbound peer kept connected by its own goroutine: connect,
// CER/CEA, serve, and after a loss reconnect — at once after a transport
// or watchdog failure, with exponential back-off (ReconnectMin doubling
// up to ReconnectMax, with jitter) after failed attempts, and after a DPR
// from the peer as its Disconnect-Cause asks (see Config.BusyBackoff).
// The peer's own connection to us, when it wins the election or arrives
// while we are down, becomes the Peer's connection (RFC 6733 §5.6). Every
// connection after the first starts in the watchdog's REOPEN state (RFC
// 3539 §3.4.1).
type Peer struct {
	node *Node
	cfg  PeerConfig

	mu        sync.Mutex
	state     PeerState
	conn      *Conn
	lastErr   error
	change    chan struct{}      // closed and replaced on every state change
	abort     context.CancelFunc // cancels the connection attempt in progress
	everOpen  bool               // a connection was open before: the next starts in REOPEN
	notBefore time.Time          // no reconnection before (DPR back-off)

	learned atomic.Pointer[string] // Origin-Host learned from a CEA when cfg.Host is empty
	stopped atomic.Bool            // the loop ended (PeerClosed)

	kick chan struct{} // an inbound connection was adopted while down

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

// Connect adds an outbound peer and starts connecting in the background; it
// returns at once (use WaitOpen to wait). ctx bounds the peer's life, as do
// Peer.Close and Node.Close.
func (n *Node) Connect(ctx context.Context, pc PeerConfig) (*Peer, error) {
	if pc.Addr == "" {
		return nil, errors.New("diameter: peer address required")
	}
	if pc.Network == "" {
		pc.Network = "tcp"
	}
	pctx, cancel := context.WithCancel(n.ctx)
	p := &Peer{node: n, cfg: pc, change: make(chan struct{}), kick: make(chan struct{}, 1),
		ctx: pctx, cancel: cancel, done: make(chan struct{})}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		cancel()
		return nil, ErrNodeClosed
	}
	n.peers = append(n.peers, p)
	n.mu.Unlock()
	// The peer may have connected to us already (its CER came before
	// this Connect): that connection becomes the Peer's (R-Open).
	p.mu.Lock()
	p.adoptInboundLocked()
	p.mu.Unlock()
	stop := context.AfterFunc(ctx, p.cancel)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer stop()
		p.loop()
	}()
	return p, nil
}

// Config returns the peer's configuration.
func (p *Peer) Config() PeerConfig { return p.cfg }

func (p *Peer) setStateLocked(s PeerState, c *Conn, err error) {
	p.state, p.conn = s, c
	if err != nil {
		p.lastErr = err
	}
	close(p.change)
	p.change = make(chan struct{})
}

func (p *Peer) setState(s PeerState, c *Conn, err error) {
	p.mu.Lock()
	p.setStateLocked(s, c, err)
	p.mu.Unlock()
}

// State returns the current state.
func (p *Peer) State() PeerState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// Conn returns the open connection or nil.
func (p *Peer) Conn() *Conn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.openLocked()
}

func (p *Peer) openLocked() *Conn {
	if p.state != PeerOpen || p.conn == nil || p.conn.Err() != nil {
		return nil
	}
	return p.conn
}

// Watchdog returns the RFC 3539 state of the open connection, or
// WatchdogDown.
func (p *Peer) Watchdog() WatchdogState {
	if c := p.Conn(); c != nil {
		return c.Watchdog()
	}
	return WatchdogDown
}

// LastError is the error of the last failed attempt or loss.
func (p *Peer) LastError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

// host is the peer's Diameter identity: configured, else learned.
func (p *Peer) host() string {
	if p.cfg.Host != "" {
		return p.cfg.Host
	}
	if l := p.learned.Load(); l != nil {
		return *l
	}
	return ""
}

// WaitOpen waits until the peer is open or ctx ends.
func (p *Peer) WaitOpen(ctx context.Context) error {
	for {
		p.mu.Lock()
		st, ch := p.state, p.change
		p.mu.Unlock()
		switch st {
		case PeerOpen:
			return nil
		case PeerClosed:
			return ErrNodeClosed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			if err := p.LastError(); err != nil {
				return errors.Join(ctx.Err(), err)
			}
			return ctx.Err()
		}
	}
}

// Send sends req on this peer's connection and waits for the answer (no
// fail-over: use Node.Send for that).
func (p *Peer) Send(ctx context.Context, req *diam.Message) (*diam.Message, error) {
	c := p.Conn()
	if c == nil {
		return nil, ErrNoRoute
	}
	return c.Send(ctx, req)
}

// Close stops reconnecting, sends DPR with Disconnect-Cause
// DO_NOT_WANT_TO_TALK_TO_YOU on the open connection (the peer is removed
// from our configuration; RFC 6733 §5.4.3) and waits for the DPA (bounded
// by ctx). Node.Close says REBOOTING instead.
func (p *Peer) Close(ctx context.Context) error {
	c := p.Conn()
	p.cancel()
	var err error
	if c != nil {
		err = c.Disconnect(ctx, DisconnectDoNotWantToTalkToYou)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

// inbound decides what becomes of an inbound connection c from this
// peer's host after a valid CER (RFC 6733 §5.6, see
// Conn.serverHandshake). It registers c with the node when c is kept.
// lost reports a lost election (answer 4003); errRejected an R-Reject.
// The caller holds c.wmu, so nothing is written on c before its CEA.
func (p *Peer) inbound(c *Conn) (lost bool, err error) {
	n := p.node
	var stale *Conn // closed after p.mu is released (close runs hooks)
	defer func() {
		if stale != nil {
			stale.close(errors.New("peer reconnected with a new Origin-State-Id"))
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.state == PeerClosed:
		// The peer was removed: an ordinary inbound connection.
		if !n.register(c) {
			return false, ErrNodeClosed
		}
		return false, nil
	case p.openLocked() != nil:
		old := p.conn
		if c.peerStateID == 0 || old.peerStateID == 0 || c.peerStateID == old.peerStateID {
			// R-Open/I-Open + R-Conn-CER: R-Reject.
			return false, errRejected
		}
		// A new Origin-State-Id: the peer restarted and our connection
		// is stale (RFC 6733 §8.16).
		old.log.Info("peer restarted (new Origin-State-Id), replacing its connection",
			zap.Uint32("old_state_id", old.peerStateID), zap.Uint32("new_state_id", c.peerStateID))
		stale = old
	case p.state == PeerConnecting:
		if !n.electionWon(c.peerHost) {
			// Keep our outgoing connection; the peer, winner, closes it
			// or answers our CER on it (Wait-Returns, I-Rcv-CEA).
			c.log.Info("election lost: keeping our own connection")
			return true, errors.New("election lost")
		}
		// Win-Election: I-Disc (close our outgoing connection), R-Open.
		c.log.Info("election won: closing our own connection attempt")
		if p.abort != nil {
			p.abort()
		}
	}
	if !p.attachLocked(c) {
		return false, ErrNodeClosed
	}
	p.setStateLocked(PeerOpen, c, nil)
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return false, nil
}

// attachLocked makes c the connection of p (its caller holds p.mu): a
// reconnection starts in REOPEN (RFC 3539 §3.4.1: DOWN → connection up →
// REOPEN), the peer's Origin-Host is learnt when none was configured, and
// c is registered with the node. false when the node is closed.
func (p *Peer) attachLocked(c *Conn) bool {
	c.peer.Store(p)
	if p.everOpen {
		c.wdState.Store(int32(WatchdogReopen))
	}
	p.everOpen = true
	if p.cfg.Host == "" {
		p.learned.Store(&c.peerHost)
	}
	return p.node.register(c)
}

// adoptInboundLocked makes an open inbound connection from the peer's
// configured Origin-Host that no Peer holds the Peer's connection
// (R-Open), and returns it; nil when there is none. p.mu is held.
func (p *Peer) adoptInboundLocked() *Conn {
	if p.cfg.Host == "" {
		return nil
	}
	n := p.node
	var existing *Conn
	n.mu.Lock()
	for c := range n.conns {
		if c.inbound && c.peer.Load() == nil && !c.closing() && strings.EqualFold(c.peerHost, p.cfg.Host) {
			existing = c
			break
		}
	}
	n.mu.Unlock()
	if existing == nil || existing.Err() != nil || !existing.peer.CompareAndSwap(nil, p) {
		return nil
	}
	p.everOpen = true
	p.setStateLocked(PeerOpen, existing, nil)
	return existing
}

func (p *Peer) loop() {
	defer close(p.done)
	defer p.setState(PeerClosed, nil, nil)
	defer p.stopped.Store(true)
	n := p.node
	log := n.log.With(zap.String("peer_addr", p.cfg.Addr), zap.String("peer_host", p.cfg.Host))
	backoff := n.cfg.ReconnectMin
	var wait time.Duration
	for {
		select {
		case <-p.kick: // stale: an adoption shows in p.Conn()
		default:
		}
		if wait > 0 && p.Conn() == nil {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-p.kick:
			case <-p.ctx.Done():
			}
			t.Stop()
		}
		if p.ctx.Err() != nil {
			return
		}
		wait = 0
		c, err := p.connect()
		if err != nil {
			if p.ctx.Err() != nil {
				return
			}
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, n.cfg.ReconnectMax)
			var cea *CEAError
			if errors.As(err, &cea) && cea.Code == DiameterTooBusy {
				wait = n.cfg.BusyBackoff
			}
			p.mu.Lock()
			if a := p.openLocked(); a != nil {
				// The peer's connection won the election between our
				// attempt failing and this lock (inbound attached it):
				// it is the peer's connection now; marking the Peer down
				// would orphan it and dial again, which the peer refuses
				// as a second connection for as long as it lives.
				p.mu.Unlock()
				c, err = a, nil
			} else {
				p.notBefore = time.Now().Add(wait)
				p.setStateLocked(PeerDown, nil, err)
				p.mu.Unlock()
				log.Info("peer connect failed", zap.Error(err), zap.Duration("retry_in", wait))
				continue
			}
		}
		backoff = n.cfg.ReconnectMin
		log.Info("peer open", zap.String("host", c.PeerHost()), zap.Uint32s("apps", c.Apps()),
			zap.Bool("inbound", c.Inbound()), zap.Stringer("watchdog", c.Watchdog()))
		select {
		case <-c.done:
		case <-p.ctx.Done():
			// Peer or node closing: give Close the chance to send DPR
			// first.
			select {
			case <-c.done:
			case <-time.After(6 * time.Second):
				c.close(nil)
			}
			return
		}
		p.mu.Lock()
		if p.conn != c {
			// Replaced by the peer's new connection (see inbound).
			p.mu.Unlock()
			continue
		}
		wait = p.waitAfterLocked(c)
		err = c.Err()
		if cause, ok := c.receivedDPR(); ok {
			err = fmt.Errorf("peer sent DPR with Disconnect-Cause %s; reconnecting in %v", disconnectCause(cause), wait)
		}
		p.notBefore = time.Now().Add(wait)
		p.setStateLocked(PeerDown, nil, err)
		p.mu.Unlock()
		if err != nil {
			log.Info("peer lost", zap.Error(err))
		}
	}
}

// waitAfterLocked is how long to wait before reconnecting after c closed:
// a DPR from the peer (RFC 6733 §5.4.3) with REBOOTING means it restarts,
// so try again after ReconnectMin (with jitter); BUSY asks for fewer
// connections (BusyBackoff); DO_NOT_WANT_TO_TALK_TO_YOU means no messages
// are expected (DoNotWantToTalkBackoff, unless the peer connects to us
// first). Any other loss reconnects at once, unless the connection lived
// less than a second (a peer that closes every connection at once gets
// ReconnectMin between attempts, not a busy loop).
func (p *Peer) waitAfterLocked(c *Conn) time.Duration {
	cfg := p.node.cfg
	cause, ok := c.receivedDPR()
	switch {
	case !ok && time.Since(c.since) >= time.Second:
		return 0
	case !ok:
		return cfg.ReconnectMin/2 + rand.N(cfg.ReconnectMin/2+1)
	case cause == DisconnectBusy:
		return cfg.BusyBackoff
	case cause == DisconnectDoNotWantToTalkToYou:
		return cfg.DoNotWantToTalkBackoff
	}
	return cfg.ReconnectMin/2 + rand.N(cfg.ReconnectMin/2+1)
}

func disconnectCause(c uint32) string {
	switch c {
	case DisconnectRebooting:
		return "REBOOTING"
	case DisconnectBusy:
		return "BUSY"
	case DisconnectDoNotWantToTalkToYou:
		return "DO_NOT_WANT_TO_TALK_TO_YOU"
	}
	return fmt.Sprintf("%d", c)
}

// connect opens the peer's connection: the inbound one adopted meanwhile,
// or a new outgoing one (Wait-Conn-Ack, Wait-I-CEA). An inbound connection
// from the peer that wins the election while we connect cancels the
// attempt and is returned instead (RFC 6733 §5.6.4).
func (p *Peer) connect() (*Conn, error) {
	n := p.node
	actx, cancel := context.WithCancel(p.ctx)
	defer cancel()
	p.mu.Lock()
	if c := p.openLocked(); c != nil {
		p.mu.Unlock()
		return c, nil
	}
	// An inbound connection of the peer that no Peer took (its CER was
	// answered while Connect ran, between Connect's look and this Peer
	// joining the node's list): take it instead of dialling, which the
	// peer would refuse as a second connection (RFC 6733 §5.6.4).
	if c := p.adoptInboundLocked(); c != nil {
		p.mu.Unlock()
		return c, nil
	}
	p.abort = cancel
	p.setStateLocked(PeerConnecting, nil, nil)
	p.mu.Unlock()

	c, err := p.dial(actx)

	var drop *Conn // closed after p.mu is released (close runs hooks)
	var dropErr error
	defer func() {
		if drop != nil {
			drop.close(dropErr)
		}
	}()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.abort = nil
	if a := p.openLocked(); a != nil {
		if c != nil {
			drop, dropErr = c, errors.New("election won by the peer's own connection")
		}
		return a, nil
	}
	if err != nil {
		return nil, err
	}
	if actx.Err() != nil {
		drop, dropErr = c, actx.Err()
		return nil, actx.Err()
	}
	if !p.attachLocked(c) {
		drop, dropErr = c, ErrNodeClosed
		return nil, ErrNodeClosed
	}
	p.setStateLocked(PeerOpen, c, nil)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		c.run()
	}()
	return c, nil
}

func (p *Peer) dial(ctx context.Context) (*Conn, error) {
	n := p.node
	d := net.Dialer{Timeout: n.cfg.CETimeout}
	dctx, cancel := context.WithTimeout(ctx, n.cfg.CETimeout)
	defer cancel()
	nc, err := d.DialContext(dctx, p.cfg.Network, p.cfg.Addr)
	if err != nil {
		return nil, err
	}
	c := n.newConn(nc, false)
	stop := context.AfterFunc(ctx, func() { c.close(fmt.Errorf("connection attempt cancelled: %w", context.Cause(ctx))) })
	defer stop()
	if err := c.clientHandshake(p.cfg.Host); err != nil {
		c.close(err)
		return nil, err
	}
	if !stop() {
		return nil, fmt.Errorf("connection attempt cancelled: %w", context.Cause(ctx))
	}
	return c, nil
}

// peerFor returns the configured Peer whose Diameter identity is host
// (case-insensitive), preferring one that is not closed, or nil.
func (n *Node) peerFor(host string) *Peer {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.peerForLocked(host)
}

func (n *Node) peerForLocked(host string) *Peer {
	var closed *Peer
	for _, p := range n.peers {
		if h := p.host(); h != "" && strings.EqualFold(h, host) {
			if !p.stopped.Load() {
				return p
			}
			closed = p
		}
	}
	return closed
}

// admit registers inbound connection c after its CER unless a configured
// Peer has its host: then it returns that Peer, which decides (see
// Peer.inbound). Looking the Peer up and registering under one lock means
// a Connect cannot miss the connection (see Connect).
func (n *Node) admit(c *Conn) (*Peer, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if p := n.peerForLocked(c.peerHost); p != nil {
		return p, nil
	}
	if n.closed {
		return nil, ErrNodeClosed
	}
	n.conns[c] = struct{}{}
	c.opened.Store(true)
	return nil, nil
}
