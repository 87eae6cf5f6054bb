package diameter_test

import (
	"os"
	"testing"

	"github.com/imscore/imscore/pkg/diameter/diamtest"
)

// TestMain checks every message the package's tests make a Node write
// against the specification tables (diamtest.Check) and requires the base
// protocol's six commands among them. Application requests (UAR, MAR,
// ...) are built by the tests themselves, several of them wrong on
// purpose (unknown or mis-vendored AVPs, a missing Public-Identity for
// 5005), so they are not checked; everything the Node builds is: CER/CEA,
// DWR/DWA, DPR/DPA and every answer, including the 3xxx/5xxx ones the
// Node itself writes.
func TestMain(m *testing.M) {
	os.Exit(diamtest.Run(m, diamtest.Options{
		Expect: []string{"CER", "CEA", "DWR", "DWA", "DPR", "DPA"},
		Skip: func(host, cmd string, wire []byte) bool {
			return diamtest.IsRequest(wire) && diamtest.AppID(wire) != 0
		},
	}))
}
