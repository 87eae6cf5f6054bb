package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/aka"
	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/siptest"
)

// goUE is a phone written with sipgo and pkg/aka, for what sipp cannot do
// (auts, deliberately wrong RES).
type goUE struct {
	client *sipgo.Client
	user   string
	callID string
	cseq   uint32
	usim   *aka.UE
	port   int
}

func newGoUE(t *testing.T, user string, sqnMS uint64) *goUE {
	t.Helper()
	c := siptest.NewClient(t)
	k, _ := hex.DecodeString(set1K)
	op, _ := hex.DecodeString(set1OP)
	opc, _ := aka.ComputeOPc(k, op)
	usim, err := aka.NewUE(k, opc, sqnMS)
	if err != nil {
		t.Fatal(err)
	}
	return &goUE{client: c, user: user, callID: sip.GenerateTagN(16), usim: usim, port: 20000 + int(time.Now().UnixNano()%10000)}
}

func (u *goUE) impi() string { return u.user + "@" + domain }

// register sends one REGISTER to the I-CSCF with the given Authorization.
func (u *goUE) register(t *testing.T, l *lab, authz string) *sip.Response {
	t.Helper()
	u.cseq++
	msg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:%s>;tag=%s\r\n"+
		"To: <sip:%s>\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: %d REGISTER\r\n"+
		"Contact: <sip:%s@127.0.0.1:%d>;+sip.instance=\"<urn:gsma:imei:35-000000-000000-0>\"\r\n"+
		"Expires: 600\r\n"+
		"Authorization: %s\r\n"+
		"Content-Length: 0\r\n\r\n",
		domain, u.port, sip.GenerateBranch(), u.impi(), sip.GenerateTagN(8), u.impi(), u.callID, u.cseq, u.user, u.port, authz)
	m, err := sip.ParseMessage([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	req.RemoveHeader("Via") // sipgo's client adds its own
	req.SetDestination("127.0.0.1:" + strconv.Itoa(l.icscf))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := u.client.Do(ctx, req)
	if err != nil {
		t.Fatalf("REGISTER: %v", err)
	}
	return res
}

func (u *goUE) initial() string {
	return fmt.Sprintf(`Digest username="%s", realm="%s", uri="sip:%s", nonce="", response=""`, u.impi(), domain, domain)
}

func (u *goUE) challenge(t *testing.T, res *sip.Response) (ch *digest.Header, rnd, autn []byte) {
	t.Helper()
	if res.StatusCode != 401 {
		t.Fatalf("want 401, got %d %s", res.StatusCode, res.Reason)
	}
	ch, err := digest.GetWWWAuthenticate(res)
	if err != nil || ch == nil {
		t.Fatalf("no challenge: %v", err)
	}
	rnd, autn, err = digest.SplitAKANonce(ch.Nonce())
	if err != nil {
		t.Fatal(err)
	}
	return ch, rnd, autn
}

func (u *goUE) credentials(ch *digest.Header, password []byte, extra string) string {
	uri := "sip:" + domain
	ha1 := digest.HA1(u.impi(), ch.Realm(), string(password))
	resp := digest.Response(ha1, "REGISTER", uri, ch.Nonce(), "00000001", "c0ffee01", "auth")
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=AKAv1-MD5, qop=auth, nc=00000001, cnonce="c0ffee01"%s`,
		u.impi(), ch.Realm(), ch.Nonce(), uri, resp, extra)
}

// TestGoClient covers AKA cases sipp cannot play: SQN resynchronisation
// with auts, and a wrong RES.
func TestGoClient(t *testing.T) {
	l := newLab(t)
	l.addAKA("sync", "--sqn", "0")
	l.addAKA("liar")

	t.Run("resync via AUTS", func(t *testing.T) {
		u := newGoUE(t, "sync", 1<<35) // the USIM is far ahead of the HSS
		ch, rnd, autn := u.challenge(t, u.register(t, l, u.initial()))
		_, _, _, auts, err := u.usim.Authenticate(rnd, autn)
		if err == nil || auts == nil {
			t.Fatalf("USIM accepted the stale SQN: %v", err)
		}
		enc, _ := digest.EncodeAUTS(auts)
		authz := fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="sip:%s", response="", algorithm=AKAv1-MD5, auts="%s"`,
			u.impi(), domain, ch.Nonce(), domain, enc)
		ch, rnd, autn = u.challenge(t, u.register(t, l, authz))
		res, _, _, _, err := u.usim.Authenticate(rnd, autn)
		if err != nil {
			t.Fatalf("after resync the USIM still rejects the challenge: %v", err)
		}
		r := u.register(t, l, u.credentials(ch, digest.AKAv1Password(res), ""))
		if r.StatusCode != 200 {
			t.Fatalf("after resync: %d %s", r.StatusCode, r.Reason)
		}
		if _, ok := l.registrar().find("sip:sync@" + domain); !ok {
			t.Error("not registered after resync")
		}
	})
	t.Run("wrong RES gets 403", func(t *testing.T) {
		u := newGoUE(t, "liar", 0)
		ch, _, _ := u.challenge(t, u.register(t, l, u.initial()))
		r := u.register(t, l, u.credentials(ch, []byte("notTheRES"), ""))
		if r.StatusCode != 403 {
			t.Fatalf("wrong RES: %d %s", r.StatusCode, r.Reason)
		}
		if _, ok := l.registrar().find("sip:liar@" + domain); ok {
			t.Error("registered with a wrong RES")
		}
	})
}
