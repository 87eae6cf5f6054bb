// Package hss is the Home Subscriber Server of the IMS core: subscriber data
// in PostgreSQL, served over Cx (TS 29.228/29.229) and Sh (TS 29.328/29.329).
package hss

import (
	"context"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/config"
)

// Function returns the command-line definition of the hss binary.
func Function() config.Function {
	return config.Function{
		Name:      "hss",
		Prefix:    "HSS",
		Usage:     "HSS: subscriber database serving Cx and Sh over Diameter",
		AdminAddr: "127.0.0.1:9868",
		Flags: []cli.Flag{
			config.String("HSS", "diameter-listen", "127.0.0.1:3868", "Diameter listen address (TCP)"),
			config.String("HSS", "domain", config.DefaultDomain, "home domain and Diameter realm"),
			config.DatabaseURL("HSS"),
		},
		Run: func(ctx context.Context, rt *config.Runtime) error {
			rt.Log.Info("configured", zap.String("diameter-listen", rt.CLI.String("diameter-listen")))
			<-ctx.Done()
			return nil
		},
	}
}
