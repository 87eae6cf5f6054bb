// Package cmd_test checks every function binary as a user runs it: --check
// validates and exits, the process serves its admin port, and SIGTERM stops
// it cleanly with exit status 0.
package cmd_test

import (
	"bytes"
	"fmt"
	"github.com/imscore/imscore/pkg/siptest"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// functions lists the long-running binaries and the extra flags that keep
// their sockets off the lab's well-known ports during tests.
var functions = []string{"pcscf", "icscf", "scscf", "hss"}

func build(t *testing.T, name string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), name)
	out, err := exec.Command("go", "build", "-o", bin, "./"+name).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", name, err, out)
	}
	return bin
}

func freePort(t *testing.T) int { return siptest.FreePort(t) }

func TestBinariesCheckAndStopOnSIGTERM(t *testing.T) {
	for _, name := range functions {
		t.Run(name, func(t *testing.T) {
			bin := build(t, name)

			out, err := exec.Command(bin, "--check").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "configuration OK") {
				t.Fatalf("%s --check: %v\n%s", name, err, out)
			}
			if out, err := exec.Command(bin, "--log-level", "shouting", "--check").CombinedOutput(); err == nil {
				t.Fatalf("%s accepted a bad log level:\n%s", name, out)
			}

			admin := fmt.Sprintf("127.0.0.1:%d", freePort(t))
			cmd := exec.Command(bin, "--admin-listen", admin, "--sip-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)),
				"--diameter-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
			// Not every binary has every flag: drop the ones it rejects.
			cmd.Args = keepKnownFlags(t, bin, cmd.Args)
			var logs bytes.Buffer
			cmd.Stdout, cmd.Stderr = &logs, &logs
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()

			deadline := time.Now().Add(10 * time.Second)
			for {
				res, err := http.Get("http://" + admin + "/healthz")
				if err == nil {
					res.Body.Close()
					if res.StatusCode == 200 {
						break
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s never served /healthz on %s; logs:\n%s", name, admin, logs.String())
				}
				time.Sleep(50 * time.Millisecond)
			}

			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s exited with %v after SIGTERM; logs:\n%s", name, err, logs.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s did not stop within 10 s of SIGTERM; logs:\n%s", name, logs.String())
			}
		})
	}
}

// keepKnownFlags removes "--flag value" pairs the binary's --help does not list.
func keepKnownFlags(t *testing.T, bin string, args []string) []string {
	t.Helper()
	help, _ := exec.Command(bin, "--help").CombinedOutput()
	kept := []string{args[0]}
	for i := 1; i+1 < len(args); i += 2 {
		if bytes.Contains(help, []byte(args[i]+" ")) {
			kept = append(kept, args[i], args[i+1])
		}
	}
	return kept
}
