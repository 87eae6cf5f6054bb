package diameter

import (
	"testing"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
	"github.com/fiorix/go-diameter/v4/diam/dict"
)

func fuzzSeeds(t testing.TB) [][]byte {
	n, err := New(Config{OriginHost: "fuzz.test", OriginRealm: testRealm, Apps: []App{AppCx, AppSh, AppRx}})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []*diam.Message
	msgs = append(msgs, newUAR(n, testIMPU))
	mar := n.NewRequest(CmdMultimediaAuth, AppCx, testRealm, hssHost)
	mar.AddAVP(NewAVP(AVPUserName, datatype.UTF8String(testIMPI)))
	mar.AddAVP(NewAVP(AVPPublicIdentity, datatype.UTF8String(testIMPU)))
	mar.AddAVP(Grouped(AVPSIPAuthDataItem,
		NewAVP(AVPSIPAuthenticationScheme, datatype.UTF8String("Digest-AKAv1-MD5")),
		NewAVP(AVPSIPAuthorization, datatype.OctetString(make([]byte, 30)))))
	mar.AddAVP(NewAVP(AVPSIPNumberAuthItems, datatype.Unsigned32(1)))
	mar.AddAVP(NewAVP(AVPServerName, datatype.UTF8String(testServer)))
	msgs = append(msgs, mar)
	sar := n.NewRequest(CmdServerAssignment, AppCx, testRealm, hssHost)
	sar.AddAVP(NewAVP(AVPUserName, datatype.UTF8String(testIMPI)))
	sar.AddAVP(NewAVP(AVPPublicIdentity, datatype.UTF8String(testIMPU)))
	sar.AddAVP(NewAVP(AVPServerName, datatype.UTF8String(testServer)))
	sar.AddAVP(NewAVP(AVPServerAssignmentType, datatype.Enumerated(SATRegistration)))
	sar.AddAVP(NewAVP(AVPUserDataAlreadyAvailable, datatype.Enumerated(UserDataNotAvailable)))
	msgs = append(msgs, sar)
	udr := n.NewRequest(CmdUserData, AppSh, testRealm, hssHost)
	udr.AddAVP(Grouped(AVPUserIdentity, NewAVP(AVPPublicIdentity, datatype.UTF8String(testIMPU))))
	udr.AddAVP(NewAVP(AVPDataReference, datatype.Enumerated(DataRefRepositoryData)))
	msgs = append(msgs, udr)
	aar := n.NewRequest(CmdAA, AppRx, testRealm, "")
	aar.AddAVP(Grouped(AVPMediaComponentDescription,
		NewAVP(AVPMediaComponentNumber, datatype.Unsigned32(1)),
		Grouped(AVPMediaSubComponent,
			NewAVP(AVPFlowNumber, datatype.Unsigned32(1)),
			NewAVP(AVPFlowDescription, datatype.IPFilterRule("permit out 17 from 10.0.0.1 4000 to 10.0.0.2 5000"))),
		NewAVP(AVPMediaType, datatype.Enumerated(MediaAudio))))
	aar.AddAVP(NewAVP(AVPFramedIPAddress, datatype.OctetString([]byte{10, 0, 0, 2})))
	msgs = append(msgs, aar)
	msgs = append(msgs, buildCER(n, icscfHost, []uint32{uint32(AppCx), uint32(AppRelay)}))
	var out [][]byte
	for _, m := range msgs {
		b, err := m.Serialize()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestSeedsDecode(t *testing.T) {
	p, _ := NewParser(AppCx, AppSh, AppRx)
	for i, b := range fuzzSeeds(t) {
		if _, err := Decode(b, p); err != nil {
			t.Errorf("seed %d: %v", i, err)
		}
	}
}

// FuzzDecodeMessage checks that Decode never panics with any dictionary.
func FuzzDecodeMessage(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	var parsers []*dict.Parser
	for _, apps := range [][]App{{AppCx}, {AppSh}, {AppRx}, {AppCx, AppSh, AppRx}} {
		p, err := NewParser(apps...)
		if err != nil {
			f.Fatal(err)
		}
		parsers = append(parsers, p)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, p := range parsers {
			m, err := Decode(b, p)
			if err == nil && m != nil {
				if _, err := m.Serialize(); err != nil {
					t.Logf("decoded message does not re-encode: %v", err)
				}
			}
		}
	})
}
