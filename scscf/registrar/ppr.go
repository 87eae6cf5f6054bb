package registrar

import (
	"context"

	"github.com/fiorix/go-diameter/v4/diam"
	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf/binding"
)

// HandlePPR serves Push-Profile-Request (TS 29.228 §6.2.2, TS 29.229
// §6.1.11): the User-Data replaces the cached profile, and the
// Charging-Information the charging function addresses, of every set of
// the IMPI. PPA 2001; 5001 (experimental) when the IMPI has no
// registration here; 5009 DIAMETER_ERROR_NOT_SUPPORTED_USER_DATA for
// User-Data that does not parse.
func (s *Registrar) HandlePPR(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
	impi := diameter.String(req, diameter.AVPUserName)
	if impi == "" {
		return nil, diameter.MissingAVP(diameter.AVPUserName)
	}
	recs := s.reg.ofIMPI(impi)
	if len(recs) == 0 {
		return s.cfg.Node.AnswerExperimental(req, diameter.DiameterErrorUserUnknown), nil
	}
	charging := cxclient.ParseChargingInformation(req)
	var ud []byte
	var profile *userdata.IMSSubscription
	if a := diameter.Find(req, diameter.AVPUserData); a != nil {
		ud, _ = diameter.AsBytes(a)
		var err error
		if profile, err = userdata.Parse(ud); err != nil {
			s.log.Warn("PPR User-Data rejected", zap.String("impi", impi), zap.Error(err))
			return s.cfg.Node.AnswerExperimental(req, diameter.DiameterErrorNotSupportedUserData), nil
		}
	}
	if profile == nil && charging == nil { // only SIP-Auth-Data-Item changed
		return s.cfg.Node.Answer(req, diameter.DiameterSuccess), nil
	}
	unlock := s.locks.Lock(impi)
	defer unlock()
	for _, r := range recs {
		if s.reg.lookup(r.aor) != r {
			continue
		}
		s.reg.mu.Lock()
		before := r.snapshot()
		if profile != nil {
			r.profile = profile
			r.impus, r.barred = binding.IRS(profile, r.aor)
		}
		if charging != nil {
			r.charging = charging.Header()
		}
		snap := r.snapshot()
		snap.UserData = ud
		s.reg.mu.Unlock()
		s.reg.put(r)
		if err := s.persist(ctx, snap); err != nil {
			s.log.Error("storing profile", zap.String("aor", r.aor), zap.Error(err))
			return nil, err
		}
		if profile != nil {
			s.emit(binding.Event{Kind: binding.EventProfileUpdated, After: snap, Before: &before, Profile: profile})
		}
	}
	return s.cfg.Node.Answer(req, diameter.DiameterSuccess), nil
}
