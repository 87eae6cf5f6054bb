package digest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestRoundTrip(t *testing.T) {
	tests := []string{
		`Digest username="001010000000001@ims.mnc001.mcc001.3gppnetwork.org",realm="ims.mnc001.mcc001.3gppnetwork.org",nonce="",uri="sip:ims.mnc001.mcc001.3gppnetwork.org",response=""`,
		`Digest realm="ims.example.org", nonce="3Yz1m9ZKZ9hX0dQ8yV3v2gAAAAAAAAAAAAAAAAAAAAA=", algorithm=AKAv1-MD5, qop="auth", ik="0123456789abcdef0123456789abcdef", ck="fedcba9876543210fedcba9876543210"`,
		`Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
		`Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
		`Digest username="user@ims.example.org",realm="ims.example.org",nonce="abc",uri="sip:ims.example.org",response="",auts="AAECAwQFBgcICQoLDA0=",integrity-protected="no"`,
		`Digest realm="r", nonce="n", stale=TRUE, algorithm=MD5, domain="sip:a.example.org sip:b.example.org", x-unknown=tok, y-unknown="q\"uoted"`,
		`digest realm="r",nonce=n`,
	}
	for _, in := range tests {
		h, err := Parse(in)
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		if got := h.String(); got != in {
			t.Errorf("round trip:\n got %s\nwant %s", got, in)
		}
	}
	h, _ := Parse(tests[5])
	if v, _ := h.Get("Y-UNKNOWN"); v != `q"uoted` {
		t.Errorf("unknown param %q", v)
	}
	if !h.Stale() || h.Domain() != "sip:a.example.org sip:b.example.org" {
		t.Error("stale/domain")
	}
	if got := Must(ParseAuthenticationInfo(`nextnonce="47364c23432d2e131a5fb210812c", qop=auth, rspauth="d3b07384d113edec49eaa6238ad5ff00", cnonce="0a4f113b", nc=00000001`)).String(); got != `nextnonce="47364c23432d2e131a5fb210812c", qop=auth, rspauth="d3b07384d113edec49eaa6238ad5ff00", cnonce="0a4f113b", nc=00000001` {
		t.Errorf("Authentication-Info %q", got)
	}
}

func Must(h *Header, err error) *Header {
	if err != nil {
		panic(err)
	}
	return h
}

func TestAccessors(t *testing.T) {
	h := Must(Parse(`Digest username="u@r", realm="r", nonce="n", uri="sip:r", response="abc", algorithm=AKAv2-MD5, qop=auth, nc=00000001, cnonce="c", opaque="o", auts="a", integrity-protected="ipsec-3gpp", ik="00112233445566778899aabbccddeeff", ck="ffeeddccbbaa99887766554433221100"`))
	got := []string{h.Username(), h.Realm(), h.Nonce(), h.URI(), h.Response(), h.Algorithm(), h.QOP(), h.NC(), h.CNonce(), h.Opaque(), h.AUTS(), h.IntegrityProtected()}
	want := []string{"u@r", "r", "n", "sip:r", "abc", "AKAv2-MD5", "auth", "00000001", "c", "o", "a", "ipsec-3gpp"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q", got)
	}
	ik, ck, err := h.Keys()
	if err != nil || hex.EncodeToString(ik) != "00112233445566778899aabbccddeeff" || len(ck) != 16 || ck[0] != 0xff {
		t.Errorf("Keys %x %x %v", ik, ck, err)
	}
	c := Must(Parse(`Digest realm="r", qop="auth,auth-int", nonce="n"`))
	if o := c.QOPOptions(); len(o) != 2 || o[1] != "auth-int" {
		t.Errorf("QOPOptions %q", o)
	}
	if _, _, err := c.Keys(); err == nil {
		t.Error("Keys without ik")
	}
	c.Set("ik", "0011")
	c.Set("ck", "00112233445566778899aabbccddeeff")
	if _, _, err := c.Keys(); err == nil {
		t.Error("short ik accepted")
	}
}

func TestSetDel(t *testing.T) {
	// P-CSCF, TS 24.229 §5.2.2.1: add integrity-protected to the REGISTER...
	in := `Digest username="001010000000001@ims.mnc001.mcc001.3gppnetwork.org",realm="ims.mnc001.mcc001.3gppnetwork.org",nonce="",uri="sip:ims.mnc001.mcc001.3gppnetwork.org",response=""`
	h := Must(Parse(in))
	h.Set("integrity-protected", IntegrityNo)
	if got := h.String(); got != in+`,integrity-protected="no"` {
		t.Errorf("Set: %s", got)
	}
	h.Set("integrity-protected", IntegrityIPsec3GPP)
	if got := h.String(); got != in+`,integrity-protected="ipsec-3gpp"` {
		t.Errorf("Set existing: %s", got)
	}
	// ...and take ik/ck out of the 401.
	chal := `Digest realm="ims.example.org", nonce="bm9uY2U=", algorithm=AKAv1-MD5, qop="auth", ik="0123456789abcdef0123456789abcdef", ck="fedcba9876543210fedcba9876543210"`
	c := Must(Parse(chal))
	if !c.Del("IK") || !c.Del("ck") || c.Del("ck") {
		t.Error("Del results")
	}
	if got := c.String(); got != `Digest realm="ims.example.org", nonce="bm9uY2U=", algorithm=AKAv1-MD5, qop="auth"` {
		t.Errorf("Del: %s", got)
	}
	c.Del("realm")
	if got := c.String(); got != `Digest nonce="bm9uY2U=", algorithm=AKAv1-MD5, qop="auth"` {
		t.Errorf("Del first: %s", got)
	}
	// Default quoting of new parameters.
	n := &Header{Scheme: Scheme}
	n.Set("username", "u")
	n.Set("response", "r")
	n.Set("algorithm", "MD5")
	n.Set("qop", "auth")
	n.Set("nc", "00000001")
	if got := n.String(); got != `Digest username="u",response="r",algorithm=MD5,qop=auth,nc=00000001` {
		t.Errorf("new credentials: %s", got)
	}
	n.SetQuoted("nc", "00000002", true)
	if v, _ := n.Get("nc"); v != "00000002" || !strings.Contains(n.String(), `nc="00000002"`) {
		t.Errorf("SetQuoted: %s", n.String())
	}
	ch := &Header{Scheme: Scheme}
	ch.Set("qop", "auth")
	if ch.String() != `Digest qop="auth"` {
		t.Errorf("challenge qop: %s", ch.String())
	}
	a := NewAKAChallenge("ims.example.org", "bm9uY2U=", AlgAKAv1, bytes.Repeat([]byte{0x01}, 16), bytes.Repeat([]byte{0xab}, 16))
	if a.String() != `Digest realm="ims.example.org", nonce="bm9uY2U=", algorithm=AKAv1-MD5, qop="auth", ik="01010101010101010101010101010101", ck="abababababababababababababababab"` {
		t.Errorf("NewAKAChallenge: %s", a)
	}
	cl := a.Clone()
	cl.Del("ik")
	if !a.Has("ik") {
		t.Error("Clone shares params")
	}
}

func TestParseErrors(t *testing.T) {
	bad := map[string]string{
		"":                                   "missing authentication scheme",
		"   ":                                "missing authentication scheme",
		"Digest":                             "without parameters",
		"Digest ":                            "without parameters",
		`Digest realm="unterminated`:         "unterminated",
		`Digest realm="a\`:                   "unterminated",
		"Digest realm":                       "missing '='",
		"Digest realm, nonce=x":              "missing '='",
		"Digest realm=":                      "missing value",
		"Digest realm=,nonce=x":              "missing value",
		`Digest realm="a",`:                  "trailing",
		`Digest realm="a",,nonce="b"`:        "empty parameter",
		`Digest realm="a" nonce="b"`:         "unexpected character",
		"Digest =x":                          "invalid character",
		`Digest"realm"=x`:                    "unexpected character",
		"Digest realm=\"a\r\nb\"":            "line break",
		`Digest realm="a", nonce=<x>`:        "missing value",
		"Digest realm=\"a\", Basic dXNlcjpw": "missing '='",
	}
	for in, want := range bad {
		_, err := Parse(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", in, err, want)
		}
		var pe *ParseError
		if err != nil && !errors.As(err, &pe) {
			t.Errorf("%q: not a *ParseError: %v", in, err)
		}
	}
	for _, in := range []string{"Basic dXNlcjpwYXNz", `Bearer token="x"`, "AKAv1 realm=x"} {
		if _, err := Parse(in); !errors.Is(err, ErrNotDigest) {
			t.Errorf("%q: err = %v, want ErrNotDigest", in, err)
		}
	}
	if _, err := ParseAuthenticationInfo(""); err == nil {
		t.Error("empty Authentication-Info accepted")
	}
}

// RFC 2617 §3.5.
func TestRFC2617Example(t *testing.T) {
	ha1 := HA1("Mufasa", "testrealm@host.com", "Circle Of Life")
	if ha1 != "939e7578ed9e3c518a452acee763bce9" {
		t.Fatalf("HA1 = %s", ha1)
	}
	got := Response(ha1, "GET", "/dir/index.html", "dcd98b7102dd2f0e8b11d0f600bfb0c093", "00000001", "0a4f113b", "auth")
	if got != "6629fae49393a05397450978507c4ef1" {
		t.Fatalf("response = %s", got)
	}
	cred := Must(Parse(`Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629FAE49393A05397450978507C4EF1", opaque="5ccc069c403ebaf9f0171e9517f40e41"`))
	for name, f := range map[string]func() (bool, error){
		"password": func() (bool, error) { return VerifyPassword(cred, "GET", []byte("Circle Of Life"), nil) },
		"ha1":      func() (bool, error) { return VerifyHA1(cred, "GET", ha1, nil) },
	} {
		ok, err := f()
		if err != nil || !ok {
			t.Errorf("%s: %v %v", name, ok, err)
		}
	}
	if ok, err := VerifyPassword(cred, "GET", []byte("circle of life"), nil); ok || err != nil {
		t.Errorf("wrong password: %v %v", ok, err)
	}
	if ok, _ := VerifyPassword(cred, "POST", []byte("Circle Of Life"), nil); ok {
		t.Error("wrong method accepted")
	}
}

// No qop (RFC 2069 form, RFC 2617 §3.2.2.1): MD5(HA1:nonce:HA2), computed
// here from the definition.
func TestNoQOP(t *testing.T) {
	ha1 := HA1("alice", "ims.example.org", "secret")
	ha2 := h("REGISTER", "sip:ims.example.org")
	want := h(ha1, "abc123", ha2)
	if got := Response(ha1, "REGISTER", "sip:ims.example.org", "abc123", "", "", ""); got != want {
		t.Fatalf("got %s want %s", got, want)
	}
	// Known value, computed independently with coreutils md5sum.
	if want != "1d6b6f6d2173cf700f0de9905b39bacc" {
		t.Errorf("no-qop response %s", want)
	}
	cred := &Header{Scheme: Scheme}
	cred.Set("username", "alice")
	cred.Set("realm", "ims.example.org")
	cred.Set("nonce", "abc123")
	cred.Set("uri", "sip:ims.example.org")
	cred.Set("response", want)
	ok, err := VerifyPassword(cred, "REGISTER", []byte("secret"), nil)
	if err != nil || !ok {
		t.Errorf("verify: %v %v", ok, err)
	}
}

func TestMD5SessAndAuthInt(t *testing.T) {
	ha1 := HA1("bob", "r", "pw")
	sess := HA1Sess(ha1, "n", "c")
	if sess != h(ha1, "n", "c") {
		t.Fatal("HA1Sess")
	}
	body := []byte("v=0\r\n")
	want := ResponseWithBody(sess, "INVITE", "sip:x", "n", "00000002", "c", "auth-int", body)
	cred := Must(Parse(`Digest username="bob", realm="r", nonce="n", uri="sip:x", algorithm=MD5-sess, qop=auth-int, nc=00000002, cnonce="c", response="` + want + `"`))
	if ok, err := VerifyHA1(cred, "INVITE", ha1, body); err != nil || !ok {
		t.Errorf("MD5-sess auth-int: %v %v", ok, err)
	}
	if ok, _ := VerifyHA1(cred, "INVITE", ha1, []byte("other")); ok {
		t.Error("auth-int ignored the body")
	}
	// Errors: things that cannot be checked.
	for _, in := range []string{
		`Digest username="a", realm="r", uri="u", response="x"`,
		`Digest username="a", realm="r", nonce="n", response="x"`,
		`Digest username="a", realm="r", nonce="n", uri="u"`,
		`Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=auth`,
		`Digest username="a", realm="r", nonce="n", uri="u", response="x", qop=bogus, nc=1, cnonce="c"`,
		`Digest username="a", realm="r", nonce="n", uri="u", response="x", algorithm=SHA-256`,
		`Digest username="a", realm="r", nonce="n", uri="u", response="x", algorithm=MD5-sess`,
	} {
		if _, err := VerifyHA1(Must(Parse(in)), "REGISTER", ha1, nil); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}

func TestAKA(t *testing.T) {
	rand := bytes.Repeat([]byte{0x23}, 16)
	autn := bytes.Repeat([]byte{0x55}, 16)
	nonce, err := JoinAKANonce(rand, autn, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, a, err := SplitAKANonce(nonce)
	if err != nil || !bytes.Equal(r, rand) || !bytes.Equal(a, autn) {
		t.Fatalf("split: %x %x %v", r, a, err)
	}
	withData, _ := JoinAKANonce(rand, autn, []byte("server"))
	if r, a, err = SplitAKANonce(withData); err != nil || !bytes.Equal(r, rand) || !bytes.Equal(a, autn) {
		t.Errorf("server data: %v", err)
	}
	if _, _, err = SplitAKANonce(strings.TrimRight(nonce, "=")); err != nil {
		t.Errorf("unpadded nonce: %v", err)
	}
	for _, bad := range []string{"", "!!!", "AAAA", nonce[:20]} {
		if _, _, err := SplitAKANonce(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := JoinAKANonce(rand[:15], autn, nil); err == nil {
		t.Error("short RAND accepted")
	}

	auts := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}
	enc, _ := EncodeAUTS(auts)
	if enc != "AAECAwQFBgcICQoLDA0=" {
		t.Errorf("EncodeAUTS %s", enc)
	}
	dec, err := DecodeAUTS(enc)
	if err != nil || !bytes.Equal(dec, auts) {
		t.Errorf("DecodeAUTS %x %v", dec, err)
	}
	if _, err := DecodeAUTS("AAECAwQFBgcICQoLDA0O"); err == nil {
		t.Error("15-byte AUTS accepted")
	}
	if _, err := EncodeAUTS(auts[:3]); err == nil {
		t.Error("short AUTS encoded")
	}
	cred := Must(Parse(`Digest username="u@r",realm="r",nonce="` + nonce + `",uri="sip:r",response="",auts="` + enc + `"`))
	if b, err := DecodeAUTS(cred.AUTS()); err != nil || !bytes.Equal(b, auts) {
		t.Errorf("auts from header: %v", err)
	}
}

func TestAKAResponses(t *testing.T) {
	// RES with a zero byte: must be used as raw bytes.
	res := []byte{0xa5, 0x00, 0x42, 0x17, 0x00, 0x99, 0x01, 0x02}
	ik := bytes.Repeat([]byte{0x11}, 16)
	ck := bytes.Repeat([]byte{0x22}, 16)
	nonce, _ := JoinAKANonce(bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16), nil)

	p1 := AKAv1Password(res)
	if !bytes.Equal(p1, res) {
		t.Fatal("AKAv1Password")
	}
	p1[0] = 0
	if res[0] != 0xa5 {
		t.Fatal("AKAv1Password aliases RES")
	}
	ha1 := HA1("u@r", "r", string(res))
	if ha1 == HA1("u@r", "r", "\xa5") {
		t.Fatal("RES truncated at the zero byte")
	}
	resp := Response(ha1, "REGISTER", "sip:r", nonce, "00000001", "abc", "auth")
	cred := Must(Parse(`Digest username="u@r", realm="r", nonce="` + nonce + `", uri="sip:r", response="` + resp + `", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce="abc"`))
	if ok, err := VerifyPassword(cred, "REGISTER", AKAv1Password(res), nil); err != nil || !ok {
		t.Errorf("AKAv1 verify: %v %v", ok, err)
	}
	if ok, _ := VerifyPassword(cred, "REGISTER", res[:1], nil); ok {
		t.Error("truncated RES accepted")
	}

	p2 := AKAv2Password(res, ik, ck)
	// Independent value: openssl dgst -md5 -mac HMAC -macopt hexkey:<RES||IK||CK> | base64.
	if string(p2) != "ZoR5G+0uJay0czhHYppHAw==" {
		t.Errorf("AKAv2Password = %s", p2)
	}
	if bytes.Equal(AKAv2Password(res, ck, ik), p2) {
		t.Error("IK and CK order ignored")
	}
}

func TestMessageHelpers(t *testing.T) {
	raw, err := os.ReadFile("../imsheader/testdata/volte_register.txt")
	if err != nil {
		t.Fatal(err)
	}
	msg, err := sip.NewParser().ParseSIP(raw)
	if err != nil {
		t.Fatal(err)
	}
	req := msg.(*sip.Request)
	auth, err := GetAuthorization(req, "ims.mnc001.mcc001.3gppnetwork.org")
	if err != nil || auth == nil {
		t.Fatalf("%v %v", auth, err)
	}
	if auth.Username() != "001010000000001@ims.mnc001.mcc001.3gppnetwork.org" || auth.Nonce() != "" || !auth.Has("response") {
		t.Errorf("%s", auth)
	}
	orig := req.GetHeader(HeaderAuthorization).Value()
	if auth.String() != orig {
		t.Errorf("re-formatted Authorization differs:\n%s\n%s", auth, orig)
	}
	if a, _ := GetAuthorization(req, "other.realm"); a != nil {
		t.Error("matched another realm")
	}
	auth.Set("integrity-protected", IntegrityNo)
	Set(req, HeaderAuthorization, auth)
	out := req.String()
	if !strings.Contains(out, "\r\nAuthorization: "+orig+`,integrity-protected="no"`+"\r\nSecurity-Client: ") {
		t.Errorf("Authorization not rewritten in place:\n%s", out)
	}
	if s := strings.Replace(out, `,integrity-protected="no"`, "", 1); s != string(raw) {
		t.Error("other bytes changed")
	}

	// 401 from the S-CSCF: P-CSCF removes ik/ck.
	resp := sip.NewResponseFromRequest(req, 401, "Unauthorized", nil)
	Set(resp, HeaderWWWAuthenticate, NewAKAChallenge("r", "bm9uY2U=", AlgAKAv1, make([]byte, 16), make([]byte, 16)), NewChallenge("r", "n2", AlgMD5, QOPAuth))
	resp.AppendHeader(sip.NewHeader(HeaderWWWAuthenticate, `Basic realm="x"`))
	all, err := GetAll(resp, HeaderWWWAuthenticate)
	if err != nil || len(all) != 2 {
		t.Fatalf("%v %v", all, err)
	}
	if c, _ := GetWWWAuthenticate(resp); c == nil || c.IK() == "" {
		t.Fatal("first challenge")
	}
	for _, c := range all {
		c.Del("ik")
		c.Del("ck")
	}
	Set(resp, HeaderWWWAuthenticate, all...)
	vs := resp.GetHeaders(HeaderWWWAuthenticate)
	if len(vs) != 2 || strings.Contains(resp.String(), "ik=") || vs[1].Value() != `Digest realm="r", nonce="n2", algorithm=MD5, qop="auth"` {
		t.Errorf("after Set:\n%s", resp)
	}
	if c, _ := GetProxyAuthenticate(resp); c != nil {
		t.Error("Proxy-Authenticate found")
	}
	if c, _ := GetProxyAuthorization(req, ""); c != nil {
		t.Error("Proxy-Authorization found")
	}
	resp.AppendHeader(sip.NewHeader(HeaderProxyAuthenticate, `Digest realm="unterminated`))
	if _, err := GetProxyAuthenticate(resp); err == nil {
		t.Error("malformed Proxy-Authenticate accepted")
	}
	Set(resp, HeaderWWWAuthenticate)
	if len(resp.GetHeaders(HeaderWWWAuthenticate)) != 0 {
		t.Error("Set with nothing did not remove")
	}
}

// BenchmarkParseAuthorization: an IMS AKA challenge answer's
// Authorization, as the I-CSCF and S-CSCF parse it for every REGISTER.
func BenchmarkParseAuthorization(b *testing.B) {
	const v = `Digest username="alice@ims.mnc001.mcc001.3gppnetwork.org", realm="ims.mnc001.mcc001.3gppnetwork.org", ` +
		`uri="sip:ims.mnc001.mcc001.3gppnetwork.org", nonce="Vbj1aqFgOXqhSkE3MNf1H3SbWMgT3wAAdGVzdHRlc3R0ZXN0dGVzdA==", ` +
		`response="6629fae49393a05397450978507c4ef1", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce="0a4f113b"`
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(v); err != nil {
			b.Fatal(err)
		}
	}
}
