package e2e

import (
	"context"
	"fmt"
	"github.com/imscore/imscore/pkg/siptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/digest"
	"github.com/imscore/imscore/pkg/sipproxy"
)

// addMD5 provisions a digest (MD5) subscriber; extra imsctl flags follow.
func (l *lab) addMD5(user, password string, extra ...string) {
	l.t.Helper()
	args := []string{"subscriber", "add", "--impi", user + "@" + domain, "--impu", "sip:" + user + "@" + domain, "--password", password}
	l.imsctl(append(args, extra...)...)
}

// md5Register registers user with contact sip:user@127.0.0.1:port through
// the I-CSCF (MD5 digest, like a softphone behind no P-CSCF) and fails the
// test unless the answer is 200.
func (l *lab) md5Register(t testing.TB, user, password string, port int) {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatal(err)
	}
	defer ua.Close()
	c, err := sipgo.NewClient(ua)
	if err != nil {
		t.Fatal(err)
	}
	impi := user + "@" + domain
	callID := sip.GenerateTagN(16)
	send := func(cseq int, authz string) *sip.Response {
		msg := fmt.Sprintf("REGISTER sip:%s SIP/2.0\r\n"+
			"Max-Forwards: 70\r\n"+
			"From: <sip:%s>;tag=%s\r\n"+
			"To: <sip:%s>\r\n"+
			"Call-ID: %s\r\n"+
			"CSeq: %d REGISTER\r\n"+
			"Contact: <sip:%s@127.0.0.1:%d>\r\n"+
			"Expires: 600\r\n"+
			"Authorization: %s\r\n"+
			"Content-Length: 0\r\n\r\n",
			domain, impi, sip.GenerateTagN(8), impi, callID, cseq, user, port, authz)
		m, err := sip.ParseMessage([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		req := m.(*sip.Request)
		req.SetDestination(fmt.Sprintf("127.0.0.1:%d", l.icscf))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		res, err := c.Do(ctx, req)
		if err != nil {
			t.Fatalf("REGISTER %s: %v", user, err)
		}
		return res
	}
	res := send(1, fmt.Sprintf(`Digest username="%s", realm="%s", uri="sip:%s", nonce="", response=""`, impi, domain, domain))
	ch, err := digest.GetWWWAuthenticate(res)
	if res.StatusCode != 401 || err != nil || ch == nil {
		t.Fatalf("REGISTER %s: want 401, got %d %s (%v)", user, res.StatusCode, res.Reason, err)
	}
	uri := "sip:" + domain
	ha1 := digest.HA1(impi, ch.Realm(), password)
	resp := digest.Response(ha1, "REGISTER", uri, ch.Nonce(), "00000001", "0a4f113b", "auth")
	res = send(2, fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5, qop=auth, nc=00000001, cnonce="0a4f113b"`,
		impi, ch.Realm(), ch.Nonce(), uri, resp))
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER %s: %d %s", user, res.StatusCode, res.Reason)
	}
}

// sippProc is a sipp run in the background (a UAS waiting for calls).
type sippProc struct {
	cmd  *exec.Cmd
	out  *syncBuffer
	dir  string
	done chan struct{}
	err  error
}

// scenarioCopy writes testdata/name with the replacements applied into dir.
func scenarioCopy(t testing.TB, dir, name string, repl ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if len(repl) > 0 {
		text = strings.NewReplacer(repl...).Replace(text)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sippUAS starts sipp as a UAS on 127.0.0.1:port for calls calls.
func sippUAS(t testing.TB, scenario string, port, calls int) *sippProc {
	t.Helper()
	sipp := needSipp(t)
	dir := t.TempDir()
	sf := scenarioCopy(t, dir, scenario)
	p := &sippProc{out: &syncBuffer{}, dir: dir, done: make(chan struct{})}
	p.cmd = exec.Command(sipp, "-sf", sf, "-i", "127.0.0.1", "-p", fmt.Sprint(port), "-t", "u1",
		"-m", fmt.Sprint(calls), "-nostdin", "-timeout", "60s", "-timeout_error", "-trace_err", "-error_file", filepath.Join(dir, "errors.log"),
		"-trace_msg", "-message_file", filepath.Join(dir, "messages.log"))
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	time.Sleep(200 * time.Millisecond) // let it bind
	return p
}

// wait waits for the UAS to finish its calls; it reports success and the
// output with the message trace.
func (p *sippProc) wait(within time.Duration) (bool, string) {
	select {
	case <-p.done:
	case <-time.After(within):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	m, _ := os.ReadFile(filepath.Join(p.dir, "messages.log"))
	e, _ := os.ReadFile(filepath.Join(p.dir, "errors.log"))
	return p.err == nil, p.out.String() + "\n" + string(e) + "\n" + string(m)
}

// sippUAC runs one call of scenario from caller to callee, sent to the
// S-CSCF with its Service-Route (what a P-CSCF would do), from local port
// port; repl are replacements applied to the scenario text.
func (l *lab) sippUAC(t testing.TB, scenario, caller, callee string, port int, repl ...string) (bool, string) {
	t.Helper()
	return sippUACTo(t, l.scscf, scenario, caller, callee, port, repl...)
}

// sippUACTo is sippUAC sending to 127.0.0.1:remote (e.g. a P-CSCF, which
// replaces the scenario's Route and P-Asserted-Identity).
func sippUACTo(t testing.TB, remote int, scenario, caller, callee string, port int, repl ...string) (bool, string) {
	t.Helper()
	sipp := needSipp(t)
	dir := t.TempDir()
	sf := scenarioCopy(t, dir, scenario, repl...)
	cmd := exec.Command(sipp, fmt.Sprintf("127.0.0.1:%d", remote), "-sf", sf,
		"-key", "domain", domain, "-key", "caller", caller, "-key", "callee", callee,
		"-i", "127.0.0.1", "-p", fmt.Sprint(port), "-t", "u1", "-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error",
		"-trace_err", "-error_file", filepath.Join(dir, "errors.log"), "-trace_msg", "-message_file", filepath.Join(dir, "messages.log"))
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	m, _ := os.ReadFile(filepath.Join(dir, "messages.log"))
	e, _ := os.ReadFile(filepath.Join(dir, "errors.log"))
	return err == nil, string(out) + "\n" + string(e) + "\n" + string(m)
}

// testAS is an application server for the ISC tests: a pkg/sipproxy
// element (sipgo underneath) that Record-Routes and proxies the request
// on along its Route (the S-CSCF's ODI entry), recording what it got.
type testAS struct {
	p  *sipproxy.Proxy
	mu sync.Mutex
	// got holds the initial requests received, in order.
	got []*sip.Request
}

func newTestAS(t *testing.T, name string) *testAS {
	t.Helper()
	a := &testAS{}
	p, err := sipproxy.New(sipproxy.Config{ListenAddr: "127.0.0.1:0", Logger: siptest.Logger(t).Named(name),
		Handler: func(ctx context.Context, tx *sipproxy.Txn) {
			req := tx.Request()
			if to := req.To(); to != nil && !req.IsAck() {
				if tag, _ := to.Params.Get("tag"); tag == "" {
					a.mu.Lock()
					a.got = append(a.got, req.Clone())
					a.mu.Unlock()
				}
			}
			_, _ = tx.Forward(ctx, sipproxy.ForwardOptions{RecordRoute: req.IsInvite()})
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	a.p = p
	return a
}

func (a *testAS) uri() string { return "sip:" + a.p.Addr("udp").String() }

func (a *testAS) invites() []*sip.Request {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []*sip.Request
	for _, r := range a.got {
		if r.IsInvite() {
			out = append(out, r)
		}
	}
	return out
}
