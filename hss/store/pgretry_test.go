package store_test

import (
	"context"
	"testing"

	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/pgtest"
)

// TestStatementsAfterSessionsEnded: PostgreSQL ends every session of the
// pool (restart, fail-over, pg_terminate_backend) before each Cx/Sh store
// operation; each must still succeed, running again on a fresh connection
// instead of failing on the dead one.
func TestStatementsAfterSessionsEnded(t *testing.T) {
	t.Run("group-commit=off", func(t *testing.T) { statementsAfterSessionsEnded(t, 0) })
	t.Run("group-commit=2", func(t *testing.T) { statementsAfterSessionsEnded(t, 2) })
}

func statementsAfterSessionsEnded(t *testing.T, lanes int) {
	ctx := context.Background()
	dsn, _, st := setup(t)
	if err := st.EnableSQNBlocks(4, 0); err != nil {
		t.Fatal(err)
	}
	if err := st.EnableGroupCommit(lanes); err != nil {
		t.Fatal(err)
	}
	pi, err := st.Pair(ctx, impi, impu1)
	if err != nil {
		t.Fatal(err)
	}
	irs, impiID := pi.IMPU.IRSID, pi.IMPI.ID
	ops := []struct {
		name string
		run  func() error
	}{
		{"Pair", func() error { _, err := st.Pair(ctx, impi, impu1); return err }},
		{"PairReservePending", func() error {
			_, _, _, _, err := st.PairReservePending(ctx, impi, impu1, "aka", 1, "sip:s1", "s1")
			return err
		}},
		{"PairReservePending from the SQN block", func() error {
			_, _, _, _, err := st.PairReservePending(ctx, impi, impu1, "aka", 1, "sip:s1", "s1")
			return err
		}},
		{"SetPendingAssignment", func() error {
			_, err := st.SetPendingAssignment(ctx, impu1, "sip:s2", "s2", impi)
			return err
		}},
		{"PairAssignSubscription", func() error {
			_, _, _, err := st.PairAssignSubscription(ctx, impi, impu1, "sip:s1", "s1", store.Registered, true)
			return err
		}},
		{"AssignIRSAndSubscription", func() error {
			_, _, err := st.AssignIRSAndSubscription(ctx, []int64{irs}, "sip:s1", "s1", impiID, store.Registered, impi, irs)
			return err
		}},
		{"ReserveSQNs", func() error { _, _, err := st.ReserveSQNs(ctx, impi, 1); return err }},
		{"SubscriptionData", func() error { _, err := st.SubscriptionData(ctx, impi, impu1); return err }},
		{"Assignment", func() error { _, err := st.Assignment(ctx, impu1); return err }},
		{"SCSCFCapabilities", func() error { _, err := st.SCSCFCapabilities(ctx); return err }},
		{"MSISDNs", func() error { _, err := st.MSISDNs(ctx, impu2); return err }},
		{"SetUserState", func() error { _, err := st.SetUserState(ctx, impu1, store.Unregistered); return err }},
	}
	for _, op := range ops {
		if n := pgtest.TerminateBackends(t, dsn); n == 0 {
			t.Fatalf("%s: no session to end", op.name)
		}
		if err := op.run(); err != nil {
			t.Errorf("%s after the sessions ended: %v", op.name, err)
		}
	}
	// A statement error is not a lost connection: still reported.
	if _, err := st.Pair(ctx, impi, "sip:nobody@example.net"); err == nil {
		t.Error("Pair of an unknown IMPU succeeded")
	}
}
