package sipproxy

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
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
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	uas := exec.CommandContext(ctx, sipp, "-sf", filepath.Join("testdata", "sipp_register_uas.xml"),
		"-i", "127.0.0.1", "-p", portStr(uasPort), "-m", "1", "-trace_err", "-error_file", filepath.Join(dir, "uas_err.log"), "-trace_logs", "-log_file", filepath.Join(dir, "uas_log.log"), "-nostdin")
	uasOut, _ := os.Create(filepath.Join(dir, "uas.out"))
	uas.Stdout, uas.Stderr = uasOut, uasOut
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	uac := exec.CommandContext(ctx, sipp, "127.0.0.1:"+portStr(p.Addr("udp").Port),
		"-sf", filepath.Join("testdata", "sipp_register_uac.xml"),
		"-i", "127.0.0.1", "-m", "1", "-trace_err", "-error_file", filepath.Join(dir, "uac_err.log"), "-nostdin")
	out, err := uac.CombinedOutput()
	if err != nil {
		t.Errorf("sipp UAC failed: %v\n%s", err, tail(out))
	}
	if err := uas.Wait(); err != nil {
		b, _ := os.ReadFile(filepath.Join(dir, "uas.out"))
		e, _ := os.ReadFile(filepath.Join(dir, "uas_err.log"))
		t.Errorf("sipp UAS failed: %v\n%s\n%s", err, tail(b), e)
	}
}

func tail(b []byte) []byte {
	if len(b) > 2000 {
		return b[len(b)-2000:]
	}
	return b
}
