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
		var seqscan, commit string
		err = st.pool.QueryRow(ctx, "SELECT current_setting('enable_seqscan'), current_setting('synchronous_commit')").Scan(&seqscan, &commit)
		st.pool.Close()
		if err != nil {
			t.Fatal(err)
		}
		if seqscan != c.seqscan || commit != c.commit {
			t.Errorf("DSN %s: enable_seqscan %s, synchronous_commit %s; want %s, %s", c.dsn, seqscan, commit, c.seqscan, c.commit)
		}
	}
}
