package icscf

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/admission"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// Kinds of REGISTER for admission control (the label of
// icscf_overload_rejections_total).
const (
	kindInitial         = "initial"
	kindChallengeAnswer = "challenge_answer"
)

// overloadLogEvery bounds the warning logged while REGISTERs are shed.
const overloadLogEvery = 10 * time.Second

// overload is the REGISTER admission control (docs/icscf.md, "Overload"):
// the limiter and what the warning log of refusals needs.
type overload struct {
	limiter *admission.Limiter
	lastLog atomic.Int64 // unix nanoseconds of the last overload warning
	shed    atomic.Int64 // rejections since that warning
}

// registerKind classifies a REGISTER: a challenge answer carries a Digest
// Authorization with a non-empty response (TS 24.229 §5.3.1.2: after the
// S-CSCF's 401, which already cost it a MAR); a de-registration (every
// Contact expires now) is treated like one. Anything else, including an
// Authorization with response="" or one that does not parse, is initial.
func registerKind(req *sip.Request) string {
	if registrationType(req) == diameter.UATDeRegistration {
		return kindChallengeAnswer
	}
	hs, err := digest.GetAll(req, digest.HeaderAuthorization)
	if err != nil {
		return kindInitial
	}
	for _, h := range hs {
		if h.Response() != "" {
			return kindChallengeAnswer
		}
	}
	return kindInitial
}

// admitRegister takes a slot for a REGISTER of kind (challenge answers
// get twice the limit). It returns ok and a release func to defer, or !ok
// and the number of REGISTER transactions already pending when the
// request must be refused.
func (o *overload) admitRegister(kind string) (release func(), pending int64, ok bool) {
	factor := int64(1)
	if kind == kindChallengeAnswer {
		factor = 2
	}
	return o.limiter.Admit(factor)
}

// refuseOverload answers a REGISTER that was not admitted at once, before
// any UAR: 503 with Retry-After (RFC 3261 §21.5.4, §20.33) and a Warning
// saying why. It is the cheap path of an overloaded I-CSCF: one log line
// per overloadLogEvery, the rest at debug level.
func (s *Server) refuseOverload(t *sipproxy.Txn, kind string, pending int64) int {
	s.metrics.overloadRejections.WithLabelValues(kind).Inc()
	text := fmt.Sprintf("overload: %d REGISTER transactions pending (limit %d, %s)", pending, s.admission.limiter.Limit(), s.cfg.RegisterAdmission)
	shed := s.admission.shed.Add(1)
	now := time.Now().UnixNano()
	if last := s.admission.lastLog.Load(); now-last >= int64(overloadLogEvery) && s.admission.lastLog.CompareAndSwap(last, now) {
		s.admission.shed.Add(-shed)
		s.log.Warn("overload: refusing REGISTERs with 503",
			zap.Int64("pending", pending), zap.Int64("limit", s.admission.limiter.Limit()), zap.String("admission", s.cfg.RegisterAdmission),
			zap.Int64("refused-since-last-warning", shed))
	} else {
		s.log.Debug("REGISTER refused: overload", zap.String("kind", kind), zap.Int64("pending", pending))
	}
	return s.relay(t, t.NewResponse(503, "Service Unavailable",
		sip.NewHeader("Retry-After", strconv.Itoa(s.cfg.OverloadRetryAfter)),
		s.warning(text)))
}
