package icscf

import (
	"testing"

	"github.com/imscore/imscore/pkg/diameter/diamtest"
)

// runConformance runs the tests (for TestMain in realhss_test.go) checking
// every Diameter message written in this process (the I-CSCF's Cx client
// and the test HSS of helpers_test.go) against the specification tables
// (diamtest.Check, and each answer against its request), and requires the
// I-CSCF's UAR and LIR among them.
// The hss binary of TestWithRealHSS runs in another process: its answers
// are checked by the hss package's own TestMain.
func runConformance(m *testing.M) int {
	return diamtest.Run(m, diamtest.Options{
		Expect: []string{"CER", "UAR", "LIR"},
	})
}
