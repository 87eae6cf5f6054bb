//go:build ipsecvm

package ipsecvm

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestIMSUECommand: the imsue binary registers with IPsec and sends a
// MESSAGE to a UE of the test, one JSON line per step.
func TestIMSUECommand(t *testing.T) {
	rcv := newUE(t, 31)
	if err := rcv.Register(ctxT(t, 30*time.Second)); err != nil {
		t.Fatalf("register: %v", err)
	}
	cmd := exec.Command("/bin/imsue", "--impi", "ue32@"+Domain, "--impu", impu(32), "--k", K, "--op", OP,
		"--pcscf", PCSCFIP+":5060", "--local-ip", ueIP(32), "--ipsec", "on",
		"message", "--to", impu(31), "--text", "hello from the imsue command")
	out, err := cmd.CombinedOutput()
	t.Logf("imsue:\n%s", out)
	if err != nil {
		t.Fatalf("imsue: %v", err)
	}
	for _, step := range []string{`"step":"sa-installed"`, `"step":"registered"`, `"step":"message","status":200`, `"step":"deregister","status":200`} {
		if !strings.Contains(string(out), step) {
			t.Errorf("no %s line", step)
		}
	}
	select {
	case m := <-rcv.Messages():
		if m.Text != "hello from the imsue command" {
			t.Errorf("got %+v", m)
		}
	case <-time.After(10 * time.Second):
		t.Error("the MESSAGE did not arrive")
	}
}

// TestIMSUELoadOverIPsec: `imsue load` as a load generator through IPsec:
// six UEs from one address, each with its own protected ports and SA set,
// register at 5/s, UE 2k calls UE 2k+1 through the SAs, and all
// de-register; the summary line counts every registration and call, and
// none failed.
func TestIMSUELoadOverIPsec(t *testing.T) {
	const start, count = 35, 6
	cmd := exec.Command("/bin/imsue", "--impi", "ue%d@"+Domain, "--impu", "sip:ue%d@"+Domain, "--k", K, "--op", OP,
		"--pcscf", PCSCFIP+":5060", "--local-ip", ueIP(start), "--ipsec", "on", "--timeout", "30s",
		"load", "--start", fmt.Sprint(start), "--count", fmt.Sprint(count), "--rate", "5", "--calls", "--call-hold", "500ms", "--quiet")
	out, err := cmd.Output()
	t.Logf("imsue load:\n%s", out)
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("imsue load: %v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var sum struct {
		Step   string `json:"step"`
		Result struct {
			UEs         int `json:"ues"`
			Registered  int `json:"registered"`
			Failed      int `json:"failed"`
			Calls       int `json:"calls"`
			CallsFailed int `json:"calls_failed"`
		} `json:"result"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Step != "load-summary" {
		t.Fatalf("last line is not the load summary (%v): %s", err, lines[len(lines)-1])
	}
	r := sum.Result
	if r.UEs != count || r.Registered != count || r.Failed != 0 || r.Calls != count/2 || r.CallsFailed != 0 {
		t.Errorf("summary %+v, want %d UEs registered, %d calls, none failed", r, count, count/2)
	}
}
