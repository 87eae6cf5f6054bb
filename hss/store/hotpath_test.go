package store_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imscore/imscore/hss/provision"
	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/aka"
)

const (
	bobIMPI = "bob@ims.mnc001.mcc001.3gppnetwork.org"
	bobIMPU = "sip:bob@ims.mnc001.mcc001.3gppnetwork.org"
)

func sqnOf(t *testing.T, st *store.Store, impi string) uint64 {
	t.Helper()
	cr, err := st.Credentials(context.Background(), impi)
	if err != nil {
		t.Fatal(err)
	}
	return cr.SQN
}

func TestPairReserve(t *testing.T) {
	ctx := context.Background()
	_, conn, st := setup(t)
	if _, err := provision.AddSubscriber(ctx, conn, provision.Subscriber{IMPI: bobIMPI, IMPUs: []string{bobIMPU}, Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	pi, cr, sqns, reserved, err := st.PairReserve(ctx, impi, impu2, "aka", 3)
	if err != nil || !reserved || !pi.Associated || pi.IMPU.Identity != impu2 || pi.IMPI.Identity != impi {
		t.Fatalf("PairReserve: %+v reserved %v %v", pi, reserved, err)
	}
	want := uint64(sqn0)
	for i, s := range sqns {
		want = aka.NextSQN(want)
		if s != want {
			t.Fatalf("sqn[%d] = %#x, want %#x", i, s, want)
		}
	}
	if cr.SQN != sqn0 || sqnOf(t, st, impi) != want {
		t.Fatalf("stored SQN %#x (before %#x), want %#x", sqnOf(t, st, impi), cr.SQN, want)
	}
	// Not associated, unknown IMPU, digest-only IMPI, a scheme the IMPI
	// lacks: nothing reserved, SQN unchanged.
	for _, c := range []struct{ impi, impu, scheme string }{
		{impi, bobIMPU, "aka"}, {impi, "sip:nobody@x", "aka"}, {bobIMPI, bobIMPU, ""}, {impi, impu1, "akav2"},
	} {
		pi, _, _, reserved, err := st.PairReserve(ctx, c.impi, c.impu, c.scheme, 1)
		if reserved {
			t.Fatalf("%+v: reserved", c)
		}
		if c.impu == "sip:nobody@x" != errors.Is(err, store.ErrNotFound) {
			t.Fatalf("%+v: %v", c, err)
		}
		if err == nil && c.impu == bobIMPU && c.impi == impi && pi.Associated {
			t.Fatalf("%+v: associated", c)
		}
	}
	if sqnOf(t, st, impi) != want {
		t.Fatal("SQN moved without a reservation")
	}
	// Concurrent MAR hot path: all SQNs distinct, the stored SQN is the
	// highest handed out.
	seen := reserveConcurrently(t, st, 8, 20, 2, nil)
	if len(seen) != 8*20*2 {
		t.Fatalf("%d SQNs", len(seen))
	}
	last := sqnOf(t, st, impi)
	for s := range seen {
		if s > last {
			t.Fatalf("SQN %#x above the stored %#x", s, last)
		}
	}
}

func TestPairAssignSubscription(t *testing.T) {
	ctx := context.Background()
	_, conn, st := setup(t)
	if _, err := provision.AddSubscriber(ctx, conn, provision.Subscriber{IMPI: bobIMPI, IMPUs: []string{bobIMPU}, Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	// Not associated: answered from pi, nothing written.
	pi, _, _, err := st.PairAssignSubscription(ctx, bobIMPI, impu1, "sip:s1", "s1", store.Registered, true)
	if err != nil || pi.Associated {
		t.Fatalf("bob/alice: %+v %v", pi, err)
	}
	if a, _ := st.Assignment(ctx, impu1); a.SCSCFName != "" || a.State != store.NotRegistered {
		t.Fatalf("written for a pair that does not hold: %+v", a)
	}
	if _, _, _, err := st.PairAssignSubscription(ctx, impi, "sip:nobody@x", "sip:s1", "s1", store.Registered, true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown IMPU: %v", err)
	}
	// Associated: the whole IRS is assigned and registered, user data of the IRS.
	pi, sub, _, err := st.PairAssignSubscription(ctx, impi, impu2, "sip:s1", "s1", store.Registered, true)
	if err != nil || !pi.Associated || sub == nil || len(sub.Profiles) != 1 || len(sub.Profiles[0].PublicIdentities) != 2 {
		t.Fatalf("alice: %+v %+v %v", pi, sub, err)
	}
	old, err := st.SubscriptionData(ctx, impi, impu1)
	if err != nil || len(old.Profiles) != len(sub.Profiles) || old.IRSID != sub.IRSID {
		t.Fatalf("SubscriptionData %+v vs %+v: %v", old, sub, err)
	}
	first := map[string]time.Time{}
	for _, u := range []string{impu1, impu2} {
		a, err := st.Assignment(ctx, u)
		if err != nil || a.SCSCFName != "sip:s1" || a.DiameterHost != "s1" || a.IMPI != impi || a.State != store.Registered {
			t.Fatalf("%s: %+v %v", u, a, err)
		}
		first[u] = a.AssignedAt
	}
	// Re-registration: nothing changes (assigned_at kept); without profile.
	if _, sub, _, err := st.PairAssignSubscription(ctx, impi, impu1, "sip:s1", "s1", store.Registered, false); err != nil || sub != nil {
		t.Fatalf("re-registration: %+v %v", sub, err)
	}
	for _, u := range []string{impu1, impu2} {
		if a, _ := st.Assignment(ctx, u); !a.AssignedAt.Equal(first[u]) || a.State != store.Registered {
			t.Fatalf("re-registration rewrote %s: %+v", u, a)
		}
	}
	// Another S-CSCF: overwritten IRS-wide, and AssignIRS back to unregistered.
	if _, _, _, err := st.PairAssignSubscription(ctx, impi, impu1, "sip:s2", "s2", store.Registered, false); err != nil {
		t.Fatal(err)
	}
	if err := st.AssignIRS(ctx, pi.IMPU.IRSID, "sip:s2", "s2", 0, store.Unregistered); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{impu1, impu2} {
		if a, _ := st.Assignment(ctx, u); a.SCSCFName != "sip:s2" || a.IMPI != "" || a.State != store.Unregistered {
			t.Fatalf("%s after AssignIRS: %+v", u, a)
		}
	}
}

func TestOpenLazyAndOpen(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Nothing listens on port 1: OpenLazy succeeds (pgxpool dials on
	// first use), Ping and Open fail; a malformed URL fails at once.
	dsn := "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=2"
	st, err := store.OpenLazy(dsn, 4)
	if err != nil {
		t.Fatalf("OpenLazy: %v", err)
	}
	defer st.Close()
	if st.Pool().Config().MaxConns != 4 || st.ConnConfig().Port != 1 {
		t.Fatalf("config: max %d port %d", st.Pool().Config().MaxConns, st.ConnConfig().Port)
	}
	if err := st.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded without a server")
	}
	if _, err := store.Open(ctx, dsn, 4); err == nil {
		t.Fatal("Open succeeded without a server")
	}
	if _, err := store.OpenLazy("postgres://%zz", 4); err == nil {
		t.Fatal("OpenLazy accepted a malformed URL")
	}
	cfg, err := store.PoolConfig("postgres://postgres@127.0.0.1:5432/x?connect_timeout=60", 0)
	if err != nil || cfg.MaxConns != store.DefaultMaxConns || cfg.ConnConfig.ConnectTimeout != 5*time.Second {
		t.Fatalf("PoolConfig: %+v %v", cfg, err)
	}
}

// The hot path statements are prepared once per connection and then
// executed by name (pgx QueryExecModeCacheStatement): PostgreSQL lists
// them in pg_prepared_statements with every execution counted, and after
// the first five it plans them no more (generic plan).
func TestHotPathStatementsPrepared(t *testing.T) {
	ctx := context.Background()
	dsn, _, _ := setup(t)
	st, err := store.Open(ctx, dsn, 1) // one connection: every call on it
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const n = 12
	for i := 0; i < n; i++ {
		if _, err := st.Pair(ctx, impi, impu1); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := st.PairAssignSubscription(ctx, impi, impu1, "sip:s1", "s1", store.Registered, true); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := st.Pool().Query(ctx, `SELECT statement, generic_plans, custom_plans FROM pg_prepared_statements
		WHERE statement LIKE 'WITH u (%'`)
	if err != nil {
		t.Fatal(err)
	}
	var got int
	for rows.Next() {
		var sql string
		var generic, custom int64
		if err := rows.Scan(&sql, &generic, &custom); err != nil {
			t.Fatal(err)
		}
		got++
		if generic+custom != n || generic < n-5 {
			t.Errorf("%d generic + %d custom plans for %.60q…, want %d executions, ≥ %d generic", generic, custom, sql, n, n-5)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got != 2 {
		t.Fatalf("%d prepared hot path statements, want 2 (pair, pair+assignment)", got)
	}
}

// TestPairReservePending: the MAR hot path stores the pending S-CSCF of
// the whole implicit set with the reservation (TS 29.228 §6.3.1), never
// without one, and the state stays NOT_REGISTERED; with the SQN block
// cache a MAR served from memory stores it with a statement of its own.
func TestPairReservePending(t *testing.T) {
	ctx := context.Background()
	for _, block := range []int{1, 8} {
		_, _, st := setup(t)
		if err := st.EnableSQNBlocks(block, 0); err != nil {
			t.Fatal(err)
		}
		assigned := func(impu, want string) {
			t.Helper()
			a, err := st.Assignment(ctx, impu)
			if err != nil || a.SCSCFName != want || a.State != store.NotRegistered {
				t.Fatalf("block %d: assignment of %s = %+v, %v; want %q, not registered", block, impu, a, err, want)
			}
		}
		// Not eligible (a scheme the IMPI lacks): nothing reserved, nothing stored.
		if _, _, _, reserved, err := st.PairReservePending(ctx, impi, impu1, "akav2", 1, "sip:s1.example", "s1"); err != nil || reserved {
			t.Fatalf("block %d: akav2: reserved %v, %v", block, reserved, err)
		}
		assigned(impu1, "")
		pi, _, _, reserved, err := st.PairReservePending(ctx, impi, impu1, "aka", 1, "sip:s1.example", "s1")
		if err != nil || !reserved || pi.SCSCFName != "" {
			t.Fatalf("block %d: reserved %v, pi %+v, %v", block, reserved, pi, err)
		}
		assigned(impu1, "sip:s1.example")
		assigned(impu2, "sip:s1.example") // same implicit set
		// Re-registration to the same S-CSCF reads the name, another one overwrites it.
		if pi, _, _, _, err = st.PairReservePending(ctx, impi, impu2, "aka", 1, "sip:s1.example", "s1"); err != nil || pi.SCSCFName != "sip:s1.example" {
			t.Fatalf("block %d: pi %+v, %v", block, pi, err)
		}
		if _, _, _, reserved, err = st.PairReservePending(ctx, impi, impu2, "aka", 1, "sip:s2.example", "s2"); err != nil || !reserved {
			t.Fatalf("block %d: s2: reserved %v, %v", block, reserved, err)
		}
		assigned(impu1, "sip:s2.example")
		a, _ := st.Assignment(ctx, impu1)
		if a.DiameterHost != "s2" || a.IMPI != impi {
			t.Fatalf("block %d: assignment %+v", block, a)
		}
	}
}

func TestSetPendingAssignment(t *testing.T) {
	ctx := context.Background()
	_, _, st := setup(t)
	if prev, err := st.SetPendingAssignment(ctx, impu1, "sip:s1.example", "s1", impi); err != nil || prev != "" {
		t.Fatalf("first: %q, %v", prev, err)
	}
	if prev, err := st.SetPendingAssignment(ctx, impu2, "sip:s1.example", "", "nobody@x"); err != nil || prev != "sip:s1.example" {
		t.Fatalf("same name, unknown IMPI (nothing to write): %q, %v", prev, err)
	}
	if _, err := st.SetPendingAssignment(ctx, impu2, "sip:s2.example", "", "nobody@x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown IMPI: %v", err)
	}
	if _, err := st.SetPendingAssignment(ctx, "sip:nobody@x", "sip:s2.example", "", impi); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown IMPU: %v", err)
	}
	if prev, err := st.SetPendingAssignment(ctx, impu2, "sip:s2.example", "s2", ""); err != nil || prev != "sip:s1.example" {
		t.Fatalf("overwrite: %q, %v", prev, err)
	}
	a, err := st.Assignment(ctx, impu1)
	if err != nil || a.SCSCFName != "sip:s2.example" || a.DiameterHost != "s2" || a.IMPI != impi || a.State != store.NotRegistered {
		t.Fatalf("assignment %+v, %v (IMPI kept when none is given)", a, err)
	}
}

// With group commit, concurrent MARs of one IMPI land in the same batch
// (one transaction): each reservation sees the one before it, so no SQN
// is handed out twice, with and without SQN blocks; SARs and UARs of the
// same batches answer as alone.
func TestHotPathGroupCommit(t *testing.T) {
	for _, block := range []int{1, 4} {
		t.Run(fmt.Sprintf("sqn-block=%d", block), func(t *testing.T) {
			ctx := context.Background()
			dsn, _, _ := setup(t)
			st, err := store.Open(ctx, dsn, 4)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.EnableSQNBlocks(block, 0); err != nil {
				t.Fatal(err)
			}
			if err := st.EnableGroupCommit(1); err != nil {
				t.Fatal(err)
			}
			seen := reserveConcurrently(t, st, 16, 10, 3, func() bool {
				pi, _, _, err := st.PairAssignSubscription(ctx, impi, impu1, "sip:scscf.example", "", store.Registered, true)
				if err != nil || !pi.Associated {
					t.Errorf("PairAssignSubscription: %+v %v", pi, err)
					return false
				}
				if _, err := st.Pair(ctx, impi, "sip:nobody@example"); !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Pair of an unknown IMPU: %v", err)
					return false
				}
				return true
			})
			if len(seen) != 16*10*3 {
				t.Fatalf("%d SQNs", len(seen))
			}
			if last := sqnOf(t, st, impi); block == 1 {
				for s := range seen {
					if s > last {
						t.Fatalf("SQN %#x above the stored %#x", s, last)
					}
				}
			}
			batches, jobs := st.GroupCommitStats()
			if jobs != 16*10*3 || batches >= jobs {
				t.Fatalf("%d jobs in %d batches: no batch held more than one", jobs, batches)
			}
			t.Logf("%d jobs in %d batches", jobs, batches)
		})
	}
}

// reserveConcurrently has goroutines each make rounds MAR reservations
// (PairReserve of impi/impu1, n SQNs) and, after each, call then (nil:
// nothing; false stops that goroutine). It fails the test when an SQN is
// handed out twice and returns every SQN handed out.
func reserveConcurrently(t *testing.T, st *store.Store, goroutines, rounds, n int, then func() bool) map[uint64]bool {
	t.Helper()
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				_, _, sqns, reserved, err := st.PairReserve(context.Background(), impi, impu1, "", n)
				if err != nil || !reserved {
					t.Errorf("PairReserve: %v %v", reserved, err)
					return
				}
				mu.Lock()
				for _, s := range sqns {
					if seen[s] {
						t.Errorf("SQN %#x handed out twice", s)
					}
					seen[s] = true
				}
				mu.Unlock()
				if then != nil && !then() {
					return
				}
			}
		}()
	}
	wg.Wait()
	return seen
}

// TestClearPendingAssignment: SAR AUTHENTICATION_FAILURE/TIMEOUT clears a
// pending assignment, and leaves a registration that completed in the
// meantime alone (ClearAssignment, used before, cleared it: the UE that
// retried at once after a failed attempt was registered at its S-CSCF
// and "not registered" at the HSS, so calls to it got 480).
func TestClearPendingAssignment(t *testing.T) {
	ctx := context.Background()
	_, _, st := setup(t)
	if _, err := st.SetPendingAssignment(ctx, impu1, "sip:s1.example", "s1", impi); err != nil {
		t.Fatal(err)
	}
	if _, cleared, err := st.ClearPendingAssignment(ctx, impu1); err != nil || !cleared {
		t.Fatalf("pending: cleared %v, %v", cleared, err)
	}
	if a, err := st.Assignment(ctx, impu1); err != nil || a.SCSCFName != "" {
		t.Fatalf("pending assignment left: %+v, %v", a, err)
	}
	if _, err := st.SetAssignment(ctx, impu1, "sip:s1.example", "s1", impi, store.Registered); err != nil {
		t.Fatal(err)
	}
	if _, cleared, err := st.ClearPendingAssignment(ctx, impu1); err != nil || cleared {
		t.Fatalf("registered: cleared %v, %v", cleared, err)
	}
	if a, err := st.Assignment(ctx, impu1); err != nil || a.SCSCFName != "sip:s1.example" || a.State != store.Registered {
		t.Fatalf("registration undone: %+v, %v", a, err)
	}
	if _, _, err := st.ClearPendingAssignment(ctx, "sip:nobody@x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown IMPU: %v", err)
	}
}
