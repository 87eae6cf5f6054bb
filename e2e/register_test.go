package e2e

import (
	"strings"
	"testing"
	"time"
)

// TestRegistration provisions subscribers with imsctl and registers them
// with sipp through I-CSCF → S-CSCF → HSS (all real binaries).
func TestRegistration(t *testing.T) {
	needSipp(t)
	l := newLab(t)
	l.addAKA("alice")
	l.addAKA("bob", "--impu", "tel:+15551234")
	l.addAKA("carol", "--impu", "sip:carol.barred@"+domain, "--barred", "sip:carol.barred@"+domain)
	l.imsctl("subscriber", "add", "--impi", "dave@"+domain, "--impu", "sip:dave@"+domain, "--password", "s3cret")

	t.Run("first registration", func(t *testing.T) {
		l.sippAKA(t, "alice", 600)
		if n, ok := l.registrar().find("sip:alice@" + domain); !ok || n != 1 {
			t.Fatalf("registrar: %d contacts, registered %v", n, ok)
		}
	})
	t.Run("re-registration", func(t *testing.T) {
		before := l.metric("scscf", `scscf_registrations_total{type="re"}`)
		l.sippAKA(t, "alice", 300)
		if after := l.metric("scscf", `scscf_registrations_total{type="re"}`); after != before+1 {
			t.Errorf("re-registrations %v → %v", before, after)
		}
		st := l.registrar()
		for _, r := range st.Registrations {
			if r.AOR == "sip:alice@"+domain && (len(r.Contacts) != 1 || r.Contacts[0].ExpiresIn > 300) {
				t.Errorf("binding after re-registration: %+v", r)
			}
		}
	})
	t.Run("de-registration", func(t *testing.T) {
		l.sippAKA(t, "alice", 0)
		if _, ok := l.registrar().find("sip:alice@" + domain); ok {
			t.Fatal("still registered")
		}
	})
	t.Run("MD5", func(t *testing.T) {
		ok, out, _ := l.sippRun(t, "register_md5.xml", []string{"dave;s3cret"}, 600)
		if !ok {
			t.Fatalf("MD5 registration failed:\n%s", tail(out, 3000))
		}
		if _, ok := l.registrar().find("sip:dave@" + domain); !ok {
			t.Error("dave not registered")
		}
		before := l.metric("scscf", `scscf_auth_failures_total{cause="wrong_response"}`)
		if ok, out, _ := l.sippRun(t, "register_md5_wrong.xml", []string{"dave;wrong"}, 600); !ok {
			t.Errorf("wrong MD5 password not refused with 403:\n%s", tail(out, 2000))
		}
		if after := l.metric("scscf", `scscf_auth_failures_total{cause="wrong_response"}`); after != before+1 {
			t.Errorf("auth failures %v → %v", before, after)
		}
	})
	t.Run("unknown user gets a challenge, then 403", func(t *testing.T) {
		ok, out, trace := l.sippRun(t, "register_unknown.xml", []string{"nobody"}, 600)
		if !ok {
			t.Fatalf("unknown user:\n%s\n%s", tail(out, 2000), tail(trace, 2000))
		}
	})
	t.Run("barred IMPU with an IMPI of its own name", func(t *testing.T) {
		// carol.barred@ is no IMPI: the UAA says 5001 and the I-CSCF answers
		// as for any unknown identity (a challenge, then 403). Registering
		// a barred IMPU with its own IMPI is covered by the registrar's
		// unit tests (TS 24.229 §5.4.1.2: allowed when the set has a
		// non-barred IMPU).
		ok, out, trace := l.sippRun(t, "register_unknown.xml", []string{"carol.barred"}, 600)
		if !ok {
			t.Fatalf("barred IMPU not refused:\n%s\n%s", tail(out, 2000), tail(trace, 2000))
		}
		if _, ok := l.registrar().find("sip:carol.barred@" + domain); ok {
			t.Error("barred IMPU registered")
		}
	})
	t.Run("implicit set", func(t *testing.T) {
		trace := l.sippAKA(t, "bob", 600)
		if !strings.Contains(trace, "P-Associated-URI: <sip:bob@"+domain+">, <tel:+15551234>") {
			t.Errorf("200 without both IMPUs in P-Associated-URI:\n%s", tail(trace, 2500))
		}
		if !strings.Contains(trace, "Service-Route: <sip:orig@127.0.0.1:") {
			t.Errorf("200 without Service-Route:\n%s", tail(trace, 2500))
		}
		st := l.registrar()
		if _, ok := st.find("tel:+15551234"); !ok {
			t.Fatalf("tel:+15551234 not registered with bob: %+v", st)
		}
	})
	t.Run("S-CSCF restart keeps the binding", func(t *testing.T) {
		l.procs["scscf"].stop()
		l.startSCSCF()
		l.waitReady("scscf", 15*time.Second)
		st := l.registrar()
		if n, ok := st.find("sip:bob@" + domain); !ok || n != 1 {
			t.Fatalf("after restart: %+v", st)
		}
		l.sippAKA(t, "bob", 600) // still works, now a re-registration
	})
	t.Run("HSS down gives 5xx with Warning", func(t *testing.T) {
		l.procs["hss"].stop()
		time.Sleep(300 * time.Millisecond)
		ok, out, trace := l.sippRun(t, "register_5xx.xml", []string{"alice"}, 600)
		if !ok {
			t.Fatalf("no 5xx:\n%s\n%s", tail(out, 2000), tail(trace, 3000))
		}
		if !strings.Contains(trace, "Warning: 399") {
			t.Errorf("no Warning in the 5xx:\n%s", tail(trace, 2000))
		}
		l.startHSS()
		l.waitReady("hss", 15*time.Second)
	})
}
