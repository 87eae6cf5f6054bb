package cmd_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// composeService is what this test needs of one docker-compose.yml service.
type composeService struct {
	binary string            // function binary named in "command:"
	env    map[string]string // environment, ${VAR:-default} expanded to default
	keys   []string          // its own lines (four-space indent), trimmed, e.g. "cap_add: [NET_ADMIN]"
}

var (
	serviceLine = regexp.MustCompile(`^  ([a-z0-9-]+):\s*$`)
	commandLine = regexp.MustCompile(`^    command: \["/usr/local/bin/([a-z]+)"\]`)
	envLine     = regexp.MustCompile(`^      ([A-Z][A-Z0-9_]*): (.*)$`)
	defaultRef  = regexp.MustCompile(`\$\{[A-Z_]+:-([^}]*)\}`)
)

// readCompose reads the services of docker-compose.yml with a line scanner:
// the file keeps a fixed layout (two-space indents) so that this check and
// the loopback lab stay in step without a YAML dependency.
func readCompose(t *testing.T) map[string]*composeService {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	services := map[string]*composeService{}
	var cur *composeService
	inServices, inEnv := false, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "services:":
			inServices = true
			continue
		case !strings.HasPrefix(line, " ") && line != "":
			inServices = false
		}
		if !inServices {
			continue
		}
		if m := serviceLine.FindStringSubmatch(line); m != nil {
			cur = &composeService{env: map[string]string{}}
			services[m[1]] = cur
			inEnv = false
			continue
		}
		if cur == nil {
			continue
		}
		if m := commandLine.FindStringSubmatch(line); m != nil {
			cur.binary = m[1]
		}
		if strings.HasPrefix(line, "    ") && !strings.HasPrefix(line, "     ") {
			cur.keys = append(cur.keys, strings.TrimSpace(line))
			inEnv = strings.TrimSpace(line) == "environment:"
			continue
		}
		if m := envLine.FindStringSubmatch(line); inEnv && m != nil {
			v := strings.Trim(m[2], `"`)
			cur.env[m[1]] = defaultRef.ReplaceAllString(v, "$1")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return services
}

// TestComposeEnvironmentIsValidConfiguration runs every function binary
// with the environment docker-compose.yml gives it and --check: each
// variable with the binary's prefix must be one of its flags, and the
// resulting configuration must validate. No Docker engine runs on CI, so
// this is how the compose file is kept honest.
func TestComposeEnvironmentIsValidConfiguration(t *testing.T) {
	services := readCompose(t)
	want := map[string]bool{"hss": false, "icscf": false, "scscf": false, "pcscf": false}
	for name, svc := range services {
		if svc.binary == "" || svc.binary == "imsctl" {
			continue
		}
		want[svc.binary] = true
		t.Run(name, func(t *testing.T) {
			bin := build(t, svc.binary)
			help, _ := exec.Command(bin, "--help").CombinedOutput()
			prefix := strings.ToUpper(svc.binary) + "_"
			env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
			for k, v := range svc.env {
				if strings.HasPrefix(k, prefix) && !strings.Contains(string(help), "$"+k) {
					t.Errorf("%s sets %s, which %s has no flag for", name, k, svc.binary)
				}
				env = append(env, k+"="+v)
			}
			cmd := exec.Command(bin, "--check")
			cmd.Env = env
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "configuration OK") {
				t.Fatalf("%s --check with the compose environment: %v\n%s", svc.binary, err, out)
			}
		})
	}
	for bin, seen := range want {
		if !seen {
			t.Errorf("docker-compose.yml has no service running %s", bin)
		}
	}
}
