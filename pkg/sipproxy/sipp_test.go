package sipproxy

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/siptest"
)

// TestSippRegisterThroughProxy runs sipp as UAC and as UAS (registrar) with
// the proxy in between; the UAS scenario checks the Contact parameters
// arrive unchanged. Both sipp processes must exit 0.
func TestSippRegisterThroughProxy(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed (Debian package sip-tester); skipping the sipp interop test")
	}
	// Pick a free UDP port for the sipp UAS.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	uasPort := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()

	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		_, _ = tx.Forward(ctx, ForwardOptions{}, Target{NextHop: &sip.Uri{Host: "127.0.0.1", Port: uasPort}})
	})
	dir := t.TempDir()
	runSippPair(t, sipp, dir,
		[]string{"-sf", testdataPath(t, "sipp_register_uas.xml"), "-i", "127.0.0.1", "-p", portStr(uasPort), "-m", "1", "-trace_err",
			"-error_file", filepath.Join(dir, "uas_err.log"), "-trace_logs", "-log_file", filepath.Join(dir, "uas_log.log"), "-nostdin"},
		[]string{"127.0.0.1:" + portStr(p.Addr("udp").Port), "-sf", testdataPath(t, "sipp_register_uac.xml"),
			"-i", "127.0.0.1", "-m", "1", "-trace_err", "-error_file", filepath.Join(dir, "uac_err.log"), "-nostdin"})
	if t.Failed() {
		e, _ := os.ReadFile(filepath.Join(dir, "uas_err.log"))
		t.Logf("UAS errors:\n%s", e)
	}
}

// runSippPair runs sipp with uasArgs (started first), then sipp with
// uacArgs to its end, both in dir, and fails the test unless both exit 0
// within 20 s.
func runSippPair(t *testing.T, sipp, dir string, uasArgs, uacArgs []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	uas := exec.CommandContext(ctx, sipp, uasArgs...)
	uas.Dir = dir
	uasOut, _ := os.Create(filepath.Join(dir, "uas.out"))
	uas.Stdout, uas.Stderr = uasOut, uasOut
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	uac := exec.CommandContext(ctx, sipp, uacArgs...)
	uac.Dir = dir
	if out, err := uac.CombinedOutput(); err != nil {
		t.Errorf("sipp UAC failed: %v\n%s", err, tail(out))
	}
	if err := uas.Wait(); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "uas.out"))
		t.Errorf("sipp UAS failed: %v\n%s", err, tail(b))
	}
}

// testdataPath is the absolute path of testdata/name.
func testdataPath(t *testing.T, name string) string {
	t.Helper()
	a, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}

// TestSippAcceptedInvite has sipp judge the accepted INVITE (RFC 6026,
// accepted.go): sipp's UAS answers 180 and 200 and retransmits the 200
// until the ACK, which sipp's UAC sends 1.8 s late; the proxy must relay
// the retransmitted 200s upstream (sipp's UAC counts them as
// retransmissions of the 200 it received) and the ACK downstream. Both
// sipp processes must exit 0.
func TestSippAcceptedInvite(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		t.Skip("sipp not installed (Debian package sip-tester); skipping the sipp interop test")
	}
	uasPort := siptest.FreePort(t)
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
		_, _ = tx.Forward(ctx, ForwardOptions{}, Target{NextHop: &sip.Uri{Host: "127.0.0.1", Port: uasPort}})
	})
	dir := t.TempDir()
	runSippPair(t, sipp, dir,
		[]string{"-sf", testdataPath(t, "sipp_call_uas_2xx_retrans.xml"), "-i", "127.0.0.1", "-p", portStr(uasPort), "-m", "1", "-trace_err", "-nostdin"},
		[]string{"127.0.0.1:" + portStr(p.Addr("udp").Port), "-sf", testdataPath(t, "sipp_call_uac_late_ack.xml"),
			"-i", "127.0.0.1", "-m", "1", "-trace_err", "-trace_counts", "-nostdin"})
	counts, _ := filepath.Glob(filepath.Join(dir, "sipp_call_uac_late_ack_*_counts.csv"))
	if len(counts) != 1 {
		t.Fatalf("sipp counts file: %v", counts)
	}
	b, err := os.ReadFile(counts[0])
	if err != nil {
		t.Fatal(err)
	}
	if n := sippCount(t, string(b), "_200_Retrans"); n < 1 {
		t.Errorf("the UAC got no retransmission of the 200 (the UAS retransmits it until the late ACK):\n%s", b)
	}
}

// sippCount is the value, in the last row of a sipp -trace_counts file,
// of the column whose name ends with suffix.
func sippCount(t *testing.T, csv, suffix string) int {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	head := strings.Split(lines[0], ";")
	last := strings.Split(lines[len(lines)-1], ";")
	for i, h := range head {
		if strings.HasSuffix(h, suffix) && i < len(last) {
			n, _ := strconv.Atoi(strings.TrimSpace(last[i]))
			return n
		}
	}
	t.Fatalf("no column *%s in\n%s", suffix, csv)
	return 0
}
