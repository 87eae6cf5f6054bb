package digest

import (
	"reflect"
	"testing"
)

func FuzzParseDigest(f *testing.F) {
	for _, s := range []string{
		`Digest username="001010000000001@ims.mnc001.mcc001.3gppnetwork.org",realm="ims.mnc001.mcc001.3gppnetwork.org",nonce="",uri="sip:ims.mnc001.mcc001.3gppnetwork.org",response=""`,
		`Digest realm="ims.example.org", nonce="base64==", algorithm=AKAv1-MD5, qop="auth", ik="0123", ck="4567"`,
		`Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41"`,
		`Digest realm="a\"b\\c", x=y,z="",auts="AAECAwQFBgcICQoLDA0="`,
		`Digest realm="unterminated`,
		`Basic dXNlcjpwYXNz`,
		`Digest realm`,
		``,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := Parse(s)
		if err != nil {
			return
		}
		_ = h.QOPOptions()
		_, _, _ = h.Keys()
		_, _ = DecodeAUTS(h.AUTS())
		_, _, _ = SplitAKANonce(h.Nonce())
		_, _ = VerifyPassword(h, "REGISTER", []byte("pw"), nil)
		out := h.String()
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of %q (from %q): %v", out, s, err)
		}
		if !reflect.DeepEqual(h, again) {
			t.Fatalf("unstable:\n in %q\nout %q", s, out)
		}
		if again.String() != out {
			t.Fatalf("format not idempotent: %q", s)
		}
		// Editing keeps the value parseable.
		again.Set("integrity-protected", "yes")
		again.Del("ik")
		if _, err := Parse(again.String()); err != nil {
			t.Fatalf("after Set/Del %q: %v", again.String(), err)
		}
	})
}

func FuzzParseAuthenticationInfo(f *testing.F) {
	for _, s := range []string{`nextnonce="abc", qop=auth, rspauth="d3b0", cnonce="x", nc=00000001`, `a`, ``} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := ParseAuthenticationInfo(s)
		if err != nil {
			return
		}
		again, err := ParseAuthenticationInfo(h.String())
		if err != nil || !reflect.DeepEqual(h, again) {
			t.Fatalf("unstable %q -> %q (%v)", s, h.String(), err)
		}
	})
}
