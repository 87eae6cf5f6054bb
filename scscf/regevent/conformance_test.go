package regevent

import (
	"os"
	"testing"

	"github.com/imscore/imscore/pkg/diameter/diamtest"
)

// TestMain checks every Diameter message written in the package's tests
// (the S-CSCF's Cx client and the scripted HSS of
// scscf/internal/scscftest) against the specification tables
// (diamtest.Check, and each answer against its request) and requires the
// S-CSCF's MAR, SAR and RTA (the RTR that ends a subscription) among
// them.
func TestMain(m *testing.M) {
	os.Exit(diamtest.Run(m, diamtest.Options{
		Expect: []string{"CER", "MAR", "SAR", "RTA"},
	}))
}
