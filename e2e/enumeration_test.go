package e2e

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/siptest"
)

// prober sends REGISTERs to the P-CSCF the way sipvicious does: one
// socket, any identity.
type prober struct {
	c     *sipgo.Client
	pcscf int
	cseq  uint32
}

func (p *prober) register(t *testing.T, user, authz string, expires int) *sip.Response {
	t.Helper()
	p.cseq++
	impi := user + "@" + domain
	msg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP 127.0.0.1:5999;branch=%s;rport\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:%s>;tag=%s\r\nTo: <sip:%s>\r\nCall-ID: %s\r\nCSeq: %d REGISTER\r\n"+
		"Contact: <sip:%s@127.0.0.1:5999>\r\nExpires: %d\r\nAuthorization: %s\r\nContent-Length: 0\r\n\r\n",
		domain, sip.GenerateBranch(), impi, sip.GenerateTagN(8), impi, sip.GenerateTagN(12), p.cseq, user, expires, authz)
	m, err := sip.ParseMessage([]byte(msg))
	if err != nil {
		t.Fatal(err)
	}
	req := m.(*sip.Request)
	req.RemoveHeader("Via")
	req.SetDestination("127.0.0.1:" + strconv.Itoa(p.pcscf))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := p.c.Do(ctx, req)
	if err != nil {
		t.Fatalf("REGISTER %s: %v", user, err)
	}
	return res
}

func initialAuthz(user string) string {
	return fmt.Sprintf(`Digest username="%s@%s", realm="%s", uri="sip:%s", nonce="", response=""`, user, domain, domain, domain)
}

// wrongAnswer answers challenge res with a response that cannot be right.
func wrongAnswer(t *testing.T, user string, res *sip.Response) string {
	t.Helper()
	ch, err := digest.Parse(res.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`Digest username="%s@%s", realm="%s", uri="sip:%s", nonce="%s", response="0123456789abcdef0123456789abcdef", algorithm=%s, qop=auth, nc=00000001, cnonce="abc"`,
		user, domain, ch.Realm(), domain, ch.Nonce(), ch.Algorithm())
}

// shape is what tells two answers apart without their random parts: the
// status line, the header names, the challenge's parameter names and
// algorithm.
func shape(res *sip.Response) string {
	var names []string
	for _, h := range res.Headers() {
		names = append(names, strings.ToLower(h.Name()))
	}
	sort.Strings(names)
	s := fmt.Sprintf("%d %s | %s", res.StatusCode, res.Reason, strings.Join(names, ","))
	if h := res.GetHeader("WWW-Authenticate"); h != nil {
		if ch, err := digest.Parse(h.Value()); err == nil {
			var params []string
			for _, p := range ch.Params {
				params = append(params, p.Name)
			}
			s += " | " + strings.Join(params, ",") + " " + ch.Algorithm()
		}
	}
	return s
}

// TestEdgeAgainstEnumerationAndGuessing is issue 22's attacker at the
// P-CSCF (make lab's chain, --hide-warnings on):
//   - a provisioned and an unknown identity get answers of the same shape:
//     401 with the same challenge form, then 403 "Authentication failed"
//     for a wrong answer (before: 401 vs 403 Unknown User with a Warning
//     quoting UAA 5001);
//   - no Warning reaches the UE (before: internal hosts, Diameter codes);
//   - wrong passwords for one IMPI lock it out at the S-CSCF (403
//     "Authentication throttled" with Retry-After, even for the right
//     password; before: a plain 403 for every guess);
//   - failures from one source lock the source out at the P-CSCF (503
//     with Retry-After before anything reaches the core).
//
// The answer times of the two identities are logged (medians), not
// asserted: speed belongs in benchmarks.
func TestEdgeAgainstEnumerationAndGuessing(t *testing.T) {
	l := newPCSCFLabArgs(t, freePort(t), []string{"--auth-failure-burst", "3"},
		[]string{"--hide-warnings", "--source-auth-failure-burst", "12", "--source-auth-failure-every", "1h"})
	l.addAKA("alice")
	l.imsctl("subscriber", "add", "--impi", "bob@"+domain, "--impu", "sip:bob@"+domain, "--password", "secret")
	p := &prober{c: siptest.NewClient(t), pcscf: l.pcscf}

	// Same shapes for known and unknown identities.
	var known, unknown []time.Duration
	for i := 0; i < 10; i++ {
		for _, u := range []string{"alice", "mallory"} {
			start := time.Now()
			res := p.register(t, u, initialAuthz(u), 600)
			took := time.Since(start)
			if u == "alice" {
				known = append(known, took)
			} else {
				unknown = append(unknown, took)
			}
			if res.StatusCode != 401 {
				t.Fatalf("initial REGISTER of %s: %d %s (Warning %v)", u, res.StatusCode, res.Reason, res.GetHeader("Warning"))
			}
		}
	}
	a, m := p.register(t, "alice", initialAuthz("alice"), 600), p.register(t, "mallory", initialAuthz("mallory"), 600)
	if shape(a) != shape(m) {
		t.Errorf("401s differ:\n known:   %s\n unknown: %s", shape(a), shape(m))
	}
	a2, m2 := p.register(t, "alice", wrongAnswer(t, "alice", a), 600), p.register(t, "mallory", wrongAnswer(t, "mallory", m), 600)
	if a2.StatusCode != 403 || shape(a2) != shape(m2) {
		t.Errorf("answers to wrong responses differ:\n known:   %s\n unknown: %s", shape(a2), shape(m2))
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	t.Logf("median time to the 401: known %v, unknown %v", med(known), med(unknown))

	// No Warning to the UE: a de-REGISTER of a known, unregistered IMPU
	// is refused by the I-CSCF with a Warning quoting UAA 5003.
	if res := p.register(t, "bob", initialAuthz("bob"), 0); res.StatusCode != 403 || res.GetHeader("Warning") != nil {
		t.Errorf("de-REGISTER of an unregistered IMPU: %d %s, Warning %v (want 403 without Warning)", res.StatusCode, res.Reason, res.GetHeader("Warning"))
	}

	// Guessing bob's password: locked out after 3 failures (2 so far
	// from this source).
	for i := 0; i < 3; i++ {
		res := p.register(t, "bob", initialAuthz("bob"), 600)
		if res.StatusCode != 401 {
			t.Fatalf("guess %d: %d %s", i+1, res.StatusCode, res.Reason)
		}
		if res = p.register(t, "bob", wrongAnswer(t, "bob", res), 600); res.StatusCode != 403 {
			t.Fatalf("wrong password %d: %d %s", i+1, res.StatusCode, res.Reason)
		}
	}
	res := p.register(t, "bob", initialAuthz("bob"), 600)
	if res.StatusCode != 403 || res.Reason != "Forbidden - Authentication throttled" || res.GetHeader("Retry-After") == nil {
		t.Fatalf("bob after 3 wrong passwords: %d %s, Retry-After %v (want 403 throttled with Retry-After)", res.StatusCode, res.Reason, res.GetHeader("Retry-After"))
	}
	if v := l.waitMetric("scscf", "scscf_auth_lockouts_total", 5*time.Second, func(v float64) bool { return v == 1 }); v != 1 {
		t.Errorf("scscf_auth_lockouts_total = %v", v)
	}

	// Source lockout: 5 failures so far; 7 more unknown-IMPI failures.
	for i := 0; i < 7; i++ {
		u := fmt.Sprintf("probe%d", i)
		res := p.register(t, u, initialAuthz(u), 600)
		if res.StatusCode != 401 {
			t.Fatalf("%s: %d %s", u, res.StatusCode, res.Reason)
		}
		if res = p.register(t, u, wrongAnswer(t, u, res), 600); res.StatusCode != 403 {
			t.Fatalf("%s wrong answer: %d %s", u, res.StatusCode, res.Reason)
		}
	}
	res = p.register(t, "alice", initialAuthz("alice"), 600)
	if res.StatusCode != 503 || res.GetHeader("Retry-After") == nil {
		t.Fatalf("source after 12 failures: %d %s (want 503 with Retry-After from the P-CSCF)", res.StatusCode, res.Reason)
	}
	if v := l.waitMetric("pcscf", "pcscf_auth_lockouts_total", 5*time.Second, func(v float64) bool { return v == 1 }); v != 1 {
		t.Errorf("pcscf_auth_lockouts_total = %v", v)
	}
}
