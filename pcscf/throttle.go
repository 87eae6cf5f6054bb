package pcscf

// Throttling of failed authentication per UE source address (docs/pcscf.md,
// "Failed authentication"): a source whose REGISTERs keep failing
// authentication (403 to an answer of a challenge) is locked out for a
// while, its REGISTERs answered 503 with Retry-After at the edge, before
// they cost the I-CSCF, S-CSCF and HSS anything. Successes do not clear a
// source's failures (many UEs may share one address behind a NAT, and an
// attacker's own valid account must not reset the count); they refill
// with time only.

import (
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/authguard"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// newSourceGuard builds the per-source guard and its metrics
// (pcscf_auth_lockouts_total, pcscf_auth_locked_sources).
func (s *PCSCF) newSourceGuard() *authguard.Guard {
	lockouts := prometheus.NewCounter(prometheus.CounterOpts{Name: "pcscf_auth_lockouts_total",
		Help: "UE source addresses locked out after --source-auth-failure-burst failed authentications."})
	var g *authguard.Guard
	g = authguard.New(authguard.Config{Burst: max(s.cfg.SourceAuthFailureBurst, 0), Every: s.cfg.SourceAuthFailureEvery,
		OnLockout: func(src string, d time.Duration) {
			lockouts.Inc()
			s.log.Warn("authentication throttled: source locked out after repeated failures",
				zap.String("source", src), zap.Duration("for", d))
		}})
	if s.cfg.Registerer != nil {
		s.cfg.Registerer.MustRegister(lockouts, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "pcscf_auth_locked_sources",
			Help: "UE source addresses locked out now by failed-authentication throttling."}, func() float64 { return float64(g.Locked()) }))
	}
	return g
}

// sourceThrottled answers a REGISTER from a locked-out source address
// 503 with Retry-After (RFC 3261 §21.5.4) and reports true.
func (s *PCSCF) sourceThrottled(t *sipproxy.Txn, host string) bool {
	wait, ok := s.srcGuard.Check(host)
	if ok {
		return false
	}
	s.m.rejected.WithLabelValues("auth_throttled").Inc()
	_ = t.Respond(sip.StatusServiceUnavailable, "Service Unavailable",
		sip.NewHeader("Retry-After", strconv.Itoa(authguard.RetryAfter(wait))))
	return true
}

// countAuthFailure records a 403 answering a REGISTER that carried a
// challenge response as a failed authentication of host.
func (s *PCSCF) countAuthFailure(req *sip.Request, res *sip.Response, host string) {
	if res.StatusCode != sip.StatusForbidden {
		return
	}
	hs, err := digest.GetAll(req, digest.HeaderAuthorization)
	if err != nil || len(hs) == 0 || hs[0].Response() == "" {
		return
	}
	s.srcGuard.Failed(host)
}
