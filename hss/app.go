// Package hss is the Home Subscriber Server of the IMS core: subscriber data
// in PostgreSQL, served over Cx (TS 29.228/29.229) and Sh (TS 29.328/29.329).
package hss

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/config"
)

// Function returns the command-line definition of the hss binary.
func Function() config.Function {
	return config.Function{
		Name:      "hss",
		Prefix:    "HSS",
		Usage:     "HSS: subscriber database serving Cx and Sh over Diameter",
		AdminAddr: "127.0.0.1:9868",
		Flags: append([]cli.Flag{
			config.String("HSS", "diameter-listen", "127.0.0.1:3868", "Diameter listen address (TCP)"),
			config.String("HSS", "domain", config.DefaultDomain, "home domain and Diameter realm"),
			config.String("HSS", "origin-host", "", "Diameter Origin-Host (default hss.<domain>)"),
			config.Strings("HSS", "peer", nil, "Diameter Origin-Host allowed to connect (repeatable; default icscf., scscf., pcscf.<domain>)"),
			config.Strings("HSS", "as-peer", nil, "Sh application server Origin-Host allowed to connect (repeatable)"),
			config.Bool("HSS", "accept-any-peer", false, "accept every Diameter peer (labs only)"),
			config.DatabaseURL("HSS"),
			config.Int("HSS", "db-conns", 0, "PostgreSQL connections in the pool (0: two per CPU core)"),
			config.Int("HSS", "max-auth-items", 5, "most authentication vectors returned by one MAR (1..64)"),
			config.Int("HSS", "sqn-block", DefaultSQNBlock, "SQNs reserved per IMPI with one durable write, the unused ones kept in memory (1..1024; 1: one write per MAR); a restart skips at most this many SEQ values"),
			config.Int("HSS", "userdata-cache", store.DefaultUserDataCacheEntries, "IMPI/IMPU pairs whose assembled SAR user data is cached, emptied on every NOTIFY hss_userdata (0: off)"),
			config.Int("HSS", "group-commit-lanes", DefaultGroupCommitLanes, "workers that send the Cx hot path's statements of concurrent requests as one batch and one commit (0: off, one statement per request)"),
			config.Duration("HSS", "request-timeout", 2*time.Second, "database budget per Diameter request; beyond it the answer is 5012"),
			config.Duration("HSS", "command-poll", 5*time.Second, "how often pending hss_command rows (RTR/PPR) and the Sh PNR queue are re-examined"),
		}, apiFlags()...),
		Validate: func(c *cli.Context) error {
			if n := c.Int("max-auth-items"); n < 1 || n > 64 {
				return fmt.Errorf("--max-auth-items %d: want 1..64", n)
			}
			if n := c.Int("sqn-block"); n < 1 || n > store.MaxSQNBlock {
				return fmt.Errorf("--sqn-block %d: want 1..%d", n, store.MaxSQNBlock)
			}
			if n := c.Int("group-commit-lanes"); n < 0 || n > store.MaxGroupCommitLanes {
				return fmt.Errorf("--group-commit-lanes %d: want 0 (off) to %d", n, store.MaxGroupCommitLanes)
			}
			if n := c.Int("userdata-cache"); n < 0 {
				return fmt.Errorf("--userdata-cache %d: want 0 (off) or more", n)
			}
			if c.String("domain") == "" {
				return fmt.Errorf("--domain is empty")
			}
			if _, err := pgx.ParseConfig(c.String("database-url")); err != nil {
				return fmt.Errorf("--database-url: %v", err)
			}
			return validateAPI(c)
		},
		Run: run,
	}
}

// DefaultPeers are the lab's I-/S-/P-CSCF identities for domain.
func DefaultPeers(domain string) []string {
	return []string{"icscf." + domain, "scscf." + domain, "pcscf." + domain}
}

func run(ctx context.Context, rt *config.Runtime) error {
	c := rt.CLI
	domain := c.String("domain")
	peers := c.StringSlice("peer")
	if len(peers) == 0 {
		peers = DefaultPeers(domain)
	}
	peers = append(peers, c.StringSlice("as-peer")...)
	s, err := New(Config{
		DiameterListen:   c.String("diameter-listen"),
		OriginHost:       c.String("origin-host"),
		Realm:            domain,
		AllowedPeers:     peers,
		AcceptAnyPeer:    c.Bool("accept-any-peer"),
		DatabaseURL:      c.String("database-url"),
		DBConns:          c.Int("db-conns"),
		MaxAuthItems:     c.Int("max-auth-items"),
		SQNBlock:         c.Int("sqn-block"),
		UserDataCache:    userDataCache(c.Int("userdata-cache")),
		GroupCommitLanes: offIfZero(c.Int("group-commit-lanes")),
		RequestTimeout:   c.Duration("request-timeout"),
		PollInterval:     c.Duration("command-poll"),
		Logger:           rt.Log,
		Registry:         rt.Admin.Registry,
	})
	if err != nil {
		return err
	}
	rt.Admin.AddReadyCheck("hss", s.Ready)
	addr, err := s.Start(ctx)
	if err != nil {
		return err
	}
	if err := startAPI(ctx, c, s, rt); err != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(sctx)
		return err
	}
	rt.Admin.MarkStarted()
	rt.Log.Info("serving Cx and Sh", zap.String("diameter", addr.String()),
		zap.String("origin-host", s.Node.Config().OriginHost), zap.String("peers", strings.Join(peers, ",")))
	if err := s.Ready(ctx); err != nil {
		rt.Log.Warn("database not ready yet; Cx/Sh answer 5012 until it is", zap.Error(err))
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.Close(sctx)
	return nil
}

// userDataCache maps --userdata-cache (0: off) to Config.UserDataCache
// (< 0: off).
func userDataCache(n int) int { return offIfZero(n) }

// offIfZero maps a flag whose 0 means off to a Config field whose 0
// means the default and < 0 off.
func offIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
