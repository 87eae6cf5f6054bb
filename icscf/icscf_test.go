package icscf

import (
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imscore/imscore/pkg/diameter"
)

func routeOf(req *sip.Request) string {
	if rt := req.Route(); rt != nil {
		return rt.Address.String()
	}
	return ""
}

// checkToSCSCF checks a request reached s with a Route to its name, the
// Request-URI wanted and no Record-Route.
func checkToSCSCF(t *testing.T, got *sip.Request, s *testSCSCF, ruri string) {
	t.Helper()
	if r := routeOf(got); r != s.name+";lr" {
		t.Errorf("Route at %s = %q, want %q", s.name, r, s.name+";lr")
	}
	if got.Recipient.String() != ruri {
		t.Errorf("Request-URI = %q, want %q", got.Recipient.String(), ruri)
	}
	if rr := got.GetHeaders("Record-Route"); len(rr) != 0 {
		t.Errorf("Record-Route added: %v", rr)
	}
}

func TestRegisterCapabilitiesSelectMatchingSCSCF(t *testing.T) {
	s1 := newTestSCSCF(t, "scscf1", nil)
	s2 := newTestSCSCF(t, "scscf2", nil)
	s3 := newTestSCSCF(t, "scscf3", nil)
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		return cxReply{code: diameter.DiameterFirstRegistration, experimental: true, caps: true, mandatory: []uint32{1, 2}, optional: []uint32{3, 4}}
	})
	// s1 lacks mandatory 2; s2 and s3 have it, s3 has more optional ones.
	ic, reg := startICSCF(t, hss.addr, []string{s1.spec(1, 3, 4), s2.spec(1, 2), s3.spec(2, 1, 4)})
	waitReady(t, ic)

	res := do(t, newUAC(t), register(ic,
		header("Authorization", `Digest username="alice@ims.test", realm="ims.test", uri="sip:ims.test", nonce="", response=""`),
		header("P-Visited-Network-ID", `"visited.example.net"`),
		header("Expires", "600")))
	if res.StatusCode != 200 {
		t.Fatalf("got %d %s", res.StatusCode, res.Reason)
	}
	checkToSCSCF(t, s3.next(t), s3, "sip:ims.test")
	s1.none(t)
	s2.none(t)
	uars := hss.requests()
	if len(uars) != 1 {
		t.Fatalf("UARs: %+v", uars)
	}
	want := cxSeen{cmd: diameter.CmdUserAuthorization, impu: "sip:alice@ims.test", impi: "alice@ims.test", vnid: "visited.example.net", uat: int(diameter.UATRegistration)}
	if uars[0] != want {
		t.Errorf("UAR = %+v, want %+v", uars[0], want)
	}
	if v := metricValue(t, reg, "icscf_cx_answers_total", "command=UAR", "result=e2001"); v != 1 {
		t.Errorf("UAR e2001 counter = %v", v)
	}
	if v := metricValue(t, reg, "icscf_sip_responses_total", "method=REGISTER", "code=200"); v != 1 {
		t.Errorf("REGISTER 200 counter = %v", v)
	}
}

// metricValue returns the value of a counter by "name=value" labels (0 when
// absent).
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ok := len(m.GetLabel()) == len(labels)
			for _, l := range m.GetLabel() {
				if ok && !slices.Contains(labels, l.GetName()+"="+l.GetValue()) {
					ok = false
				}
			}
			if ok {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestRegisterServerName(t *testing.T) {
	s1 := newTestSCSCF(t, "scscf1", nil)
	s2 := newTestSCSCF(t, "scscf2", nil)
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		return cxReply{code: diameter.DiameterSubsequentRegistration, experimental: true, serverName: s2.name}
	})
	ic, _ := startICSCF(t, hss.addr, []string{s1.spec(1), s2.spec()})
	waitReady(t, ic)
	res := do(t, newUAC(t), register(ic))
	if res.StatusCode != 200 {
		t.Fatalf("got %d", res.StatusCode)
	}
	checkToSCSCF(t, s2.next(t), s2, "sip:ims.test")
	s1.none(t)
	// Without Authorization and P-Visited-Network-ID: User-Name derived
	// from the IMPU, the home domain as visited network.
	got := hss.requests()[0]
	if got.impi != "alice@ims.test" || got.vnid != testDomain || got.uat != 0 {
		t.Errorf("UAR = %+v", got)
	}
}

func TestDeregistrationUAR(t *testing.T) {
	s1 := newTestSCSCF(t, "scscf1", nil)
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		return cxReply{code: diameter.DiameterSuccess, serverName: s1.name}
	})
	ic, _ := startICSCF(t, hss.addr, []string{s1.spec()})
	waitReady(t, ic)
	c := newUAC(t)

	if res := do(t, c, register(ic, header("Expires", "0"))); res.StatusCode != 200 {
		t.Fatalf("Expires: 0 got %d", res.StatusCode)
	}
	s1.next(t)
	// Contact expires=0 wins over a non-zero Expires header.
	req := register(ic, header("Expires", "3600"))
	req.Contact().Params = sip.NewParams()
	req.Contact().Params.Add("expires", "0")
	if res := do(t, c, req); res.StatusCode != 200 {
		t.Fatalf("Contact expires=0 got %d", res.StatusCode)
	}
	s1.next(t)
	for i, r := range hss.requests() {
		if r.uat != int(diameter.UATDeRegistration) {
			t.Errorf("UAR %d User-Authorization-Type = %d, want DE_REGISTRATION (1)", i, r.uat)
		}
	}
}

func TestUAAErrorsToSIP(t *testing.T) {
	cases := []struct {
		name         string
		code         uint32
		experimental bool
		wantCode     int
		wantWarning  string
	}{
		{"user unknown", diameter.DiameterErrorUserUnknown, true, 403, "user unknown"},
		{"identities don't match", diameter.DiameterErrorIdentitiesDontMatch, true, 403, "do not belong together"},
		{"roaming not allowed", diameter.DiameterErrorRoamingNotAllowed, true, 403, "roaming not allowed"},
		// The HSS's answer to a de-REGISTER of an IMPU that is not registered
		// (TS 29.228 §6.1.1.1): 403 as Kamailio answers, not 500.
		{"identity not registered", diameter.DiameterErrorIdentityNotRegistered, true, 403, "not registered"},
		{"authorization rejected", diameter.DiameterAuthorizationRejected, false, 403, "not authorized"},
		{"unable to comply", diameter.DiameterUnableToComply, false, 500, "HSS hss.ims.test answered UAA Result-Code 5012"},
		{"too busy", diameter.DiameterTooBusy, false, 504, "HSS hss.ims.test"},
		{"other experimental", diameter.DiameterErrorInAssignmentType, true, 500, "HSS hss.ims.test answered UAA Experimental-Result-Code 5007"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s1 := newTestSCSCF(t, "scscf1", nil)
			hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
				return cxReply{code: tc.code, experimental: tc.experimental}
			})
			ic, _ := startICSCF(t, hss.addr, []string{s1.spec()}, revealUnknownUsers)
			waitReady(t, ic)
			res := do(t, newUAC(t), register(ic))
			if res.StatusCode != tc.wantCode {
				t.Fatalf("got %d %s, want %d", res.StatusCode, res.Reason, tc.wantCode)
			}
			w := res.GetHeader("Warning")
			if w == nil || !strings.HasPrefix(w.Value(), "399 ") || !strings.Contains(w.Value(), tc.wantWarning) {
				t.Errorf("Warning = %v, want 399 with %q", w, tc.wantWarning)
			}
			s1.none(t)
		})
	}
}

func TestHSSDownIs504NotForbidden(t *testing.T) {
	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	_ = l.Close()
	s1 := newTestSCSCF(t, "scscf1", nil)
	ic, reg := startICSCF(t, dead, []string{s1.spec()})
	if err := ic.Ready(nil); err == nil || !strings.Contains(err.Error(), testHSSHost) {
		t.Errorf("Ready = %v, want an error naming the HSS", err)
	}
	c := newUAC(t)
	for _, req := range []*sip.Request{
		register(ic),
		newRequest(ic, sip.INVITE, "sip:bob@ims.test", "sip:bob@ims.test"),
	} {
		res := do(t, c, req)
		if res.StatusCode < 500 || res.StatusCode == 403 {
			t.Fatalf("%s: got %d, want 5xx", req.Method, res.StatusCode)
		}
		w := res.GetHeader("Warning")
		if w == nil || !strings.Contains(w.Value(), testHSSHost) {
			t.Errorf("%s: Warning = %v, want one naming %s", req.Method, w, testHSSHost)
		}
	}
	s1.none(t)
	if v := metricValue(t, reg, "icscf_cx_answers_total", "command=UAR", "result=unreachable"); v != 1 {
		t.Errorf("UAR unreachable counter = %v", v)
	}
}

func TestHSSSlowIs504(t *testing.T) {
	s1 := newTestSCSCF(t, "scscf1", nil)
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		return cxReply{code: diameter.DiameterFirstRegistration, experimental: true, serverName: s1.name, delay: 2 * time.Second}
	})
	ic, _ := startICSCF(t, hss.addr, []string{s1.spec()}, func(c *Config) { c.CxTimeout = 200 * time.Millisecond })
	waitReady(t, ic)
	res := do(t, newUAC(t), register(ic))
	if res.StatusCode != 504 {
		t.Fatalf("got %d", res.StatusCode)
	}
	if w := res.GetHeader("Warning"); w == nil || !strings.Contains(w.Value(), "did not answer the UAR") {
		t.Errorf("Warning = %v", w)
	}
}

func TestSilentSCSCFFailover(t *testing.T) {
	silent := silentSCSCF(t, "scscf1")
	s2 := newTestSCSCF(t, "scscf2", nil)
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		if r.uat == int(diameter.UATRegistrationAndCapabilities) {
			return cxReply{code: diameter.DiameterFirstRegistration, experimental: true, caps: true, mandatory: []uint32{1}}
		}
		return cxReply{code: diameter.DiameterSubsequentRegistration, experimental: true, serverName: silent.name}
	})
	ic, reg := startICSCF(t, hss.addr, []string{silent.spec(1), s2.spec(1)})
	waitReady(t, ic)
	res := do(t, newUAC(t), register(ic))
	if res.StatusCode != 200 {
		t.Fatalf("got %d", res.StatusCode)
	}
	silent.next(t)
	checkToSCSCF(t, s2.next(t), s2, "sip:ims.test")
	uars := hss.requests()
	if len(uars) != 2 || uars[0].uat != int(diameter.UATRegistration) || uars[1].uat != int(diameter.UATRegistrationAndCapabilities) {
		t.Errorf("UARs = %+v, want REGISTRATION then REGISTRATION_AND_CAPABILITIES", uars)
	}
	if v := metricValue(t, reg, "icscf_scscf_failovers_total"); v != 1 {
		t.Errorf("failovers = %v", v)
	}
}

func TestSCSCF5xxFailoverAndExhaustion(t *testing.T) {
	bad := newTestSCSCF(t, "scscf1", func(*sip.Request) (int, string) { return 503, "Overloaded" })
	s2 := newTestSCSCF(t, "scscf2", nil)
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		return cxReply{code: diameter.DiameterFirstRegistration, experimental: true, caps: true}
	})
	t.Run("next", func(t *testing.T) {
		ic, _ := startICSCF(t, hss.addr, []string{bad.spec(), s2.spec()})
		waitReady(t, ic)
		if res := do(t, newUAC(t), register(ic)); res.StatusCode != 200 {
			t.Fatalf("got %d", res.StatusCode)
		}
		bad.next(t)
		s2.next(t)
	})
	t.Run("all-fail", func(t *testing.T) {
		silent := silentSCSCF(t, "scscf3")
		ic, _ := startICSCF(t, hss.addr, []string{silent.spec(), bad.spec()})
		waitReady(t, ic)
		res := do(t, newUAC(t), register(ic))
		// The last S-CSCF's own answer is relayed, its 503 turned into 500
		// (RFC 3261 §16.7 step 6).
		if res.StatusCode != 500 {
			t.Fatalf("got %d", res.StatusCode)
		}
		ic2, _ := startICSCF(t, hss.addr, []string{silent.spec()})
		waitReady(t, ic2)
		res = do(t, newUAC(t), register(ic2))
		if res.StatusCode != 504 {
			t.Fatalf("only silent S-CSCF: got %d", res.StatusCode)
		}
		if w := res.GetHeader("Warning"); w == nil || !strings.Contains(w.Value(), silent.name) {
			t.Errorf("Warning = %v", w)
		}
	})
}

func TestNoCapableSCSCFIs500(t *testing.T) {
	s1 := newTestSCSCF(t, "scscf1", nil)
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		return cxReply{code: diameter.DiameterFirstRegistration, experimental: true, caps: true, mandatory: []uint32{7}}
	})
	ic, _ := startICSCF(t, hss.addr, []string{s1.spec(1)})
	waitReady(t, ic)
	res := do(t, newUAC(t), register(ic))
	if res.StatusCode != 500 {
		t.Fatalf("got %d", res.StatusCode)
	}
	if w := res.GetHeader("Warning"); w == nil || !strings.Contains(w.Value(), "mandatory capabilities [7]") {
		t.Errorf("Warning = %v", w)
	}
	s1.none(t)
}

func TestTerminatingLIR(t *testing.T) {
	s1 := newTestSCSCF(t, "scscf1", nil)
	s2 := newTestSCSCF(t, "scscf2", nil)
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		switch r.impu {
		case "sip:bob@ims.test":
			return cxReply{code: diameter.DiameterSuccess, serverName: s2.name}
		case "tel:+15551234;phone-context=ims.test":
			return cxReply{code: diameter.DiameterUnregisteredService, experimental: true, caps: true, mandatory: []uint32{5}}
		case "sip:nobody@ims.test":
			return cxReply{code: diameter.DiameterErrorUserUnknown, experimental: true}
		case "sip:carol@ims.test":
			return cxReply{code: diameter.DiameterErrorIdentityNotRegistered, experimental: true}
		}
		return cxReply{code: diameter.DiameterUnableToComply}
	})
	ic, reg := startICSCF(t, hss.addr, []string{s1.spec(5), s2.spec()})
	waitReady(t, ic)
	c := newUAC(t)

	t.Run("INVITE Server-Name", func(t *testing.T) {
		res := do(t, c, newRequest(ic, sip.INVITE, "sip:bob@ims.test;user=phone", "sip:bob@ims.test"))
		if res.StatusCode != 486 {
			t.Fatalf("got %d", res.StatusCode)
		}
		checkToSCSCF(t, s2.next(t), s2, "sip:bob@ims.test;user=phone")
	})
	t.Run("MESSAGE to tel: capabilities", func(t *testing.T) {
		res := do(t, c, newRequest(ic, sip.MESSAGE, "tel:+15551234;phone-context=ims.test", "tel:+15551234;phone-context=ims.test"))
		if res.StatusCode != 200 {
			t.Fatalf("got %d", res.StatusCode)
		}
		checkToSCSCF(t, s1.next(t), s1, "tel:+15551234;phone-context=ims.test")
	})
	t.Run("5001 is 404", func(t *testing.T) {
		res := do(t, c, newRequest(ic, sip.INVITE, "sip:nobody@ims.test", "sip:nobody@ims.test"))
		if res.StatusCode != 404 {
			t.Fatalf("got %d", res.StatusCode)
		}
	})
	t.Run("5003 is 480", func(t *testing.T) {
		res := do(t, c, newRequest(ic, sip.MESSAGE, "sip:carol@ims.test", "sip:carol@ims.test"))
		if res.StatusCode != 480 {
			t.Fatalf("got %d", res.StatusCode)
		}
	})
	t.Run("5012 is 500", func(t *testing.T) {
		res := do(t, c, newRequest(ic, sip.MESSAGE, "sip:dave@ims.test", "sip:dave@ims.test"))
		if res.StatusCode != 500 {
			t.Fatalf("got %d", res.StatusCode)
		}
		if w := res.GetHeader("Warning"); w == nil || !strings.Contains(w.Value(), "hss.ims.test answered LIA Result-Code 5012") {
			t.Errorf("Warning = %v", w)
		}
	})
	s1.none(t)
	s2.none(t)
	for _, r := range hss.requests() {
		if r.cmd != diameter.CmdLocationInfo || r.uat != -1 {
			t.Errorf("request %+v: want LIR without User-Authorization-Type", r)
		}
	}
	if v := metricValue(t, reg, "icscf_cx_answers_total", "command=LIR", "result=e5001"); v != 1 {
		t.Errorf("LIR e5001 counter = %v", v)
	}
	if v := metricValue(t, reg, "icscf_sip_responses_total", "method=INVITE", "code=404"); v != 1 {
		t.Errorf("INVITE 404 counter = %v", v)
	}
}

func TestTerminatingSilentSCSCFReLIR(t *testing.T) {
	silent := silentSCSCF(t, "scscf1")
	s2 := newTestSCSCF(t, "scscf2", nil)
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		if r.uat == int(diameter.UATRegistrationAndCapabilities) {
			return cxReply{code: diameter.DiameterUnregisteredService, experimental: true, caps: true}
		}
		return cxReply{code: diameter.DiameterUnregisteredService, experimental: true, serverName: silent.name}
	})
	ic, _ := startICSCF(t, hss.addr, []string{silent.spec(), s2.spec()})
	waitReady(t, ic)
	res := do(t, newUAC(t), newRequest(ic, sip.MESSAGE, "sip:bob@ims.test", "sip:bob@ims.test"))
	if res.StatusCode != 200 {
		t.Fatalf("got %d", res.StatusCode)
	}
	silent.next(t)
	s2.next(t)
	lirs := hss.requests()
	if len(lirs) != 2 || lirs[1].uat != int(diameter.UATRegistrationAndCapabilities) {
		t.Errorf("LIRs = %+v", lirs)
	}
}

func TestRouteElsewhereForwardedWithoutLIR(t *testing.T) {
	s1 := newTestSCSCF(t, "scscf1", nil)
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply {
		return cxReply{code: diameter.DiameterErrorUserUnknown, experimental: true}
	})
	ic, _ := startICSCF(t, hss.addr, []string{s1.spec()})
	waitReady(t, ic)
	// In-dialog MESSAGE: Route to the I-CSCF itself (popped), then to s1.
	self := ic.SIPAddr("udp")
	req := newRequest(ic, sip.MESSAGE, "sip:alice@127.0.0.1:5999", "sip:bob@ims.test",
		header("Route", "<sip:127.0.0.1:"+itoa(self.Port)+";lr>"),
		header("Route", "<sip:127.0.0.1:"+itoa(s1.port)+";lr>"))
	req.To().Params.Add("tag", "totag1")
	res := do(t, newUAC(t), req)
	if res.StatusCode != 200 {
		t.Fatalf("got %d", res.StatusCode)
	}
	got := s1.next(t)
	if got.Recipient.String() != "sip:alice@127.0.0.1:5999" {
		t.Errorf("Request-URI changed: %s", got.Recipient.String())
	}
	if n := len(hss.requests()); n != 0 {
		t.Errorf("%d Cx requests for a routed request", n)
	}
}

func TestOptionsToSelf(t *testing.T) {
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply { return cxReply{code: diameter.DiameterUnableToComply} })
	s1 := newTestSCSCF(t, "scscf1", nil)
	ic, _ := startICSCF(t, hss.addr, []string{s1.spec()})
	a := ic.SIPAddr("udp")
	res := do(t, newUAC(t), newRequest(ic, sip.OPTIONS, "sip:127.0.0.1:"+itoa(a.Port), "sip:127.0.0.1:"+itoa(a.Port)))
	if res.StatusCode != 200 {
		t.Fatalf("got %d", res.StatusCode)
	}
	if len(hss.requests()) != 0 {
		t.Error("OPTIONS to the I-CSCF caused a Cx request")
	}
}

// TestInDialogToSelf: a request with a To tag, no Route and the I-CSCF's
// own domain as Request-URI belongs to no dialog the I-CSCF could route
// (e.g. a UA's BYE after a failed REGISTER): 481, not a forwarding loop
// and not a 5xx (RFC 3261 §12.2.2).
func TestInDialogToSelf(t *testing.T) {
	hss := newTestHSS(t, func(r cxSeen, n int) cxReply { return cxReply{code: diameter.DiameterUnableToComply} })
	s1 := newTestSCSCF(t, "scscf1", nil)
	ic, _ := startICSCF(t, hss.addr, []string{s1.spec()})
	req := newRequest(ic, sip.BYE, "sip:"+testDomain, "sip:alice@"+testDomain)
	req.To().Params.Add("tag", "t1")
	res := do(t, newUAC(t), req)
	if res.StatusCode != 481 {
		t.Fatalf("got %d %s", res.StatusCode, res.Reason)
	}
	if len(hss.requests()) != 0 {
		t.Error("a Cx request for an in-dialog request")
	}
	s1.none(t)
}
