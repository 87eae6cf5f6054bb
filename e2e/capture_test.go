package e2e

import (
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/diameter/diamtest"
)

// TestDiameterCaptureClean captures the Cx traffic of registrations,
// a de-registration and an unknown user on the HSS port and checks that
// Wireshark's dissector finds nothing malformed (UAR/UAA, MAR/MAA,
// SAR/SAA, CER/CEA, DWR/DWA, DPR/DPA).
func TestDiameterCaptureClean(t *testing.T) {
	needSipp(t)
	port := freePort(t)
	stop := diamtest.Capture(t, port)
	l := newLabOnHSSPort(t, port)
	l.addAKA("cap", "--impu", "tel:+15550001")
	l.imsctl("subscriber", "add", "--impi", "capmd5@"+domain, "--impu", "sip:capmd5@"+domain, "--password", "pw")
	l.sippAKA(t, "cap", 600)
	if ok, out, _ := l.sippRun(t, "register_md5.xml", []string{"capmd5;pw"}, 600); !ok {
		t.Fatalf("MD5 registration:\n%s", tail(out, 2000))
	}
	l.sippAKA(t, "cap", 0)
	if ok, out, _ := l.sippRun(t, "register_unknown.xml", []string{"nobody"}, 600); !ok {
		t.Fatalf("unknown user:\n%s", tail(out, 2000))
	}
	for _, n := range []string{"icscf", "scscf", "hss"} {
		l.procs[n].stop() // DPR/DPA
	}
	time.Sleep(200 * time.Millisecond)
	pcap := stop()
	diamtest.AssertNoMalformed(t, pcap, port)
	out := diamtest.Read(t, pcap, port, "-Y", "diameter.cmd.code == 303 || diameter.cmd.code == 301")
	if out == "" {
		t.Error("no MAR/SAR in the capture")
	}
}
