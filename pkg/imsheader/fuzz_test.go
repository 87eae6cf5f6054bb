package imsheader

import (
	"reflect"
	"testing"
)

var nameAddrSeeds = []string{
	"<sip:pcscf.ims.mnc001.mcc001.3gppnetwork.org:5060;lr>",
	`"Alice" <sip:alice@ims.example.org>;tag=x`,
	"<sip:orig@scscf.ims.example.org:5080;lr>",
	"<tel:+15551234>",
	"tel:+15551234;x=1, sip:a@b",
	`Alice Smith <sip:a@b>;p="q;,\"x";f, <sip:c@d>`,
	"<sip:[::1]:5060>;received=[::2]",
	"<sip:a@b",
	`"unterminated <sip:a@b>`,
	"",
}

func FuzzParseNameAddrList(f *testing.F) {
	for _, s := range nameAddrSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list, err := ParseNameAddrList(s)
		if err != nil {
			return
		}
		out := FormatNameAddrList(list)
		again, err := ParseNameAddrList(out)
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", out, s, err)
		}
		if !reflect.DeepEqual(list, again) {
			t.Fatalf("unstable:\n in %q\nout %q\n%#v\n%#v", s, out, list, again)
		}
		if FormatNameAddrList(again) != out {
			t.Fatalf("format not idempotent for %q", s)
		}
		// P-Served-User goes through the same parser plus checks.
		_, _ = ParsePServedUser(s)
	})
}

func FuzzParseSecurity(f *testing.F) {
	for _, s := range []string{
		"ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=1234567;spi-s=7654321;port-c=5062;port-s=5064,ipsec-3gpp;alg=hmac-md5-96;ealg=null;spi-c=1;spi-s=2;port-c=3;port-s=4",
		"ipsec-3gpp; q=0.1; alg=hmac-sha-1-96; spi-c=98765432; spi-s=87654321; port-c=8642; port-s=7531",
		`tls;q=0.2, digest;d-alg=md5;d-qop=auth;d-ver="0123"`,
		"ipsec-3gpp;spi-c=99999999999",
		"ipsec-3gpp;q=1e-1",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		list, err := ParseSecurity(HeaderSecurityClient, s)
		if err != nil {
			return
		}
		for _, m := range list {
			m.Q()
			m.SPIC()
			m.SPIS()
			m.PortC()
			m.PortS()
			_ = m.Alg() + m.EAlg() + m.Prot() + m.Mod()
		}
		out := FormatSecurity(list)
		again, err := ParseSecurity(HeaderSecurityClient, out)
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", out, s, err)
		}
		if !reflect.DeepEqual(list, again) {
			t.Fatalf("unstable: %q -> %q", s, out)
		}
		if !EquivalentSecurityLists(list, again) {
			t.Fatalf("not equivalent to itself: %q", s)
		}
	})
}

func FuzzParsePChargingVector(f *testing.F) {
	for _, s := range []string{
		`icid-value="AyretyU0dm+6O2IrT5tAFrbHLso=023551024"`,
		"icid-value=1234bc9876e;icid-generated-at=192.0.6.8;orig-ioi=home1.net",
		"icid-value=1; term-ioi=x; y",
		"orig-ioi=x",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePChargingVector(s)
		if err != nil {
			return
		}
		_ = p.ICID() + p.ICIDGeneratedAt() + p.OrigIOI() + p.TermIOI()
		out := p.String()
		again, err := ParsePChargingVector(out)
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", out, s, err)
		}
		if !reflect.DeepEqual(p, again) {
			t.Fatalf("unstable: %q -> %q", s, out)
		}
	})
}

func FuzzParsePVisitedNetworkID(f *testing.F) {
	for _, s := range []string{`other.net, "Visited network number 1"`, `"a\"b";x=1,c`, `"a`, ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParsePVisitedNetworkID(s)
		if err != nil {
			return
		}
		out := FormatPVisitedNetworkID(l)
		again, err := ParsePVisitedNetworkID(out)
		if err != nil || !reflect.DeepEqual(l, again) {
			t.Fatalf("unstable: %q -> %q (%v)", s, out, err)
		}
		for _, v := range l {
			_ = v.Text()
		}
	})
}

func FuzzParsePAccessNetworkInfo(f *testing.F) {
	for _, s := range []string{"3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=00101000100019B01", "IEEE-802.11;\"x\"", ";", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePAccessNetworkInfo(s)
		if err != nil {
			return
		}
		_ = p.AccessType()
		p.Param("utran-cell-id-3gpp")
		if p.String() != s {
			t.Fatalf("opaque value changed: %q", s)
		}
	})
}
