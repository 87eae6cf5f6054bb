package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/imscore/imscore/hss/provision"
	"github.com/imscore/imscore/hss/store"
	"github.com/imscore/imscore/pkg/aka"
	"github.com/imscore/imscore/pkg/pgtest"
	"github.com/jackc/pgx/v5"
)

const (
	impi  = "alice@ims.mnc001.mcc001.3gppnetwork.org"
	impu1 = "sip:alice@ims.mnc001.mcc001.3gppnetwork.org"
	impu2 = "tel:+15551234"
	sqn0  = 0xff9bb4d0b607 // TS 35.208 test set 1
)

func setup(t *testing.T) (string, *pgx.Conn, *store.Store) {
	t.Helper()
	dsn, conn := pgtest.Migrated(t)
	ctx := context.Background()
	if _, err := provision.AddSubscriber(ctx, conn, provision.Subscriber{
		IMPI: impi, IMPUs: []string{impu1, impu2},
		K: "465b5ce8b199b49faa5f0a2ee238a6bc", OP: "cdc202d5123e20f62b6d676ac72cb318", AMF: "8000", SQN: sqn0,
	}); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, dsn, 8)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return dsn, conn, st
}

func run(t *testing.T, dsn string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := provision.Run(append([]string{"imsctl", "--database-url", dsn}, args...), &out); err != nil {
		t.Fatalf("imsctl %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

func TestLookups(t *testing.T) {
	ctx := context.Background()
	_, conn, st := setup(t)
	u, err := st.LookupIMPU(ctx, impu2)
	if err != nil {
		t.Fatal(err)
	}
	if u.Type != store.PublicUserIdentity || u.Barring || !u.CanRegister || u.State != store.NotRegistered || u.ServiceProfile != "default" {
		t.Fatalf("IMPU %+v", u)
	}
	members, err := st.IRSMembers(ctx, u.IRSID)
	if err != nil || len(members) != 2 || members[0].Identity != impu1 {
		t.Fatalf("IRS members %+v, %v", members, err)
	}
	p, err := st.LookupIMPI(ctx, impi)
	if err != nil || !p.HasAKA || len(p.AuthSchemes) != 1 || p.AuthSchemes[0] != "aka" {
		t.Fatalf("IMPI %+v %v", p, err)
	}
	if _, err := st.LookupIMPU(ctx, "sip:nobody@x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown IMPU: %v", err)
	}
	if _, err := st.LookupIMPI(ctx, "nobody@x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown IMPI: %v", err)
	}
	// A second subscriber: its IMPU does not belong to alice (5002).
	if _, err := provision.AddSubscriber(ctx, conn, provision.Subscriber{IMPI: "bob@ims", IMPUs: []string{"sip:bob@ims"}, Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.IMPIHasIMPU(ctx, impi, impu2); !ok || err != nil {
		t.Fatalf("alice has tel: %v %v", ok, err)
	}
	if ok, err := st.IMPIHasIMPU(ctx, impi, "sip:bob@ims"); ok || err != nil {
		t.Fatalf("alice has bob: %v %v", ok, err)
	}
	if _, err := st.IMPIHasIMPU(ctx, impi, "sip:x@y"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	b, err := st.LookupIMPI(ctx, "bob@ims")
	if err != nil || b.DigestHA1 != provision.HA1("bob@ims", "ims", "pw") || b.DigestRealm != "ims" || string(b.Password) != "pw" {
		t.Fatalf("bob %+v %v", b, err)
	}
	// Wildcarded PSI: exact miss, pattern hit.
	var irs, prof int64
	if err := conn.QueryRow(ctx, `SELECT implicit_set_id, service_profile_id FROM impu WHERE identity = $1`, impu1).Scan(&irs, &prof); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO impu (identity, type, wildcard_pattern, service_profile_id, implicit_set_id)
		VALUES ('sip:chat!.*!@ims', 'wildcarded_psi', '^sip:chat.*@ims$', $1, $2)`, prof, irs); err != nil {
		t.Fatal(err)
	}
	w, err := st.LookupIMPU(ctx, "sip:chat-room-7@ims")
	if err != nil || !w.MatchedByWildcard || w.Type != store.WildcardedPSI {
		t.Fatalf("wildcard %+v %v", w, err)
	}
	ms, err := st.MSISDNs(ctx, impu1)
	if err != nil || len(ms) != 1 || ms[0] != "15551234" {
		t.Fatalf("MSISDNs %v %v", ms, err)
	}
	if u, err := st.IMPUByMSISDN(ctx, "15551234"); err != nil || u.Identity != impu2 {
		t.Fatalf("by MSISDN %+v %v", u, err)
	}
	if ok, err := st.VisitedNetworkAllowed(ctx, impi, "ims.mnc001.mcc001.3gppnetwork.org"); !ok || err != nil {
		t.Fatalf("home network: %v %v", ok, err)
	}
	if ok, err := st.VisitedNetworkAllowed(ctx, impi, "ims.mnc002.mcc002.3gppnetwork.org"); ok || err != nil {
		t.Fatalf("foreign network: %v %v", ok, err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO visited_network (identity, allowed_for_all) VALUES ('ims.mnc002.mcc002.3gppnetwork.org', true)`); err != nil {
		t.Fatal(err)
	}
	if ok, err := st.VisitedNetworkAllowed(ctx, impi, "ims.mnc002.mcc002.3gppnetwork.org"); !ok || err != nil {
		t.Fatalf("allowed network: %v %v", ok, err)
	}
}

// 8 goroutines × 50 MARs never share an SQN.
func TestReserveSQNsConcurrentDistinct(t *testing.T) {
	ctx := context.Background()
	_, _, st := setup(t)
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				n := 1 + (g+i)%3
				cr, sqns, err := st.ReserveSQNs(ctx, impi, n)
				if err != nil {
					errs <- err
					return
				}
				if len(sqns) != n || cr.K[0] != 0x46 || cr.OPIsOPc || cr.AMF != [2]byte{0x80, 0} {
					errs <- fmt.Errorf("bad answer %v %+v", sqns, cr)
					return
				}
				mu.Lock()
				for _, s := range sqns {
					if seen[s] {
						mu.Unlock()
						errs <- fmt.Errorf("SQN %#x handed out twice", s)
						return
					}
					if s >= 1<<48 || aka.IND(s) != 0 {
						mu.Unlock()
						errs <- fmt.Errorf("SQN %#x out of range", s)
						return
					}
					seen[s] = true
				}
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var max uint64
	for s := range seen {
		if s > max {
			max = s
		}
		if s <= sqn0 {
			t.Fatalf("SQN %#x not above the provisioned %#x", s, uint64(sqn0))
		}
	}
	// The SEQs used are exactly the next len(seen) after the provisioned one.
	if aka.SEQ(max)-aka.SEQ(sqn0) != uint64(len(seen)) {
		t.Fatalf("%d SQNs, max SEQ step %d", len(seen), aka.SEQ(max)-aka.SEQ(sqn0))
	}
	cr, next, err := st.ReserveSQNs(ctx, impi, 1)
	if err != nil || cr.SQN != max || next[0] != aka.NextSQN(max) {
		t.Fatalf("stored %#x, max %#x, next %v %v", cr.SQN, max, next, err)
	}
	// Resync: the next vector follows SQN_MS.
	ms := uint64(0x0000_1234_5600)
	if err := st.ResyncSQN(ctx, impi, ms); err != nil {
		t.Fatal(err)
	}
	if _, s, err := st.ReserveSQNs(ctx, impi, 1); err != nil || s[0] != aka.NextSQN(ms) {
		t.Fatalf("after resync %v %v", s, err)
	}
	if err := st.ResyncSQN(ctx, "nobody", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("resync unknown: %v", err)
	}
	if _, _, err := st.ReserveSQNs(ctx, "nobody", 1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("reserve unknown: %v", err)
	}
}

func TestAssignmentIRSWideAndPersisted(t *testing.T) {
	ctx := context.Background()
	dsn, _, st := setup(t)
	a, err := st.Assignment(ctx, impu2)
	if err != nil || a.SCSCFName != "" || a.State != store.NotRegistered {
		t.Fatalf("before: %+v %v", a, err)
	}
	members, err := st.SetAssignment(ctx, impu1, "sip:scscf.ims:5080", "scscf.ims", impi, store.Registered)
	if err != nil || len(members) != 2 {
		t.Fatalf("SetAssignment %v %v", members, err)
	}
	for _, m := range members {
		if m.State != store.Registered {
			t.Fatalf("member %+v", m)
		}
	}
	// A new pool (as after an HSS restart) sees the assignment of the other IRS member.
	st2, err := store.Open(ctx, dsn, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	a, err = st2.Assignment(ctx, impu2)
	if err != nil || a.SCSCFName != "sip:scscf.ims:5080" || a.DiameterHost != "scscf.ims" || a.IMPI != impi ||
		a.State != store.Registered || time.Since(a.AssignedAt) > time.Minute {
		t.Fatalf("after: %+v %v", a, err)
	}
	if _, err := st2.SetUserState(ctx, impu2, store.Unregistered); err != nil {
		t.Fatal(err)
	}
	if a, _ := st.Assignment(ctx, impu1); a.State != store.Unregistered || a.SCSCFName == "" {
		t.Fatalf("SetUserState: %+v", a)
	}
	if _, err := st.ClearAssignment(ctx, impu2); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{impu1, impu2} {
		if a, err := st.Assignment(ctx, u); err != nil || a.SCSCFName != "" || a.State != store.NotRegistered {
			t.Fatalf("cleared %s: %+v %v", u, a, err)
		}
	}
	if _, err := st.SetAssignment(ctx, "sip:none@x", "sip:s", "", "", store.Registered); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	run(t, dsn, "scscf", "add", "sip:scscf.ims:5080", "--diameter-host", "scscf.ims", "--mandatory", "1,2", "--optional", "7")
	caps, err := st.SCSCFCapabilities(ctx)
	if err != nil || len(caps) != 1 || len(caps[0].MandatoryCapabilities) != 2 || caps[0].OptionalCapabilities[0] != 7 {
		t.Fatalf("caps %+v %v", caps, err)
	}
}

func TestSubscriptionData(t *testing.T) {
	ctx := context.Background()
	dsn, conn, st := setup(t)
	run(t, dsn, "as", "add", "mmtel", "--server-name", "sip:mmtel.ims:5090", "--default-handling", "terminate",
		"--service-info", "mmtel", "--include-register-request", "--diameter-host", "as.ims", "--sh", "RepositoryData=udr,pur")
	run(t, dsn, "ifc", "add", "mmtel-orig", "--as", "mmtel", "--priority", "10", "--method", "INVITE", "--method", "MESSAGE",
		"--session-case", "originating", "--header", "Accept-Contact=.*mmtel.*", "--profile", "default")
	run(t, dsn, "ifc", "add", "reg", "--as", "mmtel", "--priority", "1", "--method", "REGISTER", "--registration-type", "initial,re",
		"--profile-part", "registered")
	run(t, dsn, "profile", "add-ifc", "default", "--ifc", "reg:20", "--shared-ifc-set", "3")
	if _, err := conn.Exec(ctx, `UPDATE impu SET barring = true, display_name = 'Alice' WHERE identity = $1`, impu2); err != nil {
		t.Fatal(err)
	}
	sub, err := st.SubscriptionData(ctx, impi, impu2)
	if err != nil {
		t.Fatal(err)
	}
	if sub.PrivateID != impi || len(sub.Profiles) != 1 {
		t.Fatalf("%+v", sub)
	}
	p := sub.Profiles[0]
	if len(p.PublicIdentities) != 2 || p.PublicIdentities[1].Identity != impu2 || !p.PublicIdentities[1].Barring || p.PublicIdentities[1].DisplayName != "Alice" {
		t.Fatalf("public identities %+v", p.PublicIdentities)
	}
	if len(p.SharedIFCSetIDs) != 1 || p.SharedIFCSetIDs[0] != 3 {
		t.Fatalf("shared sets %v", p.SharedIFCSetIDs)
	}
	if len(p.IFCs) != 2 || p.IFCs[0].Name != "mmtel-orig" || p.IFCs[0].Priority != 10 || p.IFCs[1].Priority != 20 {
		t.Fatalf("iFC order %+v", p.IFCs)
	}
	f := p.IFCs[0]
	as := f.ApplicationServer
	if as.ServerName != "sip:mmtel.ims:5090" || as.DefaultHandling != 1 || as.ServiceInfo != "mmtel" || !as.IncludeRegisterRequest || as.IncludeRegisterResponse {
		t.Fatalf("AS %+v", as)
	}
	tp := f.TriggerPoint
	if tp == nil || !tp.ConditionTypeCNF || len(tp.SPTs) != 4 {
		t.Fatalf("trigger %+v", tp)
	}
	want := []store.SPT{
		{Group: 0, Type: store.SPTMethod, Value: "INVITE", RegistrationTypes: []int16{}},
		{Group: 0, Type: store.SPTMethod, Value: "MESSAGE", RegistrationTypes: []int16{}},
		{Group: 2, Type: store.SPTSIPHeader, Value: "Accept-Contact", Content: ".*mmtel.*", RegistrationTypes: []int16{}},
		{Group: 3, Type: store.SPTSessionCase, Value: "0", RegistrationTypes: []int16{}},
	}
	if fmt.Sprint(tp.SPTs) != fmt.Sprint(want) {
		t.Fatalf("SPTs\n got %+v\nwant %+v", tp.SPTs, want)
	}
	r := p.IFCs[1]
	if r.ProfilePartIndicator == nil || *r.ProfilePartIndicator != 0 || fmt.Sprint(r.TriggerPoint.SPTs[0].RegistrationTypes) != "[0 1]" {
		t.Fatalf("reg iFC %+v", r)
	}
	if _, err := st.SubscriptionData(ctx, impi, "sip:nobody@x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	// Sh access of the AS.
	acc, err := st.ASByOriginHost(ctx, "AS.ims")
	if err != nil || !acc.Allowed(store.RepositoryData, "pur") || acc.Allowed(store.RepositoryData, "snr") || acc.Allowed(store.MSISDN, "udr") {
		t.Fatalf("AS access %+v %v", acc, err)
	}
	if _, err := st.ASByOriginHost(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown AS: %v", err)
	}
}

func TestRepositoryData(t *testing.T) {
	ctx := context.Background()
	dsn, _, st := setup(t)
	if _, err := st.RepositoryData(ctx, impu1, "svc"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("empty: %v", err)
	}
	if err := st.PutRepositoryData(ctx, impu1, "svc", 1, []byte("x"), nil); !errors.Is(err, store.ErrOutOfSync) {
		t.Fatalf("create with 1: %v", err)
	}
	if err := st.PutRepositoryData(ctx, impu1, "svc", 0, []byte("<a/>"), nil); err != nil {
		t.Fatal(err)
	}
	if err := st.PutRepositoryData(ctx, impu1, "svc", 0, []byte("<b/>"), nil); !errors.Is(err, store.ErrOutOfSync) {
		t.Fatalf("stale: %v", err)
	}
	if err := st.PutRepositoryData(ctx, impu2, "svc", 1, []byte("<b/>"), nil); !errors.Is(err, store.ErrOutOfSync) {
		t.Fatalf("data is per IMPU: %v", err)
	}
	if err := st.PutRepositoryData(ctx, impu1, "svc", 1, []byte("<b/>"), nil); err != nil {
		t.Fatal(err)
	}
	r, err := st.RepositoryData(ctx, impu1, "svc")
	if err != nil || r.SequenceNumber != 1 || string(r.Data) != "<b/>" {
		t.Fatalf("%+v %v", r, err)
	}
	if store.NextSequenceNumber(65535) != 1 {
		t.Fatal("wrap")
	}
	if err := st.PutRepositoryData(ctx, impu1, "svc", 2, nil, nil); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := st.RepositoryData(ctx, impu1, "svc"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	run(t, dsn, "as", "add", "tas", "--server-name", "sip:tas.ims", "--diameter-host", "tas.ims")
	if _, err := st.Subscribe(ctx, impu1, "tas.ims", store.IMSUserState, "", time.Time{}); err != nil {
		t.Fatal(err)
	}
	subs, err := st.Subscribers(ctx, impu1, store.IMSUserState, "")
	if err != nil || len(subs) != 1 || subs[0].ASHost != "tas.ims" {
		t.Fatalf("subscribers %+v %v", subs, err)
	}
	if err := st.Unsubscribe(ctx, impu1, "tas.ims", store.IMSUserState, ""); err != nil {
		t.Fatal(err)
	}
	if subs, _ := st.Subscribers(ctx, impu1, store.IMSUserState, ""); len(subs) != 0 {
		t.Fatalf("after unsubscribe %+v", subs)
	}
}
