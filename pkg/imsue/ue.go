// Package imsue is an IMS UE for tests and for users' labs: IMS AKA
// (Milenage from K and OP or OPc, TS 33.102, TS 35.206), sec-agree with
// its own IPsec ESP transport SAs (RFC 3329, TS 33.203 §7) installed
// through XFRM netlink (pkg/ipsec) in the network namespace it runs in,
// registration, re-registration and de-registration (TS 24.229 §5.1.1),
// SQN resynchronisation with AUTS, the reg event package (RFC 3680),
// MESSAGE, and calls (INVITE with SDP, 180, 200, ACK, BYE), over UDP or
// TCP. Every step it takes is reported as an Event (one JSON line each
// in cmd/imsue); failures come back as errors that say what to check.
//
// A UE owns its sockets: the protected client port (port-c, from which it
// sends requests and receives their responses, unprotected before the SAs
// exist and protected after) and the protected server port (port-s, on
// which it receives requests, UDP and TCP). Its SIP stack is sipgo (one
// user agent per UE, so that many UEs in one process never share a
// socket or a connection pool).
//
// The UE must not share a network namespace with the P-CSCF when IPsec
// is used: both ends install the same four ESP states, which a kernel
// holds once (TS 33.203 §7.1). New checks it before it installs kernel
// SAs (ErrSameNetns: the P-CSCF's address is local here, or the P-CSCF's
// side of an SA set for it is): with IPsecOn that is an error, with
// IPsecAuto the UE registers without SAs and says why in an "ipsec_off"
// event. Run it in a namespace of its own (cmd/imsue --netns).
package imsue

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/aka"
	"github.com/imscore/imscore/pkg/ipsec"
)

// IPsec modes of Config.IPsec.
const (
	IPsecOn   = "on"   // offer ipsec-3gpp and require the P-CSCF to agree
	IPsecAuto = "auto" // offer it; register without SAs when the P-CSCF answers no Security-Server
	IPsecOff  = "off"  // offer nothing: SIP digest AKA without SAs
)

// Config describes one UE. IMPI, IMPU, K, one of OP or OPc, and PCSCF are
// required.
type Config struct {
	IMPI string // private identity, user@realm
	IMPU string // public identity, sip:user@domain
	// Domain is the home domain (Request-URI of REGISTER and digest
	// realm); default: the part of IMPI after '@'.
	Domain string
	K      []byte // 16 bytes
	OP     []byte // 16 bytes, or
	OPc    []byte // 16 bytes
	// AMF is the subscriber's AMF (2 bytes, optional: the USIM reads AMF
	// from AUTN, and this is only checked for its length).
	AMF []byte
	// SQN is the USIM's SQN_MS at start (the highest SQN it accepted): a
	// challenge with a SQN not above it is answered with AUTS.
	SQN uint64

	// PCSCF is the P-CSCF's unprotected SIP address, ip:port.
	PCSCF string
	// LocalIP is the UE's address (default: the one the kernel picks to
	// reach PCSCF).
	LocalIP string
	// Transport is "udp" (default) or "tcp". Over UDP a request larger
	// than 1,300 bytes goes over TCP (RFC 3261 §18.1.1), through the SA
	// when there is one.
	Transport string
	// PortC and PortS are the UE's protected client and server ports (0:
	// chosen by the kernel). Unprotected requests leave from PortC too,
	// as phones do.
	PortC, PortS int
	// IPsec is IPsecOn, IPsecAuto (default) or IPsecOff.
	IPsec string
	// Algs and EAlgs are the integrity and encryption algorithms offered
	// in Security-Client (default hmac-sha-1-96 and hmac-md5-96; null and
	// aes-cbc); one sec-mechanism is offered per pair.
	Algs, EAlgs []string
	// ReuseSPIs makes a new SA set (re-authentication) use the SPIs of
	// the one it replaces, as some phones do; the UE then removes its old
	// set first (its kernel holds one SA per destination and SPI).
	ReuseSPIs bool
	// Backend installs the UE's SAs (nil: the XFRM kernel backend of the
	// current network namespace, shared by the UEs of the process).
	Backend ipsec.Backend
	// Expires asked for in REGISTER (default 600000 s as VoLTE phones).
	Expires int
	// InstanceID is the +sip.instance of the Contact (default: an IMEI
	// URN derived from the IMPI).
	InstanceID string
	// UserAgent is the User-Agent header (default "imsue").
	UserAgent string
	// Timeout bounds one transaction (default 32 s, Timer F).
	Timeout time.Duration
	// OnEvent receives every step (nil: dropped). It is called from the
	// UE's goroutines and must not block for long.
	OnEvent func(Event)
	// Log receives sipgo's and the UE's diagnostics (nil: warnings and
	// above are dropped too).
	Log *slog.Logger
}

// Event is one step of a UE, for machine-readable output (one JSON line
// each in cmd/imsue).
type Event struct {
	Time   time.Time      `json:"time"`
	UE     string         `json:"ue"`
	Step   string         `json:"step"`
	Status int            `json:"status,omitempty"`
	Reason string         `json:"reason,omitempty"`
	Ms     float64        `json:"ms,omitempty"`
	Error  string         `json:"error,omitempty"`
	Detail map[string]any `json:"detail,omitempty"`
}

// Errors the UE reports; they wrap more detail.
var (
	ErrConfig       = errors.New("imsue: bad configuration")
	ErrAuth         = errors.New("imsue: authentication failed")
	ErrSecAgree     = errors.New("imsue: sec-agree failed")
	ErrRejected     = errors.New("imsue: request rejected")
	ErrNotReg       = errors.New("imsue: not registered")
	ErrTransport    = errors.New("imsue: transport failure")
	ErrUnprotected  = errors.New("imsue: message outside the SA")
	ErrNoSuchDialog = errors.New("imsue: no such call")
)

// UE is one IMS UE. Its methods are safe for concurrent use, except that
// registration procedures of one UE run one at a time.
type UE struct {
	cfg    Config
	domain string
	user   string // user part of the IMPU, for the Contact
	ip     net.IP
	pcscf  *net.UDPAddr
	usim   *aka.UE
	tr     string
	be     ipsec.Backend
	// noIPsec: why --ipsec auto fell back to no SAs (an ipsec_off event).
	noIPsec string

	ua     *sipgo.UserAgent
	client *sipgo.Client
	srv    *sipgo.Server

	udpC, udpS net.PacketConn
	tcpS       net.Listener
	dialed     *connListener // TCP connections the UE opened, handed to sipgo
	portC      int
	portS      int

	regMu  sync.Mutex // one registration procedure at a time
	dialMu sync.Mutex // one TCP dial at a time

	mu        sync.Mutex
	callID    string // of the registration
	cseq      uint32
	fromTag   string
	sa        *ipsec.SecAssoc // in use
	pend      *ipsec.SecAssoc // installed, its REGISTER not yet answered
	server    string          // Security-Server of the SA in use (for Security-Verify)
	spiC      uint32
	spiS      uint32
	lastNonce string
	lastResp  string
	regState  regState
	deregging bool // a de-REGISTER of the UE's own is out
	calls     map[string]*Call
	sub       *regSubscription
	messages  chan Message
	incoming  chan *Call
	answer    AnswerPolicy
	unprot    []string // messages seen outside the SA (faults of the peer)
	closed    bool
	bg        sync.WaitGroup
	ctx       context.Context
	cancel    context.CancelFunc
}

// regState is what the UE knows of its registration.
type regState struct {
	registered   bool
	expires      time.Time
	serviceRoute []string
	associated   []string
}

// New validates cfg, opens the UE's sockets and starts its SIP stack.
// Close releases them (and removes its SAs).
func New(cfg Config) (*UE, error) {
	u := &UE{cfg: cfg, calls: map[string]*Call{}, messages: make(chan Message, 64), incoming: make(chan *Call, 16)}
	if err := u.init(); err != nil {
		return nil, err
	}
	if u.noIPsec != "" {
		u.emit(Event{Step: "ipsec_off", Reason: u.noIPsec})
	}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	if err := u.open(); err != nil {
		u.closeSockets()
		return nil, err
	}
	return u, nil
}

func (u *UE) init() error {
	c := &u.cfg
	if c.IMPI == "" || c.IMPU == "" {
		return fmt.Errorf("%w: IMPI and IMPU are required", ErrConfig)
	}
	at := strings.LastIndexByte(c.IMPI, '@')
	if c.Domain == "" {
		if at < 0 {
			return fmt.Errorf("%w: IMPI %q has no realm; give the domain", ErrConfig, c.IMPI)
		}
		c.Domain = c.IMPI[at+1:]
	}
	u.domain = c.Domain
	var impu sip.Uri
	if err := sip.ParseUri(c.IMPU, &impu); err != nil || impu.Scheme != "sip" || impu.User == "" {
		return fmt.Errorf("%w: IMPU %q must be a sip: URI with a user part", ErrConfig, c.IMPU)
	}
	u.user = impu.User
	amf := c.AMF
	if amf == nil {
		amf = []byte{0x80, 0x00}
	}
	opc, err := aka.Credentials{K: c.K, OP: c.OP, OPc: c.OPc, AMF: amf}.ResolveOPc()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if u.usim, err = aka.NewUE(c.K, opc, c.SQN); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if u.pcscf, err = net.ResolveUDPAddr("udp", c.PCSCF); err != nil || u.pcscf.IP == nil || u.pcscf.Port == 0 {
		return fmt.Errorf("%w: P-CSCF address %q must be ip:port", ErrConfig, c.PCSCF)
	}
	switch c.Transport = strings.ToLower(c.Transport); c.Transport {
	case "":
		c.Transport = "udp"
	case "udp", "tcp":
	default:
		return fmt.Errorf("%w: transport %q (udp or tcp)", ErrConfig, c.Transport)
	}
	u.tr = c.Transport
	switch c.IPsec = strings.ToLower(c.IPsec); c.IPsec {
	case "":
		c.IPsec = IPsecAuto
	case IPsecOn, IPsecAuto, IPsecOff:
	default:
		return fmt.Errorf("%w: ipsec %q (on, auto, off)", ErrConfig, c.IPsec)
	}
	if c.Algs, c.EAlgs, err = ipsec.Algorithms(c.Algs, c.EAlgs); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if c.Expires <= 0 {
		c.Expires = 600000
	}
	if c.UserAgent == "" {
		c.UserAgent = "imsue"
	}
	if c.Timeout <= 0 {
		c.Timeout = 32 * time.Second
	}
	if c.InstanceID == "" {
		c.InstanceID = "<urn:gsma:imei:" + imeiFor(c.IMPI) + ">"
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.LocalIP != "" {
		if u.ip = net.ParseIP(c.LocalIP); u.ip == nil {
			return fmt.Errorf("%w: local IP %q", ErrConfig, c.LocalIP)
		}
	} else {
		ip, err := routeSource(u.pcscf)
		if err != nil {
			return fmt.Errorf("%w: no local address towards the P-CSCF %s: %v", ErrConfig, c.PCSCF, err)
		}
		u.ip = ip
	}
	if v4 := u.ip.To4(); v4 != nil {
		u.ip = v4
	}
	if c.IPsec != IPsecOff {
		u.be = c.Backend
		if u.be == nil {
			// The UE's SAs need a network namespace of their own (see
			// ErrSameNetns); docs/softphones.md shows --netns.
			if err := checkOwnNetns(u.pcscf.IP); err != nil {
				if c.IPsec == IPsecOn {
					return fmt.Errorf("%w: %w; run the UE in a network namespace of its own (--netns NAME, docs/softphones.md) or with --ipsec off", ErrSecAgree, err)
				}
				c.IPsec = IPsecOff
				u.noIPsec = err.Error() + "; registering without SAs (--netns NAME for IPsec)"
				c.Log.Warn("imsue: IPsec off", "reason", u.noIPsec)
			} else if u.be, err = sharedKernel(); err != nil {
				if c.IPsec == IPsecOn {
					return fmt.Errorf("%w: %v", ErrSecAgree, err)
				}
				c.IPsec = IPsecOff
				c.Log.Warn("imsue: no IPsec in this network namespace, offering none", "error", err)
			}
		}
	}
	u.fromTag = sip.GenerateTagN(10)
	u.callID = sip.GenerateTagN(20) + "@" + u.ip.String()
	return nil
}

// imeiFor makes a stable IMEI-shaped instance id from the IMPI.
func imeiFor(impi string) string {
	var h uint64 = 1469598103934665603
	for i := 0; i < len(impi); i++ {
		h = (h ^ uint64(impi[i])) * 1099511628211
	}
	d := fmt.Sprintf("%014d", h%100000000000000)
	return d[:8] + "-" + d[8:14] + "-0"
}

// open binds port-c (UDP), port-s (UDP and TCP) and starts sipgo on them.
func (u *UE) open() error {
	var err error
	for attempt := 0; attempt < 20; attempt++ {
		if err = u.bind(); err == nil {
			break
		}
		u.closeSockets()
		if u.cfg.PortC != 0 && u.cfg.PortS != 0 {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("%w: bind ports: %v", ErrConfig, err)
	}
	ua, err := sipgo.NewUA(
		sipgo.WithUserAgent(u.cfg.UserAgent),
		sipgo.WithUserAgentHostname(u.ip.String()),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(u.cfg.Log)),
		sipgo.WithUserAgentTransportLayerOptions(
			sip.WithTransportLayerLogger(u.cfg.Log),
			sip.WithTransportLayerReadFilter(u.readFilter),
		),
	)
	if err != nil {
		return err
	}
	u.ua = ua
	if u.client, err = sipgo.NewClient(ua, sipgo.WithClientHostname(u.ip.String())); err != nil {
		return err
	}
	if u.srv, err = sipgo.NewServer(ua); err != nil {
		return err
	}
	u.serverHandlers()
	tp := ua.TransportLayer()
	u.dialed = newConnListener(u.tcpAddr(u.portC))
	// The sockets are bound here, not read by the goroutines: Close
	// clears the fields while the goroutines may still be starting.
	udpC, udpS, tcpS, dialed := u.udpC, u.udpS, u.tcpS, u.dialed
	for _, f := range []func() error{
		func() error { return tp.ServeUDP(udpC) },
		func() error { return tp.ServeUDP(udpS) },
		func() error { return tp.ServeTCP(tcpS) },
		func() error { return tp.ServeTCP(dialed) },
	} {
		u.bg.Add(1)
		go func() { defer u.bg.Done(); _ = f() }()
	}
	// sipgo adds a UDP socket to its pool right before its first read;
	// wait until a request can leave from port-c.
	deadline := time.Now().Add(2 * time.Second)
	for {
		if c, _ := tp.GetConnection("udp", u.udpAddr(u.portC).String()); c != nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: sipgo did not start on port-c", ErrTransport)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return nil
}

// bind opens the three sockets on the configured or kernel-chosen ports;
// port-s is the same number for UDP and TCP.
func (u *UE) bind() error {
	lc := net.ListenConfig{Control: reuseAddr}
	ctx := context.Background()
	c, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(u.ip.String(), strconv.Itoa(u.cfg.PortC)))
	if err != nil {
		return err
	}
	u.udpC = c
	u.portC = c.LocalAddr().(*net.UDPAddr).Port
	s, err := lc.ListenPacket(ctx, "udp", net.JoinHostPort(u.ip.String(), strconv.Itoa(u.cfg.PortS)))
	if err != nil {
		return err
	}
	u.udpS = s
	u.portS = s.LocalAddr().(*net.UDPAddr).Port
	if u.portS == u.portC {
		return errors.New("port-c and port-s are equal")
	}
	l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(u.ip.String(), strconv.Itoa(u.portS)))
	if err != nil {
		return err
	}
	u.tcpS = l
	return nil
}

func (u *UE) closeSockets() {
	for _, c := range []interface{ Close() error }{u.udpC, u.udpS, u.tcpS} {
		if c != nil && !isNilCloser(c) {
			_ = c.Close()
		}
	}
	u.udpC, u.udpS, u.tcpS = nil, nil, nil
}

func isNilCloser(c interface{ Close() error }) bool {
	switch v := c.(type) {
	case net.PacketConn:
		return v == nil
	case net.Listener:
		return v == nil
	}
	return false
}

func (u *UE) udpAddr(port int) *net.UDPAddr { return &net.UDPAddr{IP: u.ip, Port: port} }
func (u *UE) tcpAddr(port int) *net.TCPAddr { return &net.TCPAddr{IP: u.ip, Port: port} }

// IMPU returns the UE's public identity.
func (u *UE) IMPU() string { return u.cfg.IMPU }

// IP returns the UE's address.
func (u *UE) IP() net.IP { return u.ip }

// Ports returns the UE's protected client and server ports.
func (u *UE) Ports() (portC, portS int) { return u.portC, u.portS }

// SA returns a copy of the SA set in use (nil without IPsec).
func (u *UE) SA() *ipsec.SecAssoc {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.sa == nil {
		return nil
	}
	sa := *u.sa
	return &sa
}

// Registered reports whether the last registration succeeded and has
// not expired or been ended.
func (u *UE) Registered() bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.regState.registered && time.Now().Before(u.regState.expires)
}

// Unprotected lists the messages from the P-CSCF that reached the UE
// outside the SA they belonged on (a fault of the P-CSCF), oldest first.
func (u *UE) Unprotected() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.unprot...)
}

// Close ends the UE's calls and subscription without signalling, removes
// its SAs and closes its sockets.
func (u *UE) Close() error {
	u.mu.Lock()
	if u.closed {
		u.mu.Unlock()
		return nil
	}
	u.closed = true
	sa := u.sa
	u.sa = nil
	u.mu.Unlock()
	u.cancel()
	var err error
	if sa != nil && u.be != nil {
		err = u.be.Remove(*sa)
	}
	u.dialed.Close()
	if u.ua != nil {
		_ = u.ua.Close()
	}
	u.closeSockets()
	u.bg.Wait()
	return err
}

// emit reports one step.
func (u *UE) emit(e Event) {
	if u.cfg.OnEvent == nil {
		return
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.UE = u.cfg.IMPU
	u.cfg.OnEvent(e)
}

// step emits a step that took since start, with the response's status.
func (u *UE) step(name string, start time.Time, res *sip.Response, err error, detail map[string]any) {
	e := Event{Step: name, Ms: float64(time.Since(start).Microseconds()) / 1000, Detail: detail}
	if res != nil {
		e.Status, e.Reason = res.StatusCode, res.Reason
	}
	if err != nil {
		e.Error = err.Error()
	}
	u.emit(e)
}

// hexSPI formats an SPI for events.
func hexSPI(v uint32) string {
	return "0x" + hex.EncodeToString([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
