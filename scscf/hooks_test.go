package scscf

import (
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestRegistrationHooks(t *testing.T) {
	h := newTestHSS(t)
	h.add(akaSub("hook"))
	var mu sync.Mutex
	var kinds []EventKind
	var answered []int
	s := newTestServerWith(t, h, func(srv *Server) {
		srv.AddRegistrationListener(func(ev RegistrationEvent) { mu.Lock(); kinds = append(kinds, ev.Kind); mu.Unlock() })
		srv.AddRegisterAnsweredHook(func(ev RegistrationEvent, req *sip.Request, res *sip.Response) {
			mu.Lock()
			defer mu.Unlock()
			if req == nil || req.Method != sip.REGISTER || ev.Kind == "" {
				t.Errorf("hook got %v %v", ev.Kind, req)
			}
			answered = append(answered, res.StatusCode)
		})
	})
	u := newTestUE(t, "hook")
	u.registerAKA(t, s, 600)
	u.registerAKA(t, s, 0)
	waitFor(t, "hooks", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(kinds) == 2 && len(answered) == 2
	})
	if kinds[0] != EventRegistered || kinds[1] != EventDeregistered || answered[0] != 200 || answered[1] != 200 {
		t.Errorf("kinds %v answered %v", kinds, answered)
	}
}
