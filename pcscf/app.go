// Package pcscf is the P-CSCF of the IMS core (TS 24.229 §5.2): the UE's
// first contact point on Gm. It adds itself to Path on REGISTER and
// forwards to the I-CSCF, runs the TS 33.203 sec-agree (IPsec ESP SAs set
// up from the ik/ck of the S-CSCF's 401), stores the registered contacts
// (pcscf/contacts, PostgreSQL write-through), admits requests only from
// registered flows and asserts their identity, routes them along the
// Service-Route, delivers terminating requests to the UE's flow, follows
// the reg event of its users, and asks the PCRF for media resources over
// Rx (pcscf/rx). See docs/pcscf.md.
package pcscf

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/imscore/imscore/pcscf/rx"
	"github.com/imscore/imscore/pkg/admission"
	"github.com/imscore/imscore/pkg/config"
)

const prefix = "PCSCF"

// Function returns the command-line definition of the pcscf binary.
func Function() config.Function {
	return config.Function{
		Name:      "pcscf",
		Prefix:    prefix,
		Usage:     "P-CSCF: the UE's first contact point (Gm), TS 24.229 §5.2",
		AdminAddr: "127.0.0.1:9060",
		Flags: append([]cli.Flag{
			config.String(prefix, "sip-listen", DefaultSIPListen, "SIP listen address (UDP and TCP)"),
			config.String(prefix, "sip-host", "", "host written in Via/Path/Record-Route (default: host of --sip-listen)"),
			config.Strings(prefix, "sip-alias", nil, "further names of this P-CSCF in Route headers"),
			config.String(prefix, "advertise", "", "host[:port] UEs reach the P-CSCF at through a NAT or a published container port (port: that of --sip-listen), written in the Via and Record-Route UEs see (empty: --sip-host)"),
			config.String(prefix, "domain", config.DefaultDomain, "home domain and Diameter realm"),
			config.String(prefix, "icscf", DefaultICSCF, "I-CSCF URI REGISTER requests are sent to"),
			config.String(prefix, "visited-network-id", "", "P-Visited-Network-ID value (default: the domain)"),
			config.String(prefix, "ipsec", IPsecAuto, "IPsec sec-agree: on (required), auto (when offered and the kernel has ESP), off"),
			config.Int(prefix, "port-c", DefaultPortC, "protected client port of the P-CSCF's first SA set (set i: port-c + 2i)"),
			config.Int(prefix, "port-s", DefaultPortS, "protected server port of the P-CSCF's first SA set (set i: port-s + 2i)"),
			config.Int(prefix, "ipsec-ports", 0, "protected port pairs, one per SA set at once (0: as many as fit, at most 1000)"),
			config.Int(prefix, "spi-min", DefaultSPIMin, "lowest SPI the P-CSCF allocates"),
			config.Int(prefix, "spi-max", DefaultSPIMax, "highest SPI the P-CSCF allocates"),
			config.Strings(prefix, "alg", []string{"hmac-sha-1-96", "hmac-md5-96"}, "integrity algorithms in preference order"),
			config.Strings(prefix, "ealg", []string{"null", "aes-cbc"}, "encryption algorithms in preference order"),
			config.DatabaseURL(prefix),
			config.Bool(prefix, "persist", true, "write contacts through to PostgreSQL (--database-url) and reload them at start"),
			config.Duration(prefix, "timer-interval", DefaultTimer, "how often expired contacts are removed"),
			config.Int(prefix, "reg-subscribe-expires", 600000, "Expires (seconds) of the P-CSCF's reg event SUBSCRIBE, refreshed when two thirds of the granted time have passed (TS 24.229 §5.2.3)"),
			config.String(prefix, "rx", RxOff, "Rx towards a PCRF: off, best-effort (AAR failures are logged, calls go on; 'on' is an alias) or required (a PCRF rejection or an absent PCRF fails the call with 503)"),
			config.String(prefix, "pcrf-addr", "127.0.0.1:3869", "PCRF Diameter address host:port"),
			config.String(prefix, "pcrf-host", "", "PCRF Diameter identity expected in its CEA (default pcrf.<domain>)"),
			config.String(prefix, "pcrf-realm", "", "PCRF realm (default: the domain)"),
			config.String(prefix, "origin-host", "", "Diameter Origin-Host (default pcscf.<domain>)"),
			config.Bool(prefix, "rx-aar-at-offer", false, "also send an AAR with preliminary service information at the SDP offer of an initial INVITE, updated at the answer (TS 29.214 §4.4.1)"),
			config.HideWarnings(prefix),
			config.Int(prefix, "source-auth-failure-burst", 20, "failed authentications (403 to a challenge answer) from one UE address that lock it out (503 with Retry-After); -1 disables"),
			config.Duration(prefix, "source-auth-failure-every", 10e9, "how often one failure of a locked-out UE address is forgiven"),
			config.Int(prefix, "max-pending", DefaultMaxPending, "new work in progress (initial requests from UEs until their first answer from the network, REGISTERs until their final one) from which a new one is answered 503 with Retry-After; challenge answers get twice as many; 0: no limit; with --admission adaptive, where the limit starts"),
			config.String(prefix, "admission", admission.Adaptive, "adaptive: the --max-pending limit follows the latency of the admitted work (grows while it does not slow down, shrinks when it queues); fixed: --max-pending"),
			config.Int(prefix, "overload-retry-after", DefaultOverloadRetryAfter, "Retry-After in seconds of the 503 sent beyond --max-pending"),
		}, config.SIPLimitFlags(prefix)...),
		Validate: func(c *cli.Context) error {
			cfg, err := configFromCLI(c)
			if err != nil {
				return err
			}
			return cfg.setDefaults()
		},
		Run: func(ctx context.Context, rt *config.Runtime) error {
			cfg, err := configFromCLI(rt.CLI)
			if err != nil {
				return err
			}
			cfg.Logger = rt.Log
			cfg.Registerer = rt.Admin.Registry
			p, err := New(cfg)
			if err != nil {
				return err
			}
			if err := p.Start(ctx); err != nil {
				return err
			}
			defer p.Close()
			rt.Admin.AddReadyCheck("pcrf", p.Ready)
			rt.Admin.HandleJSON("/status/contacts", func(context.Context) (any, error) { return p.Status(), nil })
			rt.Admin.Handle("POST /status/contacts/reset-expired", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintf(w, "{\"expired_contacts\": %d}\n", p.ResetExpired())
			}))
			rt.Admin.MarkStarted()
			<-ctx.Done()
			return nil
		},
	}
}

func configFromCLI(c *cli.Context) (Config, error) {
	cfg := Config{
		SIPListen: c.String("sip-listen"), SIPHost: c.String("sip-host"), Aliases: c.StringSlice("sip-alias"), Advertise: c.String("advertise"),
		Domain: c.String("domain"), ICSCF: c.String("icscf"), VisitedNetworkID: c.String("visited-network-id"),
		IPsec: c.String("ipsec"), PortC: c.Int("port-c"), PortS: c.Int("port-s"), IPsecPorts: c.Int("ipsec-ports"),
		SPIMin: uint32(c.Int("spi-min")), SPIMax: uint32(c.Int("spi-max")),
		Algs: c.StringSlice("alg"), EAlgs: c.StringSlice("ealg"),
		TimerInterval: c.Duration("timer-interval"), RxAARAtOffer: c.Bool("rx-aar-at-offer"),
		HideWarnings:           c.Bool("hide-warnings"),
		SourceAuthFailureBurst: c.Int("source-auth-failure-burst"), SourceAuthFailureEvery: c.Duration("source-auth-failure-every"),
		RegSubscribeExpires: c.Int("reg-subscribe-expires"),
		Admission:           c.String("admission"), OverloadRetryAfter: c.Int("overload-retry-after"),
	}
	var err error
	if cfg.MaxPending, err = config.PendingLimit(c, "max-pending"); err != nil {
		return cfg, fmt.Errorf("pcscf: %w", err)
	}
	cfg.SIPLimits.MaxMessageBytes, cfg.SIPLimits.MaxHeaders, cfg.SIPLimits.Backlog = config.SIPLimits(c)
	if c.Bool("persist") {
		cfg.DatabaseURL = c.String("database-url")
	}
	switch pol := strings.ToLower(c.String("rx")); pol {
	case RxBestEffort, RxRequired, rxOnAlias:
		cfg.RxPolicy = pol
		host := c.String("origin-host")
		if host == "" {
			host = "pcscf." + cfg.Domain
		}
		ph := c.String("pcrf-host")
		if ph == "" {
			ph = "pcrf." + cfg.Domain
		}
		cfg.Rx = &rx.Config{OriginHost: host, OriginRealm: cfg.Domain, PCRFAddr: c.String("pcrf-addr"), PCRFHost: ph, PCRFRealm: c.String("pcrf-realm")}
	case RxOff, "":
	default:
		return cfg, fmt.Errorf("pcscf: --rx must be off, best-effort or required (on = best-effort), not %q", pol)
	}
	return cfg, nil
}
