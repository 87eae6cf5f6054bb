// Package cxclient is the Cx client of the I-CSCF and the S-CSCF (TS 29.228
// §6, TS 29.229 §6): it builds UAR, LIR, MAR and SAR, sends them to the HSS
// through a diameter.Node and parses the answers. Both CSCFs use it, so a
// request is built and an answer read in one place, and every failure has
// one shape, *Error, which each CSCF maps to its SIP answer (a user error of
// the HSS → 403/404/480 with a reason; no answer or a back-end failure →
// 5xx, never 403).
//
// One procedure, one file: uar.go, lir.go, mar.go, sar.go.
package cxclient

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"

	"github.com/imscore/imscore/pkg/diameter"
)

// Config configures a Client.
type Config struct {
	Node *diameter.Node // the CSCF's Diameter node, connected to the HSS; required
	// Realm is the Destination-Realm of every request (the home domain).
	Realm string
	// HSSHost is the Destination-Host; "" lets the node route to any open
	// peer of Realm that serves Cx (the I-CSCF's choice).
	HSSHost string
	// ServerName is this S-CSCF's SIP URI, sent as Server-Name in MAR and
	// SAR (TS 29.229 §6.3.6). Unused by the I-CSCF.
	ServerName string
	// Timeout bounds one request/answer exchange; default 2 s.
	Timeout time.Duration
	// Observe, when set, is called once per request with its command name
	// ("UAR"), how long the exchange took, the outcome label (see
	// Error.Label; "2001", "e2001" for a success) and whether it succeeded.
	Observe func(cmd string, took time.Duration, label string, success bool)
}

// Client sends Cx requests. It is safe for concurrent use.
type Client struct{ cfg Config }

// New returns a Client; Node is required.
func New(cfg Config) (*Client, error) {
	if cfg.Node == nil {
		return nil, errors.New("cxclient: Node is required")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	return &Client{cfg: cfg}, nil
}

// Config returns the client's configuration with defaults applied.
func (c *Client) Config() Config { return c.cfg }

// Error is a Cx exchange that did not succeed: either no answer arrived
// (Err is set: no route to an HSS, timeout, connection lost) or the answer's
// Result-Code or Experimental-Result-Code is not in the 2xxx class.
type Error struct {
	Command      string        // "UAR", "LIR", "MAR", "SAR"
	Code         uint32        // Result-Code or Experimental-Result-Code; 0 without an answer
	Experimental bool          // Code is an Experimental-Result-Code (vendor 10415)
	Err          error         // why no usable answer arrived; nil when the HSS answered Code
	Answer       *diam.Message // the answer, when one arrived
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: HSS not reachable: %v", e.Command, e.Err)
	}
	kind := "Result-Code"
	if e.Experimental {
		kind = "Experimental-Result-Code"
	}
	return fmt.Sprintf("%s: HSS answered %s %d", e.Command, kind, e.Code)
}

func (e *Error) Unwrap() error { return e.Err }

// Answered reports whether an answer arrived (with a failure Code, or
// without any result); false for no route, timeout or a lost connection.
func (e *Error) Answered() bool { return e.Answer != nil }

// TimedOut reports whether the HSS did not answer within the timeout.
func (e *Error) TimedOut() bool { return errors.Is(e.Err, context.DeadlineExceeded) }

// Is3GPP reports whether the HSS answered Experimental-Result-Code code
// (e.g. diameter.DiameterErrorUserUnknown).
func (e *Error) Is3GPP(code uint32) bool { return e.Err == nil && e.Experimental && e.Code == code }

// IsBase reports whether the HSS answered Result-Code code.
func (e *Error) IsBase(code uint32) bool { return e.Err == nil && !e.Experimental && e.Code == code }

// Label is the metric label of the outcome: "timeout", "unreachable",
// "no_result" (an answer without a result), "5012" for a Result-Code,
// "e5001" for an Experimental-Result-Code.
func (e *Error) Label() string {
	switch {
	case e.Err != nil && e.Answered():
		return "no_result"
	case e.TimedOut():
		return "timeout"
	case e.Err != nil:
		return "unreachable"
	}
	return resultLabel(e.Code, e.Experimental)
}

// AsError returns err as *Error when it is one.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

func resultLabel(code uint32, experimental bool) string {
	if experimental {
		return "e" + strconv.FormatUint(uint64(code), 10)
	}
	return strconv.FormatUint(uint64(code), 10)
}

// newRequest starts a Cx request (Session-Id, Vendor-Specific-Application-Id,
// Auth-Session-State, Origin-*, Destination-*).
func (c *Client) newRequest(cmd uint32) *diam.Message {
	return c.cfg.Node.NewRequest(cmd, diameter.AppCx, c.cfg.Realm, c.cfg.HSSHost)
}

// exchange sends req and returns its answer when the result is a success;
// otherwise an *Error.
func (c *Client) exchange(ctx context.Context, name string, req *diam.Message) (*diam.Message, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := time.Now()
	ans, err := c.cfg.Node.Send(ctx, req)
	var e *Error
	switch {
	case err != nil:
		e = &Error{Command: name, Err: err}
	default:
		code, exp, ok := diameter.Result(ans)
		switch {
		case !ok:
			// An answer without a result is malformed: a back-end failure
			// (5012), never a success.
			e = &Error{Command: name, Code: diameter.DiameterUnableToComply, Err: errors.New("answer without Result-Code or Experimental-Result"), Answer: ans}
		case code < 2000 || code >= 3000:
			e = &Error{Command: name, Code: code, Experimental: exp, Answer: ans}
		default:
			if c.cfg.Observe != nil {
				c.cfg.Observe(name, time.Since(start), resultLabel(code, exp), true)
			}
			return ans, nil
		}
	}
	if c.cfg.Observe != nil {
		c.cfg.Observe(name, time.Since(start), e.Label(), false)
	}
	return nil, e
}
