package registrar

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/scscf/binding"
)

// Sweep runs the challenge and expiry timers (the S-CSCF calls it every
// SweepInterval once the HSS is connected, so that the SARs reach it):
// a challenge unanswered for ChallengeTimeout gets SAR
// AUTHENTICATION_TIMEOUT; bindings whose expiry has passed are removed
// (EventExpired), and when the last one of a set goes the HSS gets SAR
// TIMEOUT_DEREGISTRATION (TS 29.228 §6.1.2).
func (s *Registrar) Sweep(now time.Time) {
	s.guard.Sweep()
	for _, c := range s.auth.sweep(now, s.cfg.ChallengeTimeout, s.cfg.NonceLifetime, s.cfg.VectorLifetime) {
		s.metrics.auth.WithLabelValues("timeout").Inc()
		s.log.Info("challenge unanswered", zap.String("impi", c.impi), zap.String("impu", c.impu))
		s.sarAsync(c.impi, c.impu, diameter.SATAuthenticationTimeout)
	}
	for _, d := range s.reg.due(now) {
		s.expire(d.r, d.impi, now)
	}
}

func (s *Registrar) expire(r *record, impi string, now time.Time) {
	unlock := s.locks.Lock(impi)
	defer unlock()
	if s.reg.lookup(r.aor) != r {
		return
	}
	var keep []*binding.Contact
	var gone []binding.Contact
	for _, c := range r.contacts {
		if c.Expires.After(now) {
			keep = append(keep, c)
		} else {
			gone = append(gone, *c)
		}
	}
	if len(gone) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	snap := s.setContacts(ctx, r, keep)
	s.metrics.deregistrations.WithLabelValues("timeout").Add(float64(len(gone)))
	if len(keep) == 0 {
		s.log.Info("registration expired", zap.String("aor", r.aor))
		if _, err := s.sar(ctx, impi, r.aor, diameter.SATTimeoutDeregistration, true); err != nil {
			s.log.Warn("SAR TIMEOUT_DEREGISTRATION failed", zap.String("aor", r.aor), zap.Error(err))
		}
	}
	s.emit(binding.Event{Kind: binding.EventExpired, After: snap, Changed: gone, Profile: r.profile})
}
