package icscf

import (
	"fmt"
	"time"

	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/diameter"
)

// observeCx records a Cx exchange in icscf_cx_request_duration_seconds and
// icscf_cx_results_total{command,result} (result: "2001", "e2001",
// "e5001", "timeout", "unreachable", "no_result").
func (s *Server) observeCx(cmd string, took time.Duration, label string, _ bool) {
	s.metrics.cxDuration.WithLabelValues(cmd).Observe(took.Seconds())
	s.metrics.cxResults.WithLabelValues(cmd, label).Inc()
}

// cxFailure maps a failed UAR or LIR to the SIP answer: the HSS's own
// answer through answered (uaaError or liaError), no answer at all through
// hssFailure.
func (s *Server) cxFailure(cmd string, err error, answered func(*cxclient.Error) *sipError) *sipError {
	if ce, ok := cxclient.AsError(err); ok && ce.Answered() {
		return answered(ce)
	}
	return s.hssFailure(cmd, err)
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
	if ce, ok := cxclient.AsError(err); ok && ce.TimedOut() {
		return &sipError{504, "Server Time-out", fmt.Sprintf("HSS %s did not answer the %s within %s", s.cfg.HSSHost, cmd, s.cfg.CxTimeout)}
	}
	return &sipError{504, "Server Time-out", fmt.Sprintf("HSS %s unreachable for %s (%v)", s.cfg.HSSHost, cmd, err)}
}

// uaaError maps an unsuccessful UAA to SIP (docs/icscf.md, TS 29.228
// §6.1.1.2, TS 24.229 §5.3.1.2).
func (s *Server) uaaError(a *cxclient.Error) *sipError {
	if a.Experimental {
		switch a.Code {
		case diameter.DiameterErrorUserUnknown:
			return &sipError{403, "Forbidden - Unknown User", "user unknown: the HSS does not know the public or private identity (UAA DIAMETER_ERROR_USER_UNKNOWN 5001)"}
		case diameter.DiameterErrorIdentitiesDontMatch:
			return &sipError{403, "Forbidden - Identities Do Not Match", "the private and public identities do not belong together (UAA DIAMETER_ERROR_IDENTITIES_DONT_MATCH 5002)"}
		case diameter.DiameterErrorRoamingNotAllowed:
			return &sipError{403, "Forbidden - Roaming Not Allowed", "roaming not allowed from this visited network (UAA DIAMETER_ERROR_ROAMING_NOT_ALLOWED 5004)"}
		case diameter.DiameterErrorIdentityNotRegistered:
			// The HSS's answer to a de-REGISTER of an IMPU that is not
			// registered (TS 29.228 §6.1.1.1 step 5): the UE's request, not
			// the core, is at fault; 403 as Kamailio's I-CSCF answers.
			return &sipError{403, "Forbidden - Not Registered", "the public identity is not registered (UAA DIAMETER_ERROR_IDENTITY_NOT_REGISTERED 5003)"}
		}
	} else if a.Code == diameter.DiameterAuthorizationRejected {
		return &sipError{403, "Forbidden - Authorization Rejected", "registration not authorized (UAA DIAMETER_AUTHORIZATION_REJECTED 5003)"}
	}
	return s.backendError("UAA", a)
}

// liaError maps an unsuccessful LIA to SIP (TS 29.228 §6.1.4.2, TS 24.229
// §5.3.2.1).
func (s *Server) liaError(a *cxclient.Error) *sipError {
	if a.Experimental {
		switch a.Code {
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
func (s *Server) backendError(cmd string, a *cxclient.Error) *sipError {
	kind := "Result-Code"
	if a.Experimental {
		kind = "Experimental-Result-Code"
	}
	text := fmt.Sprintf("HSS %s answered %s %s %d", s.cfg.HSSHost, cmd, kind, a.Code)
	if !a.Experimental {
		switch a.Code {
		case diameter.DiameterUnableToDeliver, diameter.DiameterTooBusy, diameter.DiameterRealmNotServed:
			return &sipError{504, "Server Time-out", text}
		}
	}
	return &sipError{500, "Server Internal Error", text}
}
