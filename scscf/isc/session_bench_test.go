package isc_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/scscf/internal/scscftest"
)

// TestSessionInviteProfile runs N INVITEs through the S-CSCF (originating half, then --icscf pointing at the S-CSCF itself, the
// terminating half and the callee; no AS, I-CSCF or HSS on the path) when SCSCF_PROFILE_CALLS is set, for
// `go test -cpuprofile`.
func TestSessionInviteProfile(t *testing.T) {
	n := 0
	if v := testingEnv("SCSCF_PROFILE_CALLS"); v > 0 {
		n = v
	}
	if n == 0 {
		t.Skip("set SCSCF_PROFILE_CALLS")
	}
	l := newSessionLab(t, nil)
	l.addUser(t, "alice", newUAS(t, "alice", 0))
	l.addUser(t, "bob", newUAS(t, "bob", 0))
	start := time.Now()
	sem := make(chan struct{}, 50)
	for i := 0; i < n; i++ {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			var ru sip.Uri
			_ = sip.ParseUri(bob(), &ru)
			req := sip.NewRequest(sip.INVITE, ru)
			from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: scscftest.Domain}, Params: sip.NewParams()}
			from.Params.Add("tag", sip.GenerateTagN(8))
			req.AppendHeader(from)
			req.AppendHeader(&sip.ToHeader{Address: ru, Params: sip.NewParams()})
			req.AppendHeader(sip.NewHeader("Route", "<"+l.s.ServiceRoute()+">"))
			req.AppendHeader(sip.NewHeader("Contact", "<sip:alice@"+l.caller.addr()+">"))
			req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<"+alice()+">"))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			res, err := l.caller.p.Do(ctx, req, sipproxy.Target{})
			if err != nil || res.StatusCode != 200 {
				t.Errorf("INVITE: %v %v", err, res)
			}
		}()
	}
	for i := 0; i < cap(sem); i++ {
		sem <- struct{}{}
	}
	t.Logf("%d INVITEs in %v (%.0f/s)", n, time.Since(start), float64(n)/time.Since(start).Seconds())
}

func testingEnv(name string) int {
	v, _ := strconv.Atoi(os.Getenv(name))
	return v
}
