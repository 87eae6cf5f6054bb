// Package scscf is the S-CSCF of the IMS core: the Server (SIP socket,
// Diameter node towards the HSS, database, timers), its Config and flags
// (Function), and the wiring of the packages that hold each concern:
//   - scscf/registrar: the registrar and authentication (TS 24.229
//     §5.4.1, TS 29.228 §6.1.2/§6.3, TS 33.203), Cx MAR/SAR through
//     pkg/cxclient, RTR/PPR, expiry, the scscf_registration rows;
//   - scscf/isc: session routing (TS 24.229 §5.4.3: originating and
//     terminating requests, iFC evaluation and ISC routing to application
//     servers with ODI tokens, TS 23.218 §6, RFC 5502 P-Served-User) and
//     third-party registration (TS 24.229 §5.4.1.7);
//   - scscf/regevent: the reg event notifier (RFC 3680, TS 24.229
//     §5.4.2.1) and its scscf_reg_subscription rows;
//   - scscf/binding: the binding model they share.
//
// The Server dispatches REGISTER to the registrar and every other request
// to session routing, fans the registrar's changes out to the listeners
// (the notifier, third-party registration, Config.OnRegistrationChange)
// and owns the schema (migrations/, store.go) that the registrar and the
// notifier write to.
package scscf

import (
	"context"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/config"
)

// Function returns the command-line definition of the scscf binary.
func Function() config.Function {
	const p = "SCSCF"
	return config.Function{
		Name:      "scscf",
		Prefix:    p,
		Usage:     "S-CSCF: registrar, authentication and session control, TS 24.229 §5.4",
		AdminAddr: "127.0.0.1:9080",
		Flags: append([]cli.Flag{
			config.String(p, "sip-listen", "127.0.0.1:5080", "SIP listen address (UDP and TCP)"),
			config.String(p, "sip-host", "", "host in Via, Service-Route and Warning (default: host of --sip-listen)"),
			config.String(p, "domain", config.DefaultDomain, "home domain, digest realm and Diameter realm"),
			config.String(p, "server-name", "", "Server-Name in MAR/SAR (default sip:scscf.<domain>:<sip port>); must match the HSS/I-CSCF"),
			config.String(p, "origin-host", "", "Diameter Origin-Host (default scscf.<domain>)"),
			config.String(p, "hss-addr", "127.0.0.1:3868", "HSS Diameter address (TCP)"),
			config.String(p, "hss-host", "", "HSS Diameter Origin-Host (default hss.<domain>)"),
			config.String(p, "hss-standby-addr", "", "a standby HSS Diameter address (TCP), used while the primary fails its watchdog (RFC 3539 fail-over and fail-back); empty: none"),
			config.String(p, "hss-standby-host", "", "the standby HSS's Diameter Origin-Host (default: --hss-host)"),
			config.Duration(p, "hss-timeout", 5e9, "timeout of one MAR/SAR"),
			config.DatabaseURL(p),
			config.Duration(p, "min-expires", 60e9, "shortest registration accepted (shorter: 423 with Min-Expires)"),
			config.Duration(p, "max-expires", 3600e9, "longest registration granted (longer requests are lowered)"),
			config.Duration(p, "default-expires", 600e9, "registration time when the REGISTER names none"),
			config.Int(p, "vectors-per-mar", 2, "SIP-Number-Auth-Items per MAR (1..16); spare vectors are cached per IMPI, each used once"),
			config.Duration(p, "nonce-lifetime", 60e9, "how long a challenge's nonce is accepted"),
			config.Duration(p, "challenge-timeout", 30e9, "unanswered challenge age that triggers SAR AUTHENTICATION_TIMEOUT"),
			config.Duration(p, "vector-lifetime", 300e9, "how long unused vectors stay cached"),
			config.HideWarnings(p),
			config.Int(p, "auth-failure-burst", 10, "wrong authentication responses in a row that lock an IMPI out (403 with Retry-After); -1 disables"),
			config.Duration(p, "auth-failure-every", 30e9, "how often one failed authentication of a locked-out IMPI is forgiven (its next try)"),
			config.String(p, "icscf", "sip:127.0.0.1:5070", "I-CSCF URI (loose Route) for originating requests to home-domain targets"),
			config.String(p, "breakout", "", "URI (loose Route) for targets in other domains (BGCF/IBCF); empty: 404"),
			config.String(p, "tel-uris", TelHome, `routing of tel: targets: "home" (I-CSCF, LIR) or "breakout"`),
			config.String(p, "shared-ifc-sets", "", "file of shared iFC sets (XML, see docs/scscf.md); empty: none"),
			config.Bool(p, "orig-identity-from-header", false, "serve originating requests without P-Asserted-Identity as their From identity (labs without a P-CSCF)"),
			config.Duration(p, "as-timeout", 2e9, "silence of an AS after which its iFC's default handling applies"),
			config.Duration(p, "odi-lifetime", 200e9, "how long an ODI token routes a request from an AS back into the iFC chain"),
			config.String(p, "gruu-secret", "", "secret (16 bytes or more) sealing the temporary GRUUs (RFC 5627); the same on every S-CSCF and I-CSCF, kept across restarts; empty: public GRUUs only"),
			config.String(p, "reauth-protected", ReauthRegistered, `integrity-protected re-REGISTER policy: "registered" (no new challenge when the IMPI and its contacts are registered) or "always"`),
		}, config.SIPLimitFlags(p)...),
		Validate: func(c *cli.Context) error {
			_, err := New(configFrom(c))
			return err
		},
		Run: func(ctx context.Context, rt *config.Runtime) error {
			cfg := configFrom(rt.CLI)
			cfg.Logger = rt.Log
			cfg.Registry = rt.Admin.Registry
			s, err := New(cfg)
			if err != nil {
				return err
			}
			rt.Admin.AddReadyCheck("hss", s.Ready)
			rt.Admin.HandleJSON("/status/registrar", s.Status)
			sv, err := attachServices(s)
			if err != nil {
				return err
			}
			defer sv.close()
			if err := s.Start(ctx); err != nil {
				return err
			}
			if err := sv.start(ctx); err != nil {
				_ = s.Close()
				return err
			}
			rt.Admin.MarkStarted()
			rt.Log.Info("ready to serve", zap.String("sip-listen", s.SIPAddr().String()))
			<-ctx.Done()
			return s.Close()
		},
	}
}

func configFrom(c *cli.Context) Config {
	cfg := Config{
		SIPListen: c.String("sip-listen"), SIPHost: c.String("sip-host"), Domain: c.String("domain"),
		ServerName: c.String("server-name"), OriginHost: c.String("origin-host"),
		HSSAddr: c.String("hss-addr"), HSSHost: c.String("hss-host"),
		HSSStandbyAddr: c.String("hss-standby-addr"), HSSStandbyHost: c.String("hss-standby-host"), HSSTimeout: c.Duration("hss-timeout"),
		DatabaseURL: c.String("database-url"),
		MinExpires:  c.Duration("min-expires"), MaxExpires: c.Duration("max-expires"), DefaultExpires: c.Duration("default-expires"),
		VectorsPerMAR: c.Int("vectors-per-mar"), NonceLifetime: c.Duration("nonce-lifetime"),
		ChallengeTimeout: c.Duration("challenge-timeout"), VectorLifetime: c.Duration("vector-lifetime"),
		ReauthProtected:  c.String("reauth-protected"),
		AuthFailureBurst: c.Int("auth-failure-burst"), AuthFailureEvery: c.Duration("auth-failure-every"),
		HideWarnings: c.Bool("hide-warnings"),
		ICSCF:        c.String("icscf"), Breakout: c.String("breakout"), TelURIs: c.String("tel-uris"),
		SharedIFCSetsFile: c.String("shared-ifc-sets"), OrigIdentityFromHeader: c.Bool("orig-identity-from-header"),
		ASTimeout: c.Duration("as-timeout"), ODILifetime: c.Duration("odi-lifetime"),
		GRUUSecret: c.String("gruu-secret"),
	}
	cfg.SIPLimits.MaxMessageBytes, cfg.SIPLimits.MaxHeaders, cfg.SIPLimits.Backlog = config.SIPLimits(c)
	return cfg
}
