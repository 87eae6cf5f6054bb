// Package e2e runs the real binaries (hss, icscf, scscf, imsctl) against a
// throw-away PostgreSQL database and drives them with sipp and with Go SIP
// clients. TestMain builds the binaries once into a temporary directory.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/siptest"

	"github.com/imscore/imscore/pkg/pgtest"
)

const domain = "ims.mnc001.mcc001.3gppnetwork.org"

// TS 35.208 test set 1.
const (
	set1K   = "465b5ce8b199b49faa5f0a2ee238a6bc"
	set1OP  = "cdc202d5123e20f62b6d676ac72cb318"
	set1AMF = "8000"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "imscore-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	for _, b := range []string{"hss", "icscf", "scscf", "imsctl"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, b), "../cmd/"+b)
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build %s: %v\n%s", b, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func freePort(t testing.TB) int { return siptest.FreePort(t) }

// proc is one running binary.
type proc struct {
	name  string
	cmd   *exec.Cmd
	admin string
	logs  *syncBuffer
	done  chan struct{}
	err   error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// lab is one HSS + I-CSCF + S-CSCF set on free ports sharing one database.
type lab struct {
	t        testing.TB
	dsn      string
	hssPort  int
	icscf    int // SIP port
	scscf    int // SIP port
	procs    map[string]*proc
	scscfArg []string
}

func newLab(t testing.TB, scscfArgs ...string) *lab {
	t.Helper()
	return newLabOnHSSPort(t, freePort(t), scscfArgs...)
}

// newLabOnHSSPort is newLab with the HSS's Diameter port chosen by the
// caller (for captures).
func newLabOnHSSPort(t testing.TB, hssPort int, scscfArgs ...string) *lab {
	t.Helper()
	l := newEmptyLab(t, hssPort)
	l.icscf, l.scscf, l.scscfArg = freePort(t), freePort(t), scscfArgs
	l.startHSS()
	l.startSCSCF()
	l.startICSCF()
	for _, n := range []string{"hss", "scscf", "icscf"} {
		l.waitReady(n, 15*time.Second)
	}
	return l
}

// newEmptyLab makes a lab with a migrated throw-away database and no
// process started yet (the HSS will listen on hssPort); every process it
// starts is stopped at the end of the test, and their logs are printed
// when the test failed.
func newEmptyLab(t testing.TB, hssPort int) *lab {
	t.Helper()
	l := &lab{t: t, dsn: pgtest.NewDB(t), hssPort: hssPort, procs: map[string]*proc{}}
	t.Cleanup(func() {
		for _, p := range l.procs {
			p.stop()
		}
		if t.Failed() {
			for n, p := range l.procs {
				t.Logf("---- %s logs (tail) ----\n%s", n, tail(p.logs.String(), 6000))
			}
		}
	})
	l.imsctl("db", "migrate")
	return l
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (l *lab) scscfServerName() string { return fmt.Sprintf("sip:scscf.%s:%d", domain, l.scscf) }

func (l *lab) start(name string, args ...string) *proc {
	l.t.Helper()
	admin := fmt.Sprintf("127.0.0.1:%d", freePort(l.t))
	args = append([]string{"--admin-listen", admin, "--admin-pprof", "--log-level", "info"}, args...)
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+l.dsn)
	p := &proc{name: name, cmd: cmd, admin: admin, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	if old := l.procs[name]; old != nil {
		old.stop()
	}
	l.procs[name] = p
	return p
}

func (p *proc) stop() { terminate(p.cmd, p.done, 5*time.Second) }

// terminate stops a started command the way a user would: SIGTERM, then
// SIGKILL if it has not exited (done closed) within grace.
func terminate(cmd *exec.Cmd, done <-chan struct{}, grace time.Duration) {
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

// startHSS starts the HSS; BENCH_HSS_ARGS (space-separated flags, e.g.
// "--db-conns 8") is appended, for benchmark experiments.
func (l *lab) startHSS() {
	l.start("hss", append([]string{"--diameter-listen", fmt.Sprintf("127.0.0.1:%d", l.hssPort), "--domain", domain},
		strings.Fields(os.Getenv("BENCH_HSS_ARGS"))...)...)
}

func (l *lab) startSCSCF() {
	args := []string{"--sip-listen", fmt.Sprintf("127.0.0.1:%d", l.scscf), "--domain", domain,
		"--server-name", l.scscfServerName(), "--hss-addr", fmt.Sprintf("127.0.0.1:%d", l.hssPort)}
	hasICSCF := false
	for _, a := range l.scscfArg {
		hasICSCF = hasICSCF || a == "--icscf"
	}
	if !hasICSCF { // session routing: home targets go to this lab's I-CSCF
		args = append(args, "--icscf", fmt.Sprintf("sip:127.0.0.1:%d", l.icscf))
	}
	l.start("scscf", append(args, l.scscfArg...)...)
}

// startICSCF starts the I-CSCF; BENCH_ICSCF_ARGS (space-separated flags)
// is appended, for benchmarks.
func (l *lab) startICSCF() {
	l.start("icscf", append([]string{"--sip-listen", fmt.Sprintf("127.0.0.1:%d", l.icscf), "--domain", domain,
		"--hss-addr", fmt.Sprintf("127.0.0.1:%d", l.hssPort), "--scscf", l.scscfServerName(),
		"--resolve", "scscf." + domain + "=127.0.0.1"}, strings.Fields(os.Getenv("BENCH_ICSCF_ARGS"))...)...)
}

func (l *lab) waitReady(name string, within time.Duration) {
	l.t.Helper()
	p := l.procs[name]
	deadline := time.Now().Add(within)
	for {
		res, err := http.Get("http://" + p.admin + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return
			}
		}
		select {
		case <-p.done:
			l.t.Fatalf("%s exited: %v\n%s", name, p.err, tail(p.logs.String(), 4000))
		default:
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s not ready within %v\n%s", name, within, tail(p.logs.String(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *lab) imsctl(args ...string) string {
	l.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "imsctl"), args...)
	cmd.Env = append(os.Environ(), "DATABASE_URL="+l.dsn)
	out, err := cmd.CombinedOutput()
	if err != nil {
		l.t.Fatalf("imsctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// addAKA provisions an AKA subscriber with test set 1 keys.
func (l *lab) addAKA(user string, extra ...string) {
	l.t.Helper()
	args := []string{"subscriber", "add", "--impi", user + "@" + domain, "--impu", "sip:" + user + "@" + domain,
		"--k", set1K, "--op", set1OP, "--amf", set1AMF}
	l.imsctl(append(args, extra...)...)
}

// registrar returns /status/registrar of the S-CSCF.
func (l *lab) registrar() registrarStatus {
	l.t.Helper()
	res, err := http.Get("http://" + l.procs["scscf"].admin + "/status/registrar")
	if err != nil {
		l.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var st registrarStatus
	if err := json.Unmarshal(b, &st); err != nil {
		l.t.Fatalf("status: %v\n%s", err, b)
	}
	return st
}

type registrarStatus struct {
	Registrations []struct {
		AOR      string   `json:"aor"`
		IMPI     string   `json:"impi"`
		IMPUs    []string `json:"impus"`
		Contacts []struct {
			URI       string `json:"uri"`
			ExpiresIn int    `json:"expires_in"`
		} `json:"contacts"`
	} `json:"registrations"`
}

func (st registrarStatus) find(impu string) (contacts int, ok bool) {
	for _, r := range st.Registrations {
		for _, u := range append([]string{r.AOR}, r.IMPUs...) {
			if u == impu {
				return len(r.Contacts), true
			}
		}
	}
	return 0, false
}

// metric returns the value of a Prometheus sample line of a process
// ("name{labels}"), 0 when absent.
func (l *lab) metric(proc, sample string) float64 {
	l.t.Helper()
	for _, line := range strings.Split(l.metricsText(proc), "\n") {
		if strings.HasPrefix(line, sample+" ") {
			v, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, sample)), 64)
			return v
		}
	}
	return 0
}

// metricsText is proc's /metrics page.
func (l *lab) metricsText(proc string) string {
	l.t.Helper()
	res, err := http.Get("http://" + l.procs[proc].admin + "/metrics")
	if err != nil {
		l.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// metricSum is the sum of every sample of the metric name (all its
// label sets) that proc's /metrics shows; 0 when there is none.
func (l *lab) metricSum(proc, name string) float64 {
	l.t.Helper()
	sum := 0.0
	for _, line := range strings.Split(l.metricsText(proc), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			sum += v
		}
	}
	return sum
}

// waitMetric polls proc's sample until ok(value) holds or within has
// passed, and returns the last value: a counter bumped by a response can
// lag the effect the test waited for on another process.
func (l *lab) waitMetric(proc, sample string, within time.Duration, ok func(float64) bool) float64 {
	l.t.Helper()
	deadline := time.Now().Add(within)
	for {
		v := l.metric(proc, sample)
		if ok(v) || time.Now().After(deadline) {
			return v
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var _ = context.Background
