package scscf

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/gruu"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/scscf/binding"
	"github.com/imscore/imscore/scscf/isc"
	"github.com/imscore/imscore/scscf/registrar"
)

// Values of Config.ReauthProtected: the re-authentication policies of the
// registrar for REGISTER requests the P-CSCF marks as integrity protected
// (TS 24.229 §5.4.1.2.1; see registrar.ReauthAlways, ReauthRegistered).
const (
	ReauthAlways     = registrar.ReauthAlways
	ReauthRegistered = registrar.ReauthRegistered
)

// Config configures a Server. Zero values take the documented defaults
// (see WithDefaults), which fit the loopback lab of DESIGN.md.
type Config struct {
	// SIPListen is the SIP "ip:port" for UDP and TCP. Default 127.0.0.1:5080.
	SIPListen string
	// SIPHost is the host written in Via, Service-Route and Warning.
	// Default: the host of SIPListen.
	SIPHost string
	// Domain is the home domain, digest realm and Diameter realm.
	Domain string
	// ServerName is the SIP URI sent as Server-Name in MAR/SAR (TS 29.229
	// §6.3.4); it must be what the HSS/I-CSCF know this S-CSCF by.
	// Default "sip:scscf.<domain>:<port of SIPListen>".
	ServerName string
	// OriginHost is the Diameter identity. Default "scscf.<domain>".
	OriginHost string
	// HSSAddr is the HSS Diameter "host:port". Default 127.0.0.1:3868.
	HSSAddr string
	// HSSHost is the HSS Origin-Host, used as Destination-Host. Default
	// "hss.<domain>".
	HSSHost string
	// HSSStandbyAddr is a second HSS "host:port" (optional): MAR and SAR
	// go to it only while the primary is not OKAY by its Diameter
	// watchdog (RFC 3539 fail-over) and back to the primary once it is
	// (fail-back).
	HSSStandbyAddr string
	// HSSStandbyHost is the standby's Origin-Host; default HSSHost (two
	// instances of one HSS identity sharing one database).
	HSSStandbyHost string
	// HSSTimeout bounds one MAR/SAR exchange. Default 5s.
	HSSTimeout time.Duration
	// DatabaseURL is the PostgreSQL DSN for the S-CSCF's own tables
	// (scscf_*); "" keeps bindings in memory only.
	DatabaseURL string

	// MinExpires, MaxExpires, DefaultExpires bound registration lifetimes
	// (RFC 3261 §10.2.8, §10.3 step 7). Defaults 60s, 3600s, 600s.
	MinExpires, MaxExpires, DefaultExpires time.Duration
	// VectorsPerMAR is SIP-Number-Auth-Items of each MAR (1..16). Default 2.
	VectorsPerMAR int
	// NonceLifetime is how long a 401's nonce is accepted. Default 60s.
	NonceLifetime time.Duration
	// ChallengeTimeout is how long an unanswered challenge waits before
	// SAR AUTHENTICATION_TIMEOUT (TS 29.228 §6.1.2). Default 30s.
	ChallengeTimeout time.Duration
	// VectorLifetime bounds how long unused cached vectors are kept.
	// Default 5m.
	VectorLifetime time.Duration
	// ReauthProtected is ReauthRegistered (default) or ReauthAlways.
	ReauthProtected string
	// AuthFailureBurst wrong authentication responses in a row lock an
	// IMPI out (403 with Retry-After); one failure is forgiven every
	// AuthFailureEvery. Defaults 10 and 30s; a negative burst disables.
	AuthFailureBurst int
	AuthFailureEvery time.Duration
	// HideWarnings removes Warning headers from every response sent
	// (sipproxy.Config.HideWarnings).
	HideWarnings bool
	// SIPLimits bound the messages the SIP sockets accept
	// (sipproxy.Config.Limits); zero fields take the defaults.
	SIPLimits sipproxy.Limits
	// SweepInterval is the period of the expiry/challenge timer. Default 1s.
	SweepInterval time.Duration

	// Session routing (TS 24.229 §5.4.3; see scscf/isc).

	// ICSCF is where originating requests for home-domain targets go
	// (a sip: URI, pushed as a loose Route). Default "sip:127.0.0.1:5070".
	ICSCF string
	// Breakout is where requests for other domains go (a sip: URI pushed as
	// a loose Route, e.g. a BGCF or IBCF); "" answers them 404.
	Breakout string
	// TelURIs says how tel: targets (and sip: URIs with user=phone) are
	// routed: TelHome (default) sends them to the I-CSCF, which asks the
	// HSS (LIR); TelBreakout sends them to Breakout (404 without one).
	TelURIs string
	// SharedIFCSetsFile names the file of shared iFC sets (TS 29.228
	// §6.6.3) referenced by SharedIFCSetID in profiles; "" means none.
	SharedIFCSetsFile string
	// OrigIdentityFromHeader lets an originating request without
	// P-Asserted-Identity be served as its From identity (labs without a
	// P-CSCF). Default false: such requests get 403.
	OrigIdentityFromHeader bool
	// ASTimeout is how long an AS may stay silent (no response other than
	// 100 and no request back on the ODI route) before its iFC's
	// DefaultHandling applies. Default 2s.
	ASTimeout time.Duration
	// ODILifetime is how long an ODI token routes a request back into the
	// iFC chain. Default 200s (Timer C + margin).
	ODILifetime time.Duration
	// GRUUSecret seals the temporary GRUUs (pkg/gruu, RFC 5627 §3.2, TS
	// 24.229 §5.4.7A): at least 16 bytes, the same on every S-CSCF and
	// I-CSCF of the network and kept across restarts, or the GRUUs
	// issued before stop routing. "" issues public GRUUs only.
	GRUUSecret string

	// OnRegistrationChange, if set, is called after every change of a
	// registration (see binding.Event); it runs on the goroutine that
	// made the change, after the change is stored, and must not block long.
	// The reg-event package (RFC 3680) hangs off this hook.
	OnRegistrationChange func(binding.Event)

	Logger   *zap.Logger           // default zap.NewNop()
	Registry prometheus.Registerer // default: a private registry
}

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.SIPListen == "" {
		c.SIPListen = "127.0.0.1:5080"
	}
	host, port, _ := net.SplitHostPort(c.SIPListen)
	if c.SIPHost == "" {
		c.SIPHost = host
	}
	if c.Domain == "" {
		c.Domain = "ims.mnc001.mcc001.3gppnetwork.org"
	}
	if c.ServerName == "" {
		c.ServerName = fmt.Sprintf("sip:scscf.%s:%s", c.Domain, port)
	}
	if c.OriginHost == "" {
		c.OriginHost = "scscf." + c.Domain
	}
	if c.HSSAddr == "" {
		c.HSSAddr = "127.0.0.1:3868"
	}
	if c.HSSHost == "" {
		c.HSSHost = "hss." + c.Domain
	}
	if c.HSSStandbyAddr != "" && c.HSSStandbyHost == "" {
		c.HSSStandbyHost = c.HSSHost
	}
	if c.HSSTimeout == 0 {
		c.HSSTimeout = 5 * time.Second
	}
	if c.MinExpires == 0 {
		c.MinExpires = 60 * time.Second
	}
	if c.MaxExpires == 0 {
		c.MaxExpires = 3600 * time.Second
	}
	if c.DefaultExpires == 0 {
		c.DefaultExpires = 600 * time.Second
	}
	if c.VectorsPerMAR == 0 {
		c.VectorsPerMAR = 2
	}
	if c.NonceLifetime == 0 {
		c.NonceLifetime = 60 * time.Second
	}
	if c.AuthFailureBurst == 0 {
		c.AuthFailureBurst = 10
	}
	if c.AuthFailureEvery == 0 {
		c.AuthFailureEvery = 30 * time.Second
	}
	if c.ChallengeTimeout == 0 {
		c.ChallengeTimeout = 30 * time.Second
	}
	if c.VectorLifetime == 0 {
		c.VectorLifetime = 5 * time.Minute
	}
	if c.ReauthProtected == "" {
		c.ReauthProtected = ReauthRegistered
	}
	if c.SweepInterval == 0 {
		c.SweepInterval = time.Second
	}
	if c.ICSCF == "" {
		c.ICSCF = "sip:127.0.0.1:5070"
	}
	if c.TelURIs == "" {
		c.TelURIs = TelHome
	}
	if c.ASTimeout == 0 {
		c.ASTimeout = 2 * time.Second
	}
	if c.ODILifetime == 0 {
		c.ODILifetime = 200 * time.Second
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	return c
}

// Validate checks a configuration after WithDefaults.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.SIPListen); err != nil {
		errs = append(errs, fmt.Errorf("sip-listen %q: %v", c.SIPListen, err))
	}
	if _, _, err := net.SplitHostPort(c.HSSAddr); err != nil {
		errs = append(errs, fmt.Errorf("hss-addr %q: %v", c.HSSAddr, err))
	}
	if c.HSSStandbyAddr != "" {
		if _, _, err := net.SplitHostPort(c.HSSStandbyAddr); err != nil {
			errs = append(errs, fmt.Errorf("hss-standby-addr %q: %v", c.HSSStandbyAddr, err))
		}
	}
	if !strings.HasPrefix(strings.ToLower(c.ServerName), "sip:") {
		errs = append(errs, fmt.Errorf("server-name %q must be a sip: URI", c.ServerName))
	}
	if c.MinExpires <= 0 || c.MaxExpires < c.MinExpires {
		errs = append(errs, fmt.Errorf("need 0 < min-expires (%v) <= max-expires (%v)", c.MinExpires, c.MaxExpires))
	}
	if c.DefaultExpires < c.MinExpires || c.DefaultExpires > c.MaxExpires {
		errs = append(errs, fmt.Errorf("default-expires %v outside [min-expires, max-expires]", c.DefaultExpires))
	}
	if c.VectorsPerMAR < 1 || c.VectorsPerMAR > 16 {
		errs = append(errs, fmt.Errorf("vectors-per-mar %d: want 1..16", c.VectorsPerMAR))
	}
	if c.NonceLifetime <= 0 || c.ChallengeTimeout <= 0 || c.VectorLifetime <= 0 || c.SweepInterval <= 0 || c.HSSTimeout <= 0 {
		errs = append(errs, errors.New("durations must be positive"))
	}
	if c.ReauthProtected != ReauthAlways && c.ReauthProtected != ReauthRegistered {
		errs = append(errs, fmt.Errorf("reauth-protected %q: want %q or %q", c.ReauthProtected, ReauthRegistered, ReauthAlways))
	}
	if _, err := isc.RouteURI(c.ICSCF); err != nil {
		errs = append(errs, fmt.Errorf("icscf: %v", err))
	}
	if c.Breakout != "" {
		if _, err := isc.RouteURI(c.Breakout); err != nil {
			errs = append(errs, fmt.Errorf("breakout: %v", err))
		}
	}
	if c.TelURIs != TelHome && c.TelURIs != TelBreakout {
		errs = append(errs, fmt.Errorf("tel-uris %q: want %q or %q", c.TelURIs, TelHome, TelBreakout))
	}
	if c.GRUUSecret != "" && len(c.GRUUSecret) < gruu.MinSecretLen {
		errs = append(errs, fmt.Errorf("gruu-secret: %d bytes, need at least %d", len(c.GRUUSecret), gruu.MinSecretLen))
	}
	if c.ASTimeout <= 0 || c.ODILifetime <= 0 {
		errs = append(errs, errors.New("as-timeout and odi-lifetime must be positive"))
	}
	return errors.Join(errs...)
}

// Values of Config.TelURIs (see isc.TelHome, TelBreakout).
const (
	TelHome     = isc.TelHome
	TelBreakout = isc.TelBreakout
)
