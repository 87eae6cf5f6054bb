// Package icscf is the I-CSCF of the IMS core (TS 24.229 §5.3): it routes
// REGISTER requests to an S-CSCF chosen with a Cx UAR (TS 29.228 §6.1.1)
// and terminating requests to the user's S-CSCF found with a Cx LIR (TS
// 29.228 §6.1.4). It holds no registration state. See docs/icscf.md.
package icscf

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/imscore/imscore/pkg/config"
)

const prefix = "ICSCF"

// Function returns the command-line definition of the icscf binary.
func Function() config.Function {
	return config.Function{
		Name:      "icscf",
		Prefix:    prefix,
		Usage:     "I-CSCF: the home network's entry point, S-CSCF selection via Cx UAR/LIR, TS 24.229 §5.3",
		AdminAddr: "127.0.0.1:9070",
		Flags: append([]cli.Flag{
			config.String(prefix, "sip-listen", DefaultSIPListen, "SIP listen address (UDP and TCP)"),
			config.String(prefix, "sip-host", "", "host written in Via and used as Warning agent (default: the host of --sip-listen)"),
			config.Strings(prefix, "sip-alias", nil, "further host names meaning this I-CSCF in Route headers (the origin host always is one)"),
			config.String(prefix, "domain", config.DefaultDomain, "home domain and Diameter realm"),
			config.String(prefix, "origin-host", "", "Diameter Origin-Host (default icscf.<domain>)"),
			config.String(prefix, "hss-addr", DefaultHSSAddr, "HSS Diameter address host:port (TCP)"),
			config.String(prefix, "hss-host", "", "HSS Diameter identity expected in its CEA (default hss.<domain>)"),
			config.String(prefix, "hss-standby-addr", "", "a standby HSS Diameter address host:port, used while the primary fails its watchdog (RFC 3539 fail-over and fail-back); empty: none"),
			config.String(prefix, "hss-standby-host", "", "the standby HSS's Diameter identity (default: --hss-host)"),
			config.Strings(prefix, "scscf", nil, "S-CSCF to select from, repeatable, in preference order: <sip-uri>[;caps=<n>[+<n>...]] (default sip:scscf.<domain>:5080, the lab's)"),
			config.Strings(prefix, "resolve", nil, "name→address override instead of DNS, repeatable: <name>[:<port>]=<ip>[:<port>] (default scscf.<domain>=127.0.0.1 while --scscf is the default)"),
			config.Duration(prefix, "cx-timeout", DefaultCxTimeout, "how long to wait for a UAA/LIA"),
			config.Duration(prefix, "sip-timeout", DefaultSIPTimeout, "how long a non-INVITE forwarded to an S-CSCF may stay unanswered before the next S-CSCF is tried"),
			config.HideWarnings(prefix),
			config.Bool(prefix, "reveal-unknown-users", false, "answer a REGISTER of an identity the HSS does not know 403 with the UAA in a Warning (troubleshooting); default: a decoy challenge, so that known and unknown identities look alike"),
			config.Int(prefix, "auth-failure-burst", 10, "failed answers to decoy challenges in a row that lock an unknown IMPI out (403 with Retry-After), as the S-CSCF throttles known ones; -1 disables"),
			config.Duration(prefix, "auth-failure-every", 30e9, "how often one failure of a locked-out unknown IMPI is forgiven"),
			config.Int(prefix, "max-pending-register", DefaultMaxPendingRegister, "REGISTER transactions in progress from which a new initial REGISTER is answered 503 at once; challenge answers and de-registrations are admitted up to twice as many (0: no limit); with --register-admission adaptive, where the limit starts"),
			config.String(prefix, "register-admission", AdmissionAdaptive, "adaptive: the REGISTER admission limit follows the latency of the REGISTER transactions (grows while they do not slow down, shrinks when they queue); fixed: --max-pending-register"),
			config.String(prefix, "gruu-secret", "", "the S-CSCFs' --gruu-secret: requests to their temporary GRUUs (RFC 5627) get the LIR of the IMPU sealed in them; empty: such requests get 404"),
			config.Int(prefix, "overload-retry-after", DefaultOverloadRetryAfter, "Retry-After in seconds of the 503 sent to REGISTERs refused by --max-pending-register (at least 1)"),
		}, config.SIPLimitFlags(prefix)...),
		Validate: func(c *cli.Context) error {
			_, err := configFromCLI(c)
			return err
		},
		Run: func(ctx context.Context, rt *config.Runtime) error {
			cfg, err := configFromCLI(rt.CLI)
			if err != nil {
				return err
			}
			cfg.Logger = rt.Log
			cfg.Registerer = rt.Admin.Registry
			s, err := New(cfg)
			if err != nil {
				return err
			}
			if err := s.Start(ctx); err != nil {
				return err
			}
			defer s.Close()
			rt.Admin.AddReadyCheck("hss", s.Ready)
			rt.Admin.MarkStarted()
			<-ctx.Done()
			return nil
		},
	}
}

// configFromCLI builds a Config from the flags and checks it.
func configFromCLI(c *cli.Context) (Config, error) {
	cfg := Config{
		SIPListen:      c.String("sip-listen"),
		SIPHost:        c.String("sip-host"),
		Aliases:        c.StringSlice("sip-alias"),
		Domain:         c.String("domain"),
		OriginHost:     c.String("origin-host"),
		HSSAddr:        c.String("hss-addr"),
		HSSHost:        c.String("hss-host"),
		HSSStandbyAddr: c.String("hss-standby-addr"),
		HSSStandbyHost: c.String("hss-standby-host"),
		CxTimeout:      c.Duration("cx-timeout"),
		SIPTimeout:     c.Duration("sip-timeout"),

		RevealUnknownUsers: c.Bool("reveal-unknown-users"),
		HideWarnings:       c.Bool("hide-warnings"),
		AuthFailureBurst:   c.Int("auth-failure-burst"),
		AuthFailureEvery:   c.Duration("auth-failure-every"),
		GRUUSecret:         c.String("gruu-secret"),
	}
	cfg.SIPLimits.MaxMessageBytes, cfg.SIPLimits.MaxHeaders, cfg.SIPLimits.Backlog = config.SIPLimits(c)
	scscfs, resolve := c.StringSlice("scscf"), c.StringSlice("resolve")
	if len(scscfs) == 0 {
		// The lab's S-CSCF, named in the configured home domain so that one
		// --domain (IMS_DOMAIN) changes every function consistently.
		scscfs = []string{LabSCSCF(cfg.Domain)}
		if len(resolve) == 0 {
			resolve = []string{LabResolve(cfg.Domain)}
		}
	}
	for _, v := range scscfs {
		sc, err := ParseSCSCF(v)
		if err != nil {
			return cfg, err
		}
		cfg.SCSCFs = append(cfg.SCSCFs, sc)
	}
	r, err := ParseResolve(resolve)
	if err != nil {
		return cfg, err
	}
	cfg.Resolve = r
	if cfg.CxTimeout <= 0 || cfg.SIPTimeout <= 0 {
		return cfg, fmt.Errorf("icscf: timeouts must be positive")
	}
	if cfg.MaxPendingRegister, err = config.PendingLimit(c, "max-pending-register"); err != nil {
		return cfg, fmt.Errorf("icscf: %w", err)
	}
	cfg.RegisterAdmission = c.String("register-admission")
	cfg.OverloadRetryAfter = c.Int("overload-retry-after")
	if cfg.OverloadRetryAfter < 1 {
		return cfg, fmt.Errorf("icscf: --overload-retry-after %d: want at least 1 (seconds)", cfg.OverloadRetryAfter)
	}
	check := cfg
	if err := check.setDefaults(); err != nil {
		return cfg, err
	}
	return cfg, nil
}
