package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/imscore/imscore/hss/provision"
	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/aka"
)

func blocks(t *testing.T, st *store.Store, block, maxIMPIs int) {
	t.Helper()
	if err := st.EnableSQNBlocks(block, maxIMPIs); err != nil {
		t.Fatal(err)
	}
}

func TestEnableSQNBlocksRange(t *testing.T) {
	var st store.Store
	for _, b := range []int{0, -1, store.MaxSQNBlock + 1} {
		if err := st.EnableSQNBlocks(b, 0); err == nil {
			t.Errorf("block %d accepted", b)
		}
	}
	if err := st.EnableSQNBlocks(1, 0); err != nil || st.SQNBlock() != 1 {
		t.Fatalf("block 1: %v, %d", err, st.SQNBlock())
	}
	if err := st.EnableSQNBlocks(store.MaxSQNBlock, 0); err != nil || st.SQNBlock() != store.MaxSQNBlock {
		t.Fatalf("max block: %v, %d", err, st.SQNBlock())
	}
}

// One HSS alone: one durable write per block, the SQNs handed out are the
// consecutive SEQs (nothing skipped), whatever the mix of counts.
func TestSQNBlockConsecutive(t *testing.T) {
	ctx := context.Background()
	_, _, st := setup(t)
	blocks(t, st, 4, 0)
	want := uint64(sqn0)
	writes := 0
	last := sqnOf(t, st, impi)
	for i, n := range []int{1, 1, 1, 1, 1, 3, 2, 2, 5, 1, 4, 4, 1} {
		var sqns []uint64
		var err error
		var reserved = true
		if i%2 == 0 {
			_, _, sqns, reserved, err = st.PairReserve(ctx, impi, impu1, "", n)
		} else {
			_, sqns, err = st.ReserveSQNs(ctx, impi, n)
		}
		if err != nil || !reserved || len(sqns) != n {
			t.Fatalf("call %d (n %d): %v reserved %v, %d SQNs", i, n, err, reserved, len(sqns))
		}
		for _, s := range sqns {
			want = aka.NextSQN(want)
			if s != want {
				t.Fatalf("call %d: SQN %#x, want %#x", i, s, want)
			}
		}
		stored := sqnOf(t, st, impi)
		if stored != last {
			writes++
			last = stored
		}
		// The stored counter covers every SQN handed out; the cache
		// holds the rest of the block, never more than block − 1.
		if stored < want || aka.SEQ(stored)-aka.SEQ(want) != uint64(st.SQNCached(impi)) || st.SQNCached(impi) > 3 {
			t.Fatalf("call %d: stored %#x, last handed %#x, cached %d", i, stored, want, st.SQNCached(impi))
		}
	}
	if total := aka.SEQ(want) - aka.SEQ(sqn0); writes >= int(total) || writes < int(total)/5 {
		t.Fatalf("%d durable writes for %d SQNs in blocks of 4", writes, total)
	}
}

// Two HSS processes (two Stores) on one database, MARs for one IMPI in
// parallel: no SQN is handed out twice, each is covered by the counter.
func TestSQNBlocksTwoStoresDisjoint(t *testing.T) {
	ctx := context.Background()
	dsn, _, a := setup(t)
	b, err := store.Open(ctx, dsn, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	blocks(t, a, 4, 0)
	blocks(t, b, 7, 0)
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 8; g++ {
		st := []*store.Store{a, b}[g%2]
		wg.Go(func() {
			for i := 0; i < 40; i++ {
				n := 1 + (g+i)%3
				var sqns []uint64
				var err error
				if i%4 == 3 {
					_, sqns, err = st.ReserveSQNs(ctx, impi, n)
				} else {
					_, _, sqns, _, err = st.PairReserve(ctx, impi, impu1, "", n)
				}
				if err != nil || len(sqns) != n {
					errs <- fmt.Errorf("goroutine %d: %v, %d SQNs", g, err, len(sqns))
					return
				}
				mu.Lock()
				for _, s := range sqns {
					if seen[s] {
						mu.Unlock()
						errs <- fmt.Errorf("SQN %#x handed out twice", s)
						return
					}
					seen[s] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	stored := sqnOf(t, a, impi)
	for s := range seen {
		if s <= sqn0 || s > stored || aka.IND(s) != 0 {
			t.Fatalf("SQN %#x outside (%#x, %#x]", s, uint64(sqn0), stored)
		}
	}
}

// ResyncSQN drops the IMPI's block, and any write to the row from outside
// (an administrator's UPDATE, even of the same value) makes it stale.
func TestSQNBlockInvalidation(t *testing.T) {
	ctx := context.Background()
	_, conn, st := setup(t)
	blocks(t, st, 16, 0)
	_, _, first, _, err := st.PairReserve(ctx, impi, impu1, "aka", 1)
	if err != nil || st.SQNCached(impi) != 15 {
		t.Fatalf("%v, cached %d", err, st.SQNCached(impi))
	}
	// Resync to exactly the counter the block stored: the row's SQN is
	// unchanged, the block must still go (its SQNs are not above SQN_MS).
	hi := sqnOf(t, st, impi)
	if err := st.ResyncSQN(ctx, impi, hi); err != nil {
		t.Fatal(err)
	}
	if st.SQNCached(impi) != 0 {
		t.Fatalf("block kept after ResyncSQN: %d cached", st.SQNCached(impi))
	}
	if _, _, s, _, err := st.PairReserve(ctx, impi, impu1, "aka", 1); err != nil || s[0] != aka.NextSQN(hi) {
		t.Fatalf("after resync to %#x: %#x %v (first was %#x)", hi, s, err, first)
	}
	// Resync below the cached block (SQN_MS lower than the counter).
	ms := aka.NextSQN(aka.NextSQN(sqn0))
	if err := st.ResyncSQN(ctx, impi, ms); err != nil {
		t.Fatal(err)
	}
	if _, s, err := st.ReserveSQNs(ctx, impi, 2); err != nil || s[0] != aka.NextSQN(ms) {
		t.Fatalf("after resync to %#x: %#x %v", ms, s, err)
	}
	// Administrator moves the counter from another process.
	admin := uint64(0x0000_4000_0000)
	if _, err := conn.Exec(ctx, `UPDATE impi SET sqn = $2 WHERE identity = $1`, impi, int64(admin)); err != nil {
		t.Fatal(err)
	}
	if _, _, s, _, err := st.PairReserve(ctx, impi, impu1, "", 1); err != nil || s[0] != aka.NextSQN(admin) {
		t.Fatalf("after admin SQN %#x: %#x %v", admin, s, err)
	}
	// Administrator rewrites the same value (e.g. a re-import): the row
	// version changes, the block is not used any more.
	stored := sqnOf(t, st, impi)
	if _, err := conn.Exec(ctx, `UPDATE impi SET sqn = sqn WHERE identity = $1`, impi); err != nil {
		t.Fatal(err)
	}
	if _, _, s, _, err := st.PairReserve(ctx, impi, impu1, "", 1); err != nil || s[0] != aka.NextSQN(stored) {
		t.Fatalf("after rewrite of %#x: %#x %v", stored, s, err)
	}
}

// The cache is bounded: beyond maxIMPIs the least recently used IMPI's
// remainder is skipped, never reused.
func TestSQNBlockLRU(t *testing.T) {
	ctx := context.Background()
	_, conn, st := setup(t)
	const carol = "carol@ims.mnc001.mcc001.3gppnetwork.org"
	if _, err := provision.AddSubscriber(ctx, conn, provision.Subscriber{IMPI: carol,
		IMPUs: []string{"sip:carol@ims.mnc001.mcc001.3gppnetwork.org"},
		K:     "465b5ce8b199b49faa5f0a2ee238a6bc", OP: "cdc202d5123e20f62b6d676ac72cb318"}); err != nil {
		t.Fatal(err)
	}
	blocks(t, st, 8, 1)
	_, a1, err := st.ReserveSQNs(ctx, impi, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.ReserveSQNs(ctx, carol, 1); err != nil {
		t.Fatal(err)
	}
	if st.SQNCacheLen() != 1 || st.SQNCached(impi) != 0 || st.SQNCached(carol) != 7 {
		t.Fatalf("cache: %d IMPIs, alice %d, carol %d", st.SQNCacheLen(), st.SQNCached(impi), st.SQNCached(carol))
	}
	_, a2, err := st.ReserveSQNs(ctx, impi, 1)
	if err != nil || aka.SEQ(a2[0])-aka.SEQ(a1[0]) != 8 {
		t.Fatalf("alice after eviction: %#x then %#x, %v", a1, a2, err)
	}
}
