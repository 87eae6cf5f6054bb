package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/imscore/imscore/hss/store"
)

// sarProfile runs the SAR hot path for impi/impu and returns the user data.
func sarProfile(t *testing.T, st *store.Store) *store.Subscription {
	t.Helper()
	pi, sub, _, err := st.PairAssignSubscription(context.Background(), impi, impu1, "sip:s1", "s1", store.Registered, true)
	if err != nil || !pi.Associated || sub == nil {
		t.Fatalf("PairAssignSubscription: %+v %+v %v", pi, sub, err)
	}
	return sub
}

func displayOf(sub *store.Subscription, impu string) string {
	for _, p := range sub.Profiles {
		for _, x := range p.PublicIdentities {
			if x.Identity == impu {
				return x.DisplayName
			}
		}
	}
	return "<absent>"
}

// The cache serves a re-registration's profile only while live, and an
// invalidation (a NOTIFY hss_userdata handled) makes the next SAR read the
// committed data.
func TestUserDataCache(t *testing.T) {
	ctx := context.Background()
	_, conn, st := setup(t)
	st.EnableUserDataCache(10)
	// Not live yet: nothing cached.
	sarProfile(t, st)
	if n := st.UserDataCacheLen(); n != 0 {
		t.Fatalf("cached %d entries before live", n)
	}
	st.SetUserDataCacheLive(true)
	first := sarProfile(t, st)
	if st.UserDataCacheLen() != 1 || sarProfile(t, st) != first {
		t.Fatalf("second SAR not served from the cache (%d entries)", st.UserDataCacheLen())
	}
	if _, err := conn.Exec(ctx, `UPDATE impu SET display_name = 'Alice' WHERE identity = $1`, impu1); err != nil {
		t.Fatal(err)
	}
	// Before the notification is handled the cached profile may be served
	// (the documented window); after it, never.
	st.InvalidateUserData()
	if d := displayOf(sarProfile(t, st), impu1); d != "Alice" {
		t.Fatalf("display name after invalidation %q", d)
	}
	// Not associated / unknown pairs are not cached and not answered from it.
	if pi, sub, _, err := st.PairAssignSubscription(ctx, impi, "sip:nobody@x", "sip:s1", "s1", store.Registered, true); err == nil || sub != nil {
		t.Fatalf("unknown IMPU: %+v %+v %v", pi, sub, err)
	}
	// Entries older than UserDataMaxAge are read again.
	cached := sarProfile(t, st)
	st.AgeUserData(store.UserDataMaxAge)
	if sarProfile(t, st) == cached {
		t.Fatal("entry older than UserDataMaxAge served")
	}
	// Losing the LISTEN connection empties and stops the cache.
	st.SetUserDataCacheLive(false)
	if st.UserDataCacheLen() != 0 {
		t.Fatal("cache kept entries when it went off")
	}
	a, b := sarProfile(t, st), sarProfile(t, st)
	if a == b || st.UserDataCacheLen() != 0 {
		t.Fatal("cache used while off")
	}
}

// The S-CSCF list of Server-Capabilities is read once while the cache is
// live and read again after an invalidation; never kept while off.
func TestSCSCFCapabilitiesCache(t *testing.T) {
	ctx := context.Background()
	dsn, conn, st := setup(t)
	run(t, dsn, "scscf", "add", "sip:scscf1.ims:5080", "--mandatory", "1")
	st.EnableUserDataCache(10)
	st.SetUserDataCacheLive(true)
	names := func() (out []string) {
		t.Helper()
		caps, err := st.SCSCFCapabilities(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range caps {
			out = append(out, c.Name)
		}
		return out
	}
	if got := names(); len(got) != 1 {
		t.Fatalf("caps %v", got)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO scscf (name) VALUES ('sip:scscf2.ims:5080')`); err != nil {
		t.Fatal(err)
	}
	if got := names(); len(got) != 1 {
		t.Fatalf("not served from the cache before the notification: %v", got)
	}
	st.InvalidateUserData() // what the HSS does for the NOTIFY of migration 003's trigger
	if got := names(); len(got) != 2 {
		t.Fatalf("after invalidation %v", got)
	}
	st.SetUserDataCacheLive(false)
	if _, err := conn.Exec(ctx, `DELETE FROM scscf WHERE name = 'sip:scscf2.ims:5080'`); err != nil {
		t.Fatal(err)
	}
	if got := names(); len(got) != 1 {
		t.Fatalf("cache used while off: %v", got)
	}
}

// A profile read before an invalidation is not stored after it, and an
// invalidation or liveness change in between drops it.
func TestUserDataCacheGeneration(t *testing.T) {
	_, _, st := setup(t)
	st.EnableUserDataCache(2)
	st.SetUserDataCacheLive(true)
	sub := &store.Subscription{}
	gen, ok := st.UserDataGen()
	if !ok {
		t.Fatal("not live")
	}
	st.InvalidateUserData()
	st.StoreUserData(gen, "a", "sip:a", 1, sub)
	if st.UserDataCacheLen() != 0 {
		t.Fatal("stale read stored after an invalidation")
	}
	gen, _ = st.UserDataGen()
	st.SetUserDataCacheLive(false)
	st.SetUserDataCacheLive(true)
	st.StoreUserData(gen, "a", "sip:a", 1, sub)
	if st.UserDataCacheLen() != 0 {
		t.Fatal("read from before a reconnect stored")
	}
	// Bounded: least recently used out.
	gen, _ = st.UserDataGen()
	for _, k := range []string{"a", "b", "c"} {
		st.StoreUserData(gen, k, "sip:"+k, 1, sub)
	}
	if n := st.UserDataCacheLen(); n != 2 {
		t.Fatalf("%d entries, want 2", n)
	}
}

// Migration 002's triggers notify hss_userdata for changes to the user
// data, and not for the writes of the Cx hot path (SAR's state and
// assignment, MAR's SQN).
func TestUserDataNotify(t *testing.T) {
	ctx := context.Background()
	dsn, conn, st := setup(t)
	l, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close(ctx)
	if _, err := l.Exec(ctx, "LISTEN "+store.UserDataChannel); err != nil {
		t.Fatal(err)
	}
	notified := func() bool {
		t.Helper()
		// The ping's round trip delivers what was committed before it.
		if err := l.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		got := false
		for {
			wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			n, err := l.WaitForNotification(wctx)
			cancel()
			if err != nil {
				return got
			}
			got = got || n.Channel == store.UserDataChannel
		}
	}
	// Not read by the user data (only the set ids of profiles are).
	if _, err := conn.Exec(ctx, `INSERT INTO shared_ifc_set (id, name) VALUES (1, 's')`); err != nil {
		t.Fatal(err)
	}
	// Hot path writes: registration (state + assignment), re-registration,
	// SQN reservation.
	sarProfile(t, st)
	sarProfile(t, st)
	if _, _, err := st.ReserveSQNs(ctx, impi, 2); err != nil {
		t.Fatal(err)
	}
	if notified() {
		t.Fatal("Cx hot path writes notified hss_userdata")
	}
	for _, q := range []string{
		`UPDATE impu SET barring = true WHERE identity = '` + impu1 + `'`,
		`INSERT INTO scscf (name) VALUES ('sip:scscf9.ims:5080')`,
		`UPDATE impi SET imsu_id = imsu_id + 0, identity = identity || 'x'`,
		`UPDATE imsu SET charging_function_id = NULL`,
		`INSERT INTO application_server (name, server_name) VALUES ('as', 'sip:as')`,
		`INSERT INTO ifc (name, application_server_id) SELECT 'f', id FROM application_server`,
		`INSERT INTO spt (ifc_id, type, value) SELECT id, 'method', 'INVITE' FROM ifc`,
		`INSERT INTO service_profile_ifc (service_profile_id, ifc_id) SELECT p.id, f.id FROM service_profile p, ifc f`,
		`INSERT INTO service_profile_shared_ifc_set SELECT id, 1 FROM service_profile`,
		`INSERT INTO charging_function (name) VALUES ('cf')`,
		`UPDATE service_profile SET subscribed_media_profile_id = 1`,
		`DELETE FROM impu WHERE identity = '` + impu2 + `'`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if !notified() {
			t.Fatalf("%s: no notification", q)
		}
	}
	// A rolled-back change notifies nothing.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `UPDATE service_profile SET subscribed_media_profile_id = 2`); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	if notified() {
		t.Fatal("rolled-back change notified")
	}
}
