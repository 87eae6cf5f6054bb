package diameter

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/rawsock"
)

// WatchdogState is the RFC 3539 §3.4.1 state of a connection, as seen by
// its watchdog.
type WatchdogState int32

// Watchdog states (RFC 3539 §3.4.1; INITIAL is the capabilities exchange).
const (
	// WatchdogOkay: the peer answers; requests are routed to it.
	WatchdogOkay WatchdogState = iota
	// WatchdogSuspect: a DWR went unanswered for Tw. Node.Send fails
	// requests over to another OKAY connection and routes new ones
	// elsewhere; any message from the peer makes the connection OKAY
	// again; one more Tw of silence closes it (DOWN).
	WatchdogSuspect
	// WatchdogReopen: a Peer's connection opened after an earlier one of
	// that Peer was lost. It becomes OKAY after three DWAs in a row (one
	// DWR per Tw); until then Node.Send uses it only when no OKAY
	// connection can take the request.
	WatchdogReopen
	// WatchdogDown: the connection is closed.
	WatchdogDown
)

func (s WatchdogState) String() string {
	switch s {
	case WatchdogOkay:
		return "okay"
	case WatchdogSuspect:
		return "suspect"
	case WatchdogReopen:
		return "reopen"
	case WatchdogDown:
		return "down"
	}
	return fmt.Sprintf("watchdog-%d", int32(s))
}

// reopenDWAs is how many DWAs in a row a REOPEN connection needs before it
// is OKAY again (RFC 3539 §3.4.1).
const reopenDWAs = 3

// Conn is one transport connection to a peer after (or during) the
// capabilities exchange. Both sides may send requests on it.
type Conn struct {
	node    *Node
	nc      net.Conn
	br      *bufio.Reader
	inbound bool
	log     *zap.Logger

	wmu sync.Mutex // serialises writes

	// Set once by the capabilities exchange, read-only afterwards.
	peerHost, peerRealm string
	peerStateID         uint32 // the peer's Origin-State-Id in its CER/CEA, 0 if absent
	apps                map[uint32]bool
	since               time.Time

	peer   atomic.Pointer[Peer] // the configured Peer this connection serves, if any
	opened atomic.Bool          // registered with the node (capabilities exchanged)

	pmu     sync.Mutex
	pending map[uint32]chan *diam.Message
	hbh     atomic.Uint32

	wdMu      sync.Mutex
	wdState   atomic.Int32  // WatchdogState
	wdSuspect chan struct{} // closed when the state becomes SUSPECT; new one on failback

	lastRecv atomic.Int64       // unix nanoseconds
	work     chan *diam.Message // requests for idle workers (unbuffered)
	workers  int                // workers started; only run touches it
	ctx      context.Context
	cancel   context.CancelFunc
	once     sync.Once
	err      error
	done     chan struct{}
	dpr      atomic.Bool  // a DPR was sent or received
	dprCause atomic.Int32 // Disconnect-Cause of a DPR received, -1 when none
	dwa      atomic.Int64 // successful watchdog exchanges we initiated
}

func (n *Node) newConn(nc net.Conn, inbound bool) *Conn {
	nc = rawsock.Stream(nc) // raw read(2)/write(2): pkg/rawsock
	ctx, cancel := context.WithCancel(n.ctx)
	c := &Conn{
		node: n, nc: nc, br: bufio.NewReaderSize(nc, 16<<10), inbound: inbound,
		log:       n.log.With(zap.Stringer("remote", nc.RemoteAddr())),
		pending:   map[uint32]chan *diam.Message{},
		wdSuspect: make(chan struct{}),
		work:      make(chan *diam.Message),
		ctx:       ctx, cancel: cancel, done: make(chan struct{}),
	}
	c.hbh.Store(uint32(time.Now().UnixNano()))
	c.lastRecv.Store(time.Now().UnixNano())
	c.dprCause.Store(-1)
	return c
}

// PeerHost is the peer's Origin-Host from its CER/CEA.
func (c *Conn) PeerHost() string { return c.peerHost }

// PeerRealm is the peer's Origin-Realm from its CER/CEA.
func (c *Conn) PeerRealm() string { return c.peerRealm }

// RemoteAddr is the peer's transport address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// LocalAddr is our transport address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// Inbound reports whether the peer connected to us.
func (c *Conn) Inbound() bool { return c.inbound }

// Supports reports whether app is common to both peers.
func (c *Conn) Supports(app uint32) bool { return c.apps[app] }

// Apps lists the common applications.
func (c *Conn) Apps() []uint32 {
	out := make([]uint32, 0, len(c.apps))
	for a := range c.apps {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// Peer returns the configured outbound Peer this connection serves (its
// own connection, or an inbound one it adopted after an election), or nil
// for an inbound connection from a peer we do not connect to.
func (c *Conn) Peer() *Peer { return c.peer.Load() }

// Watchdog returns the connection's RFC 3539 watchdog state.
func (c *Conn) Watchdog() WatchdogState { return WatchdogState(c.wdState.Load()) }

// Done is closed when the connection is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection closed (nil while open).
func (c *Conn) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// closing reports whether the connection takes no new requests: closed,
// or a DPR was sent or received on it (RFC 6733 §5.4).
func (c *Conn) closing() bool { return c.dpr.Load() || c.Err() != nil }

// priority is the routing priority of the Peer this connection serves (0
// for connections without one).
func (c *Conn) priority() int {
	if p := c.peer.Load(); p != nil {
		return p.cfg.Priority
	}
	return 0
}

// receivedDPR returns the Disconnect-Cause of a DPR the peer sent.
func (c *Conn) receivedDPR() (uint32, bool) {
	v := c.dprCause.Load()
	return uint32(v), v >= 0
}

func (c *Conn) close(err error) {
	c.once.Do(func() {
		c.err = err
		c.cancel()
		c.nc.Close()
		c.node.unregister(c)
		c.pmu.Lock()
		for id, ch := range c.pending {
			close(ch)
			delete(c.pending, id)
		}
		c.pmu.Unlock()
		c.wdMu.Lock()
		from := c.Watchdog()
		c.wdState.Store(int32(WatchdogDown))
		c.wdMu.Unlock()
		close(c.done)
		if c.opened.Load() {
			c.log.Info("peer connection closed", zap.Error(err))
			if f := c.node.cfg.OnWatchdog; f != nil {
				f(c, from, WatchdogDown)
			}
		}
		c.node.routesChanged()
	})
}

// setWatchdog moves the watchdog state from one of the states in from to
// to; false when the connection was in another state (or closed).
func (c *Conn) setWatchdog(to WatchdogState, from ...WatchdogState) bool {
	c.wdMu.Lock()
	old := c.Watchdog()
	if old == to || old == WatchdogDown || !slices.Contains(from, old) {
		c.wdMu.Unlock()
		return false
	}
	c.wdState.Store(int32(to))
	switch {
	case to == WatchdogSuspect:
		close(c.wdSuspect)
	case old == WatchdogSuspect:
		c.wdSuspect = make(chan struct{})
	}
	c.wdMu.Unlock()
	lvl := c.log.Info
	if to == WatchdogSuspect {
		lvl = c.log.Warn
	}
	lvl("watchdog", zap.Stringer("from", old), zap.Stringer("to", to))
	if f := c.node.cfg.OnWatchdog; f != nil {
		f(c, old, to)
	}
	c.node.routesChanged()
	return true
}

// failover returns a channel closed when the connection becomes SUSPECT
// (already closed if it is SUSPECT).
func (c *Conn) failover() <-chan struct{} {
	c.wdMu.Lock()
	defer c.wdMu.Unlock()
	return c.wdSuspect
}

func (c *Conn) write(m *diam.Message) error {
	b, err := m.Serialize()
	if err != nil {
		return fmt.Errorf("diameter: encode %d: %w", m.Header.CommandCode, err)
	}
	return c.writeBytes(b)
}

func (c *Conn) writeBytes(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(b)
}

// writeLocked writes b; the caller holds c.wmu.
func (c *Conn) writeLocked(b []byte) error {
	if f := sentObserver.Load(); f != nil {
		(*f)(c.node.cfg.OriginHost, b)
	}
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

var sentObserver atomic.Pointer[func(originHost string, wire []byte)]

// ObserveSent makes every Node in the process call f with its Origin-Host
// and the encoded bytes of each message it writes, until the returned
// function is called. It is for tests that check what we send on the wire
// (pkg/diameter/diamtest's conformance checks); production code never sets
// it. f runs on the writer's goroutine and must not block.
func ObserveSent(f func(originHost string, wire []byte)) (stop func()) {
	sentObserver.Store(&f)
	return func() { sentObserver.Store(nil) }
}

// readMessage reads the next frame; decoding errors are returned with the
// partially decoded message when its header is usable.
func (c *Conn) readMessage() (*diam.Message, []byte, error) {
	b, err := readFrame(c.br)
	if err != nil {
		return nil, nil, err
	}
	c.lastRecv.Store(time.Now().UnixNano())
	m, err := Decode(b, c.node.dict)
	return m, b, err
}

// hostIPs returns the Host-IP-Address values of our CER/CEA (RFC 6733
// §5.3.1, §5.3.2: one or more, each an address of this host): the
// configured HostIPs without unspecified addresses (0.0.0.0, ::), else the
// connection's local address; 127.0.0.1 only when neither is usable.
func (c *Conn) hostIPs() []net.IP {
	var out []net.IP
	for _, ip := range c.node.cfg.HostIPs {
		if ip != nil && !ip.IsUnspecified() {
			out = append(out, ip)
		}
	}
	if len(out) == 0 {
		if ta, ok := c.nc.LocalAddr().(*net.TCPAddr); ok && ta.IP != nil && !ta.IP.IsUnspecified() {
			out = append(out, ta.IP)
		}
	}
	if len(out) == 0 {
		out = append(out, net.IPv4(127, 0, 0, 1))
	}
	for i, ip := range out {
		if v4 := ip.To4(); v4 != nil {
			out[i] = v4
		}
	}
	return out
}

// capabilities adds our part of a CER, or of a CEA answering with code
// (RFC 6733 §5.3.1, §5.3.2), in the ABNF order: Origin-Host, Origin-Realm,
// Host-IP-Address (see hostIPs), Vendor-Id, Product-Name, Origin-State-Id,
// Error-Message (failed CEA only), then — unless the CEA reports a failure
// — Supported-Vendor-Id for each vendor of apps (10415 for Cx, Sh and Rx),
// one Vendor-Specific-Application-Id{Vendor-Id, Auth-Application-Id} per
// vendor-specific application (never with an Acct-Application-Id) and an
// Auth-Application-Id per other application; Firmware-Revision when
// configured. Inband-Security-Id is not sent: RFC 6733 §6.10 makes its use
// in CER/CEA NOT RECOMMENDED, and its absence means NO_INBAND_SECURITY
// (RFC 3588 §6.10 said the same), which is what we do.
func (c *Conn) capabilities(m *diam.Message, code uint32, apps []uint32, errMsg string) {
	n := c.node
	n.addOrigin(m)
	for _, ip := range c.hostIPs() {
		m.AddAVP(NewAVP(AVPHostIPAddress, datatype.Address(ip)))
	}
	m.AddAVP(NewAVP(AVPVendorID, datatype.Unsigned32(n.cfg.VendorID)))
	m.AddAVP(NewAVP(AVPProductName, datatype.UTF8String(n.cfg.ProductName)))
	m.AddAVP(NewAVP(AVPOriginStateID, datatype.Unsigned32(n.stateID)))
	if code != 0 && code != DiameterSuccess {
		if errMsg != "" {
			m.AddAVP(NewAVP(AVPErrorMessage, datatype.UTF8String(truncate(errMsg, 200))))
		}
	} else {
		vendors := map[uint32]bool{}
		for _, a := range apps {
			if v := App(a).Vendor(); v != 0 && !vendors[v] {
				vendors[v] = true
				m.AddAVP(NewAVP(AVPSupportedVendorID, datatype.Unsigned32(v)))
			}
		}
		for _, a := range apps {
			if App(a).Vendor() != 0 {
				m.AddAVP(VendorSpecificAppID(App(a)))
			} else {
				m.AddAVP(NewAVP(AVPAuthApplicationID, datatype.Unsigned32(a)))
			}
		}
	}
	if n.cfg.FirmwareRevision != 0 {
		m.AddAVP(NewAVP(AVPFirmwareRevision, datatype.Unsigned32(n.cfg.FirmwareRevision)))
	}
}

// offeredApps lists the application ids in a CER/CEA (Auth-/Acct-
// Application-Id at top level and inside Vendor-Specific-Application-Id).
func offeredApps(m *diam.Message) []uint32 {
	var out []uint32
	for _, path := range [][]AVPCode{
		{AVPAuthApplicationID}, {AVPAcctApplicationID},
		{AVPVendorSpecificApplicationID, AVPAuthApplicationID},
		{AVPVendorSpecificApplicationID, AVPAcctApplicationID},
	} {
		for _, a := range FindAll(m, path...) {
			if v, ok := AsUint32(a); ok {
				out = append(out, v)
			}
		}
	}
	return out
}

func (c *Conn) common(offered []uint32) map[uint32]bool {
	common := map[uint32]bool{}
	for _, a := range offered {
		if a == uint32(AppRelay) {
			for our := range c.node.apps {
				common[our] = true
			}
		} else if c.node.apps[a] {
			common[a] = true
		}
	}
	return common
}

// securityOK reports whether a CER/CEA leaves us a common inband security
// mechanism: no Inband-Security-Id (NO_INBAND_SECURITY by default, RFC
// 6733 §6.10), or one of them NO_INBAND_SECURITY (0). A peer offering only
// TLS (1) gets 5017 DIAMETER_NO_COMMON_SECURITY (RFC 6733 §5.3.1).
func securityOK(m *diam.Message) bool {
	isi := FindAll(m, AVPInbandSecurityID)
	if len(isi) == 0 {
		return true
	}
	for _, a := range isi {
		if v, ok := AsUint32(a); ok && v == 0 {
			return true
		}
	}
	return false
}

func (c *Conn) allowed(host string) bool {
	if c.node.cfg.AcceptAnyPeer {
		return true
	}
	for _, h := range c.node.cfg.AllowedPeers {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	// A peer we connect to is known (RFC 6733 §2.1 peer table).
	return c.node.peerFor(host) != nil
}

// errRejected marks an inbound CER refused without a CEA: R-Reject of RFC
// 6733 §5.6 (a connection with that peer is already open).
var errRejected = errors.New("diameter: connection rejected, peer already open")

// electionWon reports whether we win the election against a peer whose
// CER carries Origin-Host theirs (RFC 6733 §5.6.4): our Origin-Host must
// lexicographically succeed theirs, octet by octet, ASCII letters compared
// without case.
func (n *Node) electionWon(theirs string) bool {
	return strings.ToLower(n.cfg.OriginHost) > strings.ToLower(theirs)
}

// serverHandshake reads the CER and answers the CEA (RFC 6733 §5.3). When
// the CER comes from a host we also connect to (a configured Peer), the
// peer state machine of RFC 6733 §5.6 decides: if the Peer is open
// already, the new connection is rejected (R-Reject: closed without CEA),
// unless the CER carries another Origin-State-Id than the open connection
// did (the peer restarted: the old connection is closed and the new one
// kept); if the Peer is connecting (Wait-Conn-Ack or Wait-I-CEA), the
// election of §5.6.4 runs: the winner closes its own outgoing connection
// and answers this CER, the loser answers CEA 4003
// DIAMETER_ELECTION_LOST and closes this connection, keeping its own; if
// the Peer is down, the connection becomes the Peer's (R-Open).
func (c *Conn) serverHandshake() error {
	stop := context.AfterFunc(c.ctx, func() { c.nc.SetReadDeadline(time.Now()) })
	defer stop()
	c.nc.SetReadDeadline(time.Now().Add(c.node.cfg.CETimeout))
	m, _, err := c.readMessage()
	c.nc.SetReadDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("reading CER: %w", err)
	}
	if m.Header.CommandCode != CmdCapabilitiesExchange || m.Header.CommandFlags&diam.RequestFlag == 0 {
		return fmt.Errorf("first message is command %d, not a CER", m.Header.CommandCode)
	}
	host, realm := String(m, AVPOriginHost), String(m, AVPOriginRealm)
	answer := func(code uint32) *diam.Message {
		a := diam.NewMessage(CmdCapabilitiesExchange, 0, 0, m.Header.HopByHopID, m.Header.EndToEndID, c.node.dict)
		a.AddAVP(NewAVP(AVPResultCode, datatype.Unsigned32(code)))
		if code >= 3000 && code < 4000 {
			a.Header.CommandFlags |= diam.ErrorFlag
		}
		return a
	}
	reject := func(code uint32, msg string, failed *diam.AVP) error {
		a := answer(code)
		c.capabilities(a, code, nil, msg)
		if failed != nil {
			a.AddAVP(NewAVP(AVPFailedAVP, &diam.GroupedAVP{AVP: []*diam.AVP{failed}}))
		}
		c.write(a)
		return errors.New(msg)
	}
	switch {
	case host == "":
		return reject(DiameterMissingAVP, "CER without Origin-Host", NewAVP(AVPOriginHost, datatype.DiameterIdentity("")))
	case realm == "":
		return reject(DiameterMissingAVP, "CER without Origin-Realm", NewAVP(AVPOriginRealm, datatype.DiameterIdentity("")))
	case !c.allowed(host):
		return reject(DiameterUnknownPeer, fmt.Sprintf("unknown peer %q", host), nil)
	case !securityOK(m):
		return reject(DiameterNoCommonSecurity, fmt.Sprintf("peer %q offers no NO_INBAND_SECURITY", host), nil)
	}
	common := c.common(offeredApps(m))
	if len(common) == 0 {
		return reject(DiameterNoCommonApplication, fmt.Sprintf("peer %q offers no common application (%v)", host, offeredApps(m)), nil)
	}
	c.peerHost, c.peerRealm, c.apps, c.since = host, realm, common, time.Now()
	c.peerStateID, _ = Uint32(m, AVPOriginStateID)
	c.log = c.log.With(zap.String("peer", host))

	a := answer(DiameterSuccess)
	c.capabilities(a, DiameterSuccess, c.ourApps(), "")
	b, err := a.Serialize()
	if err != nil {
		return fmt.Errorf("encoding CEA: %w", err)
	}
	// Register before the CEA leaves so a request sent right after it can
	// already be routed back (and is read by this same goroutine next);
	// hold the write lock so that nothing routed here meanwhile is written
	// before the CEA.
	c.wmu.Lock()
	p, err := c.node.admit(c)
	lost := false
	if p != nil {
		lost, err = p.inbound(c)
	} else if err == nil {
		c.node.routesChanged()
	}
	if err == nil {
		err = c.writeLocked(b)
	}
	c.wmu.Unlock()
	if lost {
		return reject(DiameterElectionLost, fmt.Sprintf("election lost: %s keeps its own connection to %s", c.node.cfg.OriginHost, host), nil)
	}
	if err != nil {
		return err
	}
	c.log.Info("inbound peer open", zap.String("realm", realm), zap.Uint32s("apps", c.Apps()), zap.Bool("configured_peer", p != nil))
	return nil
}

func (c *Conn) ourApps() []uint32 {
	out := make([]uint32, 0, len(c.node.cfg.Apps))
	for _, a := range c.node.cfg.Apps {
		if !slices.Contains(out, uint32(a)) {
			out = append(out, uint32(a))
		}
	}
	return out
}

// CEAError is a CEA with a failure Result-Code.
type CEAError struct {
	Code    uint32
	Host    string
	Message string // Error-Message, if any
}

func (e *CEAError) Error() string {
	s := fmt.Sprintf("CEA Result-Code %d from %q", e.Code, e.Host)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// clientHandshake sends our CER and waits for a successful CEA. It does
// not register the connection (the Peer does, after the election).
func (c *Conn) clientHandshake(expectHost string) error {
	stop := context.AfterFunc(c.ctx, func() { c.nc.SetReadDeadline(time.Now()) })
	defer stop()
	cer := diam.NewMessage(CmdCapabilitiesExchange, diam.RequestFlag, 0, c.hbh.Add(1), c.node.e2e.Add(1), c.node.dict)
	c.capabilities(cer, 0, c.ourApps(), "")
	if err := c.write(cer); err != nil {
		return fmt.Errorf("sending CER: %w", err)
	}
	c.nc.SetReadDeadline(time.Now().Add(c.node.cfg.CETimeout))
	m, _, err := c.readMessage()
	c.nc.SetReadDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("reading CEA: %w", err)
	}
	if m.Header.CommandCode != CmdCapabilitiesExchange || m.Header.CommandFlags&diam.RequestFlag != 0 {
		return fmt.Errorf("expected CEA, got command %d", m.Header.CommandCode)
	}
	host, realm := String(m, AVPOriginHost), String(m, AVPOriginRealm)
	if code, _, _ := Result(m); code != DiameterSuccess {
		return &CEAError{Code: code, Host: host, Message: String(m, AVPErrorMessage)}
	}
	if expectHost != "" && !strings.EqualFold(host, expectHost) {
		return fmt.Errorf("peer identifies as %q, expected %q", host, expectHost)
	}
	if !securityOK(m) {
		return fmt.Errorf("peer %q offers no NO_INBAND_SECURITY", host)
	}
	common := c.common(offeredApps(m))
	if len(common) == 0 {
		return fmt.Errorf("peer %q shares no application", host)
	}
	c.peerHost, c.peerRealm, c.apps, c.since = host, realm, common, time.Now()
	c.peerStateID, _ = Uint32(m, AVPOriginStateID)
	c.log = c.log.With(zap.String("peer", host))
	return nil
}

// run is the connection's read loop (after the capabilities exchange); it
// returns when the connection closes.
func (c *Conn) run() {
	c.node.wg.Add(1)
	go func() {
		defer c.node.wg.Done()
		c.watchdog()
	}()
	for {
		m, raw, err := c.readMessage()
		if err != nil {
			if m == nil || m.Header == nil {
				if raw != nil && len(raw) >= diam.HeaderLength {
					// Valid frame, undecodable (e.g. unknown command).
					c.undecodable(raw, err)
					continue
				}
				if c.dpr.Load() {
					err = nil
				}
				c.close(err)
				return
			}
			if m.Header.CommandFlags&diam.RequestFlag != 0 {
				c.log.Info("undecodable request", zap.Uint32("cmd", m.Header.CommandCode), zap.Error(err))
				a := c.node.Answer(m, DiameterInvalidAVPValue)
				a.AddAVP(NewAVP(AVPErrorMessage, datatype.UTF8String(truncate(err.Error(), 200))))
				c.write(a)
				continue
			}
			c.log.Info("undecodable answer", zap.Uint32("cmd", m.Header.CommandCode), zap.Error(err))
		}
		// RFC 3539 §3.4.1, SUSPECT: any message from the peer fails back.
		if c.Watchdog() == WatchdogSuspect {
			c.setWatchdog(WatchdogOkay, WatchdogSuspect)
		}
		if m.Header.CommandFlags&diam.RequestFlag == 0 {
			c.deliver(m)
			continue
		}
		switch m.Header.CommandCode {
		case CmdDeviceWatchdog:
			a := c.node.Answer(m, DiameterSuccess)
			a.AddAVP(NewAVP(AVPOriginStateID, datatype.Unsigned32(c.node.stateID)))
			c.write(a)
		case CmdDisconnectPeer:
			cause, ok := Uint32(m, AVPDisconnectCause)
			if !ok {
				cause = DisconnectRebooting
			}
			c.dprCause.Store(int32(cause))
			c.dpr.Store(true)
			c.node.routesChanged()
			c.log.Info("DPR received", zap.Uint32("disconnect_cause", cause))
			c.write(c.node.Answer(m, DiameterSuccess))
			// The sender closes the transport after the DPA (RFC 6733
			// §5.4); close ourselves shortly after in case it does not.
			go func() {
				select {
				case <-c.done:
				case <-time.After(2 * time.Second):
					c.close(nil)
				}
			}()
		case CmdCapabilitiesExchange:
			// RFC 6733 §5.3: no CER after the exchange (no Capabilities
			// Update here).
			a := c.node.Answer(m, DiameterUnableToComply)
			c.write(a)
		default:
			if !c.dispatch(m) {
				return
			}
		}
	}
}

// dispatch hands request m to an idle worker of this connection, starts
// a new worker while fewer than MaxConcurrentRequests exist, and else
// waits for one to become idle (so the reader stops reading). false: the
// connection closed meanwhile. Workers live as long as the connection:
// a reused goroutine keeps the stack it grew in the handler's database
// and encoding calls, where a goroutine per request copied its stack two
// or three times (runtime.newstack and copystack took ≈ 8 % of the HSS's
// CPU in `make bench-register`).
func (c *Conn) dispatch(m *diam.Message) bool {
	select {
	case c.work <- m:
		return true
	default:
	}
	if c.workers < c.node.cfg.MaxConcurrentRequests {
		c.workers++
		go c.worker(m)
		return true
	}
	select {
	case c.work <- m:
		return true
	case <-c.done:
		return false
	}
}

// worker serves m, then each request dispatch gives it, until the
// connection closes.
func (c *Conn) worker(m *diam.Message) {
	for {
		c.serve(m)
		select {
		case m = <-c.work:
		case <-c.done:
			return
		}
	}
}

// undecodable answers a request whose body the dictionary cannot decode
// because the command or application is unknown.
func (c *Conn) undecodable(raw []byte, err error) {
	h, herr := diam.DecodeHeader(raw[:diam.HeaderLength])
	if herr != nil || h.CommandFlags&diam.RequestFlag == 0 {
		c.log.Info("dropping undecodable message", zap.Error(err))
		return
	}
	req := diam.NewMessage(h.CommandCode, h.CommandFlags, h.ApplicationID, h.HopByHopID, h.EndToEndID, c.node.dict)
	code := DiameterCommandUnsupported
	switch {
	case !c.node.apps[h.ApplicationID] && h.ApplicationID != 0:
		code = DiameterApplicationUnsupported
	case c.node.handler(h.ApplicationID, h.CommandCode) != nil:
		// Known command whose body did not decode (or made the decoder
		// panic): not "unsupported".
		code = DiameterUnableToComply
	}
	// Echo the Session-Id, which is the first AVP by the ABNF of every
	// session command.
	if len(raw) >= diam.HeaderLength+8 {
		if a, aerr := diam.DecodeAVP(raw[diam.HeaderLength:], 0, c.node.dict); aerr == nil && AVPSessionID.Is(a) {
			req.AddAVP(a)
		}
	}
	c.log.Info("unsupported request", zap.Uint32("cmd", h.CommandCode), zap.Uint32("app", h.ApplicationID))
	c.write(c.node.Answer(req, code))
}

// serve runs the handler of one request and writes its answer. The answer
// is remembered for duplicate detection (see Config.DuplicateWindow): a
// request with the T flag whose Origin-Host and End-to-End Identifier
// match a request answered recently, on any connection, gets that answer
// again (with its own Hop-by-Hop Identifier) without running the handler
// (RFC 6733 §5.5.4, §3); one matching a request still being handled waits
// for that answer.
func (c *Conn) serve(req *diam.Message) {
	n := c.node
	var ent *dupEntry
	if key, ok := dupKeyOf(req); ok {
		var orig *dupEntry
		ent, orig = n.dups.begin(key, req.Header.CommandFlags&diam.RetransmittedFlag != 0)
		if orig != nil {
			select {
			case <-orig.done:
			case <-c.done:
				return
			}
			if orig.answer != nil {
				b := slices.Clone(orig.answer)
				binary.BigEndian.PutUint32(b[12:16], req.Header.HopByHopID)
				c.log.Info("duplicate request answered from cache", zap.String("origin_host", key.host),
					zap.Uint32("end_to_end", key.e2e), zap.Uint32("cmd", req.Header.CommandCode))
				if err := c.writeBytes(b); err != nil {
					c.log.Info("writing answer", zap.Error(err))
				}
				return
			}
			ent, _ = n.dups.begin(key, false)
		}
	}
	var ans *diam.Message
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("handler panic", zap.Uint32("cmd", req.Header.CommandCode), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			ans = n.Answer(req, DiameterUnableToComply)
		}
		var b []byte
		if ans != nil {
			var err error
			if b, err = ans.Serialize(); err != nil {
				c.log.Warn("encoding answer", zap.Uint32("cmd", req.Header.CommandCode), zap.Error(err))
				b = nil
			}
		}
		n.dups.finish(ent, b)
		if b != nil {
			if err := c.writeBytes(b); err != nil {
				c.log.Info("writing answer", zap.Error(err))
			}
		}
	}()
	app := req.Header.ApplicationID
	if !c.apps[app] {
		ans = n.Answer(req, DiameterApplicationUnsupported)
		return
	}
	h := n.handler(app, req.Header.CommandCode)
	if h == nil {
		ans = n.Answer(req, DiameterCommandUnsupported)
		return
	}
	if err := n.validate(req); err != nil {
		ans = n.errorAnswer(req, err)
		return
	}
	a, err := h(c.ctx, c, req)
	switch {
	case err != nil:
		var miss *MissingAVPError
		var rerr *ResultError
		if !errors.As(err, &miss) && !errors.As(err, &rerr) {
			c.log.Warn("handler error", zap.Uint32("cmd", req.Header.CommandCode), zap.Error(err))
		}
		ans = n.errorAnswer(req, err)
	case a == nil:
		c.log.Warn("handler returned no answer", zap.Uint32("cmd", req.Header.CommandCode))
		ans = n.Answer(req, DiameterUnableToComply)
	default:
		n.completeAnswer(req, a)
		ans = a
	}
}

func (c *Conn) deliver(m *diam.Message) {
	c.pmu.Lock()
	ch, ok := c.pending[m.Header.HopByHopID]
	delete(c.pending, m.Header.HopByHopID)
	c.pmu.Unlock()
	if !ok {
		c.log.Info("answer without request", zap.Uint32("cmd", m.Header.CommandCode), zap.Uint32("hbh", m.Header.HopByHopID))
		return
	}
	ch <- m
}

// start writes req with a fresh Hop-by-Hop id and returns the channel its
// answer will arrive on (closed if the connection closes first).
func (c *Conn) start(req *diam.Message) (uint32, chan *diam.Message, error) {
	id := c.hbh.Add(1)
	req.Header.HopByHopID = id
	ch := make(chan *diam.Message, 1)
	c.pmu.Lock()
	select {
	case <-c.done:
		c.pmu.Unlock()
		return 0, nil, ErrConnClosed
	default:
	}
	c.pending[id] = ch
	c.pmu.Unlock()
	if err := c.write(req); err != nil {
		c.forget(id)
		c.close(err)
		return 0, nil, fmt.Errorf("%w: %v", ErrConnClosed, err)
	}
	return id, ch, nil
}

// forget stops waiting for the answer with Hop-by-Hop id (it will be
// logged as an answer without request if it comes).
func (c *Conn) forget(id uint32) {
	c.pmu.Lock()
	delete(c.pending, id)
	c.pmu.Unlock()
}

// Send writes req on this connection with a fresh Hop-by-Hop id and waits
// for the answer. There is no fail-over (Node.Send does that). Errors:
// ErrConnClosed, ctx.Err(), encoding errors.
func (c *Conn) Send(ctx context.Context, req *diam.Message) (*diam.Message, error) {
	id, ch, err := c.start(req)
	if err != nil {
		return nil, err
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
	}
}

// tw returns Tw for the next watchdog period: WatchdogInterval with a
// uniform jitter of ±2 s (RFC 3539 §3.4.1, SetWatchdog), at most ±Tw/4 so
// that short test intervals keep their meaning.
func (n *Node) tw() time.Duration {
	base := n.cfg.WatchdogInterval
	j := min(2*time.Second, base/4)
	if j <= 0 {
		return base
	}
	return base - j + rand.N(2*j+1)
}

func (c *Conn) newDWR() *diam.Message {
	dwr := diam.NewMessage(CmdDeviceWatchdog, diam.RequestFlag, 0, 0, c.node.e2e.Add(1), c.node.dict)
	c.node.addOrigin(dwr)
	dwr.AddAVP(NewAVP(AVPOriginStateID, datatype.Unsigned32(c.node.stateID)))
	return dwr
}

// errWatchdog closes a connection whose peer stopped answering.
var errWatchdog = errors.New("watchdog: no answer for 2 Tw after DWR (SUSPECT, then DOWN)")

// watchdog runs the RFC 3539 §3.4.1 algorithm for the connection:
//   - every message received resets the timer (Tw with jitter, see tw),
//     except in REOPEN;
//   - OKAY: on timeout, send DWR; on a timeout with that DWR still
//     unanswered, SUSPECT (fail-over, see Node.Send);
//   - SUSPECT: any message, DWA included, returns to OKAY (fail-back, see
//     run); on a timeout the connection is closed (DOWN) — so a silent
//     peer is SUSPECT 2 Tw and DOWN 3 Tw after its last message;
//   - REOPEN (a Peer's connection after a lost one, see Peer): a DWR at
//     once and then on each timeout when none is pending; the third DWA
//     makes it OKAY (fail-back); a timeout with a DWR pending sets the
//     count to -1, a second one closes the connection.
//
// Messages other than DWAs received in REOPEN are processed (RFC 3539
// throws them away): our peer may use the connection as OKAY already, and
// we answer its requests. Nothing is sent once a DPR was sent or received.
func (c *Conn) watchdog() {
	var (
		pending bool
		dwa     chan *diam.Message
		numDWA  int
		tw      = c.node.tw()
		armed   = time.Now()
	)
	timer := time.NewTimer(tw)
	defer timer.Stop()
	setWatchdog := func() {
		tw, armed = c.node.tw(), time.Now()
		timer.Reset(tw)
	}
	sendDWR := func() bool {
		_, ch, err := c.start(c.newDWR())
		if err != nil {
			return false
		}
		pending, dwa = true, ch
		return true
	}
	if c.Watchdog() == WatchdogReopen && !sendDWR() {
		return
	}
	for {
		select {
		case <-c.done:
			return
		case a, ok := <-dwa:
			dwa = nil
			if !ok {
				return // closed
			}
			pending = false
			if code, _, _ := Result(a); code != DiameterSuccess {
				c.log.Warn("watchdog: DWA result", zap.Uint32("code", code))
			}
			c.dwa.Add(1)
			switch c.Watchdog() {
			case WatchdogOkay:
				setWatchdog()
			case WatchdogSuspect:
				c.setWatchdog(WatchdogOkay, WatchdogSuspect)
				setWatchdog()
			case WatchdogReopen:
				if numDWA++; numDWA >= reopenDWAs {
					c.setWatchdog(WatchdogOkay, WatchdogReopen)
				}
			}
		case <-timer.C:
			st := c.Watchdog()
			if c.dpr.Load() {
				setWatchdog()
				continue
			}
			if st != WatchdogReopen {
				if last := time.Unix(0, c.lastRecv.Load()); last.After(armed) {
					// A message arrived after SetWatchdog: it reset Tw.
					armed = last
					timer.Reset(time.Until(last.Add(tw)))
					continue
				}
			}
			switch st {
			case WatchdogOkay:
				if pending {
					c.setWatchdog(WatchdogSuspect, WatchdogOkay)
				} else if !sendDWR() {
					return
				}
			case WatchdogSuspect:
				c.log.Warn("watchdog: peer silent, closing", zap.Duration("tw", c.node.cfg.WatchdogInterval))
				c.close(errWatchdog)
				return
			case WatchdogReopen:
				if pending {
					if numDWA < 0 {
						c.log.Warn("watchdog: no DWA in REOPEN, closing")
						c.close(errWatchdog)
						return
					}
					numDWA = -1
				} else if !sendDWR() {
					return
				}
			default:
				return
			}
			setWatchdog()
		}
	}
}

// Disconnect sends DPR with cause, waits (bounded by ctx, at most 5 s) for
// the DPA and closes the connection (RFC 6733 §5.4: the sender of the DPR
// closes the transport once the DPA is received). No new requests are
// routed to the connection meanwhile.
func (c *Conn) Disconnect(ctx context.Context, cause uint32) error {
	if c.Err() != nil {
		return nil
	}
	c.dpr.Store(true)
	c.node.routesChanged()
	dpr := diam.NewMessage(CmdDisconnectPeer, diam.RequestFlag, 0, 0, c.node.e2e.Add(1), c.node.dict)
	c.node.addOrigin(dpr)
	dpr.AddAVP(NewAVP(AVPDisconnectCause, datatype.Enumerated(cause)))
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := c.Send(ctx, dpr)
	c.close(nil)
	return err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
