package e2e

// freeDiameter 1.2 (Debian packages freediameter and
// freediameter-extensions) as a third-party Diameter peer: of our HSS (Cx)
// and of our P-CSCF's Rx client. freeDiameterd is configured from
// testdata/freediameter/ (filled in with free ports, identities and temporary
// paths) and runs dbg_msg_dumps, which logs every message it sends and
// receives as decoded with its own dictionary (the 3GPP one loaded), and
// every parsing error. The tests read that log: the peer goes OPEN, the
// watchdog and disconnect exchanges succeed both ways, and freeDiameter
// decodes what we send without a dictionary error. TestFreeDiameterDetectsBadAVP
// shows that a bad AVP does show up in that log (so the check can fail).
//
// What freeDiameter 1.2.1 offers: no application of its own, only the Relay
// application (Auth-Application-Id 0xffffffff) in CER/CEA. Our node counts
// Relay as supporting every application it serves (pkg/diameter),
// so our HSS sends RTR/PPR to it; freeDiameter, having no handler, answers
// 3007 DIAMETER_APPLICATION_UNSUPPORTED. Its dictionaries define no Cx
// command (Cx AVPs, yes: dict_dcca_3gpp), so it cannot parse the AVPs of
// an RTR or PPR at all ("(no model)"); those AVPs are checked by Wireshark's
// dissector on the capture instead. An Rx AAR finds nasreq's AA-Request
// (command 265) and is decoded AVP by AVP.

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/diameter/diamtest"
	"github.com/imscore/imscore/pkg/pgtest"
)

// fdExtDir is where Debian's freediameter-extensions puts the extensions.
const fdExtDir = "/usr/lib/freeDiameter"

// fdHost is freeDiameter's Diameter identity in the tests.
const fdHost = "fd." + domain

const fdInstall = "apt-get install -y freediameter freediameter-extensions"

// needFreeDiameter returns the path of freeDiameterd and fails the test
// (never skips: CI installs the packages) when it or an extension the
// tests load is missing.
func needFreeDiameter(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("freeDiameterd")
	if err != nil {
		t.Fatalf("freeDiameterd not found (%v): %s", err, fdInstall)
	}
	for _, ext := range []string{"dict_nasreq.fdx", "dict_dcca.fdx", "dict_dcca_3gpp.fdx", "dbg_msg_dumps.fdx", "acl_wl.fdx"} {
		if _, err := os.Stat(filepath.Join(fdExtDir, ext)); err != nil {
			t.Fatalf("freeDiameter extension %s missing (%v): %s", ext, err, fdInstall)
		}
	}
	// The capture below would skip the test without tshark.
	if _, err := exec.LookPath(diamtest.TSharkPath); err != nil {
		t.Fatalf("tshark not found (%v): apt-get install -y tshark", err)
	}
	return bin
}

// fdDaemon is one running freeDiameterd.
type fdDaemon struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan struct{}
	err  error
}

// startFreeDiameter writes testdata/freediameter/common.conf followed by
// mode ("peer.conf" or "listen.conf") with vars (%NAME% → value; IDENTITY
// fd.<domain>, REALM, EXTDIR, ACL_FILE, EXTRA "" and PEER_SECURITY No_TLS
// unless vars say otherwise) into a temporary directory, starts
// freeDiameterd on it and waits until it is initialised. allow lists the
// Origin-Hosts acl_wl admits without TLS (listen.conf).
func startFreeDiameter(t *testing.T, mode string, vars map[string]string, allow ...string) *fdDaemon {
	t.Helper()
	bin := needFreeDiameter(t)
	dir := t.TempDir()
	all := map[string]string{"IDENTITY": fdHost, "REALM": domain, "EXTDIR": fdExtDir,
		"ACL_FILE": filepath.Join(dir, "acl_wl.conf"), "EXTRA": "", "PEER_SECURITY": "No_TLS"}
	var lines []string
	for _, h := range allow {
		lines = append(lines, "ALLOW_IPSEC "+h)
	}
	all["ALLOW"] = strings.Join(lines, "\n")
	for k, v := range vars {
		all[k] = v
	}
	fill := func(names ...string) string {
		var b strings.Builder
		for _, n := range names {
			tmpl, err := os.ReadFile(filepath.Join("testdata", "freediameter", n))
			if err != nil {
				t.Fatal(err)
			}
			text := regexp.MustCompile(`%[A-Z_]+%`).ReplaceAllStringFunc(string(tmpl), func(m string) string {
				v, ok := all[strings.Trim(m, "%")]
				if !ok {
					t.Fatalf("%s: no value for %s", n, m)
				}
				return v
			})
			b.WriteString(text)
		}
		return b.String()
	}
	if err := os.WriteFile(all["ACL_FILE"], []byte(fill("acl_wl.conf")), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "freeDiameter.conf")
	if err := os.WriteFile(conf, []byte(fill("common.conf", mode)), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &fdDaemon{cmd: exec.Command(bin, "-c", conf), logs: &syncBuffer{}, done: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { d.err = d.cmd.Wait(); close(d.done) }()
	t.Cleanup(func() {
		d.stop()
		if t.Failed() {
			t.Logf("---- freeDiameter log (tail) ----\n%s", tail(d.logs.String(), 12000))
		}
	})
	d.waitFor(t, 10*time.Second, "freeDiameterd initialised", `freeDiameterd daemon initialized`)
	return d
}

// stop sends SIGTERM: freeDiameter sends DPR to its open peers and waits
// (up to 16 s) for them to close.
func (d *fdDaemon) stop() { terminate(d.cmd, d.done, 20*time.Second) }

// fdLine is one line of freeDiameter's log: "HH:MM:SS  LEVEL  text".
type fdLine struct{ level, text string }

var fdLineRE = regexp.MustCompile(`^\d\d:\d\d:\d\d\s+(\S+)\s+(.*)$`)

func fdParseLog(s string) []fdLine {
	var out []fdLine
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if m := fdLineRE.FindStringSubmatch(sc.Text()); m != nil {
			out = append(out, fdLine{m[1], m[2]})
		}
	}
	return out
}

// lines returns the log lines whose text matches re (from line from on).
func (d *fdDaemon) lines(from int, re *regexp.Regexp) []string {
	var out []string
	for _, l := range fdParseLog(d.logs.String())[from:] {
		if re.MatchString(l.text) {
			out = append(out, l.text)
		}
	}
	return out
}

// mark returns the number of log lines so far, for lines and report.
func (d *fdDaemon) mark() int { return len(fdParseLog(d.logs.String())) }

// waitFor waits until a log line matches pattern and returns it.
func (d *fdDaemon) waitFor(t testing.TB, within time.Duration, what, pattern string) string {
	t.Helper()
	return d.waitForFrom(t, 0, within, what, pattern)
}

func (d *fdDaemon) waitForFrom(t testing.TB, from int, within time.Duration, what, pattern string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(within)
	for {
		if l := d.lines(from, re); len(l) > 0 {
			return l[0]
		}
		select {
		case <-d.done:
			t.Fatalf("freeDiameter exited (%v) before: %s\n%s", d.err, what, tail(d.logs.String(), 6000))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("freeDiameter: %s: not logged within %v\n%s", what, within, tail(d.logs.String(), 6000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitExit waits for freeDiameterd to exit after stop.
func (d *fdDaemon) waitExit(t testing.TB) {
	t.Helper()
	d.stop()
	select {
	case <-d.done:
	case <-time.After(time.Second):
		t.Fatal("freeDiameterd did not exit")
	}
}

// fdReport is what freeDiameter's log says about the messages it received.
type fdReport struct {
	// problems are log lines saying that freeDiameter's dictionary could
	// not parse something it received: unknown or undecodable AVPs, bad
	// lengths, parse errors other than "no application".
	problems []string
	// unknownCommands are the received messages whose command is not in
	// freeDiameter's dictionary ("(no model)"): their AVPs are not decoded.
	unknownCommands []string
	// received counts the messages received from peer.
	received int
}

var (
	fdMsgRE = regexp.MustCompile(`^(RCV from|SND to|SNDING to|CONNECTED TO|DISPATCHING|FORWARDING|ISSUED|DROPPED|FAILOVER from)\b`)
	// freeDiameter's words for what it could not parse (NOTI lines that
	// precede the ERROR lines, e.g. "Unsupported mandatory AVP found", "The
	// AVP size is not suitable for the type").
	fdTroubleRE = regexp.MustCompile(`(?i)unsupported|invalid|not suitable|not found in|unable to parse|malformed|bad message|missing|rejected`)
)

// report classifies the log lines from line from on; peer is the
// Origin-Host of our process whose messages are examined.
func (d *fdDaemon) report(from int, peer string) fdReport {
	var r fdReport
	rcv := "RCV from '" + peer + "': "
	for _, l := range fdParseLog(d.logs.String())[from:] {
		switch {
		case strings.HasPrefix(l.text, rcv):
			r.received++
			dump := strings.TrimPrefix(l.text, rcv)
			if strings.HasPrefix(dump, "(no model)") {
				r.unknownCommands = append(r.unknownCommands, dump)
			} else if strings.Contains(dump, "unknown(") || strings.Contains(dump, "(not set)") {
				r.problems = append(r.problems, l.text)
			}
		case l.level == "FATAL!" && strings.HasPrefix(l.text, "Initiating freeDiameter shutdown sequence"):
		case l.level == "ERROR" || l.level == "FATAL!":
			switch {
			case strings.HasPrefix(l.text, "PARSING ERROR: 'Application unsupported' from "):
				// No application registered for the message: every
				// request we send freeDiameter gets 3007 (expected).
			case strings.Contains(l.text, "fd_dict_search ( dict, DICT_COMMAND"):
				// A command freeDiameter's dictionary lacks; counted
				// with its "(no model)" dump in unknownCommands.
			case l.text == "ERROR: Invalid parameter '(handler)', 22" || strings.Contains(l.text, "fd_hook_unregister("):
				// dbg_msg_dumps 1.2.1 unregisters a hook it never
				// registered when freeDiameter stops.
			default:
				r.problems = append(r.problems, l.level+" "+l.text)
			}
		case fdMsgRE.MatchString(l.text):
		case fdTroubleRE.MatchString(l.text):
			r.problems = append(r.problems, l.level+" "+l.text)
		}
	}
	return r
}

// fdOpen matches freeDiameter's log of peer's state change to OPEN.
func fdOpen(peer string) string {
	return `-> 'STATE_OPEN'\s+'` + regexp.QuoteMeta(peer) + `'`
}

// fdRcv / fdSnd match the dump of a message received from / sent to peer
// whose text starts with cmd (e.g. "Device-Watchdog-Answer") and contains
// each of with in order.
func fdRcv(peer, cmd string, with ...string) string {
	return fdDumpRE("RCV from", peer, cmd, with)
}

func fdSnd(peer, cmd string, with ...string) string {
	return fdDumpRE("SND to", peer, cmd, with)
}

func fdDumpRE(dir, peer, cmd string, with []string) string {
	re := "^" + dir + " '" + regexp.QuoteMeta(peer) + "': " + regexp.QuoteMeta(cmd)
	for _, w := range with {
		re += ".*" + regexp.QuoteMeta(w)
	}
	return re
}

// fdWaitProcLog waits until p's log has a line matching pattern.
func fdWaitProcLog(t testing.TB, p *proc, within time.Duration, what, pattern string) string {
	t.Helper()
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(within)
	for {
		if m := re.FindString(p.logs.String()); m != "" {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s: not logged within %v\n%s", p.name, what, within, tail(p.logs.String(), 4000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fdCheckCapabilities checks the AVPs of our CER or CEA as freeDiameter
// decoded them (RFC 6733 §5.3.1/5.3.2 and the flag rules of §4.5: base AVPs
// without the V bit, M set except on Product-Name), and that apps (none in
// a failed CEA) are offered in Vendor-Specific-Application-Id with
// Supported-Vendor-Id 3GPP (TS 29.229 §5.6, TS 29.214 §5.6).
func fdCheckCapabilities(t *testing.T, dump string, apps ...uint32) {
	t.Helper()
	want := []string{
		`Origin-Host(264)[-M]="`, `Origin-Realm(296)[-M]="` + domain + `"`,
		`Host-IP-Address(257)[-M]=127.0.0.1`, `Vendor-Id(266)[-M]=10415`,
		`Product-Name(269)[--]="imscore`, `Origin-State-Id(278)[-M]=`,
	}
	if len(apps) > 0 {
		want = append(want, `Supported-Vendor-Id(265)[-M]=10415`)
	}
	for _, a := range apps {
		want = append(want, fmt.Sprintf(`Vendor-Specific-Application-Id(260)[-M]={ Vendor-Id(266)[-M]=10415 (0x28af) }, { Auth-Application-Id(258)[-M]=%d `, a))
	}
	for _, w := range want {
		if !strings.Contains(dump, w) {
			t.Errorf("capabilities exchange lacks %s:\n%s", w, dump)
		}
	}
	// freeDiameter shows a vendor AVP as Name(vendor/code), a base one
	// as Name(code).
	if m := regexp.MustCompile(`[\w-]+\(\d+\)\[V`).FindAllString(dump, -1); m != nil {
		t.Errorf("base AVPs with the V bit: %q", m)
	}
}

// fdCheckDecoded fails the test for every problem in r and for commands
// freeDiameter could not parse, except those of the applications in
// unknownOK (by application id).
func fdCheckDecoded(t *testing.T, r fdReport, unknownOK ...string) {
	t.Helper()
	if r.received == 0 {
		t.Error("freeDiameter logged no message from us")
	}
	for _, p := range r.problems {
		t.Errorf("freeDiameter could not parse what we sent: %s", p)
	}
	for _, u := range r.unknownCommands {
		ok := false
		for _, app := range unknownOK {
			ok = ok || strings.HasPrefix(u, "(no model) unknown("+app+"/")
		}
		if !ok {
			t.Errorf("freeDiameter has no dictionary model for a command we sent: %s", u)
		}
	}
}

// startHSSForFreeDiameter starts an HSS alone (Diameter on 127.0.0.1:port,
// accepting fd.<domain> as a peer) on a throw-away database.
func startHSSForFreeDiameter(t *testing.T, port int) (*lab, *proc) {
	t.Helper()
	l := newEmptyLab(t, port)
	// --command-poll: RTR/PPR are sent when imsctl queues them
	// (NOTIFY); the 3007 answers would otherwise be retried every 5 s.
	hss := l.start("hss", "--diameter-listen", fmt.Sprintf("127.0.0.1:%d", port), "--domain", domain,
		"--peer", fdHost, "--command-poll", "1m")
	l.waitReady("hss", 15*time.Second)
	return l, hss
}

// TestFreeDiameterHSS: freeDiameter connects to our HSS as a Cx client
// would (ConnectPeer, identity fd.<domain> accepted with --peer). First the
// CERs the HSS must refuse: an unknown Origin-Host (3010, E bit), no
// common application (freeDiameter with NoRelay: 5010), only in-band TLS
// (5017). Then CER/CEA, freeDiameter's DWR answered, RTR and PPR from the HSS (to an
// IMPU assigned to the S-CSCF "fd.<domain>") reach it and its 3007 answers
// reach the HSS, DPR from freeDiameter when it stops answered by the HSS,
// DPR from the HSS when it stops answered by freeDiameter; freeDiameter
// logs no parsing problem and Wireshark finds nothing malformed.
func TestFreeDiameterHSS(t *testing.T) {
	t.Parallel()
	needFreeDiameter(t)
	hssPort := freePort(t)
	stopCapture := diamtest.Capture(t, hssPort)
	l, hss := startHSSForFreeDiameter(t, hssPort)
	vars := map[string]string{"PEER_HOST": "hss." + domain, "PEER_PORT": strconv.Itoa(hssPort)}
	hssHost := "hss." + domain

	t.Run("CER of an unknown peer: CEA 3010", func(t *testing.T) {
		v := map[string]string{"IDENTITY": "stranger." + domain}
		for k, x := range vars {
			v[k] = x
		}
		fd := startFreeDiameter(t, "peer.conf", v)
		// RFC 6733 §5.3, §7.1.3: E bit set, the usual CEA AVPs.
		cea := fd.waitFor(t, 5*time.Second, "CEA", fdRcv(hssHost, "Capabilities-Exchange-Answer(257)[--E-]", "'DIAMETER_UNKNOWN_PEER' (3010"))
		fdCheckCapabilities(t, cea)
		fd.waitExit(t)
		if open := fd.lines(0, regexp.MustCompile(fdOpen(hssHost))); len(open) > 0 {
			t.Errorf("freeDiameter went OPEN: %q", open)
		}
	})
	t.Run("CER without a common application: CEA 5010", func(t *testing.T) {
		v := map[string]string{"EXTRA": "NoRelay;"} // then it offers no application at all
		for k, x := range vars {
			v[k] = x
		}
		fd := startFreeDiameter(t, "peer.conf", v)
		cea := fd.waitFor(t, 5*time.Second, "CEA", fdRcv(hssHost, "Capabilities-Exchange-Answer(257)[----]", "'DIAMETER_NO_COMMON_APPLICATION' (5010"))
		fdCheckCapabilities(t, cea)
		fd.waitExit(t)
		if open := fd.lines(0, regexp.MustCompile(fdOpen(hssHost))); len(open) > 0 {
			t.Errorf("freeDiameter went OPEN: %q", open)
		}
	})

	t.Run("CER offering only in-band TLS: CEA 5017", func(t *testing.T) {
		// freeDiameter's TLS_old_method: its CER offers Inband-Security-Id
		// TLS and nothing else, and it starts TLS after a successful
		// CEA. A node without TLS has no security mechanism in common
		// with it and MUST answer 5017 DIAMETER_NO_COMMON_SECURITY (RFC
		// 6733 §5.3). (Answered 2001 instead, freeDiameter sends its TLS
		// ClientHello, which our node reads as a Diameter message of
		// version 22, and freeDiameter 1.2.1 aborts on an assertion.)
		cert, key := fdSelfSignedCert(t, fdHost)
		v := map[string]string{"PEER_SECURITY": "TLS_old_method",
			"EXTRA": fmt.Sprintf("TLS_Cred = %q, %q;\nTLS_CA = %q;", cert, key, cert)}
		for k, x := range vars {
			v[k] = x
		}
		fd := startFreeDiameter(t, "peer.conf", v)
		cer := fd.waitFor(t, 5*time.Second, "CER", fdSnd(hssHost, "Capabilities-Exchange-Request", "Inband-Security-Id(299)[-M]='TLS' (1"))
		if strings.Contains(cer, "NO_INBAND_SECURITY") {
			t.Fatalf("freeDiameter offers NO_INBAND_SECURITY as well: %s", cer)
		}
		cea := fd.waitFor(t, 5*time.Second, "CEA", fdRcv(hssHost, "Capabilities-Exchange-Answer"))
		if !strings.Contains(cea, "'DIAMETER_NO_COMMON_SECURITY' (5017") {
			t.Errorf("RFC 6733 §5.3: a CER offering only Inband-Security-Id TLS to a node without TLS must get CEA 5017, got:\n%s", cea)
		} else {
			fdCheckCapabilities(t, cea)
		}
		fd.waitExit(t)
		if open := fd.lines(0, regexp.MustCompile(fdOpen(hssHost))); len(open) > 0 {
			t.Errorf("freeDiameter went OPEN: %q", open)
		}
	})

	fd := startFreeDiameter(t, "peer.conf", vars)
	t.Run("CER/CEA", func(t *testing.T) {
		fd.waitFor(t, 10*time.Second, "peer OPEN", fdOpen(hssHost))
		cea := fd.waitFor(t, time.Second, "CEA", fdRcv(hssHost, "Capabilities-Exchange-Answer", "'DIAMETER_SUCCESS'"))
		fdCheckCapabilities(t, cea, 16777216, 16777217)
		// The HSS has no peer status page: its log shows the peer.
		fdWaitProcLog(t, hss, 2*time.Second, "freeDiameter open", `(?i)peer open.*`+regexp.QuoteMeta(fdHost))
	})
	t.Run("DWR from freeDiameter, DWA from the HSS", func(t *testing.T) {
		fd.waitFor(t, 12*time.Second, "DWR sent", fdSnd(hssHost, "Device-Watchdog-Request"))
		dwa := fd.waitFor(t, 2*time.Second, "DWA", fdRcv(hssHost, "Device-Watchdog-Answer", "'DIAMETER_SUCCESS'"))
		for _, w := range []string{`Origin-Host(264)[-M]="` + hssHost + `"`, `Origin-State-Id(278)[-M]=`} {
			if !strings.Contains(dwa, w) {
				t.Errorf("DWA lacks %s: %s", w, dwa)
			}
		}
	})
	t.Run("RTR and PPR from the HSS", func(t *testing.T) {
		impi, impu, tel := "fdsub@"+domain, "sip:fdsub@"+domain, "tel:+15550199"
		l.imsctl("subscriber", "add", "--impi", impi, "--impu", impu, "--impu", tel, "--password", "pw")
		// The IMPUs are registered at an S-CSCF whose Diameter identity
		// is freeDiameter's (what a SAR from it would have stored).
		pgtest.Exec(t, l.dsn, fmt.Sprintf(`
			INSERT INTO scscf_assignment (impu_id, scscf_name, diameter_host, impi_id)
			SELECT u.id, 'sip:%[1]s:5060', '%[1]s', (SELECT id FROM impi WHERE identity = '%[2]s')
			FROM impu u WHERE u.identity IN ('%[3]s', '%[4]s');
			UPDATE impu SET user_state = 'registered' WHERE identity IN ('%[3]s', '%[4]s')`, fdHost, impi, impu, tel))
		l.imsctl("push-profile", impu)
		fd.waitFor(t, 10*time.Second, "PPR", fdRcv(hssHost, "(no model) unknown(16777216/305)[RP--]"))
		fd.waitFor(t, 2*time.Second, "PPA 3007", fdSnd(hssHost, "(no model) unknown(16777216/305)[--E-]", "'DIAMETER_APPLICATION_UNSUPPORTED'"))
		l.imsctl("deregister", "--reason", "freeDiameter interop", impu)
		fd.waitFor(t, 10*time.Second, "RTR", fdRcv(hssHost, "(no model) unknown(16777216/304)[RP--]"))
		fd.waitFor(t, 2*time.Second, "RTA 3007", fdSnd(hssHost, "(no model) unknown(16777216/304)[--E-]", "'DIAMETER_APPLICATION_UNSUPPORTED'"))
		// The HSS read both answers (and keeps the commands to retry).
		fdWaitProcLog(t, hss, 2*time.Second, "PPA result", `PPA .*`+regexp.QuoteMeta(fdHost)+`.*3007`)
		fdWaitProcLog(t, hss, 2*time.Second, "RTA result", `RTA .*`+regexp.QuoteMeta(fdHost)+`.*3007`)
	})
	t.Run("DPR from freeDiameter, DPA from the HSS", func(t *testing.T) {
		fd.waitExit(t)
		fd.waitFor(t, 0, "DPR sent", fdSnd(hssHost, "Disconnect-Peer-Request", "Disconnect-Cause(273)[-M]="))
		fd.waitFor(t, 0, "DPA", fdRcv(hssHost, "Disconnect-Peer-Answer", "'DIAMETER_SUCCESS'"))
	})
	fdCheckDecoded(t, fd.report(0, hssHost), "16777216")

	fd2 := startFreeDiameter(t, "peer.conf", vars)
	t.Run("DPR from the HSS, DPA from freeDiameter", func(t *testing.T) {
		fd2.waitFor(t, 10*time.Second, "peer OPEN again", fdOpen(hssHost))
		hss.stop()
		if hss.err != nil {
			t.Errorf("hss exit: %v", hss.err)
		}
		fd2.waitFor(t, 2*time.Second, "DPR received", fdRcv(hssHost, "Disconnect-Peer-Request", "Disconnect-Cause(273)[-M]="))
		fd2.waitFor(t, 2*time.Second, "DPA sent", fdSnd(hssHost, "Disconnect-Peer-Answer", "'DIAMETER_SUCCESS'"))
	})
	fd2.waitExit(t)
	fdCheckDecoded(t, fd2.report(0, hssHost))

	pcap := stopCapture()
	diamtest.AssertNoMalformed(t, pcap, hssPort)
	// Wireshark has the Cx dictionary freeDiameter lacks: the RTR's
	// AVPs decode there.
	out := diamtest.Read(t, pcap, hssPort, "-Y", "diameter.cmd.code == 304 && diameter.flags.request == 1",
		"-T", "fields", "-e", "diameter.Public-Identity", "-e", "diameter.Reason-Info")
	if !strings.Contains(out, "sip:fdsub@"+domain) || !strings.Contains(out, "freeDiameter interop") {
		t.Errorf("tshark does not decode the RTR's Public-Identity and Reason-Info: %q", out)
	}
}

// TestFreeDiameterPCSCF: freeDiameter as the PCRF of our P-CSCF's Rx
// client: CER/CEA (the P-CSCF is ready only with its PCRF peer open), an
// AAR for the signalling flows after a UE registers (answered 3007, which
// the P-CSCF counts), freeDiameter's DWR answered, DPR from freeDiameter
// answered and the P-CSCF reconnecting, DPR from the P-CSCF when it stops
// answered; freeDiameter decodes every message with its dictionaries and
// Wireshark finds nothing malformed.
func TestFreeDiameterPCSCF(t *testing.T) {
	t.Parallel()
	needFreeDiameter(t)
	fdPort := freePort(t)
	pcscfHost := "pcscf." + domain
	stopCapture := diamtest.Capture(t, fdPort)
	vars := map[string]string{"PORT": strconv.Itoa(fdPort)}
	fd := startFreeDiameter(t, "listen.conf", vars, pcscfHost)
	// newPCSCFLabArgs waits for the P-CSCF's /readyz, which needs the
	// PCRF peer open.
	l := newPCSCFLabArgs(t, freePort(t), nil, []string{"--rx", "best-effort",
		"--pcrf-addr", fmt.Sprintf("127.0.0.1:%d", fdPort), "--pcrf-host", fdHost, "--pcrf-realm", domain})

	t.Run("CER/CEA", func(t *testing.T) {
		fd.waitFor(t, 2*time.Second, "peer OPEN", fdOpen(pcscfHost))
		cer := fd.waitFor(t, time.Second, "CER", `^RCV from '<unknown peer>': Capabilities-Exchange-Request.*`+regexp.QuoteMeta(`Origin-Host(264)[-M]="`+pcscfHost+`"`))
		fdCheckCapabilities(t, cer, 16777236)
		fd.waitFor(t, time.Second, "CEA sent", fdSnd(pcscfHost, "Capabilities-Exchange-Answer", "'DIAMETER_SUCCESS'"))
	})
	t.Run("AAR after a registration", func(t *testing.T) {
		l.imsctl("subscriber", "add", "--impi", "fdue@"+domain, "--impu", "sip:fdue@"+domain, "--password", "pw-fdue")
		registerMD5UDP(t, l.pcscf, "fdue", "pw-fdue")
		aar := fd.waitFor(t, 5*time.Second, "AAR", fdRcv(pcscfHost, "AA-Request(16777236/265)[RP--]"))
		for _, w := range []string{`Auth-Application-Id(258)[-M]=16777236`, `Destination-Host(293)[-M]="` + fdHost + `"`,
			`Media-Component-Description(10415/517)[VM]={ Media-Component-Number(10415/518)[VM]=0`,
			`Flow-Usage(10415/512)[VM]=2 (0x2)`, `Subscription-Id(443)[-M]=`, `"sip:fdue@` + domain + `"`} {
			if !strings.Contains(aar, w) {
				t.Errorf("AAR as freeDiameter decoded it lacks %s:\n%s", w, aar)
			}
		}
		fd.waitFor(t, 2*time.Second, "AAA 3007", fdSnd(pcscfHost, "AA-Answer(16777236/265)[--E-]", "'DIAMETER_APPLICATION_UNSUPPORTED'"))
		if v := l.waitMetric("pcscf", `pcscf_rx_requests_total{command="AAR",result="3007"}`, 2*time.Second, func(v float64) bool { return v == 1 }); v != 1 {
			t.Errorf("P-CSCF counted %v AAR answers 3007, want 1", v)
		}
	})
	t.Run("DWR from freeDiameter, DWA from the P-CSCF", func(t *testing.T) {
		fd.waitFor(t, 12*time.Second, "DWR sent", fdSnd(pcscfHost, "Device-Watchdog-Request"))
		fd.waitFor(t, 2*time.Second, "DWA", fdRcv(pcscfHost, "Device-Watchdog-Answer", "'DIAMETER_SUCCESS'"))
	})
	t.Run("DPR from freeDiameter, DPA from the P-CSCF", func(t *testing.T) {
		fd.waitExit(t)
		fd.waitFor(t, 0, "DPR sent", fdSnd(pcscfHost, "Disconnect-Peer-Request", "Disconnect-Cause(273)[-M]="))
		fd.waitFor(t, 0, "DPA", fdRcv(pcscfHost, "Disconnect-Peer-Answer", "'DIAMETER_SUCCESS'"))
	})
	fdCheckDecoded(t, fd.report(0, pcscfHost))

	fd2 := startFreeDiameter(t, "listen.conf", vars, pcscfHost)
	t.Run("DPR from the P-CSCF, DPA from freeDiameter", func(t *testing.T) {
		fd2.waitFor(t, 10*time.Second, "P-CSCF reconnected", fdOpen(pcscfHost))
		l.waitReady("pcscf", 2*time.Second)
		p := l.procs["pcscf"]
		p.stop()
		if p.err != nil {
			t.Errorf("pcscf exit: %v", p.err)
		}
		fd2.waitFor(t, 2*time.Second, "DPR received", fdRcv(pcscfHost, "Disconnect-Peer-Request", "Disconnect-Cause(273)[-M]="))
		fd2.waitFor(t, 2*time.Second, "DPA sent", fdSnd(pcscfHost, "Disconnect-Peer-Answer", "'DIAMETER_SUCCESS'"))
	})
	fd2.waitExit(t)
	fdCheckDecoded(t, fd2.report(0, pcscfHost))

	pcap := stopCapture()
	diamtest.AssertNoMalformed(t, pcap, fdPort)
	if diamtest.Read(t, pcap, fdPort, "-Y", "diameter.cmd.code == 265") == "" {
		t.Error("no AAR/AAA in the capture")
	}
}

// registerMD5UDP registers user@domain (SIP digest MD5, RFC 2617 qop=auth)
// through the P-CSCF on UDP port pcscf from a socket of its own, the way
// a softphone without AKA does, and fails unless the answer is 200.
func registerMD5UDP(t *testing.T, pcscf int, user, password string) {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: pcscf}
	port := conn.LocalAddr().(*net.UDPAddr).Port
	impi, callID, tag := user+"@"+domain, fmt.Sprintf("fd-%d@127.0.0.1", time.Now().UnixNano()), strconv.Itoa(port)
	send := func(cseq int, authz string) (int, string) {
		msg := fmt.Sprintf("REGISTER sip:%[1]s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP 127.0.0.1:%[2]d;rport;branch=z9hG4bK-fd-%[3]d-%[4]d\r\n"+
			"Max-Forwards: 70\r\n"+
			"From: <sip:%[5]s>;tag=%[6]s\r\n"+
			"To: <sip:%[5]s>\r\n"+
			"Call-ID: %[7]s\r\n"+
			"CSeq: %[4]d REGISTER\r\n"+
			"Contact: <sip:%[8]s@127.0.0.1:%[2]d>\r\n"+
			"Expires: 600\r\n"+
			"Authorization: %[9]s\r\n"+
			"Content-Length: 0\r\n\r\n",
			domain, port, time.Now().UnixNano(), cseq, impi, tag, callID, user, authz)
		if _, err := conn.WriteToUDP([]byte(msg), dst); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 65535)
		for {
			conn.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				t.Fatalf("REGISTER %d: no final response: %v", cseq, err)
			}
			res := string(buf[:n])
			var code int
			if _, err := fmt.Sscanf(res, "SIP/2.0 %d", &code); err != nil || !strings.Contains(res, fmt.Sprintf("\r\nCSeq: %d REGISTER", cseq)) {
				continue
			}
			if code >= 200 {
				return code, res
			}
		}
	}
	code, res := send(1, fmt.Sprintf(`Digest username="%s", realm="%s", nonce="", uri="sip:%s", response=""`, impi, domain, domain))
	if code != 401 {
		t.Fatalf("first REGISTER: %d, want 401:\n%s", code, res)
	}
	ch := regexp.MustCompile(`(?mi)^WWW-Authenticate:\s*Digest\s+(.*)$`).FindStringSubmatch(res)
	if ch == nil {
		t.Fatalf("401 without a digest challenge:\n%s", res)
	}
	params := map[string]string{}
	for _, m := range regexp.MustCompile(`(\w+)=(?:"([^"]*)"|([^,\s]+))`).FindAllStringSubmatch(ch[1], -1) {
		params[strings.ToLower(m[1])] = m[2] + m[3]
	}
	h := func(s string) string { s16 := md5.Sum([]byte(s)); return hex.EncodeToString(s16[:]) }
	uri, nc, cnonce := "sip:"+domain, "00000001", "0a4f113b"
	ha1, ha2 := h(impi+":"+params["realm"]+":"+password), h("REGISTER:"+uri)
	authz := fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=MD5`, impi, params["realm"], params["nonce"], uri)
	if strings.Contains(params["qop"], "auth") {
		authz += fmt.Sprintf(`, response="%s", qop=auth, nc=%s, cnonce="%s"`, h(ha1+":"+params["nonce"]+":"+nc+":"+cnonce+":auth:"+ha2), nc, cnonce)
	} else {
		authz += fmt.Sprintf(`, response="%s"`, h(ha1+":"+params["nonce"]+":"+ha2))
	}
	if op, ok := params["opaque"]; ok {
		authz += fmt.Sprintf(`, opaque="%s"`, op)
	}
	if code, res := send(2, authz); code != 200 {
		t.Fatalf("REGISTER with credentials: %d, want 200:\n%s", code, res)
	}
}

// TestFreeDiameterDetectsBadAVP is the control of the log checks above: a
// probe peer written here sends freeDiameter a clean AAR, then AARs with a
// deliberately bad AVP, and report must find nothing in the first and the
// bad AVP in each of the others.
func TestFreeDiameterDetectsBadAVP(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	probe := "probe." + domain
	fd := startFreeDiameter(t, "listen.conf", map[string]string{"PORT": strconv.Itoa(port)}, probe)
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const mbit, vendor3GPP = 0x40, 10415
	oh, or := rawAVP{code: 264, flags: mbit, data: []byte(probe)}, rawAVP{code: 296, flags: mbit, data: []byte(domain)}
	hbh := uint32(0)
	exchange := func(cmd, app uint32, flags byte, avps ...rawAVP) []byte {
		t.Helper()
		hbh++
		if _, err := c.Write(rawMessage(flags, cmd, app, hbh, avps...)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		ans, err := readRawMessage(c)
		if err != nil {
			t.Fatalf("answer to command %d: %v", cmd, err)
		}
		return ans
	}
	cea := exchange(257, 0, 0x80, oh, or, rawAVP{code: 257, flags: mbit, data: []byte{0, 1, 127, 0, 0, 1}},
		rawAVP{code: 266, flags: mbit, data: rawU32(0)}, rawAVP{code: 269, data: []byte("imscore-e2e-probe")},
		rawAVP{code: 260, flags: mbit, data: rawGroup(rawAVP{code: 266, flags: mbit, data: rawU32(vendor3GPP)},
			rawAVP{code: 258, flags: mbit, data: rawU32(16777236)})})
	if code := rawResultCode(cea); code != 2001 {
		t.Fatalf("CEA Result-Code %d", code)
	}
	fd.waitFor(t, 2*time.Second, "probe OPEN", fdOpen(probe))

	mcd := func(number []byte) rawAVP {
		return rawAVP{code: 517, vendor: vendor3GPP, flags: mbit, data: rawGroup(
			rawAVP{code: 518, vendor: vendor3GPP, flags: mbit, data: number},
			rawAVP{code: 519, vendor: vendor3GPP, flags: mbit, data: rawGroup(
				rawAVP{code: 509, vendor: vendor3GPP, flags: mbit, data: rawU32(1)},
				rawAVP{code: 507, vendor: vendor3GPP, flags: mbit, data: []byte("permit out 17 from 127.0.0.1 5060 to 127.0.0.1 5062")},
				rawAVP{code: 512, vendor: vendor3GPP, flags: mbit, data: rawU32(2)})})}
	}
	aar := func(n int, extra ...rawAVP) []rawAVP {
		return append([]rawAVP{
			{code: 263, flags: mbit, data: []byte(fmt.Sprintf("%s;1;%d", probe, n))},
			{code: 258, flags: mbit, data: rawU32(16777236)}, oh, or,
			{code: 293, flags: mbit, data: []byte(fdHost)}, {code: 283, flags: mbit, data: []byte(domain)}}, extra...)
	}
	for _, tc := range []struct {
		name string
		avps []rawAVP
		want string // in a problem line; "" for none
	}{
		{"clean AAR", aar(1, mcd(rawU32(0))), ""},
		{"unknown mandatory 3GPP AVP", aar(2, mcd(rawU32(0)), rawAVP{code: 65000, vendor: vendor3GPP, flags: mbit, data: rawU32(7)}), "Unsupported AVP"},
		{"Unsigned32 AVP of 3 octets", aar(3, mcd([]byte{0, 0, 1})), "Invalid length"},
		{"3GPP AVP sent without its vendor", aar(4, mcd(rawU32(0)), rawAVP{code: 518, flags: mbit, data: rawU32(1)}), "Unsupported AVP"},
	} {
		from := fd.mark()
		ans := exchange(265, 16777236, 0xc0, tc.avps...)
		if code := rawResultCode(ans); code != 3007 {
			t.Errorf("%s: answer %d, want 3007", tc.name, code)
		}
		fd.waitForFrom(t, from, 2*time.Second, tc.name+": AAA logged", fdSnd(probe, "AA-Answer"))
		r := fd.report(from, probe)
		if r.received != 1 || len(r.unknownCommands) != 0 {
			t.Errorf("%s: %d messages received, unknown commands %q", tc.name, r.received, r.unknownCommands)
		}
		t.Logf("%s: freeDiameter reports %q", tc.name, r.problems)
		found := false
		for _, p := range r.problems {
			found = found || tc.want != "" && strings.Contains(p, tc.want)
		}
		switch {
		case tc.want == "" && len(r.problems) > 0:
			t.Errorf("%s: problems reported: %q", tc.name, r.problems)
		case tc.want != "" && !found:
			t.Errorf("%s: no problem with %q reported: %q", tc.name, tc.want, r.problems)
		}
	}
	exchange(282, 0, 0x80, oh, or, rawAVP{code: 273, flags: mbit, data: rawU32(2)})
}

// rawAVP is an AVP encoded by hand (RFC 6733 §4.1), right or wrong on
// purpose: the V bit and Vendor-Id are set when vendor is not 0.
type rawAVP struct {
	code, vendor uint32
	flags        byte
	data         []byte
}

func (a rawAVP) encode() []byte {
	hl := 8
	if a.vendor != 0 {
		hl = 12
	}
	b := make([]byte, hl, hl+len(a.data)+3)
	binary.BigEndian.PutUint32(b, a.code)
	l := uint32(hl + len(a.data))
	binary.BigEndian.PutUint32(b[4:], l)
	b[4] = a.flags
	if a.vendor != 0 {
		b[4] |= 0x80
		binary.BigEndian.PutUint32(b[8:], a.vendor)
	}
	b = append(b, a.data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func rawGroup(avps ...rawAVP) []byte {
	var b []byte
	for _, a := range avps {
		b = append(b, a.encode()...)
	}
	return b
}

func rawU32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

// rawMessage encodes a Diameter message (version 1, header flags flags).
func rawMessage(flags byte, cmd, app, hbh uint32, avps ...rawAVP) []byte {
	body := rawGroup(avps...)
	b := make([]byte, 20, 20+len(body))
	binary.BigEndian.PutUint32(b, uint32(20+len(body)))
	b[0] = 1
	binary.BigEndian.PutUint32(b[4:], cmd)
	b[4] = flags
	binary.BigEndian.PutUint32(b[8:], app)
	binary.BigEndian.PutUint32(b[12:], hbh)
	binary.BigEndian.PutUint32(b[16:], hbh)
	return append(b, body...)
}

func readRawMessage(r io.Reader) ([]byte, error) {
	h := make([]byte, 20)
	if _, err := io.ReadFull(r, h); err != nil {
		return nil, err
	}
	l := int(binary.BigEndian.Uint32(h) & 0xffffff)
	if l < 20 {
		return nil, fmt.Errorf("message length %d", l)
	}
	m := make([]byte, l)
	copy(m, h)
	_, err := io.ReadFull(r, m[20:])
	return m, err
}

// rawResultCode returns the top-level Result-Code of message m (0 if none).
func rawResultCode(m []byte) uint32 {
	for b := m[20:]; len(b) >= 8; {
		code, l := binary.BigEndian.Uint32(b), int(binary.BigEndian.Uint32(b[4:])&0xffffff)
		if l < 8 || l > len(b) {
			return 0
		}
		hl := 8
		if b[4]&0x80 != 0 {
			hl = 12
		}
		if code == 268 && l == hl+4 {
			return binary.BigEndian.Uint32(b[hl:])
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return 0
}

// fdSelfSignedCert writes a throw-away self-signed ECDSA certificate for cn
// and its key (PEM) into a temporary directory.
func fdSelfSignedCert(t *testing.T, cn string) (certFile, keyFile string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:        true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}
