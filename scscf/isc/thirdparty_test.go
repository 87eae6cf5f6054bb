package isc_test

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/pkg/imsheader"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf"
	"github.com/imscore/imscore/scscf/binding"
	"github.com/imscore/imscore/scscf/internal/scscftest"
	"github.com/imscore/imscore/scscf/isc"
)

type part struct {
	contentType string
	body        []byte
}

// bodyParts splits a third-party REGISTER body into its parts.
func bodyParts(t *testing.T, req *sip.Request) []part {
	t.Helper()
	ct := req.ContentType()
	if ct == nil {
		return nil
	}
	mt, params, err := mime.ParseMediaType(ct.Value())
	if err != nil {
		t.Fatalf("Content-Type %q: %v", ct.Value(), err)
	}
	if mt != "multipart/mixed" {
		return []part{{mt, req.Body()}}
	}
	r := multipart.NewReader(bytes.NewReader(req.Body()), params["boundary"])
	var out []part
	for {
		p, err := r.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("multipart body: %v\n%s", err, req.Body())
		}
		b, _ := io.ReadAll(p)
		out = append(out, part{p.Header.Get("Content-Type"), b})
	}
}

func TestThirdPartyRegister(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("alice"))
	as := scscftest.NewPeer(t, 200)
	other := scscftest.NewPeer(t, 200)
	invite := "INVITE"
	scscftest.ServeProfiles(t, h, func(s *scscftest.Sub) *userdata.IMSSubscription {
		return scscftest.ProfileWith(s,
			scscftest.RegisterIFC(10, userdata.ApplicationServer{ServerName: "sip:" + as.HostPort(),
				ServiceInfo: "plan=gold & <vip>", IncludeRegisterRequest: true}),
			userdata.InitialFilterCriteria{Priority: 20,
				TriggerPoint:      &userdata.TriggerPoint{SPTs: []userdata.SPT{{Groups: []uint32{0}, Method: &invite}}},
				ApplicationServer: userdata.ApplicationServer{ServerName: "sip:" + other.HostPort()}})
	})
	l := scscftest.NewRegLab(t, h, "", nil)
	u := scscftest.NewUE(t, "alice")
	pcv := sip.NewHeader("P-Charging-Vector", "icid-value=abc123;orig-ioi=visited.example.net")
	res := u.Send(t, l.Shim, 600, u.InitialAuthz(), pcv)
	res = u.Send(t, l.Shim, 600, u.Answer(t, res, true), pcv)
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER %d", res.StatusCode)
	}

	r := as.Next(3 * time.Second)
	if r.Method != sip.REGISTER || r.Recipient.Host != "127.0.0.1" || r.Recipient.Port != as.P.Addr("udp").Port {
		t.Fatalf("third-party request %s", r.StartLine())
	}
	if got := binding.CanonURI(r.To().Address.String()); got != u.IMPU {
		t.Errorf("To %s", got)
	}
	if r.From().Address.String() != l.S.Config().ServerName || r.Contact() == nil || r.Contact().Address.String() != l.S.Config().ServerName {
		t.Errorf("From %s Contact %v, want %s", r.From().Address.String(), r.Contact(), l.S.Config().ServerName)
	}
	if e := r.GetHeader("Expires"); e == nil || (e.Value() != "600" && e.Value() != "599") {
		t.Errorf("Expires %v", e)
	}
	v, err := imsheader.GetPChargingVector(r)
	if err != nil || v == nil || v.ICID() != "abc123" || v.OrigIOI() != scscftest.Domain || v.TermIOI() != "" {
		t.Errorf("P-Charging-Vector %v %v", v, err)
	}
	parts := bodyParts(t, r)
	if len(parts) != 2 || parts[0].contentType != isc.ContentType3GPPIMSXML || parts[1].contentType != isc.ContentTypeMessageSIP {
		t.Fatalf("parts %+v", parts)
	}
	if !strings.Contains(string(parts[0].body), `<ims-3gpp version="1"><service-info>plan=gold &amp; &lt;vip&gt;</service-info></ims-3gpp>`) {
		t.Errorf("service info body %s", parts[0].body)
	}
	inc, err := sip.ParseMessage(parts[1].body)
	if err != nil {
		t.Fatalf("message/sip: %v\n%s", err, parts[1].body)
	}
	ireq, ok := inc.(*sip.Request)
	if !ok || ireq.Method != sip.REGISTER || ireq.CallID().Value() != u.CallID || ireq.CSeq().SeqNo != u.CSeq || ireq.GetHeader("Authorization") == nil {
		t.Errorf("included REGISTER:\n%s", parts[1].body)
	}
	callID, cseq := r.CallID().Value(), r.CSeq().SeqNo

	// Re-registration: same Call-ID, next CSeq.
	u.RegisterAKA(t, l.Shim, 600)
	r = as.Next(3 * time.Second)
	if r.CallID().Value() != callID || r.CSeq().SeqNo != cseq+1 {
		t.Errorf("re-registration: Call-ID %s CSeq %d", r.CallID().Value(), r.CSeq().SeqNo)
	}
	// De-registration: Expires 0.
	u.RegisterAKA(t, l.Shim, 0)
	r = as.Next(3 * time.Second)
	if e := r.GetHeader("Expires"); e == nil || e.Value() != "0" {
		t.Errorf("de-registration Expires %v", e)
	}
	other.None(300 * time.Millisecond)
	as.None(100 * time.Millisecond)
}

// TestThirdPartyRegisterSharedIFCSet: an iFC that the service profile
// references through a shared iFC set (TS 29.228 §6.6.3) triggers the
// third-party REGISTER (TS 24.229 §5.4.1.7) as one of its own does.
func TestThirdPartyRegisterSharedIFCSet(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("frank"))
	as := scscftest.NewPeer(t, 200)
	sets := filepath.Join(t.TempDir(), "shared-ifc-sets.xml")
	if err := os.WriteFile(sets, []byte(`<SharedIFCSets><SharedIFCSet><SetID>7</SetID>
	<InitialFilterCriteria><Priority>1</Priority><TriggerPoint><ConditionTypeCNF>1</ConditionTypeCNF>
	<SPT><ConditionNegated>0</ConditionNegated><Group>0</Group><Method>REGISTER</Method></SPT></TriggerPoint>
	<ApplicationServer><ServerName>sip:`+as.HostPort()+`</ServerName><DefaultHandling>0</DefaultHandling></ApplicationServer>
	</InitialFilterCriteria></SharedIFCSet></SharedIFCSets>`), 0o644); err != nil {
		t.Fatal(err)
	}
	scscftest.ServeProfiles(t, h, func(s *scscftest.Sub) *userdata.IMSSubscription {
		p := scscftest.ProfileWith(s) // no iFC of its own
		p.ServiceProfiles[0].SharedIFCSetIDs = []uint32{7}
		return p
	})
	l := scscftest.NewRegLab(t, h, "", nil, func(c *scscf.Config) { c.SharedIFCSetsFile = sets })
	u := scscftest.NewUE(t, "frank")
	u.RegisterAKA(t, l.Shim, 600)
	r := as.Next(3 * time.Second)
	if r.Method != sip.REGISTER || binding.CanonURI(r.To().Address.String()) != u.IMPU {
		t.Fatalf("third-party request %s to %s", r.StartLine(), r.To().Address.String())
	}
}

func TestThirdPartyRegistrationTypesAndResponse(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("bob"))
	as := scscftest.NewPeer(t, 200)
	scscftest.ServeProfiles(t, h, func(s *scscftest.Sub) *userdata.IMSSubscription {
		return scscftest.ProfileWith(s, scscftest.RegisterIFC(1, userdata.ApplicationServer{ServerName: "sip:" + as.HostPort(), IncludeRegisterResponse: true},
			userdata.RegistrationInitial))
	})
	l := scscftest.NewRegLab(t, h, "", nil)
	u := scscftest.NewUE(t, "bob")
	u.RegisterAKA(t, l.Shim, 600)
	r := as.Next(3 * time.Second)
	parts := bodyParts(t, r)
	if len(parts) != 1 || parts[0].contentType != isc.ContentTypeMessageSIP {
		t.Fatalf("parts %+v", parts)
	}
	m, err := sip.ParseMessage(parts[0].body)
	if err != nil {
		t.Fatal(err)
	}
	if res, ok := m.(*sip.Response); !ok || res.StatusCode != 200 || res.GetHeader("Service-Route") == nil {
		t.Errorf("included response:\n%s", parts[0].body)
	}
	// Only INITIAL_REGISTRATION matches: nothing for re- or de-registration.
	u.RegisterAKA(t, l.Shim, 600)
	u.RegisterAKA(t, l.Shim, 0)
	as.None(500 * time.Millisecond)
}

func TestThirdPartyFailingAS(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(scscftest.AKASub("carol"))
	h.Add(scscftest.AKASub("dave"))
	h.Add(scscftest.AKASub("erin"))
	broken := scscftest.NewPeer(t, 503)
	silent := scscftest.NewPeer(t, 0)
	tolerant := scscftest.NewPeer(t, 500)
	scscftest.ServeProfiles(t, h, func(s *scscftest.Sub) *userdata.IMSSubscription {
		term, cont := userdata.SessionTerminated, userdata.SessionContinued
		switch s.IMPI {
		case "carol@" + scscftest.Domain:
			return scscftest.ProfileWith(s, scscftest.RegisterIFC(1, userdata.ApplicationServer{ServerName: "sip:" + broken.HostPort(), DefaultHandling: &term}))
		case "dave@" + scscftest.Domain:
			return scscftest.ProfileWith(s, scscftest.RegisterIFC(1, userdata.ApplicationServer{ServerName: "sip:" + silent.HostPort(), DefaultHandling: &term}))
		default:
			return scscftest.ProfileWith(s, scscftest.RegisterIFC(1, userdata.ApplicationServer{ServerName: "sip:" + tolerant.HostPort(), DefaultHandling: &cont}))
		}
	})
	type dereg struct{ impu, reason string }
	got := make(chan dereg, 10)
	var l *scscftest.RegLab
	l = scscftest.NewRegLab(t, h, "", func(impu, reason string) {
		got <- dereg{impu, reason}
		l.S.NetworkDeregister(impu, reason)
	})

	// 503 from an AS with SESSION_TERMINATED: the user is de-registered.
	c := scscftest.NewUE(t, "carol")
	c.RegisterAKA(t, l.Shim, 600)
	broken.Next(3 * time.Second)
	select {
	case d := <-got:
		if d.impu != c.IMPU || !strings.Contains(d.reason, "503") {
			t.Errorf("deregister(%q, %q)", d.impu, d.reason)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("no de-registration after a 503 from a SESSION_TERMINATED AS")
	}
	h.WaitSAR(t, diameter.SATAdministrativeDeregistration, 3*time.Second)
	if _, ok := l.S.Lookup(c.IMPU); ok {
		t.Error("carol still registered")
	}
	// The network-initiated de-registration reaches the AS too (Expires 0).
	r := broken.Next(3 * time.Second)
	if e := r.GetHeader("Expires"); e == nil || e.Value() != "0" {
		t.Errorf("de-registration to the AS: Expires %v", e)
	}

	// No answer at all (timeout): the same.
	d := scscftest.NewUE(t, "dave")
	d.RegisterAKA(t, l.Shim, 600)
	select {
	case x := <-got:
		if x.impu != d.IMPU {
			t.Errorf("deregister(%q)", x.impu)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no de-registration after an AS timeout")
	}

	// SESSION_CONTINUED: logged only.
	e := scscftest.NewUE(t, "erin")
	e.RegisterAKA(t, l.Shim, 600)
	tolerant.Next(3 * time.Second)
	select {
	case x := <-got:
		t.Errorf("deregister(%q) for SESSION_CONTINUED", x.impu)
	case <-time.After(500 * time.Millisecond):
	}
	if _, ok := l.S.Lookup(e.IMPU); !ok {
		t.Error("erin de-registered")
	}
}
