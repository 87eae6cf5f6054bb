package icscf

import (
	"slices"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/urfave/cli/v2"

	"github.com/imscore/imscore/pkg/cxclient"
	"github.com/imscore/imscore/pkg/diameter"
)

func TestParseSCSCF(t *testing.T) {
	s, err := ParseSCSCF("sip:scscf.ims.example.org:5080;transport=tcp;caps=1+2+30")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "sip:scscf.ims.example.org:5080;transport=tcp" || !slices.Equal(s.Caps, []uint32{1, 2, 30}) {
		t.Errorf("got %+v", s)
	}
	if s, err := ParseSCSCF(LabSCSCF("ims.test")); err != nil || s.Name != "sip:scscf.ims.test:5080" || len(s.Caps) != 0 {
		t.Errorf("default: %+v %v", s, err)
	}
	for _, bad := range []string{"", "2", "tel:+123", "sip:x.example;caps=a", "sip:x.example;caps=1,2", "http://x"} {
		if _, err := ParseSCSCF(bad); err == nil {
			t.Errorf("ParseSCSCF(%q) accepted", bad)
		}
	}
	if _, err := ParseSCSCF("2"); err == nil || !strings.Contains(err.Error(), "'+'") {
		t.Errorf("error for a split caps list does not explain the separator: %v", err)
	}
}

func TestResolve(t *testing.T) {
	r, err := ParseResolve([]string{"scscf.lab=127.0.0.1", "scscf2.lab:5080=127.0.0.1:5082", "v6.lab=[::1]:5090"})
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		"sip:scscf.lab:5080":                "127.0.0.1:5080",
		"sip:SCSCF.lab":                     "127.0.0.1:5060",
		"sip:scscf2.lab:5080;transport=tcp": "127.0.0.1:5082;transport=tcp",
		"sip:v6.lab:5080":                   "::1:5090",
		"sip:scscf2.lab:5081":               "",
		"sip:other.lab":                     "",
	}
	for in, want := range cases {
		var u sip.Uri
		if err := sip.ParseUri(in, &u); err != nil {
			t.Fatal(err)
		}
		got := ""
		if nh := r.NextHop(u); nh != nil {
			got = nh.Host + ":" + itoa(nh.Port)
			if tp, ok := nh.UriParams.Get("transport"); ok {
				got += ";transport=" + tp
			}
		}
		if got != want {
			t.Errorf("NextHop(%s) = %q, want %q", in, got, want)
		}
	}
	for _, bad := range []string{"noequals", "a=b", "a=1.2.3.4:x", "=1.2.3.4", "a:99999=1.2.3.4"} {
		if _, err := ParseResolve([]string{bad}); err == nil {
			t.Errorf("ParseResolve(%q) accepted", bad)
		}
	}
}

func TestRegistrationType(t *testing.T) {
	mk := func(raw string) *sip.Request {
		msg, err := sip.ParseMessage([]byte("REGISTER sip:ims.test SIP/2.0\r\nVia: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bK1\r\nFrom: <sip:a@ims.test>;tag=1\r\nTo: <sip:a@ims.test>\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\n" + raw + "Content-Length: 0\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		return msg.(*sip.Request)
	}
	cases := []struct {
		hdrs string
		want uint32
	}{
		{"Contact: <sip:a@1.2.3.4>\r\nExpires: 600\r\n", diameter.UATRegistration},
		{"Contact: <sip:a@1.2.3.4>\r\n", diameter.UATRegistration},
		{"Contact: <sip:a@1.2.3.4>\r\nExpires: 0\r\n", diameter.UATDeRegistration},
		{"Contact: <sip:a@1.2.3.4>;expires=0\r\nExpires: 600\r\n", diameter.UATDeRegistration},
		{"Contact: <sip:a@1.2.3.4>;expires=60\r\nExpires: 0\r\n", diameter.UATRegistration},
		{"Contact: <sip:a@1.2.3.4>;expires=0, <sip:a@5.6.7.8>;expires=0\r\n", diameter.UATDeRegistration},
		{"Contact: <sip:a@1.2.3.4>;expires=0, <sip:a@5.6.7.8>\r\n", diameter.UATRegistration},
		{"Contact: *\r\nExpires: 0\r\n", diameter.UATDeRegistration},
		{"", diameter.UATRegistration}, // query
	}
	for _, c := range cases {
		if got := registrationType(mk(c.hdrs)); got != c.want {
			t.Errorf("%q: got %d, want %d", c.hdrs, got, c.want)
		}
	}
}

func TestIdentities(t *testing.T) {
	parse := func(s string) sip.Uri {
		var u sip.Uri
		if err := sip.ParseUri(s, &u); err != nil {
			t.Fatal(err)
		}
		return u
	}
	cases := []struct{ uri, impu, impi string }{
		{"sip:alice@ims.test:5060;user=phone", "sip:alice@ims.test", "alice@ims.test"},
		{"sips:bob@ims.test", "sips:bob@ims.test", "bob@ims.test"},
		{"tel:+15551234;phone-context=ims.test", "tel:+15551234;phone-context=ims.test", "+15551234@home.test"},
		{"tel:+15551234", "tel:+15551234", "+15551234@home.test"},
	}
	for _, c := range cases {
		u := parse(c.uri)
		if got := publicIdentity(u); got != c.impu {
			t.Errorf("publicIdentity(%s) = %q, want %q", c.uri, got, c.impu)
		}
		if got := deriveIMPI(u, "home.test"); got != c.impi {
			t.Errorf("deriveIMPI(%s) = %q, want %q", c.uri, got, c.impi)
		}
	}
}

func TestAuthUsername(t *testing.T) {
	cases := []struct{ auth, want string }{
		{`Digest username="alice@ims.test", realm="ims.test", nonce="", uri="sip:ims.test", response=""`, "alice@ims.test"},
		{`Digest realm="a,b", username=bob , nonce=""`, "bob"},
		{`Digest nonce="", response=""`, ""},
		{`Basic YWxhZGRpbjpvcGVuc2VzYW1l`, ""},
		{`Digest username="unterminated`, ""},
	}
	for _, c := range cases {
		req := sip.NewRequest(sip.REGISTER, sip.Uri{Host: "ims.test"})
		req.AppendHeader(sip.NewHeader("Authorization", c.auth))
		if got := authUsername(req); got != c.want {
			t.Errorf("authUsername(%q) = %q, want %q", c.auth, got, c.want)
		}
	}
}

func TestSelectSCSCF(t *testing.T) {
	var scs []SCSCF
	for _, v := range []string{"sip:a.lab;caps=1+2", "sip:b.lab;caps=1+2+3", "sip:c.lab;caps=1+2+3", "sip:d.lab;caps=3+4"} {
		s, err := ParseSCSCF(v)
		if err != nil {
			t.Fatal(err)
		}
		scs = append(scs, s)
	}
	s := &Server{cfg: Config{SCSCFs: scs}}
	names := func(cs []candidate) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.name)
		}
		return out
	}
	cases := []struct {
		a       cxclient.Assignment
		exclude []string
		want    []string
	}{
		{cxclient.Assignment{Capabilities: &cxclient.Capabilities{Mandatory: []uint32{1, 2}, Optional: []uint32{3}}}, nil, []string{"sip:b.lab", "sip:c.lab", "sip:a.lab"}},
		{cxclient.Assignment{Capabilities: &cxclient.Capabilities{Mandatory: []uint32{1, 2}, Optional: []uint32{3}}}, []string{"sip:b.lab"}, []string{"sip:c.lab", "sip:a.lab"}},
		{cxclient.Assignment{Capabilities: &cxclient.Capabilities{Mandatory: []uint32{4}}}, nil, []string{"sip:d.lab"}},
		{cxclient.Assignment{Capabilities: &cxclient.Capabilities{Mandatory: []uint32{9}}}, nil, nil},
		{cxclient.Assignment{Capabilities: &cxclient.Capabilities{Mandatory: []uint32{9}, ServerNames: []string{"sip:x.lab:5090"}}}, nil, []string{"sip:x.lab:5090"}},
		{cxclient.Assignment{ServerName: "sip:C.lab:5060"}, nil, []string{"sip:c.lab"}}, // configured name kept
		{cxclient.Assignment{}, nil, []string{"sip:a.lab", "sip:b.lab", "sip:c.lab", "sip:d.lab"}},
	}
	for i, c := range cases {
		ex := map[string]bool{}
		for _, e := range c.exclude {
			ex[uriKey(parse(t, e))] = true
		}
		got := names(s.selectSCSCF(&c.a, ex))
		if !slices.Equal(got, c.want) {
			t.Errorf("case %d: got %v, want %v", i, got, c.want)
		}
	}
}

func parse(t *testing.T, s string) sip.Uri {
	t.Helper()
	u, err := parseSIPURI(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// One --domain must move the default S-CSCF with it: the S-CSCF's default
// Server-Name is sip:scscf.<domain>:5080.
func TestDefaultSCSCFFollowsDomain(t *testing.T) {
	var got Config
	app := &cli.App{Flags: Function().Flags, Action: func(c *cli.Context) error {
		var err error
		got, err = configFromCLI(c)
		return err
	}}
	if err := app.Run([]string{"icscf", "--domain", "ims.example.org"}); err != nil {
		t.Fatal(err)
	}
	if len(got.SCSCFs) != 1 || got.SCSCFs[0].Name != "sip:scscf.ims.example.org:5080" {
		t.Errorf("default S-CSCFs %+v", got.SCSCFs)
	}
	hop := got.Resolve.NextHop(sip.Uri{Scheme: "sip", Host: "scscf.ims.example.org", Port: 5080})
	if hop == nil || hop.Host != "127.0.0.1" || hop.Port != 5080 {
		t.Errorf("default resolve of scscf.ims.example.org: %v", hop)
	}
}
