package diameter

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/imscore/imscore/pkg/diameter/diamtest"
)

func TestTsharkDecodesUAR(t *testing.T) {
	hss := testNode(t, hssHost, nil)
	hss.Handle(CmdUserAuthorization, AppCx, uarHandler(hss))
	addr := listen(t, hss, "127.0.0.1:0")
	_, ps, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(ps)

	stop := diamtest.Capture(t, port)
	icscf := testNode(t, icscfHost, nil)
	connect(t, icscf, addr, hssHost)
	a := send(t, icscf, newUAR(icscf, testIMPU))
	if !IsSuccess(a) {
		t.Fatalf("UAA %v", a)
	}
	pcap := stop()

	diamtest.AssertNoMalformed(t, pcap, port)
	v := diamtest.Read(t, pcap, port, "-V")
	for _, want := range []string{"Capabilities-Exchange", "Command Code: User-Authorization (300)", "Public-Identity", testIMPU, "Server-Name", testServer} {
		if !strings.Contains(strings.ReplaceAll(v, "-", " "), strings.ReplaceAll(want, "-", " ")) {
			t.Errorf("tshark -V output lacks %q", want)
		}
	}
	if sum := diamtest.Read(t, pcap, port); !strings.Contains(sum, "User-Authorization Request") || !strings.Contains(sum, "User-Authorization Answer") {
		t.Errorf("tshark summary lacks the UAR/UAA:\n%s", sum)
	}
	if testing.Verbose() {
		t.Logf("tshark summary:\n%s", diamtest.Read(t, pcap, port))
	}
}
