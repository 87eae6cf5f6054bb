package scscf

import (
	"context"
	"testing"

	"github.com/imscore/imscore/pkg/pgtest"
)

// TestStoreSynchronousCommit: the S-CSCF's connections run with
// synchronous_commit = off unless the DSN names a value.
func TestStoreSynchronousCommit(t *testing.T) {
	dsn := pgtest.NewDB(t)
	ctx := context.Background()
	for _, c := range []struct{ dsn, want string }{
		{dsn, "off"},
		{dsn + "&synchronous_commit=on", "on"},
	} {
		st, err := openStore(ctx, c.dsn)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = st.QueryRow(ctx, "SHOW synchronous_commit").Scan(&got)
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got != c.want {
			t.Errorf("%s: synchronous_commit %q, want %q", c.dsn, got, c.want)
		}
	}
}
