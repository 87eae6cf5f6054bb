// Package siptest holds the SIP test helpers that several packages' tests
// share, so that each test file does not build its own sipgo plumbing.
package siptest

import (
	"testing"

	"github.com/emiago/sipgo"
)

// NewClient returns a sipgo client on its own user agent, closed when the
// test ends. It fails the test if sipgo cannot create either.
func NewClient(t testing.TB) *sipgo.Client {
	t.Helper()
	ua, err := sipgo.NewUA()
	if err != nil {
		t.Fatalf("sipgo user agent: %v", err)
	}
	c, err := sipgo.NewClient(ua)
	if err != nil {
		t.Fatalf("sipgo client: %v", err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	return c
}
