package hss_test

import (
	"os"
	"testing"

	"github.com/imscore/imscore/pkg/diameter/diamtest"
)

// TestMain checks every Diameter message our HSS writes in these tests
// against the specification tables (diamtest.Check: header bits, command
// ABNF, every AVP's vendor, flags and data, Cx/Sh session rules) and
// requires each command the HSS sends or answers to have been written at
// least once. The tests' own clients (scscf., icscf., as1. ...) build
// wrong requests on purpose (a UAR without Public-Identity, an RTR towards
// the HSS, a UDR without Data-Reference) to exercise the HSS's error
// answers, so only the HSS's identity is checked.
func TestMain(m *testing.M) {
	os.Exit(diamtest.Run(m, diamtest.Options{
		Hosts:  []string{hssHost},
		Expect: []string{"CEA", "UAA", "MAA", "SAA", "LIA", "RTR", "PPR", "UDA", "PUA", "SNA", "PNR"},
	}))
}
