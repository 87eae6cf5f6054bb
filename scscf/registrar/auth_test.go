package registrar

import (
	"fmt"
	"testing"
	"time"

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

// TestSweepDropsStaleVectors: the once-a-second sweep drops cached
// vectors older than the vector lifetime and keeps the others in order;
// an IMPI left with none is forgotten.
func TestSweepDropsStaleVectors(t *testing.T) {
	a := newAuthState()
	now := time.Unix(1_000_000, 0)
	life := time.Minute
	old1, old2 := &vector{alg: "old1", fetched: now.Add(-2 * life)}, &vector{alg: "old2", fetched: now.Add(-life - time.Second)}
	new1, new2 := &vector{alg: "new1", fetched: now.Add(-life)}, &vector{alg: "new2", fetched: now}
	a.vectors["mixed"] = []*vector{old1, new1, old2, new2}
	a.vectors["fresh"] = []*vector{new1, new2}
	a.vectors["stale"] = []*vector{old1, old2}
	a.sweep(now, time.Hour, time.Hour, life)
	var got []string
	for _, v := range a.vectors["mixed"] {
		got = append(got, v.alg)
	}
	if fmt.Sprint(got) != "[new1 new2]" {
		t.Errorf("mixed: kept %v, want [new1 new2]", got)
	}
	if len(a.vectors["fresh"]) != 2 {
		t.Errorf("fresh: kept %d of 2", len(a.vectors["fresh"]))
	}
	if l, ok := a.vectors["stale"]; ok {
		t.Errorf("stale: %d vectors left, want the IMPI forgotten", len(l))
	}
}
