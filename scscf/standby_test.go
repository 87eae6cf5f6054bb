package scscf_test

import (
	"context"
	"testing"
	"time"

	"github.com/imscore/imscore/scscf"
	"github.com/imscore/imscore/scscf/internal/scscftest"
)

// TestStandbyHSS: with --hss-standby-addr the S-CSCF keeps a second HSS
// peer (RFC 3539 fail-over): MAR and SAR go to the primary while it is up,
// to the standby once the primary is gone, and the S-CSCF stays ready.
func TestStandbyHSS(t *testing.T) {
	primary, standby := scscftest.NewHSS(t), scscftest.NewHSS(t)
	for _, h := range []*scscftest.HSS{primary, standby} {
		h.Add(scscftest.AKASub("sb1"))
		h.Add(scscftest.AKASub("sb2"))
	}
	s := scscftest.NewServer(t, primary, "", func(c *scscf.Config) { c.HSSStandbyAddr = standby.Addr })
	if res := scscftest.NewUE(t, "sb1").RegisterAKA(t, s, 600); res.StatusCode != 200 {
		t.Fatalf("registration with both HSSs up: %d", res.StatusCode)
	}
	if len(primary.Requests()) == 0 || len(standby.Requests()) != 0 {
		t.Fatalf("Cx requests primary %d standby %d, want the primary only", len(primary.Requests()), len(standby.Requests()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	primary.Node.Close(ctx)
	cancel()
	scscftest.WaitFor(t, "ready on the standby HSS", func() bool { return s.Ready(context.Background()) == nil })
	if res := scscftest.NewUE(t, "sb2").RegisterAKA(t, s, 600); res.StatusCode != 200 {
		t.Fatalf("registration with the primary HSS gone: %d %s, want 200 through the standby", res.StatusCode, res.Reason)
	}
	if len(standby.Requests()) < 2 {
		t.Errorf("standby saw %d Cx requests, want the MAR and SAR", len(standby.Requests()))
	}
}
