package icscf

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"

	"github.com/imscore/imscore/pkg/diameter"
)

// Authorization headers of the two kinds of REGISTER.
const (
	authInitial = `Digest username="alice@ims.test", realm="ims.test", uri="sip:ims.test", nonce="", response=""`
	authAnswer  = `Digest username="alice@ims.test", realm="ims.test", uri="sip:ims.test", nonce="bm9uY2U=", response="6629fae49393a05397450978507c4ef1", algorithm=AKAv1-MD5`
)

// holdHeader makes the S-CSCF of these tests sit on a REGISTER until the
// test releases it.
const holdHeader = "X-Test-Hold"

// holdingSCSCF is a test S-CSCF that answers 200 to everything, except that
// requests carrying holdHeader wait for release (called at cleanup too).
func holdingSCSCF(t *testing.T, label string) (s *testSCSCF, release func()) {
	t.Helper()
	hold := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	s = newTestSCSCF(t, label, func(req *sip.Request) (int, string) {
		if req.GetHeader(holdHeader) != nil {
			<-hold
		}
		return 200, "OK"
	})
	t.Cleanup(release) // runs before the S-CSCF's own cleanup
	return s, release
}

// asyncResult is the outcome of a request sent by sendAsync.
type asyncResult struct {
	res *sip.Response
	err error
}

// sendAsync sends req from its own client and delivers the final response.
func sendAsync(t *testing.T, req *sip.Request) <-chan asyncResult {
	t.Helper()
	c := newUAC(t)
	out := make(chan asyncResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		res, err := c.Do(ctx, req)
		out <- asyncResult{res, err}
	}()
	return out
}

func wait200(t *testing.T, what string, ch <-chan asyncResult) {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("%s: %v", what, r.err)
		}
		if r.res.StatusCode != 200 {
			t.Fatalf("%s: got %d %s, want 200", what, r.res.StatusCode, r.res.Reason)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("%s: no final response", what)
	}
}

// gaugeValue returns a gauge's value (-1 when absent).
func gaugeValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

// waitPending waits until icscf_pending_register is want: the slot of a
// REGISTER is released just after its final response left.
func waitPending(t *testing.T, reg *prometheus.Registry, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := gaugeValue(t, reg, "icscf_pending_register")
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("icscf_pending_register = %v, want %v", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkOverload503 checks res is the immediate 503 of admission control.
func checkOverload503(t *testing.T, ic *Server, res *sip.Response, pending string) {
	t.Helper()
	if res.StatusCode != 503 || res.Reason != "Service Unavailable" {
		t.Fatalf("got %d %s, want 503 Service Unavailable", res.StatusCode, res.Reason)
	}
	if ra := res.GetHeader("Retry-After"); ra == nil || ra.Value() != "7" {
		t.Errorf("Retry-After = %v, want 7", ra)
	}
	want := `399 ` + ic.warnAgent + ` "overload: ` + pending + ` REGISTER transactions pending (limit 1, fixed)"`
	if w := res.GetHeader("Warning"); w == nil || w.Value() != want {
		t.Errorf("Warning = %v, want %s", w, want)
	}
}

func TestOverloadRefusesInitialRegisterAdmitsChallengeAnswers(t *testing.T) {
	s1, release := holdingSCSCF(t, "scscf1")
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		return cxReply{code: diameter.DiameterSubsequentRegistration, experimental: true, serverName: s1.name}
	})
	ic, reg := startICSCF(t, hss.addr, []string{s1.spec()}, func(c *Config) {
		c.MaxPendingRegister, c.RegisterAdmission = 1, AdmissionFixed
		c.OverloadRetryAfter = 7
		c.SIPTimeout = 10 * time.Second // the held REGISTERs must not fail over
	})
	waitReady(t, ic)
	c := newUAC(t)
	if v := gaugeValue(t, reg, "icscf_pending_register"); v != 0 {
		t.Fatalf("icscf_pending_register at start = %v", v)
	}

	// A: an initial REGISTER the S-CSCF holds; one transaction pending.
	first := sendAsync(t, register(ic, header("Authorization", authInitial), header(holdHeader, "1")))
	s1.next(t)
	waitPending(t, reg, 1)
	uars := len(hss.requests())

	// B: initial REGISTERs (no Authorization, or response="") are refused
	// at once, without UAR, and never reach the S-CSCF.
	for i, req := range []*sip.Request{register(ic), register(ic, header("Authorization", authInitial))} {
		res := do(t, c, req)
		checkOverload503(t, ic, res, "1")
		if v := metricValue(t, reg, "icscf_overload_rejections_total", "kind=initial"); v != float64(i+1) {
			t.Errorf("initial rejections = %v, want %d", v, i+1)
		}
	}
	if n := len(hss.requests()); n != uars {
		t.Errorf("%d UARs for refused REGISTERs", n-uars)
	}
	s1.none(t)
	if v := metricValue(t, reg, "icscf_sip_responses_total", "method=REGISTER", "code=503"); v != 2 {
		t.Errorf("REGISTER 503 counter = %v, want 2", v)
	}

	// C: a challenge answer is admitted (limit 2 for those).
	if res := do(t, c, register(ic, header("Authorization", authAnswer))); res.StatusCode != 200 {
		t.Fatalf("challenge answer: got %d %s, want 200", res.StatusCode, res.Reason)
	}
	s1.next(t)
	// The slot is released after the 200 is sent: wait for it.
	waitPending(t, reg, 1)

	// D: a held challenge answer fills its limit: two pending.
	second := sendAsync(t, register(ic, header("Authorization", authAnswer), header(holdHeader, "1")))
	s1.next(t)
	waitPending(t, reg, 2)

	// E, F: a further challenge answer and a de-registration are refused.
	checkOverload503(t, ic, do(t, c, register(ic, header("Authorization", authAnswer))), "2")
	checkOverload503(t, ic, do(t, c, register(ic, header("Expires", "0"))), "2")
	if v := metricValue(t, reg, "icscf_overload_rejections_total", "kind=challenge_answer"); v != 2 {
		t.Errorf("challenge_answer rejections = %v, want 2", v)
	}
	s1.none(t)

	// Once the held ones complete, an initial REGISTER is admitted again.
	release()
	wait200(t, "held initial REGISTER", first)
	wait200(t, "held challenge answer", second)
	waitPending(t, reg, 0)
	if res := do(t, c, register(ic)); res.StatusCode != 200 {
		t.Fatalf("initial REGISTER after the load went: got %d %s", res.StatusCode, res.Reason)
	}
	s1.next(t)
	waitPending(t, reg, 0)
	if v := metricValue(t, reg, "icscf_overload_rejections_total", "kind=initial"); v != 2 {
		t.Errorf("initial rejections = %v, want 2", v)
	}
}

func TestOverloadNoLimit(t *testing.T) {
	s1, release := holdingSCSCF(t, "scscf1")
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		return cxReply{code: diameter.DiameterSubsequentRegistration, experimental: true, serverName: s1.name}
	})
	ic, reg := startICSCF(t, hss.addr, []string{s1.spec()}, func(c *Config) {
		c.MaxPendingRegister = -1 // --max-pending-register 0
		c.SIPTimeout = 10 * time.Second
	})
	waitReady(t, ic)
	var held []<-chan asyncResult
	for range 3 {
		held = append(held, sendAsync(t, register(ic, header(holdHeader, "1"))))
		s1.next(t)
	}
	waitPending(t, reg, 3)
	release()
	for _, h := range held {
		wait200(t, "held REGISTER", h)
	}
	waitPending(t, reg, 0)
}

// panicCore makes the I-CSCF's handler panic while it logs "REGISTER to
// S-CSCF" for sip:panic@ims.test: a panic in the middle of a REGISTER
// that sipproxy recovers (and answers 500).
type panicCore struct{ zapcore.LevelEnabler }

func (c panicCore) With([]zapcore.Field) zapcore.Core { return c }
func (c panicCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if e.Message == "REGISTER to S-CSCF" {
		return ce.AddCore(e, c)
	}
	return ce
}
func (c panicCore) Write(_ zapcore.Entry, fs []zapcore.Field) error {
	for _, f := range fs {
		if f.Key == "impu" && f.String == "sip:panic@ims.test" {
			panic("test: handler panic")
		}
	}
	return nil
}
func (c panicCore) Sync() error { return nil }

// With a limit of 1, every REGISTER below would be refused if an earlier
// one had leaked its slot: errors, failover and a recovered panic all
// release it.
func TestOverloadSlotReleasedOnEveryPath(t *testing.T) {
	silent := silentSCSCF(t, "scscf1")
	s2 := newTestSCSCF(t, "scscf2", nil)
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		switch r.impu {
		case "sip:unknown@ims.test":
			return cxReply{code: diameter.DiameterErrorUserUnknown, experimental: true}
		case "sip:slow@ims.test":
			return cxReply{code: diameter.DiameterFirstRegistration, experimental: true, serverName: s2.name, delay: time.Second}
		case "sip:failover@ims.test":
			if r.uat == int(diameter.UATRegistrationAndCapabilities) {
				return cxReply{code: diameter.DiameterFirstRegistration, experimental: true, caps: true}
			}
			return cxReply{code: diameter.DiameterSubsequentRegistration, experimental: true, serverName: silent.name}
		}
		return cxReply{code: diameter.DiameterSubsequentRegistration, experimental: true, serverName: s2.name}
	})
	logger := zap.New(zapcore.NewTee(zaptest.NewLogger(t).Core(), panicCore{zapcore.DebugLevel}))
	ic, reg := startICSCF(t, hss.addr, []string{silent.spec(), s2.spec()}, func(c *Config) {
		c.MaxPendingRegister, c.RegisterAdmission = 1, AdmissionFixed
		c.CxTimeout = 200 * time.Millisecond
		c.Logger = logger
	})
	waitReady(t, ic)
	c := newUAC(t)
	cases := []struct {
		user string
		want int
	}{
		{"unknown", 401},  // UAA 5001: decoy challenge (conceal.go)
		{"slow", 504},     // UAR timeout
		{"failover", 200}, // silent S-CSCF, then the other one
		{"panic", 500},    // handler panic recovered by sipproxy
		{"alice", 200},
	}
	for _, tc := range cases {
		req := newRequest(ic, sip.REGISTER, "sip:"+testDomain, "sip:"+tc.user+"@"+testDomain)
		res := do(t, c, req)
		if res.StatusCode != tc.want {
			t.Fatalf("%s: got %d %s, want %d", tc.user, res.StatusCode, res.Reason, tc.want)
		}
		waitPending(t, reg, 0)
	}
	if v := metricValue(t, reg, "icscf_overload_rejections_total", "kind=initial"); v != 0 {
		t.Errorf("initial rejections = %v, want 0", v)
	}
}

func TestRegisterKind(t *testing.T) {
	cases := []struct {
		name string
		hdrs []sip.Header
		want string
	}{
		{"no Authorization", nil, kindInitial},
		{"empty response", []sip.Header{header("Authorization", authInitial)}, kindInitial},
		{"challenge answer", []sip.Header{header("Authorization", authAnswer)}, kindChallengeAnswer},
		{"second Authorization answers", []sip.Header{header("Authorization", authInitial), header("Authorization", strings.Replace(authAnswer, "ims.test", "other.test", 2))}, kindChallengeAnswer},
		{"malformed", []sip.Header{header("Authorization", `Digest username="unterminated`)}, kindInitial},
		{"Basic", []sip.Header{header("Authorization", `Basic YWxhZGRpbjpvcGVuc2VzYW1l`)}, kindInitial},
		{"de-registration", []sip.Header{header("Expires", "0")}, kindChallengeAnswer},
	}
	for _, c := range cases {
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: "ims.test"})
		req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "alice", Host: "127.0.0.1"}})
		for _, h := range c.hdrs {
			req.AppendHeader(h)
		}
		if got := registerKind(req); got != c.want {
			t.Errorf("%s: registerKind = %s, want %s", c.name, got, c.want)
		}
	}
}

func TestOverloadFlags(t *testing.T) {
	run := func(env map[string]string, args ...string) (Config, error) {
		for k, v := range env {
			t.Setenv(k, v)
		}
		var got Config
		app := &cli.App{Flags: Function().Flags, Action: func(c *cli.Context) error {
			var err error
			got, err = configFromCLI(c)
			return err
		}}
		err := app.Run(append([]string{"icscf"}, args...))
		return got, err
	}
	cfg, err := run(nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxPendingRegister != 128 || cfg.OverloadRetryAfter != 5 || cfg.RegisterAdmission != AdmissionAdaptive {
		t.Errorf("defaults: max pending %d, Retry-After %d, admission %q; want 128, 5, adaptive", cfg.MaxPendingRegister, cfg.OverloadRetryAfter, cfg.RegisterAdmission)
	}
	if cfg, err = run(nil, "--register-admission", "fixed"); err != nil || cfg.RegisterAdmission != AdmissionFixed {
		t.Errorf("--register-admission fixed: %q, %v", cfg.RegisterAdmission, err)
	}
	if cfg, err = run(nil, "--max-pending-register", "0", "--overload-retry-after", "1"); err != nil || cfg.MaxPendingRegister >= 0 || cfg.OverloadRetryAfter != 1 {
		t.Errorf("--max-pending-register 0: %+v, %v; want no limit (negative)", cfg.MaxPendingRegister, err)
	}
	for _, bad := range [][]string{{"--max-pending-register", "-1"}, {"--overload-retry-after", "0"}, {"--register-admission", "aimd"}} {
		if _, err := run(nil, bad...); err == nil {
			t.Errorf("%v accepted", bad)
		}
	}
	cfg, err = run(map[string]string{"ICSCF_MAX_PENDING_REGISTER": "40", "ICSCF_OVERLOAD_RETRY_AFTER": "9"})
	if err != nil || cfg.MaxPendingRegister != 40 || cfg.OverloadRetryAfter != 9 {
		t.Errorf("environment twins: %d, %d, %v", cfg.MaxPendingRegister, cfg.OverloadRetryAfter, err)
	}
	// A Config left at zero takes the defaults.
	var zero Config
	zero.Domain, zero.SCSCFs = testDomain, cfg.SCSCFs
	if err := zero.setDefaults(); err != nil || zero.MaxPendingRegister != DefaultMaxPendingRegister || zero.OverloadRetryAfter != DefaultOverloadRetryAfter {
		t.Errorf("setDefaults: %d, %d, %v", zero.MaxPendingRegister, zero.OverloadRetryAfter, err)
	}
}
