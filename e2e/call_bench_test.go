package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchCall is the call benchmark behind `make bench-call`: sipp
// places BENCH_CALL_N calls (INVITE → 180 → 200 → ACK → BYE → 200) from
// one registered user to another through S-CSCF (orig) → I-CSCF (LIR) →
// S-CSCF (term), no AS, at BENCH_CALL_RATE calls/s; a second sipp answers
// them. It prints calls/s, p50/p99 INVITE→180 and INVITE→200 (sipp rtd
// timers, -trace_rtt) and CPU/RSS per process. With BENCH_VIA_PCSCF=1
// (`make bench-call-pcscf`) both users are AKA subscribers registered
// through a P-CSCF (no IPsec, Rx off) and the calls enter and leave
// through it: P-CSCF → S-CSCF (orig) → I-CSCF → S-CSCF (term) → P-CSCF.
// Skipped unless BENCH_CALL_N is set.
func TestBenchCall(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("BENCH_CALL_N"))
	if n <= 0 {
		t.Skip("set BENCH_CALL_N (and BENCH_CALL_RATE) to run; see make bench-call")
	}
	rate, _ := strconv.Atoi(os.Getenv("BENCH_CALL_RATE"))
	if rate <= 0 {
		rate = 500
	}
	sipp := needSipp(t)
	l, entry, names, chain := benchLab(t, []string{"--log-level", "warn"})
	alicePort, bobPort := freePort(t), freePort(t)
	if entry == l.icscf { // no P-CSCF: MD5 users registered at the I-CSCF, calls sent to the S-CSCF
		entry = l.scscf
		l.addMD5("alice", "pw-alice")
		l.addMD5("bob", "pw-bob")
		l.md5Register(t, "alice", "pw-alice", alicePort)
		l.md5Register(t, "bob", "pw-bob", bobPort)
	} else {
		pl := &pcscfLab{lab: l, pcscf: entry}
		l.addAKA("alice")
		l.addAKA("bob")
		pl.sippAKAPCSCF(t, "alice", alicePort, 3600)
		pl.sippAKAPCSCF(t, "bob", bobPort, 3600)
	}

	udir, cdir := t.TempDir(), t.TempDir()
	uas := exec.Command(sipp, "-sf", scenarioCopy(t, udir, "call_uas.xml"), "-i", "127.0.0.1", "-p", fmt.Sprint(bobPort), "-t", "u1",
		// -m well above n: sipp's UAS sometimes counts more incoming calls
		// than INVITEs it got (seen with 100 Trying from the proxy); it is
		// killed at the end anyway.
		"-m", fmt.Sprint(10*n), "-buff_size", "4194304", "-nostdin", "-timeout", "600s", "-trace_err", "-error_file", filepath.Join(udir, "errors.log"))
	if os.Getenv("BENCH_CALL_TRACE") != "" { // a directory for both message traces
		uas.Args = append(uas.Args, "-trace_msg", "-message_file", filepath.Join(os.Getenv("BENCH_CALL_TRACE"), "uas_messages.log"))
	}
	uas.Dir = udir
	uasOut := &syncBuffer{}
	uas.Stdout, uas.Stderr = uasOut, uasOut
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	uasDone := make(chan error, 1)
	go func() { uasDone <- uas.Wait() }()
	t.Cleanup(func() {
		_ = uas.Process.Kill()
		<-uasDone
	})
	time.Sleep(300 * time.Millisecond)

	before := map[string]procSample{}
	for name, p := range l.procs {
		before[name] = sampleProc(t, p.cmd.Process.Pid)
	}
	pgBefore := postgresTicks()
	load0, _ := os.ReadFile("/proc/loadavg")
	drops0 := udpRcvbufErrors()
	uac := exec.Command(sipp, fmt.Sprintf("127.0.0.1:%d", entry), "-sf", scenarioCopy(t, cdir, "call_uac.xml"),
		"-key", "domain", domain, "-key", "caller", "alice", "-key", "callee", "bob",
		"-i", "127.0.0.1", "-p", fmt.Sprint(alicePort), "-t", "u1", "-m", fmt.Sprint(n), "-r", fmt.Sprint(rate), "-l", "5000",
		"-buff_size", "4194304", "-nostdin", "-timeout", "600s", "-recv_timeout", "40000", "-trace_rtt", "-rtt_freq", "1",
		"-trace_err", "-error_file", filepath.Join(cdir, "errors.log"))
	if os.Getenv("BENCH_CALL_TRACE") != "" {
		uac.Args = append(uac.Args, "-trace_msg", "-message_file", filepath.Join(os.Getenv("BENCH_CALL_TRACE"), "uac_messages.log"))
	}
	uac.Dir = cdir
	t0 := time.Now()
	profiled := l.profileDuring(t)
	out, err := uac.CombinedOutput()
	elapsed := time.Since(t0)
	profiled()
	after := map[string]procSample{}
	for name, p := range l.procs {
		after[name] = sampleProc(t, p.cmd.Process.Pid)
	}
	pgAfter := postgresTicks()
	load1, _ := os.ReadFile("/proc/loadavg")
	drops1 := udpRcvbufErrors()
	if err != nil {
		errs, _ := os.ReadFile(filepath.Join(cdir, "errors.log"))
		t.Logf("caller sipp exit: %v\n%s\nfirst errors:\n%s", err, tail(string(out), 2500), head(string(errs), 3000))
	}
	rtd, first, last := readRTTByTimer(cdir)
	ringing, answered := rtd["1"], rtd["2"]
	window := last.Sub(first).Seconds()
	var b strings.Builder
	fmt.Fprintf(&b, "bench-call: %d calls offered at %d/s in %.2f s (INVITE/180/200/ACK/BYE, S-CSCF orig → I-CSCF → S-CSCF term, no AS; %s)\n", n, rate, elapsed.Seconds(), chain)
	fmt.Fprintf(&b, "  answered calls: %d; %.0f calls/s between the first and the last measured response (%.2f s), %.0f calls/s over the whole sipp run\n",
		len(answered), float64(len(rtd["2"]))/window, window, float64(len(answered))/elapsed.Seconds())
	fmt.Fprintf(&b, "  calls whose 180 was not seen (dropped behind the 200 on the way, see call_uac.xml): %d\n", len(answered)-len(ringing))
	fmt.Fprintf(&b, "  INVITE → 180: p50 %.0f ms, p99 %.0f ms; INVITE → 200: p50 %.0f ms, p99 %.0f ms (sipp rtd, 1 ms resolution)\n",
		percentile(ringing, .5), percentile(ringing, .99), percentile(answered, .5), percentile(answered, .99))
	for _, name := range names {
		bs, as := before[name], after[name]
		cpu := (as.cpuTicks - bs.cpuTicks) / clkTck / elapsed.Seconds() * 100
		fmt.Fprintf(&b, "  %-5s CPU %5.1f %% of one core, RSS %d MiB (peak %d MiB)\n", name, cpu, as.rssKB/1024, as.hwmKB/1024)
	}
	fmt.Fprintf(&b, "  postgres (all backends) CPU %5.1f %% of one core\n", (pgAfter-pgBefore)/clkTck/elapsed.Seconds()*100)
	fmt.Fprintf(&b, "  UDP datagrams dropped by full receive buffers (host-wide RcvbufErrors): %d\n", drops1-drops0)
	fmt.Fprintf(&b, "  load average before: %s  after: %s", strings.TrimSpace(string(load0)), load1)
	t.Log("\n" + b.String())
	fmt.Print(b.String())
	if len(answered) == 0 {
		t.Fatalf("no call answered:\n%s", tail(string(out), 3000))
	}
}

// readRTTByTimer reads sipp's -trace_rtt files ("Date_ms;response_time_ms;rtd_no")
// and returns the sorted times per rtd and the first and last Date_ms.
func readRTTByTimer(dir string) (out map[string][]float64, first, last time.Time) {
	files, _ := filepath.Glob(filepath.Join(dir, "*_rtt.csv"))
	out = map[string][]float64{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			parts := strings.Split(strings.TrimSpace(sc.Text()), ";")
			if len(parts) < 3 {
				continue
			}
			v, err := strconv.ParseFloat(parts[1], 64)
			if err != nil {
				continue
			}
			out[parts[2]] = append(out[parts[2]], v)
			if ms, err := strconv.ParseFloat(parts[0], 64); err == nil {
				at := time.UnixMilli(int64(ms))
				if first.IsZero() || at.Before(first) {
					first = at
				}
				if at.After(last) {
					last = at
				}
			}
		}
		fh.Close()
	}
	for k := range out {
		sort.Float64s(out[k])
	}
	return out, first, last
}

func head(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// udpRcvbufErrors is the host's Udp RcvbufErrors counter (/proc/net/snmp).
func udpRcvbufErrors() int64 {
	b, _ := os.ReadFile("/proc/net/snmp")
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "Udp: ") {
			continue
		}
		f := strings.Fields(line)[1:]
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.ParseInt(f[i], 10, 64)
				return v
			}
		}
	}
	return 0
}
