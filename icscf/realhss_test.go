package icscf

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/siptest"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/pgtest"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds cmd/hss and cmd/imsctl once per test run.
func binaries(t *testing.T) (hss, imsctl string) {
	t.Helper()
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "icscf-bin-")
		if buildErr != nil {
			return
		}
		for _, b := range []string{"hss", "imsctl"} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, b), "github.com/imscore/imscore/cmd/"+b).CombinedOutput()
			if err != nil {
				buildErr = &buildError{b, err, out}
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "hss"), filepath.Join(binDir, "imsctl")
}

type buildError struct {
	bin string
	err error
	out []byte
}

func (e *buildError) Error() string {
	return "go build " + e.bin + ": " + e.err.Error() + "\n" + string(e.out)
}

// TestMain runs the tests with the Diameter conformance check of
// conformance_test.go, then removes the binaries built for TestWithRealHSS.
func TestMain(m *testing.M) {
	code := runConformance(m)
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func freePort(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", siptest.FreePort(t))
}

// TestWithRealHSS runs the I-CSCF against the hss binary on a throw-away
// PostgreSQL database provisioned with imsctl.
func TestWithRealHSS(t *testing.T) {
	hssBin, imsctl := binaries(t)
	dsn, _ := pgtest.Migrated(t)
	s1 := newTestSCSCF(t, "scscf1", nil) // lacks mandatory capability 1
	s2 := newTestSCSCF(t, "scscf2", nil)
	ctl := func(args ...string) {
		t.Helper()
		out, err := exec.Command(imsctl, append([]string{"--database-url", dsn}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("imsctl %v: %v\n%s", args, err, out)
		}
	}
	ctl("scscf", "add", s2.name, "--mandatory", "1", "--optional", "2")
	ctl("subscriber", "add", "--impi", "alice@ims.test", "--impu", "sip:alice@ims.test", "--password", "secret")
	ctl("subscriber", "add", "--impi", "bob@ims.test", "--impu", "sip:bob@ims.test", "--password", "secret")

	hssAddr := freePort(t)
	var logs bytes.Buffer
	cmd := exec.Command(hssBin, "--diameter-listen", hssAddr, "--domain", testDomain,
		"--accept-any-peer", "--database-url", dsn, "--admin-listen", "127.0.0.1:0", "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("hss output:\n%s", logs.String())
		}
	})

	ic, _ := startICSCF(t, hssAddr, []string{s1.spec(2), s2.spec(1, 2)}, revealUnknownUsers)
	conceal, _ := startICSCF(t, hssAddr, []string{s1.spec(2), s2.spec(1, 2)})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, x := range []*Server{ic, conceal} {
		if err := x.WaitReady(ctx); err != nil {
			t.Fatalf("HSS never became a Cx peer: %v", err)
		}
	}
	c := newUAC(t)

	t.Run("first REGISTER by capabilities", func(t *testing.T) {
		res := do(t, c, register(ic, header("Authorization", `Digest username="alice@ims.test", realm="ims.test", uri="sip:ims.test", nonce="", response=""`)))
		if res.StatusCode != 200 {
			t.Fatalf("got %d %s %v", res.StatusCode, res.Reason, res.GetHeader("Warning"))
		}
		checkToSCSCF(t, s2.next(t), s2, "sip:ims.test")
		s1.none(t)
	})
	t.Run("unknown user is 403 with Warning", func(t *testing.T) {
		req := newRequest(ic, sip.REGISTER, "sip:"+testDomain, "sip:mallory@"+testDomain)
		res := do(t, c, req)
		if res.StatusCode != 403 {
			t.Fatalf("got %d %s", res.StatusCode, res.Reason)
		}
		if w := res.GetHeader("Warning"); w == nil || !strings.Contains(w.Value(), "5001") {
			t.Errorf("Warning = %v", w)
		}
	})
	t.Run("unknown identities concealed", func(t *testing.T) {
		// Default: a decoy challenge in the S-CSCF's form, then 403
		// "Authentication failed" for its answer, neither with a Warning.
		for _, authz := range []string{
			`Digest username="mallory@ims.test", realm="ims.test", uri="sip:ims.test", nonce="", response=""`,
			`Digest username="bob@ims.test", realm="ims.test", uri="sip:ims.test", nonce="", response=""`, // 5002 for alice
		} {
			to := "sip:mallory@" + testDomain
			if strings.Contains(authz, "bob@") {
				to = "sip:alice@" + testDomain
			}
			res := do(t, c, newRequest(conceal, sip.REGISTER, "sip:"+testDomain, to, header("Authorization", authz)))
			ch, err := digest.Parse(headerValue(res, "WWW-Authenticate"))
			if res.StatusCode != 401 || res.Reason != "Unauthorized" || err != nil || ch.Algorithm() != digest.AlgAKAv1 ||
				ch.Realm() != testDomain || ch.QOP() != "auth" || len(ch.IK()) != 32 || len(ch.CK()) != 32 || res.GetHeader("Warning") != nil {
				t.Fatalf("%s: %d %s, challenge %v (%v), Warning %v", to, res.StatusCode, res.Reason, ch, err, res.GetHeader("Warning"))
			}
			if _, _, err := digest.SplitAKANonce(ch.Nonce()); err != nil {
				t.Errorf("decoy nonce is not an AKA nonce: %v", err)
			}
			answer := strings.Replace(strings.Replace(authz, `nonce=""`, `nonce="`+ch.Nonce()+`"`, 1), `response=""`,
				`response="00112233445566778899aabbccddeeff", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce="c"`, 1)
			res = do(t, c, newRequest(conceal, sip.REGISTER, "sip:"+testDomain, to, header("Authorization", answer)))
			if res.StatusCode != 403 || res.Reason != "Forbidden - Authentication failed" || res.GetHeader("Warning") != nil {
				t.Errorf("%s, answer to the decoy: %d %s, Warning %v", to, res.StatusCode, res.Reason, res.GetHeader("Warning"))
			}
		}
	})
	t.Run("identities don't match", func(t *testing.T) {
		// alice's IMPU with bob's IMPI.
		res := do(t, c, register(ic, header("Authorization", `Digest username="bob@ims.test", realm="ims.test", uri="sip:ims.test", nonce="", response=""`)))
		if res.StatusCode != 403 {
			t.Fatalf("got %d %s %v", res.StatusCode, res.Reason, res.GetHeader("Warning"))
		}
		if w := res.GetHeader("Warning"); w == nil || !strings.Contains(w.Value(), "5002") {
			t.Errorf("Warning = %v", w)
		}
	})
	t.Run("LIR unknown is 404", func(t *testing.T) {
		res := do(t, c, newRequest(ic, sip.MESSAGE, "sip:nobody@ims.test", "sip:nobody@ims.test"))
		if res.StatusCode != 404 {
			t.Fatalf("got %d %s %v", res.StatusCode, res.Reason, res.GetHeader("Warning"))
		}
	})
	t.Run("LIR for a known IMPU is not a back-end error", func(t *testing.T) {
		res := do(t, c, newRequest(ic, sip.MESSAGE, "sip:alice@ims.test", "sip:alice@ims.test"))
		// Not registered: 480 (5003), or forwarded to an S-CSCF for
		// unregistered services (the test S-CSCF answers 200).
		if res.StatusCode != 480 && res.StatusCode != 200 {
			t.Fatalf("got %d %s %v", res.StatusCode, res.Reason, res.GetHeader("Warning"))
		}
		t.Logf("LIR for unregistered alice: %d %s", res.StatusCode, res.Reason)
	})
}

func headerValue(res *sip.Response, name string) string {
	if h := res.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}
