package store_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/imscore/imscore/hss/store"
)

func digest(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

// The PNR queue: a change is queued only by whoever still sees the digest
// it replaces; per subscription only the oldest queued PNR is handed out,
// to a connected AS, and not again while leased; unsubscribing and expiry
// take the queued PNRs away.
func TestShNotificationQueue(t *testing.T) {
	ctx := context.Background()
	dsn, _, st := setup(t)
	run(t, dsn, "as", "add", "tas", "--server-name", "sip:tas.ims", "--diameter-host", "tas.ims")
	if ok, err := st.ShSubscribed(ctx, []store.DataReference{store.IMSUserState}); err != nil || ok {
		t.Fatalf("subscribed before any subscription: %v %v", ok, err)
	}
	id, created, err := st.SubscribeWith(ctx, store.SubscribeRequest{IMPU: impu1, ASHost: "tas.ims", Ref: store.IMSUserState, Digest: digest(0)})
	if err != nil || !created {
		t.Fatalf("subscribe: %v %v", created, err)
	}
	if ok, err := st.ShSubscribed(ctx, []store.DataReference{store.IMSUserState, store.SCSCFName}); err != nil || !ok {
		t.Fatalf("subscribed: %v %v", ok, err)
	}
	queue := func(old, new byte, data string) bool {
		t.Helper()
		ok, err := st.QueueShNotification(ctx, id, digest(old), digest(new), []byte(data))
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if queue(9, 1, "x") {
		t.Fatal("queued over a digest that is not the stored one")
	}
	if !queue(0, 1, "a") || queue(0, 2, "stale") || !queue(1, 2, "b") {
		t.Fatal("compare-and-set of the digest")
	}
	claim := func(hosts ...string) []store.ShNotification {
		t.Helper()
		ns, err := st.ClaimShNotifications(ctx, hosts, time.Minute, 10)
		if err != nil {
			t.Fatal(err)
		}
		return ns
	}
	if ns := claim("other.ims"); len(ns) != 0 {
		t.Fatalf("handed out for an AS not connected: %+v", ns)
	}
	ns := claim("TAS.ims")
	if len(ns) != 1 || string(ns[0].UserData) != "a" || ns[0].IMPU != impu1 || ns[0].ASHost != "tas.ims" || ns[0].Attempts != 1 {
		t.Fatalf("first claim %+v", ns)
	}
	if again := claim("tas.ims"); len(again) != 0 {
		t.Fatalf("leased or younger PNRs handed out: %+v", again)
	}
	if err := st.ShNotificationSent(ctx, ns[0].ID); err != nil {
		t.Fatal(err)
	}
	ns = claim("tas.ims")
	if len(ns) != 1 || string(ns[0].UserData) != "b" {
		t.Fatalf("second claim %+v", ns)
	}
	if err := st.ShNotificationRetry(ctx, ns[0].ID, 0); err != nil {
		t.Fatal(err)
	}
	if ns = claim("tas.ims"); len(ns) != 1 || string(ns[0].UserData) != "b" || ns[0].Attempts != 2 {
		t.Fatalf("after retry %+v", ns)
	}
	// A renewal keeps the digest; unsubscribing drops the queue.
	if _, created, err := st.SubscribeWith(ctx, store.SubscribeRequest{IMPU: impu1, ASHost: "tas.ims", Ref: store.IMSUserState, Digest: digest(7)}); err != nil || created {
		t.Fatalf("renew: %v %v", created, err)
	}
	if !queue(2, 3, "c") {
		t.Fatal("renewal replaced the digest")
	}
	if err := st.Unsubscribe(ctx, impu1, "tas.ims", store.IMSUserState, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.ShNotificationRetry(ctx, ns[0].ID, 0); err != nil {
		t.Fatal(err)
	}
	if ns := claim("tas.ims"); len(ns) != 0 {
		t.Fatalf("after unsubscribe %+v", ns)
	}

	// Without a digest the first comparison only records one.
	id, _, err = st.SubscribeWith(ctx, store.SubscribeRequest{IMPU: impu2, ASHost: "tas.ims", Ref: store.SCSCFName,
		Expires: time.Now().Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := st.QueueShNotification(ctx, id, nil, digest(1), []byte("d")); err != nil || ok {
		t.Fatalf("queued without a known digest: %v %v", ok, err)
	}
	if !queue(1, 2, "e") {
		t.Fatal("digest not recorded")
	}
	ws, err := st.ShWatchesByRef(ctx, []store.DataReference{store.SCSCFName}, 0, 10)
	if err != nil || len(ws) != 1 || ws[0].IMPU != impu2 || !bytes.Equal(ws[0].Digest, digest(2)) || ws[0].ASServerName != "sip:tas.ims" {
		t.Fatalf("watches %+v %v", ws, err)
	}
	time.Sleep(1100 * time.Millisecond)
	if ns := claim("tas.ims"); len(ns) != 0 {
		t.Fatalf("expired subscription's PNR handed out: %+v", ns)
	}
	if ws, err := st.ShWatchesByRef(ctx, []store.DataReference{store.SCSCFName}, 0, 10); err != nil || len(ws) != 0 {
		t.Fatalf("expired subscription watched: %+v %v", ws, err)
	}
	subs, stale, err := st.PurgeSh(ctx, time.Hour)
	if err != nil || subs != 1 || stale != 0 {
		t.Fatalf("purge: %d subscriptions, %d PNRs, %v", subs, stale, err)
	}
}
