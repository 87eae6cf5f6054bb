package hss_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"

	"github.com/imscore/imscore/hss"
	"github.com/imscore/imscore/hss/provision"
	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/diameter/diamtest"
	"github.com/imscore/imscore/pkg/userdata"
)

func registerAlice(t *testing.T, scscf *diameter.Node) {
	t.Helper()
	wantResult(t, send(t, scscf, mar(scscf, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, nil)), diameter.DiameterSuccess, false)
	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATRegistration, 0)), diameter.DiameterSuccess, false)
}

func TestRTRAfterImsctlDeregister(t *testing.T) {
	e := newEnv(t)
	scscf := e.client(scscfHost)
	got := make(chan *diam.Message, 2)
	scscf.Handle(diameter.CmdRegistrationTermination, diameter.AppCx, func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
		got <- req
		return scscf.Answer(req, diameter.DiameterSuccess), nil
	})
	registerAlice(t, scscf)
	id, err := provision.Deregister(context.Background(), e.db, aliceIMPU, "")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		if diameter.String(r, diameter.AVPUserName) != aliceIMPI || len(diameter.FindAll(r, diameter.AVPPublicIdentity)) != 2 {
			t.Errorf("RTR identities: %v", r)
		}
		if c, _ := diameter.Uint32(r, diameter.AVPDeregistrationReason, diameter.AVPReasonCode); c != diameter.ReasonPermanentTermination {
			t.Errorf("Reason-Code %d", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no RTR reached the S-CSCF")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var done bool
		if err := e.db.QueryRow(context.Background(), `SELECT done_at IS NOT NULL FROM hss_command WHERE id = $1`, id).Scan(&done); err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("hss_command not marked done")
		}
		time.Sleep(50 * time.Millisecond)
	}
	icscf := e.client("icscf." + realm)
	wantResult(t, send(t, icscf, uar(icscf, aliceIMPI, aliceIMPU, diameter.UATDeRegistration)), diameter.DiameterErrorIdentityNotRegistered, true)
}

func TestRTRQueuedWhileSCSCFAway(t *testing.T) {
	e := newEnv(t)
	first := e.client(scscfHost)
	registerAlice(t, first)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	first.Close(ctx)
	cancel()
	if _, err := provision.Deregister(context.Background(), e.db, aliceIMPU, "remove-scscf"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // a few polls fail: S-CSCF not connected
	got := make(chan *diam.Message, 1)
	n := e.client(scscfHost)
	n.Handle(diameter.CmdRegistrationTermination, diameter.AppCx, func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
		got <- req
		return n.Answer(req, diameter.DiameterSuccess), nil
	})
	select {
	case r := <-got:
		if c, _ := diameter.Uint32(r, diameter.AVPDeregistrationReason, diameter.AVPReasonCode); c != diameter.ReasonRemoveSCSCF {
			t.Errorf("Reason-Code %d", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("queued RTR never sent after the S-CSCF reconnected")
	}
}

func TestPPR(t *testing.T) {
	e := newEnv(t)
	scscf := e.client(scscfHost)
	got := make(chan *diam.Message, 1)
	scscf.Handle(diameter.CmdPushProfile, diameter.AppCx, func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
		got <- req
		return scscf.Answer(req, diameter.DiameterSuccess), nil
	})
	registerAlice(t, scscf)
	if _, err := e.db.Exec(context.Background(), `UPDATE impu SET display_name = 'Alice' WHERE identity = $1`, aliceIMPU); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(context.Background(), `INSERT INTO hss_command (kind, impu) VALUES ('ppr', $1)`, aliceIMPU); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		b, _ := diameter.AsBytes(diameter.Find(r, diameter.AVPUserData))
		sub, err := userdata.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, pi := sub.ProfileFor(aliceIMPU); pi == nil || pi.DisplayName != "Alice" {
			t.Fatalf("PPR user data lacks the new display name: %s", b)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no PPR")
	}
	// The PPA's outcome is observable (it was only in the database's
	// hss_command.done_at before).
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if e.counter("hss_initiated_requests_total", map[string]string{"command": "PPR", "outcome": "answered"}) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(`hss_initiated_requests_total{command="PPR",outcome="answered"} did not reach 1`)
		}
	}
}

func TestDatabaseFailureAndRecovery(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(scscfHost)
	wantResult(t, send(t, c, mar(c, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, nil)), diameter.DiameterSuccess, false)
	if _, err := e.db.Exec(ctx, `ALTER TABLE impi RENAME TO impi_gone`); err != nil {
		t.Fatal(err)
	}
	for _, m := range []*diam.Message{
		mar(c, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, nil),
		uar(c, aliceIMPI, aliceIMPU, 0),
		sar(c, aliceIMPI, aliceIMPU, diameter.SATRegistration, 0),
	} {
		wantResult(t, send(t, c, m), diameter.DiameterUnableToComply, false)
	}
	if _, err := e.db.Exec(ctx, `ALTER TABLE impi_gone RENAME TO impi`); err != nil {
		t.Fatal(err)
	}
	wantResult(t, send(t, c, mar(c, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, nil)), diameter.DiameterSuccess, false)
	wantResult(t, send(t, c, sar(c, aliceIMPI, aliceIMPU, diameter.SATRegistration, 0)), diameter.DiameterSuccess, false)
}

// A proxy in front of PostgreSQL that the test closes and reopens: the HSS
// starts with the database unreachable, answers 5012 and is not ready, and
// serves normally once the database is reachable again.
func TestDatabaseDownAtStart(t *testing.T) {
	e := newEnv(t)
	e.stop()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close() // nothing listens: database "down"
	dsn := strings.Replace(e.dsn, "127.0.0.1:5432", "127.0.0.1:"+strconv.Itoa(port), 1)
	if dsn == e.dsn {
		t.Skipf("DATABASE_URL %q is not on 127.0.0.1:5432", e.dsn)
	}
	s, err := hss.New(hss.Config{DiameterListen: "127.0.0.1:0", Realm: realm, AcceptAnyPeer: true, DatabaseURL: dsn,
		PollInterval: 200 * time.Millisecond, RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	addr, err := s.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if s.Ready(context.Background()) == nil {
		t.Fatal("ready without a database")
	}
	c := dial(t, addr.String(), scscfHost)
	wantResult(t, send(t, c, mar(c, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, nil)), diameter.DiameterUnableToComply, false)

	// Database back (a forwarding proxy on the same port).
	pl, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Skipf("port %d taken meanwhile: %v", port, err)
	}
	defer pl.Close()
	go func() {
		for {
			in, err := pl.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", "127.0.0.1:5432")
			if err != nil {
				in.Close()
				continue
			}
			go func() { defer out.Close(); _, _ = copyConn(out, in) }()
			go func() { defer in.Close(); _, _ = copyConn(in, out) }()
		}
	}()
	if err := s.Ready(context.Background()); err != nil {
		t.Fatalf("not ready after the database came back: %v", err)
	}
	wantResult(t, send(t, c, mar(c, aliceIMPI, aliceIMPU, "Digest-AKAv1-MD5", 1, nil)), diameter.DiameterSuccess, false)
}

func copyConn(dst, src net.Conn) (int64, error) {
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if _, werr := dst.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if err != nil {
			return n, err
		}
	}
}

func TestTsharkCxSh(t *testing.T) {
	e := newEnv(t)
	addASes(t, e)
	stop := diamtest.Capture(t, e.port())
	scscf := e.client(scscfHost)
	icscf := e.client("icscf." + realm)
	as1 := e.client(as1Host)
	send(t, icscf, uar(icscf, aliceIMPI, aliceIMPU, 0))
	registerAlice(t, scscf)
	send(t, icscf, lir(icscf, aliceIMPU))
	send(t, as1, udr(as1, aliceIMPU, 10, 11, 12))
	send(t, as1, pur(as1, aliceIMPU, 0, "<a/>"))
	send(t, as1, snr(as1, aliceIMPU, 0))
	pcap := stop()
	diamtest.AssertNoMalformed(t, pcap, e.port())
	sum := diamtest.Read(t, pcap, e.port())
	for _, want := range []string{"User-Authorization Request", "User-Authorization Answer", "Multimedia-Auth Request",
		"Multimedia-Auth Answer", "Server-Assignment Request", "Server-Assignment Answer", "Location-Info Request",
		"User-Data Request", "User-Data Answer", "Profile-Update Request", "Subscribe-Notifications Request"} {
		if !strings.Contains(sum, want) {
			t.Errorf("tshark summary lacks %q", want)
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("tshark:\n%s", sum)
	}
}

// TestPPRRefusedNotRetried: an S-CSCF that answers PPR with a permanent
// failure (3007, as freeDiameter does, or a Kamailio S-CSCF without a PPR
// handler would with 3001) is not sent the same PPR at every poll forever;
// a transient failure (3004 DIAMETER_TOO_BUSY) is retried.
func TestPPRRefusedNotRetried(t *testing.T) {
	e := newEnv(t)
	scscf := e.client(scscfHost)
	var calls atomic.Int32
	var result atomic.Uint32
	result.Store(diameter.DiameterTooBusy)
	scscf.Handle(diameter.CmdPushProfile, diameter.AppCx, func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
		calls.Add(1)
		return scscf.Answer(req, result.Load()), nil
	})
	registerAlice(t, scscf)
	if _, err := e.db.Exec(context.Background(), `INSERT INTO hss_command (kind, impu) VALUES ('ppr', $1)`, aliceIMPU); err != nil {
		t.Fatal(err)
	}
	// Transient: retried (the poll interval is 200 ms in tests).
	waitFor(t, 5*time.Second, "a retried PPR after 3004", func() bool { return calls.Load() >= 2 })
	if v := e.counter("hss_initiated_requests_total", map[string]string{"command": "PPR", "outcome": "retry"}); v < 1 {
		t.Errorf("retry outcome counted %v times", v)
	}
	// Permanent: done after one more attempt.
	result.Store(diameter.DiameterApplicationUnsupported)
	waitFor(t, 5*time.Second, "the PPR refused with 3007 marked done", func() bool {
		return e.counter("hss_initiated_requests_total", map[string]string{"command": "PPR", "outcome": "refused"}) == 1
	})
	n := calls.Load()
	time.Sleep(time.Second) // five polls
	if got := calls.Load(); got != n {
		t.Errorf("PPR sent %d more times after the S-CSCF refused it with 3007", got-n)
	}
	var done bool
	if err := e.db.QueryRow(context.Background(), `SELECT bool_and(done_at IS NOT NULL) FROM hss_command`).Scan(&done); err != nil || !done {
		t.Errorf("hss_command not marked done after a permanent refusal (%v)", err)
	}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
