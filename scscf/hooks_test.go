package scscf_test

import (
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/scscf"
	"github.com/imscore/imscore/scscf/binding"
	"github.com/imscore/imscore/scscf/internal/scscftest"
)

func TestRegistrationHooks(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("hook"))
	var mu sync.Mutex
	var kinds []binding.EventKind
	var answered []int
	s := scscftest.NewServerWith(t, h, func(srv *scscf.Server) {
		srv.AddRegistrationListener(func(ev binding.Event) { mu.Lock(); kinds = append(kinds, ev.Kind); mu.Unlock() })
		srv.AddRegisterAnsweredHook(func(ev binding.Event, req *sip.Request, res *sip.Response) {
			mu.Lock()
			defer mu.Unlock()
			if req == nil || req.Method != sip.REGISTER || ev.Kind == "" {
				t.Errorf("hook got %v %v", ev.Kind, req)
			}
			answered = append(answered, res.StatusCode)
		})
	})
	u := scscftest.NewUE(t, "hook")
	u.RegisterAKA(t, s, 600)
	u.RegisterAKA(t, s, 0)
	scscftest.WaitFor(t, "hooks", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(kinds) == 2 && len(answered) == 2
	})
	if kinds[0] != binding.EventRegistered || kinds[1] != binding.EventDeregistered || answered[0] != 200 || answered[1] != 200 {
		t.Errorf("kinds %v answered %v", kinds, answered)
	}
}
