package icscf

import (
	"bytes"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/diameter"
)

// TestVoLTERegisterKeptByteForByte sends the VoLTE REGISTER of
// pkg/sipproxy/testdata as a P-CSCF would, and checks that the S-CSCF gets
// every header except Via, Max-Forwards and Route exactly as sent: Path,
// Contact with +sip.instance and +g.3gpp.icsi-ref, Authorization...
func TestVoLTERegisterKeptByteForByte(t *testing.T) {
	fixture, err := os.ReadFile("../pkg/sipproxy/testdata/volte_register.txt")
	if err != nil {
		t.Fatal(err)
	}
	s1 := newTestSCSCF(t, "scscf1", nil)
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		return cxReply{code: diameter.DiameterFirstRegistration, experimental: true, serverName: s1.name}
	})
	ic, _ := startICSCF(t, hss.addr, []string{s1.spec()})
	waitReady(t, ic)

	pcscf, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer pcscf.Close()
	a := ic.SIPAddr("udp")
	if _, err := pcscf.WriteTo(fixture, &net.UDPAddr{IP: a.IP, Port: a.Port}); err != nil {
		t.Fatal(err)
	}
	var got []byte
	select {
	case got = <-s1.raw:
	case <-time.After(5 * time.Second):
		t.Fatal("S-CSCF got nothing")
	}
	mayChange := map[string]bool{"via": true, "max-forwards": true, "route": true}
	var sent, kept []string
	for _, l := range headerLines(t, fixture) {
		if !mayChange[hname(l)] {
			sent = append(sent, l)
		}
	}
	routes := 0
	for _, l := range headerLines(t, got) {
		switch hname(l) {
		case "route":
			routes++
			if l != "Route: <"+s1.name+";lr>" {
				t.Errorf("Route = %q", l)
			}
		case "record-route":
			t.Errorf("Record-Route added: %q", l)
		}
		if !mayChange[hname(l)] {
			kept = append(kept, l)
		}
	}
	if routes != 1 {
		t.Errorf("%d Route headers, want 1", routes)
	}
	if len(sent) != len(kept) {
		t.Fatalf("header count: sent %d, S-CSCF got %d\n%s", len(sent), len(kept), got)
	}
	for i := range sent {
		if sent[i] != kept[i] {
			t.Errorf("header %d changed:\n sent %q\n  got %q", i, sent[i], kept[i])
		}
	}
	for _, must := range []string{
		"Path: <sip:term@pcscf.ims.mnc001.mcc001.3gppnetwork.org:5060;lr>",
		`Contact: <sip:001010000000001@10.45.0.2:5060>;+sip.instance="<urn:gsma:imei:35614506-034612-0>";+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel";audio;video;expires=600000`,
		`Authorization: Digest username="001010000000001@ims.mnc001.mcc001.3gppnetwork.org",realm="ims.mnc001.mcc001.3gppnetwork.org",uri="sip:ims.mnc001.mcc001.3gppnetwork.org",nonce="",response=""`,
	} {
		if !bytes.Contains(got, []byte(must+"\r\n")) {
			t.Errorf("forwarded REGISTER lacks %q", must)
		}
	}
	if !bytes.HasPrefix(got, []byte("REGISTER sip:ims.mnc001.mcc001.3gppnetwork.org SIP/2.0\r\n")) {
		t.Errorf("Request-Line changed: %q", got[:bytes.IndexByte(got, '\n')])
	}

	// The UAR built from it.
	uars := hss.requests()
	want := cxSeen{cmd: diameter.CmdUserAuthorization,
		impu: "sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org",
		impi: "001010000000001@ims.mnc001.mcc001.3gppnetwork.org",
		vnid: "ims.mnc001.mcc001.3gppnetwork.org", uat: int(diameter.UATRegistration)}
	if len(uars) != 1 || uars[0] != want {
		t.Errorf("UAR = %+v, want %+v", uars, want)
	}

	// The S-CSCF's 200 back at the P-CSCF, its Via only.
	buf := make([]byte, 65535)
	_ = pcscf.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _, err := pcscf.ReadFrom(buf)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sip.ParseMessage(buf[:n])
	if err != nil {
		t.Fatal(err)
	}
	res, ok := msg.(*sip.Response)
	if !ok || res.StatusCode != 200 {
		t.Fatalf("P-CSCF got %s", buf[:n])
	}
	if vs := res.GetHeaders("Via"); len(vs) != 1 {
		t.Errorf("response has %d Via", len(vs))
	}
}

func headerLines(t *testing.T, raw []byte) []string {
	t.Helper()
	head, _, ok := bytes.Cut(raw, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("no CRLFCRLF in message:\n%s", raw)
	}
	return strings.Split(string(head), "\r\n")[1:]
}

func hname(line string) string {
	n, _, _ := strings.Cut(line, ":")
	return strings.ToLower(strings.TrimSpace(n))
}
