package imsheader

import (
	"errors"
	"os"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestNameAddrListRoundTrip(t *testing.T) {
	tests := []struct {
		in     string
		n      int
		uri0   string
		disp0  string
		bare0  bool
		param0 string // a header param of entry 0 expected present
	}{
		{in: "<sip:pcscf.ims.mnc001.mcc001.3gppnetwork.org:5060;lr>", n: 1, uri0: "sip:pcscf.ims.mnc001.mcc001.3gppnetwork.org:5060;lr"},
		{in: `"Alice" <sip:alice@ims.example.org>;tag=x`, n: 1, uri0: "sip:alice@ims.example.org", disp0: `"Alice"`, param0: "tag"},
		{in: "<sip:orig@scscf.ims.example.org:5080;lr>", n: 1, uri0: "sip:orig@scscf.ims.example.org:5080;lr"},
		{in: "<tel:+15551234>", n: 1, uri0: "tel:+15551234"},
		{in: "tel:+15551234", n: 1, uri0: "tel:+15551234", bare0: true},
		{in: "sip:alice@example.org;user=phone", n: 1, uri0: "sip:alice@example.org", bare0: true, param0: "user"},
		{in: "Alice Smith <sip:alice@example.org>", n: 1, uri0: "sip:alice@example.org", disp0: "Alice Smith"},
		{in: `"Al \"the\" ice" <sip:a@b>`, n: 1, uri0: "sip:a@b", disp0: `"Al \"the\" ice"`},
		{in: "<sip:p1.example.org;lr>,<sip:p2.example.org;lr>", n: 2, uri0: "sip:p1.example.org;lr"},
		{in: "<sip:p1.example.org;lr>, <sip:p2.example.org;lr>;orig", n: 2, uri0: "sip:p1.example.org;lr"},
		{in: `<sip:user1@home1.net>, "User 2" <tel:+1-212-555-1234>, sip:u3@home1.net`, n: 3, uri0: "sip:user1@home1.net"},
		{in: `<sip:scscf.ims.example.org;lr>;x="quoted value";y=tok; z`, n: 1, uri0: "sip:scscf.ims.example.org;lr", param0: "z"},
		{in: "<sip:[2001:db8::1]:5060;lr>;received=[2001:db8::2]", n: 1, uri0: "sip:[2001:db8::1]:5060;lr", param0: "received"},
		{in: "<urn:service:sos>", n: 1, uri0: "urn:service:sos"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			list, err := ParseNameAddrList(tt.in)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if len(list) != tt.n {
				t.Fatalf("got %d entries, want %d", len(list), tt.n)
			}
			if got := FormatNameAddrList(list); got != tt.in {
				t.Errorf("round trip:\n got %q\nwant %q", got, tt.in)
			}
			n := list[0]
			if n.URI != tt.uri0 || n.DisplayName != tt.disp0 || n.Bare != tt.bare0 {
				t.Errorf("entry 0 = %+v", n)
			}
			if tt.param0 != "" && !n.Params.Has(tt.param0) {
				t.Errorf("param %q missing in %+v", tt.param0, n.Params)
			}
		})
	}
}

func TestNameAddrNormalisation(t *testing.T) {
	// Not normally formatted: parse, then Format gives the canonical form.
	tests := map[string]string{
		"  <sip:a@b> ;lr ":      "<sip:a@b>;lr",
		`"A"<sip:a@b>`:          `"A" <sip:a@b>`,
		"<sip:a@b> , <sip:c@d>": "<sip:a@b>, <sip:c@d>",
		"<sip:a@b>;x = y":       "<sip:a@b>;x=y",
	}
	for in, want := range tests {
		list, err := ParseNameAddrList(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := FormatNameAddrList(list); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

func TestNameAddrAccessors(t *testing.T) {
	n, err := ParseNameAddr(`"Alice \"A\"" <sip:alice@ims.example.org:5060;transport=tcp>;tag=1`)
	if err != nil {
		t.Fatal(err)
	}
	if n.DisplayText() != `Alice "A"` {
		t.Errorf("DisplayText = %q", n.DisplayText())
	}
	if n.Scheme() != "sip" {
		t.Errorf("Scheme = %q", n.Scheme())
	}
	u, err := n.SIPURI()
	if err != nil {
		t.Fatal(err)
	}
	if u.Host != "ims.example.org" || u.Port != 5060 || u.User != "alice" {
		t.Errorf("SIPURI = %+v", u)
	}
	if v, _ := n.Params.Get("TAG"); v != "1" {
		t.Errorf("tag = %q", v)
	}
	// A new entry built by hand.
	m := NameAddr{DisplayName: Quote("Bob"), URI: "sip:bob@example.org"}
	m.Params.SetFlag("lr")
	m.Params.Set("x", "1")
	m.Params.Set("x", "2")
	if got := m.String(); got != `"Bob" <sip:bob@example.org>;lr;x=2` {
		t.Errorf("String = %q", got)
	}
	if !m.Params.Del("LR") || m.Params.Has("lr") {
		t.Error("Del lr failed")
	}
	// A bare URI with ';' must be bracketed when formatted.
	b := NameAddr{URI: "sip:a@b;lr", Bare: true}
	if got := b.String(); got != "<sip:a@b;lr>" {
		t.Errorf("bare with ';' = %q", got)
	}
	if _, err := ParseNameAddr("<sip:a@b>, <sip:c@d>"); err == nil {
		t.Error("ParseNameAddr accepted two entries")
	}
}

func TestNameAddrErrors(t *testing.T) {
	bad := []string{
		"",
		"   ",
		"<sip:a@b",
		`"Alice <sip:a@b>`,
		`"Alice" sip:a@b`,
		"<sip:a@b>,",
		"<sip:a@b>,,<sip:c@d>",
		",<sip:a@b>",
		"<sip:a@b>;",
		"<sip:a@b>;=x",
		"<sip:a@b>;x=",
		`<sip:a@b>;x="unterminated`,
		"<sip:a@b> junk",
		"<nocolon>",
		"alice@example.org",
		"<>",
		"<sip:a<b>",
		"<sip:a@b>;x=\"a\r\nb\"",
	}
	for _, in := range bad {
		_, err := ParsePath(in)
		if err == nil {
			t.Errorf("%q: no error", in)
			continue
		}
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Header != HeaderPath || !strings.Contains(err.Error(), "Path") {
			t.Errorf("%q: error %v does not name the header", in, err)
		}
	}
}

func TestSecurityRoundTrip(t *testing.T) {
	tests := []string{
		"ipsec-3gpp;alg=hmac-sha-1-96;ealg=null;spi-c=1234567;spi-s=7654321;port-c=5062;port-s=5064,ipsec-3gpp;alg=hmac-md5-96;ealg=null;spi-c=1234567;spi-s=7654321;port-c=5062;port-s=5064",
		"ipsec-3gpp; q=0.1; alg=hmac-sha-1-96; spi-c=98765432; spi-s=87654321; port-c=8642; port-s=7531",
		"ipsec-3gpp;q=0.1;alg=hmac-md5-96;ealg=aes-cbc;prot=esp;mod=trans;spi-c=4294967295;spi-s=0;port-c=65535;port-s=1",
		"tls;q=0.2, digest;d-alg=md5;d-qop=auth;d-ver=\"0123456789abcdef\"",
		"ipsec-3gpp;alg=hmac-sha-1-96;x-vendor=1;flag;ealg=des-ede3-cbc",
	}
	for _, in := range tests {
		list, err := ParseSecurity(HeaderSecurityClient, in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := FormatSecurity(list); got != in {
			t.Errorf("round trip:\n got %q\nwant %q", got, in)
		}
	}
	list, _ := ParseSecurity("", tests[0])
	m := list[0]
	spic, _ := m.SPIC()
	spis, _ := m.SPIS()
	pc, _ := m.PortC()
	ps, ok := m.PortS()
	if m.Name != MechanismIPsec3GPP || m.Alg() != AlgHMACSHA196 || m.EAlg() != EAlgNull || spic != 1234567 || spis != 7654321 || pc != 5062 || ps != 5064 || !ok {
		t.Errorf("typed accessors: %+v", m)
	}
	if _, ok := m.Q(); ok {
		t.Error("q reported present")
	}
	list, _ = ParseSecurity("", tests[1])
	if q, ok := list[0].Q(); !ok || q != 0.1 {
		t.Errorf("q = %v %v", q, ok)
	}
	list, _ = ParseSecurity("", tests[4])
	if names := paramNames(list[0].Params); names != "alg,x-vendor,flag,ealg" {
		t.Errorf("param order = %s", names)
	}
}

func paramNames(p Params) string {
	var s []string
	for _, x := range p {
		s = append(s, x.Name)
	}
	return strings.Join(s, ",")
}

func TestSecurityBuildAndCompare(t *testing.T) {
	m := NewSecurityMechanism(MechanismIPsec3GPP)
	m.SetQ(0.1)
	m.SetAlg(AlgHMACMD596)
	m.SetEAlg(EAlgNull)
	m.SetProt("esp")
	m.SetMod("trans")
	m.SetSPIC(1)
	m.SetSPIS(4294967295)
	m.SetPortC(5100)
	m.SetPortS(5101)
	want := "ipsec-3gpp;q=0.1;alg=hmac-md5-96;ealg=null;prot=esp;mod=trans;spi-c=1;spi-s=4294967295;port-c=5100;port-s=5101"
	if got := FormatSecurity([]SecurityMechanism{m}); got != want {
		t.Fatalf("got %q", got)
	}
	// Security-Verify echoing the same parameters in another order and
	// spacing is equivalent (RFC 3329 §2.3.1).
	v, err := ParseSecurity(HeaderSecurityVerify, "IPSEC-3GPP; spi-s=4294967295; spi-c=1; port-c=5100; port-s=5101; alg=hmac-md5-96; ealg=null; prot=esp; mod=trans; q=0.1")
	if err != nil {
		t.Fatal(err)
	}
	if !EquivalentSecurityLists([]SecurityMechanism{m}, v) {
		t.Error("equivalent lists compare unequal")
	}
	v[0].SetSPIC(2)
	if EquivalentSecurityLists([]SecurityMechanism{m}, v) {
		t.Error("different spi-c compares equal")
	}
	m2 := m.Clone()
	m2.Params.Del("q")
	if EquivalentSecurityLists([]SecurityMechanism{m}, []SecurityMechanism{m2}) {
		t.Error("missing q compares equal")
	}
	if _, ok := m.Q(); !ok {
		t.Error("Clone shares params")
	}
}

func TestSecurityErrors(t *testing.T) {
	bad := []string{
		"",
		";alg=x",
		"ipsec-3gpp;spi-c=4294967296",
		"ipsec-3gpp;spi-c=-1",
		"ipsec-3gpp;spi-s=abc",
		"ipsec-3gpp;port-c=65536",
		"ipsec-3gpp;port-s",
		"ipsec-3gpp;q=1.5",
		"ipsec-3gpp;q=NaN",
		"ipsec-3gpp;q=x",
		"ipsec-3gpp,",
		"ipsec-3gpp alg=x",
		`ipsec-3gpp;alg="x`,
	}
	for _, in := range bad {
		_, err := ParseSecurity(HeaderSecurityServer, in)
		if err == nil {
			t.Errorf("%q: no error", in)
		} else if !strings.Contains(err.Error(), "Security-Server") {
			t.Errorf("%q: error %q does not name the header", in, err)
		}
	}
}

func TestPChargingVector(t *testing.T) {
	tests := []string{
		`icid-value="AyretyU0dm+6O2IrT5tAFrbHLso=023551024"`,
		"icid-value=1234bc9876e;icid-generated-at=192.0.6.8;orig-ioi=home1.net",
		"icid-value=1234bc9876e; icid-generated-at=192.0.6.8; orig-ioi=home1.net; term-ioi=home2.net",
		"icid-value=abc;ggsn=[2001:db8::1];auth-token=4AF03C87BC;pdp-info=\"pdp-item=1;pdp-sig=no\";orig-ioi=x",
	}
	for _, in := range tests {
		p, err := ParsePChargingVector(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := p.String(); got != in {
			t.Errorf("round trip:\n got %q\nwant %q", got, in)
		}
	}
	p, _ := ParsePChargingVector(tests[2])
	if p.ICID() != "1234bc9876e" || p.ICIDGeneratedAt() != "192.0.6.8" || p.OrigIOI() != "home1.net" || p.TermIOI() != "home2.net" {
		t.Errorf("accessors: %+v", p)
	}
	p, _ = ParsePChargingVector(tests[0])
	if p.ICID() != "AyretyU0dm+6O2IrT5tAFrbHLso=023551024" {
		t.Errorf("quoted icid = %q", p.ICID())
	}
	p, _ = ParsePChargingVector(tests[3])
	if names := paramNames(p.Params); names != "icid-value,ggsn,auth-token,pdp-info,orig-ioi" {
		t.Errorf("order %s", names)
	}
	p.SetTermIOI("home2.net")
	if !strings.HasSuffix(p.String(), ";orig-ioi=x;term-ioi=home2.net") {
		t.Errorf("SetTermIOI: %q", p.String())
	}
	n := NewPChargingVector("abc def", "192.0.2.1")
	n.SetOrigIOI("ims.example.org")
	if got := n.String(); got != `icid-value="abc def";icid-generated-at=192.0.2.1;orig-ioi=ims.example.org` {
		t.Errorf("NewPChargingVector: %q", got)
	}
	for _, in := range []string{"", "orig-ioi=x", "icid-value=", `icid-value=""`, "icid-value=a;;b", "icid-value=a b", ";icid-value=a"} {
		if _, err := ParsePChargingVector(in); err == nil || !strings.Contains(err.Error(), HeaderPChargingVector) {
			t.Errorf("%q: err = %v", in, err)
		}
	}
}

func TestNewICID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewICID()
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
			t.Fatalf("bad icid %q", id)
		}
		if seen[id] {
			t.Fatalf("duplicate icid %q", id)
		}
		seen[id] = true
		if _, err := ParsePChargingVector(NewPChargingVector(id, "").String()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPServedUser(t *testing.T) {
	tests := []struct{ in, sescase, regstate string }{
		{"<sip:user@example.com>;sescase=orig;regstate=reg", "orig", "reg"},
		{"<sip:user@example.com>;sescase=term;regstate=unreg", "term", "unreg"},
		{"sip:user@example.com;sescase=TERM", "term", ""},
		{"<tel:+15551234>", "", ""},
		{`"User" <sip:user@example.com;user=phone>;regstate=reg;orig-cdiv`, "", "reg"},
	}
	for _, tt := range tests {
		p, err := ParsePServedUser(tt.in)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if p.String() != tt.in || p.SessionCase() != tt.sescase || p.RegState() != tt.regstate {
			t.Errorf("%q: %q %q %q", tt.in, p.String(), p.SessionCase(), p.RegState())
		}
	}
	for _, in := range []string{"<sip:u@e>;sescase=both", "<sip:u@e>;regstate=maybe", "<sip:u@e>, <sip:v@e>", ""} {
		if _, err := ParsePServedUser(in); err == nil || !strings.Contains(err.Error(), HeaderPServedUser) {
			t.Errorf("%q: err = %v", in, err)
		}
	}
}

func TestPVisitedNetworkID(t *testing.T) {
	tests := []string{
		"other.net",
		`"Visited network number 1"`,
		`other.net, "Visited network number 1"`,
		`"Visited network number 1";x=1,other.net;y`,
	}
	for _, in := range tests {
		l, err := ParsePVisitedNetworkID(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := FormatPVisitedNetworkID(l); got != in {
			t.Errorf("round trip %q -> %q", in, got)
		}
	}
	l, _ := ParsePVisitedNetworkID(tests[2])
	if l[0].Text() != "other.net" || l[1].Text() != "Visited network number 1" || l[1].Value != `"Visited network number 1"` {
		t.Errorf("%+v", l)
	}
	if NewVisitedNetwork("a.net").Value != "a.net" || NewVisitedNetwork("a net").Value != `"a net"` {
		t.Error("NewVisitedNetwork quoting")
	}
	for _, in := range []string{"", "a b", `"a`, "a,", "<x>", "a;"} {
		if _, err := ParsePVisitedNetworkID(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestPAccessNetworkInfo(t *testing.T) {
	in := `3GPP-E-UTRAN-FDD; utran-cell-id-3gpp=00101000100019B01;network-provided, IEEE-802.11;"i-wlan-node-id=ffeeddccbbaa"`
	p, err := ParsePAccessNetworkInfo(in)
	if err != nil {
		t.Fatal(err)
	}
	if p.String() != in || p.AccessType() != "3GPP-E-UTRAN-FDD" {
		t.Errorf("%q %q", p.String(), p.AccessType())
	}
	if v, ok := p.Param("utran-cell-id-3gpp"); !ok || v != "00101000100019B01" {
		t.Errorf("Param of the first entry = %q %v", v, ok)
	}
	if _, ok := p.Param("i-wlan-node-id"); ok {
		t.Error("Param read the second entry")
	}
	q, _ := ParsePAccessNetworkInfo("3GPP-E-UTRAN-FDD;utran-cell-id-3gpp=00101000100019B01")
	if v, ok := q.Param("utran-cell-id-3gpp"); !ok || v != "00101000100019B01" {
		t.Errorf("Param = %q %v", v, ok)
	}
	for _, in := range []string{"", ";x", "\"quoted\"", "3GPP-E-UTRAN-FDD\r\nX: y"} {
		if _, err := ParsePAccessNetworkInfo(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestPAssociatedURIEmpty(t *testing.T) {
	l, err := ParsePAssociatedURI("")
	if err != nil || l != nil {
		t.Errorf("empty: %v %v", l, err)
	}
	l, err = ParsePAssociatedURI("<sip:user1@home1.net>, <sip:+1-212-555-1234@home1.net;user=phone>, <tel:+1-212-555-1234>")
	if err != nil || len(l) != 3 {
		t.Fatalf("%v %v", l, err)
	}
}

// readRegister loads the shared VoLTE REGISTER.
func readRegister(t testing.TB) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/volte_register.txt")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestVoLTERegister(t *testing.T) {
	raw := readRegister(t)
	msg, err := sip.NewParser().ParseSIP(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.String(); got != string(raw) {
		t.Fatalf("sipgo String() differs from input:\n%q\n%q", got, raw)
	}
	req := msg.(*sip.Request)
	orig := func(name string) string {
		vs := Values(req, name)
		if len(vs) != 1 {
			t.Fatalf("%s: %d values", name, len(vs))
		}
		return vs[0]
	}

	sc, err := GetSecurityClient(req)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc) != 2 || sc[0].Alg() != AlgHMACSHA196 || sc[1].Alg() != AlgHMACMD596 {
		t.Errorf("Security-Client: %+v", sc)
	}
	if pc, _ := sc[0].PortC(); pc != 5062 {
		t.Errorf("port-c %d", pc)
	}
	check := func(name, got string) {
		t.Helper()
		if want := orig(name); got != want {
			t.Errorf("%s re-formatted:\n got %q\nwant %q", name, got, want)
		}
	}
	check(HeaderSecurityClient, FormatSecurity(sc))

	path, err := GetPath(req)
	if err != nil || len(path) != 1 || !strings.HasPrefix(path[0].URI, "sip:term@pcscf.") {
		t.Fatalf("Path: %v %v", path, err)
	}
	check(HeaderPath, FormatNameAddrList(path))

	ppi, err := GetPPreferredIdentity(req)
	if err != nil || len(ppi) != 1 {
		t.Fatalf("PPI: %v %v", ppi, err)
	}
	check(HeaderPPreferredIdentity, FormatNameAddrList(ppi))

	pani, err := GetPAccessNetworkInfo(req)
	if err != nil || len(pani) != 1 || pani[0].AccessType() != "3GPP-E-UTRAN-FDD" {
		t.Fatalf("PANI: %v %v", pani, err)
	}
	if v, _ := pani[0].Param("utran-cell-id-3gpp"); v != "00101000100019B01" {
		t.Errorf("cell id %q", v)
	}
	check(HeaderPAccessNetworkInfo, pani[0].String())

	pvni, err := GetPVisitedNetworkID(req)
	if err != nil || len(pvni) != 2 || pvni[0].Text() != "Visited Network mnc001" {
		t.Fatalf("PVNI: %v %v", pvni, err)
	}
	check(HeaderPVisitedNetworkID, FormatPVisitedNetworkID(pvni))

	pcv, err := GetPChargingVector(req)
	if err != nil || pcv.ICID() != "9f2c1e4b7a6d58e0c3b21f4a6e8d7c90" || pcv.OrigIOI() != "ims.mnc001.mcc001.3gppnetwork.org" {
		t.Fatalf("PCV: %v %v", pcv, err)
	}
	check(HeaderPChargingVector, pcv.String())

	// The Contact of sipgo keeps the IMS feature tags.
	c := req.Contact()
	if c == nil || !strings.Contains(c.Value(), `+sip.instance="<urn:gsma:imei:35614506-034612-0>"`) {
		t.Errorf("Contact: %v", c)
	}

	// Writing every value back unchanged leaves the message byte-identical.
	SetSecurityClient(req, sc...)
	SetPath(req, path...)
	SetPPreferredIdentity(req, ppi...)
	SetPAccessNetworkInfo(req, pani...)
	SetPVisitedNetworkID(req, pvni...)
	SetPChargingVector(req, *pcv)
	if got := req.String(); got != string(raw) {
		t.Errorf("after Set*: message changed:\n%s", got)
	}

	// What a P-CSCF does before forwarding to the I-CSCF (TS 24.229 §5.2.2).
	if n := RemoveHeaders(req, HeaderSecurityClient); n != 1 {
		t.Errorf("removed %d Security-Client", n)
	}
	PrependPath(req, NameAddr{URI: "sip:term@pcscf2.example.org;lr"})
	path, _ = GetPath(req)
	if len(path) != 2 || path[0].URI != "sip:term@pcscf2.example.org;lr" {
		t.Errorf("after PrependPath: %+v", path)
	}
	out := req.String()
	if strings.Contains(out, "Security-Client") {
		t.Error("Security-Client still present")
	}
	if !strings.Contains(out, "P-Preferred-Identity: <sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org>\r\nPath: <sip:term@pcscf2.example.org;lr>\r\nPath: <sip:term@pcscf.") {
		t.Errorf("Path not inserted before the old one:\n%s", out)
	}
	// And the result parses again.
	if _, err := sip.NewParser().ParseSIP([]byte(out)); err != nil {
		t.Fatal(err)
	}
}

func TestMessageHelpers(t *testing.T) {
	req := sip.NewRequest(sip.OPTIONS, sip.Uri{Scheme: "sip", Host: "example.org"})
	req.AppendHeader(sip.NewHeader("X-A", "1"))
	req.AppendHeader(sip.NewHeader("path", "<sip:a@b;lr>"))
	req.AppendHeader(sip.NewHeader("X-B", "2"))
	req.AppendHeader(sip.NewHeader("Path", "<sip:c@d;lr>, <sip:e@f;lr>"))
	req.AppendHeader(sip.NewHeader("Service-Route", "<sip:orig@scscf.example.org;lr>"))

	path, err := GetPath(req)
	if err != nil || len(path) != 3 {
		t.Fatalf("%v %v", path, err)
	}
	if got := FormatNameAddrList(path); got != "<sip:a@b;lr>, <sip:c@d;lr>, <sip:e@f;lr>" {
		t.Errorf("joined %q", got)
	}
	SetPath(req, path[1:]...)
	names := []string{}
	for _, h := range req.Headers() {
		names = append(names, h.Name()+"="+h.Value())
	}
	want := []string{"X-A=1", "path=<sip:c@d;lr>, <sip:e@f;lr>", "X-B=2", "Service-Route=<sip:orig@scscf.example.org;lr>"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("headers after SetPath:\n%q\n%q", names, want)
	}
	sr, err := GetServiceRoute(req)
	if err != nil || len(sr) != 1 || sr[0].URI != "sip:orig@scscf.example.org;lr" {
		t.Errorf("Service-Route %v %v", sr, err)
	}
	SetServiceRoute(req)
	if len(Values(req, HeaderServiceRoute)) != 0 {
		t.Error("empty SetServiceRoute did not remove")
	}

	id := NameAddr{DisplayName: Quote("Alice"), URI: "sip:alice@ims.example.org"}
	tel := NameAddr{URI: "tel:+15551234"}
	SetPAssertedIdentity(req, id, tel)
	if got := Values(req, HeaderPAssertedIdentity); len(got) != 1 || got[0] != `"Alice" <sip:alice@ims.example.org>,<tel:+15551234>` {
		t.Errorf("PAI %q", got)
	}
	pai, err := GetPAssertedIdentity(req)
	if err != nil || len(pai) != 2 || pai[1].Scheme() != "tel" {
		t.Errorf("PAI %v %v", pai, err)
	}

	SetPAssociatedURI(req)
	if got := Values(req, HeaderPAssociatedURI); len(got) != 1 || got[0] != "" {
		t.Errorf("empty P-Associated-URI %q", got)
	}
	if l, err := GetPAssociatedURI(req); err != nil || l != nil {
		t.Errorf("%v %v", l, err)
	}

	// Single-instance headers.
	req.AppendHeader(sip.NewHeader(HeaderPChargingVector, "icid-value=a"))
	req.AppendHeader(sip.NewHeader(HeaderPChargingVector, "icid-value=b"))
	if _, err := GetPChargingVector(req); err == nil {
		t.Error("two P-Charging-Vector accepted")
	}
	SetPChargingVector(req, NewPChargingVector("c", ""))
	if pcv, err := GetPChargingVector(req); err != nil || pcv.ICID() != "c" {
		t.Errorf("%v %v", pcv, err)
	}
	if p, err := GetPServedUser(req); p != nil || err != nil {
		t.Errorf("absent P-Served-User: %v %v", p, err)
	}
	psu, _ := ParsePServedUser("<sip:u@e>;sescase=orig;regstate=reg")
	SetPServedUser(req, psu)
	if p, err := GetPServedUser(req); err != nil || p.SessionCase() != "orig" {
		t.Errorf("%v %v", p, err)
	}

	SetPAccessNetworkInfo(req, PAccessNetworkInfo{"3GPP-E-UTRAN-FDD;utran-cell-id-3gpp=1"}, PAccessNetworkInfo{"3GPP-E-UTRAN-FDD;utran-cell-id-3gpp=2;network-provided"})
	pani, err := GetPAccessNetworkInfo(req)
	if err != nil || len(pani) != 2 || !strings.HasSuffix(pani[1].Raw, "network-provided") {
		t.Errorf("%v %v", pani, err)
	}

	srv := NewSecurityMechanism(MechanismIPsec3GPP)
	srv.SetAlg(AlgHMACSHA196)
	resp := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	SetSecurityServer(resp, srv)
	got, err := GetSecurityServer(resp)
	if err != nil || len(got) != 1 || got[0].Alg() != AlgHMACSHA196 {
		t.Errorf("%v %v", got, err)
	}
	req.AppendHeader(sip.NewHeader(HeaderSecurityVerify, "ipsec-3gpp;alg=hmac-sha-1-96"))
	req.AppendHeader(sip.NewHeader(HeaderSecurityVerify, "tls;q=0.1"))
	v, err := GetSecurityVerify(req)
	if err != nil || len(v) != 2 || FormatSecurity(v) != "ipsec-3gpp;alg=hmac-sha-1-96, tls;q=0.1" {
		t.Errorf("%v %v", v, err)
	}
	req.AppendHeader(sip.NewHeader(HeaderPath, "garbage"))
	if _, err := GetPath(req); err == nil {
		t.Error("garbage Path accepted")
	}
}

// TestWireSize: WireSize is the length of the text sipgo sends, for a
// request with a body, a response and a message built in code, and it
// allocates less than building that text.
func TestWireSize(t *testing.T) {
	raw := []string{
		"INVITE sip:bob@ims.test;transport=udp SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport\r\nVia: SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK2\r\n" +
			"Route: <sip:pcscf.ims.test;lr>, <sip:scscf.ims.test;lr>\r\nFrom: \"Alice\" <sip:alice@ims.test>;tag=a1\r\nTo: <sip:bob@ims.test>\r\nCall-ID: c1@10.0.0.1\r\n" +
			"CSeq: 1 INVITE\r\nContact: <sip:alice@10.0.0.1:5060>;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\"\r\nMax-Forwards: 70\r\n" +
			"P-Preferred-Identity: <sip:alice@ims.test>\r\nContent-Type: application/sdp\r\nContent-Length: 12\r\n\r\nv=0\r\no=x 1 1\r\n",
		"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;received=10.0.0.9;rport=5062\r\nFrom: <sip:alice@ims.test>;tag=a1\r\nTo: <sip:bob@ims.test>;tag=b1\r\n" +
			"Call-ID: c1@10.0.0.1\r\nCSeq: 1 INVITE\r\nRecord-Route: <sip:pcscf.ims.test;lr>\r\nContent-Length: 0\r\n\r\n",
	}
	for _, r := range raw {
		m, err := sip.NewParser().ParseSIP([]byte(r))
		if err != nil {
			t.Fatal(err)
		}
		var got, want int
		switch msg := m.(type) {
		case *sip.Request:
			got, want = WireSize(msg), len(msg.String())
		case *sip.Response:
			got, want = WireSize(msg), len(msg.String())
		}
		if got != want || got == 0 {
			t.Errorf("WireSize %d, len(String()) %d for\n%s", got, want, r)
		}
	}
	req := sip.NewRequest(sip.MESSAGE, sip.Uri{Scheme: "sip", User: "bob", Host: "ims.test"})
	req.AppendHeader(sip.NewHeader("P-Asserted-Identity", "<sip:alice@ims.test>"))
	req.SetBody([]byte("hello"))
	if got, want := WireSize(req), len(req.String()); got != want {
		t.Errorf("WireSize %d, len(String()) %d for\n%s", got, want, req.String())
	}
	m, _ := sip.NewParser().ParseSIP([]byte(raw[0]))
	msg := m.(*sip.Request)
	allocated := func(f func()) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 100 {
			f()
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	size := allocated(func() { _ = WireSize(msg) })
	text := allocated(func() { _ = len(msg.String()) })
	if 2*size > text {
		t.Errorf("WireSize allocates %d bytes in 100 runs, String() %d: not under half", size, text)
	}
}
