// Package sipproxy is the SIP transport and RFC 3261 §16 stateful proxy core
// shared by the P-CSCF, I-CSCF and S-CSCF. It is built on
// github.com/emiago/sipgo (transport and transaction layers).
//
// A Proxy listens on UDP and TCP on one host:port, plus any number of extra
// sockets added with Listen (e.g. IPsec protected ports). Every new request
// is handed, after RFC 3261 §16.3/§16.4 pre-processing (validation, loose
// route pop; the popped own Route stays readable with Txn.RemovedRoute, e.g.
// for a Path marker), to the user's Handler together with a *Txn. The
// handler then
//
//   - answers as a UAS:        t.Respond(200, "OK", hdrs...)
//   - proxies statefully:      res, err := t.Forward(ctx, opts, targets...)
//     (inspect / edit res, try another target, then t.Relay(res))
//   - or returns; a request left without a final response is answered with
//     the last Forward result, or 500 if there was none.
//
// The Proxy also acts as a UAC with Do (NOTIFY, third-party REGISTER, ...).
//
// Headers other than Via, Max-Forwards, Route and Record-Route are forwarded
// as sipgo parsed them; sipgo keeps unknown headers as raw text and
// re-serialises Contact parameters unchanged (tested with a VoLTE REGISTER).
package sipproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/rawsock"
)

// Defaults for Config.
const (
	DefaultTimerC           = 180 * time.Second // RFC 3261 §16.6 step 11: > 3 minutes recommended; 3 min here
	DefaultNonInviteTimeout = 32 * time.Second  // 64*T1, Timer F
	DefaultMaxForwards      = 70
)

// Handler processes one new server transaction. It runs on its own goroutine
// and may block; the server transaction stays open until it returns.
// ctx is cancelled when the transaction ends, the upstream CANCELs it, or the
// proxy closes.
type Handler func(ctx context.Context, t *Txn)

// Config configures a Proxy. The zero value of each field has a working
// default except Handler, which is required.
type Config struct {
	// ListenAddr is "host:port" opened for both UDP and TCP. Port 0 picks one
	// free port used for both. Default "127.0.0.1:5060".
	ListenAddr string
	// Host is the host (IP or FQDN) this proxy puts in Via sent-by and
	// Record-Route. Default: the host of ListenAddr.
	Host string
	// Aliases are extra host names or IPs that mean "this proxy" when
	// matching Route headers (RFC 3261 §16.4), e.g. "pcscf.ims.example.org".
	Aliases []string
	// Advertised are "host:port" addresses under which clients reach this
	// proxy through a NAT or a published container port (e.g. a P-CSCF
	// behind docker's port publishing): a Route naming one is this proxy's
	// own (RFC 3261 §16.4) whatever the listening port, a response whose top
	// Via names one is ours, and ForwardOptions.SentBy may write one in Via.
	Advertised []string
	// Handler is called for each new request. Required.
	Handler Handler
	// Logger receives structured logs; default zap.NewNop().
	Logger *zap.Logger
	// TimerC bounds an INVITE branch without a final response (RFC 3261
	// §16.6 step 11); restarted by each provisional. Default DefaultTimerC.
	TimerC time.Duration
	// NonInviteTimeout bounds a non-INVITE branch (the proxy's Timer F);
	// never longer than sipgo's own Timer F (64*T1). Default 32 s.
	NonInviteTimeout time.Duration
	// UDPBufferBytes is the SO_RCVBUF and SO_SNDBUF asked for on every UDP
	// socket (Linux caps it at net.core.rmem_max / wmem_max and doubles
	// it). A burst of datagrams larger than the receive buffer is dropped
	// by the kernel (Udp RcvbufErrors in /proc/net/snmp) and each drop
	// costs a 500 ms retransmission; the kernel default (rmem_default,
	// often 208 KiB) holds about 200 REGISTERs. Default
	// DefaultUDPBufferBytes; negative keeps the kernel default.
	UDPBufferBytes int
	// HideWarnings removes the Warning headers (RFC 3261 §20.43) from
	// every response the proxy sends upstream, its own and relayed ones,
	// so that internal host names and Diameter result codes do not reach
	// UEs (the functions log the details).
	HideWarnings bool
	// Limits bound the size and header count of what the listening sockets
	// accept (wire.go). Zero fields take the defaults.
	Limits Limits
	// URISchemes are the Request-URI schemes accepted; others get 416.
	// Default DefaultURISchemes.
	URISchemes []string
	// ProxyRequire are the option tags this proxy understands in
	// Proxy-Require; a request with another gets 420 (RFC 3261 §16.3 step
	// 5). Default DefaultProxyRequire.
	ProxyRequire []string
	// Registerer receives sip_bad_messages_total and sip_responses_total;
	// nil registers nothing.
	Registerer prometheus.Registerer
	// BadLogInterval is how often at most a source's bad messages are
	// logged (each is counted). Default DefaultBadLogInterval.
	BadLogInterval time.Duration
}

// DefaultUDPBufferBytes is the default Config.UDPBufferBytes (4 MiB).
const DefaultUDPBufferBytes = 4 << 20

// Proxy is a SIP stateful proxy core, UAS and UAC on one set of sockets.
// Create with New, then Start; stop with Close.
type Proxy struct {
	cfg        Config
	log        *zap.Logger
	advertised map[string]bool // Config.Advertised, lower-case "host:port"

	ua  *sipgo.UserAgent
	tp  *sip.TransportLayer
	txl *sip.TransactionLayer

	limits       Limits
	uriSchemes   []string
	proxyRequire map[string]bool
	bad          *badMessages
	backlog      *backlogRefusals       // backlog.go
	slTag        string                 // backlog.go: To tag prefix of stateless answers
	completed    completedCache         // retain.go
	answers      *prometheus.CounterVec // sip_responses_total{method,code}
	workers      *workerPool            // workers.go

	mu        sync.Mutex
	listeners []*listener
	closed    bool
	baseCtx   context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // serve goroutines and handlers
	selfHosts map[string]bool
}

type listener struct {
	network string // "udp" or "tcp"
	addr    *net.TCPAddr
	closer  io.Closer
}

// ErrClosed is returned by operations on a closed Proxy.
var ErrClosed = errors.New("sipproxy: proxy closed")

// New builds a Proxy from cfg without opening sockets.
func New(cfg Config) (*Proxy, error) {
	if cfg.Handler == nil {
		return nil, errors.New("sipproxy: Config.Handler is required")
	}
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:5060"
	}
	host, _, err := net.SplitHostPort(cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("sipproxy: bad ListenAddr %q: %w", cfg.ListenAddr, err)
	}
	if cfg.Host == "" {
		cfg.Host = host
	}
	if cfg.Host == "" || cfg.Host == "0.0.0.0" || cfg.Host == "::" {
		return nil, fmt.Errorf("sipproxy: Config.Host is required when listening on %q", cfg.ListenAddr)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.TimerC <= 0 {
		cfg.TimerC = DefaultTimerC
	}
	if cfg.NonInviteTimeout <= 0 {
		cfg.NonInviteTimeout = DefaultNonInviteTimeout
	}
	if cfg.UDPBufferBytes == 0 {
		cfg.UDPBufferBytes = DefaultUDPBufferBytes
	}
	if cfg.BadLogInterval <= 0 {
		cfg.BadLogInterval = DefaultBadLogInterval
	}
	p := &Proxy{cfg: cfg, log: cfg.Logger, selfHosts: map[string]bool{}, advertised: map[string]bool{}, limits: cfg.Limits.withDefaults(),
		uriSchemes: cfg.URISchemes, proxyRequire: map[string]bool{}}
	if p.uriSchemes == nil {
		p.uriSchemes = DefaultURISchemes
	}
	if cfg.ProxyRequire == nil {
		cfg.ProxyRequire = DefaultProxyRequire
	}
	for _, t := range cfg.ProxyRequire {
		p.proxyRequire[strings.ToLower(t)] = true
	}
	p.bad = newBadMessages(cfg.Logger, cfg.BadLogInterval, cfg.Registerer)
	p.backlog = newBacklogRefusals(cfg.Logger, cfg.BadLogInterval, cfg.Registerer)
	p.slTag = statelessTagPrefix()
	p.answers = counterVec(cfg.Registerer, cfg.Logger, prometheus.CounterOpts{
		Name: "sip_responses_total",
		Help: "Final SIP responses this function sent upstream for requests it received (its own and relayed ones), by request method and status code.",
	}, "method", "code")
	p.selfHosts[strings.ToLower(cfg.Host)] = true
	for _, a := range cfg.Aliases {
		p.selfHosts[strings.ToLower(a)] = true
	}
	for _, a := range cfg.Advertised {
		h, port, err := net.SplitHostPort(a)
		if err != nil || h == "" {
			return nil, fmt.Errorf("sipproxy: bad advertised address %q: want host:port", a)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("sipproxy: bad port in advertised address %q", a)
		}
		p.advertised[strings.ToLower(net.JoinHostPort(h, port))] = true
	}
	slogger := slog.New(newZapSlogHandler(cfg.Logger.Named("sipgo")))
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgentParser(newParser()),
		sipgo.WithUserAgentTransactionLayerOptions(
			sip.WithTransactionLayerLogger(slogger),
			sip.WithTransactionLayerUnhandledResponseHandler(p.handleStrayResponse),
			// dispatch never blocks (workers.go): requests are matched
			// and handed over on the read goroutine, no goroutine each.
			sip.WithTransactionLayerRequestsOnReadLoop(),
		),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(slogger),
			sip.WithTransportLayerTransports(sip.TransportsConfig{
				TCP: &sip.TransportTCP{DialerCreate: reuseAddrDialer},
				UDP: &sip.TransportUDP{SourceIdle: udpSourceIdle},
			}),
		),
	)
	if err != nil {
		return nil, fmt.Errorf("sipproxy: %w", err)
	}
	p.ua = ua
	p.tp = ua.TransportLayer()
	p.txl = ua.TransactionLayer()
	p.workers = newWorkerPool()
	p.txl.OnRequest(p.dispatch)
	p.baseCtx, p.cancel = context.WithCancel(context.Background())
	p.completed.lifetime = completedLifetime
	go p.completed.expireLoop(p.baseCtx)
	return p, nil
}

// udpSourceIdle is how long a UDP listener remembers a source address it
// has stopped hearing from (between this and twice this; our sipgo fork's
// TransportUDP.SourceIdle). sipgo keeps, per address, which listener to
// send a response from; upstream kept every address until the listener
// closed, growing without bound under NAT and mobile address churn (ADR
// 0004, ninth session). Nothing here needs an address that long: server
// transactions keep their socket, requests leave from a chosen listener
// (buildOutgoing), and a statelessly relayed response goes to a hop that
// sent its request within Timer C.
var udpSourceIdle = 30 * time.Minute // a var for tests; read by New

// Start opens UDP and TCP on Config.ListenAddr (same port) and serves until
// Close or until ctx is done. It returns once the sockets are bound.
func (p *Proxy) Start(ctx context.Context) error {
	host, portStr, _ := net.SplitHostPort(p.cfg.ListenAddr)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("sipproxy: bad port in %q", p.cfg.ListenAddr)
	}
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		udpAddr, err := p.Listen("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		_, err = p.Listen("tcp", udpAddr.String())
		if err == nil {
			lastErr = nil
			break
		}
		lastErr = err
		p.closeListener(udpAddr.String(), "udp")
		if port != 0 {
			break
		}
	}
	if lastErr != nil {
		return lastErr
	}
	go func() {
		select {
		case <-ctx.Done():
			_ = p.Close()
		case <-p.baseCtx.Done():
		}
	}()
	return nil
}

// Listen adds a listening socket ("udp" or "tcp", addr "ip:port", port 0
// allowed) served by the same proxy, and returns the bound address. Use it
// for extra sockets such as IPsec protected ports; choose it for outgoing
// requests with Target.Laddr.
func (p *Proxy) Listen(network, addr string) (*net.TCPAddr, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	p.mu.Unlock()
	network = strings.ToLower(network)
	var l *listener
	switch network {
	case "udp":
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return nil, fmt.Errorf("sipproxy: resolve %s: %w", addr, err)
		}
		c, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, fmt.Errorf("sipproxy: listen udp %s: %w", addr, err)
		}
		if n := p.cfg.UDPBufferBytes; n > 0 {
			// Best effort: the kernel silently caps the size; an error
			// here only means the default buffer stays.
			if err := c.SetReadBuffer(n); err != nil {
				p.log.Warn("cannot set UDP receive buffer", zap.Int("bytes", n), zap.Error(err))
			}
			if err := c.SetWriteBuffer(n); err != nil {
				p.log.Warn("cannot set UDP send buffer", zap.Int("bytes", n), zap.Error(err))
			}
		}
		la := c.LocalAddr().(*net.UDPAddr)
		l = &listener{network: "udp", addr: &net.TCPAddr{IP: la.IP, Port: la.Port, Zone: la.Zone}, closer: c}
		raw, err := rawsock.UDP(c)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("sipproxy: udp %s: %w", addr, err)
		}
		if n := p.cfg.UDPBufferBytes; n > 0 {
			if _, limit, err := raw.Backlog(); err == nil && limit < n {
				// Linux grants twice what is asked unless net.core.rmem_max
				// caps it; the overload refusals (Limits.Backlog) start at
				// a share of what was granted.
				p.log.Warn("UDP receive buffer smaller than asked: the kernel caps it at twice net.core.rmem_max; raise that sysctl, or new requests are refused 503 on short bursts (--sip-backlog is a share of this buffer)",
					zap.String("addr", la.String()), zap.Int("asked_bytes", n), zap.Int("granted_bytes", limit))
			}
		}
		rc := &guardedPacketConn{PacketConn: raw, queue: raw, p: p, ready: make(chan struct{})}
		p.serve(l, func() error { return p.tp.ServeUDP(rc) })
		// sipgo registers the socket in its pool just before the first
		// read; only then can Target.Laddr select it.
		<-rc.ready
	case "tcp":
		ta, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("sipproxy: resolve %s: %w", addr, err)
		}
		c, err := net.ListenTCP("tcp", ta)
		if err != nil {
			return nil, fmt.Errorf("sipproxy: listen tcp %s: %w", addr, err)
		}
		l = &listener{network: "tcp", addr: c.Addr().(*net.TCPAddr), closer: c}
		rl := &guardedListener{Listener: c, p: p, ready: make(chan struct{})}
		p.serve(l, func() error { return p.tp.ServeTCP(rl) })
		<-rl.ready
	default:
		return nil, fmt.Errorf("sipproxy: unsupported network %q (udp, tcp)", network)
	}
	p.log.Info("sip listening", zap.String("network", network), zap.Stringer("addr", l.addr))
	return l.addr, nil
}

func (p *Proxy) serve(l *listener, fn func() error) {
	p.mu.Lock()
	p.listeners = append(p.listeners, l)
	p.selfHosts[strings.ToLower(l.addr.IP.String())] = true
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		if err := fn(); err != nil && !errors.Is(err, net.ErrClosed) {
			p.log.Warn("sip listener stopped", zap.String("network", l.network), zap.Stringer("addr", l.addr), zap.Error(err))
		}
	}()
}

// CloseConnectionsFrom closes the TCP connection dialled from laddr
// ("ip:port", a Target.Laddr) and forgets it, so that the next request
// from that local address dials its own: sipgo finds an outgoing TCP
// connection by local address alone, so a connection left from an
// earlier peer of that address would carry the next peer's requests.
func (p *Proxy) CloseConnectionsFrom(laddr string) {
	pool := p.tp.Pool("tcp")
	if pool == nil {
		return
	}
	if c := pool.Get(laddr); c != nil {
		pool.Delete(laddr)
		_ = c.Close()
	}
}

// Unlisten closes a socket added with Listen ("udp" or "tcp", its bound
// "ip:port").
func (p *Proxy) Unlisten(network, addr string) { p.closeListener(addr, strings.ToLower(network)) }

func (p *Proxy) closeListener(addr, network string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, l := range p.listeners {
		if l.network == network && l.addr.String() == addr {
			_ = l.closer.Close()
			p.listeners = append(p.listeners[:i], p.listeners[i+1:]...)
			return
		}
	}
}

// Addr returns the primary bound address for "udp" or "tcp" (nil before
// Start).
func (p *Proxy) Addr(network string) *net.TCPAddr {
	p.mu.Lock()
	defer p.mu.Unlock()
	network = strings.ToLower(network)
	for _, l := range p.listeners {
		if l.network == network {
			return l.addr
		}
	}
	return nil
}

// Host returns the advertised host (Config.Host).
func (p *Proxy) Host() string { return p.cfg.Host }

// URI returns this proxy's SIP URI for transport ("udp"/"tcp"): host, primary
// listen port, ;transport= and ;lr. It is what Record-Route carries.
func (p *Proxy) URI(transport string) sip.Uri {
	tp := strings.ToLower(transport)
	if tp == "" {
		tp = "udp"
	}
	u := sip.Uri{Scheme: "sip", Host: p.cfg.Host, UriParams: sip.NewParams()}
	if a := p.Addr(tp); a != nil {
		u.Port = a.Port
	}
	u.UriParams.Add("transport", tp)
	u.UriParams.Add("lr", "")
	return u
}

// IsSelf reports whether u addresses this proxy: its host is Config.Host, an
// alias, or a listening IP, and its port (5060 if absent) is a listening
// port; or its host and port are one of Config.Advertised. Used for the
// RFC 3261 §16.4 Route check.
func (p *Proxy) IsSelf(u sip.Uri) bool {
	port := u.Port
	if port == 0 {
		port = 5060
		if u.Scheme == "sips" {
			port = 5061
		}
	}
	host := strings.ToLower(strings.Trim(u.Host, "[]"))
	if p.advertised[net.JoinHostPort(host, strconv.Itoa(port))] {
		return true // whatever the listening port
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.selfHosts[host] {
		return false
	}
	for _, l := range p.listeners {
		if l.addr.Port == port {
			return true
		}
	}
	return false
}

// Close stops listeners, terminates transactions, waits for serve
// goroutines and running handlers, and releases sockets. Safe to call twice.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	ls := p.listeners
	p.listeners = nil
	p.mu.Unlock()
	p.cancel()
	var errs error
	for _, l := range ls {
		if err := l.closer.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = errors.Join(errs, err)
		}
	}
	if err := p.ua.Close(); err != nil {
		errs = errors.Join(errs, err)
	}
	p.wg.Wait()
	return errs
}

// listenPort returns the port of the first listener of network.
func (p *Proxy) listenPort(network string) int {
	if a := p.Addr(network); a != nil {
		return a.Port
	}
	return 0
}

// MaxUDPMessageSize is what sipgo may send in one UDP datagram. sipgo
// refuses messages larger than sip.UDPMTUSize-200 (1300 bytes by default,
// RFC 3261 §18.1.1) with ErrUDPMTUCongestion instead of switching to TCP; a
// VoLTE REGISTER with Security-Client, Path and P-Access-Network-Info is
// often larger. Importing this package therefore raises sipgo's global limit
// (at init, before any goroutine runs) so such requests can be relayed over
// UDP like other IMS cores do, relying on IP fragmentation.
const MaxUDPMessageSize = 65000

func init() {
	if sip.UDPMTUSize < MaxUDPMessageSize+200 {
		sip.UDPMTUSize = MaxUDPMessageSize + 200
	}
}

// reuseAddrDialer dials TCP with SO_REUSEADDR, so that a connection from a
// chosen local port (Target.Laddr, e.g. a P-CSCF's protected client port)
// can be opened again while the previous one is in TIME_WAIT.
func reuseAddrDialer(laddr net.Addr) net.Dialer {
	return net.Dialer{Timeout: time.Minute, LocalAddr: laddr, Control: ReuseAddr}
}

// ReuseAddr is a net.Dialer / net.ListenConfig Control that sets
// SO_REUSEADDR on the socket.
func ReuseAddr(_, _ string, c syscall.RawConn) error {
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	}); err != nil {
		return err
	}
	return serr
}

// newParser is the proxies' parser: headerParsers, and of Via and Route
// only the first field parsed (sipgo fork item 13, WithFirstOnly): a
// proxy reads the top Via (the transaction's branch)
// and the top Route, and relays the others; on a call's fifth hop a
// response carries five Vias. The next one is parsed in place when the
// top one is removed and it is read; code reading them all uses
// TypedHeaders.
func newParser() *sip.Parser {
	return sip.NewParser(sip.WithHeadersParsers(headerParsers()), sip.WithFirstOnly("Via", "Route"))
}

// headerParsers are sipgo's header parsers but Record-Route's: a proxy
// relays Record-Route fields without reading them, and parsing them into
// URIs was the largest part of sipgo's parsing of a call's messages at
// the P-CSCF (2.7 % of its CPU at 300 calls/s; docs/performance.md). They
// stay generic header fields, their values canonical after the validating
// layer (wire.go); Message.RecordRoute() still parses the first on
// demand, and Record-Route fields this proxy inserts are typed. Code
// reading them all takes each field's Value (imsheader.ParseNameAddrList).
func headerParsers() sip.HeadersParser {
	m := sip.HeadersParser{}
	for name, hp := range sip.DefaultHeadersParser() {
		if name != "record-route" {
			m[name] = hp
		}
	}
	return m
}
