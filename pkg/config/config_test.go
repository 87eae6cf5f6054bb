package config

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/imscore/imscore/pkg/admin"
)

func testFunction(ran *bool) Function {
	return Function{
		Name: "testfn", Prefix: "TESTFN", AdminAddr: "127.0.0.1:0",
		Flags: []cli.Flag{
			String("TESTFN", "sip-listen", "127.0.0.1:5060", "SIP address"),
			DatabaseURL("TESTFN"),
		},
		Validate: func(c *cli.Context) error {
			if c.String("sip-listen") == "" {
				return cli.Exit("--sip-listen is empty", 2)
			}
			return nil
		},
		Run: func(ctx context.Context, rt *Runtime) error {
			*ran = true
			return nil
		},
	}
}

func TestEnvName(t *testing.T) {
	if got := Env("pcscf", "sip-listen"); got != "PCSCF_SIP_LISTEN" {
		t.Fatalf("Env = %q", got)
	}
}

func TestCheckPrintsConfigFromEnvAndExits(t *testing.T) {
	t.Setenv("TESTFN_SIP_LISTEN", "127.0.0.9:5999")
	t.Setenv("DATABASE_URL", "postgres://ims:secretpw@db:5432/ims")
	var ran bool
	app := testFunction(&ran).App()
	var out bytes.Buffer
	app.Writer = &out
	if err := app.Run([]string{"testfn", "--check"}); err != nil {
		t.Fatal(err)
	}
	if ran {
		t.Error("--check must not run the function")
	}
	s := out.String()
	for _, want := range []string{"sip-listen = 127.0.0.9:5999", "configuration OK", "ims:xxxxx@db"} {
		if !strings.Contains(s, want) {
			t.Errorf("--check output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "secretpw") {
		t.Errorf("--check printed the database password:\n%s", s)
	}
}

func TestRunStartsAdminAndReturns(t *testing.T) {
	var ran bool
	app := testFunction(&ran).App()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := app.RunContext(ctx, []string{"testfn", "--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Error("Run was not called")
	}
}

func TestBadLogLevelIsAnError(t *testing.T) {
	var ran bool
	app := testFunction(&ran).App()
	app.ExitErrHandler = func(*cli.Context, error) {}
	if err := app.Run([]string{"testfn", "--log-level", "loud", "--check"}); err == nil {
		t.Fatal("want an error for --log-level loud")
	}
}

func TestProbe(t *testing.T) {
	adm := admin.New(nil)
	var ready atomic.Bool
	adm.AddReadyCheck("hss", func(context.Context) error {
		if !ready.Load() {
			return errors.New("peer hss down")
		}
		return nil
	})
	if err := adm.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer adm.Shutdown(context.Background())
	_, port, _ := net.SplitHostPort(adm.Addr())
	if err := Probe(context.Background(), "0.0.0.0:"+port); err == nil || !strings.Contains(err.Error(), "peer hss down") {
		t.Fatalf("Probe while not ready = %v, want an error naming the check", err)
	}
	ready.Store(true)
	adm.MarkStarted()
	if err := Probe(context.Background(), "0.0.0.0:"+port); err != nil {
		t.Fatalf("Probe while ready = %v", err)
	}
	if err := Probe(context.Background(), "no-port"); err == nil {
		t.Fatal("Probe accepted an address without a port")
	}
}

// A stop requested while the function is still starting is a clean exit,
// even when the interrupted start-up returns an error.
func TestStopDuringStartIsClean(t *testing.T) {
	fn := Function{Name: "testfn", Prefix: "TESTFN", AdminAddr: "127.0.0.1:0",
		Run: func(ctx context.Context, rt *Runtime) error {
			<-ctx.Done()
			return errors.New("migrations: conn closed")
		}}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := fn.App().RunContext(ctx, []string{"testfn", "--log-level", "error"}); err != nil {
		t.Fatalf("stop during start-up: %v", err)
	}
	// Without a stop request the same error is a failure.
	fn.Run = func(context.Context, *Runtime) error { return errors.New("migrations: conn closed") }
	app := fn.App()
	app.ExitErrHandler = func(*cli.Context, error) {}
	if err := app.Run([]string{"testfn", "--log-level", "error"}); err == nil {
		t.Fatal("a start-up error without a stop request was swallowed")
	}
}

func TestProcsFlag(t *testing.T) {
	var ran bool
	app := testFunction(&ran).App()
	app.ExitErrHandler = func(*cli.Context, error) {}
	if err := app.Run([]string{"testfn", "--procs", "none", "--check"}); err == nil || !strings.Contains(err.Error(), "--procs") {
		t.Fatalf("--procs none: %v, want an error naming --procs", err)
	}
	t.Cleanup(func() { runtime.SetDefaultGOMAXPROCS() })
	var inRun int
	f := testFunction(&ran)
	f.Run = func(ctx context.Context, rt *Runtime) error { inRun = runtime.GOMAXPROCS(0); return nil }
	t.Setenv("TESTFN_PROCS", "3")
	if err := f.App().Run([]string{"testfn", "--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	if inRun != 3 {
		t.Errorf("TESTFN_PROCS=3: the function ran with %d Ps", inRun)
	}
	// The default, auto: an idle function runs on one P.
	t.Setenv("TESTFN_PROCS", "")
	t.Setenv("GOMAXPROCS", "")
	if err := f.App().Run([]string{"testfn", "--log-level", "error"}); err != nil {
		t.Fatal(err)
	}
	if inRun != 1 {
		t.Errorf("--procs auto: the function started with %d Ps, want 1", inRun)
	}
}
