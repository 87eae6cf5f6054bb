package scscf

import (
	"context"

	"github.com/imscore/imscore/scscf/isc"
	"github.com/imscore/imscore/scscf/regevent"
)

// services are the parts of the S-CSCF built on top of the registrar: the
// reg event notifier (RFC 3680, TS 24.229 §5.4.2.1) and third-party
// registration towards application servers (TS 24.229 §5.4.1.7).
type services struct {
	notifier   *regevent.Notifier
	thirdParty *isc.ThirdPartyRegistrar
}

// attachServices builds the notifier and the third-party registrar and
// hooks them into s. Call it after New and before Start; then call
// start after s.Start (it reloads persisted subscriptions) and close on
// shutdown.
func attachServices(s *Server) (*services, error) {
	n, err := NewRegEventNotifier(s, regevent.Config{})
	if err != nil {
		return nil, err
	}
	tp, err := NewThirdPartyRegistrar(s, isc.ThirdPartyConfig{}, s.NetworkDeregister)
	if err != nil {
		n.Close()
		return nil, err
	}
	s.SetRegEventHandler(n)
	s.AddRegistrationListener(n.OnRegistrationChange)
	s.AddRegistrationListener(tp.OnRegistrationChange)
	s.AddRegisterAnsweredHook(tp.AfterRegister)
	return &services{notifier: n, thirdParty: tp}, nil
}

// start reloads the reg event subscriptions persisted before a restart.
func (sv *services) start(ctx context.Context) error { return sv.notifier.LoadSubscriptions(ctx) }

// close stops the notifier's timers and pending third-party REGISTERs.
func (sv *services) close() {
	sv.thirdParty.Close()
	sv.notifier.Close()
}

// NewRegEventNotifier builds the reg event notifier of s (regevent.New
// on s's registrar and s): cfg tunes it, its SIPHost, Warning, Logger and
// Registry are s's. Call it after New, before Start; after Start,
// LoadSubscriptions attaches it to s's database.
func NewRegEventNotifier(s *Server, cfg regevent.Config) (*regevent.Notifier, error) {
	cfg.SIPHost, cfg.Warning, cfg.Logger, cfg.Registry = s.cfg.SIPHost, s.warning, s.log, s.cfg.Registry
	if cfg.GRUU == nil {
		cfg.GRUU = s.gruu
	}
	return regevent.New(s.reg, s, cfg)
}

// NewThirdPartyRegistrar builds the third-party registrar of s
// (isc.NewThirdPartyRegistrar on s's session router, so with its shared
// iFC sets, its registrar and its SIP socket). deregister (may be nil) is
// called when an AS with DefaultHandling SESSION_TERMINATED fails; pass
// s.NetworkDeregister. Call it after New, before Start.
func NewThirdPartyRegistrar(s *Server, cfg isc.ThirdPartyConfig, deregister func(impu, reason string)) (*isc.ThirdPartyRegistrar, error) {
	return isc.NewThirdPartyRegistrar(s.sess, cfg, deregister)
}
