package e2e

import (
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/pgtest"
)

// TestDatabaseSessionsEnded: PostgreSQL ends every session of the core (a
// restart, a fail-over, an administrator's pg_terminate_backend) between
// two registrations. The next registration through the whole chain must
// still succeed at once: the HSS, the S-CSCF and the P-CSCF run a
// statement that met a dead connection again on a fresh one
// (pkg/pgretry) instead of answering 5012 / 500.
func TestDatabaseSessionsEnded(t *testing.T) {
	needSipp(t)
	l := newPCSCFLab(t, freePort(t))
	l.addAKA("alice")
	l.addAKA("bob")
	alicePort, bobPort := freePort(t), freePort(t)
	l.sippAKAPCSCF(t, "alice", alicePort, 600)
	for _, ue := range []struct {
		user string
		port int
	}{{"alice", alicePort}, {"bob", bobPort}, {"alice", alicePort}} {
		if n := pgtest.TerminateBackends(t, l.dsn); n == 0 {
			t.Fatal("no session of the core to end")
		}
		l.sippAKAPCSCF(t, ue.user, ue.port, 600)
	}
	if n, ok := l.registrar().find("sip:bob@" + domain); !ok || n != 1 {
		t.Fatalf("S-CSCF: bob has %d contacts, registered %v", n, ok)
	}
	l.waitContacts(t, 2*time.Second, "bob registered at the P-CSCF", func(st pcscfStatus) bool {
		return len(st.flowsOf("sip:bob@"+domain)) == 1
	})
}
