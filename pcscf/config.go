package pcscf

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pcscf/rx"
	"github.com/imscore/imscore/pkg/admission"
	"github.com/imscore/imscore/pkg/ipsec"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// Defaults of the loopback lab.
const (
	DefaultSIPListen    = "127.0.0.1:5060"
	DefaultICSCF        = "sip:127.0.0.1:5070"
	DefaultPortC        = 5100
	DefaultPortS        = 5101
	DefaultSPIMin       = 0x1000
	DefaultSPIMax       = 0x0fffffff
	DefaultTimer        = 5 * time.Second
	DefaultPendingSAAge = 4 * time.Minute
	DefaultIPsecPorts   = 1000
	// DefaultMaxPending is where the admission limit starts (Config.MaxPending).
	DefaultMaxPending = 256
	// DefaultOverloadRetryAfter is the Retry-After (s) of overload 503s.
	DefaultOverloadRetryAfter = 5
)

// IPsec modes of --ipsec.
const (
	IPsecOn   = "on"   // sec-agree required: a UE without ipsec-3gpp gets 421
	IPsecAuto = "auto" // IPsec when the UE offers it and the kernel can do ESP
	IPsecOff  = "off"  // never: Security-Client is removed and ignored
)

// Rx policies of --rx (TS 29.214; what a failed AAR does to the call).
const (
	RxOff        = "off"         // no Rx
	RxBestEffort = "best-effort" // AAR sent; a rejection or an absent PCRF is logged, the call goes on
	RxRequired   = "required"    // a rejection or an absent PCRF fails the call with 503 + Warning
	rxOnAlias    = "on"          // accepted for compatibility: best-effort
)

// Config configures a P-CSCF.
type Config struct {
	SIPListen string   // host:port for UDP and TCP (Gm and Mw)
	SIPHost   string   // host in Via/Path/Record-Route; default host of SIPListen
	Aliases   []string // other names of this P-CSCF in Route headers
	// Advertise is the "host[:port]" UEs reach this P-CSCF at when a NAT or
	// a published container port stands between them (port: that of
	// SIPListen when absent). The P-CSCF writes it in the Via of requests
	// to the UE and in the Record-Route entry the UE sees, with a second
	// entry (SIPHost) for the core (RFC 5658 double record-routing); Path
	// keeps SIPHost, which the S-CSCF reaches. "": UEs see SIPHost.
	Advertise string
	Domain    string // home domain (orig-ioi, visited network default)
	// ICSCF is where REGISTER requests go (TS 24.229 §5.2.2.1).
	ICSCF string
	// VisitedNetworkID is written in P-Visited-Network-ID; default Domain.
	VisitedNetworkID string

	IPsec string // on, auto (default), off
	// PortC, PortS are the protected ports of the first SA set; set i
	// uses PortC+2i and PortS+2i (one pair per SA set, TS 33.203 §7.1).
	PortC, PortS int
	// IPsecPorts is how many port pairs (so SA sets at once) there are;
	// 0: as many as fit, up to DefaultIPsecPorts.
	IPsecPorts  int
	SPIMin      uint32
	SPIMax      uint32
	Algs, EAlgs []string // preference lists (alg, ealg)
	// IPsecBackend installs SAs; nil means the kernel (XFRM) backend of the
	// current network namespace, probed once at start.
	IPsecBackend ipsec.Backend

	// DatabaseURL enables write-through persistence of contacts ("" =
	// memory only).
	DatabaseURL string
	// TimerInterval is how often expired contacts and pending SAs are swept.
	TimerInterval time.Duration
	// PendingSAAge bounds how long SAs set up on a 401 wait for the
	// protected REGISTER.
	PendingSAAge time.Duration
	// RetireGrace is how long the SA set of a de-registered contact
	// stays (default DefaultRetireGrace; see secagree.go).
	RetireGrace time.Duration
	// RegSubscribeExpires is the Expires of the reg-event SUBSCRIBE
	// (0: 600000 s, TS 24.229 §5.2.3).
	RegSubscribeExpires int

	// Rx (nil: no Rx).
	Rx *rx.Config
	// RxPolicy is RxBestEffort (default when Rx is set; "on" is an alias)
	// or RxRequired; RxOff (or Rx nil) disables Rx.
	RxPolicy string
	// RxAARAtOffer sends an AAR with preliminary service information when
	// an initial INVITE with an SDP offer is forwarded, and updates it
	// with the final information at the answer (TS 29.214 §4.4.1);
	// false: one AAR, at the answer.
	RxAARAtOffer bool
	// SourceAuthFailureBurst failed authentications (403 to a challenge
	// answer) from one UE address lock it out (503 with Retry-After);
	// one is forgiven every SourceAuthFailureEvery. Defaults 20 and 10s;
	// negative burst disables (throttle.go).
	SourceAuthFailureBurst int
	SourceAuthFailureEvery time.Duration
	// HideWarnings removes Warning headers from every response sent,
	// relayed ones included (sipproxy.Config.HideWarnings): UEs learn no
	// internal host names or Diameter result codes.
	HideWarnings bool
	// SIPLimits bound the messages the SIP sockets accept
	// (sipproxy.Config.Limits); zero fields take the defaults.
	SIPLimits sipproxy.Limits

	// MaxPending bounds the new work in progress (overload.go): initial
	// requests from UEs until their first answer from the network, and
	// REGISTERs until their final one (challenge answers: twice as many).
	// Beyond it a request is answered 503 with Retry-After
	// (OverloadRetryAfter s). With Admission adaptive (default) it is
	// where the limit starts, which then follows their latency
	// (pkg/admission). 0: DefaultMaxPending; negative: no limit.
	MaxPending         int
	Admission          string
	OverloadRetryAfter int

	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() error {
	if c.SIPListen == "" {
		c.SIPListen = DefaultSIPListen
	}
	if c.SourceAuthFailureBurst == 0 {
		c.SourceAuthFailureBurst = 20
	}
	if c.SourceAuthFailureEvery == 0 {
		c.SourceAuthFailureEvery = 10 * time.Second
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.Admission == "" {
		c.Admission = admission.Adaptive
	}
	if err := admission.CheckMode(c.Admission); err != nil {
		return fmt.Errorf("pcscf: %w", err)
	}
	if c.OverloadRetryAfter <= 0 {
		c.OverloadRetryAfter = DefaultOverloadRetryAfter
	}
	host, _, err := net.SplitHostPort(c.SIPListen)
	if err != nil {
		return fmt.Errorf("pcscf: bad sip-listen %q: %w", c.SIPListen, err)
	}
	if c.SIPHost == "" {
		c.SIPHost = host
	}
	if c.Advertise != "" {
		if _, _, err := net.SplitHostPort(c.Advertise); err != nil {
			_, port, _ := net.SplitHostPort(c.SIPListen)
			c.Advertise = net.JoinHostPort(strings.Trim(c.Advertise, "[]"), port)
		}
		h, p, _ := net.SplitHostPort(c.Advertise)
		if n, err := strconv.Atoi(p); h == "" || err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("pcscf: bad advertise %q: want host[:port]", c.Advertise)
		}
	}
	if c.Domain == "" {
		return errors.New("pcscf: domain is required")
	}
	if c.ICSCF == "" {
		c.ICSCF = DefaultICSCF
	}
	var u sip.Uri
	if err := sip.ParseUri(c.ICSCF, &u); err != nil || u.Host == "" {
		return fmt.Errorf("pcscf: bad icscf URI %q", c.ICSCF)
	}
	if c.VisitedNetworkID == "" {
		c.VisitedNetworkID = c.Domain
	}
	switch c.IPsec = strings.ToLower(c.IPsec); c.IPsec {
	case "":
		c.IPsec = IPsecAuto
	case IPsecOn, IPsecAuto, IPsecOff:
	default:
		return fmt.Errorf("pcscf: --ipsec must be on, auto or off, not %q", c.IPsec)
	}
	if c.PortC == 0 {
		c.PortC = DefaultPortC
	}
	if c.PortS == 0 {
		c.PortS = DefaultPortS
	}
	if c.PortC == c.PortS || c.PortC < 1 || c.PortC > 65535 || c.PortS < 1 || c.PortS > 65535 {
		return fmt.Errorf("pcscf: protected ports must differ and be 1..65535 (port-c %d, port-s %d)", c.PortC, c.PortS)
	}
	fit := pairCount(c.PortC, c.PortS, 1<<16)
	if c.IPsecPorts == 0 {
		c.IPsecPorts = min(fit, DefaultIPsecPorts)
	}
	if c.IPsecPorts < 1 || c.IPsecPorts > fit {
		return fmt.Errorf("pcscf: %d protected port pairs from port-c %d and port-s %d (pair i is port-c+2i, port-s+2i) do not fit: at most %d", c.IPsecPorts, c.PortC, c.PortS, fit)
	}
	if c.SPIMin == 0 {
		c.SPIMin = DefaultSPIMin
	}
	if c.SPIMax == 0 {
		c.SPIMax = DefaultSPIMax
	}
	if c.SPIMax < c.SPIMin || c.SPIMin < 256 {
		return fmt.Errorf("pcscf: bad SPI range %d-%d (min ≥ 256)", c.SPIMin, c.SPIMax)
	}
	var err2 error
	if c.Algs, c.EAlgs, err2 = ipsec.Algorithms(c.Algs, c.EAlgs); err2 != nil {
		return fmt.Errorf("pcscf: %w", err2)
	}
	switch c.RxPolicy = strings.ToLower(c.RxPolicy); c.RxPolicy {
	case "", rxOnAlias:
		c.RxPolicy = RxBestEffort
	case RxBestEffort, RxRequired:
	case RxOff:
		c.Rx = nil
	default:
		return fmt.Errorf("pcscf: --rx must be off, best-effort or required (on = best-effort), not %q", c.RxPolicy)
	}
	if c.Rx == nil {
		c.RxPolicy = RxOff
	}
	if c.TimerInterval <= 0 {
		c.TimerInterval = DefaultTimer
	}
	if c.PendingSAAge <= 0 {
		c.PendingSAAge = DefaultPendingSAAge
	}
	if c.RetireGrace <= 0 {
		c.RetireGrace = DefaultRetireGrace
	}
	if c.RegSubscribeExpires <= 0 {
		c.RegSubscribeExpires = 600000
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	return nil
}
