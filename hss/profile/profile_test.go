package profile_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/imscore/imscore/hss/profile"
	"github.com/imscore/imscore/hss/provision"
	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/imscore/imscore/pkg/userdata"
)

const (
	impi = "alice@ims.mnc001.mcc001.3gppnetwork.org"
	impu = "sip:alice@ims.mnc001.mcc001.3gppnetwork.org"
)

func imsctl(t *testing.T, dsn string, args ...string) {
	t.Helper()
	var out bytes.Buffer
	if err := provision.Run(append([]string{"imsctl", "--database-url", dsn}, args...), &out); err != nil {
		t.Fatalf("imsctl %v: %v\n%s", args, err, out.String())
	}
}

// BuildSubscription on data read from PostgreSQL: userdata.Marshal accepts
// it, and userdata.Parse reads back what was provisioned (moved here from
// hss/store's test of the removed store.BuildIMSSubscription).
func TestBuildSubscriptionRoundTrip(t *testing.T) {
	ctx := context.Background()
	dsn, conn := pgtest.Migrated(t)
	if _, err := provision.AddSubscriber(ctx, conn, provision.Subscriber{
		IMPI: impi, IMPUs: []string{impu, "tel:+15551234"},
		K: "465b5ce8b199b49faa5f0a2ee238a6bc", OP: "cdc202d5123e20f62b6d676ac72cb318", AMF: "8000",
	}); err != nil {
		t.Fatal(err)
	}
	imsctl(t, dsn, "as", "add", "mmtel", "--server-name", "sip:mmtel.ims:5090", "--include-register-response")
	imsctl(t, dsn, "ifc", "add", "mmtel-orig", "--as", "mmtel", "--priority", "10", "--method", "INVITE",
		"--session-case", "originating", "--header", "Accept-Contact=.*mmtel.*", "--profile", "default")
	imsctl(t, dsn, "ifc", "add", "mmtel-term", "--as", "mmtel", "--priority", "10", "--method", "INVITE",
		"--session-case", "terminating-registered", "--profile", "default")
	st, err := store.Open(ctx, dsn, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	sub, err := st.SubscriptionData(ctx, impi, impu)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := userdata.Marshal(profile.Subscription(sub))
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	back, err := userdata.Parse(raw)
	if err != nil {
		t.Fatalf("parse own output: %v\n%s", err, raw)
	}
	if len(back.ServiceProfiles) != 1 || len(back.ServiceProfiles[0].PublicIdentities) != 2 {
		t.Fatalf("round trip:\n%s", raw)
	}
	ifcs := back.ServiceProfiles[0].InitialFilterCriteria
	if len(ifcs) != 2 || len(ifcs[0].TriggerPoint.SPTs) != 3 {
		t.Fatalf("iFCs in round trip:\n%s", raw)
	}
	// Two iFCs provisioned with priority 10: the second moves to 11.
	if ifcs[0].Priority != 10 || ifcs[1].Priority != 11 {
		t.Errorf("priorities %d, %d, want 10, 11", ifcs[0].Priority, ifcs[1].Priority)
	}
	for _, want := range []string{"<PrivateID>" + impi + "</PrivateID>", "<Method>INVITE</Method>",
		"<SessionCase>0</SessionCase>", "<SessionCase>1</SessionCase>", "IncludeRegisterResponse"} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("missing %s in\n%s", want, raw)
		}
	}
}
