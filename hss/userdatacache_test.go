package hss_test

import (
	"context"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/userdata"
)

// The HSS caches SAR user data and empties the cache on NOTIFY
// hss_userdata: after an operator's change is committed, re-registrations
// get the new profile within the notification's delivery time, and keep
// getting it.
func TestSARUserDataFreshAfterChange(t *testing.T) {
	e := newEnv(t)
	scscf := e.client(scscfHost)
	display := func() string {
		a := send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATReRegistration, 0))
		wantResult(t, a, diameter.DiameterSuccess, false)
		ud, _ := diameter.AsBytes(diameter.Find(a, diameter.AVPUserData))
		sub, err := userdata.Parse(ud)
		if err != nil {
			t.Fatalf("User-Data: %v\n%s", err, ud)
		}
		for _, p := range sub.PublicIdentities() {
			if p.Identity == aliceTel {
				return p.DisplayName
			}
		}
		t.Fatalf("%s missing from user data %s", aliceTel, ud)
		return ""
	}
	for i := 0; i < 3; i++ {
		if d := display(); d != "" {
			t.Fatalf("display name %q before the change", d)
		}
	}
	for i, name := range []string{"Alice", "Alice B"} {
		if _, err := e.db.Exec(context.Background(), `UPDATE impu SET display_name = $1 WHERE identity = $2`, name, aliceTel); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for display() != name {
			if time.Now().After(deadline) {
				t.Fatalf("change %d (%q) not visible after 2 s", i, name)
			}
			time.Sleep(5 * time.Millisecond)
		}
		for j := 0; j < 5; j++ {
			if d := display(); d != name {
				t.Fatalf("change %d: display name went back to %q", i, d)
			}
		}
	}
}
