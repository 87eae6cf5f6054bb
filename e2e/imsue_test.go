package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	imsueBuild    sync.Once
	imsueBuildErr error
)

func buildIMSUE(t testing.TB) string {
	t.Helper()
	imsueBuild.Do(func() {
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "imsue"), "../cmd/imsue").CombinedOutput()
		if err != nil {
			imsueBuildErr = fmt.Errorf("go build imsue: %v\n%s", err, out)
		}
	})
	if imsueBuildErr != nil {
		t.Fatal(imsueBuildErr)
	}
	return filepath.Join(binDir, "imsue")
}

// TestIMSUEThroughLab runs the imsue command as docs/softphones.md shows
// against the lab of make lab (on free ports; this kernel has no ESP, so
// --ipsec auto registers without SAs): bob answers, alice registers,
// sends bob a MESSAGE and calls him with an INVITE above 1,300 bytes.
func TestIMSUEThroughLab(t *testing.T) {
	imsue := buildIMSUE(t)
	l := newPCSCFLab(t, freePort(t))
	l.addAKA("alice")
	l.addAKA("bob")
	pcscf := fmt.Sprintf("127.0.0.1:%d", l.pcscf)
	args := func(user string, rest ...string) []string {
		return append([]string{"--impi", user + "@" + domain, "--impu", "sip:" + user + "@" + domain,
			"--k", set1K, "--op", set1OP, "--pcscf", pcscf}, rest...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bob := exec.CommandContext(ctx, imsue, args("bob", "answer", "--for", "12s")...)
	bobOut, err := bob.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var bobErr strings.Builder
	bob.Stderr = &bobErr
	if err := bob.Start(); err != nil {
		t.Fatal(err)
	}
	steps := make(chan map[string]any, 64)
	go func() {
		sc := bufio.NewScanner(bobOut)
		for sc.Scan() {
			var m map[string]any
			if json.Unmarshal(sc.Bytes(), &m) == nil {
				steps <- m
			}
		}
		close(steps)
	}()
	var bobLog []string
	waitStep := func(name string) {
		t.Helper()
		for {
			select {
			case m, ok := <-steps:
				if !ok {
					t.Fatalf("bob's imsue ended before %q: %v\n%s\n%s", name, bob.Wait(), strings.Join(bobLog, "\n"), bobErr.String())
				}
				b, _ := json.Marshal(m)
				bobLog = append(bobLog, string(b))
				if m["step"] == name && m["error"] == nil {
					return
				}
			case <-ctx.Done():
				t.Fatalf("bob: no %q step\n%s", name, strings.Join(bobLog, "\n"))
			}
		}
	}
	waitStep("subscribe-reg")
	for _, c := range [][]string{
		args("alice", "message", "--to", "sip:bob@"+domain, "--text", "hi bob"),
		args("alice", "call", "--to", "sip:bob@"+domain, "--duration", "1s", "--min-size", "1500"),
	} {
		out, err := exec.CommandContext(ctx, imsue, c...).CombinedOutput()
		if err != nil {
			t.Fatalf("imsue %s: %v\n%s", strings.Join(c[len(c)-5:], " "), err, out)
		}
		for _, want := range []string{`"step":"registered"`, `"step":"deregister-auth","status":200`} {
			if !strings.Contains(string(out), want) {
				t.Errorf("alice: no %s line in\n%s", want, out)
			}
		}
	}
	waitStep("message-received")
	waitStep("incoming-call")
	waitStep("call-ended")
	// bob's own de-registration at the end of --for: its reg event NOTIFY
	// is that, not a network-initiated de-registration.
	waitStep("deregister-auth")
	for m := range steps {
		b, _ := json.Marshal(m)
		bobLog = append(bobLog, string(b))
	}
	for _, l := range bobLog {
		if strings.Contains(l, `"step":"network-deregistered"`) {
			t.Errorf("bob's own de-registration reported as network-initiated:\n%s", strings.Join(bobLog, "\n"))
			break
		}
	}
	if err := bob.Wait(); err != nil {
		t.Errorf("bob's imsue: %v\n%s", err, bobErr.String())
	}
}

// TestIMSUELoad: `imsue load` registers many UEs at a rate (each with its
// own ports, from one address), lets pairs call each other, and
// de-registers them; its summary line counts them all.
func TestIMSUELoad(t *testing.T) {
	imsue := buildIMSUE(t)
	l := newPCSCFLab(t, freePort(t))
	const n = 8
	for i := 1; i <= n; i++ {
		l.addAKA(fmt.Sprintf("load%d", i))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, imsue, "--impi", "load%d@"+domain, "--impu", "sip:load%d@"+domain,
		"--k", set1K, "--op", set1OP, "--pcscf", fmt.Sprintf("127.0.0.1:%d", l.pcscf),
		"load", "--count", fmt.Sprint(n), "--rate", "20", "--calls", "--call-hold", "200ms", "--quiet").Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("imsue load: %v\n%s\n%s", err, out, stderr)
	}
	// The summary is the last JSON line on stdout (sipgo may log to
	// stderr, e.g. a retransmitted 180 it no longer has a transaction for).
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	out = []byte(lines[len(lines)-1])
	var sum struct {
		Step   string `json:"step"`
		Result struct {
			UEs, Registered, Failed, Calls int
			CallsFailed                    int `json:"calls_failed"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(out))), &sum); err != nil || sum.Step != "load-summary" {
		t.Fatalf("summary: %v\n%s", err, out)
	}
	if r := sum.Result; r.UEs != n || r.Registered != n || r.Failed != 0 || r.Calls != n/2 || r.CallsFailed != 0 {
		t.Errorf("summary %+v, want %d registered and %d calls", r, n, n/2)
	}
}
