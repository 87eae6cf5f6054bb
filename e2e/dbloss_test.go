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
	ports := map[string]int{}
	for _, user := range []string{"carol", "dave"} {
		l.addAKA(user)
		ports[user] = freePort(t)
	}
	// The first registration warms the pools; before each of the others
	// every session of the core is ended.
	for i, user := range []string{"carol", "carol", "dave", "carol"} {
		if i > 0 && pgtest.TerminateBackends(t, l.dsn) == 0 {
			t.Fatal("no session of the core to end")
		}
		l.sippAKAPCSCF(t, user, ports[user], 600)
	}
	if n, ok := l.registrar().find("sip:dave@" + domain); !ok || n != 1 {
		t.Fatalf("S-CSCF: dave has %d contacts, registered %v", n, ok)
	}
	l.waitContacts(t, 2*time.Second, "dave registered at the P-CSCF", func(st pcscfStatus) bool {
		return len(st.flowsOf("sip:dave@"+domain)) == 1
	})
}
