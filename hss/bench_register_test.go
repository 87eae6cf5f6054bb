package hss_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"

	"github.com/imscore/imscore/hss"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/pgtest"
)

// BenchmarkCxFirstRegistration is the HSS's and PostgreSQL's share of
// `make bench-register`: one op is the Cx exchange of a first AKA
// registration of a subscriber never registered before, as the I-CSCF
// and S-CSCF make it (TS 29.228 §6.1.1, §6.3, §6.1.2: UAR, MAR, UAR,
// SAR REGISTRATION), from 8 concurrent clients over loopback TCP against
// an HSS with its default settings. Every op uses a fresh subscriber
// (bulk-provisioned before the timer starts), so each MAR reserves an SQN
// block and stores the pending S-CSCF, each SAR writes the assignment and
// reads the user data from the database. It reports pg-cpu-us/op and
// go-cpu-us/op (CPU time of the PostgreSQL back ends of the benchmark's
// database and of this process, HSS and clients, per registration):
// the figures to compare when changing the Cx hot path's SQL, more
// stable than the end-to-end benchmark's throughput.
func BenchmarkCxFirstRegistration(b *testing.B) { benchFirstRegistration(b, false) }

// BenchmarkCxRegistrationStorm is BenchmarkCxFirstRegistration on a
// young system: the runtime tables (scscf_assignment) were analysed when
// 200 subscribers had registered, as autovacuum does soon after start,
// and then b.N more register at once, as after an outage. PostgreSQL
// plans the HSS's statements for the small table it was told about; the
// figures show what the storm costs until the next automatic analysis.
func BenchmarkCxRegistrationStorm(b *testing.B) { benchFirstRegistration(b, true) }

func benchFirstRegistration(b *testing.B, analyzeYoung bool) {
	const clients = 8
	dsn, _ := pgtest.Migrated(b)
	cfg := hss.Config{DatabaseURL: dsn}
	if v := os.Getenv("BENCH_GROUP_COMMIT_LANES"); v != "" {
		cfg.GroupCommitLanes, _ = strconv.Atoi(v) // < 0: off
	}
	hs, nodes := benchHSS(b, cfg, clients)
	dbName := dsn[strings.LastIndexByte(dsn, '/')+1:]
	if i := strings.IndexByte(dbName, '?'); i >= 0 {
		dbName = dbName[:i]
	}
	var provisioned int // subscribers fr0 .. fr<provisioned-1> exist
	run := func(n int) (goCPU, pgCPU float64, el time.Duration) {
		first := provisioned
		provisionBulk(b, dsn, first, n)
		provisioned += n
		var next atomic.Int64
		var wg sync.WaitGroup
		goCPU0, pgCPU0 := pgtest.CPUSeconds(dbName)
		start := time.Now()
		for c := 0; c < clients; c++ {
			wg.Add(1)
			go func(node *diameter.Node) {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					u := first + int(i)
					impi, impu := fmt.Sprintf("fr%d@%s", u, realm), fmt.Sprintf("sip:fr%d@%s", u, realm)
					for _, req := range []func() *diam.Message{
						func() *diam.Message { return uar(node, impi, impu, diameter.UATRegistration) },
						func() *diam.Message { return mar(node, impi, impu, "Digest-AKAv1-MD5", 1, nil) },
						func() *diam.Message { return uar(node, impi, impu, diameter.UATRegistration) },
						func() *diam.Message { return sar(node, impi, impu, diameter.SATRegistration, 0) },
					} {
						a, err := node.Send(context.Background(), req())
						if err != nil || !diameter.IsSuccess(a) {
							b.Errorf("subscriber fr%d: request failed: %v %v", u, err, a)
							return
						}
					}
				}
			}(nodes[c])
		}
		wg.Wait()
		el = time.Since(start)
		goCPU1, pgCPU1 := pgtest.CPUSeconds(dbName)
		return goCPU1 - goCPU0, pgCPU1 - pgCPU0, el
	}
	b.StopTimer()
	// Untimed warm-up: the HSS's prepared statements and caches, the
	// back ends' plan caches.
	run(200)
	if analyzeYoung {
		pgtest.Exec(b, dsn, "ANALYZE scscf_assignment")
	}
	b.StartTimer()
	goCPU, pgCPU, el := run(b.N)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "reg/s")
	if batches, jobs := hs.Store.GroupCommitStats(); batches > 0 {
		b.ReportMetric(float64(jobs)/float64(batches), "jobs/batch")
	}
	if goCPU > 0 {
		b.ReportMetric(goCPU*1e6/float64(b.N), "go-cpu-us/op")
		b.ReportMetric(pgCPU*1e6/float64(b.N), "pg-cpu-us/op")
	}
}

// provisionBulk adds n AKA subscribers fr<first> .. fr<first+n-1> (one
// IMPI, one IMPU, one implicit set and IMSU each, the default service
// profile) with a few set-based statements, then vacuums and analyses
// the subscriber tables as a provisioned database would have been.
func provisionBulk(b *testing.B, dsn string, first, n int) {
	b.Helper()
	if n == 0 {
		return
	}
	sql := strings.NewReplacer("$FIRST", fmt.Sprint(first), "$LAST", fmt.Sprint(first+n-1),
		"$REALM", realm, "$K", testK, "$OP", testOP).Replace(`
	CREATE TEMP TABLE g AS SELECT g AS n, 'fr' || g AS name FROM generate_series($FIRST, $LAST) g;
	CREATE TEMP TABLE s AS
		WITH su AS (INSERT INTO imsu (name) SELECT name FROM g RETURNING id, name),
		irs AS (INSERT INTO implicit_registration_set SELECT FROM g RETURNING id)
		SELECT su.id AS imsu_id, su.name, irs.id AS irs_id FROM
			(SELECT id, name, row_number() OVER (ORDER BY id) r FROM su) su JOIN
			(SELECT id, row_number() OVER (ORDER BY id) r FROM irs) irs USING (r);
	WITH i AS (INSERT INTO impi (imsu_id, identity, k, op, op_type, auth_schemes)
			SELECT imsu_id, name || '@$REALM', decode('$K', 'hex'), decode('$OP', 'hex'), 'op', '{aka}' FROM s
			RETURNING id, identity),
		u AS (INSERT INTO impu (identity, service_profile_id, implicit_set_id)
			SELECT 'sip:' || name || '@$REALM', (SELECT id FROM service_profile WHERE name = 'default'), irs_id FROM s
			RETURNING id, identity)
	INSERT INTO impi_impu (impi_id, impu_id)
		SELECT i.id, u.id FROM i JOIN u ON u.identity = 'sip:' || i.identity;
	DROP TABLE g, s;`)
	pgtest.Exec(b, dsn, sql)
	pgtest.Exec(b, dsn, "VACUUM ANALYZE imsu, impi, impu, impi_impu, implicit_registration_set")
}
