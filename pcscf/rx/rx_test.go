package rx

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
)

const offerFromNetwork = "v=0\r\no=bob 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n" +
	"m=audio 40000 RTP/AVP 116\r\nb=AS:49\r\na=rtpmap:116 AMR-WB/16000/1\r\na=sendrecv\r\n" +
	"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"

const answerFromUE = "v=0\r\no=alice 2 2 IN IP4 10.45.0.2\r\ns=-\r\nc=IN IP4 10.45.0.2\r\nt=0 0\r\n" +
	"m=audio 49170 RTP/AVP 116\r\nb=AS:41\r\na=rtpmap:116 AMR-WB/16000/1\r\na=recvonly\r\n" +
	"m=video 0 RTP/AVP 96\r\n"

// TestBuildAARTerminating: the UE answered (terminating side). Downlink
// is what the UE receives (its b=AS), uplink the far end's; "out" filters
// go to the UE, "in" filters come from it; a=recvonly in the UE's answer
// enables the downlink only; a rejected stream (port 0) is REMOVED.
func TestBuildAARTerminating(t *testing.T) {
	offer, err := ParseSDP([]byte(offerFromNetwork))
	if err != nil {
		t.Fatal(err)
	}
	answer, err := ParseSDP([]byte(answerFromUE))
	if err != nil {
		t.Fatal(err)
	}
	avps := BuildAAR(Session{ICID: "icid-1", IMPU: "sip:alice@ims.test", Offer: offer, Answer: answer, UEOffered: false})
	mcds := diameter.FindIn(avps, diameter.AVPMediaComponentDescription)
	if len(mcds) != 2 {
		t.Fatalf("%d Media-Component-Descriptions, want 2", len(mcds))
	}
	audio := diameter.Children(mcds[0])
	want := map[diameter.AVPCode]uint32{
		diameter.AVPMediaComponentNumber:    1,
		diameter.AVPMediaType:               diameter.MediaAudio,
		diameter.AVPMaxRequestedBandwidthDL: 41000,
		diameter.AVPMaxRequestedBandwidthUL: 49000,
		diameter.AVPFlowStatus:              diameter.FlowEnabledDownlink,
	}
	for code, v := range want {
		f := diameter.FindIn(audio, code)
		if len(f) != 1 {
			t.Errorf("AVP %d: %d occurrences", code, len(f))
			continue
		}
		if got, _ := diameter.AsUint32(f[0]); got != v {
			t.Errorf("AVP %d = %d, want %d", code, got, v)
		}
	}
	var fds []string
	for _, f := range diameter.FindIn(audio, diameter.AVPMediaSubComponent, diameter.AVPFlowDescription) {
		fds = append(fds, string(f.Data.(datatype.IPFilterRule)))
	}
	wantFDs := []string{
		"permit out 17 from 198.51.100.7 40000 to 10.45.0.2 49170",
		"permit in 17 from 10.45.0.2 49170 to 198.51.100.7 40000",
		"permit out 17 from 198.51.100.7 40001 to 10.45.0.2 49171",
		"permit in 17 from 10.45.0.2 49171 to 198.51.100.7 40001",
	}
	if len(fds) != len(wantFDs) {
		t.Fatalf("Flow-Descriptions %q", fds)
	}
	for i := range fds {
		if fds[i] != wantFDs[i] {
			t.Errorf("Flow-Description %d = %q, want %q", i, fds[i], wantFDs[i])
		}
	}
	codecs := diameter.FindIn(audio, diameter.AVPCodecData)
	if len(codecs) != 2 {
		t.Fatalf("%d Codec-Data", len(codecs))
	}
	c0, _ := diameter.AsString(codecs[0])
	c1, _ := diameter.AsString(codecs[1])
	if c0[:len("downlink\noffer\n")] != "downlink\noffer\n" || c1[:len("uplink\nanswer\n")] != "uplink\nanswer\n" {
		t.Errorf("Codec-Data headers %q / %q", c0, c1)
	}
	video := diameter.Children(mcds[1])
	if f := diameter.FindIn(video, diameter.AVPFlowStatus); len(f) != 1 {
		t.Error("video without Flow-Status")
	} else if v, _ := diameter.AsUint32(f[0]); v != diameter.FlowRemoved {
		t.Errorf("rejected video Flow-Status %d, want REMOVED", v)
	}
	if f := diameter.FindIn(avps, diameter.AVPFramedIPAddress); len(f) != 0 {
		t.Error("Framed-IP-Address without a UE address")
	}
}

func TestParseSDPErrors(t *testing.T) {
	for _, body := range []string{"", "v=0\r\n", "m=audio\r\n", "m=audio x RTP/AVP 0\r\n", "c=IN\r\nm=audio 1 RTP/AVP 0\r\n"} {
		if _, err := ParseSDP([]byte(body)); err == nil {
			t.Errorf("ParseSDP(%q) succeeded", body)
		}
	}
}

// TestFramedAddress: the UE's address goes in Framed-IP-Address when it
// is IPv4 (an IPv4-mapped IPv6 address included) and in
// Framed-IPv6-Prefix (00, 128, the address) when it is IPv6, in both
// kinds of AAR.
func TestFramedAddress(t *testing.T) {
	for _, c := range []struct {
		ip   string
		code diameter.AVPCode
		data []byte
	}{
		{"10.45.0.2", diameter.AVPFramedIPAddress, []byte{10, 45, 0, 2}},
		{"::ffff:10.45.0.2", diameter.AVPFramedIPAddress, []byte{10, 45, 0, 2}},
		{"2001:db8:1:2::abcd", diameter.AVPFramedIPv6Prefix, append([]byte{0, 128}, net.ParseIP("2001:db8:1:2::abcd")...)},
	} {
		ip := net.ParseIP(c.ip)
		for name, avps := range map[string][]*diam.AVP{
			"media":      BuildAAR(Session{UEIP: ip}),
			"signalling": BuildSignallingAAR(SignallingSession{UEIP: ip}),
		} {
			other := diameter.AVPFramedIPAddress
			if c.code == other {
				other = diameter.AVPFramedIPv6Prefix
			}
			if n := len(diameter.FindIn(avps, other)); n != 0 {
				t.Errorf("%s %s: %d %v", name, c.ip, n, other)
			}
			f := diameter.FindIn(avps, c.code)
			if len(f) != 1 {
				t.Errorf("%s %s: %d %v, want 1", name, c.ip, len(f), c.code)
				continue
			}
			if got, _ := diameter.AsBytes(f[0]); !bytes.Equal(got, c.data) {
				t.Errorf("%s %s: %v % x, want % x", name, c.ip, c.code, got, c.data)
			}
		}
	}
}

// TestParseReAuth: a RAR's Specific-Actions, the Media-Component-Numbers
// of its Flows and the access network information it reports.
func TestParseReAuth(t *testing.T) {
	p, err := diameter.NewParser(diameter.AppRx)
	if err != nil {
		t.Fatal(err)
	}
	m := diam.NewRequest(diameter.CmdReAuth, uint32(diameter.AppRx), p)
	v := diameter.NewAVP
	m.AddAVP(v(diameter.AVPSessionID, datatype.UTF8String("pcscf.test;1;2")))
	m.AddAVP(v(diameter.AVPSpecificAction, datatype.Enumerated(ActionIndicationOfReleaseOfBearer)))
	m.AddAVP(v(diameter.AVPSpecificAction, datatype.Enumerated(ActionAccessNetworkInfoReport)))
	m.AddAVP(diameter.Grouped(diameter.AVPFlows, v(diameter.AVPMediaComponentNumber, datatype.Unsigned32(2)), v(diameter.AVPFlowNumber, datatype.Unsigned32(1))))
	m.AddAVP(v(diameter.AVPRATType, datatype.Enumerated(1004)))
	m.AddAVP(v(diameter.AVP3GPPUserLocationInfo, datatype.OctetString("\x82\x01")))
	m.AddAVP(v(diameter.AVP3GPPMSTimeZone, datatype.OctetString("\x40\x00")))
	r := parseReAuth(m)
	if r.SessionID != "pcscf.test;1;2" || fmt.Sprint(r.ActionNames()) != "[INDICATION_OF_RELEASE_OF_BEARER ACCESS_NETWORK_INFO_REPORT]" ||
		!r.Has(ActionIndicationOfReleaseOfBearer) || r.Has(ActionIndicationOfLossOfBearer) ||
		fmt.Sprint(r.Flows) != "[2]" || r.IPCANType != -1 || r.RATType != 1004 ||
		!bytes.Equal(r.UserLocationInfo, []byte{0x82, 1}) || !bytes.Equal(r.MSTimeZone, []byte{0x40, 0}) || r.SGSNMCCMNC != "" {
		t.Errorf("parseReAuth = %+v", r)
	}
	if ActionName(99) != "99" || ActionName(ActionIPCANChange) != "IP-CAN_CHANGE" {
		t.Errorf("ActionName(99) %q, (6) %q", ActionName(99), ActionName(ActionIPCANChange))
	}
}

// TestBuildAARRTCPAttribute: the RTCP Media-Sub-Component takes the ports
// (and addresses) of a=rtcp (RFC 3605) when the SDP has it, in its short
// form (port only) and its long form (port and connection address, IPv4
// or IPv6); without it, the RTP port + 1. Before, it was always + 1.
func TestBuildAARRTCPAttribute(t *testing.T) {
	const ueOffer = "v=0\r\no=alice 1 1 IN IP4 10.45.0.2\r\ns=-\r\nc=IN IP4 10.45.0.2\r\nt=0 0\r\n" +
		"m=audio 49170 RTP/AVP 116\r\na=rtcp:53000\r\na=rtpmap:116 AMR-WB/16000/1\r\n" +
		"m=video 51372 RTP/AVP 96\r\na=rtcp:53002 IN IP6 2001:DB8:0:0::2\r\na=rtcp-fb:96 nack\r\n" +
		"m=text 45020 RTP/AVP 98\r\na=rtpmap:98 t140/1000\r\n"
	const farAnswer = "v=0\r\no=bob 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\n" +
		"m=audio 40000 RTP/AVP 116\r\na=rtcp:40009 IN IP4 198.51.100.9\r\n" +
		"m=video 40002 RTP/AVP 96\r\na=rtcp:bad\r\n" +
		"m=text 40004 RTP/AVP 98\r\na=rtcp:40100\r\n"
	offer, err := ParseSDP([]byte(ueOffer))
	if err != nil {
		t.Fatal(err)
	}
	answer, err := ParseSDP([]byte(farAnswer))
	if err != nil {
		t.Fatal(err)
	}
	mcds := diameter.FindIn(BuildAAR(Session{Offer: offer, Answer: answer, UEOffered: true}), diameter.AVPMediaComponentDescription)
	if len(mcds) != 3 {
		t.Fatalf("%d Media-Component-Descriptions, want 3", len(mcds))
	}
	for i, want := range [][]string{
		{"permit out 17 from 198.51.100.7 40000 to 10.45.0.2 49170", "permit in 17 from 10.45.0.2 49170 to 198.51.100.7 40000",
			"permit out 17 from 198.51.100.9 40009 to 10.45.0.2 53000", "permit in 17 from 10.45.0.2 53000 to 198.51.100.9 40009"},
		{"permit out 17 from 198.51.100.7 40002 to 10.45.0.2 51372", "permit in 17 from 10.45.0.2 51372 to 198.51.100.7 40002",
			"permit out 17 from 198.51.100.7 40003 to 2001:db8::2 53002", "permit in 17 from 2001:db8::2 53002 to 198.51.100.7 40003"},
		{"permit out 17 from 198.51.100.7 40004 to 10.45.0.2 45020", "permit in 17 from 10.45.0.2 45020 to 198.51.100.7 40004",
			"permit out 17 from 198.51.100.7 40100 to 10.45.0.2 45021", "permit in 17 from 10.45.0.2 45021 to 198.51.100.7 40100"},
	} {
		var fds []string
		for _, f := range diameter.FindIn(diameter.Children(mcds[i]), diameter.AVPMediaSubComponent, diameter.AVPFlowDescription) {
			fds = append(fds, string(f.Data.(datatype.IPFilterRule)))
		}
		if fmt.Sprint(fds) != fmt.Sprint(want) {
			t.Errorf("media %d Flow-Descriptions\n%q, want\n%q", i, fds, want)
		}
	}
}

// TestBuildAARAtOffer: preliminary service information from an offer
// alone. The UE's direction is the offer's when the UE offered, its
// reverse when the network did (a sendonly offer is answered recvonly); a
// stream offered with port 0 is REMOVED; the unknown side is "any".
func TestBuildAARAtOffer(t *testing.T) {
	offer, err := ParseSDP([]byte(strings.Replace(offerFromNetwork, "a=sendrecv", "a=sendonly", 1)))
	if err != nil {
		t.Fatal(err)
	}
	status := func(avps []*diam.AVP) []uint32 {
		var out []uint32
		for _, f := range diameter.FindIn(avps, diameter.AVPMediaComponentDescription, diameter.AVPFlowStatus) {
			v, _ := diameter.AsUint32(f)
			out = append(out, v)
		}
		return out
	}
	term := BuildAAR(Session{Offer: offer})
	if got, want := status(term), []uint32{diameter.FlowEnabledDownlink, diameter.FlowRemoved}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("network offer: Flow-Status %v, want %v", got, want)
	}
	if f := diameter.FindIn(term, diameter.AVPServiceInfoStatus); len(f) != 1 {
		t.Error("no Service-Info-Status")
	} else if v, _ := diameter.AsUint32(f[0]); v != ServiceInfoPreliminary {
		t.Errorf("Service-Info-Status %d, want PRELIMINARY", v)
	}
	fds := diameter.FindIn(term, diameter.AVPMediaComponentDescription, diameter.AVPMediaSubComponent, diameter.AVPFlowDescription)
	if got := string(fds[0].Data.(datatype.IPFilterRule)); got != "permit out 17 from 198.51.100.7 40000 to any" {
		t.Errorf("first Flow-Description %q", got)
	}
	orig := BuildAAR(Session{Offer: offer, UEOffered: true})
	if got, want := status(orig), []uint32{diameter.FlowEnabledUplink, diameter.FlowRemoved}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("UE offer: Flow-Status %v, want %v", got, want)
	}
}
