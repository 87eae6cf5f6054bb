package registrar

// Throttling of failed authentication per IMPI (docs/scscf.md,
// "Authentication"): password guessing against one private identity is
// slowed to one guess per AuthFailureEvery after AuthFailureBurst wrong
// responses in a row.

import (
	"strconv"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/authguard"
)

// ThrottledReason is the reason phrase of the 403 to a REGISTER of a
// locked-out IMPI; the I-CSCF answers unknown IMPIs it has locked out the
// same way.
const ThrottledReason = "Forbidden - Authentication throttled"

// newGuard builds the per-IMPI guard with its metrics
// (scscf_auth_lockouts_total, scscf_auth_locked_impis).
func (s *Registrar) newGuard() (*authguard.Guard, error) {
	lockouts := prometheus.NewCounter(prometheus.CounterOpts{Name: "scscf_auth_lockouts_total",
		Help: "IMPIs locked out after --auth-failure-burst failed authentications in a row."})
	var g *authguard.Guard
	g = authguard.New(authguard.Config{Burst: s.cfg.AuthFailureBurst, Every: s.cfg.AuthFailureEvery,
		OnLockout: func(impi string, d time.Duration) {
			lockouts.Inc()
			s.log.Warn("authentication throttled: IMPI locked out after repeated failures",
				zap.String("impi", impi), zap.Duration("for", d), zap.Int("failures", s.cfg.AuthFailureBurst))
		},
		OnFull: func(string) { s.log.Warn("authentication throttling: too many IMPIs tracked; not tracking more") }})
	locked := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "scscf_auth_locked_impis",
		Help: "IMPIs locked out now by failed-authentication throttling."}, func() float64 { return float64(g.Locked()) })
	for _, c := range []prometheus.Collector{lockouts, locked} {
		if err := s.cfg.Registry.Register(c); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// throttled answers a REGISTER of a locked-out IMPI: 403 "Forbidden -
// Authentication throttled" with Retry-After (when the UE may try again),
// and no challenge for another guess. Not 503: proxies do not pass a 503
// on (RFC 3261 §16.7 step 6), and the I-CSCF would take it for a failed
// S-CSCF and try another one. It reports whether it answered.
func (s *Registrar) throttled(r *regRequest) bool {
	wait, ok := s.guard.Check(r.impi)
	if ok {
		return false
	}
	s.metrics.authFailures.WithLabelValues("throttled").Inc()
	_ = r.t.Respond(403, ThrottledReason, retryAfter(wait))
	return true
}

// retryAfter is Retry-After: wait in whole seconds (RFC 3261 §20.33).
func retryAfter(wait time.Duration) sip.Header {
	return sip.NewHeader("Retry-After", strconv.Itoa(authguard.RetryAfter(wait)))
}
