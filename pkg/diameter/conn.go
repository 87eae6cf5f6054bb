package diameter

import (
	"bufio"
	"context"
	"errors"
	"fmt"
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
)

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
	apps                map[uint32]bool
	since               time.Time

	pmu     sync.Mutex
	pending map[uint32]chan *diam.Message
	hbh     atomic.Uint32

	lastRecv atomic.Int64       // unix nanoseconds
	work     chan *diam.Message // requests for idle workers (unbuffered)
	workers  int                // workers started; only run touches it
	ctx      context.Context
	cancel   context.CancelFunc
	once     sync.Once
	err      error
	done     chan struct{}
	dpr      atomic.Bool  // a DPR was sent or received
	dwa      atomic.Int64 // successful watchdog exchanges we initiated
}

func (n *Node) newConn(nc net.Conn, inbound bool) *Conn {
	ctx, cancel := context.WithCancel(n.ctx)
	c := &Conn{
		node: n, nc: nc, br: bufio.NewReaderSize(nc, 16<<10), inbound: inbound,
		log:     n.log.With(zap.Stringer("remote", nc.RemoteAddr())),
		pending: map[uint32]chan *diam.Message{},
		work:    make(chan *diam.Message),
		ctx:     ctx, cancel: cancel, done: make(chan struct{}),
	}
	c.hbh.Store(uint32(time.Now().UnixNano()))
	c.lastRecv.Store(time.Now().UnixNano())
	return c
}

// PeerHost is the peer's Origin-Host from its CER/CEA.
func (c *Conn) PeerHost() string { return c.peerHost }

// PeerRealm is the peer's Origin-Realm from its CER/CEA.
func (c *Conn) PeerRealm() string { return c.peerRealm }

// RemoteAddr is the peer's transport address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

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
		close(c.done)
		if c.peerHost != "" {
			c.log.Info("peer connection closed", zap.String("peer", c.peerHost), zap.Error(err))
		}
	})
}

func (c *Conn) write(m *diam.Message) error {
	b, err := m.Serialize()
	if err != nil {
		return fmt.Errorf("diameter: encode %d: %w", m.Header.CommandCode, err)
	}
	if f := sentObserver.Load(); f != nil {
		(*f)(c.node.cfg.OriginHost, b)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	_, err = c.nc.Write(b)
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

// capabilities builds our CER (req nil) or CEA.
func (c *Conn) capabilities(m *diam.Message, code uint32, apps []uint32) {
	n := c.node
	n.addOrigin(m)
	ips := n.cfg.HostIPs
	if len(ips) == 0 {
		if ta, ok := c.nc.LocalAddr().(*net.TCPAddr); ok {
			ips = []net.IP{ta.IP}
		} else {
			ips = []net.IP{net.IPv4(127, 0, 0, 1)}
		}
	}
	for _, ip := range ips {
		if v4 := ip.To4(); v4 != nil {
			ip = v4
		}
		m.AddAVP(NewAVP(AVPHostIPAddress, datatype.Address(ip)))
	}
	m.AddAVP(NewAVP(AVPVendorID, datatype.Unsigned32(n.cfg.VendorID)))
	m.AddAVP(NewAVP(AVPProductName, datatype.UTF8String(n.cfg.ProductName)))
	m.AddAVP(NewAVP(AVPOriginStateID, datatype.Unsigned32(n.stateID)))
	if code != 0 && code != DiameterSuccess {
		return
	}
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

func (c *Conn) allowed(host string) bool {
	if c.node.cfg.AcceptAnyPeer {
		return true
	}
	for _, h := range c.node.cfg.AllowedPeers {
		if strings.EqualFold(h, host) {
			return true
		}
	}
	return false
}

// serverHandshake reads the CER and answers the CEA (RFC 6733 §5.3).
func (c *Conn) serverHandshake() error {
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
	if host == "" || realm == "" {
		a := answer(DiameterMissingAVP)
		c.capabilities(a, DiameterMissingAVP, nil)
		c.write(a)
		return errors.New("CER without Origin-Host or Origin-Realm")
	}
	if !c.allowed(host) {
		a := answer(DiameterUnknownPeer)
		c.capabilities(a, DiameterUnknownPeer, nil)
		c.write(a)
		return fmt.Errorf("unknown peer %q", host)
	}
	common := c.common(offeredApps(m))
	if len(common) == 0 {
		a := answer(DiameterNoCommonApplication)
		c.capabilities(a, DiameterNoCommonApplication, nil)
		c.write(a)
		return fmt.Errorf("peer %q offers no common application (%v)", host, offeredApps(m))
	}
	c.peerHost, c.peerRealm, c.apps, c.since = host, realm, common, time.Now()
	a := answer(DiameterSuccess)
	c.capabilities(a, DiameterSuccess, c.ourApps())
	// Register before the CEA leaves so a request sent right after it can
	// already be routed back (and is read by this same goroutine next).
	if !c.node.register(c) {
		return ErrNodeClosed
	}
	if err := c.write(a); err != nil {
		return err
	}
	c.log = c.log.With(zap.String("peer", host))
	c.log.Info("inbound peer open", zap.String("realm", realm), zap.Uint32s("apps", c.Apps()))
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

// clientHandshake sends our CER and waits for a successful CEA.
func (c *Conn) clientHandshake(expectHost string) error {
	cer := diam.NewMessage(CmdCapabilitiesExchange, diam.RequestFlag, 0, c.hbh.Add(1), c.node.e2e.Add(1), c.node.dict)
	c.capabilities(cer, 0, c.ourApps())
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
	if code, _, _ := Result(m); code != DiameterSuccess {
		return fmt.Errorf("CEA Result-Code %d from %q", code, String(m, AVPOriginHost))
	}
	host, realm := String(m, AVPOriginHost), String(m, AVPOriginRealm)
	if expectHost != "" && !strings.EqualFold(host, expectHost) {
		return fmt.Errorf("peer identifies as %q, expected %q", host, expectHost)
	}
	common := c.common(offeredApps(m))
	if len(common) == 0 {
		return fmt.Errorf("peer %q shares no application", host)
	}
	c.peerHost, c.peerRealm, c.apps, c.since = host, realm, common, time.Now()
	c.log = c.log.With(zap.String("peer", host))
	if !c.node.register(c) {
		return ErrNodeClosed
	}
	return nil
}

// run is the connection's read loop (after the capabilities exchange); it
// returns when the connection closes.
func (c *Conn) run() {
	go c.watchdog()
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
			c.dpr.Store(true)
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

// serve runs the handler of one request and writes its answer.
func (c *Conn) serve(req *diam.Message) {
	n := c.node
	var ans *diam.Message
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("handler panic", zap.Uint32("cmd", req.Header.CommandCode), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			ans = n.Answer(req, DiameterUnableToComply)
		}
		if ans != nil {
			if err := c.write(ans); err != nil {
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

// Send writes req on this connection with a fresh Hop-by-Hop id and waits
// for the answer. Errors: ErrConnClosed, ctx.Err(), encoding errors.
func (c *Conn) Send(ctx context.Context, req *diam.Message) (*diam.Message, error) {
	id := c.hbh.Add(1)
	req.Header.HopByHopID = id
	ch := make(chan *diam.Message, 1)
	c.pmu.Lock()
	select {
	case <-c.done:
		c.pmu.Unlock()
		return nil, ErrConnClosed
	default:
	}
	c.pending[id] = ch
	c.pmu.Unlock()
	forget := func() {
		c.pmu.Lock()
		delete(c.pending, id)
		c.pmu.Unlock()
	}
	if err := c.write(req); err != nil {
		forget()
		c.close(err)
		return nil, fmt.Errorf("%w: %v", ErrConnClosed, err)
	}
	select {
	case a, ok := <-ch:
		if !ok {
			return nil, ErrConnClosed
		}
		return a, nil
	case <-ctx.Done():
		forget()
		return nil, ctx.Err()
	}
}

// watchdog sends DWR when nothing was received for Tw and closes the
// connection when the DWA does not come within another Tw (RFC 3539 §3.4).
func (c *Conn) watchdog() {
	tw := c.node.cfg.WatchdogInterval
	t := time.NewTicker(tw / 4)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, c.lastRecv.Load())) < tw || c.dpr.Load() {
			continue
		}
		dwr := diam.NewMessage(CmdDeviceWatchdog, diam.RequestFlag, 0, 0, c.node.e2e.Add(1), c.node.dict)
		c.node.addOrigin(dwr)
		dwr.AddAVP(NewAVP(AVPOriginStateID, datatype.Unsigned32(c.node.stateID)))
		ctx, cancel := context.WithTimeout(c.ctx, tw)
		a, err := c.Send(ctx, dwr)
		cancel()
		if err != nil {
			if c.Err() == nil && !c.dpr.Load() && c.ctx.Err() == nil {
				c.log.Warn("watchdog: no DWA, closing", zap.Error(err))
				c.close(fmt.Errorf("watchdog: %w", err))
			}
			return
		}
		if code, _, _ := Result(a); code != DiameterSuccess {
			c.log.Warn("watchdog: DWA result", zap.Uint32("code", code))
		} else {
			c.dwa.Add(1)
		}
	}
}

// Disconnect sends DPR with cause, waits (bounded by ctx) for the DPA and
// closes the connection (RFC 6733 §5.4).
func (c *Conn) Disconnect(ctx context.Context, cause uint32) error {
	if c.Err() != nil {
		return nil
	}
	c.dpr.Store(true)
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
