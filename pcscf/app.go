// Package pcscf is the P-CSCF of the IMS core.
package pcscf

import (
	"context"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/config"
)

// Function returns the command-line definition of the pcscf binary.
//
// At this stage the binary validates its configuration, serves the admin
// HTTP port and waits for SIGTERM; its SIP logic lands with its own issue.
func Function() config.Function {
	return config.Function{
		Name:      "pcscf",
		Prefix:    "PCSCF",
		Usage:     "P-CSCF: the UE's first contact point (Gm), TS 24.229 §5.2",
		AdminAddr: "127.0.0.1:9060",
		Flags: []cli.Flag{
			config.String("PCSCF", "sip-listen", "127.0.0.1:5060", "SIP listen address (UDP and TCP)"),
			config.String("PCSCF", "domain", config.DefaultDomain, "home domain and Diameter realm"),
		},
		Run: func(ctx context.Context, rt *config.Runtime) error {
			rt.Log.Info("configured", zap.String("sip-listen", rt.CLI.String("sip-listen")), zap.String("domain", rt.CLI.String("domain")))
			<-ctx.Done()
			return nil
		},
	}
}
