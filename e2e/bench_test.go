package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/jackc/pgx/v5"
)

// Printable AKA keys for the benchmark: sipp takes injected aka_K/aka_OP
// values as raw bytes, so they must be printable (no NUL, '[', ';', LF).
const (
	benchK   = "0123456789abcdef"
	benchOP  = "fedcba9876543210"
	benchAMF = "AA" // 0x4141
)

// TestBenchRegister is the registration benchmark behind
// `make bench-register`: sipp registers BENCH_REGISTER_N distinct AKA
// subscribers (imported with `imsctl subscriber import`) through
// I-CSCF → S-CSCF → HSS at BENCH_REGISTER_RATE calls/s, then the test
// prints registrations/s, p50/p99 time to 200 OK and CPU/RSS per process.
// With BENCH_VIA_PCSCF=1 (`make bench-register-pcscf`) sipp sends to a
// P-CSCF in front of the I-CSCF instead (no IPsec: sipp offers no
// Security-Client; Rx off), the whole chain of `make lab`.
// Skipped unless BENCH_REGISTER_N is set.
func TestBenchRegister(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("BENCH_REGISTER_N"))
	if n <= 0 {
		t.Skip("set BENCH_REGISTER_N (and BENCH_REGISTER_RATE) to run; see make bench-register")
	}
	rate, _ := strconv.Atoi(os.Getenv("BENCH_REGISTER_RATE"))
	if rate <= 0 {
		rate = 1000
	}
	sipp := needSipp(t)
	l, entry, names, chain := benchLab(t, nil)
	dir := t.TempDir()

	// Subscribers: CSV import for the HSS, injection file for sipp.
	var csv, inf strings.Builder
	csv.WriteString("impi,impu,k,op,amf\n")
	inf.WriteString("SEQUENTIAL\n")
	hexOf := func(s string) string { return fmt.Sprintf("%x", s) }
	for i := 0; i < n; i++ {
		user := fmt.Sprintf("bench%06d", i)
		fmt.Fprintf(&csv, "%s@%s,sip:%s@%s,%s,%s,%s\n", user, domain, user, domain, hexOf(benchK), hexOf(benchOP), hexOf(benchAMF))
		fmt.Fprintf(&inf, "%s;[authentication username=%s@%s aka_K=\"%s\" aka_OP=\"%s\" aka_AMF=\"%s\"]\n", user, user, domain, benchK, benchOP, benchAMF)
	}
	csvPath, infPath := filepath.Join(dir, "subs.csv"), filepath.Join(dir, "users.csv")
	if err := os.WriteFile(csvPath, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(infPath, []byte(inf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	l.imsctl("subscriber", "import", csvPath)
	t.Logf("imported %d subscribers in %v", n, time.Since(start).Round(time.Millisecond))
	// A provisioned database has been vacuumed and analysed long before
	// its subscribers register: do it now for the subscriber tables, so
	// that autovacuum's pass over them is not measured as registration
	// cost. The runtime tables (scscf_assignment, the S-CSCF's) are left
	// as a fresh system has them: analysing them while empty would make
	// the planner seq-scan them until the next autovacuum analysis.
	vacuumAnalyze(t, l.dsn, "imsu", "impi", "impu", "impi_impu", "implicit_registration_set", "service_profile")

	before := map[string]procSample{}
	for name, p := range l.procs {
		before[name] = sampleProc(t, p.cmd.Process.Pid)
	}
	pgBefore := postgresTicks()
	host0 := hostTicks()
	load0, _ := os.ReadFile("/proc/loadavg")
	drops0 := udpRcvbufErrors()
	cmd := exec.Command(sipp, fmt.Sprintf("127.0.0.1:%d", entry),
		"-sf", filepath.Join("testdata", "bench_register_aka.xml"), "-inf", infPath,
		"-key", "domain", domain, "-key", "expires", "3600", "-auth_uri", domain,
		"-i", "127.0.0.1", "-p", fmt.Sprint(freePort(t)), "-t", sippTransport(), "-max_socket", "10000",
		"-m", fmt.Sprint(n), "-r", fmt.Sprint(rate), "-l", "5000", "-nostdin", "-timeout", fmt.Sprintf("%ds", sippTimeout(n, rate)),
		"-trace_rtt", "-rtt_freq", "1", "-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_stat", "-stf", filepath.Join(dir, "stat.csv"))
	cmd.Dir = dir
	// sipp writes its rtt file next to the scenario name in the working dir.
	scen, _ := filepath.Abs(filepath.Join("testdata", "bench_register_aka.xml"))
	cmd.Args[3] = scen
	heapBefore := l.idleHeap(t, names)
	t0 := time.Now()
	profiled := l.profileDuring(t)
	out, err := cmd.CombinedOutput()
	elapsed := time.Since(t0)
	profiled()
	after := map[string]procSample{}
	for name, p := range l.procs {
		after[name] = sampleProc(t, p.cmd.Process.Pid)
	}
	pgAfter := postgresTicks()
	host1 := hostTicks()
	load1, _ := os.ReadFile("/proc/loadavg")
	drops1 := udpRcvbufErrors()
	ok := l.metric("scscf", `scscf_registrations_total{type="initial"}`)
	failed := l.metric("scscf", `scscf_auth_failures_total{cause="wrong_response"}`)
	if err != nil {
		errs, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		t.Logf("sipp exit: %v (failed calls are expected: sipp's zero-byte RES bug)\n%s\nsipp errors by kind: %v\nfirst errors:\n%s",
			err, tail(string(out), 1500), sippErrorKinds(string(errs)), head(string(errs), 3000))
	}
	rtts := readRTT(t, dir)
	p50, p99 := percentile(rtts, 0.50), percentile(rtts, 0.99)
	var b strings.Builder
	fmt.Fprintf(&b, "bench-register: %d subscribers offered at %d/s in %.2f s (%s)\n", n, rate, elapsed.Seconds(), chain)
	fmt.Fprintf(&b, "  completed AKA registrations: %.0f (%.0f/s over the sipp run); 403 by wrong response: %.0f\n", ok, ok/elapsed.Seconds(), failed)
	fmt.Fprintf(&b, "  refused by the I-CSCF's admission control (503): %.0f initial, %.0f challenge answers\n",
		l.metric("icscf", `icscf_overload_rejections_total{kind="initial"}`), l.metric("icscf", `icscf_overload_rejections_total{kind="challenge_answer"}`))
	fmt.Fprintf(&b, "  time to 200 OK (first REGISTER sent → 200): p50 %.1f ms, p99 %.1f ms over %d calls\n", p50, p99, len(rtts))
	for _, cmd := range []string{"MAR", "SAR"} {
		sum := l.metric("scscf", `scscf_cx_request_duration_seconds_sum{command="`+cmd+`"}`)
		cnt := l.metric("scscf", `scscf_cx_request_duration_seconds_count{command="`+cmd+`"}`)
		if cnt > 0 {
			fmt.Fprintf(&b, "  S-CSCF %s: %.0f sent, mean %.1f ms to the answer\n", cmd, cnt, sum/cnt*1000)
		}
	}
	fmt.Fprintf(&b, "  HSS answered (count, mean time inside the HSS):%s\n", l.hssCommands())
	if batches := l.metric("hss", "hss_group_commit_batches_total"); batches > 0 {
		fmt.Fprintf(&b, "  HSS group commit: %.0f batches, %.2f Cx requests per batch\n", batches, l.metric("hss", "hss_group_commit_jobs_total")/batches)
	}
	for _, name := range []string{"pcscf", "scscf"} {
		if batches := l.metric(name, name+"_db_write_batches_total"); batches > 0 {
			fmt.Fprintf(&b, "  %s state writes (pkg/pgbatch): %.0f batches, %.2f writes per batch\n", name, batches, l.metric(name, name+"_db_write_statements_total")/batches)
		}
	}
	for _, name := range names {
		bs, as := before[name], after[name]
		cpu := (as.cpuTicks - bs.cpuTicks) / clkTck / elapsed.Seconds() * 100
		fmt.Fprintf(&b, "  %-5s CPU %5.1f %% of one core, RSS %d MiB (peak %d MiB)\n", name, cpu, as.rssKB/1024, as.hwmKB/1024)
	}
	fmt.Fprintf(&b, "  postgres (all backends) CPU %5.1f %% of one core\n", (pgAfter-pgBefore)/clkTck/elapsed.Seconds()*100)
	if ps := cmd.ProcessState; ps != nil {
		fmt.Fprintf(&b, "  sipp  CPU %5.1f %% of one core\n", (ps.UserTime()+ps.SystemTime()).Seconds()/elapsed.Seconds()*100)
	}
	busy, total := host1.busy-host0.busy, host1.total-host0.total
	if total > 0 {
		fmt.Fprintf(&b, "  host CPU busy %.0f %% of %d cores (softirq %.0f %%)\n", busy/total*100, runtime.NumCPU(), (host1.softirq-host0.softirq)/total*100)
		if ok > 0 {
			// Host CPU time per completed registration: the capacity of
			// this machine is about NumCPU seconds divided by it.
			perReg := busy / clkTck / ok * 1000
			fmt.Fprintf(&b, "  host CPU per completed registration %.2f ms (capacity ≈ %.0f reg/s at 100 %% of %d cores)\n",
				perReg, float64(runtime.NumCPU())*1000/perReg, runtime.NumCPU())
		}
	}
	fmt.Fprintf(&b, "  UDP datagrams dropped by full receive buffers (host-wide RcvbufErrors): %d\n", drops1-drops0)
	fmt.Fprintf(&b, "  PostgreSQL tables (rows updated (HOT %%) / inserted, scans):%s\n", tableWrites(t, l.dsn))
	fmt.Fprintf(&b, "  load average before: %s  after: %s", strings.TrimSpace(string(load0)), load1)
	t.Log("\n" + b.String())
	fmt.Print(b.String())
	if ok == 0 {
		t.Fatalf("no registration completed:\n%s", tail(string(out), 3000))
	}
	l.reportSettledHeap(t, names, heapBefore, ok)
}

// sippTimeout is the seconds sipp may run: the time n calls take at rate
// per second, plus two minutes for the last ones, and at least 300.
func sippTimeout(n, rate int) int { return max(300, n/max(rate, 1)+120) }

// heapStat is a process's Go heap right after a garbage collection: live
// is what the reachable objects take (runtime HeapAlloc), inuse the
// spans holding them (HeapInuse: live plus the free slots of spans that
// still hold a live object, the fragmentation a load peak leaves).
type heapStat struct{ live, inuse float64 }

// idleHeap is each process's Go heap after a GC before the run, when
// BENCH_SETTLE_SECONDS asks for the heap report.
func (l *lab) idleHeap(t *testing.T, names []string) map[string]heapStat {
	if secs, _ := strconv.Atoi(os.Getenv("BENCH_SETTLE_SECONDS")); secs <= 0 {
		return nil
	}
	m := map[string]heapStat{}
	for _, name := range names {
		m[name] = l.heapAfterGC(t, name)
	}
	return m
}

// reportSettledHeap, when BENCH_SETTLE_SECONDS is set, prints each
// process's Go heap in use right after the run and again after that many
// seconds of idleness: completed SIP transactions are kept for RFC 3261's
// timers (32 s for UDP), so the heap must fall back once they expire; one
// that does not is a leak. With BENCH_PROFILE_DIR it also saves each
// process's heap profile then (NAME.heap.pprof).
//
// With before (the heap before the run) and the number of registrations
// held, it also prints what each registration holds after the idle
// period: per contact for the P-CSCF, per registered IMPU (one per
// subscriber here) for the S-CSCF, as live objects and as spans in use.
func (l *lab) reportSettledHeap(t *testing.T, names []string, before map[string]heapStat, registered float64) {
	secs, _ := strconv.Atoi(os.Getenv("BENCH_SETTLE_SECONDS"))
	if secs <= 0 {
		return
	}
	heap := func() map[string]heapStat {
		m := map[string]heapStat{}
		for _, name := range names {
			m[name] = l.heapAfterGC(t, name)
		}
		return m
	}
	h0 := heap()
	time.Sleep(time.Duration(secs) * time.Second)
	h1 := heap()
	if dir := os.Getenv("BENCH_PROFILE_DIR"); dir != "" {
		for _, name := range names {
			l.saveProfile(t, name, "/debug/pprof/heap?gc=1", filepath.Join(dir, name+".heap.pprof"))
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  Go heap after a GC (live objects / spans in use), right after the run → after %d s idle:", secs)
	for _, name := range names {
		fmt.Fprintf(&b, " %s %.0f/%.0f → %.0f/%.0f MiB", name, h0[name].live/(1<<20), h0[name].inuse/(1<<20), h1[name].live/(1<<20), h1[name].inuse/(1<<20))
	}
	if before != nil && registered > 0 {
		fmt.Fprintf(&b, "\n  Go heap per registration held after the idle period ((after − before the run) / %.0f), live objects / spans in use:", registered)
		for _, name := range names {
			fmt.Fprintf(&b, " %s %.2f / %.2f KiB", name, (h1[name].live-before[name].live)/registered/1024, (h1[name].inuse-before[name].inuse)/registered/1024)
		}
	}
	fmt.Println(b.String())
}

// saveProfile writes proc's pprof endpoint path to file (logged, not
// fatal, on failure).
func (l *lab) saveProfile(t *testing.T, proc, path, file string) {
	res, err := http.Get("http://" + l.procs[proc].admin + path)
	if err != nil {
		t.Logf("%s profile: %v", proc, err)
		return
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Logf("%s profile: %v", proc, err)
	}
}

// heapAfterGC returns the HeapAlloc and HeapInuse bytes of proc's
// runtime after a garbage collection (its pprof heap endpoint with gc=1),
// zero when unknown.
func (l *lab) heapAfterGC(t *testing.T, proc string) heapStat {
	var h heapStat
	res, err := http.Get("http://" + l.procs[proc].admin + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		t.Logf("%s heap: %v", proc, err)
		return h
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			h.live, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
		if v, ok := strings.CutPrefix(line, "# HeapInuse = "); ok {
			h.inuse, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return h
}

// benchLab starts the lab of a benchmark: HSS, S-CSCF (with scscfArgs)
// and I-CSCF, plus a P-CSCF in front when BENCH_VIA_PCSCF is set (no
// IPsec for UEs that offer none, Rx off; same extra flags as the
// S-CSCF). It returns the SIP port the UEs send to, the processes to
// report and the chain's description.
func benchLab(t *testing.T, scscfArgs []string) (l *lab, entry int, names []string, chain string) {
	t.Helper()
	if viaPCSCF() {
		pl := newPCSCFLabArgs(t, freePort(t), scscfArgs, append(benchPCSCFArgs(), scscfArgs...))
		return pl.lab, pl.pcscf, []string{"pcscf", "icscf", "scscf", "hss"}, "via P-CSCF, no IPsec, Rx off"
	}
	l = newLab(t, scscfArgs...)
	return l, l.icscf, []string{"icscf", "scscf", "hss"}, "no P-CSCF"
}

// benchPCSCFArgs are the P-CSCF flags of every load benchmark: all the
// load generator's UEs come from 127.0.0.1, so the throttling of failed
// authentication per UE address (pcscf/throttle.go) would take the
// failures of thousands of UEs (sipp 3.6.1's zero-byte RES bug fails
// about 3 % of AKA registrations) for one guessing address and lock the
// whole load out with 503s. BENCH_PCSCF_ARGS (space-separated flags, e.g.
// "--persist=false") adds to them.
func benchPCSCFArgs() []string {
	return append([]string{"--source-auth-failure-burst", "-1"}, strings.Fields(os.Getenv("BENCH_PCSCF_ARGS"))...)
}

// viaPCSCF tells whether BENCH_VIA_PCSCF asks for a P-CSCF in front.
func viaPCSCF() bool {
	v := os.Getenv("BENCH_VIA_PCSCF")
	return v != "" && v != "0"
}

// sippTransport is sipp's -t for the registration benchmark: through a
// P-CSCF one UDP socket per subscriber ("un"), as each real UE has its
// own address and port (the P-CSCF keys contacts by flow; thousands of
// subscribers on one flow would be one UE holding them all); straight to
// the I-CSCF, which keeps no per-flow state, one socket for all ("u1").
func sippTransport() string {
	if viaPCSCF() {
		return "un"
	}
	return "u1"
}

// profileDuring, when BENCH_PROFILE_DIR is set, takes a CPU profile of
// every process of the lab (their --admin-pprof endpoint) from 2 s into
// the run for BENCH_PROFILE_SECONDS (default 5) and writes NAME.pprof
// there, with the allocations of the same seconds in NAME.allocs.pprof;
// the returned func waits for them. Read with
// `go tool pprof -top bin/NAME DIR/NAME.pprof` (allocations:
// `-sample_index=alloc_space`).
func (l *lab) profileDuring(t *testing.T) (wait func()) {
	dir := os.Getenv("BENCH_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	return l.profileInto(t, dir)
}

// profileInto is profileDuring writing into dir.
func (l *lab) profileInto(t *testing.T, dir string) (wait func()) {
	secs, _ := strconv.Atoi(os.Getenv("BENCH_PROFILE_SECONDS"))
	if secs <= 0 {
		secs = 5
	}
	var wg sync.WaitGroup
	for name, p := range l.procs {
		for endpoint, file := range map[string]string{"profile": name + ".pprof", "allocs": name + ".allocs.pprof"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(2 * time.Second)
				res, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", p.admin, endpoint, secs))
				if err != nil {
					t.Logf("profile %s: %v", name, err)
					return
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				if err := os.WriteFile(filepath.Join(dir, file), body, 0o644); err != nil {
					t.Logf("profile %s: %v", name, err)
				}
			}()
		}
	}
	return wg.Wait
}

// hssCommands summarises hss_diameter_request_seconds per command as
// " UAR 4000 / 1.2 ms, ...".
func (l *lab) hssCommands() string {
	var out strings.Builder
	for _, cmd := range []string{"UAR", "MAR", "SAR", "LIR"} {
		sum := l.metric("hss", `hss_diameter_request_seconds_sum{command="`+cmd+`"}`)
		cnt := l.metric("hss", `hss_diameter_request_seconds_count{command="`+cmd+`"}`)
		if cnt > 0 {
			fmt.Fprintf(&out, " %s %.0f / %.1f ms", cmd, cnt, sum/cnt*1000)
		}
	}
	return out.String()
}

// sippErrorKinds counts the events of a sipp -trace_err file by kind: the
// status line of an unexpected response ("unexpected 403 Forbidden - ..."),
// dead calls, timeouts, and other lines.
func sippErrorKinds(errs string) map[string]int {
	out := map[string]int{}
	for _, line := range strings.Split(errs, "\n") {
		switch {
		case strings.Contains(line, "Aborting call on unexpected message"):
			k := "unexpected"
			if i := strings.Index(line, "received '"); i >= 0 {
				k += " " + strings.TrimSpace(strings.TrimPrefix(line[i+len("received '"):], "SIP/2.0 "))
			}
			out[k]++
		case strings.Contains(line, "Dead call"):
			out["dead call (late message)"]++
		case strings.Contains(strings.ToLower(line), "timeout"):
			out["timeout"]++
		case strings.Contains(line, "\t") && strings.Contains(line, ": "):
			out["other"]++
		}
	}
	return out
}

const clkTck = 100.0 // USER_HZ on Linux

// vacuumAnalyze runs VACUUM ANALYZE on tables of the database at dsn.
func vacuumAnalyze(t *testing.T, dsn string, tables ...string) {
	t.Helper()
	pgtest.Exec(t, dsn, "VACUUM ANALYZE "+strings.Join(tables, ", "))
}

// tableWrites lists, for each table of dsn's database that had rows
// updated or inserted, "name upd (hot %) / ins". An update that is not
// HOT (heap-only tuple) writes every index of the table too.
func tableWrites(t *testing.T, dsn string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return " (" + err.Error() + ")"
	}
	defer conn.Close(context.Background())
	// The statistics collector reports with a delay; give it the time.
	_, _ = conn.Exec(ctx, "SELECT pg_stat_force_next_flush()")
	time.Sleep(600 * time.Millisecond)
	rows, err := conn.Query(ctx, `SELECT relname, n_tup_upd, n_tup_hot_upd, n_tup_ins, seq_scan, coalesce(idx_scan, 0) FROM pg_stat_user_tables
		WHERE n_tup_upd > 0 OR n_tup_ins > 0 ORDER BY n_tup_upd + n_tup_ins DESC LIMIT 8`)
	if err != nil {
		return " (" + err.Error() + ")"
	}
	var b strings.Builder
	for rows.Next() {
		var name string
		var upd, hot, ins, seq, idx int64
		if err := rows.Scan(&name, &upd, &hot, &ins, &seq, &idx); err != nil {
			return " (" + err.Error() + ")"
		}
		pct := 0.0
		if upd > 0 {
			pct = float64(hot) / float64(upd) * 100
		}
		fmt.Fprintf(&b, " %s %d (%.0f %%) / %d, scans %d seq %d index;", name, upd, pct, ins, seq, idx)
	}
	return strings.TrimSuffix(b.String(), ";")
}

// cpuTicks are the host-wide counters of /proc/stat's "cpu" line.
type cpuTicks struct{ busy, softirq, total float64 }

// hostTicks reads /proc/stat: busy is everything but idle and iowait.
func hostTicks() cpuTicks {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var c cpuTicks
	for i := 1; i < len(f); i++ {
		v, _ := strconv.ParseFloat(f[i], 64)
		c.total += v
		if i != 4 && i != 5 { // idle, iowait
			c.busy += v
		}
		if i == 7 {
			c.softirq = v
		}
	}
	return c
}

// postgresTicks sums utime+stime of every process named postgres.
func postgresTicks() float64 {
	ents, _ := os.ReadDir("/proc")
	var sum float64
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if strings.TrimSpace(string(comm)) == "postgres" {
			sum += sampleProc(nil, pid).cpuTicks
		}
	}
	return sum
}

type procSample struct {
	cpuTicks     float64
	rssKB, hwmKB int
}

func sampleProc(t testing.TB, pid int) procSample {
	var s procSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s
	}
	// Fields after the ")" of comm: state is field 3; utime 14, stime 15.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) > 12 {
		u, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		s.cpuTicks = u + st
	}
	st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(st), "\n") {
		fs := strings.Fields(line)
		if len(fs) >= 2 && fs[0] == "VmRSS:" {
			s.rssKB, _ = strconv.Atoi(fs[1])
		}
		if len(fs) >= 2 && fs[0] == "VmHWM:" {
			s.hwmKB, _ = strconv.Atoi(fs[1])
		}
	}
	return s
}

// readRTT reads sipp's -trace_rtt file(s): "Date_ms;response_time_ms;rtd_no".
func readRTT(t testing.TB, dir string) []float64 {
	files, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	var out []float64
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			parts := strings.Split(sc.Text(), ";")
			if len(parts) < 3 {
				continue
			}
			v, err := strconv.ParseFloat(parts[1], 64)
			if err == nil {
				out = append(out, v)
			}
		}
		fh.Close()
	}
	sort.Float64s(out)
	return out
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}
