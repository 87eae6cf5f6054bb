package scscf

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/pgtest"
)

// TestStoreSynchronousCommit: the S-CSCF's connections run with
// synchronous_commit = off unless the DSN names a value.
func TestStoreSynchronousCommit(t *testing.T) {
	dsn := pgtest.NewDB(t)
	ctx := context.Background()
	for _, c := range []struct{ dsn, want string }{
		{dsn, "off"},
		{dsn + "&synchronous_commit=on", "on"},
	} {
		st, err := openStore(ctx, c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = st.pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&got)
		st.close()
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s: synchronous_commit %q, want %q", c.dsn, got, c.want)
		}
	}
}

// TestStoreFailureUndoesFirstSAR: when the binding of a first registration
// cannot be stored, the UE gets 500 with a Warning and the HSS, which SAR
// REGISTRATION had told, gets SAR USER_DEREGISTRATION, so that it does not
// keep the IMPU registered at an S-CSCF without a binding. Once the store
// works again the UE registers, and nothing more is undone.
func TestStoreFailureUndoesFirstSAR(t *testing.T) {
	dsn := pgtest.NewDB(t)
	h := newTestHSS(t)
	h.add(akaSub("sam"))
	s := newTestServer(t, h, dsn, nil)
	pgtest.Exec(t, dsn, `ALTER TABLE scscf_registration ADD CONSTRAINT refuse_all CHECK (false) NOT VALID`)

	u := newTestUE(t, "sam")
	res := u.send(t, s, 600, u.initialAuthz())
	res = u.send(t, s, 600, u.answer(t, res, true))
	if res.StatusCode != 500 || !strings.Contains(hdr(res, "Warning"), "registration store failed") {
		t.Fatalf("store refused: %d %s, Warning %q", res.StatusCode, res.Reason, hdr(res, "Warning"))
	}
	if _, ok := s.Lookup(u.impu); ok {
		t.Error("registered although the binding was not stored")
	}
	h.waitSAR(t, diameter.SATUserDeregistration, 3*time.Second)

	pgtest.Exec(t, dsn, `ALTER TABLE scscf_registration DROP CONSTRAINT refuse_all`)
	u.registerAKA(t, s, 600)
	if _, ok := s.Lookup(u.impu); !ok {
		t.Error("not registered once the store works")
	}
	time.Sleep(200 * time.Millisecond)
	if n := h.sars(diameter.SATUserDeregistration); n != 1 {
		t.Errorf("%d SAR USER_DEREGISTRATION, want 1", n)
	}
}
