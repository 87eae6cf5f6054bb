//go:build ipsecvm

package ipsecvm

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/imsue"
)

// The scenario tests run inside the VM (netns ue); TestMain starts the
// core around them.

var (
	cfg   Config
	procs = map[string]*proc{}
	pmu   sync.Mutex
)

func TestMain(m *testing.M) {
	if to := os.Getenv("IPSECVM_RELAY"); to != "" {
		relay(os.Getenv("IPSECVM_RELAY_LISTEN"), to)
		return
	}
	b, err := os.ReadFile(ConfigFile)
	if err != nil {
		fmt.Println("ipsecvm: this test binary runs inside the VM (see TestIPsec):", err)
		os.Exit(2)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		fmt.Println("ipsecvm:", err)
		os.Exit(2)
	}
	code := 1
	if err := startCore(); err != nil {
		fmt.Println("ipsecvm: core did not start:", err)
	} else {
		code = m.Run()
	}
	stopAll()
	os.Exit(code)
}

// proc is one running binary of the core.
type proc struct {
	name  string
	admin string
	args  []string
	cmd   *exec.Cmd
	log   *os.File
	done  chan struct{}
}

// inRoot and inPCSCF prefix a command so that it runs in the root or the
// pcscf network namespace (the tests run in netns ue).
var (
	inRoot  = []string{"nsenter", "--net=/proc/1/ns/net", "--"}
	inPCSCF = []string{"nsenter", "--net=/run/netns/pcscf", "--"}
)

// relay forwards TCP connections from listen to to: the P-CSCF's
// PostgreSQL connections reach the host through the root netns, the only
// one with qemu's network.
func relay(listen, to string) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		fmt.Println("ipsecvm relay:", err)
		os.Exit(1)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			d, err := net.Dial("tcp", to)
			if err != nil {
				return
			}
			defer d.Close()
			go func() { _, _ = io.Copy(d, c); d.(*net.TCPConn).CloseWrite() }()
			_, _ = io.Copy(c, d)
		}()
	}
}

// startRelay runs relay in the root netns for the P-CSCF's database
// connections and returns the DSN the P-CSCF uses.
func startRelay() (string, error) {
	u, err := url.Parse(cfg.DSN)
	if err != nil {
		return "", err
	}
	listen := CoreIP + ":5432"
	cmd := exec.Command(inRoot[0], append(inRoot[1:], "/bin/scenarios.test")...)
	cmd.Env = append(os.Environ(), "IPSECVM_RELAY="+u.Host, "IPSECVM_RELAY_LISTEN="+listen)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return "", err
	}
	relayCmd = cmd
	for i := 0; i < 100; i++ {
		if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
			c.Close()
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	u.Host = listen
	return u.String(), nil
}

var relayCmd *exec.Cmd

func startProc(name, admin string, ns []string, args ...string) (*proc, error) {
	all := append(append([]string{}, ns...), append([]string{"/bin/" + name, "--admin-listen", admin, "--log-level", "info"}, args...)...)
	f, err := os.OpenFile(filepath.Join(OutDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(all[0], all[1:]...)
	dsn := cfg.DSN
	if name == "pcscf" {
		dsn = pcscfDSN
	}
	cmd.Env = append(os.Environ(), "DATABASE_URL="+dsn)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &proc{name: name, admin: admin, args: args, cmd: cmd, log: f, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	pmu.Lock()
	procs[name] = p
	pmu.Unlock()
	return p, waitReady(p, 60*time.Second)
}

func waitReady(p *proc, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		res, err := http.Get("http://" + p.admin + "/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (log in %s)", p.name, filepath.Join(OutDir, p.name+".log"))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v: %v", p.name, within, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *proc) stop() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.log.Close()
}

func stopAll() {
	pmu.Lock()
	defer pmu.Unlock()
	for _, n := range []string{"pcscf", "icscf", "scscf", "hss"} {
		if p := procs[n]; p != nil {
			p.stop()
		}
	}
	if relayCmd != nil {
		_ = relayCmd.Process.Kill()
		_ = relayCmd.Wait()
	}
}

// pcscfArgs are the P-CSCF's flags: IPsec required, Rx off.
var pcscfArgs = []string{"--sip-listen", fmt.Sprintf("%s:%d", PCSCFIP, PCSCFPort), "--domain", Domain,
	"--icscf", fmt.Sprintf("sip:%s:%d", CoreIP, ICSCFPort), "--ipsec", "on", "--rx", "off", "--timer-interval", "1s",
	"--reg-subscribe-expires", "60"}

var pcscfDSN string

// startCore starts the core. Under TCG emulation, with PostgreSQL behind
// qemu's user network, a Cx answer can take longer than the I-CSCF's and
// S-CSCF's defaults (2 s, 5 s) when several scenarios run at once: their
// HSS timeouts are raised to 10 s here.
func startCore() error {
	var err error
	if pcscfDSN, err = startRelay(); err != nil {
		return err
	}
	steps := []struct {
		name, admin string
		ns          []string
		args        []string
	}{
		{"hss", HSSAdmin, inRoot, []string{"--diameter-listen", fmt.Sprintf("127.0.0.1:%d", HSSPort), "--domain", Domain}},
		{"scscf", SCSCFAdmin, inRoot, []string{"--sip-listen", fmt.Sprintf("%s:%d", CoreIP, SCSCFPort), "--domain", Domain,
			"--server-name", SCSCFServer, "--hss-addr", fmt.Sprintf("127.0.0.1:%d", HSSPort), "--icscf", fmt.Sprintf("sip:%s:%d", CoreIP, ICSCFPort),
			"--hss-timeout", "10s"}},
		{"icscf", ICSCFAdmin, inRoot, []string{"--sip-listen", fmt.Sprintf("%s:%d", CoreIP, ICSCFPort), "--domain", Domain,
			"--hss-addr", fmt.Sprintf("127.0.0.1:%d", HSSPort), "--scscf", SCSCFServer, "--resolve", "scscf." + Domain + "=" + CoreIP,
			"--cx-timeout", "10s"}},
		{"pcscf", PCSCFAdmin, inPCSCF, pcscfArgs},
	}
	for _, s := range steps {
		if _, err := startProc(s.name, s.admin, s.ns, s.args...); err != nil {
			return err
		}
	}
	return nil
}

// restartPCSCF stops the P-CSCF and starts it again with the same flags.
func restartPCSCF(t *testing.T) {
	t.Helper()
	pmu.Lock()
	p := procs["pcscf"]
	pmu.Unlock()
	p.stop()
	if _, err := startProc("pcscf", PCSCFAdmin, inPCSCF, p.args...); err != nil {
		t.Fatal(err)
	}
}

// ueIP is the address of UE n on the UEs' link.
func ueIP(n int) string { return UENet + strconv.Itoa(100+n) }

// impu of subscriber n.
func impu(n int) string { return fmt.Sprintf("sip:ue%d@%s", n, Domain) }

// newUE makes UE n (subscriber ue<n>) on its own address; its events go
// to the test log as JSON lines. mod edits the configuration first.
func newUE(t *testing.T, n int, mod ...func(*imsue.Config)) *imsue.UE {
	t.Helper()
	k, _ := hex.DecodeString(K)
	op, _ := hex.DecodeString(OP)
	c := imsue.Config{
		IMPI: fmt.Sprintf("ue%d@%s", n, Domain), IMPU: impu(n), K: k, OP: op,
		PCSCF: fmt.Sprintf("%s:%d", PCSCFIP, PCSCFPort), LocalIP: ueIP(n), IPsec: imsue.IPsecOn,
		// Under TCG with several scenarios at once a call through the whole
		// core takes several seconds (8 s seen for a 200 to an INVITE).
		Timeout: 30 * time.Second,
		OnEvent: func(e imsue.Event) {
			b, _ := json.Marshal(e)
			t.Logf("%s", b)
		},
	}
	for _, f := range mod {
		f(&c)
	}
	u, err := imsue.New(c)
	if err != nil {
		t.Fatalf("UE %d: %v", n, err)
	}
	t.Cleanup(func() { _ = u.Close() })
	return u
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// xfrmState is one ESP state of `ip -s xfrm state` with its counters.
type xfrmState struct {
	Src, Dst string
	SPI      uint32
	Packets  int
	Bytes    int
}

var (
	reStateHead = regexp.MustCompile(`(?m)^src (\S+) dst (\S+)\s*$`)
	reSPI       = regexp.MustCompile(`proto esp spi 0x([0-9a-f]+)`)
	reCurrent   = regexp.MustCompile(`(\d+)\(bytes\), (\d+)\(packets\)`)
)

// xfrmStates reads the ESP states of the netns the command runs in
// (ns: nil for the tests' own, netns ue) with iproute2, the third party
// that tells what the kernel holds and how many packets each SA carried.
func xfrmStates(t *testing.T, ns []string) []xfrmState {
	t.Helper()
	args := append(append([]string{}, ns...), "/sbin/ip", "-s", "xfrm", "state")
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -s xfrm state: %v\n%s", err, out)
	}
	var sts []xfrmState
	heads := reStateHead.FindAllStringSubmatchIndex(string(out), -1)
	for i, h := range heads {
		end := len(out)
		if i+1 < len(heads) {
			end = heads[i+1][0]
		}
		block := string(out[h[0]:end])
		st := xfrmState{Src: string(out[h[2]:h[3]]), Dst: string(out[h[4]:h[5]])}
		if m := reSPI.FindStringSubmatch(block); m != nil {
			v, _ := strconv.ParseUint(m[1], 16, 32)
			st.SPI = uint32(v)
		}
		if m := reCurrent.FindStringSubmatch(block); m != nil {
			st.Bytes, _ = strconv.Atoi(m[1])
			st.Packets, _ = strconv.Atoi(m[2])
		}
		sts = append(sts, st)
	}
	return sts
}

// statePackets returns the packet count of the state with spi towards
// dst, -1 when the kernel has none.
func statePackets(sts []xfrmState, dst string, spi uint32) int {
	for _, s := range sts {
		if s.Dst == dst && s.SPI == spi {
			return s.Packets
		}
	}
	return -1
}

// pcscfContacts is the part of /status/contacts the scenarios read.
type pcscfContacts struct {
	IPsec    bool `json:"ipsec"`
	Contacts []struct {
		AOR   string          `json:"aor"`
		Flow  string          `json:"flow"`
		IMPUs []string        `json:"impus"`
		SA    json.RawMessage `json:"sa"`
	} `json:"contacts"`
}

func contacts(t *testing.T) pcscfContacts {
	t.Helper()
	res, err := http.Get("http://" + PCSCFAdmin + "/status/contacts")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var st pcscfContacts
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("/status/contacts: %v\n%s", err, b)
	}
	return st
}

// logSince returns what a core process logged after offset (see logSize).
func logSince(name string, offset int64) string {
	b, _ := os.ReadFile(filepath.Join(OutDir, name+".log"))
	if int64(len(b)) < offset {
		return string(b)
	}
	return string(b[offset:])
}

func logSize(name string) int64 {
	st, err := os.Stat(filepath.Join(OutDir, name+".log"))
	if err != nil {
		return 0
	}
	return st.Size()
}

var _ = bytes.Contains
var _ = strings.Contains
