package registrar

import (
	"context"

	"github.com/fiorix/go-diameter/v4/diam"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/binding"
)

// HandlePPR serves Push-Profile-Request (TS 29.228 §6.2.2, TS 29.229
// §6.1.11): the User-Data replaces the cached profile of every set of the
// IMPI. PPA 2001; 5001 (experimental) when the IMPI has no registration
// here; 5009 DIAMETER_ERROR_NOT_SUPPORTED_USER_DATA for User-Data that
// does not parse.
func (s *Registrar) HandlePPR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	impi := diameter.String(req, diameter.AVPUserName)
	if impi == "" {
		return nil, diameter.MissingAVP(diameter.AVPUserName)
	}
	recs := s.reg.ofIMPI(impi)
	if len(recs) == 0 {
		return s.cfg.Node.AnswerExperimental(req, diameter.DiameterErrorUserUnknown), nil
	}
	a := diameter.Find(req, diameter.AVPUserData)
	if a == nil { // only Charging-Information or SIP-Auth-Data-Item changed
		return s.cfg.Node.Answer(req, diameter.DiameterSuccess), nil
	}
	ud, _ := diameter.AsBytes(a)
	profile, err := userdata.Parse(ud)
	if err != nil {
		s.log.Warn("PPR User-Data rejected", zap.String("impi", impi), zap.Error(err))
		return s.cfg.Node.AnswerExperimental(req, diameter.DiameterErrorNotSupportedUserData), nil
	}
	unlock := s.locks.Lock(impi)
	defer unlock()
	for _, r := range recs {
		if s.reg.lookup(r.aor) != r {
			continue
		}
		impus, barred := binding.IRS(profile, r.aor)
		s.reg.mu.Lock()
		before := r.snapshot()
		r.userData, r.profile, r.impus, r.barred = ud, profile, impus, barred
		snap := r.snapshot()
		s.reg.mu.Unlock()
		s.reg.put(r)
		if err := s.persist(ctx, snap); err != nil {
			s.log.Error("storing profile", zap.String("aor", r.aor), zap.Error(err))
			return nil, err
		}
		s.emit(binding.Event{Kind: binding.EventProfileUpdated, After: snap, Before: &before, Profile: profile})
	}
	return s.cfg.Node.Answer(req, diameter.DiameterSuccess), nil
}
