package e2e

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/siptest"
)

func needSipp(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed (Debian package sip-tester)")
	}
	return p
}

// sippRun runs one sipp scenario through the I-CSCF with one call per CSV
// row (field0 = user, field1 = password; the credentials of the first row
// are written into the scenario) and returns whether every call
// succeeded, the output and the message trace.
func (l *lab) sippRun(t testing.TB, scenario string, rows []string, expires int) (bool, string, string) {
	t.Helper()
	sipp := needSipp(t)
	dir := t.TempDir()
	inf := filepath.Join(dir, "users.csv")
	if err := os.WriteFile(inf, []byte("SEQUENTIAL\n"+strings.Join(rows, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	msgs := filepath.Join(dir, "messages.log")
	// sipp cannot nest keywords in [authentication ...] (LIBRARIES.md):
	// the IMPI and password are written into a copy of the scenario.
	tmpl, err := os.ReadFile(filepath.Join("testdata", scenario))
	if err != nil {
		t.Fatal(err)
	}
	user, password, _ := strings.Cut(rows[0], ";")
	sf := filepath.Join(dir, scenario)
	text := strings.NewReplacer("%USER%", user, "%DOMAIN%", domain, "%PASSWORD%", password).Replace(string(tmpl))
	if err := os.WriteFile(sf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sipp, fmt.Sprintf("127.0.0.1:%d", l.icscf),
		"-sf", sf, "-inf", inf,
		"-key", "domain", domain, "-s", user+"@"+domain, "-key", "expires", fmt.Sprint(expires), "-auth_uri", domain,
		"-i", "127.0.0.1", "-p", fmt.Sprint(freePort(t)), "-t", "u1", "-m", fmt.Sprint(len(rows)), "-r", "50",
		"-nostdin", "-timeout", "30s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_msg", "-message_file", msgs)
	out, err := cmd.CombinedOutput()
	m, _ := os.ReadFile(msgs)
	e, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
	return err == nil, string(out) + "\n" + string(e), string(m)
}

// zeroByteRES reports whether a 401 in the sipp trace carried a vector
// whose RES (TS 35.208 set 1 keys) contains a zero byte: sipp 3.6.1 then
// computes a wrong response (LIBRARIES.md), which a correct S-CSCF refuses.
func zeroByteRES(t testing.TB, trace string) bool {
	k, _ := hex.DecodeString(set1K)
	op, _ := hex.DecodeString(set1OP)
	if nonce := siptest.SippZeroByteRES(k, op, trace); nonce != "" {
		t.Logf("nonce %s gives a RES with a zero byte (sipp 3.6.1 miscomputes it)", nonce)
		return true
	}
	return false
}

// sippAKA registers (or, with expires 0, de-registers) user with sipp,
// retrying only when a failure is explained by sipp's zero-byte RES bug.
// It returns the message trace of the successful run.
func (l *lab) sippAKA(t testing.TB, user string, expires int) string {
	t.Helper()
	for attempt := 1; attempt <= 5; attempt++ {
		ok, out, trace := l.sippRun(t, "register_aka.xml", []string{user}, expires)
		if ok {
			return trace
		}
		if !zeroByteRES(t, trace) {
			t.Fatalf("sipp AKA registration of %s failed:\n%s\n%s", user, tail(out, 3000), tail(trace, 4000))
		}
		t.Logf("attempt %d hit sipp's zero-byte RES bug; retrying", attempt)
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("sipp AKA registration of %s: 5 attempts all hit the zero-byte RES bug", user)
	return ""
}
