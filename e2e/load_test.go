package e2e

import (
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Load steps through a whole IMS chain (P-CSCF → I-CSCF → S-CSCF → HSS on
// PostgreSQL), driven by sipp and counted from sipp's side: what each
// transaction got back, and the transactions that got no final answer at
// all. `make bench-load` runs them through our chain and fails on any
// unanswered transaction; `make bench-compare` (compare_test.go) runs the
// same steps alternately through a Kamailio 5.6 IMS chain on our HSS.
//
// A step is KIND:RATE, run for LOAD_STEP_SECONDS (default 20):
//   - reg: AKA registrations of fresh subscribers, one UDP socket per UE
//     (sipp -t un), RATE flows/s;
//   - sharedreg: AKA registrations of UEs that share one socket (as
//     behind an SBC or a NAT without per-UE ports), each with its own
//     address in Via and Contact, RATE/2 flows/s on each of two sockets;
//   - sharedcall: calls (INVITE/180/200/ACK/BYE) from the UEs of the
//     first shared socket to those of the second, RATE calls/s (the
//     UEs of the last sharedreg step, else registered first, unmeasured);
//   - call: calls between one registered pair (caller and callee on their
//     own sockets), RATE calls/s.

// loadStepSeconds is the length of a step (LOAD_STEP_SECONDS, default 20).
func loadStepSeconds() int {
	if n, _ := strconv.Atoi(os.Getenv("LOAD_STEP_SECONDS")); n > 0 {
		return n
	}
	return 20
}

// loadStep is one step: kind and rate.
type loadStep struct {
	kind string
	rate int
}

func (s loadStep) String() string { return fmt.Sprintf("%s:%d", s.kind, s.rate) }

// parseLoadSteps reads "reg:300,sharedcall:200".
func parseLoadSteps(spec string) ([]loadStep, error) {
	var out []loadStep
	for _, f := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == ' ' }) {
		kind, rate, ok := strings.Cut(f, ":")
		n, err := strconv.Atoi(rate)
		if !ok || err != nil || n <= 0 {
			return nil, fmt.Errorf("load step %q: want KIND:RATE", f)
		}
		switch kind {
		case "reg", "sharedreg", "sharedcall", "call":
		default:
			return nil, fmt.Errorf("load step %q: kind is reg, sharedreg, sharedcall or call", f)
		}
		out = append(out, loadStep{kind, n})
	}
	return out, nil
}

// loadChain is one chain under load: the P-CSCF UEs send to, the
// processes whose CPU is measured, and our HSS's lab (both chains use it
// and its database).
type loadChain struct {
	name  string
	l     *lab
	entry int // P-CSCF SIP port (UDP, 127.0.0.1)
	procs []loadProc
	// shared are the UEs of the last sharedreg step, by socket.
	shared [2][]loadUE
	// scscf is the S-CSCF name the chain's subscribers are provisioned
	// with (their preferred S-CSCF: the UAA names it), so that each chain
	// keeps its users when both share one HSS.
	scscf string
	ports [2]int
	// pair is the registered caller and callee of the call steps.
	pair      [2]loadUE
	pairPorts [2]int
	seq       int // numbers the steps' subscribers
	// revive, when set, restarts the chain's processes that have exited
	// (a crash) and says which; run before each step.
	revive func(t *testing.T) []string
	// allocated, when set, gives the bytes each process has allocated on
	// its Go heap since it started (go_memstats_alloc_bytes_total).
	allocated func() map[string]float64
	// liveHeap, when set, gives each process's live Go heap in bytes
	// (go_memstats_heap_alloc_bytes right after a collection).
	liveHeap func() map[string]float64
	// sheds, when set, counts the requests each of our functions has
	// refused for overload since it started, by where ("pcscf socket":
	// the receive queue, sip_overload_refused_total; "pcscf limit",
	// "icscf limit": the latency-following admission limits).
	sheds func() map[string]float64
}

// loadProc is a measured process: its name and how to find its pids (a
// Go function is one process; a Kamailio one is its main process and the
// workers it forked).
type loadProc struct {
	name string
	pids func() []int
}

// cpuTicks samples utime+stime of every process of the chain.
func (c *loadChain) cpuTicks() map[string]float64 {
	out := map[string]float64{}
	for _, p := range c.procs {
		for _, pid := range p.pids() {
			out[p.name] += sampleProc(nil, pid).cpuTicks
		}
	}
	out["postgres"] = postgresTicks()
	return out
}

// loadUE is one UE of a step: the user part of its IMPI/IMPU and the
// address it gives in Via and Contact.
type loadUE struct{ user, host string }

// stepResult is what one step gave, counted from sipp's side.
type stepResult struct {
	step    loadStep
	chain   string
	offered int
	// ok: registrations answered 200, or calls whose INVITE got 200.
	ok int
	// refused: final answers that end the flow (503, 500, 4xx to an
	// INVITE...), by code.
	refused map[string]int
	// resBug: 403s to a challenge answer (sipp's zero-byte RES; the flow
	// starts over); rechallenged: 401s to a challenge answer.
	resBug, rechallenged int
	// unanswered: transactions sent that got no final answer (sipp gave up
	// retransmitting, or waited 32 s after a provisional), plus flows
	// still open when sipp was stopped.
	unanswered int
	// lost: the unanswered transactions by scenario element ("5 BYE"),
	// and excerpts of sipp's error log about them.
	lost    map[string]int
	lostLog []string
	// ringing: 180s the calling sipp received. The called sipp sends one
	// 180 right before each 200, so a completed call without one is a
	// provisional response lost on the way (noRinging).
	ringing  int
	p50, p99 float64 // ms, flow start → 200
	elapsed  float64 // s
	cpu      map[string]float64
	alloc    map[string]float64 // Go heap bytes allocated per process over the step (ours)
	live     map[string]float64 // live Go heap bytes per process when the step ended (ours)
	load     string             // 1-minute load average before → after
	drops    int64              // host-wide UDP RcvbufErrors during the step
	sheds    map[string]float64 // overload refusals during the step, by function and mechanism (ours)
}

// noRinging is the completed calls whose caller got no 180 (0 for
// registration steps).
func (r stepResult) noRinging() int {
	if r.step.kind == "reg" || r.step.kind == "sharedreg" || r.ok <= r.ringing {
		return 0
	}
	return r.ok - r.ringing
}

// failed is every flow that did not complete.
func (r stepResult) failed() int { return r.offered - r.ok }

// passes reports whether the step meets the sustained-rate criteria:
// at most 0.1 % of the flows failed, p99 ≤ 1 s, nothing unanswered.
func (r stepResult) passes() bool {
	return r.unanswered == 0 && float64(r.failed()) <= 0.001*float64(r.offered) && r.p99 <= 1000
}

// cpuPerOp is the CPU milliseconds a process spent per completed flow.
func (r stepResult) cpuPerOp(name string) float64 {
	if r.ok == 0 {
		return math.NaN()
	}
	return r.cpu[name] / clkTck / float64(r.ok) * 1000
}

// runLoadStep runs st through ch.
func runLoadStep(t *testing.T, ch *loadChain, st loadStep) stepResult {
	t.Helper()
	switch st.kind {
	case "reg":
		return ch.registerStep(t, st)
	case "sharedreg":
		return ch.sharedRegisterStep(t, st)
	case "sharedcall":
		if len(ch.shared[0]) < 10 || len(ch.shared[1]) < 10 {
			ch.sharedRegisterStep(t, loadStep{"sharedreg", 50})
		}
		return ch.callStep(t, st, ch.shared[0], ch.shared[1], ch.ports)
	default:
		if ch.pair[0].user == "" {
			if err := ch.registerPair(t); err != nil {
				// Nothing to measure: every call of the step counts as failed.
				n := st.rate * loadStepSeconds()
				return stepResult{step: st, chain: ch.name, offered: n, refused: map[string]int{"set-up failed: " + err.Error(): n}}
			}
		}
		return ch.callStep(t, st, ch.pair[:1], ch.pair[1:], ch.pairPorts)
	}
}

// newUsers provisions n fresh AKA subscribers (imsctl subscriber import)
// and returns their user parts.
func (c *loadChain) newUsers(t *testing.T, n int) []string {
	t.Helper()
	c.seq++
	var csv strings.Builder
	csv.WriteString("impi,impu,k,op,amf,scscf\n")
	users := make([]string, n)
	hexOf := func(s string) string { return fmt.Sprintf("%x", s) }
	for i := range users {
		users[i] = fmt.Sprintf("load%02d%s%06d", c.seq, strings.ToLower(c.name[:1]), i)
		fmt.Fprintf(&csv, "%s@%s,sip:%s@%s,%s,%s,%s,%s\n", users[i], domain, users[i], domain, hexOf(benchK), hexOf(benchOP), hexOf(benchAMF), c.scscf)
	}
	path := filepath.Join(t.TempDir(), "subs.csv")
	if err := os.WriteFile(path, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	c.l.imsctl("subscriber", "import", path)
	vacuumAnalyze(t, c.l.dsn, "imsu", "impi", "impu", "impi_impu", "implicit_registration_set", "service_profile")
	return users
}

// akaKeyword is sipp's authentication keyword for a subscriber of newUsers.
func akaKeyword(user string) string {
	return fmt.Sprintf("[authentication username=%s@%s aka_K=\"%s\" aka_OP=\"%s\" aka_AMF=\"%s\"]", user, domain, benchK, benchOP, benchAMF)
}

// sippRun is one sipp process of a step.
type sippRun struct {
	dir string
	cmd *exec.Cmd
	out *syncBuffer
	err error
}

// startSipp starts sipp in a new directory with the scenario (from
// testdata) and args.
func startSipp(t *testing.T, scenario string, args ...string) *sippRun {
	t.Helper()
	dir := t.TempDir()
	r := &sippRun{dir: dir, out: &syncBuffer{}}
	sf := scenarioCopy(t, dir, scenario)
	r.cmd = exec.Command(needSipp(t), append([]string{"-sf", sf}, args...)...)
	r.cmd.Dir = dir
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return r
}

// uacArgs are the arguments of a load generator sending to the P-CSCF:
// one call per -inf line, at rate, stopped at the latest 60 s after the
// step, with per-message counts, statistics and response times.
func (c *loadChain) uacArgs(inf string, n, rate int, transport string, port int) []string {
	args := []string{fmt.Sprintf("127.0.0.1:%d", c.entry), "-inf", inf, "-key", "domain", domain, "-key", "expires", "3600",
		"-auth_uri", domain, "-i", "127.0.0.1", "-t", transport, "-m", fmt.Sprint(n), "-r", fmt.Sprint(rate),
		"-l", "30000", "-max_socket", "15000", "-buff_size", "4194304", "-recv_timeout", "32000",
		"-nostdin", "-timeout", fmt.Sprintf("%ds", loadStepSeconds()+60),
		"-trace_counts", "-trace_stat", "-fd", "1", "-trace_rtt", "-rtt_freq", "1", "-trace_err", "-trace_logs"}
	if port > 0 {
		args = append(args, "-p", fmt.Sprint(port))
	}
	if os.Getenv("LOAD_TRACE") != "" { // every message in <scenario>_<pid>_messages.log, to troubleshoot
		args = append(args, "-trace_msg")
	}
	return args
}

// writeInf writes a sipp -inf file of lines.
func writeInf(t *testing.T, lines []string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "users.csv")
	if err := os.WriteFile(p, []byte("SEQUENTIAL\n"+strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// measure runs fn (which runs sipp to its end) and fills the CPU, load
// and drop figures of r.
func (c *loadChain) measure(r *stepResult, fn func()) {
	before := c.cpuTicks()
	var alloc0 map[string]float64
	if c.allocated != nil {
		alloc0 = c.allocated()
	}
	load0, _ := os.ReadFile("/proc/loadavg")
	drops0 := udpRcvbufErrors()
	var sheds0 map[string]float64
	if c.sheds != nil {
		sheds0 = c.sheds()
	}
	t0 := time.Now()
	fn()
	r.elapsed = time.Since(t0).Seconds()
	after := c.cpuTicks()
	load1, _ := os.ReadFile("/proc/loadavg")
	r.cpu = map[string]float64{}
	for k, v := range after {
		r.cpu[k] = v - before[k]
	}
	r.drops = udpRcvbufErrors() - drops0
	if c.allocated != nil {
		r.alloc = map[string]float64{}
		for k, v := range c.allocated() {
			r.alloc[k] = v - alloc0[k]
		}
	}
	if c.liveHeap != nil {
		r.live = c.liveHeap()
	}
	if c.sheds != nil {
		r.sheds = map[string]float64{}
		for k, v := range c.sheds() {
			if d := v - sheds0[k]; d > 0 {
				r.sheds[k] = d
			}
		}
	}
	first := func(b []byte) string { f := strings.Fields(string(b)); return f[0] }
	r.load = first(load0) + " → " + first(load1)
}

// registerStep: fresh subscribers, one socket per UE.
func (c *loadChain) registerStep(t *testing.T, st loadStep) stepResult {
	t.Helper()
	n := st.rate * loadStepSeconds()
	users := c.newUsers(t, n)
	lines := make([]string, n)
	for i, u := range users {
		lines[i] = u + ";127.0.0.1;" + akaKeyword(u)
	}
	inf := writeInf(t, lines)
	r := stepResult{step: st, chain: c.name, offered: n}
	var runs []*sippRun
	c.measure(&r, func() {
		s := startSipp(t, "load_register_aka.xml", c.uacArgs(inf, n, st.rate, "un", 0)...)
		s.err = s.cmd.Wait()
		runs = append(runs, s)
	})
	r.add(t, runs, "reg")
	return r
}

// sharedRegisterStep: fresh subscribers behind two shared sockets, half
// on each, each UE with its own address.
func (c *loadChain) sharedRegisterStep(t *testing.T, st loadStep) stepResult {
	t.Helper()
	n := st.rate * loadStepSeconds() / 2 * 2
	users := c.newUsers(t, n)
	var groups [2][]loadUE
	var infs [2]string
	for g := range groups {
		var lines []string
		for i := g; i < n; i += 2 {
			k := i / 2
			ue := loadUE{users[i], fmt.Sprintf("10.%d.%d.%d", 100+g+2*(c.seq%50), k>>8&255, k&255)}
			groups[g] = append(groups[g], ue)
			lines = append(lines, ue.user+";"+ue.host+";"+akaKeyword(ue.user))
		}
		infs[g] = writeInf(t, lines)
		c.ports[g] = freePort(t)
	}
	r := stepResult{step: st, chain: c.name, offered: n}
	var runs []*sippRun
	c.measure(&r, func() {
		for g := range groups {
			runs = append(runs, startSipp(t, "load_register_aka.xml", c.uacArgs(infs[g], len(groups[g]), st.rate/2, "u1", c.ports[g])...))
		}
		for _, s := range runs {
			s.err = s.cmd.Wait()
		}
	})
	r.add(t, runs, "reg")
	// The call steps use the UEs whose registration completed.
	for g := range groups {
		done := registeredUsers(runs[g].dir)
		c.shared[g] = nil
		for _, ue := range groups[g] {
			if done[ue.user] {
				c.shared[g] = append(c.shared[g], ue)
			}
		}
	}
	return r
}

// registeredUsers are the users load_register_aka.xml logged as
// registered in dir (sipp -trace_logs).
func registeredUsers(dir string) map[string]bool {
	files, _ := filepath.Glob(filepath.Join(dir, "*_logs.log"))
	out := map[string]bool{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n") {
			if _, rest, ok := strings.Cut(line, "registered "); ok {
				if u, _, ok := strings.Cut(rest, " "); ok {
					out[u] = true
				}
			}
		}
	}
	return out
}

// registerPair registers a caller and a callee, each on its own socket,
// for the call steps (not measured). A registration that fails is tried
// again twice, 5 s apart (a chain still working off the previous step's
// backlog); then the error says what the last attempt got.
func (c *loadChain) registerPair(t *testing.T) error {
	t.Helper()
	users := c.newUsers(t, 2)
	for i, u := range users {
		c.pair[i] = loadUE{u, "127.0.0.1"}
		c.pairPorts[i] = freePort(t)
		inf := writeInf(t, []string{u + ";127.0.0.1;" + akaKeyword(u)})
		for attempt := 1; ; attempt++ {
			s := startSipp(t, "load_register_aka.xml", c.uacArgs(inf, 1, 1, "u1", c.pairPorts[i])...)
			s.err = s.cmd.Wait()
			var r stepResult
			r.add(t, []*sippRun{s}, "reg")
			if r.ok == 1 {
				break
			}
			t.Logf("%s: registration of %s for the calls failed (attempt %d): %+v\n%s", c.name, u, attempt, r, tail(s.out.String(), 1500))
			if attempt == 3 {
				c.pair = [2]loadUE{}
				return fmt.Errorf("call pair not registered (%s)", strings.Join(sortedKeys(nonZero(r.refused)), ", "))
			}
			time.Sleep(5 * time.Second)
		}
	}
	return nil
}

// nonZero is m without its zero counts.
func nonZero(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// callStep: callers[i % len] call callees[i % len] through the P-CSCF;
// the callers share ports[0], the callees ports[1].
func (c *loadChain) callStep(t *testing.T, st loadStep, callers, callees []loadUE, ports [2]int) stepResult {
	t.Helper()
	n := st.rate * loadStepSeconds()
	lines := make([]string, n)
	for i := range lines {
		a, b := callers[i%len(callers)], callees[i%len(callees)]
		lines[i] = a.user + ";" + a.host + ";" + b.user
	}
	inf := writeInf(t, lines)
	uas := startSipp(t, "load_call_uas.xml", "-i", "127.0.0.1", "-p", fmt.Sprint(ports[1]), "-t", "u1",
		"-m", fmt.Sprint(10*n), "-buff_size", "4194304", "-nostdin", "-timeout", fmt.Sprintf("%ds", loadStepSeconds()+120), "-trace_err")
	done := make(chan struct{})
	go func() { uas.err = uas.cmd.Wait(); close(done) }()
	defer func() { _ = uas.cmd.Process.Kill(); <-done }()
	time.Sleep(300 * time.Millisecond)
	r := stepResult{step: st, chain: c.name, offered: n}
	var runs []*sippRun
	c.measure(&r, func() {
		s := startSipp(t, "load_call_uac.xml", c.uacArgs(inf, n, st.rate, "u1", ports[0])...)
		s.err = s.cmd.Wait()
		runs = append(runs, s)
	})
	r.add(t, runs, "call")
	return r
}

// sippCounts is the last line of a sipp -trace_counts file: for each
// scenario element (index, message, kind: Sent, Retrans, Timeout, Recv,
// Unexp) its count.
type sippCounts []struct {
	idx       int
	msg, kind string
	n         int
}

// readCounts reads the *_counts.csv of dir.
func readCounts(t *testing.T, dir string) sippCounts {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*_counts.csv"))
	var out sippCounts
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) < 2 {
			continue
		}
		head, last := strings.Split(lines[0], ";"), strings.Split(lines[len(lines)-1], ";")
		for i, h := range head {
			parts := strings.SplitN(h, "_", 3)
			if len(parts) != 3 || i >= len(last) {
				continue
			}
			idx, err1 := strconv.Atoi(parts[0])
			n, err2 := strconv.Atoi(last[i])
			if err1 == nil && err2 == nil {
				out = append(out, struct {
					idx       int
					msg, kind string
					n         int
				}{idx, parts[1], parts[2], n})
			}
		}
	}
	return out
}

// sum adds the counts of kind for message msg ("" any).
func (sc sippCounts) sum(msg, kind string) int {
	n := 0
	for _, c := range sc {
		if (msg == "" || c.msg == msg) && c.kind == kind {
			n += c.n
		}
	}
	return n
}

// nth is the count of kind of the i-th element (0-based) showing msg.
func (sc sippCounts) nth(msg, kind string, i int) int {
	seen := map[int]bool{}
	for _, c := range sc {
		if c.msg != msg {
			continue
		}
		if !seen[c.idx] {
			seen[c.idx] = true
			if len(seen)-1 == i {
				for _, d := range sc {
					if d.idx == c.idx && d.kind == kind {
						return d.n
					}
				}
				return 0
			}
		}
	}
	return 0
}

// openCalls is the CurrentCall of the last line of dir's -trace_stat file.
func openCalls(dir string) int {
	files, _ := filepath.Glob(filepath.Join(dir, "*_.csv"))
	n := 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		if len(lines) < 2 {
			continue
		}
		head, last := strings.Split(lines[0], ";"), strings.Split(lines[len(lines)-1], ";")
		for i, h := range head {
			if h == "CurrentCall" && i < len(last) {
				v, _ := strconv.Atoi(last[i])
				n += v
			}
		}
	}
	return n
}

// add counts the outcome of sipp runs of flow ("reg" or "call") into r.
func (r *stepResult) add(t *testing.T, runs []*sippRun, flow string) {
	t.Helper()
	if r.refused == nil {
		r.refused = map[string]int{}
	}
	var rtts []float64
	for _, s := range runs {
		if d := os.Getenv("LOAD_TRACE"); d != "" {
			_ = exec.Command("sh", "-c", "cp "+s.dir+"/*.log "+d+"/").Run()
		}
		sc := readCounts(t, s.dir)
		if s.err != nil && sc.sum("", "Sent") == 0 {
			t.Errorf("sipp sent nothing: %v\n%s", s.err, tail(s.out.String(), 3000))
		}
		if len(sc) == 0 {
			t.Errorf("no sipp counts in %s: %v\n%s", s.dir, s.err, tail(s.out.String(), 3000))
		}
		r.unanswered += sc.sum("", "Timeout") + openCalls(s.dir)
		for _, c := range sc {
			if c.kind == "Timeout" && c.n > 0 {
				if r.lost == nil {
					r.lost = map[string]int{}
				}
				r.lost[strconv.Itoa(c.idx)+" "+c.msg] += c.n
			}
		}
		if open := openCalls(s.dir); open > 0 {
			if r.lost == nil {
				r.lost = map[string]int{}
			}
			r.lost["open at the end"] += open
		}
		if files, _ := filepath.Glob(filepath.Join(s.dir, "*_errors.log")); len(files) > 0 && r.unanswered > 0 {
			b, _ := os.ReadFile(files[0])
			for _, line := range strings.Split(string(b), "\n") {
				if l := strings.ToLower(line); (strings.Contains(l, "retrans") || strings.Contains(l, "timeout")) && len(r.lostLog) < 10 {
					r.lostLog = append(r.lostLog, line)
				}
			}
		}
		if flow == "reg" {
			r.ok += sc.sum("200", "Recv")
			r.resBug += sc.sum("403", "Recv")
			r.rechallenged += sc.nth("401", "Recv", 1)
			for _, code := range []string{"500", "503"} {
				r.refused[code] += sc.sum(code, "Recv")
			}
		} else {
			r.ok += sc.nth("200", "Recv", 0)
			r.ringing += sc.sum("180", "Recv")
			for _, code := range []string{"403", "404", "408", "480", "481", "500", "503", "504"} {
				if n := sc.sum(code, "Recv"); n > 0 {
					r.refused[code] += n
				}
			}
		}
		if n := sc.sum("", "Unexp"); n > 0 {
			// What sipp got instead, from its error log ("unexpected 100
			// Trying", ...); the rest of the count stays "unexpected".
			kinds := unexpectedKinds(s.dir)
			for k, v := range kinds {
				r.refused[k] += v
				n -= v
			}
			if n > 0 {
				r.refused["unexpected"] += n
			}
		}
		rtts = append(rtts, readRTT(t, s.dir)...)
	}
	sort.Float64s(rtts)
	r.p50, r.p99 = percentile(rtts, .5), percentile(rtts, .99)
}

// row formats r as a line of the step table.
func (r stepResult) row(procs []string) string {
	var refused []string
	for _, k := range sortedKeys(r.refused) {
		if r.refused[k] > 0 {
			refused = append(refused, fmt.Sprintf("%d × %s", r.refused[k], k))
		}
	}
	ref := strings.Join(refused, ", ")
	if ref == "" {
		ref = "—"
	}
	if len(r.sheds) > 0 {
		var by []string
		for _, k := range slices.Sorted(maps.Keys(r.sheds)) {
			by = append(by, fmt.Sprintf("%s %.0f", k, r.sheds[k]))
		}
		ref += " (shed by " + strings.Join(by, ", ") + ")"
	}
	var cpu []string
	for _, p := range procs {
		cpu = append(cpu, fmt.Sprintf("%s %.2f", p, r.cpuPerOp(p)))
	}
	ok := "no"
	if r.passes() {
		ok = "yes"
	}
	return fmt.Sprintf("| %s | %s | %d of %d | %s | %d | %d | %d | %.0f / %.0f ms | %s | %s | %s | %d | %s |",
		r.chain, r.step, r.ok, r.offered, ref, r.resBug, r.unanswered, r.noRinging(), r.p50, r.p99, strings.Join(cpu, ", "), ok, r.load, r.drops,
		fmt.Sprintf("%.1f s", r.elapsed))
}

// allocRow is the step's Go heap allocation per completed flow of each
// of procs, in KB.
func (r stepResult) allocRow(procs []string) string {
	row := "| " + r.step.String() + " |"
	for _, p := range procs {
		if r.ok == 0 || r.alloc == nil {
			row += " — |"
			continue
		}
		row += fmt.Sprintf(" %.1f |", r.alloc[p]/1024/float64(r.ok))
	}
	for _, p := range procs {
		if r.live == nil {
			row += " — |"
			continue
		}
		row += fmt.Sprintf(" %.1f |", r.live[p]/(1<<20))
	}
	return row
}

// stepTableHeader heads the rows of stepResult.row.
const stepTableHeader = "| chain | step (kind:rate/s, 20 s) | completed | refused | 403 from sipp's RES bug (retried) | unanswered | completed calls without their 180 | p50 / p99 | CPU ms per completed flow | ≤ 0.1 % failed, p99 ≤ 1 s, none lost | load avg before → after | UDP drops | sipp run |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|"

func sortedKeys(m map[string]int) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// startOurChain starts P-CSCF → I-CSCF → S-CSCF → HSS (real binaries,
// throw-away database), at log level warn, the P-CSCF without the
// per-address authentication throttling (benchPCSCFArgs).
func startOurChain(t *testing.T) *loadChain {
	t.Helper()
	t.Setenv("BENCH_HSS_ARGS", strings.TrimSpace(os.Getenv("BENCH_HSS_ARGS")+" --log-level warn"))
	t.Setenv("BENCH_ICSCF_ARGS", strings.TrimSpace(os.Getenv("BENCH_ICSCF_ARGS")+" --log-level warn"))
	pl := newPCSCFLabArgs(t, freePort(t), []string{"--log-level", "warn"}, append(benchPCSCFArgs(), "--log-level", "warn"))
	ch := &loadChain{name: "ours", l: pl.lab, entry: pl.pcscf, scscf: pl.scscfServerName()}
	for _, n := range []string{"pcscf", "icscf", "scscf", "hss"} {
		ch.procs = append(ch.procs, loadProc{n, func() []int { return []int{pl.procs[n].cmd.Process.Pid} }})
	}
	ch.allocated = func() map[string]float64 {
		out := map[string]float64{}
		for _, n := range []string{"pcscf", "icscf", "scscf", "hss"} {
			out[n] = pl.metric(n, "go_memstats_alloc_bytes_total")
		}
		return out
	}
	ch.sheds = func() map[string]float64 {
		out := map[string]float64{}
		for _, n := range []string{"pcscf", "icscf", "scscf"} {
			out[n+" socket"] = pl.metricSum(n, "sip_overload_refused_total")
		}
		out["pcscf limit"] = pl.metric("pcscf", `pcscf_rejected_requests_total{reason="overload"}`)
		out["icscf limit"] = pl.metricSum("icscf", "icscf_overload_rejections_total")
		return out
	}
	ch.liveHeap = func() map[string]float64 {
		out := map[string]float64{}
		for _, n := range []string{"pcscf", "icscf", "scscf", "hss"} {
			// The heap profile endpoint collects first (gc=1).
			if res, err := http.Get("http://" + pl.procs[n].admin + "/debug/pprof/heap?gc=1"); err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
			out[n] = pl.metric(n, "go_memstats_heap_alloc_bytes")
		}
		return out
	}
	return ch
}

// TestLoad is `make bench-load`: the LOAD_STEPS (e.g.
// "reg:300,reg:500,sharedreg:200,sharedcall:200,call:350") through our
// chain, one table row per step; it fails when a transaction got no final
// answer. Skipped unless LOAD_STEPS is set.
func TestLoad(t *testing.T) {
	steps, err := parseLoadSteps(os.Getenv("LOAD_STEPS"))
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) == 0 {
		t.Skip("set LOAD_STEPS (see make bench-load)")
	}
	needSipp(t)
	ch := startOurChain(t)
	var rows, allocRows []string
	names := []string{"pcscf", "icscf", "scscf", "hss", "postgres"}
	for _, st := range steps {
		// BENCH_PROFILE_DIR: CPU profiles of every process during each
		// step, in DIR/<kind>-<rate>/NAME.pprof.
		profiled := func() {}
		if dir := os.Getenv("BENCH_PROFILE_DIR"); dir != "" {
			sd := filepath.Join(dir, st.kind+"-"+strconv.Itoa(st.rate))
			if err := os.MkdirAll(sd, 0o755); err != nil {
				t.Fatal(err)
			}
			profiled = ch.l.profileInto(t, sd)
		}
		r := runLoadStep(t, ch, st)
		profiled()
		rows = append(rows, r.row(names))
		t.Logf("%s", r.row(names))
		allocRows = append(allocRows, r.allocRow(names[:4]))
		if r.unanswered > 0 {
			t.Errorf("%s: %d transactions got no final answer: %v\n%s", st, r.unanswered, r.lost, strings.Join(r.lostLog, "\n"))
		}
		waitQuiet(t)
	}
	fmt.Printf("bench-load (%d-s steps, %d cores, CPU ms per completed flow of each process; postgres: every PostgreSQL process of the host):\n%s\n%s\n",
		loadStepSeconds(), runtime.NumCPU(), stepTableHeader, strings.Join(rows, "\n"))
	fmt.Printf("Go heap allocated per completed flow (KB, go_memstats_alloc_bytes_total over the step; steady where CPU figures are noisy), then the live heap when the step ended (MiB, after a collection):\n| step | %s | %s |\n|---|---|---|---|---|---|---|---|---|\n%s\n",
		strings.Join(names[:4], " KB | ")+" KB", strings.Join(names[:4], " MiB | ")+" MiB", strings.Join(allocRows, "\n"))
}

// unexpectedKinds counts the messages sipp aborted a call on, from the
// -trace_err logs of dir, as "unexpected <status line>" or
// "unexpected <method>".
func unexpectedKinds(dir string) map[string]int {
	files, _ := filepath.Glob(filepath.Join(dir, "*_errors.log"))
	out := map[string]int{}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for k, v := range sippErrorKinds(string(b)) {
			if strings.HasPrefix(k, "unexpected ") {
				if code, _, ok := strings.Cut(strings.TrimPrefix(k, "unexpected "), " "); ok {
					k = "unexpected " + code
				}
				out[k] += v
			}
		}
	}
	return out
}

// waitQuiet waits (at least 5 s, at most 90 s) until the host's CPU has
// been below 10 % busy for a second, so that a step does not start while
// the previous one (ours or the other chain's backlog of retransmissions)
// still holds the CPU: each step measures one chain alone.
func waitQuiet(t *testing.T) {
	t.Helper()
	time.Sleep(5 * time.Second)
	deadline := time.Now().Add(85 * time.Second)
	for time.Now().Before(deadline) {
		a := hostTicks()
		time.Sleep(time.Second)
		b := hostTicks()
		if total := b.total - a.total; total > 0 && (b.busy-a.busy)/total < 0.10 {
			return
		}
	}
	t.Logf("the host is still busy after 90 s; starting the next step anyway")
}
