package diameter

import (
	"context"

	"errors"
	"github.com/fiorix/go-diameter/v4/diam"
	"math/rand/v2"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"
)

// PeerConfig is an outbound peer.
type PeerConfig struct {
	Addr    string // host:port
	Network string // "tcp" (default), "tcp4" or "tcp6"
	Host    string // expected Origin-Host in its CEA; empty accepts any
	Realm   string // its realm (informational, status)
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
// CER/CEA, serve, and after a loss reconnect with exponential back-off
// (ReconnectMin doubling up to ReconnectMax, with jitter).
type Peer struct {
	node *Node
	cfg  PeerConfig

	mu      sync.Mutex
	state   PeerState
	conn    *Conn
	lastErr error
	change  chan struct{} // closed and replaced on every state change

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
	p := &Peer{node: n, cfg: pc, change: make(chan struct{}), ctx: pctx, cancel: cancel, done: make(chan struct{})}
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		cancel()
		return nil, ErrNodeClosed
	}
	n.peers = append(n.peers, p)
	n.mu.Unlock()
	stop := context.AfterFunc(ctx, p.cancel)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer stop()
		p.loop()
	}()
	return p, nil
}

func (p *Peer) setState(s PeerState, c *Conn, err error) {
	p.mu.Lock()
	p.state, p.conn = s, c
	if err != nil {
		p.lastErr = err
	}
	close(p.change)
	p.change = make(chan struct{})
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
	if p.state != PeerOpen {
		return nil
	}
	return p.conn
}

// LastError is the error of the last failed attempt or loss.
func (p *Peer) LastError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
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

// Send sends req on this peer's connection and waits for the answer.
func (p *Peer) Send(ctx context.Context, req *diam.Message) (*diam.Message, error) {
	c := p.Conn()
	if c == nil {
		return nil, ErrNoRoute
	}
	return c.Send(ctx, req)
}

// Close stops reconnecting, sends DPR on the open connection and waits for
// the DPA (bounded by ctx).
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

func (p *Peer) loop() {
	defer close(p.done)
	defer p.setState(PeerClosed, nil, nil)
	n := p.node
	log := n.log.With(zap.String("peer_addr", p.cfg.Addr), zap.String("peer_host", p.cfg.Host))
	backoff := n.cfg.ReconnectMin
	for p.ctx.Err() == nil {
		p.setState(PeerConnecting, nil, nil)
		c, err := p.dial()
		if err != nil {
			p.setState(PeerDown, nil, err)
			log.Info("peer connect failed", zap.Error(err), zap.Duration("retry_in", backoff))
			wait := backoff/2 + rand.N(backoff/2+1)
			select {
			case <-time.After(wait):
			case <-p.ctx.Done():
				return
			}
			backoff = min(2*backoff, n.cfg.ReconnectMax)
			continue
		}
		backoff = n.cfg.ReconnectMin
		log.Info("peer open", zap.String("host", c.PeerHost()), zap.Uint32s("apps", c.Apps()))
		p.setState(PeerOpen, c, nil)
		stop := context.AfterFunc(p.ctx, func() {
			// Peer closed: give Close the chance to send DPR first.
			select {
			case <-c.done:
			case <-time.After(6 * time.Second):
				c.close(nil)
			}
		})
		c.run()
		stop()
		p.setState(PeerDown, nil, c.Err())
		if c.Err() != nil {
			log.Info("peer lost", zap.Error(c.Err()))
		}
	}
}

func (p *Peer) dial() (*Conn, error) {
	n := p.node
	d := net.Dialer{Timeout: n.cfg.CETimeout}
	ctx, cancel := context.WithTimeout(p.ctx, n.cfg.CETimeout)
	defer cancel()
	nc, err := d.DialContext(ctx, p.cfg.Network, p.cfg.Addr)
	if err != nil {
		return nil, err
	}
	c := n.newConn(nc, false)
	if err := c.clientHandshake(p.cfg.Host); err != nil {
		c.close(err)
		return nil, err
	}
	return c, nil
}
