package e2e

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/imscore/imscore/pkg/siptest"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// baresipModules is where Debian's baresip-core installs its modules.
const baresipModules = "/usr/lib/baresip/modules"

func needBaresip(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("baresip")
	if err != nil {
		t.Skip("baresip not installed (Debian package baresip-core)")
	}
	for _, m := range []string{"g711", "ausine", "alsa", "account", "contact", "menu", "ctrl_tcp"} {
		if _, err := os.Stat(filepath.Join(baresipModules, m+".so")); err != nil {
			t.Skipf("baresip module %s.so missing in %s", m, baresipModules)
		}
	}
	return p
}

// baresipEvent is one event of baresip's ctrl_tcp module (baresip 1.0:
// {"event":true,"type":"CALL_INCOMING","class":"call","accountaor":...,
// "direction":...,"peeruri":...,"id":...,"param":...}; CALL_RTCP adds
// "rtcp_stats").
type baresipEvent struct {
	Type       string `json:"type"`
	Class      string `json:"class"`
	AccountAOR string `json:"accountaor"`
	Direction  string `json:"direction"`
	PeerURI    string `json:"peeruri"`
	ID         string `json:"id"`
	Param      string `json:"param"`
	RTCPStats  *struct {
		TX struct {
			Sent int `json:"sent"`
			Lost int `json:"lost"`
		} `json:"tx"`
		RX struct {
			Sent int `json:"sent"`
			Lost int `json:"lost"`
		} `json:"rx"`
	} `json:"rtcp_stats"`
}

// baresipResponse answers one command: {"response":true,"ok":...,"data":...,"token":...}.
type baresipResponse struct {
	OK    bool   `json:"ok"`
	Data  string `json:"data"`
	Token string `json:"token"`
}

// baresipUA is one headless baresip process (config in its own directory,
// -f) driven over ctrl_tcp.
type baresipUA struct {
	name     string
	aor      string
	dir      string
	sipPort  int
	rtpMin   int
	rtpMax   int
	cmd      *exec.Cmd
	out      *syncBuffer // stdout+stderr with the SIP trace (-s)
	done     chan struct{}
	conn     net.Conn
	mu       sync.Mutex
	events   []baresipEvent
	resp     map[string]baresipResponse
	changed  chan struct{} // closed and replaced when events/resp change
	tokenSeq int
}

// freePortPair returns a port p with p and p+1 free on UDP and TCP
// (baresip binds sip_listen on UDP+TCP and the next port for TLS).
func freePortPair(t testing.TB) int {
	t.Helper()
	for range 100 {
		p := freePort(t)
		if portFree(p+1) && p+1 < 65536 {
			return p
		}
	}
	t.Fatal("no free port pair")
	return 0
}

func portFree(p int) bool { return siptest.PortFree(p) }

// freeRTPRange returns n consecutive free UDP ports (an even first one).
func freeRTPRange(t testing.TB, n int) (int, int) {
	t.Helper()
	for range 200 {
		base := freePort(t) &^ 1
		ok := base+n < 65536
		for p := base; ok && p < base+n; p++ {
			u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			u.Close()
		}
		if ok {
			return base, base + n - 1
		}
	}
	t.Fatal("no free RTP port range")
	return 0, 0
}

// startBaresip writes testdata/baresip/{config,accounts} for user (IMPI
// user@domain, IMPU sip:user@domain, MD5 password) with outbound proxy =
// the P-CSCF, a contacts file holding peers (the first is the current
// contact, the target of the "message" command), starts baresip with
// -f dir -s and connects to its ctrl_tcp socket.
func startBaresip(t testing.TB, user, password string, pcscfPort int, peers ...string) *baresipUA {
	t.Helper()
	bin := needBaresip(t)
	u := &baresipUA{name: user, aor: "sip:" + user + "@" + domain, dir: t.TempDir(), sipPort: freePortPair(t),
		out: &syncBuffer{}, done: make(chan struct{}), resp: map[string]baresipResponse{}, changed: make(chan struct{})}
	u.rtpMin, u.rtpMax = freeRTPRange(t, 10)
	ctrl := freePort(t)
	repl := strings.NewReplacer("%SIP_PORT%", strconv.Itoa(u.sipPort), "%CTRL_PORT%", strconv.Itoa(ctrl),
		"%RTP_MIN%", strconv.Itoa(u.rtpMin), "%RTP_MAX%", strconv.Itoa(u.rtpMax),
		"%USER%", user, "%DOMAIN%", domain, "%PASSWORD%", password, "%PCSCF_PORT%", strconv.Itoa(pcscfPort))
	for _, f := range []string{"config", "accounts"} {
		b, err := os.ReadFile(filepath.Join("testdata", "baresip", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(u.dir, f), []byte(repl.Replace(string(b))), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var contacts strings.Builder
	for _, p := range peers {
		fmt.Fprintf(&contacts, "<%s>\n", p)
	}
	if err := os.WriteFile(filepath.Join(u.dir, "contacts"), []byte(contacts.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	u.cmd = exec.Command(bin, "-f", u.dir, "-s")
	u.cmd.Dir = u.dir
	u.cmd.Stdout, u.cmd.Stderr = u.out, u.out
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = u.cmd.Wait(); close(u.done) }()
	t.Cleanup(func() {
		u.stop()
		if t.Failed() {
			t.Logf("---- baresip %s output (tail) ----\n%s", user, tail(u.out.String(), 8000))
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ctrl))
		if err == nil {
			u.conn = c
			break
		}
		select {
		case <-u.done:
			t.Fatalf("baresip %s exited:\n%s", user, tail(u.out.String(), 4000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip %s: ctrl_tcp not reachable: %v\n%s", user, err, tail(u.out.String(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	go u.read(bufio.NewReader(u.conn))
	return u
}

// stop ends baresip with SIGTERM (it de-registers first) and waits.
func (u *baresipUA) stop() {
	terminate(u.cmd, u.done, 5*time.Second)
	if u.conn != nil {
		u.conn.Close()
	}
}

// readNetstring reads one netstring ("<len>:<data>,"), the framing of
// ctrl_tcp.
func readNetstring(r *bufio.Reader) ([]byte, error) {
	head, err := r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[:len(head)-1]))
	if err != nil || n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("bad netstring length %q", head)
	}
	b := make([]byte, n+1)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	if b[n] != ',' {
		return nil, errors.New("netstring without trailing comma")
	}
	return b[:n], nil
}

func (u *baresipUA) read(r *bufio.Reader) {
	for {
		b, err := readNetstring(r)
		if err != nil {
			return
		}
		var kind struct {
			Event    bool `json:"event"`
			Response bool `json:"response"`
		}
		if json.Unmarshal(b, &kind) != nil {
			continue
		}
		u.mu.Lock()
		switch {
		case kind.Event:
			var ev baresipEvent
			if json.Unmarshal(b, &ev) == nil {
				u.events = append(u.events, ev)
			}
		case kind.Response:
			var res baresipResponse
			if json.Unmarshal(b, &res) == nil {
				u.resp[res.Token] = res
			}
		}
		close(u.changed)
		u.changed = make(chan struct{})
		u.mu.Unlock()
	}
}

// command sends a ctrl_tcp command ({"command","params","token"}) and
// waits for its response.
func (u *baresipUA) command(t testing.TB, command, params string) baresipResponse {
	t.Helper()
	u.mu.Lock()
	u.tokenSeq++
	token := fmt.Sprintf("%s-%d", u.name, u.tokenSeq)
	u.mu.Unlock()
	msg := map[string]string{"command": command, "token": token}
	if params != "" {
		msg["params"] = params
	}
	b, _ := json.Marshal(msg)
	if _, err := fmt.Fprintf(u.conn, "%d:%s,", len(b), b); err != nil {
		t.Fatalf("baresip %s: send %s: %v", u.name, command, err)
	}
	deadline := time.After(10 * time.Second)
	for {
		u.mu.Lock()
		res, ok := u.resp[token]
		ch := u.changed
		u.mu.Unlock()
		if ok {
			return res
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("baresip %s: no response to %s", u.name, command)
		}
	}
}

// waitEvent waits for an event of type typ (optionally satisfying match)
// at index from or later and returns it with its index.
func (u *baresipUA) waitEvent(t testing.TB, from int, typ string, within time.Duration, match func(baresipEvent) bool) (baresipEvent, int) {
	t.Helper()
	deadline := time.After(within)
	for {
		u.mu.Lock()
		evs := u.events
		ch := u.changed
		u.mu.Unlock()
		for i := from; i < len(evs); i++ {
			if evs[i].Type == typ && (match == nil || match(evs[i])) {
				return evs[i], i
			}
		}
		select {
		case <-ch:
		case <-u.done:
			t.Fatalf("baresip %s exited while waiting for %s", u.name, typ)
		case <-deadline:
			var seen []string
			for _, e := range evs {
				seen = append(seen, e.Type+"("+e.Param+")")
			}
			t.Fatalf("baresip %s: no %s within %v; events: %s", u.name, typ, within, strings.Join(seen, " "))
		}
	}
}

// waitRegistered waits until the account is registered: a REGISTER_OK
// event, or (when it came before ctrl_tcp was connected) baresip's console
// line "<user>@<domain>: {0/UDP/v4} 200 OK".
func (u *baresipUA) waitRegistered(t testing.TB, within time.Duration) {
	t.Helper()
	line := strings.TrimPrefix(u.aor, "sip:") + ": {0/UDP/v4} 200 OK"
	deadline := time.Now().Add(within)
	for {
		u.mu.Lock()
		ok := false
		for _, e := range u.events {
			ok = ok || e.Type == "REGISTER_OK"
		}
		u.mu.Unlock()
		if ok || strings.Contains(u.out.String(), line) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("baresip %s not registered within %v:\n%s", u.name, within, tail(u.out.String(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// eventCount returns how many events were received so far (a cursor for
// waitEvent).
func (u *baresipUA) eventCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.events)
}

// sipTrace returns what baresip printed, including its SIP trace (-s).
func (u *baresipUA) sipTrace() string { return u.out.String() }

// captureUDPRange captures UDP on lo between ports lo and hi with tshark
// (skipping the test when tshark cannot capture) and returns a function
// that stops it and counts the packets from ports [fromLo, fromHi] to
// ports [toLo, toHi].
func captureUDPRange(t testing.TB, lo, hi int) (stopAndCount func(fromLo, fromHi, toLo, toHi int) int) {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed")
	}
	pcap := filepath.Join(t.TempDir(), "rtp.pcap")
	cmd := exec.Command(bin, "-i", "lo", "-f", fmt.Sprintf("udp portrange %d-%d", lo, hi), "-w", pcap)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start tshark: %v", err)
	}
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.HasPrefix(sc.Text(), "Capturing on") {
				signalled = true
				ready <- true
			}
		}
		if !signalled {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			_ = cmd.Wait()
			t.Skip("tshark cannot capture on lo")
		}
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		t.Skip("tshark did not start capturing within 15s")
	}
	time.Sleep(300 * time.Millisecond) // let the capture filter settle
	var once sync.Once
	stop := func() {
		once.Do(func() {
			time.Sleep(300 * time.Millisecond)
			_ = cmd.Process.Signal(os.Interrupt)
			done := make(chan struct{})
			go func() { _ = cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	t.Cleanup(stop)
	return func(fromLo, fromHi, toLo, toHi int) int {
		t.Helper()
		stop()
		filter := fmt.Sprintf("udp.srcport >= %d && udp.srcport <= %d && udp.dstport >= %d && udp.dstport <= %d", fromLo, fromHi, toLo, toHi)
		out, err := exec.Command(bin, "-r", pcap, "-Y", filter, "-T", "fields", "-e", "frame.number").Output()
		if err != nil {
			t.Fatalf("tshark -r %s: %v", pcap, err)
		}
		return len(strings.Fields(string(out)))
	}
}
