package config

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// Defaults of the SIP listeners' limits, the same as pkg/sipproxy's
// DefaultMaxMessageBytes and DefaultMaxHeaders (its tests check).
const (
	DefaultSIPMaxMessageBytes = 65535
	DefaultSIPMaxHeaders      = 256
	// DefaultSIPBacklog is pkg/sipproxy's DefaultBacklog.
	DefaultSIPBacklog = 0.125
)

// SIPLimitFlags declares the bounds every SIP listener of a CSCF puts on
// what it reads (pkg/sipproxy Limits): --sip-max-message-bytes,
// --sip-max-headers and --sip-backlog.
func SIPLimitFlags(prefix string) []cli.Flag {
	atLeast := func(name string, min int) func(*cli.Context, int) error {
		return func(_ *cli.Context, v int) error {
			if v < min {
				return fmt.Errorf("--%s %d: at least %d", name, v, min)
			}
			return nil
		}
	}
	size := Int(prefix, "sip-max-message-bytes", DefaultSIPMaxMessageBytes,
		"largest SIP message read from the SIP sockets (start line, headers, body); a larger request is answered 513, a larger message on TCP closes the connection")
	size.Action = atLeast("sip-max-message-bytes", 1500)
	headers := Int(prefix, "sip-max-headers", DefaultSIPMaxHeaders,
		"largest number of header fields in a SIP message; a request with more is answered 400")
	headers.Action = atLeast("sip-max-headers", 32)
	backlog := &cli.Float64Flag{Name: "sip-backlog", Value: DefaultSIPBacklog, EnvVars: []string{Env(prefix, "sip-backlog")},
		Usage: "share (0-1) of a UDP socket's receive buffer that unread datagrams may fill before new requests read from it are answered 503 with Retry-After where they are read (overload; requests within dialogs always pass); 0: never"}
	backlog.Action = func(_ *cli.Context, v float64) error {
		if v < 0 || v > 1 {
			return fmt.Errorf("--sip-backlog %g: want 0 (off) to 1", v)
		}
		return nil
	}
	return []cli.Flag{size, headers, backlog}
}

// SIPLimits returns the values of the flags of SIPLimitFlags; backlog is
// as pkg/sipproxy's Limits.Backlog takes it (-1: off).
func SIPLimits(c *cli.Context) (maxMessageBytes, maxHeaders int, backlog float64) {
	backlog = c.Float64("sip-backlog")
	if backlog == 0 {
		backlog = -1
	}
	return c.Int("sip-max-message-bytes"), c.Int("sip-max-headers"), backlog
}

// PendingLimit reads an admission flag whose 0 means "no limit" on the
// command line (flag, e.g. "max-pending") and returns it as the Configs
// of the CSCFs take it: -1 for no limit, else the value. A negative flag
// value is an error naming the flag.
func PendingLimit(c *cli.Context, flag string) (int, error) {
	switch n := c.Int(flag); {
	case n < 0:
		return 0, fmt.Errorf("--%s %d: want 0 (no limit) or more", flag, n)
	case n == 0:
		return -1, nil
	default:
		return n, nil
	}
}
