//go:build compose

package compose_test

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/siptest"
)

// host is where a UE runs: the Docker host itself (netns "" = the test's
// own namespace, reaching the lab at 127.0.0.1 through the engine's
// userland proxy) or another machine on its LAN (a network namespace whose
// only route is the LAN to the Docker host).
type host struct {
	netns string // path of the network namespace, "" for the test's own
	ip    string // the UE's address
	proxy string // P-CSCF address as the UE sees it (published port)
}

func (h host) command(name string, args ...string) *exec.Cmd {
	if h.netns == "" {
		return exec.Command(name, args...)
	}
	return exec.Command("nsenter", append([]string{"--net=" + h.netns, name}, args...)...)
}

// sippUE is one sipp identity: registrations and calls are separate sipp
// runs from the same local port (the flow the P-CSCF knows).
type sippUE struct {
	h     host
	user  string // user part of IMPI and IMPU
	port  int
	auth  string // sipp [authentication ...] of the second REGISTER
	rport bool   // ;rport in Via (RFC 3581)
	msgs  []string
	// k and op (hex) of an AKA UE: a registration that failed because
	// sipp 3.6.1 miscomputed a RES with a zero byte is run again.
	k, op string
}

// akaAuth is sipp's IMS AKA keyword for K, OP and AMF given in hex (the
// IMPI is sipp's -au).
func akaAuth(k, op, amf string) string {
	esc := func(h string) string {
		var b strings.Builder
		for i := 0; i+1 < len(h); i += 2 {
			b.WriteString(`\\x` + h[i:i+2])
		}
		return b.String()
	}
	return fmt.Sprintf(`[authentication aka_K="%s" aka_OP="%s" aka_AMF="%s"]`, esc(k), esc(op), esc(amf))
}

func md5Auth(user, password string) string {
	return fmt.Sprintf(`[authentication username=%s@%s password=%s]`, user, domain, password)
}

// scenario writes testdata/name with the %...% fields replaced.
func (u *sippUE) scenario(t *testing.T, name string, repl ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	via := ""
	if u.rport {
		via = ";rport"
	}
	adv := ""
	if lab != nil {
		adv = regexp.QuoteMeta(lab.advertised)
	}
	r := strings.NewReplacer(append([]string{"%AUTH%", u.auth, "%VIA_PARAMS%", via, "%ADV_RE%", adv}, repl...)...)
	p := filepath.Join(lab.t.TempDir(), name)
	if err := os.WriteFile(p, []byte(r.Replace(string(b))), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs one sipp scenario to its end and fails the test when sipp
// does, unless (an AKA UE, up to five times) the failure is sipp's own:
// a 401 whose RES has a zero byte (siptest.SippZeroByteRES).
func (u *sippUE) run(t *testing.T, scenario string, keys ...string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		r := u.start(t, scenario, keys...)
		err := r.wait(60 * time.Second)
		if err == nil {
			return
		}
		if u.k != "" && attempt < 5 {
			k, _ := hex.DecodeString(u.k)
			op, _ := hex.DecodeString(u.op)
			msgs, _ := os.ReadFile(filepath.Join(r.dir, "messages.log"))
			if nonce := siptest.SippZeroByteRES(k, op, string(msgs)); nonce != "" {
				t.Logf("sipp %s %s: nonce %s gives a RES with a zero byte, which sipp 3.6.1 miscomputes; again", u.user, filepath.Base(scenario), nonce)
				continue
			}
		}
		t.Fatalf("sipp %s %s: %v", u.user, filepath.Base(scenario), err)
	}
}

type sippRun struct {
	cmd  *exec.Cmd
	out  bytes.Buffer
	dir  string
	done chan error
}

func (u *sippUE) start(t *testing.T, scenario string, keys ...string) *sippRun {
	t.Helper()
	// In the whole test's directory: the logs step reads the traces.
	r := &sippRun{dir: lab.t.TempDir(), done: make(chan error, 1)}
	args := []string{u.h.proxy, "-sf", scenario, "-i", u.h.ip, "-p", strconv.Itoa(u.port), "-t", "u1", "-m", "1",
		"-mp", strconv.Itoa(20000 + 10*(u.port-5000)), // audio and video RTP/RTCP: four ports per UE
		"-key", "user", u.user, "-key", "domain", domain, "-key", "expires", "3600", "-auth_uri", domain, "-au", u.user + "@" + domain,
		"-nostdin", "-timeout", "40s", "-timeout_error", "-recv_timeout", "20s",
		"-trace_err", "-error_file", filepath.Join(r.dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(r.dir, "messages.log")}
	for i := 0; i+1 < len(keys); i += 2 {
		args = append(args, "-key", keys[i], keys[i+1])
	}
	r.cmd = u.h.command("sipp", args...)
	r.cmd.Dir = r.dir
	r.cmd.Stdout, r.cmd.Stderr = &r.out, &r.out
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { r.done <- r.cmd.Wait() }()
	t.Cleanup(func() {
		if r.cmd.ProcessState == nil {
			_ = r.cmd.Process.Kill()
		}
	})
	u.msgs = append(u.msgs, filepath.Join(r.dir, "messages.log"))
	return r
}

func (r *sippRun) wait(within time.Duration) error {
	select {
	case err := <-r.done:
		if err != nil {
			msgs, _ := os.ReadFile(filepath.Join(r.dir, "messages.log"))
			errs, _ := os.ReadFile(filepath.Join(r.dir, "errors.log"))
			return fmt.Errorf("%v\n---- errors ----\n%s\n---- messages (tail) ----\n%s", err, errs, tail(string(msgs), 6000))
		}
		return nil
	case <-time.After(within):
		_ = r.cmd.Process.Kill()
		return fmt.Errorf("still running after %v", within)
	}
}

// trace is everything sipp sent and received so far.
func (u *sippUE) trace() string {
	var b strings.Builder
	for _, f := range u.msgs {
		data, _ := os.ReadFile(f)
		b.Write(data)
	}
	return b.String()
}

// baresipUA is one headless baresip softphone driven over ctrl_tcp.
type baresipUA struct {
	user  string
	cmd   *exec.Cmd
	out   *lockedBuffer
	done  chan struct{}
	conn  net.Conn
	mu    sync.Mutex
	evs   []baresipEvent
	resp  map[string]bool
	wake  chan struct{}
	token int
}

type baresipEvent struct {
	Type  string `json:"type"`
	Param string `json:"param"`
	Peer  string `json:"peeruri"`
	ID    string `json:"id"`
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *lockedBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *lockedBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// startBaresip starts baresip on h at sipPort (RTP and ctrl_tcp on the
// ports above it) with one account: IMPU sip:user@domain, IMPI
// user@domain, MD5 password, every request through the P-CSCF.
func startBaresip(t *testing.T, h host, user, password string, sipPort int) *baresipUA {
	t.Helper()
	dir := lab.t.TempDir()
	ctrl := sipPort + 2
	repl := strings.NewReplacer("%IP%", h.ip, "%SIP_PORT%", strconv.Itoa(sipPort), "%CTRL_PORT%", strconv.Itoa(ctrl),
		"%RTP_MIN%", strconv.Itoa(sipPort+10), "%RTP_MAX%", strconv.Itoa(sipPort+19))
	conf, err := os.ReadFile(filepath.Join("testdata", "baresip-config"))
	if err != nil {
		t.Fatal(err)
	}
	account := fmt.Sprintf("<sip:%s@%s>;auth_user=%s@%s;auth_pass=%s;outbound=\"sip:%s\";regint=3600\n",
		user, domain, user, domain, password, h.proxy)
	if err := os.WriteFile(filepath.Join(dir, "config"), []byte(repl.Replace(string(conf))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "accounts"), []byte(account), 0o600); err != nil {
		t.Fatal(err)
	}
	u := &baresipUA{user: user, out: &lockedBuffer{}, done: make(chan struct{}), resp: map[string]bool{}, wake: make(chan struct{})}
	u.cmd = h.command("baresip", "-f", dir, "-s")
	u.cmd.Dir = dir
	u.cmd.Stdout, u.cmd.Stderr = u.out, u.out
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = u.cmd.Wait(); close(u.done) }()
	// The softphone outlives the step that started it: later steps call
	// with it (restarts, down/up).
	lab.t.Cleanup(func() {
		u.stop()
		if lab.t.Failed() {
			lab.t.Logf("---- baresip %s (tail) ----\n%s", user, tail(u.out.String(), 6000))
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", net.JoinHostPort(h.ip, strconv.Itoa(ctrl)))
		if err == nil {
			u.conn = c
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip %s: ctrl_tcp unreachable: %v\n%s", user, err, tail(u.out.String(), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	go u.read()
	return u
}

func (u *baresipUA) stop() {
	if u.cmd.Process != nil {
		_ = u.cmd.Process.Signal(os.Interrupt)
		select {
		case <-u.done:
		case <-time.After(5 * time.Second):
			_ = u.cmd.Process.Kill()
			<-u.done
		}
	}
	if u.conn != nil {
		u.conn.Close()
	}
}

// read decodes ctrl_tcp's netstrings ("<len>:<json>,").
func (u *baresipUA) read() {
	r := bufio.NewReader(u.conn)
	for {
		head, err := r.ReadString(':')
		if err != nil {
			return
		}
		n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(head, ":")))
		if err != nil || n < 0 || n > 1<<20 {
			return
		}
		b := make([]byte, n+1)
		if _, err := io.ReadFull(r, b); err != nil {
			return
		}
		var m struct {
			Event    bool   `json:"event"`
			Response bool   `json:"response"`
			Token    string `json:"token"`
			baresipEvent
		}
		if json.Unmarshal(b[:n], &m) != nil {
			continue
		}
		u.mu.Lock()
		if m.Event {
			u.evs = append(u.evs, m.baresipEvent)
		} else if m.Response {
			u.resp[m.Token] = true
		}
		close(u.wake)
		u.wake = make(chan struct{})
		u.mu.Unlock()
	}
}

// do sends a ctrl_tcp command and waits for its response.
func (u *baresipUA) do(t *testing.T, command, params string) {
	t.Helper()
	u.mu.Lock()
	u.token++
	token := fmt.Sprintf("%s-%d", u.user, u.token)
	u.mu.Unlock()
	b, _ := json.Marshal(map[string]string{"command": command, "params": params, "token": token})
	if _, err := fmt.Fprintf(u.conn, "%d:%s,", len(b), b); err != nil {
		t.Fatalf("baresip %s: %s: %v", u.user, command, err)
	}
	u.waitFor(t, 10*time.Second, command, func() bool { return u.resp[token] })
}

// waitFor waits until ok (called with u.mu held) holds.
func (u *baresipUA) waitFor(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		u.mu.Lock()
		done, wake := ok(), u.wake
		u.mu.Unlock()
		if done {
			return
		}
		select {
		case <-wake:
		case <-u.done:
			t.Fatalf("baresip %s exited waiting for %s", u.user, what)
		case <-deadline:
			t.Fatalf("baresip %s: no %s within %v; events: %s", u.user, what, within, u.events())
		}
	}
}

// mark is a cursor in the event list.
func (u *baresipUA) mark() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.evs)
}

// waitEvent waits for an event of type typ after cursor from.
func (u *baresipUA) waitEvent(t *testing.T, from int, typ string, within time.Duration) baresipEvent {
	t.Helper()
	var ev baresipEvent
	u.waitFor(t, within, typ, func() bool {
		for _, e := range u.evs[min(from, len(u.evs)):] {
			if e.Type == typ {
				ev = e
				return true
			}
		}
		return false
	})
	return ev
}

func (u *baresipUA) events() string {
	var s []string
	for _, e := range u.evs {
		s = append(s, e.Type+"("+e.Param+")")
	}
	return strings.Join(s, " ")
}

// waitRegistered waits for the account's registration (REGISTER_OK, or
// the console line when it came before ctrl_tcp was connected).
func (u *baresipUA) waitRegistered(t *testing.T, within time.Duration) {
	t.Helper()
	line := u.user + "@" + domain + ": {0/UDP/v4} 200 OK"
	for deadline := time.Now().Add(within); ; time.Sleep(100 * time.Millisecond) {
		u.mu.Lock()
		ok := false
		for _, e := range u.evs {
			ok = ok || e.Type == "REGISTER_OK"
		}
		u.mu.Unlock()
		if ok || strings.Contains(u.out.String(), line) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip %s not registered within %v:\n%s", u.user, within, tail(u.out.String(), 4000))
		}
	}
}

// registers counts the REGISTER requests baresip sent (its SIP trace).
func (u *baresipUA) registers() int {
	return strings.Count(u.out.String(), "REGISTER sip:")
}

// call makes a from b's caller: dial, b answers, both sides established,
// a hangs up (BYE through the route set), both sides closed.
func call(t *testing.T, a, b *baresipUA) {
	t.Helper()
	ma, mb := a.mark(), b.mark()
	a.do(t, "dial", "sip:"+b.user+"@"+domain)
	b.waitEvent(t, mb, "CALL_INCOMING", 15*time.Second)
	b.do(t, "accept", "")
	a.waitEvent(t, ma, "CALL_ESTABLISHED", 15*time.Second)
	b.waitEvent(t, mb, "CALL_ESTABLISHED", 15*time.Second)
	time.Sleep(500 * time.Millisecond)
	a.do(t, "hangup", "")
	a.waitEvent(t, ma, "CALL_CLOSED", 15*time.Second)
	// b closes on the BYE a sent along the route set (baresip: "Connection
	// reset by peer"), not on a timeout.
	ev := b.waitEvent(t, mb, "CALL_CLOSED", 10*time.Second)
	if !strings.Contains(strings.ToLower(ev.Param), "reset by peer") {
		t.Errorf("%s's call closed with %q, want the caller's BYE", b.user, ev.Param)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
