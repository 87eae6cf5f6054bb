package icscf

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

	"github.com/imscore/imscore/pkg/admission"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// Defaults of the loopback lab (docs/icscf.md).
const (
	DefaultSIPListen  = "127.0.0.1:5070"
	DefaultHSSAddr    = "127.0.0.1:3868"
	DefaultCxTimeout  = 2 * time.Second
	DefaultSIPTimeout = 4 * time.Second
	// DefaultMaxPendingRegister is the number of REGISTER transactions in
	// progress from which initial REGISTERs are refused with 503 (sized in
	// docs/icscf.md, "Overload": 64 refused 2-4 % at the 2-core lab's
	// capacity while the host still had 6-13 % idle).
	DefaultMaxPendingRegister = 128
	// DefaultOverloadRetryAfter is the Retry-After, in seconds, of those 503s.
	DefaultOverloadRetryAfter = 5
)

// Values of Config.RegisterAdmission (--register-admission).
const (
	// AdmissionAdaptive: the limit starts at MaxPendingRegister and
	// follows the latency of the REGISTER transactions (pkg/admission).
	AdmissionAdaptive = admission.Adaptive
	// AdmissionFixed: the limit is MaxPendingRegister.
	AdmissionFixed = admission.Fixed
)

// LabSCSCF is the loopback lab's S-CSCF in the home domain: the
// Server-Name the S-CSCF uses by default (sip:scscf.<domain>:5080).
func LabSCSCF(domain string) string { return "sip:scscf." + domain + ":5080" }

// LabResolve makes LabSCSCF(domain) resolve to loopback without DNS.
func LabResolve(domain string) string { return "scscf." + domain + "=127.0.0.1" }

// Config configures an I-CSCF. Zero values of optional fields take the
// defaults documented on each field.
type Config struct {
	// SIPListen is "host:port" opened for UDP and TCP. Default DefaultSIPListen.
	SIPListen string
	// SIPHost is the host written in Via and recognised in Route headers;
	// default the host of SIPListen.
	SIPHost string
	// Aliases are further names meaning "this I-CSCF" in Route headers
	// (RFC 3261 §16.4), e.g. "icscf.ims.example.org". OriginHost is always
	// one of them.
	Aliases []string
	// Domain is the home domain and Diameter realm (required).
	Domain string
	// OriginHost is the Diameter identity; default "icscf." + Domain.
	OriginHost string
	// HSSAddr is the HSS Diameter peer "host:port"; default DefaultHSSAddr.
	HSSAddr string
	// HSSHost is the Origin-Host the HSS must present in its CEA; default
	// "hss." + Domain. It also names the HSS in Warning headers.
	HSSHost string
	// HSSStandbyAddr is a second HSS "host:port" (optional): requests go to
	// it only while the primary is not OKAY by its watchdog (RFC 3539
	// fail-over), and back to the primary once it is (fail-back).
	HSSStandbyAddr string
	// HSSStandbyHost is the standby's Origin-Host; default HSSHost (two
	// instances of one HSS identity behind one database).
	HSSStandbyHost string
	// SCSCFs are the S-CSCFs the I-CSCF may select from Server-Capabilities,
	// in order of preference (required, at least one).
	SCSCFs []SCSCF
	// Resolve maps S-CSCF host names to addresses without DNS.
	Resolve Resolver
	// CxTimeout bounds one UAR or LIR; default DefaultCxTimeout.
	CxTimeout time.Duration
	// SIPTimeout bounds one non-INVITE forward to an S-CSCF before the next
	// one is tried; default DefaultSIPTimeout. INVITEs use Timer C
	// (sipproxy.DefaultTimerC).
	SIPTimeout time.Duration
	// MaxPendingRegister is the admission limit of REGISTERs (docs/icscf.md,
	// "Overload"): an initial REGISTER arriving while this many REGISTER
	// transactions are in progress is answered 503 at once; challenge
	// answers and de-registrations get twice as many. With
	// RegisterAdmission adaptive it is where the limit starts. 0 takes
	// DefaultMaxPendingRegister; negative means no limit.
	MaxPendingRegister int
	// RegisterAdmission is AdmissionAdaptive (default: the limit follows
	// the latency of the REGISTER transactions between 32 and 20,000) or
	// AdmissionFixed.
	RegisterAdmission string
	// OverloadRetryAfter is the Retry-After of those 503s in seconds;
	// default DefaultOverloadRetryAfter.
	OverloadRetryAfter int
	// (A locked-out unknown IMPI gets 403 with Retry-After, below.)
	// RevealUnknownUsers answers a REGISTER of an identity the HSS does
	// not know (UAA 5001/5002) with 403 and a Warning quoting the UAA, as
	// a lab may want; by default (false) it gets the decoy answers of
	// conceal.go, so that known and unknown identities look alike.
	RevealUnknownUsers bool
	// HideWarnings removes Warning headers from every response sent
	// (sipproxy.Config.HideWarnings).
	HideWarnings bool
	// SIPLimits bound the messages the SIP sockets accept
	// (sipproxy.Config.Limits); zero fields take the defaults.
	SIPLimits sipproxy.Limits
	// AuthFailureBurst failed answers to decoy challenges lock an unknown
	// IMPI out (403 with Retry-After), one forgiven every
	// AuthFailureEvery, as the S-CSCF throttles known IMPIs. Defaults 10
	// and 30s; negative burst disables.
	AuthFailureBurst int
	AuthFailureEvery time.Duration
	// GRUUSecret is the S-CSCFs' secret of temporary GRUUs (pkg/gruu,
	// at least 16 bytes): a request to a temporary GRUU gets its LIR on
	// the IMPU sealed in it (gruu.go). "" answers such requests 404.
	GRUUSecret string
	// Logger; default zap.NewNop().
	Logger *zap.Logger
	// Registerer receives the Prometheus collectors; nil registers nothing.
	Registerer prometheus.Registerer
}

func (c *Config) setDefaults() error {
	if c.SIPListen == "" {
		c.SIPListen = DefaultSIPListen
	}
	if c.AuthFailureBurst == 0 {
		c.AuthFailureBurst = 10
	}
	if c.AuthFailureEvery == 0 {
		c.AuthFailureEvery = 30 * time.Second
	}
	if c.Domain == "" {
		return errors.New("icscf: domain is required")
	}
	if c.OriginHost == "" {
		c.OriginHost = "icscf." + c.Domain
	}
	if c.HSSAddr == "" {
		c.HSSAddr = DefaultHSSAddr
	}
	if _, _, err := net.SplitHostPort(c.HSSAddr); err != nil {
		return fmt.Errorf("icscf: bad HSS address %q: %w", c.HSSAddr, err)
	}
	if c.HSSHost == "" {
		c.HSSHost = "hss." + c.Domain
	}
	if c.HSSStandbyAddr != "" {
		if _, _, err := net.SplitHostPort(c.HSSStandbyAddr); err != nil {
			return fmt.Errorf("icscf: bad standby HSS address %q: %w", c.HSSStandbyAddr, err)
		}
		if c.HSSStandbyHost == "" {
			c.HSSStandbyHost = c.HSSHost
		}
	}
	if len(c.SCSCFs) == 0 {
		return errors.New("icscf: at least one S-CSCF must be configured")
	}
	seen := map[string]bool{}
	for _, s := range c.SCSCFs {
		if seen[s.key] {
			return fmt.Errorf("icscf: S-CSCF %s configured twice", s.Name)
		}
		seen[s.key] = true
	}
	if c.CxTimeout <= 0 {
		c.CxTimeout = DefaultCxTimeout
	}
	if c.SIPTimeout <= 0 {
		c.SIPTimeout = DefaultSIPTimeout
	}
	if c.MaxPendingRegister == 0 {
		c.MaxPendingRegister = DefaultMaxPendingRegister
	}
	if c.RegisterAdmission == "" {
		c.RegisterAdmission = AdmissionAdaptive
	}
	if err := admission.CheckMode(c.RegisterAdmission); err != nil {
		return fmt.Errorf("icscf: register %w", err)
	}
	if c.OverloadRetryAfter == 0 {
		c.OverloadRetryAfter = DefaultOverloadRetryAfter
	}
	if c.OverloadRetryAfter < 0 {
		return fmt.Errorf("icscf: overload Retry-After %d s: must be at least 1", c.OverloadRetryAfter)
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	return nil
}

// SCSCF is one configured S-CSCF.
type SCSCF struct {
	// Name is the S-CSCF's SIP URI as the HSS knows it (Server-Name, TS
	// 29.228 §6.3.4), e.g. "sip:scscf.ims.example.org:5080".
	Name string
	// URI is Name parsed.
	URI sip.Uri
	// Caps are the capabilities (TS 29.228 §6.3.5/6, operator-defined
	// integers) this S-CSCF supports.
	Caps []uint32

	key string // normalised name for comparisons
}

// ParseSCSCF parses one --scscf value:
//
//	<sip-uri>[;caps=<n>[+<n>...]]
//
// e.g. "sip:scscf.ims.example.org:5080;caps=1+2". The caps parameter is the
// I-CSCF's and is removed from the name; other URI parameters (transport)
// stay. Capabilities are separated by '+' because ',' separates list
// entries of a repeatable flag and its environment twin.
func ParseSCSCF(s string) (SCSCF, error) {
	s = strings.TrimSpace(s)
	var caps []uint32
	var rest []string
	parts := strings.Split(s, ";")
	for i, p := range parts {
		if i > 0 {
			name, val, _ := strings.Cut(p, "=")
			if strings.EqualFold(strings.TrimSpace(name), "caps") {
				for _, c := range strings.Split(val, "+") {
					c = strings.TrimSpace(c)
					if c == "" {
						continue
					}
					n, err := strconv.ParseUint(c, 10, 32)
					if err != nil {
						return SCSCF{}, fmt.Errorf("icscf: S-CSCF %q: capability %q is not an unsigned 32-bit number (separate capabilities with '+')", s, c)
					}
					caps = append(caps, uint32(n))
				}
				continue
			}
		}
		rest = append(rest, p)
	}
	name := strings.Join(rest, ";")
	u, err := parseSIPURI(name)
	if err != nil {
		if _, nerr := strconv.ParseUint(strings.TrimSpace(name), 10, 32); nerr == nil {
			return SCSCF{}, fmt.Errorf("icscf: S-CSCF %q is a number: separate capabilities with '+' (caps=1+2), not ','", s)
		}
		return SCSCF{}, fmt.Errorf("icscf: S-CSCF %q: %w", s, err)
	}
	return SCSCF{Name: name, URI: u, Caps: caps, key: uriKey(u)}, nil
}

// parseSIPURI parses a sip: or sips: URI with a host.
func parseSIPURI(s string) (sip.Uri, error) {
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		return u, fmt.Errorf("not a SIP URI: %w", err)
	}
	if (u.Scheme != "sip" && u.Scheme != "sips") || u.Host == "" {
		return u, fmt.Errorf("%q is not a sip: URI with a host", s)
	}
	return u, nil
}

// uriKey normalises an S-CSCF URI for comparison: scheme, lower-case host
// and port (5060/5061 when absent); user part and parameters are ignored.
func uriKey(u sip.Uri) string {
	port := u.Port
	if port == 0 {
		port = 5060
		if u.Scheme == "sips" {
			port = 5061
		}
	}
	return strings.ToLower(u.Scheme) + ":" + strings.ToLower(strings.Trim(u.Host, "[]")) + ":" + strconv.Itoa(port)
}

// Resolver maps host names (optionally with a port) to addresses so that
// lab names reach 127.0.0.1 ports without DNS. Build it with ParseResolve.
type Resolver struct {
	byHostPort map[string]hostPort
	byHost     map[string]hostPort
}

type hostPort struct {
	host string
	port int // 0: keep the port of the URI
}

// ParseResolve parses --resolve entries, each
//
//	<name>[:<port>]=<ip>[:<port>]
//
// e.g. "scscf.ims.example.org=127.0.0.1" (keep the URI's port) or
// "scscf2.ims.example.org:5080=127.0.0.1:5082". An entry with a port on the
// left applies only to URIs with that port (5060 when absent) and wins over
// one without.
func ParseResolve(entries []string) (Resolver, error) {
	r := Resolver{byHostPort: map[string]hostPort{}, byHost: map[string]hostPort{}}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		left, right, ok := strings.Cut(e, "=")
		if !ok {
			return r, fmt.Errorf("icscf: resolve entry %q: want name[:port]=ip[:port]", e)
		}
		name, lport, err := splitOptPort(left)
		if err != nil || name == "" {
			return r, fmt.Errorf("icscf: resolve entry %q: bad name %q", e, left)
		}
		ip, rport, err := splitOptPort(right)
		if err != nil || net.ParseIP(ip) == nil {
			return r, fmt.Errorf("icscf: resolve entry %q: %q is not ip[:port]", e, right)
		}
		hp := hostPort{host: ip, port: rport}
		if lport != 0 {
			r.byHostPort[strings.ToLower(name)+":"+strconv.Itoa(lport)] = hp
		} else {
			r.byHost[strings.ToLower(name)] = hp
		}
	}
	return r, nil
}

func splitOptPort(s string) (string, int, error) {
	s = strings.TrimSpace(s)
	if h, p, err := net.SplitHostPort(s); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return "", 0, fmt.Errorf("bad port %q", p)
		}
		return strings.Trim(h, "[]"), n, nil
	}
	if strings.Count(s, ":") == 1 {
		return "", 0, fmt.Errorf("bad host:port %q", s)
	}
	return strings.Trim(s, "[]"), 0, nil
}

// NextHop returns the address to send to for u, or nil when no entry
// matches (DNS is then used by the transport).
func (r Resolver) NextHop(u sip.Uri) *sip.Uri {
	host := strings.ToLower(strings.Trim(u.Host, "[]"))
	port := u.Port
	if port == 0 {
		port = 5060
		if u.Scheme == "sips" {
			port = 5061
		}
	}
	hp, ok := r.byHostPort[host+":"+strconv.Itoa(port)]
	if !ok {
		hp, ok = r.byHost[host]
	}
	if !ok {
		return nil
	}
	nh := &sip.Uri{Scheme: "sip", Host: hp.host, Port: port, UriParams: sip.NewParams()}
	if hp.port != 0 {
		nh.Port = hp.port
	}
	if tp, ok := u.UriParams.Get("transport"); ok && tp != "" {
		nh.UriParams.Add("transport", tp)
	}
	return nh
}
