package registrar

import (
	"context"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/scscf/binding"
)

// HandleRTR serves Registration-Termination-Request (TS 29.228 §6.2.1,
// TS 29.229 §6.1.9): with Public-Identity AVPs the sets holding them are
// removed, otherwise every set of User-Name (the IMPI). Answered 2001.
func (s *Registrar) HandleRTR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	impi := diameter.String(req, diameter.AVPUserName)
	var impus []string
	for _, a := range diameter.FindAll(req, diameter.AVPPublicIdentity) {
		if v, ok := diameter.AsString(a); ok {
			impus = append(impus, v)
		}
	}
	if impi == "" && len(impus) == 0 {
		return nil, diameter.MissingAVP(diameter.AVPUserName)
	}
	reason := diameter.String(req, diameter.AVPDeregistrationReason, diameter.AVPReasonInfo)
	var reregister *bool
	if code, ok := diameter.Uint32(req, diameter.AVPDeregistrationReason, diameter.AVPReasonCode); ok {
		v := code != diameter.ReasonPermanentTermination
		reregister = &v
	}
	var targets []*record
	seen := map[*record]bool{}
	if len(impus) > 0 {
		for _, u := range impus {
			if r := s.reg.lookup(u); r != nil && !seen[r] {
				seen[r] = true
				targets = append(targets, r)
			}
		}
	} else {
		targets = s.reg.ofIMPI(impi)
	}
	// Associated-Identities: other IMPIs whose sets go too.
	for _, a := range diameter.FindAll(req, diameter.AVPAssociatedIdentities, diameter.AVPUserName) {
		if v, ok := diameter.AsString(a); ok && len(impus) == 0 {
			for _, r := range s.reg.ofIMPI(v) {
				if !seen[r] {
					seen[r] = true
					targets = append(targets, r)
				}
			}
		}
	}
	for _, r := range targets {
		s.terminate(ctx, r, reason, reregister)
	}
	s.log.Info("RTR", zap.String("impi", impi), zap.Strings("impus", impus), zap.Int("sets", len(targets)), zap.String("reason", reason))
	return s.cfg.Node.Answer(req, diameter.DiameterSuccess), nil
}

// terminate removes every binding of r as an administrative
// de-registration (EventTerminated with reason and, from an RTR, whether
// the UE is to register again), under the IMPI's lock.
func (s *Registrar) terminate(ctx context.Context, r *record, reason string, reregister *bool) {
	s.reg.mu.RLock()
	impi := r.impi
	s.reg.mu.RUnlock()
	unlock := s.locks.Lock(impi)
	defer unlock()
	if s.reg.lookup(r.aor) != r {
		return
	}
	s.reg.mu.RLock()
	gone := r.snapshot().Contacts
	s.reg.mu.RUnlock()
	snap := s.setContacts(ctx, r, nil)
	s.metrics.deregistrations.WithLabelValues("administrative").Add(float64(len(gone)))
	s.emit(binding.Event{Kind: binding.EventTerminated, After: snap, Changed: gone, Reason: reason, Reregister: reregister, Profile: r.profile})
}

// NetworkDeregister ends the registration of the set holding impu as the
// S-CSCF's own decision (TS 24.229 §5.4.1.5): the bindings are removed
// (binding.EventTerminated with reason, so reg-event subscribers get their
// NOTIFY and the ASes a de-registration) and the HSS gets SAR
// ADMINISTRATIVE_DEREGISTRATION. It is the deregister callback of
// NewThirdPartyRegistrar; it must not be called with the IMPI's lock held.
func (s *Registrar) NetworkDeregister(impu, reason string) {
	r := s.reg.lookup(impu)
	if r == nil {
		return
	}
	s.reg.mu.RLock()
	impi, aor := r.impi, r.aor
	s.reg.mu.RUnlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s.log.Info("network-initiated de-registration", zap.String("impu", impu), zap.String("reason", reason))
	s.terminate(ctx, r, reason, nil)
	if _, err := s.sar(ctx, impi, aor, diameter.SATAdministrativeDeregistration, true); err != nil {
		s.log.Warn("SAR ADMINISTRATIVE_DEREGISTRATION failed", zap.String("impu", aor), zap.Error(err))
	}
}
