package sipproxy

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/siptest"
)

// TestBenchSIPFloor (`make bench-sip-floor`, only with BENCH_SIP_FLOOR
// set) measures the CPU that SIP handling alone costs, without any IMS
// logic, under load from sipp in another process: the floor under the
// I-CSCF (a forwarding proxy) and the S-CSCF (a UAS answering REGISTER)
// of `make bench-register` (docs/adr/0002-registration-capacity.md).
// For each rate (BENCH_SIP_FLOOR_RATES, default "500,1000,2000"
// REGISTER transactions/s, 5 s each) it runs, in this process:
//
//   - uas: a bare sipgo server answering every REGISTER with 200;
//   - proxy: a Proxy forwarding every REGISTER to that server, measured
//     as the process's CPU minus the uas row's at the same rate;
//   - proxy-uas: a Proxy answering every REGISTER with 200 itself.
//
// and prints the process's CPU time (user + system) per transaction,
// including the transaction's end 32 s later (so a run of all three rates
// takes about 6 minutes).
// sipp must complete every transaction, or the test fails.
func TestBenchSIPFloor(t *testing.T) {
	if os.Getenv("BENCH_SIP_FLOOR") == "" {
		t.Skip("set BENCH_SIP_FLOOR=1 (make bench-sip-floor)")
	}
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed (Debian package sip-tester)")
	}
	rates := []int{500, 1000, 2000}
	if v := os.Getenv("BENCH_SIP_FLOOR_RATES"); v != "" {
		rates = rates[:0]
		for _, f := range strings.Split(v, ",") {
			r, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || r <= 0 {
				t.Fatalf("BENCH_SIP_FLOOR_RATES %q", v)
			}
			rates = append(rates, r)
		}
	}

	uasPort := siptest.FreePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	srv.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	})
	go func() { _ = srv.ListenAndServe(ctx, "udp", fmt.Sprintf("127.0.0.1:%d", uasPort)) }()
	next := sip.Uri{Host: "127.0.0.1", Port: uasPort}
	forwarder := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		_, _ = tx.Forward(ctx, ForwardOptions{}, Target{NextHop: &next})
	})
	answerer := newTestProxy(t, func(ctx context.Context, tx *Txn) { _ = tx.Respond(200, "OK") })
	time.Sleep(200 * time.Millisecond) // the UAS's socket is open

	var out strings.Builder
	fmt.Fprintf(&out, "bench-sip-floor: CPU (user + system) of this process per REGISTER transaction over its life, %d s of load per rate\n", 5)
	for _, rate := range rates {
		n := rate * 5
		uas := cpuPerTxn(t, sipp, uasPort, rate, n)
		both := cpuPerTxn(t, sipp, forwarder.Addr("udp").Port, rate, n)
		self := cpuPerTxn(t, sipp, answerer.Addr("udp").Port, rate, n)
		fmt.Fprintf(&out, "  %5d/s: uas %4.0f µs, proxy %4.0f µs (proxy + uas %4.0f µs), proxy-uas %4.0f µs\n",
			rate, uas, both-uas, both, self)
	}
	fmt.Print(out.String())
}

// cpuPerTxn runs sipp's REGISTER scenario against 127.0.0.1:port at rate
// calls/s for n calls and returns this process's CPU microseconds per
// call, over the whole life of the transactions: it waits after sipp ends
// until their Timer J / Timer K (64*T1 = 32 s for UDP, RFC 3261 §17.2.2)
// has fired, so that ending them is counted here and not in the next run.
func cpuPerTxn(t *testing.T, sipp string, port, rate, n int) float64 {
	t.Helper()
	dir := t.TempDir()
	before := processCPU()
	cmd := exec.Command(sipp, fmt.Sprintf("127.0.0.1:%d", port),
		"-sf", filepath.Join("testdata", "sipp_register_uac.xml"),
		"-r", strconv.Itoa(rate), "-m", strconv.Itoa(n), "-t", "u1", "-i", "127.0.0.1",
		"-p", strconv.Itoa(siptest.FreePort(t)), "-timeout", "60s", "-trace_err", "-error_file", filepath.Join(dir, "errors.log"))
	if out, err := cmd.CombinedOutput(); err != nil {
		e, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
		t.Fatalf("sipp at %d/s against port %d: %v\n%s\n%s", rate, port, err, tail(out), e)
	}
	time.Sleep(sip.Timer_J + time.Second)
	return (processCPU() - before).Seconds() * 1e6 / float64(n)
}

// processCPU is this process's CPU time, user plus system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
