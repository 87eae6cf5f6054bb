package pcscf

// Admission control of the P-CSCF (docs/pcscf.md, "Overload"): the first
// element of the chain refuses new work it cannot take with 503 and
// Retry-After (RFC 3261 §21.5.4; the UE waits, TS 24.229 §5.1.3.1)
// instead of letting it queue until UEs retransmit and transactions go
// unanswered. Counted: initial requests from registered UEs from their
// arrival to their first answer from the network (a 180 or any final
// response: the time an INVITE rings is the callee's, not the chain's
// load) and REGISTERs to their final answer. Requests within a dialog,
// ACK and CANCEL, and requests from the network to UEs are never
// refused here: they finish work already admitted.

import (
	"context"
	"strconv"
	"sync"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/admission"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// admittedKey carries the release func of an admitted request in its
// context, for forward to call at the first answer from the network.
type admittedKey struct{}

// newLimiter builds the admission limiter and its gauges.
func (s *PCSCF) newLimiter() *admission.Limiter {
	l := admission.New(s.cfg.MaxPending, s.cfg.Admission)
	if s.cfg.Registerer != nil {
		s.cfg.Registerer.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pcscf_pending",
				Help: "New work in progress counted by admission control: initial requests from UEs before their first answer from the network, REGISTERs before their final one."},
				func() float64 { return float64(l.Pending()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pcscf_admission_limit",
				Help: "pcscf_pending from which new work is answered 503 (challenge answers: twice as many); it follows the latency with --admission adaptive; 0: no limit."},
				func() float64 { return float64(l.Limit()) }))
	}
	return l
}

// admit takes an admission slot for t's request (factor 2 for work that
// is half done: a challenge answer). When the P-CSCF is over its limit it
// answers 503 with Retry-After and returns false. Otherwise ctx carries
// the release, which forward calls at the first answer from the network;
// the returned func releases it too (once) and is for the handler to
// defer.
func (s *PCSCF) admit(ctx context.Context, t *sipproxy.Txn, factor int64) (context.Context, func(), bool) {
	release, pending, ok := s.limiter.Admit(factor)
	if !ok {
		req := t.Request()
		s.m.rejected.WithLabelValues("overload").Inc()
		s.log.Debug("request refused: overload", zap.String("method", string(req.Method)), zap.Int64("pending", pending))
		_ = t.Respond(sip.StatusServiceUnavailable, "Service Unavailable",
			sip.NewHeader("Retry-After", strconv.Itoa(s.cfg.OverloadRetryAfter)),
			sip.NewHeader("Warning", `399 `+hostRef(s.cfg.SIPHost)+` "overload: `+strconv.FormatInt(pending, 10)+` requests pending (limit `+strconv.FormatInt(s.limiter.Limit(), 10)+`, `+s.cfg.Admission+`)"`))
		return ctx, func() {}, false
	}
	once := sync.OnceFunc(release)
	return context.WithValue(ctx, admittedKey{}, once), once, true
}

// releaseOnAnswer makes opts release ctx's admission slot at the first
// response from the network.
func releaseOnAnswer(ctx context.Context, opts *sipproxy.ForwardOptions) {
	release, ok := ctx.Value(admittedKey{}).(func())
	if !ok {
		return
	}
	prev := opts.OnResponse
	opts.OnResponse = func(tg sipproxy.Target, res *sip.Response) {
		release()
		if prev != nil {
			prev(tg, res)
		}
	}
}

// registerFactor is the admission factor of a REGISTER: 2 for a challenge
// answer (an Authorization with a response: the network spent a MAR on it
// already), else 1.
func registerFactor(req *sip.Request) int64 {
	if hs, err := digest.GetAll(req, digest.HeaderAuthorization); err == nil && len(hs) > 0 && hs[0].Response() != "" {
		return 2
	}
	return 1
}
