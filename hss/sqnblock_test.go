package hss_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/imscore/imscore/hss"
	"github.com/imscore/imscore/pkg/aka"
	"github.com/imscore/imscore/pkg/diameter"
)

// startHSS starts one more HSS on dsn with SQN blocks of block and returns
// its Diameter address.
func startHSS(t *testing.T, dsn string, block int) string {
	t.Helper()
	s, err := hss.New(hss.Config{
		DiameterListen: "127.0.0.1:0", Realm: realm, AcceptAnyPeer: true, DatabaseURL: dsn,
		Logger: zaptest.NewLogger(t), MaxAuthItems: 8, SQNBlock: block,
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Close(ctx)
	})
	return a.String()
}

func TestNewRejectsSQNBlock(t *testing.T) {
	for _, b := range []int{-1, 1025} {
		if _, err := hss.New(hss.Config{Realm: realm, DatabaseURL: "postgres://127.0.0.1/x", SQNBlock: b}); err == nil {
			t.Errorf("SQNBlock %d accepted", b)
		}
	}
}

// Two HSS processes on one database (blocks of 16 and 5), S-CSCFs sending
// MARs for the same IMPI to both at once: every vector the UE accepts
// (AUTN/MAC-A checked), and no SQN is handed out twice.
func TestMARTwoHSSInstancesSQNsDisjoint(t *testing.T) {
	e := newEnv(t)
	other := startHSS(t, e.dsn, 5)
	const clients, perClient = 8, 12
	var mu sync.Mutex
	seen := map[uint64]string{}
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		addr, name := e.addr, "A"
		if i%2 == 1 {
			addr, name = other, "B"
		}
		n := dial(t, addr, fmt.Sprintf("scscf%d.%s", i, realm))
		wg.Go(func() {
			for j := 0; j < perClient; j++ {
				count := uint32(1 + (i+j)%3)
				a := send(t, n, mar(n, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", count, nil))
				if !diameter.IsSuccess(a) {
					errs <- fmt.Errorf("HSS %s: MAA not successful: %v", name, a)
					return
				}
				sq := checkVectors(t, a, items(t, a))
				if len(sq) != int(count) {
					errs <- fmt.Errorf("HSS %s: %d vectors, want %d", name, len(sq), count)
					return
				}
				mu.Lock()
				for _, s := range sq {
					if by, dup := seen[s]; dup {
						mu.Unlock()
						errs <- fmt.Errorf("SQN %#x handed out by HSS %s and HSS %s", s, by, name)
						return
					}
					seen[s] = name
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
	var stored int64
	if err := e.db.QueryRow(context.Background(), `SELECT sqn FROM impi WHERE identity = $1`, aliceIMPI).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	for s := range seen {
		if s > uint64(stored) {
			t.Fatalf("SQN %#x handed out above the stored counter %#x", s, stored)
		}
	}
}

// A restart loses the unused rest of the block: the next SQN is at most
// one block (16 SEQ values, 16 × 32 in SQN) above the last one handed out,
// and a UE whose Δ allows that accepts it.
func TestMARRestartSkipsAtMostOneBlock(t *testing.T) {
	e := newEnv(t)
	c := e.client(scscfHost)
	a := send(t, c, mar(c, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, nil))
	before := checkVectors(t, a, items(t, a))[0]
	e.stop()
	e.start()
	c = e.client(scscfHost)
	a = send(t, c, mar(c, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, nil))
	it := items(t, a)[0]
	after := checkVectors(t, a, [][5][]byte{it})[0]
	if after <= before || aka.SEQ(after)-aka.SEQ(before) > hss.DefaultSQNBlock {
		t.Fatalf("SQN %#x before the restart, %#x after: more than one block (%d) skipped", before, after, hss.DefaultSQNBlock)
	}
	opc, _ := aka.ComputeOPc(mustHex(testK), mustHex(testOP))
	ue, err := aka.NewUE(mustHex(testK), opc, before)
	if err != nil {
		t.Fatal(err)
	}
	ue.MaxDelta = hss.DefaultSQNBlock << aka.INDBits
	if _, _, _, _, err := ue.Authenticate(it[0][:16], it[0][16:]); err != nil {
		t.Fatalf("UE with SQN_MS %#x, Δ %#x rejects %#x: %v", before, ue.MaxDelta, after, err)
	}
}

// Resynchronisation while the HSS holds a block: the MARs after it give
// SQNs above SQN_MS (the block is dropped), on this HSS and on another one
// that also held a block.
func TestMARResyncDropsBlock(t *testing.T) {
	e := newEnv(t)
	other := startHSS(t, e.dsn, 16)
	c := e.client(scscfHost)
	o := dial(t, other, "scscf2."+realm)
	var rnd []byte
	for _, n := range []*diameter.Node{c, o, c} {
		a := send(t, n, mar(n, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, nil))
		rnd = items(t, a)[0][0][:16]
	}
	// The UE is ahead of both blocks, but below what a new block of the
	// old counter would give if the counter were not reset.
	var stored int64
	if err := e.db.QueryRow(context.Background(), `SELECT sqn FROM impi WHERE identity = $1`, aliceIMPI).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	sqnMS := uint64(stored) + 3<<aka.INDBits
	opc, _ := aka.ComputeOPc(mustHex(testK), mustHex(testOP))
	auts, err := aka.GenerateAUTS(mustHex(testK), opc, rnd, sqnMS)
	if err != nil {
		t.Fatal(err)
	}
	a := send(t, c, mar(c, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, append(append([]byte{}, rnd...), auts...)))
	wantResult(t, a, diameter.DiameterSuccess, false)
	got := checkVectors(t, a, items(t, a))
	if got[0] != aka.NextSQN(sqnMS) {
		t.Fatalf("resync MAA SQN %#x, want %#x", got[0], aka.NextSQN(sqnMS))
	}
	last := got[0]
	for i, n := range []*diameter.Node{c, o, c, o} {
		a := send(t, n, mar(n, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, nil))
		s := checkVectors(t, a, items(t, a))[0]
		if s <= sqnMS || s <= last {
			t.Fatalf("MAR %d after resync to SQN_MS %#x: SQN %#x (previous %#x)", i, sqnMS, s, last)
		}
		last = s
	}
}
