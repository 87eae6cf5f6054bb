package hss_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/datatype"

	"github.com/imscore/imscore/pkg/diameter"
)

// subscribe sends an SNR subscribing n to refs of impu and checks the
// answer is a success.
func subscribe(t *testing.T, n *diameter.Node, impu string, refs []uint32, more ...*diam.AVP) *diam.Message {
	t.Helper()
	more = append([]*diam.AVP{diameter.NewAVP(diameter.AVPSubsReqType, datatype.Enumerated(0))}, more...)
	a := send(t, n, shRequest(n, diameter.CmdSubscribeNotifications, impu, refs, more...))
	wantResult(t, a, diameter.DiameterSuccess, false)
	return a
}

// pnrInbox answers every PNR its node receives with success and hands it
// over.
type pnrInbox chan *diam.Message

func (in pnrInbox) install(n *diameter.Node) {
	n.Handle(diameter.CmdPushNotification, diameter.AppSh, func(ctx context.Context, c *diameter.Conn, req *diam.Message) (*diam.Message, error) {
		in <- req
		return n.Answer(req, diameter.DiameterSuccess), nil
	})
}

// next returns the next PNR, failing after wait.
func (in pnrInbox) next(t *testing.T, wait time.Duration) *diam.Message {
	t.Helper()
	select {
	case m := <-in:
		return m
	case <-time.After(wait):
		t.Fatal("no PNR arrived")
		return nil
	}
}

// none checks that no PNR arrives within wait.
func (in pnrInbox) none(t *testing.T, wait time.Duration) {
	t.Helper()
	select {
	case m := <-in:
		t.Fatalf("unexpected PNR\n%s", parseSh(t, m).raw)
	case <-time.After(wait):
	}
}

// pnrSummary describes a PNR as "IMPU: state=N" or "IMPU: scscf=NAME".
func pnrSummary(t *testing.T, m *diam.Message) string {
	t.Helper()
	d := parseSh(t, m)
	impu := diameter.String(m, diameter.AVPUserIdentity, diameter.AVPPublicIdentity)
	switch {
	case d.IMS != nil && d.IMS.IMSUserState != nil:
		return fmt.Sprintf("%s: state=%d", impu, *d.IMS.IMSUserState)
	case d.IMS != nil && d.IMS.SCSCFName != nil:
		return fmt.Sprintf("%s: scscf=%s", impu, *d.IMS.SCSCFName)
	}
	return impu + ": " + d.raw
}

// pnrSet collects n PNRs (in any order) as their summaries.
func (in pnrInbox) set(t *testing.T, n int) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for range n {
		out[pnrSummary(t, in.next(t, 5*time.Second))] = true
	}
	return out
}

func wantSet(t *testing.T, got map[string]bool, want ...string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("PNRs %v, want %v", got, want)
	}
	for _, w := range want {
		if !got[w] {
			t.Fatalf("PNRs %v, want %v", got, want)
		}
	}
}

// An AS subscribed to IMSUserState and S-CSCFName of an IMPU hears of
// every registration and de-registration of its implicit registration set
// (the HSS learns them from SAR), with the new state and S-CSCF name, and
// of nothing when a re-registration changes nothing (TS 29.328 §6.1.4).
func TestShNotifiesRegistrationState(t *testing.T) {
	e := newEnv(t)
	host := addAS(t, e, "tas", "IMSUserState=udr,snr", "S-CSCFName=udr,snr")
	in := make(pnrInbox, 8)
	tas := e.client(host, in.install)
	scscf := e.client(scscfHost)
	// aliceTel shares alice's implicit registration set.
	subscribe(t, tas, aliceTel, []uint32{refIMSUserState, refSCSCFName})
	in.none(t, 300*time.Millisecond)

	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATRegistration, 0)), diameter.DiameterSuccess, false)
	wantSet(t, in.set(t, 2), aliceTel+": state=1", aliceTel+": scscf="+scscfName)

	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATReRegistration, 0)), diameter.DiameterSuccess, false)
	in.none(t, 500*time.Millisecond)

	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATUserDeregistration, 0)), diameter.DiameterSuccess, false)
	wantSet(t, in.set(t, 2), aliceTel+": state=0", aliceTel+": scscf=")

}

// A subscription to InitialFilterCriteria is told of provisioning changes
// to the AS's own iFCs in the IMPU's service profile (imsctl, NOTIFY
// hss_userdata), with the AS's iFCs only; changes to other ASes' iFCs are
// not its business. Send-Data-Indication returns the current iFCs.
func TestShNotifiesIFCChanges(t *testing.T) {
	e := newEnv(t)
	host := addAS(t, e, "tas", "InitialFilterCriteria=udr,snr")
	addAS(t, e, "other")
	in := make(pnrInbox, 8)
	tas := e.client(host, in.install)
	a := subscribe(t, tas, aliceIMPU, []uint32{refIFC}, enum(diameter.AVPSendDataIndication, sendUserDataRequest))
	if d := parseSh(t, a); d.IMS == nil || d.IMS.IFCs == nil || len(d.IMS.IFCs.IFC) != 0 {
		t.Fatalf("SNA data %s, want empty IFCs", d.raw)
	}
	imsctl(t, e, "ifc", "add", "tas-invite", "--as", "tas", "--priority", "5", "--method", "INVITE", "--profile", "default")
	d := parseSh(t, in.next(t, 5*time.Second))
	if d.IMS == nil || d.IMS.IFCs == nil || len(d.IMS.IFCs.IFC) != 1 || d.IMS.IFCs.IFC[0].ServerName != "sip:"+host ||
		d.IMS.IFCs.IFC[0].Priority != 5 {
		t.Fatalf("PNR %s", d.raw)
	}
	imsctl(t, e, "ifc", "add", "other-invite", "--as", "other", "--priority", "1", "--method", "INVITE", "--profile", "default")
	in.none(t, time.Second)
	imsctl(t, e, "ifc", "add", "tas-msg", "--as", "tas", "--priority", "7", "--method", "MESSAGE", "--profile", "default")
	d = parseSh(t, in.next(t, 5*time.Second))
	if d.IMS == nil || d.IMS.IFCs == nil || len(d.IMS.IFCs.IFC) != 2 {
		t.Fatalf("PNR %s", d.raw)
	}
}

// Expiry-Time is honoured: a subscription is not notified after it, and
// is removed; one asked to end in the past is refused (5004).
func TestShSubscriptionExpiry(t *testing.T) {
	e := newEnv(t)
	host1 := addAS(t, e, "tas1", "IMSUserState=snr")
	host2 := addAS(t, e, "tas2", "IMSUserState=snr")
	in1, in2 := make(pnrInbox, 4), make(pnrInbox, 4)
	tas1 := e.client(host1, in1.install)
	tas2 := e.client(host2, in2.install)
	m := shRequest(tas1, diameter.CmdSubscribeNotifications, aliceIMPU, []uint32{refIMSUserState},
		enum(diameter.AVPSubsReqType, 0), diameter.NewAVP(diameter.AVPExpiryTime, datatype.Time(time.Now().Add(-time.Minute))))
	wantResult(t, send(t, tas1, m), diameter.DiameterInvalidAVPValue, false)

	expiry := time.Now().Add(time.Second).Truncate(time.Second).Add(time.Second)
	a := subscribe(t, tas1, aliceIMPU, []uint32{refIMSUserState}, diameter.NewAVP(diameter.AVPExpiryTime, datatype.Time(expiry)))
	if x := diameter.Find(a, diameter.AVPExpiryTime); x == nil || !time.Time(x.Data.(datatype.Time)).Equal(expiry) {
		t.Fatalf("SNA Expiry-Time %v, want %v", x, expiry)
	}
	subscribe(t, tas2, aliceIMPU, []uint32{refIMSUserState})
	time.Sleep(time.Until(expiry) + 100*time.Millisecond)

	scscf := e.client(scscfHost)
	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATRegistration, 1)), diameter.DiameterSuccess, false)
	if s := pnrSummary(t, in2.next(t, 5*time.Second)); s != aliceIMPU+": state=1" {
		t.Fatalf("tas2 PNR %s", s)
	}
	in1.none(t, time.Second)
	var n int
	for range 50 {
		if err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM sh_subscription WHERE expires_at IS NOT NULL`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%d expired subscriptions left", n)
}

// A PNR waits in the queue while its AS is not connected and is sent when
// it connects again.
func TestShPNRWaitsForTheAS(t *testing.T) {
	e := newEnv(t)
	host := addAS(t, e, "tas", "IMSUserState=snr")
	tas := e.client(host)
	subscribe(t, tas, aliceIMPU, []uint32{refIMSUserState})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	tas.Close(ctx)
	cancel()

	scscf := e.client(scscfHost)
	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATRegistration, 1)), diameter.DiameterSuccess, false)
	time.Sleep(500 * time.Millisecond)
	in := make(pnrInbox, 4)
	e.client(host, in.install)
	if s := pnrSummary(t, in.next(t, 5*time.Second)); s != aliceIMPU+": state=1" {
		t.Fatalf("PNR %s", s)
	}
}

// A subscription to IMSPublicIdentity follows its Identity-Set: the
// implicit registration set changes with provisioning (a new IMPU in it),
// the registered identities with registrations.
func TestShNotifiesPublicIdentityChanges(t *testing.T) {
	e := newEnv(t)
	host := addAS(t, e, "tas", "IMSPublicIdentity=snr")
	in := make(pnrInbox, 8)
	tas := e.client(host, in.install)
	subscribe(t, tas, aliceIMPU, []uint32{refPublicIdentity}, enum(diameter.AVPIdentitySet, setImplicit))
	subscribe(t, tas, aliceTel, []uint32{refPublicIdentity}, enum(diameter.AVPIdentitySet, setRegistered))

	addAliceIdentities(t, e) // aliceOther joins alice's implicit registration set
	m := in.next(t, 5*time.Second)
	if d := parseSh(t, m); diameter.String(m, diameter.AVPUserIdentity, diameter.AVPPublicIdentity) != aliceIMPU ||
		!sameList(d.identities(), aliceIMPU, aliceTel, aliceOther) {
		t.Fatalf("PNR after provisioning:\n%s", d.raw)
	}
	in.none(t, 500*time.Millisecond)

	scscf := e.client(scscfHost)
	wantResult(t, send(t, scscf, sar(scscf, aliceIMPI, aliceIMPU, diameter.SATRegistration, 1)), diameter.DiameterSuccess, false)
	m = in.next(t, 5*time.Second)
	if d := parseSh(t, m); diameter.String(m, diameter.AVPUserIdentity, diameter.AVPPublicIdentity) != aliceTel ||
		!sameList(d.identities(), aliceIMPU, aliceTel, aliceOther) {
		t.Fatalf("PNR after registration:\n%s", d.raw)
	}
}
