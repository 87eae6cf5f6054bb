// Package config gives every binary of the IMS core the same command-line
// shape: urfave/cli v2 flags, each with an environment-variable twin under
// one prefix per binary (PCSCF_, ICSCF_, SCSCF_, HSS_, IMSCTL_), the common
// logging and admin flags, a --check that validates the configuration and
// exits, and a run function that stops cleanly on SIGTERM/SIGINT.
package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/admin"
	"github.com/imscore/imscore/pkg/logging"
	"github.com/imscore/imscore/pkg/memlimit"
	"github.com/imscore/imscore/pkg/procs"
	"github.com/imscore/imscore/pkg/version"
)

// DefaultDomain is the home domain and Diameter realm of the loopback lab.
const DefaultDomain = "ims.mnc001.mcc001.3gppnetwork.org"

// DefaultDatabaseURL is where the HSS, imsctl and the S-CSCF find PostgreSQL
// when DATABASE_URL is not set.
const DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/ims?sslmode=disable"

// Env returns the environment-variable twin of a flag: prefix "PCSCF" and
// flag "sip-listen" give "PCSCF_SIP_LISTEN".
func Env(prefix, flag string) string {
	return strings.ToUpper(prefix + "_" + strings.ReplaceAll(flag, "-", "_"))
}

// String declares a string flag with its environment twin.
func String(prefix, name, value, usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: name, Value: value, Usage: usage, EnvVars: []string{Env(prefix, name)}}
}

// Strings declares a repeatable string flag (also comma-separated in the
// environment twin).
func Strings(prefix, name string, value []string, usage string) *cli.StringSliceFlag {
	return &cli.StringSliceFlag{Name: name, Value: cli.NewStringSlice(value...), Usage: usage, EnvVars: []string{Env(prefix, name)}}
}

// Int declares an integer flag with its environment twin.
func Int(prefix, name string, value int, usage string) *cli.IntFlag {
	return &cli.IntFlag{Name: name, Value: value, Usage: usage, EnvVars: []string{Env(prefix, name)}}
}

// Bool declares a boolean flag with its environment twin.
func Bool(prefix, name string, value bool, usage string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: name, Value: value, Usage: usage, EnvVars: []string{Env(prefix, name)}}
}

// Duration declares a duration flag ("30s", "5m") with its environment twin.
func Duration(prefix, name string, value time.Duration, usage string) *cli.DurationFlag {
	return &cli.DurationFlag{Name: name, Value: value, Usage: usage, EnvVars: []string{Env(prefix, name)}}
}

// DatabaseURL declares the --database-url flag, read from DATABASE_URL (the
// variable shared by every program) and from the prefixed twin.
func DatabaseURL(prefix string) *cli.StringFlag {
	return &cli.StringFlag{
		Name:    "database-url",
		Value:   DefaultDatabaseURL,
		Usage:   "PostgreSQL connection URL",
		EnvVars: []string{Env(prefix, "database-url"), "DATABASE_URL"},
	}
}

// Runtime is what a function's run callback gets: its parsed flags, a logger
// and the admin HTTP server (already listening), plus a context cancelled on
// SIGTERM/SIGINT.
type Runtime struct {
	CLI   *cli.Context
	Log   *zap.Logger
	Admin *admin.Server
}

// Function describes one binary.
type Function struct {
	Name      string // binary name, e.g. "pcscf"
	Prefix    string // env prefix, e.g. "PCSCF"
	Usage     string // one line
	AdminAddr string // default admin HTTP address, e.g. "127.0.0.1:9060"
	Flags     []cli.Flag
	// Validate checks the configuration (called for --check and before Run);
	// its error is printed and the binary exits non-zero.
	Validate func(c *cli.Context) error
	// Run serves until ctx is cancelled, then returns after a clean stop.
	Run func(ctx context.Context, rt *Runtime) error
}

// App builds the urfave/cli application of a function binary.
func (f Function) App() *cli.App {
	flags := append([]cli.Flag{
		String(f.Prefix, "log-format", "console", "log format: json or console"),
		String(f.Prefix, "log-level", "info", "log level: debug, info, warn, error"),
		String(f.Prefix, "admin-listen", f.AdminAddr, "admin HTTP address for /metrics, /healthz, /readyz and status"),
		Bool(f.Prefix, "admin-pprof", false, "also serve Go profiles under /debug/pprof/ on the admin address (for performance work)"),
		String(f.Prefix, "memory-limit", "auto", "soft memory limit of the Go runtime (GOMEMLIMIT syntax: 512MiB, 2GiB; off: none; auto: GOMEMLIMIT if set, else 80% of the cgroup memory limit, else 1GiB); freed memory is returned to the OS (forced collections kept under 1% of a core)"),
		String(f.Prefix, "procs", "auto", "OS threads running Go code at once (GOMAXPROCS): auto (one while the process uses under 70% of a core, the host's cores or the container's CPU limit when it needs more and the host has a core half idle; GOMAXPROCS if set), max, or a number"),
		&cli.BoolFlag{Name: "check", Usage: "validate the configuration, print it and exit"},
	}, f.Flags...)
	return &cli.App{
		Name:    f.Name,
		Usage:   f.Usage,
		Version: version.Version,
		Flags:   flags,
		Commands: []*cli.Command{{
			Name:  "healthcheck",
			Usage: "exit 0 when the running " + f.Name + " answers /readyz on --admin-listen (for container health checks)",
			Action: func(c *cli.Context) error {
				if err := Probe(c.Context, c.String("admin-listen")); err != nil {
					return cli.Exit(fmt.Sprintf("%s: not ready: %v", f.Name, err), 1)
				}
				return nil
			},
		}},
		Action: func(c *cli.Context) error {
			log, err := logging.New(c.String("log-format"), c.String("log-level"))
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			defer func() { _ = log.Sync() }()
			if f.Validate != nil {
				if err := f.Validate(c); err != nil {
					return cli.Exit(fmt.Sprintf("%s: invalid configuration: %v", f.Name, err), 2)
				}
			}
			limit, limitFrom, err := memlimit.Set(c.String("memory-limit"))
			if err != nil {
				return cli.Exit(fmt.Sprintf("%s: invalid configuration: --memory-limit: %v", f.Name, err), 2)
			}
			procsMode, err := procs.Parse(c.String("procs"))
			if err != nil {
				return cli.Exit(fmt.Sprintf("%s: invalid configuration: --procs: %v", f.Name, err), 2)
			}
			if c.Bool("check") {
				PrintConfig(c.App.Writer, c)
				fmt.Fprintf(c.App.Writer, "%s %s: configuration OK\n", f.Name, version.Version)
				return nil
			}
			ctx, stop := signal.NotifyContext(c.Context, syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			go memlimit.ReturnFreed(ctx, time.Second, log)
			nprocs, maxProcs := procs.Apply(procsMode)
			if procsMode.Auto {
				go procs.Adapt(ctx, maxProcs, time.Second, log)
			}
			adm := admin.New(log)
			if c.Bool("admin-pprof") {
				adm.EnablePprof()
			}
			if err := adm.Start(c.String("admin-listen")); err != nil {
				return cli.Exit(err.Error(), 1)
			}
			defer func() {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = adm.Shutdown(sctx)
			}()
			log.Info("starting", zap.String("function", f.Name), zap.String("version", version.Version),
				zap.String("memory_limit", memlimit.String(limit)), zap.String("memory_limit_from", limitFrom),
				zap.Int("procs", nprocs), zap.Int("procs_max", maxProcs), zap.String("procs_from", procsMode.From))
			err = f.Run(ctx, &Runtime{CLI: c, Log: log, Admin: adm})
			if err != nil && ctx.Err() != nil {
				// SIGTERM while starting (e.g. during migrations) cuts the
				// start-up short: that is a requested stop, not a failure.
				log.Info("stopped while starting", zap.Error(err))
				err = nil
			}
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Error("stopped with error", zap.Error(err))
				return cli.Exit(err.Error(), 1)
			}
			log.Info("stopped", zap.String("function", f.Name))
			return nil
		},
	}
}

// Main runs the function binary with os.Args and exits with its status.
func (f Function) Main() {
	if err := f.App().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// PrintConfig writes every flag's effective value, one "name = value" per
// line in name order; values of flags whose name mentions a password or a
// secret or ends in -token, and the password of a database URL, are masked.
func PrintConfig(w io.Writer, c *cli.Context) {
	names := c.FlagNames()
	sort.Strings(names)
	for _, n := range names {
		if n == "check" || n == "help" || n == "version" {
			continue
		}
		v := fmt.Sprint(c.Value(n))
		if s, ok := c.Value(n).(cli.StringSlice); ok {
			v = strings.Join(s.Value(), ",")
		}
		if strings.Contains(n, "password") || strings.Contains(n, "secret") || strings.HasSuffix(n, "-token") {
			v = "****"
		}
		if u, err := url.Parse(v); err == nil && u.User != nil {
			v = u.Redacted()
		}
		fmt.Fprintf(w, "%s = %s\n", n, v)
	}
}

// Probe asks the admin server at addr ("0.0.0.0:9868" means this host) for
// /readyz and returns nil only on 200 OK; the error carries the body, which
// names the failing readiness checks.
func Probe(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("admin address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/readyz", nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", res.Status, strings.TrimSpace(string(body)))
	}
	return nil
}

// HideWarnings declares --hide-warnings, shared by the three CSCFs: no
// Warning header (RFC 3261 §20.43) in any SIP response the function
// sends, so that UEs learn no internal host names or Diameter result
// codes; the details stay in the logs. Also read from IMS_HIDE_WARNINGS,
// which the compose file sets for every function.
func HideWarnings(prefix string) *cli.BoolFlag {
	return &cli.BoolFlag{
		Name:    "hide-warnings",
		Usage:   "send no Warning headers (internal host names, Diameter result codes) in SIP responses; details stay in the logs",
		EnvVars: []string{Env(prefix, "hide-warnings"), "IMS_HIDE_WARNINGS"},
	}
}
