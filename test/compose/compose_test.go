//go:build compose

package compose_test

import (
	"bufio"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

const domain = "ims.mnc001.mcc001.3gppnetwork.org"

// TS 35.208 test set 1, as in the README.
const (
	akaK  = "465b5ce8b199b49faa5f0a2ee238a6bc"
	akaOP = "cdc202d5123e20f62b6d676ac72cb318"
	akaU  = "001010000000001"
)

// composeLab is the docker compose project under test (test/compose/run.sh
// sets the environment).
type composeLab struct {
	t          *testing.T // TestCompose: owns what outlives one step
	root       string     // repository: docker-compose.yml, .env.example, Dockerfile
	docker     string     // docker CLI
	version    string     // IMSCORE_VERSION the image is built with
	envFile    string     // the test's copy of .env.example
	env        []string
	advertised string // PCSCF_ADVERTISE in force
	local      host   // UEs on the Docker host (127.0.0.1, userland proxy)
	remote     host   // UEs on another machine of the Docker host's LAN
}

var lab *composeLab

func setup(t *testing.T) *composeLab {
	t.Helper()
	if os.Getenv("IMSCORE_COMPOSE_TEST") == "" {
		t.Skip("run by make test-compose (test/compose/run.sh sets up the Docker engine)")
	}
	l := &composeLab{t: t, root: os.Getenv("COMPOSE_ROOT"), docker: os.Getenv("COMPOSE_DOCKER"), version: os.Getenv("IMSCORE_VERSION")}
	lan := os.Getenv("COMPOSE_LAN_HOST")
	l.local = host{ip: "127.0.0.1", proxy: "127.0.0.1:5060"}
	l.remote = host{netns: os.Getenv("COMPOSE_UE_NETNS"), ip: os.Getenv("COMPOSE_LAN_UE"), proxy: lan + ":5060"}
	example, err := os.ReadFile(filepath.Join(l.root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	l.envFile = filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(l.envFile, example, 0o600); err != nil {
		t.Fatal(err)
	}
	l.advertised = envValue(string(example), "PCSCF_ADVERTISE")
	l.env = append(os.Environ(), "IMSCORE_VERSION="+l.version)
	lab = l
	return l
}

// envValue is NAME's value in a .env file.
func envValue(file, name string) string {
	for _, line := range strings.Split(file, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+"="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return ""
}

// setEnv sets NAME=value in the test's .env (as a user edits it).
func (l *composeLab) setEnv(t *testing.T, name, value string) {
	t.Helper()
	b, err := os.ReadFile(l.envFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	found := false
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		trimmed := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if strings.HasPrefix(trimmed, name+"=") {
			line, found = name+"="+value, true
		}
		out = append(out, line)
	}
	if !found {
		out = append(out, name+"="+value)
	}
	if err := os.WriteFile(l.envFile, []byte(strings.Join(out, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if name == "PCSCF_ADVERTISE" {
		l.advertised = value
	}
}

// compose runs docker compose on the project with the test's .env.
func (l *composeLab) compose(ctx context.Context, args ...string) (string, error) {
	full := append([]string{"compose", "--project-directory", l.root, "-f", filepath.Join(l.root, "docker-compose.yml"),
		"--env-file", l.envFile}, args...)
	cmd := exec.CommandContext(ctx, l.docker, full...)
	cmd.Env = l.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (l *composeLab) mustCompose(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	out, err := l.compose(ctx, args...)
	if err != nil {
		t.Fatalf("docker compose %s: %v\n%s", strings.Join(args, " "), err, tail(out, 8000))
	}
	t.Logf("docker compose %s: %.1fs", strings.Join(args, " "), time.Since(start).Seconds())
	return out
}

func (l *composeLab) dockerCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(l.docker, args...)
	cmd.Env = l.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// up brings the lab up and checks that every service is running and
// healthy (migrate: exited 0).
func (l *composeLab) up(t *testing.T, profiles ...string) {
	t.Helper()
	var args []string
	for _, p := range profiles {
		args = append(args, "--profile", p)
	}
	l.mustCompose(t, 5*time.Minute, append(args, "up", "-d", "--wait", "--wait-timeout", "180")...)
	out := l.mustCompose(t, time.Minute, append(args, "ps", "-a", "--format", "json")...)
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var c struct{ Service, State, Health string }
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("compose ps line %q: %v", line, err)
		}
		seen++
		switch {
		case c.Service == "migrate":
			if c.State != "exited" {
				t.Errorf("migrate is %s, want exited", c.State)
			}
		case c.State != "running" || (c.Health != "healthy" && c.Health != ""):
			t.Errorf("%s is %s/%s, want running and healthy", c.Service, c.State, c.Health)
		}
	}
	if seen < 6 {
		t.Errorf("compose ps lists %d containers, want the 6 of the lab at least:\n%s", seen, out)
	}
}

// imsctl runs the documented provisioning command.
func (l *composeLab) imsctl(t *testing.T, args ...string) string {
	t.Helper()
	return l.mustCompose(t, 2*time.Minute, append([]string{"run", "--rm", "-T", "migrate"}, args...)...)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %s\n%s", url, res.Status, b)
	}
	return string(b)
}

// apiPost sends body (JSON) to the HSS's provisioning API on the published
// port with token (none when empty) and returns the status and the answer.
func apiPost(t *testing.T, token, path, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1:9869"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestCompose runs the lab the README describes, step by step; a step
// that fails stops the rest.
func TestCompose(t *testing.T) {
	l := setup(t)
	// Leftovers of an interrupted run (the engine's data-root is cached).
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	_, _ = l.compose(ctx, "--profile", "multi-scscf", "--profile", "monitoring", "down", "-v", "--remove-orphans", "-t", "5")
	cancel()
	t.Cleanup(func() {
		if t.Failed() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out, _ := l.compose(ctx, "--profile", "multi-scscf", "logs", "--no-color", "--tail", "40")
			t.Logf("---- compose logs (tail) ----\n%s", out)
		}
	})

	ue1 := &sippUE{h: l.remote, user: akaU, port: 6000, auth: akaAuth(akaK, akaOP, "8000"), k: akaK, op: akaOP}
	var alice, bob *baresipUA
	secrets := []string{akaK, akaOP, "alice-secret-7", "bob-secret-7", "dave-secret-7", "erin-secret-7", "carol-secret-7", "frank-secret-7"}
	for _, u := range []string{"alice", "bob", "dave", "erin", "carol", "frank"} {
		sum := md5.Sum([]byte(u + "@" + domain + ":" + domain + ":" + u + "-secret-7"))
		secrets = append(secrets, hex.EncodeToString(sum[:])) // HA1
	}
	var sippUEs []*sippUE

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"images", func(t *testing.T) { testImages(t, l) }},
		{"up", func(t *testing.T) { l.up(t) }},
		{"provision", func(t *testing.T) {
			l.imsctl(t, "subscriber", "add", "--impi", akaU+"@"+domain, "--impu", "sip:"+akaU+"@"+domain,
				"--k", akaK, "--op", akaOP, "--amf", "8000")
			for _, u := range []string{"alice", "bob", "dave", "erin"} {
				l.imsctl(t, "subscriber", "add", "--impi", u+"@"+domain, "--impu", "sip:"+u+"@"+domain, "--password", u+"-secret-7")
			}
			if out := l.imsctl(t, "subscriber", "list"); !strings.Contains(out, "alice@"+domain) {
				t.Fatalf("subscriber list lacks alice:\n%s", out)
			}
		}},
		// Default .env: UEs on the Docker host itself, through the
		// published port on 127.0.0.1 (the engine's userland proxy
		// rewrites their source address: they need rport, as softphones
		// send it).
		{"ue on the docker host", func(t *testing.T) {
			if l.advertised != "127.0.0.1:5060" {
				t.Fatalf(".env.example advertises %q, want the one-machine default 127.0.0.1:5060", l.advertised)
			}
			dave := &sippUE{h: l.local, user: "dave", port: 6000, auth: md5Auth("dave", "dave-secret-7"), rport: true}
			erin := &sippUE{h: l.local, user: "erin", port: 6002, auth: md5Auth("erin", "erin-secret-7"), rport: true}
			sippUEs = append(sippUEs, dave, erin)
			dave.run(t, dave.scenario(t, "register.xml"))
			erin.run(t, erin.scenario(t, "register.xml"))
			uas := dave.start(t, dave.scenario(t, "call_uas.xml"))
			erin.run(t, erin.scenario(t, "call_uac.xml"), "callee", "dave")
			if err := uas.wait(20 * time.Second); err != nil {
				t.Fatalf("sipp dave (callee): %v", err)
			}
		}},
		// The HSS's provisioning API on the published port 9869 with the
		// lab token it printed at start (README): a subscriber added with
		// curl's request registers through the lab.
		{"provision through the api", func(t *testing.T) {
			logs := l.mustCompose(t, time.Minute, "logs", "--no-color", "--no-log-prefix", "hss")
			if !strings.Contains(logs, `"lab_token":"imscore-lab-admin-token"`) {
				t.Errorf("the HSS did not print the lab's API token at start:\n%s", logs)
			}
			body := `{"impi":"frank@` + domain + `","password":"frank-secret-7","impus":[{"identity":"sip:frank@` + domain + `"}]}`
			if code, out := apiPost(t, "", "/api/v1/subscribers", body); code != http.StatusUnauthorized {
				t.Fatalf("POST without a token: %d %s, want 401", code, out)
			}
			if code, out := apiPost(t, "imscore-lab-admin-token", "/api/v1/subscribers", body); code != http.StatusCreated {
				t.Fatalf("POST /api/v1/subscribers: %d %s, want 201", code, out)
			} else if strings.Contains(out, "frank-secret-7") {
				t.Errorf("the API returned the password: %s", out)
			}
			frank := &sippUE{h: l.local, user: "frank", port: 6004, auth: md5Auth("frank", "frank-secret-7"), rport: true}
			sippUEs = append(sippUEs, frank)
			frank.run(t, frank.scenario(t, "register.xml"))
		}},
		// .env edited for UEs on other machines: the Docker host's LAN
		// address; up recreates the P-CSCF.
		{"advertise the lan address", func(t *testing.T) {
			l.setEnv(t, "PCSCF_ADVERTISE", l.remote.proxy)
			l.up(t)
		}},
		{"ue from another host", func(t *testing.T) {
			sippUEs = append(sippUEs, ue1)
			ue1.run(t, ue1.scenario(t, "register.xml"))
			alice = startBaresip(t, l.remote, "alice", "alice-secret-7", 5060)
			bob = startBaresip(t, l.remote, "bob", "bob-secret-7", 5080)
			alice.waitRegistered(t, 15*time.Second)
			bob.waitRegistered(t, 15*time.Second)
			call(t, alice, bob)
			call(t, bob, alice)
			// alice calls the AKA UE, which checks Via and Record-Route.
			uas := ue1.start(t, ue1.scenario(t, "call_uas.xml"))
			time.Sleep(300 * time.Millisecond)
			ma := alice.mark()
			alice.do(t, "dial", "sip:"+akaU+"@"+domain)
			alice.waitEvent(t, ma, "CALL_ESTABLISHED", 15*time.Second)
			time.Sleep(300 * time.Millisecond)
			alice.do(t, "hangup", "")
			alice.waitEvent(t, ma, "CALL_CLOSED", 15*time.Second)
			if err := uas.wait(20 * time.Second); err != nil {
				t.Fatalf("sipp %s (callee): %v", akaU, err)
			}
		}},
		// Registrations live in PostgreSQL: after a restart of the S-CSCF
		// or of the P-CSCF the UEs' next calls work without registering
		// again.
		{"restart scscf", func(t *testing.T) {
			noRegisterIn(t, alice, bob)
			l.mustCompose(t, 2*time.Minute, "restart", "scscf")
			l.up(t)
			call(t, alice, bob)
		}},
		{"restart pcscf", func(t *testing.T) {
			noRegisterIn(t, alice, bob)
			l.mustCompose(t, 2*time.Minute, "restart", "pcscf")
			l.up(t)
			call(t, bob, alice)
		}},
		// down removes the containers, not the volume: subscribers and
		// registrations are still there after up.
		{"down and up keep the state", func(t *testing.T) {
			noRegisterIn(t, alice, bob)
			l.mustCompose(t, 3*time.Minute, "down")
			l.up(t)
			if out := l.imsctl(t, "subscriber", "list"); !strings.Contains(out, "alice@"+domain) {
				t.Fatalf("subscribers lost by down/up:\n%s", out)
			}
			if st := httpGet(t, "http://127.0.0.1:9080/status/registrar"); !strings.Contains(st, "sip:alice@"+domain) || !strings.Contains(st, "sip:bob@"+domain) {
				t.Fatalf("S-CSCF registrations lost by down/up:\n%s", st)
			}
			call(t, alice, bob)
		}},
		// The second S-CSCF: carol's preferred S-CSCF is scscf2; the
		// I-CSCF sends her registration there, and alice's call to her
		// crosses both S-CSCFs.
		{"profile multi-scscf", func(t *testing.T) {
			l.up(t, "multi-scscf")
			l.imsctl(t, "subscriber", "add", "--impi", "carol@"+domain, "--impu", "sip:carol@"+domain,
				"--password", "carol-secret-7", "--scscf", "sip:scscf2."+domain+":5060")
			carol := &sippUE{h: l.remote, user: "carol", port: 6010, auth: md5Auth("carol", "carol-secret-7")}
			sippUEs = append(sippUEs, carol)
			carol.run(t, carol.scenario(t, "register.xml"))
			if st := httpGet(t, "http://172.22.0.15:9080/status/registrar"); !strings.Contains(st, "sip:carol@"+domain) {
				t.Fatalf("scscf2 does not hold carol's registration:\n%s", st)
			}
			if st := httpGet(t, "http://127.0.0.1:9080/status/registrar"); strings.Contains(st, "sip:carol@"+domain) {
				t.Fatalf("scscf holds carol's registration, want scscf2:\n%s", st)
			}
			uas := carol.start(t, carol.scenario(t, "call_uas.xml"))
			time.Sleep(300 * time.Millisecond)
			ma := alice.mark()
			alice.do(t, "dial", "sip:carol@"+domain)
			alice.waitEvent(t, ma, "CALL_ESTABLISHED", 15*time.Second)
			time.Sleep(300 * time.Millisecond)
			alice.do(t, "hangup", "")
			alice.waitEvent(t, ma, "CALL_CLOSED", 15*time.Second)
			if err := uas.wait(20 * time.Second); err != nil {
				t.Fatalf("sipp carol (callee): %v", err)
			}
		}},
		{"profile monitoring", func(t *testing.T) { testMonitoring(t, l) }},
		// Every function logs JSON, one object per line, and none of
		// the subscribers' secrets.
		{"logs", func(t *testing.T) {
			for _, u := range sippUEs {
				secrets = append(secrets, nonces(u.trace())...)
			}
			for _, b := range []*baresipUA{alice, bob} {
				secrets = append(secrets, nonces(b.out.String())...)
			}
			t.Logf("checking the logs for %d secrets (K, OP, passwords, HA1s, %d nonces)", len(secrets), len(secrets)-12)
			for _, svc := range []string{"hss", "icscf", "scscf", "scscf2", "pcscf"} {
				out := l.mustCompose(t, time.Minute, "--profile", "multi-scscf", "logs", "--no-color", "--no-log-prefix", svc)
				lines := 0
				sc := bufio.NewScanner(strings.NewReader(out))
				sc.Buffer(make([]byte, 1<<20), 1<<20)
				for sc.Scan() {
					line := sc.Text()
					if strings.TrimSpace(line) == "" {
						continue
					}
					lines++
					var ev map[string]any
					if err := json.Unmarshal([]byte(line), &ev); err != nil || ev["msg"] == nil || ev["level"] == nil || ev["ts"] == nil {
						t.Errorf("%s: log line is not a JSON event (level, ts, msg): %q", svc, line)
					}
					lower := strings.ToLower(line)
					for _, s := range secrets {
						if strings.Contains(lower, strings.ToLower(s)) {
							t.Errorf("%s logs a secret (%.6s…): %s", svc, s, line)
						}
					}
				}
				if lines == 0 {
					t.Errorf("%s wrote no log line", svc)
				}
			}
		}},
		// down -v removes the volume: a new database, no subscriber.
		{"down -v clears the state", func(t *testing.T) {
			l.mustCompose(t, 3*time.Minute, "--profile", "multi-scscf", "--profile", "monitoring", "down", "-v")
			l.up(t)
			if out := l.imsctl(t, "subscriber", "list"); strings.Contains(out, "alice@") {
				t.Fatalf("subscribers survived down -v:\n%s", out)
			}
			l.mustCompose(t, 3*time.Minute, "down", "-v")
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.run) {
			t.FailNow()
		}
	}
}

// noRegisterIn checks at the end of step t that the softphones sent no
// REGISTER during it: their registrations survived what the step did.
func noRegisterIn(t *testing.T, a, b *baresipUA) {
	before := a.registers() + b.registers()
	t.Cleanup(func() {
		if after := a.registers() + b.registers(); after != before {
			t.Errorf("the softphones sent %d REGISTERs, want none", after-before)
		}
	})
}

var nonceRE = regexp.MustCompile(`nonce="([^"]{8,})"`)

// nonces are the challenge nonces in a SIP trace.
func nonces(trace string) []string {
	var out []string
	for _, m := range nonceRE.FindAllStringSubmatch(trace, -1) {
		out = append(out, m[1])
	}
	return out
}

// testImages builds the image from the unchanged Dockerfile and checks it:
// static binaries in a shell-less image, non-root, the version from git in
// its label and in --version.
func testImages(t *testing.T, l *composeLab) {
	l.mustCompose(t, 40*time.Minute, "build")
	out, err := l.dockerCmd(t, "image", "inspect", "imscore:latest", "--format",
		`{{.Size}} {{.Config.User}} {{index .Config.Labels "org.opencontainers.image.version"}}`)
	if err != nil {
		t.Fatalf("image inspect: %v\n%s", err, out)
	}
	var size int64
	var user, label string
	fmt.Sscan(out, &size, &user, &label)
	t.Logf("imscore:latest: %.1f MB, user %s, version label %s", float64(size)/1e6, user, label)
	if size > 150e6 {
		t.Errorf("image is %.1f MB, want a small one (static binaries on distroless static)", float64(size)/1e6)
	}
	if user != "nonroot:nonroot" && user != "65532:65532" && user != "nonroot" {
		t.Errorf("image user %q, want nonroot", user)
	}
	if label != l.version {
		t.Errorf("image label org.opencontainers.image.version = %q, want %q", label, l.version)
	}
	for _, bin := range []string{"pcscf", "icscf", "scscf", "hss", "imsctl"} {
		out, err := l.dockerCmd(t, "run", "--rm", "--network", "none", "--entrypoint", "/usr/local/bin/"+bin, "imscore:latest", "--version")
		if err != nil || !strings.Contains(out, l.version) {
			t.Errorf("%s --version in the image: %v %q, want %s", bin, err, out, l.version)
		}
	}
	if out, err := l.dockerCmd(t, "run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", "imscore:latest", "-c", "true"); err == nil {
		t.Errorf("the image has a shell:\n%s", out)
	}
}

// testMonitoring starts Prometheus from the monitoring profile with the
// configuration kept in monitoring/prometheus.yml and checks that it scrapes
// every function, that each /metrics parses as the Prometheus text format,
// and that every query of the Grafana dashboard kept in the repository is
// valid and names metrics the functions export. (Grafana itself is not
// started: no image registry here, and Debian has no Grafana package.)
func testMonitoring(t *testing.T, l *composeLab) {
	l.mustCompose(t, 5*time.Minute, "--profile", "multi-scscf", "--profile", "monitoring", "up", "-d", "--wait", "--wait-timeout", "120", "prometheus")
	want := map[string]string{"172.22.0.11:9868": "hss", "172.22.0.12:9070": "icscf", "172.22.0.13:9080": "scscf",
		"172.22.0.15:9080": "scscf2", "172.22.0.14:9060": "pcscf"}
	// The scrape configuration names every function (service names).
	cfg, err := os.ReadFile(filepath.Join(l.root, "monitoring", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range want {
		if !strings.Contains(string(cfg), `"`+svc+":") {
			t.Errorf("monitoring/prometheus.yml does not scrape %s", svc)
		}
	}
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				ScrapeURL string `json:"scrapeUrl"`
				Health    string `json:"health"`
				LastError string `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		if err := json.Unmarshal([]byte(httpGet(t, "http://127.0.0.1:9090/api/v1/targets")), &targets); err != nil {
			t.Fatal(err)
		}
		up := 0
		for _, tg := range targets.Data.ActiveTargets {
			if tg.Health == "up" {
				up++
			}
		}
		if up == len(want) && len(targets.Data.ActiveTargets) == len(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus targets, want %d up: %+v", len(want), targets.Data.ActiveTargets)
		}
		time.Sleep(2 * time.Second)
	}
	// Each /metrics parses; keep the metric names.
	names := map[string]bool{}
	for addr, svc := range want {
		body := httpGet(t, "http://"+addr+"/metrics")
		p := expfmt.NewTextParser(model.LegacyValidation)
		fams, err := p.TextToMetricFamilies(strings.NewReader(body))
		if err != nil {
			t.Errorf("%s /metrics is not the Prometheus text format: %v", svc, err)
			continue
		}
		for n := range fams {
			names[n] = true
		}
		t.Logf("%s: %d metric families", svc, len(fams))
	}
	names["up"] = true
	// The dashboard's queries.
	b, err := os.ReadFile(filepath.Join(l.root, "monitoring", "grafana", "dashboards", "imscore.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	// Metric names: the functions' prefixes (label names have none).
	metricRef := regexp.MustCompile(`\b(?:hss|icscf|scscf|pcscf|db|sip|pgxpool)_[a-z0-9_]+`)
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			queries++
			var res struct {
				Status string `json:"status"`
				Error  string `json:"error"`
			}
			q := "http://127.0.0.1:9090/api/v1/query?query=" + urlQueryEscape(tg.Expr)
			if err := json.Unmarshal([]byte(httpGet(t, q)), &res); err != nil || res.Status != "success" {
				t.Errorf("panel %q: query %q: %v %s", p.Title, tg.Expr, err, res.Error)
			}
			for _, n := range metricRef.FindAllString(tg.Expr, -1) {
				base := strings.TrimSuffix(n, "_bucket")
				// A labelled counter appears once it counted something:
				// else the metric must be declared in the sources.
				if !names[n] && !names[base] && !declared(t, l.root, base) {
					t.Errorf("panel %q: %s is exported by no function", p.Title, n)
				}
			}
		}
	}
	t.Logf("Prometheus scrapes %d targets, %d metric names; the dashboard's %d queries are valid", len(want), len(names), queries)
}

// declared reports whether a function's sources declare the metric name
// (Name: "name" outside tests).
func declared(t *testing.T, root, name string) bool {
	t.Helper()
	found := false
	for _, dir := range []string{"hss", "icscf", "scscf", "pcscf", "pkg"} {
		_ = filepath.WalkDir(filepath.Join(root, dir), func(p string, d os.DirEntry, err error) error {
			if err != nil || found || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			b, _ := os.ReadFile(p)
			found = regexp.MustCompile(`Name:\s*"` + regexp.QuoteMeta(name) + `"`).Match(b)
			return nil
		})
	}
	return found
}
