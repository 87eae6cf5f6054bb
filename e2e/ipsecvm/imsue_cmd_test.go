//go:build ipsecvm

package ipsecvm

import (
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
