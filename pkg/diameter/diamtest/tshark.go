// Package diamtest holds test helpers for Diameter code: capturing a
// loopback exchange with tshark and checking that Wireshark's dissector
// finds nothing malformed in it.
package diamtest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TSharkPath is the tshark binary used by the helpers.
var TSharkPath = "tshark"

func tshark(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath(TSharkPath)
	if err != nil {
		t.Skipf("tshark not available (%v): install the tshark package to run this test", err)
	}
	return p
}

// Capture starts tshark on the loopback interface for TCP port and waits
// until it is capturing. Call the returned stop function after the exchange:
// it stops tshark and returns the pcap path (in t.TempDir()). The test is
// skipped when tshark is missing or cannot capture (no permission).
func Capture(t testing.TB, port int) (stop func() (pcapPath string)) {
	t.Helper()
	return CaptureFilter(t, fmt.Sprintf("diameter-%d", port), fmt.Sprintf("tcp port %d", port))
}

// CaptureFilter is Capture for any capture filter (BPF syntax, e.g. "udp
// port 5060" for SIP), the pcap named name.pcap.
func CaptureFilter(t testing.TB, name, filter string) (stop func() (pcapPath string)) {
	t.Helper()
	bin := tshark(t)
	pcap := filepath.Join(t.TempDir(), name+".pcap")
	cmd := exec.Command(bin, "-i", "lo", "-f", filter, "-w", pcap)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start tshark: %v", err)
	}
	ready := make(chan error, 1)
	var log bytes.Buffer
	go func() {
		sc := bufio.NewScanner(stderr)
		signalled := false
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			if !signalled && strings.HasPrefix(line, "Capturing on") {
				signalled = true
				ready <- nil
			}
		}
		if !signalled {
			ready <- fmt.Errorf("tshark exited before capturing")
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			cmd.Wait()
			t.Skipf("tshark cannot capture on lo: %v\n%s", err, log.String())
		}
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		cmd.Wait()
		t.Skipf("tshark did not start capturing within 15s")
	}
	// The "Capturing on" line comes when the capture starts; give the
	// kernel filter a moment before traffic flows.
	time.Sleep(300 * time.Millisecond)
	stopped := false
	stopFn := func() string {
		if stopped {
			return pcap
		}
		stopped = true
		time.Sleep(300 * time.Millisecond) // let the last packets be written
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		return pcap
	}
	t.Cleanup(func() { stopFn() })
	return stopFn
}

// Read runs tshark on pcap decoding TCP port as Diameter with extra
// arguments (e.g. "-V", or "-Y", filter) and returns its standard output.
func Read(t testing.TB, pcap string, port int, args ...string) string {
	t.Helper()
	bin := tshark(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := append([]string{"-r", pcap, "-d", fmt.Sprintf("tcp.port==%d,diameter", port)}, args...)
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, all...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("tshark %s: %v\n%s", strings.Join(all, " "), err, errb.String())
	}
	return out.String()
}

// AssertNoMalformed fails the test when Wireshark's dissector reports a
// malformed packet or any expert-info item of severity warning or error in
// pcap (see AssertClean), or when the capture holds no Diameter message.
func AssertNoMalformed(t testing.TB, pcap string, port int) {
	t.Helper()
	AssertClean(t, pcap, port)
}

// Expert-info severities (Wireshark's epan/proto.h PI_WARN, PI_ERROR).
const (
	severityWarn = 0x600000
)

// AssertClean fails the test when the capture holds no Diameter message,
// or when tshark reports any malformed packet, or any expert-info item of
// severity warning or above in a Diameter frame (not only "malformed": an
// empty or undecodable AVP shows as a warning), except items about
// Kamailio's vendor-50 AVP 494.
// port is decoded as Diameter in addition to 3868.
func AssertClean(t testing.TB, pcap string, port int) {
	t.Helper()
	if n := strings.TrimSpace(Read(t, pcap, port, "-Y", "diameter")); n == "" {
		t.Errorf("capture %s holds no Diameter message", pcap)
	}
	// TCP's own warnings (a RST answering a connect before the server
	// listened) are not about what we send; Diameter frames are judged.
	filter := fmt.Sprintf("_ws.malformed || (diameter && _ws.expert.severity >= %#x)", severityWarn)
	out := Read(t, pcap, port, "-Y", filter, "-T", "fields", "-E", "separator=|", "-E", "aggregator=~",
		"-e", "frame.number", "-e", "_ws.expert.message", "-e", "diameter.avp.code", "-e", "diameter.avp.vendorId")
	var bad []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" || kamailioAVP494Only(line) {
			continue
		}
		bad = append(bad, line)
	}
	if len(bad) > 0 {
		t.Errorf("tshark reports %d packet(s) with warnings or errors (frame|expert messages|AVP codes|AVP vendors):\n%s\nfull decode:\n%s",
			len(bad), strings.Join(bad, "\n"), Read(t, pcap, port, "-V", "-Y", filter))
	}
}

// kamailioAVP494Only reports whether every expert message of a line of
// AssertClean's field output (frame|messages|AVP codes|AVP vendors, lists
// joined by "~") is tshark 4.0's complaint about Kamailio's AVP 494 of
// vendor 50: "Unknown AVP 494 (vendor=...)" and, once per such AVP,
// "Unknown Vendor, ...", in a frame that carries a vendor-50 AVP.
func kamailioAVP494Only(line string) bool {
	f := strings.Split(line, "|")
	if len(f) < 4 || f[1] == "" {
		return false
	}
	avp494 := 0
	for _, c := range strings.Split(f[2], "~") {
		if c == "494" {
			avp494++
		}
	}
	vendor50 := false
	for _, v := range strings.Split(f[3], "~") {
		vendor50 = vendor50 || v == "50"
	}
	unknownVendor := 0
	for _, m := range strings.Split(f[1], "~") {
		switch {
		case strings.HasPrefix(m, "Unknown AVP 494 (vendor="):
		case strings.HasPrefix(m, "Unknown Vendor,"):
			unknownVendor++
		default:
			return false
		}
	}
	return vendor50 && avp494 > 0 && unknownVendor <= avp494
}
