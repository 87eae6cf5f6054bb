package registrar

import (
	"fmt"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/digest"
)

const testDomain = "ims.mnc001.mcc001.3gppnetwork.org"

func TestRESWithZeroBytesIsThePassword(t *testing.T) {
	// RES as raw bytes, zero bytes included (RFC 3310 §3.3): a challenge
	// with a known XRES containing 0x00 verifies only with those bytes.
	c := &challenge{realm: testDomain, v: &vector{alg: digest.AlgAKAv1, xres: []byte{0x12, 0x00, 0x34, 0x00, 0, 0, 0x56, 0x78}}}
	ch := digest.NewAKAChallenge(testDomain, "bm9uY2U=", digest.AlgAKAv1, make([]byte, 16), make([]byte, 16))
	s := &Registrar{auth: newAuthState()}
	req := sip.NewRequest(sip.REGISTER, sip.Uri{Scheme: "sip", Host: testDomain})
	good, _ := digest.Parse(credentials(ch, "z@"+testDomain, string(c.v.xres)))
	if ok, why := s.verify(c, good, req); !ok {
		t.Errorf("RES with zero bytes rejected: %s", why)
	}
	trunc, _ := digest.Parse(credentials(ch, "z@"+testDomain, "\x12")) // what a C-string bug would use
	if ok, _ := s.verify(c, trunc, req); ok {
		t.Error("truncated RES accepted")
	}
}

// credentials is the Authorization (without qop) of impi answering the
// challenge ch with password.
func credentials(ch *digest.Header, impi, password string) string {
	uri := "sip:" + testDomain
	resp := digest.Response(digest.HA1(impi, ch.Realm(), password), "REGISTER", uri, ch.Nonce(), "", "", "")
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=%s`,
		impi, ch.Realm(), ch.Nonce(), uri, resp, ch.Algorithm())
}
