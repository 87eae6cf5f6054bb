package icscf

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
)

// cxAnswer is what the I-CSCF needs from a UAA or LIA (TS 29.228 §6.1.1.2,
// §6.1.4.2).
type cxAnswer struct {
	code         uint32 // Result-Code or Experimental-Result-Code
	experimental bool
	serverName   string
	mandatory    []uint32
	optional     []uint32
	names        []string // Server-Name inside Server-Capabilities
	capsPresent  bool     // Server-Capabilities was present
}

func (a *cxAnswer) success() bool { return a.code >= 2000 && a.code < 3000 }

// resultLabel is the metric label of an answer: "2001", "e5001" for an
// Experimental-Result-Code.
func (a *cxAnswer) resultLabel() string {
	if a.experimental {
		return "e" + strconv.FormatUint(uint64(a.code), 10)
	}
	return strconv.FormatUint(uint64(a.code), 10)
}

// cxError is a failure to get an answer from the HSS at all.
type cxError struct {
	kind string // "timeout" or "unreachable"
	err  error
}

func (e *cxError) Error() string { return e.kind + ": " + e.err.Error() }
func (e *cxError) Unwrap() error { return e.err }

// send sends a Cx request and parses the answer, recording metrics.
func (s *Server) send(ctx context.Context, cmdName string, req *diam.Message) (*cxAnswer, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.CxTimeout)
	defer cancel()
	start := time.Now()
	ans, err := s.node.Send(ctx, req)
	s.metrics.cxDuration.WithLabelValues(cmdName).Observe(time.Since(start).Seconds())
	if err != nil {
		kind := "unreachable"
		if errors.Is(err, context.DeadlineExceeded) {
			kind = "timeout"
		}
		s.metrics.cxResults.WithLabelValues(cmdName, kind).Inc()
		return nil, &cxError{kind: kind, err: err}
	}
	a := parseCxAnswer(ans)
	s.metrics.cxResults.WithLabelValues(cmdName, a.resultLabel()).Inc()
	return a, nil
}

func parseCxAnswer(m *diam.Message) *cxAnswer {
	a := &cxAnswer{}
	code, exp, ok := diameter.Result(m)
	if !ok {
		// An answer without a result is malformed: treat it as a back-end
		// failure (5012), never as success.
		code, exp = diameter.DiameterUnableToComply, false
	}
	a.code, a.experimental = code, exp
	a.serverName = diameter.String(m, diameter.AVPServerName)
	for _, sc := range diameter.FindAll(m, diameter.AVPServerCapabilities) {
		a.capsPresent = true
		for _, c := range diameter.Children(sc) {
			switch diameter.IdentityOf(c) {
			case diameter.AVPMandatoryCapability:
				if v, ok := diameter.AsUint32(c); ok {
					a.mandatory = append(a.mandatory, v)
				}
			case diameter.AVPOptionalCapability:
				if v, ok := diameter.AsUint32(c); ok {
					a.optional = append(a.optional, v)
				}
			case diameter.AVPServerName:
				if v, ok := diameter.AsString(c); ok && v != "" {
					a.names = append(a.names, v)
				}
			}
		}
	}
	return a
}

// uar sends a User-Authorization-Request (TS 29.228 §6.1.1, TS 29.229
// §6.1.1) for impu/impi from visited network vnid with authorization type
// uat.
func (s *Server) uar(ctx context.Context, impu, impi, vnid string, uat uint32) (*cxAnswer, error) {
	req := s.node.NewRequest(diameter.CmdUserAuthorization, diameter.AppCx, s.cfg.Domain, "")
	req.AddAVP(diameter.NewAVP(diameter.AVPUserName, datatype.UTF8String(impi)))
	req.AddAVP(diameter.NewAVP(diameter.AVPPublicIdentity, datatype.UTF8String(impu)))
	req.AddAVP(diameter.NewAVP(diameter.AVPVisitedNetworkIdentifier, datatype.OctetString(vnid)))
	req.AddAVP(diameter.NewAVP(diameter.AVPUserAuthorizationType, datatype.Enumerated(int32(uat))))
	return s.send(ctx, "UAR", req)
}

// lir sends a Location-Info-Request (TS 29.228 §6.1.4, TS 29.229 §6.1.7)
// for impu; capabilities asks the HSS for Server-Capabilities
// (User-Authorization-Type REGISTRATION_AND_CAPABILITIES) after the
// S-CSCF it named did not answer.
func (s *Server) lir(ctx context.Context, impu string, capabilities bool) (*cxAnswer, error) {
	req := s.node.NewRequest(diameter.CmdLocationInfo, diameter.AppCx, s.cfg.Domain, "")
	req.AddAVP(diameter.NewAVP(diameter.AVPPublicIdentity, datatype.UTF8String(impu)))
	if capabilities {
		req.AddAVP(diameter.NewAVP(diameter.AVPUserAuthorizationType, datatype.Enumerated(int32(diameter.UATRegistrationAndCapabilities))))
	}
	return s.send(ctx, "LIR", req)
}

// sipError is the SIP response the I-CSCF sends for a Cx outcome that
// ends the request.
type sipError struct {
	code    int
	reason  string
	warning string // text of Warning: 399 <host> "..."; "" for none
}

func (e *sipError) Error() string { return fmt.Sprintf("%d %s: %s", e.code, e.reason, e.warning) }

// hssFailure maps a failure to reach the HSS (TS 24.229 §5.3.1.2: the
// I-CSCF answers 480 or 5xx; never 403 for a back-end failure).
func (s *Server) hssFailure(cmd string, err error) *sipError {
	var ce *cxError
	kind := "unreachable"
	if errors.As(err, &ce) {
		kind = ce.kind
	}
	if kind == "timeout" {
		return &sipError{504, "Server Time-out", fmt.Sprintf("HSS %s did not answer the %s within %s", s.cfg.HSSHost, cmd, s.cfg.CxTimeout)}
	}
	return &sipError{504, "Server Time-out", fmt.Sprintf("HSS %s unreachable for %s (%v)", s.cfg.HSSHost, cmd, err)}
}

// uaaError maps an unsuccessful UAA to SIP (docs/icscf.md, TS 29.228
// §6.1.1.2, TS 24.229 §5.3.1.2).
func (s *Server) uaaError(a *cxAnswer) *sipError {
	if a.experimental {
		switch a.code {
		case diameter.DiameterErrorUserUnknown:
			return &sipError{403, "Forbidden - Unknown User", "user unknown: the HSS does not know the public or private identity (UAA DIAMETER_ERROR_USER_UNKNOWN 5001)"}
		case diameter.DiameterErrorIdentitiesDontMatch:
			return &sipError{403, "Forbidden - Identities Do Not Match", "the private and public identities do not belong together (UAA DIAMETER_ERROR_IDENTITIES_DONT_MATCH 5002)"}
		case diameter.DiameterErrorRoamingNotAllowed:
			return &sipError{403, "Forbidden - Roaming Not Allowed", "roaming not allowed from this visited network (UAA DIAMETER_ERROR_ROAMING_NOT_ALLOWED 5004)"}
		}
	} else if a.code == diameter.DiameterAuthorizationRejected {
		return &sipError{403, "Forbidden - Authorization Rejected", "registration not authorized (UAA DIAMETER_AUTHORIZATION_REJECTED 5003)"}
	}
	return s.backendError("UAA", a)
}

// liaError maps an unsuccessful LIA to SIP (TS 29.228 §6.1.4.2, TS 24.229
// §5.3.2.1).
func (s *Server) liaError(a *cxAnswer) *sipError {
	if a.experimental {
		switch a.code {
		case diameter.DiameterErrorUserUnknown:
			return &sipError{404, "Not Found", "the HSS does not know this public identity (LIA DIAMETER_ERROR_USER_UNKNOWN 5001)"}
		case diameter.DiameterErrorIdentityNotRegistered:
			return &sipError{480, "Temporarily Unavailable", "the public identity is not registered and has no unregistered services (LIA DIAMETER_ERROR_IDENTITY_NOT_REGISTERED 5003)"}
		}
	}
	return s.backendError("LIA", a)
}

// backendError is any other result: a failure of the HSS side, 500 with a
// Warning naming the HSS (5xx busy/unable-to-deliver: 504).
func (s *Server) backendError(cmd string, a *cxAnswer) *sipError {
	kind := "Result-Code"
	if a.experimental {
		kind = "Experimental-Result-Code"
	}
	text := fmt.Sprintf("HSS %s answered %s %s %d", s.cfg.HSSHost, cmd, kind, a.code)
	if !a.experimental {
		switch a.code {
		case diameter.DiameterUnableToDeliver, diameter.DiameterTooBusy, diameter.DiameterRealmNotServed:
			return &sipError{504, "Server Time-out", text}
		}
	}
	if a.success() {
		text += " without a usable S-CSCF"
	}
	return &sipError{500, "Server Internal Error", text}
}
