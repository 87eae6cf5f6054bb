// Command imsue is an IMS UE for tests and labs (pkg/imsue): IMS AKA with
// Milenage, sec-agree with its own IPsec SAs, registration, calls,
// MESSAGE, the reg event, and many UEs as a load generator. Each step is
// one JSON line on standard output; see docs/softphones.md.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/imscore/imscore/pkg/imsue"
)

func main() {
	if err := app().Run(os.Args); err != nil {
		fmt.Fprintf(os.Stderr, "imsue: %v\n", err)
		os.Exit(1)
	}
}

var out = json.NewEncoder(os.Stdout)

func emit(e imsue.Event) { _ = out.Encode(e) }

func app() *cli.App {
	str := func(name, value, usage string) cli.Flag {
		return &cli.StringFlag{Name: name, Value: value, Usage: usage, EnvVars: []string{"IMSUE_" + envName(name)}}
	}
	return &cli.App{
		Name:  "imsue",
		Usage: "an IMS UE: AKA, IPsec sec-agree, register, call, MESSAGE, reg event, load (one JSON line per step)",
		Flags: []cli.Flag{
			str("impi", "", "private identity (user@realm)"),
			str("impu", "", "public identity (sip:user@domain)"),
			str("k", "", "K, 32 hex digits"),
			str("op", "", "OP, 32 hex digits (or --opc)"),
			str("opc", "", "OPc, 32 hex digits"),
			str("amf", "8000", "AMF, 4 hex digits"),
			&cli.Uint64Flag{Name: "sqn", Usage: "the USIM's SQN_MS at start (a challenge at or below it is answered with AUTS)"},
			str("pcscf", "127.0.0.1:5060", "the P-CSCF's SIP address ip:port"),
			str("local-ip", "", "the UE's address (default: the one towards the P-CSCF)"),
			str("transport", "udp", "udp or tcp (over UDP, requests above 1300 bytes go over TCP)"),
			str("ipsec", "auto", "on, auto (use IPsec when the P-CSCF offers it and this network namespace is not the P-CSCF's) or off"),
			&cli.StringSliceFlag{Name: "alg", Usage: "integrity algorithms offered (hmac-sha-1-96, hmac-md5-96)"},
			&cli.StringSliceFlag{Name: "ealg", Usage: "encryption algorithms offered (null, aes-cbc)"},
			&cli.IntFlag{Name: "port-c", Usage: "protected client port (0: any)"},
			&cli.IntFlag{Name: "port-s", Usage: "protected server port (0: any)"},
			&cli.IntFlag{Name: "expires", Value: 600000, Usage: "Expires of REGISTER"},
			str("netns", "", "run inside this named network namespace (ip netns add NAME); IPsec needs one apart from the P-CSCF's"),
			&cli.DurationFlag{Name: "timeout", Value: 32 * time.Second, Usage: "bound of one transaction"},
		},
		Before: func(c *cli.Context) error {
			if ns := c.String("netns"); ns != "" {
				return imsue.EnterNetns(ns, withoutNetns(os.Args))
			}
			return nil
		},
		Commands: []*cli.Command{
			{Name: "register", Usage: "register, hold, de-register",
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "hold", Usage: "stay registered this long (re-registering over the SA every --reregister)"},
					&cli.DurationFlag{Name: "reregister", Usage: "re-register this often while holding (0: never)"},
					&cli.BoolFlag{Name: "subscribe", Usage: "subscribe to the reg event"},
					&cli.BoolFlag{Name: "stay", Usage: "do not de-register at the end"},
				},
				Action: func(c *cli.Context) error {
					return withUE(c, func(ctx context.Context, u *imsue.UE) error {
						if c.Bool("subscribe") {
							if _, err := u.SubscribeReg(ctx); err != nil {
								return err
							}
						}
						end := time.After(c.Duration("hold"))
						var tick <-chan time.Time
						if d := c.Duration("reregister"); d > 0 {
							t := time.NewTicker(d)
							defer t.Stop()
							tick = t.C
						}
						for {
							select {
							case <-end:
								return nil
							case <-ctx.Done():
								return nil
							case <-tick:
								if err := u.Reregister(ctx); err != nil {
									return err
								}
							}
						}
					})
				}},
			{Name: "call", Usage: "register, call --to, hold --duration, hang up, de-register",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "to", Required: true, Usage: "callee (sip: or tel: URI)"},
					&cli.DurationFlag{Name: "duration", Value: 3 * time.Second, Usage: "how long the call lasts"},
					&cli.IntFlag{Name: "min-size", Usage: "pad the INVITE to at least this many bytes"},
				},
				Action: func(c *cli.Context) error {
					return withUE(c, func(ctx context.Context, u *imsue.UE) error {
						call, err := u.Call(ctx, c.String("to"), imsue.CallOptions{MinSize: c.Int("min-size")})
						if err != nil {
							return err
						}
						select {
						case <-time.After(c.Duration("duration")):
							return call.Hangup(context.Background())
						case <-call.Done():
							return nil
						case <-ctx.Done():
							return call.Hangup(context.Background())
						}
					})
				}},
			{Name: "answer", Usage: "register, subscribe to the reg event, answer calls and print MESSAGEs for --for",
				Flags: []cli.Flag{
					&cli.DurationFlag{Name: "for", Value: time.Minute, Usage: "how long to wait"},
					&cli.DurationFlag{Name: "delay", Usage: "between 180 and 200"},
					&cli.IntFlag{Name: "reject", Usage: "answer calls with this status instead (e.g. 486)"},
				},
				Action: func(c *cli.Context) error {
					return withUE(c, func(ctx context.Context, u *imsue.UE) error {
						u.SetAnswer(imsue.AnswerPolicy{Delay: c.Duration("delay"), Reject: c.Int("reject")})
						if _, err := u.SubscribeReg(ctx); err != nil {
							return err
						}
						select {
						case <-time.After(c.Duration("for")):
						case <-ctx.Done():
						}
						return nil
					})
				}},
			{Name: "message", Usage: "register, send a MESSAGE, de-register",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "to", Required: true, Usage: "recipient (sip: or tel: URI)"},
					&cli.StringFlag{Name: "text", Value: "hello from imsue", Usage: "the text"},
				},
				Action: func(c *cli.Context) error {
					return withUE(c, func(ctx context.Context, u *imsue.UE) error {
						return u.SendMessage(ctx, c.String("to"), c.String("text"))
					})
				}},
			{Name: "load", Usage: "many UEs (--impi/--impu are formats with %d) registering at --rate per second",
				Flags: []cli.Flag{
					&cli.IntFlag{Name: "count", Value: 10, Usage: "how many UEs"},
					&cli.IntFlag{Name: "start", Value: 1, Usage: "number of the first UE"},
					&cli.Float64Flag{Name: "rate", Value: 10, Usage: "registrations started per second"},
					&cli.DurationFlag{Name: "hold", Usage: "stay registered this long before de-registering"},
					&cli.BoolFlag{Name: "calls", Usage: "UE 2k calls UE 2k+1 once registered"},
					&cli.DurationFlag{Name: "call-hold", Value: time.Second, Usage: "length of those calls"},
					&cli.BoolFlag{Name: "quiet", Usage: "print only the summary, not every step"},
				},
				Action: func(c *cli.Context) error {
					base, err := config(c)
					if err != nil {
						return err
					}
					if c.Bool("quiet") {
						base.OnEvent = nil
					}
					ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
					defer stop()
					res := imsue.RunLoad(ctx, imsue.LoadConfig{Base: base, IMPIFormat: c.String("impi"), IMPUFormat: c.String("impu"),
						Start: c.Int("start"), Count: c.Int("count"), Rate: c.Float64("rate"), Hold: c.Duration("hold"),
						Calls: c.Bool("calls"), CallHold: c.Duration("call-hold")})
					_ = out.Encode(map[string]any{"step": "load-summary", "result": res})
					if res.Failed > 0 || res.CallsFailed > 0 {
						return fmt.Errorf("%d of %d registrations and %d of %d calls failed (first errors in the summary)", res.Failed, res.UEs, res.CallsFailed, res.Calls)
					}
					return nil
				}},
		},
	}
}

// withUE builds the UE of the flags, registers it, runs fn, then
// de-registers (unless --stay) and closes it.
func withUE(c *cli.Context, fn func(ctx context.Context, u *imsue.UE) error) error {
	cfg, err := config(c)
	if err != nil {
		return err
	}
	u, err := imsue.New(cfg)
	if err != nil {
		return err
	}
	defer u.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := u.Register(ctx); err != nil {
		return err
	}
	ferr := fn(ctx, u)
	if c.Bool("stay") || !u.Registered() {
		return ferr
	}
	dctx, cancel := context.WithTimeout(context.Background(), cfg.Timeout)
	defer cancel()
	return errors.Join(ferr, u.Deregister(dctx))
}

// config reads the global flags.
func config(c *cli.Context) (imsue.Config, error) {
	cfg := imsue.Config{
		IMPI: c.String("impi"), IMPU: c.String("impu"), SQN: c.Uint64("sqn"),
		PCSCF: c.String("pcscf"), LocalIP: c.String("local-ip"), Transport: c.String("transport"),
		IPsec: c.String("ipsec"), Algs: c.StringSlice("alg"), EAlgs: c.StringSlice("ealg"),
		PortC: c.Int("port-c"), PortS: c.Int("port-s"), Expires: c.Int("expires"), Timeout: c.Duration("timeout"),
		OnEvent: emit,
	}
	var err error
	for _, f := range []struct {
		name string
		dst  *[]byte
		n    int
	}{{"k", &cfg.K, 16}, {"op", &cfg.OP, 16}, {"opc", &cfg.OPc, 16}, {"amf", &cfg.AMF, 2}} {
		v := c.String(f.name)
		if v == "" {
			continue
		}
		if *f.dst, err = hex.DecodeString(v); err != nil || len(*f.dst) != f.n {
			return cfg, fmt.Errorf("--%s must be %d hex digits", f.name, 2*f.n)
		}
	}
	if cfg.K == nil || (cfg.OP == nil) == (cfg.OPc == nil) {
		return cfg, errors.New("give --k and one of --op or --opc")
	}
	return cfg, nil
}

// withoutNetns drops --netns (and its value) from args.
func withoutNetns(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--netns" || a == "-netns":
			i++
		case len(a) > 8 && (a[:8] == "--netns=" || a[:7] == "-netns="):
		default:
			out = append(out, a)
		}
	}
	return slices.Clip(out)
}

func envName(flag string) string {
	b := []byte(flag)
	for i, c := range b {
		switch {
		case c == '-':
			b[i] = '_'
		case c >= 'a' && c <= 'z':
			b[i] = c - 32
		}
	}
	return string(b)
}
