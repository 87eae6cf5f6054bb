package hss_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"go.uber.org/zap"

	"github.com/imscore/imscore/hss"
	"github.com/imscore/imscore/hss/provision"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/pgtest"
)

// BenchmarkCx drives MAR + SAR + UAR (one op = the three requests) from
// several concurrent S-CSCF clients over loopback TCP against an HSS on
// PostgreSQL, each client on its own 8 of the 64 subscribers. It reports
// requests/s, p50/p99 latency per request, the p50 of each command and
// allocs/op (whole process); go-cpu-us/req and pg-cpu-us/req, the CPU
// time of this process (HSS and clients) and of the PostgreSQL back ends
// of the benchmark's database during the timed part, per request; and
// rows-impi/op and rows-other/op, the rows inserted, updated or deleted
// per operation in impi (SQN blocks) and in every other table (the first
// SAR of each subscriber only: re-registrations write nothing).
// Environment: BENCH_SQN_BLOCK sets the SQN block (default
// hss.DefaultSQNBlock), BENCH_USERDATA_CACHE=-1 turns the user data cache
// off, BENCH_DB_CONNS sets the pool size (default: the HSS default, two per CPU core).
func BenchmarkCx(b *testing.B) {
	const clients, subs = 8, 64
	dsn, db := pgtest.Migrated(b)
	ctx := context.Background()
	for i := 0; i < subs; i++ {
		if _, err := provision.AddSubscriber(ctx, db, provision.Subscriber{
			IMPI: fmt.Sprintf("u%d@%s", i, realm), IMPUs: []string{fmt.Sprintf("sip:u%d@%s", i, realm)}, K: testK, OP: testOP,
		}); err != nil {
			b.Fatal(err)
		}
	}
	// BENCH_SQN_BLOCK sets Config.SQNBlock (default hss.DefaultSQNBlock;
	// 1 = one durable SQN write per MAR) to compare both in one binary.
	block := 0
	if v := os.Getenv("BENCH_SQN_BLOCK"); v != "" {
		var err error
		if block, err = strconv.Atoi(v); err != nil {
			b.Fatalf("BENCH_SQN_BLOCK=%q: %v", v, err)
		}
	}
	// BENCH_USERDATA_CACHE sets Config.UserDataCache (default on; -1 =
	// off: every SAR reads the profile from the database).
	udc := 0
	if v := os.Getenv("BENCH_USERDATA_CACHE"); v != "" {
		var err error
		if udc, err = strconv.Atoi(v); err != nil {
			b.Fatalf("BENCH_USERDATA_CACHE=%q: %v", v, err)
		}
	}
	// BENCH_DB_CONNS sets Config.DBConns (default 0: the HSS default, two per CPU core).
	conns := 0
	if v := os.Getenv("BENCH_DB_CONNS"); v != "" {
		var err error
		if conns, err = strconv.Atoi(v); err != nil {
			b.Fatalf("BENCH_DB_CONNS=%q: %v", v, err)
		}
	}
	_, nodes := benchHSS(b, hss.Config{DatabaseURL: dsn, DBConns: conns, SQNBlock: block, UserDataCache: udc}, clients)
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var perCmd [3][]time.Duration // MAR, SAR, UAR
	// Rows written (pg_stat_user_tables; back ends report their counts
	// within about a second of going idle): a re-registration that
	// changes nothing must write nothing, so only MAR's SQN blocks count.
	written := func() (sarRows, sqnRows float64) {
		time.Sleep(1500 * time.Millisecond)
		if err := db.QueryRow(ctx, `SELECT
			coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del) FILTER (WHERE relname <> 'impi'), 0)::float8,
			coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del) FILTER (WHERE relname = 'impi'), 0)::float8
			FROM pg_stat_user_tables`).Scan(&sarRows, &sqnRows); err != nil {
			b.Fatal(err)
		}
		return sarRows, sqnRows
	}
	other0, impi0 := written()
	b.ReportAllocs()
	b.ResetTimer()
	dbName := dsn[strings.LastIndexByte(dsn, '/')+1:]
	if i := strings.IndexByte(dbName, '?'); i >= 0 {
		dbName = dbName[:i]
	}
	goCPU0, pgCPU0 := pgtest.CPUSeconds(dbName)
	start := time.Now()
	var wg sync.WaitGroup
	per := (b.N + clients - 1) / clients
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int, n *diameter.Node) {
			defer wg.Done()
			local := make([]time.Duration, 0, per*3)
			var localCmd [3][]time.Duration
			for j := 0; ; j++ {
				i := next.Add(1)
				if i > int64(b.N) {
					break
				}
				// Each client keeps to its own subscribers (c, c+clients,
				// …), as one S-CSCF re-registering its users does.
				u := (c + j*clients) % subs
				impi, impu := fmt.Sprintf("u%d@%s", u, realm), fmt.Sprintf("sip:u%d@%s", u, realm)
				for k, req := range []func() *diam.Message{
					func() *diam.Message { return mar(n, impi, impu, "Digest-AKAv1-MD5", 1, nil) },
					func() *diam.Message { return sar(n, impi, impu, diameter.SATReRegistration, 0) },
					func() *diam.Message { return uar(n, impi, impu, diameter.UATRegistration) },
				} {
					t0 := time.Now()
					a, err := n.Send(context.Background(), req())
					d := time.Since(t0)
					local = append(local, d)
					localCmd[k] = append(localCmd[k], d)
					if err != nil || !diameter.IsSuccess(a) {
						b.Errorf("request failed: %v %v", err, a)
						return
					}
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			for k := range perCmd {
				perCmd[k] = append(perCmd[k], localCmd[k]...)
			}
			mu.Unlock()
		}(c, nodes[c])
	}
	wg.Wait()
	el := time.Since(start)
	goCPU1, pgCPU1 := pgtest.CPUSeconds(dbName)
	b.StopTimer()
	other1, impi1 := written()
	b.ReportMetric((other1-other0)/float64(b.N), "rows-other/op")
	b.ReportMetric((impi1-impi0)/float64(b.N), "rows-impi/op")
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		b.ReportMetric(float64(len(lat))/el.Seconds(), "req/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		if goCPU1 > 0 {
			b.ReportMetric((goCPU1-goCPU0)*1e6/float64(len(lat)), "go-cpu-us/req")
			b.ReportMetric((pgCPU1-pgCPU0)*1e6/float64(len(lat)), "pg-cpu-us/req")
		}
	}
	for k, name := range []string{"mar", "sar", "uar"} {
		l := perCmd[k]
		sort.Slice(l, func(i, j int) bool { return l[i] < l[j] })
		if len(l) > 0 {
			b.ReportMetric(float64(l[len(l)/2].Microseconds())/1000, name+"-p50-ms")
		}
	}
}

// benchHSS starts an HSS with cfg on a loopback port (any peer accepted,
// no logging), stopped when b ends, and connects clients S-CSCF clients
// (hosts scscf0.realm, scscf1.realm, …) to it.
func benchHSS(b *testing.B, cfg hss.Config, clients int) (*hss.Server, []*diameter.Node) {
	b.Helper()
	ctx := context.Background()
	cfg.DiameterListen, cfg.Realm, cfg.AcceptAnyPeer, cfg.Logger = "127.0.0.1:0", realm, true, zap.NewNop()
	s, err := hss.New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	addr, err := s.Start(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close(ctx) })
	nodes := make([]*diameter.Node, clients)
	for i := range nodes {
		nodes[i] = dial(b, addr.String(), fmt.Sprintf("scscf%d.%s", i, realm))
	}
	return s, nodes
}
