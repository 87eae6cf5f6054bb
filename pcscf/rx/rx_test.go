package rx

import (
	"testing"

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
