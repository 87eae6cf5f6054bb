// Package icscf is the I-CSCF of the IMS core.
package icscf

import (
	"context"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/config"
)

// Function returns the command-line definition of the icscf binary.
//
// At this stage the binary validates its configuration, serves the admin
// HTTP port and waits for SIGTERM; its SIP logic lands with its own issue.
func Function() config.Function {
	return config.Function{
		Name:      "icscf",
		Prefix:    "ICSCF",
		Usage:     "I-CSCF: the home network's entry point, S-CSCF selection via Cx UAR/LIR, TS 24.229 §5.3",
		AdminAddr: "127.0.0.1:9070",
		Flags: []cli.Flag{
			config.String("ICSCF", "sip-listen", "127.0.0.1:5070", "SIP listen address (UDP and TCP)"),
			config.String("ICSCF", "domain", config.DefaultDomain, "home domain and Diameter realm"),
		},
		Run: func(ctx context.Context, rt *config.Runtime) error {
			rt.Log.Info("configured", zap.String("sip-listen", rt.CLI.String("sip-listen")), zap.String("domain", rt.CLI.String("domain")))
			<-ctx.Done()
			return nil
		},
	}
}
