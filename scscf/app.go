// Package scscf is the S-CSCF of the IMS core.
package scscf

import (
	"context"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/config"
)

// Function returns the command-line definition of the scscf binary.
//
// At this stage the binary validates its configuration, serves the admin
// HTTP port and waits for SIGTERM; its SIP logic lands with its own issue.
func Function() config.Function {
	return config.Function{
		Name:      "scscf",
		Prefix:    "SCSCF",
		Usage:     "S-CSCF: registrar, authentication and session control, TS 24.229 §5.4",
		AdminAddr: "127.0.0.1:9080",
		Flags: []cli.Flag{
			config.String("SCSCF", "sip-listen", "127.0.0.1:5080", "SIP listen address (UDP and TCP)"),
			config.String("SCSCF", "domain", config.DefaultDomain, "home domain and Diameter realm"),
		},
		Run: func(ctx context.Context, rt *config.Runtime) error {
			rt.Log.Info("configured", zap.String("sip-listen", rt.CLI.String("sip-listen")), zap.String("domain", rt.CLI.String("domain")))
			<-ctx.Done()
			return nil
		},
	}
}
