package registrar_test

import (
	"strings"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/imscore/imscore/scscf/internal/scscftest"
)

// TestStoreFailureUndoesFirstSAR: when the binding of a first registration
// cannot be stored, the UE gets 500 with a Warning and the HSS, which SAR
// REGISTRATION had told, gets SAR USER_DEREGISTRATION, so that it does not
// keep the IMPU registered at an S-CSCF without a binding. Once the store
// works again the UE registers, and nothing more is undone.
func TestStoreFailureUndoesFirstSAR(t *testing.T) {
	dsn := pgtest.NewDB(t)
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("sam"))
	s := scscftest.NewServer(t, h, dsn, nil)
	pgtest.Exec(t, dsn, `ALTER TABLE scscf_registration ADD CONSTRAINT refuse_all CHECK (false) NOT VALID`)

	u := scscftest.NewUE(t, "sam")
	res := u.Send(t, s, 600, u.InitialAuthz())
	res = u.Send(t, s, 600, u.Answer(t, res, true))
	if res.StatusCode != 500 || !strings.Contains(scscftest.Hdr(res, "Warning"), "registration store failed") {
		t.Fatalf("store refused: %d %s, Warning %q", res.StatusCode, res.Reason, scscftest.Hdr(res, "Warning"))
	}
	if _, ok := s.Lookup(u.IMPU); ok {
		t.Error("registered although the binding was not stored")
	}
	h.WaitSAR(t, diameter.SATUserDeregistration, 3*time.Second)

	pgtest.Exec(t, dsn, `ALTER TABLE scscf_registration DROP CONSTRAINT refuse_all`)
	u.RegisterAKA(t, s, 600)
	if _, ok := s.Lookup(u.IMPU); !ok {
		t.Error("not registered once the store works")
	}
	time.Sleep(200 * time.Millisecond)
	if n := h.SARs(diameter.SATUserDeregistration); n != 1 {
		t.Errorf("%d SAR USER_DEREGISTRATION, want 1", n)
	}
}
