package icscf

import (
	"context"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/diameter"
)

// TestStandbyHSS: with --hss-standby-addr the I-CSCF keeps a second HSS
// peer (RFC 3539 fail-over): UARs go to the primary while it is up, to the
// standby once the primary is gone, and the I-CSCF stays ready. Without
// the standby the same loss is a 504 and /readyz fails.
func TestStandbyHSS(t *testing.T) {
	okUAA := func(r cxSeen, n int) cxReply {
		return cxReply{code: diameter.DiameterFirstRegistration, experimental: true}
	}
	s1 := newTestSCSCF(t, "scscf1", nil)
	primary := newTestHSS(t, okUAA)
	standby := newTestHSS(t, okUAA)
	ic, _ := startICSCF(t, primary.addr, []string{s1.spec()}, func(c *Config) { c.HSSStandbyAddr = standby.addr })
	waitReady(t, ic)
	if res := do(t, newUAC(t), register(ic)); res.StatusCode != 200 {
		t.Fatalf("REGISTER with both HSSs up: %d", res.StatusCode)
	}
	s1.next(t)
	if len(primary.requests()) != 1 || len(standby.requests()) != 0 {
		t.Fatalf("UARs primary %d standby %d, want 1 and 0 (the primary is preferred)", len(primary.requests()), len(standby.requests()))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	primary.node.Close(ctx)
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for ic.Ready(context.Background()) != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := ic.Ready(context.Background()); err != nil {
		t.Fatalf("not ready with the standby HSS open: %v", err)
	}
	if res := do(t, newUAC(t), register(ic)); res.StatusCode != 200 {
		t.Fatalf("REGISTER with the primary HSS gone: %d %s, want 200 through the standby", res.StatusCode, res.Reason)
	}
	s1.next(t)
	if len(standby.requests()) != 1 {
		t.Errorf("standby saw %d UARs, want 1", len(standby.requests()))
	}
}
