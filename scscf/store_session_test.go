package scscf

import (
	"context"
	"testing"

	"github.com/imscore/imscore/pkg/pgtest"
)

// TestStoreSessionDefaults: the S-CSCF's connections plan by index
// (registration storms, docs/hss.md "Database access") and commit
// without waiting for the WAL fsync, unless the DSN chooses otherwise.
func TestStoreSessionDefaults(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.NewDB(t)
	for _, c := range []struct{ dsn, seqscan, commit string }{
		{dsn, "off", "off"},
		{pgtest.WithParams(dsn, "enable_seqscan=on&synchronous_commit=on"), "on", "on"},
	} {
		st, err := openStore(ctx, c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		got := pgtest.Settings(t, st, "enable_seqscan", "synchronous_commit")
		st.Close()
		if got[0] != c.seqscan || got[1] != c.commit {
			t.Errorf("DSN %s: enable_seqscan %s, synchronous_commit %s; want %s, %s", c.dsn, got[0], got[1], c.seqscan, c.commit)
		}
	}
}
