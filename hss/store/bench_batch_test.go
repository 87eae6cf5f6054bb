package store_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// BenchmarkBatchedStatements measures what PostgreSQL alone spends per
// row on the three kinds of work of the Cx hot path, each on a narrow
// two- or three-column table, when every row is its own statement (as the
// HSS sends them today, one per Cx request) and when one statement
// carries a batch of rows (unnest of arrays), from 4 connections:
//
//   - sqn: a durable SQN advance (UPDATE … RETURNING, synchronous_commit
//     on, one commit per statement), as MAR makes it;
//   - assignment: a durable S-CSCF assignment upsert, as MAR and SAR make
//     it;
//   - lookup: a key look-up, as UAR makes it.
//
// One op is one row. It reports pg-cpu-us/row: the CPU time of all
// PostgreSQL processes of the host (WAL writer included) per row, so run
// it on an otherwise idle machine. These are the figures behind
// docs/adr/0002-registration-capacity.md; `make bench-batch` runs it.
func BenchmarkBatchedStatements(b *testing.B) {
	dsn := pgtest.NewDB(b)
	const keys = 100_000
	pgtest.Exec(b, dsn, fmt.Sprintf(`CREATE TABLE bench_sqn (impi_id bigint PRIMARY KEY, sqn bigint NOT NULL);
		CREATE TABLE bench_assignment (impu_id bigint PRIMARY KEY, scscf_name text NOT NULL, impi_id bigint NOT NULL);
		INSERT INTO bench_sqn SELECT g, 0 FROM generate_series(1, %d) g;
		INSERT INTO bench_assignment SELECT g, 'sip:scscf0.ims.example.org', g FROM generate_series(1, %d) g;`, keys, keys))
	pgtest.Exec(b, dsn, `VACUUM ANALYZE bench_sqn`)
	pgtest.Exec(b, dsn, `VACUUM ANALYZE bench_assignment`)
	pool, err := pgxpool.New(context.Background(), pgtest.WithParams(dsn, "synchronous_commit=on"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)

	// Each statement takes its keys as one bigint array; with one key it is
	// the single-row statement PostgreSQL plans with the primary key too.
	statements := map[string]string{
		"sqn": `UPDATE bench_sqn s SET sqn = s.sqn + 32 FROM unnest($1::bigint[]) v(id)
			WHERE s.impi_id = v.id RETURNING s.impi_id, s.sqn`,
		"assignment": `INSERT INTO bench_assignment (impu_id, scscf_name, impi_id)
			SELECT v.id, 'sip:scscf' || (v.id % 3) || '.ims.example.org', v.id FROM unnest($1::bigint[]) v(id)
			ON CONFLICT (impu_id) DO UPDATE SET scscf_name = EXCLUDED.scscf_name, impi_id = EXCLUDED.impi_id
			RETURNING impu_id`,
		"lookup": `SELECT s.impi_id, s.sqn FROM bench_sqn s WHERE s.impi_id = ANY ($1::bigint[])`,
	}
	single := map[string]string{
		"sqn":        `UPDATE bench_sqn SET sqn = sqn + 32 WHERE impi_id = $1 RETURNING impi_id, sqn`,
		"assignment": `INSERT INTO bench_assignment (impu_id, scscf_name, impi_id) VALUES ($1::bigint, 'sip:scscf' || ($1::bigint % 3) || '.ims.example.org', $1::bigint) ON CONFLICT (impu_id) DO UPDATE SET scscf_name = EXCLUDED.scscf_name, impi_id = EXCLUDED.impi_id RETURNING impu_id`,
		"lookup":     `SELECT impi_id, sqn FROM bench_sqn WHERE impi_id = $1`,
	}
	for _, kind := range []string{"sqn", "assignment", "lookup"} {
		for _, c := range []struct {
			batch     int
			pipelined bool
		}{{1, false}, {4, false}, {16, false}, {4, true}, {16, true}} {
			batch := c.batch
			name := fmt.Sprintf("%s/rows=%d", kind, batch)
			if c.pipelined {
				name = fmt.Sprintf("%s/pipelined=%d", kind, batch)
			}
			b.Run(name, func(b *testing.B) {
				var next, rows atomic.Int64
				var wg sync.WaitGroup
				_, pg0 := pgtest.CPUSeconds("")
				b.ResetTimer()
				for range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						ctx := context.Background()
						for {
							first := next.Add(int64(batch)) - int64(batch)
							if first >= int64(b.N) {
								return
							}
							n := min(int64(batch), int64(b.N)-first)
							ids := make([]int64, n)
							for i := range ids {
								ids[i] = (first+int64(i))%keys + 1
							}
							var r pgx.Rows
							var err error
							if c.pipelined {
								pb := &pgx.Batch{}
								for _, id := range ids {
									pb.Queue(single[kind], id)
								}
								br := pool.SendBatch(ctx, pb)
								for range ids {
									r, err = br.Query()
									if err != nil {
										break
									}
									for r.Next() {
										rows.Add(1)
									}
									r.Close()
									if err = r.Err(); err != nil {
										break
									}
								}
								if cerr := br.Close(); err == nil {
									err = cerr
								}
								if err != nil {
									b.Error(err)
									return
								}
								continue
							}
							if batch == 1 {
								r, err = pool.Query(ctx, single[kind], ids[0])
							} else {
								r, err = pool.Query(ctx, statements[kind], ids)
							}
							if err == nil {
								for r.Next() {
									rows.Add(1)
								}
								r.Close()
								err = r.Err()
							}
							if err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.StopTimer()
				if got := rows.Load(); got != int64(b.N) {
					b.Fatalf("%d rows returned for %d keys", got, b.N)
				}
				_, pg1 := pgtest.CPUSeconds("")
				b.ReportMetric((pg1-pg0)*1e6/float64(b.N), "pg-cpu-us/row")
			})
		}
	}
}
