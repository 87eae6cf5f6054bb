package ifc

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/userdata"
)

func ptr[T any](v T) *T { return &v }

func method(m string, groups ...uint32) userdata.SPT {
	return userdata.SPT{Groups: groups, Method: ptr(m)}
}

func ruri(re string, groups ...uint32) userdata.SPT {
	return userdata.SPT{Groups: groups, RequestURI: ptr(re)}
}

func header(name string, content *string, groups ...uint32) userdata.SPT {
	return userdata.SPT{Groups: groups, SIPHeader: &userdata.SIPHeader{Header: name, Content: content}}
}

func sescase(c userdata.SessionCase, groups ...uint32) userdata.SPT {
	return userdata.SPT{Groups: groups, SessionCase: ptr(c)}
}

func sdp(line string, content *string, groups ...uint32) userdata.SPT {
	return userdata.SPT{Groups: groups, SessionDescription: &userdata.SessionDescription{Line: line, Content: content}}
}

func neg(s userdata.SPT) userdata.SPT {
	s.ConditionNegated = true
	return s
}

func tp(cnf bool, spts ...userdata.SPT) *userdata.TriggerPoint {
	return &userdata.TriggerPoint{ConditionTypeCNF: userdata.Bool(cnf), SPTs: spts}
}

func ifcWith(prio int, t *userdata.TriggerPoint) userdata.InitialFilterCriteria {
	return userdata.InitialFilterCriteria{
		Priority:          prio,
		TriggerPoint:      t,
		ApplicationServer: userdata.ApplicationServer{ServerName: fmt.Sprintf("sip:as%d.ims.example", prio)},
	}
}

const mmtelSDP = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 49152 RTP/AVP 96 0\r\na=rtpmap:96 AMR-WB/16000\r\nm=video 49154 RTP/AVP 99\r\n"

func invite() Request {
	return Request{
		Method:     "INVITE",
		RequestURI: "sip:bob@ims.example;user=phone",
		Headers: []Header{
			{Name: "Via", Value: "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"},
			{Name: "i", Value: "abc@192.0.2.1"},
			{Name: "Accept-Contact", Value: `*;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel"`},
			{Name: "Accept-Contact", Value: `*;audio`},
			{Name: "P-Asserted-Identity", Value: "<sip:alice@ims.example>"},
			{Name: "Supported", Value: "timer"},
		},
		SDP:         ParseSDP([]byte(mmtelSDP)),
		SessionCase: userdata.SessionCaseOriginating,
		Registered:  true,
	}
}

func TestSPTs(t *testing.T) {
	reg := Request{Method: "REGISTER", RequestURI: "sip:ims.example", SessionCase: userdata.SessionCaseOriginating, Registered: true}
	regType := func(rt userdata.RegistrationType) Request { r := reg; r.RegistrationType = rt; return r }
	regSPT := func(types ...userdata.RegistrationType) userdata.SPT {
		s := method("REGISTER", 0)
		s.RegistrationTypes = types
		return s
	}
	inviteWithTypes := method("INVITE", 0)
	inviteWithTypes.RegistrationTypes = []userdata.RegistrationType{userdata.RegistrationDeRegistration}

	tests := []struct {
		name string
		spt  userdata.SPT
		req  Request
		want bool
	}{
		{"method equal", method("INVITE", 0), invite(), true},
		{"method other", method("MESSAGE", 0), invite(), false},
		{"method case-sensitive", method("invite", 0), invite(), false},
		{"method surrounding space", method(" INVITE\n", 0), invite(), true},
		{"method negated", neg(method("MESSAGE", 0)), invite(), true},
		{"method negated equal", neg(method("INVITE", 0)), invite(), false},

		{"ruri unanchored", ruri(`bob@`, 0), invite(), true},
		{"ruri anchored whole", ruri(`^sip:bob@ims\.example(;.*)?$`, 0), invite(), true},
		{"ruri anchored miss", ruri(`^sip:alice@`, 0), invite(), false},
		{"ruri tel", ruri(`^tel:\+1`, 0), Request{Method: "INVITE", RequestURI: "tel:+15551234"}, true},
		{"ruri tel pattern, user=phone SIP URI", ruri(`^tel:\+15551234$`, 0), Request{Method: "INVITE", RequestURI: "sip:+1-555-1234@ims.example;user=phone"}, true},
		{"ruri tel pattern, visual separators", ruri(`^tel:\+15551234$`, 0), Request{Method: "INVITE", RequestURI: "tel:+1-555-1234"}, true},
		{"ruri SIP pattern, user=phone SIP URI as sent", ruri(`^sip:\+1-555-1234@`, 0), Request{Method: "INVITE", RequestURI: "sip:+1-555-1234@ims.example;user=phone"}, true},
		{"ruri tel pattern negated, user=phone SIP URI", neg(ruri(`^tel:\+15551234$`, 0)), Request{Method: "INVITE", RequestURI: "sip:+15551234@ims.example;user=phone"}, false},
		{"ruri pattern whitespace trimmed", ruri("\n  ^sip:bob@ \n", 0), invite(), true},
		{"ruri negated", neg(ruri(`^sip:alice@`, 0)), invite(), true},

		{"header present", header("Supported", nil, 0), invite(), true},
		{"header present any case", header("supported", nil, 0), invite(), true},
		{"header absent", header("Privacy", nil, 0), invite(), false},
		{"header absent negated", neg(header("Privacy", nil, 0)), invite(), true},
		{"header compact in request", header("Call-ID", nil, 0), invite(), true},
		{"header compact in SPT", header("i", ptr(`^abc@`), 0), invite(), true},
		{"header compact uppercase", header("I", nil, 0), invite(), true},
		{"header content mmtel", header("Accept-Contact", ptr(`.*mmtel.*`), 0), invite(), true},
		{"header content second instance", header("Accept-Contact", ptr(`^\*;audio$`), 0), invite(), true},
		{"header content no match", header("Accept-Contact", ptr(`.*ics\.psi.*`), 0), invite(), false},
		{"header content negated", neg(header("Accept-Contact", ptr(`mmtel`), 0)), invite(), false},
		{"header content on absent header", header("Privacy", ptr(`.*`), 0), invite(), false},
		{"header content unanchored", header("P-Asserted-Identity", ptr(`alice`), 0), invite(), true},

		{"sescase equal", sescase(userdata.SessionCaseOriginating, 0), invite(), true},
		{"sescase other", sescase(userdata.SessionCaseTerminatingRegistered, 0), invite(), false},
		{"sescase cdiv", sescase(userdata.SessionCaseOriginatingCDIV, 0), Request{SessionCase: userdata.SessionCaseOriginatingCDIV}, true},
		{"sescase negated", neg(sescase(userdata.SessionCaseTerminatingUnregistered, 0)), invite(), true},

		{"sdp m=audio", sdp("m", ptr(`^audio`), 0), invite(), true},
		{"sdp m=video second line", sdp("m", ptr(`^video`), 0), invite(), true},
		{"sdp m=message", sdp("m", ptr(`^message`), 0), invite(), false},
		{"sdp line any content", sdp("c", nil, 0), invite(), true},
		{"sdp line absent", sdp("b", nil, 0), invite(), false},
		{"sdp rtpmap", sdp("a", ptr(`AMR-WB`), 0), invite(), true},
		{"sdp no body", sdp("m", nil, 0), Request{Method: "INVITE"}, false},
		{"sdp negated", neg(sdp("m", ptr(`^video`), 0)), invite(), false},

		{"register no types", regSPT(), regType(userdata.RegistrationReRegistration), true},
		{"register initial in list", regSPT(userdata.RegistrationInitial), regType(userdata.RegistrationInitial), true},
		{"register re not in list", regSPT(userdata.RegistrationInitial), regType(userdata.RegistrationReRegistration), false},
		{"register de in list of two", regSPT(userdata.RegistrationReRegistration, userdata.RegistrationDeRegistration), regType(userdata.RegistrationDeRegistration), true},
		{"register types negated", neg(regSPT(userdata.RegistrationInitial)), regType(userdata.RegistrationDeRegistration), true},
		{"register types on INVITE request", regSPT(userdata.RegistrationInitial), invite(), false},
		{"types ignored for other methods", inviteWithTypes, invite(), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := ifcWith(1, tp(false, tc.spt))
			got, err := Match(&f, tc.req)
			if err != nil {
				t.Fatalf("Match error: %v", err)
			}
			if got != tc.want {
				t.Fatalf("Match = %v, want %v", got, tc.want)
			}
			// The same single-SPT trigger gives the same result in CNF.
			f.TriggerPoint.ConditionTypeCNF = true
			if got, _ := Match(&f, tc.req); got != tc.want {
				t.Fatalf("CNF Match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCNFAndDNF(t *testing.T) {
	req := invite() // INVITE, originating, m=audio
	T := method("INVITE", 0)
	F := method("BYE", 0)
	with := func(s userdata.SPT, groups ...uint32) userdata.SPT { s.Groups = groups; return s }
	tests := []struct {
		name     string
		spts     []userdata.SPT
		cnf, dnf bool
	}{
		// groups: 1 = {T, F}, 2 = {T}
		{"one true per group", []userdata.SPT{with(T, 1), with(F, 1), with(T, 2)}, true, true},
		// 1 = {F}, 2 = {T}: CNF needs both groups, DNF one.
		{"one group false", []userdata.SPT{with(F, 1), with(T, 2)}, false, true},
		// 1 = {T, F}: CNF (T or F) true; DNF (T and F) false.
		{"mixed single group", []userdata.SPT{with(T, 1), with(F, 1)}, true, false},
		// 1 = {F}, 2 = {F}
		{"all false", []userdata.SPT{with(F, 1), with(F, 2)}, false, false},
		// 1 = {T}, 2 = {T}, 3 = {T}
		{"all true", []userdata.SPT{with(T, 1), with(T, 2), with(T, 3)}, true, true},
		// SPT T in groups 1 and 2, F in group 2:
		// CNF: (T) and (T or F) = true; DNF: (T) or (T and F) = true.
		{"SPT in two groups", []userdata.SPT{with(T, 1, 2), with(F, 2)}, true, true},
		// SPT F in groups 1 and 2, T in group 2:
		// CNF: (F) and (F or T) = false; DNF: (F) or (F and T) = false.
		{"false SPT in two groups", []userdata.SPT{with(F, 1, 2), with(T, 2)}, false, false},
		// F in 1, T in 1 and 2, F in 3, T in 3:
		// CNF: (F or T) and (T) and (F or T) = true; DNF: (F and T) or T or (F and T) = true.
		{"three groups", []userdata.SPT{with(F, 1), with(T, 1, 2), with(F, 3), with(T, 3)}, true, true},
		// F in 1 and 2, T in 1: CNF: (F or T) and (F) = false; DNF: (F and T) or (F) = false.
		{"shared false group", []userdata.SPT{with(F, 1, 2), with(T, 1)}, false, false},
		// Typical MMTel: INVITE and m=audio and originating, not (Privacy header).
		{"realistic", []userdata.SPT{
			with(T, 0), with(sdp("m", ptr("audio")), 0),
			with(sescase(userdata.SessionCaseOriginating), 0),
			with(neg(header("Privacy", nil)), 0),
		}, true, true},
		// A negated SPT turns the outcome.
		{"negation in group", []userdata.SPT{with(neg(T), 1), with(T, 2)}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, cnf := range []bool{true, false} {
				f := ifcWith(0, tp(cnf, tc.spts...))
				got, err := Match(&f, req)
				if err != nil {
					t.Fatal(err)
				}
				want := tc.dnf
				if cnf {
					want = tc.cnf
				}
				if got != want {
					t.Errorf("cnf=%v: got %v, want %v", cnf, got, want)
				}
			}
		})
	}
}

func TestProfilePartIndicator(t *testing.T) {
	regd := userdata.ProfilePartRegistered
	unregd := userdata.ProfilePartUnregistered
	bad := userdata.ProfilePartIndicator(7)
	tests := []struct {
		name       string
		ppi        *userdata.ProfilePartIndicator
		registered bool
		want       bool
	}{
		{"absent registered", nil, true, true},
		{"absent unregistered", nil, false, true},
		{"REGISTERED registered", &regd, true, true},
		{"REGISTERED unregistered", &regd, false, false},
		{"UNREGISTERED registered", &unregd, true, false},
		{"UNREGISTERED unregistered", &unregd, false, true},
		{"out of range", &bad, true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := ifcWith(1, nil) // no trigger point: only the indicator decides
			f.ProfilePartIndicator = tc.ppi
			req := invite()
			req.Registered = tc.registered
			if got, err := Match(&f, req); got != tc.want || err != nil {
				t.Fatalf("Match = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestNoTriggerPointAlwaysMatches(t *testing.T) {
	f := ifcWith(3, nil)
	for _, req := range []Request{{}, invite(), {Method: "REGISTER"}} {
		if ok, err := Match(&f, req); !ok || err != nil {
			t.Fatalf("Match(%+v) = %v, %v", req.Method, ok, err)
		}
	}
}

func TestEvaluateOrderAndResume(t *testing.T) {
	req := invite()
	// Deliberately out of order; 5 and 30 do not match.
	ifcs := []userdata.InitialFilterCriteria{
		ifcWith(20, tp(false, method("INVITE", 0))),
		ifcWith(5, tp(false, method("MESSAGE", 0))),
		ifcWith(10, nil),
		ifcWith(30, tp(true, sescase(userdata.SessionCaseTerminatingRegistered, 0))),
		ifcWith(40, tp(true, sdp("m", ptr("audio"), 0))),
	}
	var got []int
	after := math.MinInt
	for {
		f, ok := Evaluate(ifcs, req, after)
		if !ok {
			break
		}
		got = append(got, f.Priority)
		after = f.Priority
		if len(got) > 10 {
			t.Fatal("no progress")
		}
	}
	if fmt.Sprint(got) != "[10 20 40]" {
		t.Fatalf("order = %v, want [10 20 40]", got)
	}
	// Resume strictly after a priority.
	for _, tc := range []struct{ after, want int }{{-1, 10}, {9, 10}, {10, 20}, {19, 20}, {20, 40}, {39, 40}} {
		f, ok := Evaluate(ifcs, req, tc.after)
		if !ok || f.Priority != tc.want {
			t.Errorf("after %d: got %v %v, want %d", tc.after, f, ok, tc.want)
		}
	}
	if f, ok := Evaluate(ifcs, req, 40); ok {
		t.Errorf("after 40: got %d", f.Priority)
	}
	// The pointer aliases the slice.
	f, _ := Evaluate(ifcs, req, 10)
	if f != &ifcs[0] {
		t.Error("result does not alias the input slice")
	}
	// Sorted input gives the same order.
	sp := userdata.ServiceProfile{InitialFilterCriteria: ifcs}
	var sorted []userdata.InitialFilterCriteria
	for _, f := range sp.SortedIFCs() {
		sorted = append(sorted, *f)
	}
	got = got[:0]
	for f := range (&Evaluator{}).All(sorted, req, -1) {
		got = append(got, f.Priority)
	}
	if fmt.Sprint(got) != "[10 20 40]" {
		t.Fatalf("sorted order = %v", got)
	}
	if _, ok := Evaluate(nil, req, -1); ok {
		t.Error("empty list matched")
	}
}

func TestEvaluateEqualPriorities(t *testing.T) {
	ifcs := []userdata.InitialFilterCriteria{
		ifcWith(2, tp(false, method("BYE", 0))),
		ifcWith(1, nil),
		ifcWith(2, nil),
	}
	var got []string
	for f := range (&Evaluator{}).All(ifcs, invite(), -1) {
		got = append(got, fmt.Sprint(f.Priority, "@", f == &ifcs[2]))
	}
	if fmt.Sprint(got) != "[1@false 2@true]" {
		t.Fatalf("got %v", got)
	}
}

func TestRegistrationTypeEndToEnd(t *testing.T) {
	// Third-party registration iFC for initial and de-registration only.
	s := method("REGISTER", 0)
	s.RegistrationTypes = []userdata.RegistrationType{userdata.RegistrationInitial, userdata.RegistrationDeRegistration}
	ifcs := []userdata.InitialFilterCriteria{ifcWith(0, tp(false, s))}
	for rt, want := range map[userdata.RegistrationType]bool{
		userdata.RegistrationInitial:        true,
		userdata.RegistrationReRegistration: false,
		userdata.RegistrationDeRegistration: true,
	} {
		req := Request{Method: "REGISTER", RegistrationType: rt, Registered: true}
		if _, ok := Evaluate(ifcs, req, -1); ok != want {
			t.Errorf("%v: matched %v, want %v", rt, ok, want)
		}
	}
}

func TestInvalidRegexp(t *testing.T) {
	var mu sync.Mutex
	var errs []error
	e := NewEvaluator(func(err error) { mu.Lock(); errs = append(errs, err); mu.Unlock() })
	ifcs := []userdata.InitialFilterCriteria{
		ifcWith(1, tp(false, ruri(`sip:(`, 0))),
		ifcWith(2, tp(false, neg(header("Accept-Contact", ptr(`[mmtel`), 0)))),
		ifcWith(3, tp(true, sdp("m", ptr(`a**`), 0), method("INVITE", 1))),
		ifcWith(4, nil),
	}
	f, ok := e.Next(ifcs, invite(), -1)
	if !ok || f.Priority != 4 {
		t.Fatalf("got %v %v, want priority 4", f, ok)
	}
	if len(errs) != 3 {
		t.Fatalf("errors = %v, want 3", errs)
	}
	for i, err := range errs {
		var re *RegexpError
		if !errors.As(err, &re) || re.Priority != i+1 || re.Err == nil {
			t.Errorf("error %d = %#v", i, err)
		}
	}
	if !strings.Contains(errs[1].Error(), "SIPHeader/Content") {
		t.Errorf("error text %q", errs[1])
	}
	// Cached failure still reported.
	e.Next(ifcs, invite(), -1)
	if len(errs) != 6 {
		t.Fatalf("second run: %d errors", len(errs))
	}
	if _, err := e.Match(&ifcs[0], invite()); err == nil {
		t.Error("Match gave no error")
	}
	err := Check(ifcs)
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Fatalf("Check = %v", err)
	}
	if err := Check(ifcs[3:]); err != nil {
		t.Fatalf("Check valid = %v", err)
	}
}

func TestInvalidTrigger(t *testing.T) {
	cases := []userdata.InitialFilterCriteria{
		ifcWith(1, tp(false)),                                    // no SPT
		ifcWith(2, tp(true, method("INVITE"))),                   // no group
		ifcWith(3, tp(false, userdata.SPT{Groups: []uint32{0}})), // no condition
	}
	for _, f := range cases {
		ok, err := Match(&f, invite())
		if ok || !errors.Is(err, ErrInvalidTrigger) {
			t.Errorf("priority %d: Match = %v, %v", f.Priority, ok, err)
		}
		if err := Check([]userdata.InitialFilterCriteria{f}); !errors.Is(err, ErrInvalidTrigger) {
			t.Errorf("priority %d: Check = %v", f.Priority, err)
		}
	}
}

func TestManySPTs(t *testing.T) {
	// More SPTs than fit on the stack.
	var spts []userdata.SPT
	for i := range 40 {
		spts = append(spts, method("INVITE", uint32(i)))
	}
	f := ifcWith(1, tp(true, spts...))
	if ok, err := Match(&f, invite()); !ok || err != nil {
		t.Fatalf("Match = %v, %v", ok, err)
	}
	spts[39] = method("BYE", 39)
	if ok, _ := Match(&f, invite()); ok {
		t.Fatal("CNF with a false group matched")
	}
}

func TestConcurrentEvaluate(t *testing.T) {
	e := NewEvaluator(nil)
	ifcs := benchIFCs()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				if f, ok := e.Next(ifcs, invite(), -1); !ok || f.Priority != 90 {
					t.Errorf("got %v %v", f, ok)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestCacheBound(t *testing.T) {
	e := &Evaluator{}
	for i := range maxCache + 10 {
		if _, err := e.regexp(fmt.Sprintf("x%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.cache); n > maxCache {
		t.Fatalf("cache holds %d", n)
	}
}

func TestParseSDP(t *testing.T) {
	lines := ParseSDP([]byte("v=0\nm=audio 1 RTP/AVP 0\r\nbogus\n\nx\r\na=sendrecv"))
	want := "[{v 0} {m audio 1 RTP/AVP 0} {a sendrecv}]"
	if fmt.Sprint(lines) != want {
		t.Fatalf("got %v", lines)
	}
	if ParseSDP(nil) != nil {
		t.Fatal("nil body gave lines")
	}
}

func parseSIP(t testing.TB, raw string) *sip.Request {
	t.Helper()
	msg, err := sip.ParseMessage([]byte(strings.ReplaceAll(raw, "\n", "\r\n")))
	if err != nil {
		t.Fatal(err)
	}
	req, ok := msg.(*sip.Request)
	if !ok {
		t.Fatalf("not a request: %T", msg)
	}
	return req
}

func TestFromSIPInvite(t *testing.T) {
	body := strings.ReplaceAll(mmtelSDP, "\r\n", "\n")
	raw := "INVITE sip:bob@ims.example SIP/2.0\n" +
		"v: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\n" +
		"Max-Forwards: 70\n" +
		"t: <sip:bob@ims.example>\n" +
		"f: <sip:alice@ims.example>;tag=1928301774\n" +
		"i: a84b4c76e66710@192.0.2.1\n" +
		"CSeq: 314159 INVITE\n" +
		"m: <sip:alice@192.0.2.1:5060>\n" +
		"a: *;+g.3gpp.icsi-ref=\"urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel\"\n" +
		"P-Asserted-Identity: <sip:alice@ims.example>\n" +
		"c: application/sdp\n" +
		fmt.Sprintf("l: %d\n\n", len(strings.ReplaceAll(body, "\n", "\r\n"))) + body
	req := parseSIP(t, raw)
	r := FromSIP(req, userdata.SessionCaseOriginating)
	if r.Method != "INVITE" || r.RequestURI != "sip:bob@ims.example" || !r.Registered {
		t.Fatalf("got %+v", r)
	}
	if len(r.SDP) != 8 {
		t.Fatalf("SDP lines = %v", r.SDP)
	}
	for _, name := range []string{"Call-ID", "i", "call-id", "Accept-Contact", "a", "Contact", "Via", "Content-Type"} {
		if len(r.HeaderValues(name)) != 1 {
			t.Errorf("HeaderValues(%q) = %q", name, r.HeaderValues(name))
		}
	}
	ifcs := []userdata.InitialFilterCriteria{
		ifcWith(0, tp(false,
			method("INVITE", 0),
			header("Accept-Contact", ptr(`.*mmtel.*`), 0),
			sdp("m", ptr(`^audio`), 0),
			sescase(userdata.SessionCaseOriginating, 0),
			header("Call-ID", ptr(`@192\.0\.2\.1$`), 0),
		)),
	}
	if _, ok := Evaluate(ifcs, r, -1); !ok {
		t.Fatal("MMTel iFC did not match")
	}
	if r := FromSIP(req, userdata.SessionCaseTerminatingUnregistered); r.Registered {
		t.Error("terminating unregistered is registered")
	}
}

func TestFromSIPMultipart(t *testing.T) {
	sdpPart := "v=0\r\nm=audio 5004 RTP/AVP 0\r\n"
	body := "--b1\r\nContent-Type: application/sdp\r\n\r\n" + sdpPart +
		"\r\n--b1\r\nContent-Type: application/vnd.etsi.mcptt-info+xml\r\n\r\n<x/>\r\n--b1--\r\n"
	req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "bob", Host: "ims.example"})
	req.AppendHeader(sip.NewHeader("Content-Type", `multipart/mixed;boundary=b1`))
	req.SetBody([]byte(body))
	r := FromSIP(req, userdata.SessionCaseTerminatingRegistered)
	if fmt.Sprint(r.SDP) != "[{v 0} {m audio 5004 RTP/AVP 0}]" {
		t.Fatalf("SDP = %v", r.SDP)
	}
	if FromSIP(nil, 0).Method != "" {
		t.Fatal("nil request")
	}
}

func TestFromSIPRegister(t *testing.T) {
	base := "REGISTER sip:ims.example SIP/2.0\n" +
		"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnashds7\n" +
		"To: <sip:alice@ims.example>\n" +
		"From: <sip:alice@ims.example>;tag=456248\n" +
		"Call-ID: 843817637684230@998sdasdh09\n" +
		"CSeq: 1826 REGISTER\n"
	tests := []struct {
		name, extra string
		want        userdata.RegistrationType
	}{
		{"expires header 600", "Contact: <sip:alice@192.0.2.1>\nExpires: 600\n", userdata.RegistrationInitial},
		{"expires header 0", "Contact: <sip:alice@192.0.2.1>\nExpires: 0\n", userdata.RegistrationDeRegistration},
		{"contact expires 0", "Contact: <sip:alice@192.0.2.1>;expires=0\nExpires: 600\n", userdata.RegistrationDeRegistration},
		{"contact expires 3600", "Contact: <sip:alice@192.0.2.1>;expires=3600\nExpires: 0\n", userdata.RegistrationInitial},
		{"no contact", "Expires: 0\n", userdata.RegistrationInitial},
		{"contact star", "Contact: *\nExpires: 0\n", userdata.RegistrationDeRegistration},
		{"two contacts one remains", "Contact: <sip:a@192.0.2.1>;expires=0, <sip:b@192.0.2.1>\nExpires: 60\n", userdata.RegistrationInitial},
		{"two contacts both 0", "Contact: <sip:a@192.0.2.1>;expires=0\nContact: <sip:b@192.0.2.1>;expires=0\n", userdata.RegistrationDeRegistration},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := parseSIP(t, base+tc.extra+"Content-Length: 0\n\n")
			r := FromSIP(req, userdata.SessionCaseOriginating)
			if r.Method != "REGISTER" || r.RegistrationType != tc.want {
				t.Fatalf("got %s %v, want %v", r.Method, r.RegistrationType, tc.want)
			}
		})
	}
}

func FuzzRegexpContent(f *testing.F) {
	for _, s := range []string{`.*mmtel.*`, `^sip:`, `(`, `[a-`, `a{1000}{1000}`, `\p{Greek}`, "", `(?i)AUDIO`, `\`} {
		f.Add(s, "m", "audio 49152 RTP/AVP 0")
	}
	e := NewEvaluator(nil)
	f.Fuzz(func(t *testing.T, pattern, line, value string) {
		req := Request{
			Method:     "INVITE",
			RequestURI: value,
			Headers:    []Header{{Name: line, Value: value}},
			SDP:        ParseSDP([]byte(line + "=" + value)),
			Registered: true,
		}
		ifcs := []userdata.InitialFilterCriteria{
			ifcWith(1, tp(false, ruri(pattern, 0))),
			ifcWith(2, tp(true, header(line, ptr(pattern), 0), neg(sdp(line, ptr(pattern), 1)))),
			ifcWith(3, tp(false, sdp(line, ptr(pattern), 0, 1))),
		}
		checkErr := e.Check(ifcs)
		var gotErr error
		for f := range e.All(ifcs, req, math.MinInt) {
			_ = f
		}
		for i := range ifcs {
			ok, err := e.Match(&ifcs[i], req)
			if err != nil {
				gotErr = err
				if ok {
					t.Fatal("matched with an error")
				}
			}
		}
		if (checkErr == nil) != (gotErr == nil) {
			t.Fatalf("Check %v but Match %v", checkErr, gotErr)
		}
	})
}

func benchIFCs() []userdata.InitialFilterCriteria {
	var ifcs []userdata.InitialFilterCriteria
	for i := range 9 {
		ifcs = append(ifcs, ifcWith(i*10, tp(i%2 == 0,
			method("MESSAGE", 0),
			header("Accept-Contact", ptr(fmt.Sprintf(`.*icsi-%d.*`, i)), 0, 1),
			sdp("m", ptr(`^video`), 1),
			sescase(userdata.SessionCaseTerminatingRegistered, 2),
		)))
	}
	ifcs = append(ifcs, ifcWith(90, tp(false,
		method("INVITE", 0),
		header("Accept-Contact", ptr(`.*mmtel.*`), 0),
		sdp("m", ptr(`^audio`), 0),
		neg(header("Privacy", nil, 0)),
	)))
	return ifcs
}

func BenchmarkEvaluate(b *testing.B) {
	ifcs := benchIFCs()
	req := invite()
	e := NewEvaluator(nil)
	b.ReportAllocs()
	for b.Loop() {
		if f, ok := e.Next(ifcs, req, -1); !ok || f.Priority != 90 {
			b.Fatal("no match")
		}
	}
}
