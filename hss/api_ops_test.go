package hss_test

import (
	"context"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"

	"github.com/imscore/imscore/hss"
	"github.com/imscore/imscore/pkg/diameter"
)

// TestAPIOperations runs the API's deregister and push-profile through
// the HSS's Cx procedures against a Diameter peer playing the S-CSCF:
// answered, nothing to send, refused, and queued in hss_command while
// the S-CSCF is away.
func TestAPIOperations(t *testing.T) {
	e := newEnv(t)
	ops := hss.APIOps(e.srv, e.db)
	ctx := context.Background()
	scscf := e.client(scscfHost)
	rtrs := make(chan *diam.Message, 4)
	scscf.Handle(diameter.CmdRegistrationTermination, diameter.AppCx, func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
		rtrs <- req
		return scscf.Answer(req, diameter.DiameterSuccess), nil
	})
	scscf.Handle(diameter.CmdPushProfile, diameter.AppCx, func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
		return scscf.Answer(req, diameter.DiameterCommandUnsupported), nil
	})
	if o := ops.PushProfile(ctx, aliceIMPU); o.Result != "not_registered" || o.Err != nil {
		t.Fatalf("PPR before registration: %+v", o)
	}
	registerAlice(t, scscf)
	if o := ops.PushProfile(ctx, aliceIMPU); o.Result != "refused" || o.Err != nil {
		t.Fatalf("PPR answered 3001: %+v", o)
	}
	if o := ops.Deregister(ctx, aliceTel, "operator"); o.Result != "answered" || o.Err != nil {
		t.Fatalf("RTR: %+v", o)
	}
	select {
	case r := <-rtrs:
		if info := diameter.String(r, diameter.AVPDeregistrationReason, diameter.AVPReasonInfo); info != "operator" {
			t.Errorf("Reason-Info %q", info)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no RTR reached the S-CSCF")
	}
	if a, err := e.srv.Store.Assignment(ctx, aliceIMPU); err != nil || a.SCSCFName != "" {
		t.Fatalf("assignment after the RTR: %+v %v", a, err)
	}
	// Registered again, then the S-CSCF goes away: the RTR waits in hss_command.
	registerAlice(t, scscf)
	cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	scscf.Close(cctx)
	cancel()
	o := ops.Deregister(ctx, aliceIMPU, "")
	if o.Result != "queued" || o.Err != nil {
		t.Fatalf("RTR with the S-CSCF away: %+v", o)
	}
	var n int
	if err := e.db.QueryRow(ctx, `SELECT count(*) FROM hss_command WHERE kind = 'rtr' AND impu = $1 AND done_at IS NULL`, aliceIMPU).Scan(&n); err != nil || n != 1 {
		t.Fatalf("queued RTR rows %d %v", n, err)
	}
	if v := e.counter("hss_initiated_requests_total", map[string]string{"command": "RTR", "outcome": "answered"}); v != 1 {
		t.Errorf("RTR answered counter %v", v)
	}
}
