package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSharedFlowRegisterAndCall: UEs behind one socket (an SBC, a NAT
// without per-UE ports), each with its own address in Via and Contact,
// register through the whole chain (P-CSCF → I-CSCF → S-CSCF → HSS) and
// call each other: sipp registers sharedN callers from one UDP socket and
// sharedN callees from another, then each caller calls its callee (no
// P-Preferred-Identity, no Route: the P-CSCF must tell the callers apart
// by the flow and the Via/Contact). Every registration and call must
// complete, and every INVITE the callees get must assert the caller's own
// identity (P-Asserted-Identity = From), never another user's. Before
// the P-CSCF matched requests by flow and Contact/Via, every caller was
// taken for the most recently registered UE of its socket.
func TestSharedFlowRegisterAndCall(t *testing.T) {
	const sharedN = 40
	sipp := needSipp(t)
	l := newPCSCFLabArgs(t, freePort(t), []string{"--log-level", "warn"}, []string{"--log-level", "warn"})
	dir := t.TempDir()
	var csv strings.Builder
	csv.WriteString("impi,impu,password\n")
	user := func(group string, i int) string { return fmt.Sprintf("shared%s%03d", group, i) }
	host := func(group string, i int) string {
		if group == "a" {
			return fmt.Sprintf("10.77.0.%d", i+1)
		}
		return fmt.Sprintf("10.78.0.%d", i+1)
	}
	for _, g := range []string{"a", "b"} {
		for i := range sharedN {
			fmt.Fprintf(&csv, "%s@%s,sip:%s@%s,pw-%s\n", user(g, i), domain, user(g, i), domain, user(g, i))
		}
	}
	csvPath := filepath.Join(dir, "subs.csv")
	if err := os.WriteFile(csvPath, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	l.imsctl("subscriber", "import", csvPath)

	// One socket per group: the callers' and the callees' "SBC".
	ports := map[string]int{"a": freePort(t), "b": freePort(t)}
	for _, g := range []string{"a", "b"} {
		var inf strings.Builder
		inf.WriteString("SEQUENTIAL\n")
		for i := range sharedN {
			u := user(g, i)
			fmt.Fprintf(&inf, "%s;%s;[authentication username=%s@%s password=pw-%s]\n", u, host(g, i), u, domain, u)
		}
		infPath := filepath.Join(dir, "reg-"+g+".csv")
		if err := os.WriteFile(infPath, []byte(inf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := runSipp(t, dir, sipp, fmt.Sprintf("127.0.0.1:%d", l.pcscf), "-sf", scenarioCopy(t, dir, "shared_register_md5.xml"),
			"-inf", infPath, "-key", "domain", domain, "-key", "expires", "600", "-auth_uri", domain,
			"-i", "127.0.0.1", "-p", fmt.Sprint(ports[g]), "-t", "u1", "-m", fmt.Sprint(sharedN), "-r", "20",
			"-nostdin", "-timeout", "60s", "-timeout_error")
		if err != nil {
			t.Fatalf("registrations of group %s from one socket: %v\n%s", g, err, tail(out, 3000))
		}
	}
	st := l.contacts(t)
	for _, g := range []string{"a", "b"} {
		for i := range sharedN {
			impu := "sip:" + user(g, i) + "@" + domain
			if flows := st.flowsOf(impu); len(flows) != 1 || flows[0] != fmt.Sprintf("udp:127.0.0.1:%d", ports[g]) {
				t.Fatalf("%s: P-CSCF contacts on flows %v", impu, flows)
			}
		}
	}

	// The callees answer on their shared socket; the callers call them.
	uas := sippUAS(t, "shared_call_uas.xml", ports["b"], sharedN)
	var inf strings.Builder
	inf.WriteString("SEQUENTIAL\n")
	for i := range sharedN {
		fmt.Fprintf(&inf, "%s;%s;%s\n", user("a", i), host("a", i), user("b", i))
	}
	callInf := filepath.Join(dir, "calls.csv")
	if err := os.WriteFile(callInf, []byte(inf.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runSipp(t, dir, sipp, fmt.Sprintf("127.0.0.1:%d", l.pcscf), "-sf", scenarioCopy(t, dir, "shared_call_uac.xml"),
		"-inf", callInf, "-key", "domain", domain, "-i", "127.0.0.1", "-p", fmt.Sprint(ports["a"]), "-t", "u1",
		"-m", fmt.Sprint(sharedN), "-r", "20", "-nostdin", "-timeout", "60s", "-timeout_error")
	if err != nil {
		t.Errorf("calls between UEs sharing sockets: %v\n%s", err, tail(out, 3000))
	}
	if ok, out := uas.wait(20 * time.Second); !ok {
		t.Errorf("callees' sipp: %s", tail(out, 3000))
	}
	msgs, _ := os.ReadFile(filepath.Join(uas.dir, "messages.log"))
	invites := receivedInvites(string(msgs))
	if len(invites) < sharedN {
		t.Errorf("callees got %d INVITEs of %d", len(invites), sharedN)
	}
	wrong := 0
	for _, inv := range invites {
		from, pai := headerUser(inv, "From"), headerUser(inv, "P-Asserted-Identity")
		if from == "" || pai != from {
			wrong++
			if wrong <= 3 {
				t.Errorf("INVITE from %q asserts %q:\n%s", from, pai, inv)
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d of %d INVITEs asserted another identity than the caller's", wrong, len(invites))
	}
}

// runSipp runs sipp with args in dir and returns its output with its
// error log.
func runSipp(t *testing.T, dir, sipp string, args ...string) (string, error) {
	t.Helper()
	errLog := filepath.Join(dir, fmt.Sprintf("errors-%d.log", time.Now().UnixNano()))
	cmd := exec.Command(sipp, append(args, "-trace_err", "-error_file", errLog)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	e, _ := os.ReadFile(errLog)
	return string(out) + "\n" + string(e), err
}

// receivedInvites are the INVITE requests of a sipp -trace_msg log, each
// as its start line and headers.
func receivedInvites(log string) []string {
	var out []string
	for _, block := range strings.Split(log, "\nINVITE sip:")[1:] {
		head, _, _ := strings.Cut(block, "\n\n")
		head, _, _ = strings.Cut(head, "\r\n\r\n")
		out = append(out, "INVITE sip:"+head)
	}
	return out
}

var sipUserRE = regexp.MustCompile(`sip:([^@;>]+)@`)

// headerUser is the user part of the first sip: URI of header name in a
// message's text, "" when absent.
func headerUser(msg, name string) string {
	for _, line := range strings.Split(msg, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			if m := sipUserRE.FindStringSubmatch(v); m != nil {
				return m[1]
			}
		}
	}
	return ""
}
