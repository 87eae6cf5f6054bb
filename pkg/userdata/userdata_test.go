package userdata

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

func readAlice(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/alice.xml")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func ptr[T any](v T) *T { return &v }

func TestParseAlice(t *testing.T) {
	sub, err := Parse(readAlice(t))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if sub.PrivateID != "alice@ims.mnc001.mcc001.3gppnetwork.org" {
		t.Errorf("PrivateID = %q", sub.PrivateID)
	}
	if len(sub.ServiceProfiles) != 1 {
		t.Fatalf("%d service profiles, want 1", len(sub.ServiceProfiles))
	}
	sp := &sub.ServiceProfiles[0]
	want := []PublicIdentity{
		{BarringIndication: true, Identity: "sip:001010000000001@ims.mnc001.mcc001.3gppnetwork.org"},
		{Identity: "sip:alice@ims.mnc001.mcc001.3gppnetwork.org", DisplayName: "Alice Example", AliasIdentityGroupID: "alias-1"},
		{Identity: "tel:+15550100001", AliasIdentityGroupID: "alias-1"},
	}
	if !reflect.DeepEqual(sp.PublicIdentities, want) {
		t.Errorf("PublicIdentities =\n%+v\nwant\n%+v", sp.PublicIdentities, want)
	}
	if c := sp.CoreNetworkServicesAuthorization; c == nil || c.SubscribedMediaProfileID == nil || *c.SubscribedMediaProfileID != 7 {
		t.Errorf("CoreNetworkServicesAuthorization = %+v", c)
	}
	if !reflect.DeepEqual(sp.SharedIFCSetIDs, []uint32{3}) {
		t.Errorf("SharedIFCSetIDs = %v", sp.SharedIFCSetIDs)
	}
	if len(sp.InitialFilterCriteria) != 2 {
		t.Fatalf("%d iFCs, want 2", len(sp.InitialFilterCriteria))
	}

	invite := sp.InitialFilterCriteria[0]
	wantInvite := InitialFilterCriteria{
		Priority: 20,
		TriggerPoint: &TriggerPoint{ConditionTypeCNF: true, SPTs: []SPT{
			{Groups: []uint32{0}, Method: ptr("INVITE")},
			{Groups: []uint32{1}, SessionCase: ptr(SessionCaseOriginating)},
		}},
		ApplicationServer: ApplicationServer{
			ServerName:      "sip:mmtel.ims.mnc001.mcc001.3gppnetwork.org:5065;transport=tcp",
			DefaultHandling: ptr(SessionContinued),
		},
		ProfilePartIndicator: ptr(ProfilePartRegistered),
	}
	if !reflect.DeepEqual(invite, wantInvite) {
		t.Errorf("INVITE iFC =\n%+v\nwant\n%+v", invite, wantInvite)
	}

	reg := sp.InitialFilterCriteria[1]
	wantReg := InitialFilterCriteria{
		Priority: 10,
		TriggerPoint: &TriggerPoint{ConditionTypeCNF: false, SPTs: []SPT{
			{Groups: []uint32{0}, Method: ptr("REGISTER"), RegistrationTypes: []RegistrationType{RegistrationInitial}},
			{ConditionNegated: true, Groups: []uint32{0}, SIPHeader: &SIPHeader{Header: "User-Agent", Content: ptr("^sipp/.*")}},
		}},
		ApplicationServer: ApplicationServer{
			ServerName:              "sip:reg-as.ims.mnc001.mcc001.3gppnetwork.org",
			DefaultHandling:         ptr(SessionTerminated),
			ServiceInfo:             "tenant=lab",
			IncludeRegisterRequest:  true,
			IncludeRegisterResponse: true,
		},
	}
	if !reflect.DeepEqual(reg, wantReg) {
		t.Errorf("REGISTER iFC =\n%+v\nwant\n%+v", reg, wantReg)
	}
	if h := reg.ApplicationServer.Handling(); h != SessionTerminated {
		t.Errorf("Handling() = %v", h)
	}
}

func TestRoundTrip(t *testing.T) {
	sub, err := Parse(readAlice(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Marshal(sub)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if !bytes.HasPrefix(out, []byte(`<?xml version="1.0" encoding="UTF-8"?>`+"\n<IMSSubscription ")) {
		t.Errorf("output starts %q", out[:min(len(out), 80)])
	}
	for _, s := range []string{
		`<BarringIndication>1</BarringIndication>`,
		`<ConditionTypeCNF>1</ConditionTypeCNF>`,
		`<ConditionNegated>1</ConditionNegated>`,
		`<Extension><IdentityType>0</IdentityType>`, // not written: IdentityType 0 is the default
		`<Extension><Extension><DisplayName>Alice Example</DisplayName><AliasIdentityGroupID>alias-1</AliasIdentityGroupID></Extension></Extension>`,
		`<Extension><IncludeRegisterRequest></IncludeRegisterRequest><IncludeRegisterResponse></IncludeRegisterResponse></Extension>`,
		`<Extension><SharedIFCSetID>3</SharedIFCSetID></Extension></ServiceProfile>`,
		`<Method>REGISTER</Method><Extension><RegistrationType>0</RegistrationType></Extension></SPT>`,
		`xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"`,
	} {
		present := bytes.Contains(out, []byte(s))
		if wantPresent := !strings.Contains(s, "IdentityType"); present != wantPresent {
			t.Errorf("output contains %s: %v, want %v\n%s", s, present, wantPresent, out)
		}
	}
	if bytes.Contains(out, []byte("true")) || bytes.Contains(out, []byte("false")) {
		t.Errorf("booleans not written as 0/1:\n%s", out)
	}
	again, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Marshal): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(sub, again) {
		t.Errorf("round trip differs:\n%+v\n%+v", sub, again)
	}
}

// A subscription built in Go (as the HSS does) survives Marshal then Parse.
func TestRoundTripBuilt(t *testing.T) {
	built := &IMSSubscription{
		PrivateID: "bob@ims.example.org",
		ServiceProfiles: []ServiceProfile{
			{
				PublicIdentities: []PublicIdentity{{Identity: "sip:bob@ims.example.org", DisplayName: "Bob <B&B>"}},
				InitialFilterCriteria: []InitialFilterCriteria{{
					Priority: 0,
					TriggerPoint: &TriggerPoint{SPTs: []SPT{
						{Groups: []uint32{0, 1}, RequestURI: ptr("sip:voicemail@ims.example.org")},
						{Groups: []uint32{0}, SessionDescription: &SessionDescription{Line: "m", Content: ptr("audio.*")}},
						{Groups: []uint32{1}, SessionCase: ptr(SessionCaseOriginatingCDIV)},
					}},
					ApplicationServer: ApplicationServer{ServerName: "sips:vm.ims.example.org"},
				}},
			},
			{
				PublicIdentities: []PublicIdentity{
					{Identity: "sip:conf-1@ims.example.org", IdentityType: IdentityWildcardedPSI, WildcardedPSI: "sip:conf-!.*!@ims.example.org"},
					{Identity: "sip:dev!.*!@ims.example.org", IdentityType: IdentityWildcardedIMPU, WildcardedIMPU: "sip:dev!.*!@ims.example.org"},
					{Identity: "sip:psi@ims.example.org", IdentityType: IdentityDistinctPSI},
				},
				CoreNetworkServicesAuthorization: &CoreNetworkServicesAuthorization{},
				SharedIFCSetIDs:                  []uint32{1, 2},
			},
		},
	}
	out, err := Marshal(built)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(got, built) {
		t.Errorf("round trip differs:\ngot  %+v\nwant %+v\n%s", got, built, out)
	}
}

func TestParseTrueFalse(t *testing.T) {
	doc := `<IMSSubscription><PrivateID>carol@example.org</PrivateID><ServiceProfile>
<PublicIdentity><BarringIndication>true</BarringIndication><Identity>sip:carol-barred@example.org</Identity></PublicIdentity>
<PublicIdentity><BarringIndication>false</BarringIndication><Identity>sip:carol@example.org</Identity></PublicIdentity>
<InitialFilterCriteria><Priority>1</Priority><TriggerPoint><ConditionTypeCNF>true</ConditionTypeCNF>
<SPT><ConditionNegated>true</ConditionNegated><Group>0</Group><Method>MESSAGE</Method></SPT></TriggerPoint>
<ApplicationServer><ServerName>sip:as.example.org</ServerName></ApplicationServer></InitialFilterCriteria>
</ServiceProfile></IMSSubscription>`
	sub, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	pis := sub.PublicIdentities()
	if len(pis) != 2 || !pis[0].BarringIndication || pis[1].BarringIndication {
		t.Errorf("barring not read from true/false: %+v", pis)
	}
	tp := sub.ServiceProfiles[0].InitialFilterCriteria[0].TriggerPoint
	if !tp.ConditionTypeCNF || !tp.SPTs[0].ConditionNegated {
		t.Errorf("TriggerPoint = %+v", tp)
	}
	if h := sub.ServiceProfiles[0].InitialFilterCriteria[0].ApplicationServer.Handling(); h != SessionContinued {
		t.Errorf("absent DefaultHandling gives %v", h)
	}
}

// Other HSSes place DisplayName and WildcardedIMPU one Extension level away
// from where Marshal writes them; Parse reads both.
func TestParseExtensionLevels(t *testing.T) {
	doc := `<IMSSubscription><PrivateID>dave@example.org</PrivateID><ServiceProfile>
<PublicIdentity><Identity>sip:dave@example.org</Identity><Extension><IdentityType>0</IdentityType>
  <Extension><DisplayName>Dave</DisplayName></Extension></Extension></PublicIdentity>
<PublicIdentity><Identity>sip:!.*!.dev@example.org</Identity><Extension><IdentityType>3</IdentityType>
  <Extension><WildcardedIMPU>sip:!.*!.dev@example.org</WildcardedIMPU></Extension></Extension></PublicIdentity>
</ServiceProfile></IMSSubscription>`
	sub, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	pis := sub.PublicIdentities()
	if pis[0].DisplayName != "Dave" {
		t.Errorf("DisplayName = %q", pis[0].DisplayName)
	}
	if pis[1].IdentityType != IdentityWildcardedIMPU || pis[1].WildcardedIMPU != "sip:!.*!.dev@example.org" {
		t.Errorf("wildcarded IMPU = %+v", pis[1])
	}
}

func TestParseLatin1(t *testing.T) {
	doc := []byte("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><IMSSubscription><PrivateID>eve@example.org</PrivateID><ServiceProfile><PublicIdentity><Identity>sip:eve@example.org</Identity><Extension><DisplayName>Ev\xe9</DisplayName></Extension></PublicIdentity></ServiceProfile></IMSSubscription>")
	sub, err := Parse(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got := sub.ServiceProfiles[0].PublicIdentities[0].DisplayName; got != "Evé" {
		t.Errorf("DisplayName = %q", got)
	}
}

const (
	okHead = `<IMSSubscription><PrivateID>x@example.org</PrivateID><ServiceProfile><PublicIdentity><Identity>sip:x@example.org</Identity></PublicIdentity>`
	okTail = `</ServiceProfile></IMSSubscription>`
)

func ifcWith(spt string) string {
	return okHead + `<InitialFilterCriteria><Priority>0</Priority><TriggerPoint><ConditionTypeCNF>0</ConditionTypeCNF>` +
		spt + `</TriggerPoint><ApplicationServer><ServerName>sip:as.example.org</ServerName></ApplicationServer></InitialFilterCriteria>` + okTail
}

func TestParseBad(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		syntax bool   // want ErrSyntax rather than *ValidationError
		path   string // substring of ValidationError.Path
		msg    string // substring of the error text
	}{
		{name: "wrong root", doc: `<Sh-Data><PublicIdentifiers/></Sh-Data>`, path: "IMSSubscription", msg: "root element is <Sh-Data>"},
		{name: "missing PrivateID", doc: `<IMSSubscription><ServiceProfile><PublicIdentity><Identity>sip:x@example.org</Identity></PublicIdentity></ServiceProfile></IMSSubscription>`, path: "IMSSubscription/PrivateID", msg: "missing"},
		{name: "no ServiceProfile", doc: `<IMSSubscription><PrivateID>x@example.org</PrivateID></IMSSubscription>`, path: "IMSSubscription/ServiceProfile", msg: "at least one ServiceProfile"},
		{name: "no PublicIdentity", doc: `<IMSSubscription><PrivateID>x@example.org</PrivateID><ServiceProfile></ServiceProfile></IMSSubscription>`, path: "ServiceProfile[1]/PublicIdentity", msg: "at least one PublicIdentity"},
		{name: "identity not a SIP or tel URI", doc: `<IMSSubscription><PrivateID>x@example.org</PrivateID><ServiceProfile><PublicIdentity><Identity>mailto:x@example.org</Identity></PublicIdentity></ServiceProfile></IMSSubscription>`, path: "PublicIdentity[1]/Identity", msg: "not a sip:, sips: or tel: URI"},
		{name: "duplicate identity", doc: okHead + `<PublicIdentity><Identity>sip:x@EXAMPLE.org</Identity></PublicIdentity>` + okTail, path: "PublicIdentity[2]/Identity", msg: "already appears"},
		{name: "bad IdentityType", doc: `<IMSSubscription><PrivateID>x@example.org</PrivateID><ServiceProfile><PublicIdentity><Identity>sip:x@example.org</Identity><Extension><IdentityType>9</IdentityType></Extension></PublicIdentity></ServiceProfile></IMSSubscription>`, path: "Extension/IdentityType", msg: "out of range 0..3"},
		{name: "unterminated wildcard", doc: `<IMSSubscription><PrivateID>x@example.org</PrivateID><ServiceProfile><PublicIdentity><Identity>sip:a!.*@example.org</Identity><Extension><IdentityType>3</IdentityType></Extension></PublicIdentity></ServiceProfile></IMSSubscription>`, path: "PublicIdentity[1]/Identity", msg: "no closing '!'"},
		{name: "SPT with two conditions", doc: ifcWith(`<SPT><Group>0</Group><Method>INVITE</Method><SessionCase>0</SessionCase></SPT>`), path: "SPT", msg: "2 condition elements (Method, SessionCase)"},
		{name: "SPT with two Methods", doc: ifcWith(`<SPT><Group>0</Group><Method>INVITE</Method><Method>BYE</Method></SPT>`), path: "SPT", msg: "2 condition elements"},
		{name: "SPT without condition", doc: ifcWith(`<SPT><Group>0</Group></SPT>`), path: "TriggerPoint/SPT[1]", msg: "no condition element"},
		{name: "SPT without Group", doc: ifcWith(`<SPT><Method>INVITE</Method></SPT>`), path: "SPT[1]/Group", msg: "at least one Group"},
		{name: "TriggerPoint without SPT", doc: ifcWith(``), path: "TriggerPoint/SPT", msg: "at least one SPT"},
		{name: "bad SessionCase", doc: ifcWith(`<SPT><Group>0</Group><SessionCase>5</SessionCase></SPT>`), path: "SPT[1]/SessionCase", msg: "out of range 0..4"},
		{name: "non-numeric SessionCase", doc: ifcWith(`<SPT><Group>0</Group><SessionCase>ORIGINATING</SessionCase></SPT>`), syntax: true, msg: "SessionCase"},
		{name: "bad RegistrationType", doc: ifcWith(`<SPT><Group>0</Group><Method>REGISTER</Method><Extension><RegistrationType>3</RegistrationType></Extension></SPT>`), path: "Extension/RegistrationType[1]", msg: "out of range 0..2"},
		{name: "bad header regexp", doc: ifcWith(`<SPT><Group>0</Group><SIPHeader><Header>From</Header><Content>(</Content></SIPHeader></SPT>`), path: "SIPHeader/Content", msg: "regular expression"},
		{name: "bad boolean", doc: ifcWith(`<SPT><ConditionNegated>yes</ConditionNegated><Group>0</Group><Method>INVITE</Method></SPT>`), syntax: true, msg: "not 0, 1, true or false"},
		{name: "bad DefaultHandling", doc: okHead + `<InitialFilterCriteria><Priority>0</Priority><ApplicationServer><ServerName>sip:as.example.org</ServerName><DefaultHandling>2</DefaultHandling></ApplicationServer></InitialFilterCriteria>` + okTail, path: "ApplicationServer/DefaultHandling", msg: "out of range 0..1"},
		{name: "missing ServerName", doc: okHead + `<InitialFilterCriteria><Priority>0</Priority></InitialFilterCriteria>` + okTail, path: "InitialFilterCriteria[1]/ApplicationServer/ServerName", msg: "missing"},
		{name: "duplicate Priority", doc: okHead +
			`<InitialFilterCriteria><Priority>5</Priority><ApplicationServer><ServerName>sip:a.example.org</ServerName></ApplicationServer></InitialFilterCriteria>` +
			`<InitialFilterCriteria><Priority>5</Priority><ApplicationServer><ServerName>sip:b.example.org</ServerName></ApplicationServer></InitialFilterCriteria>` + okTail,
			path: "InitialFilterCriteria[2]/Priority", msg: "also used by InitialFilterCriteria[1]"},
		{name: "malformed XML", doc: `<IMSSubscription><PrivateID>x</IMSSubscription>`, syntax: true, msg: "malformed"},
		{name: "empty input", doc: ``, syntax: true, msg: "no root element"},
		{name: "second root", doc: okHead + okTail + `<IMSSubscription/>`, syntax: true, msg: "second root"},
		{name: "unknown encoding", doc: `<?xml version="1.0" encoding="EBCDIC"?><IMSSubscription/>`, syntax: true, msg: "EBCDIC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", sub)
			}
			if sub != nil {
				t.Errorf("non-nil subscription with error")
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not contain %q", err, tt.msg)
			}
			var ve *ValidationError
			if tt.syntax {
				if !errors.Is(err, ErrSyntax) {
					t.Errorf("error %q does not wrap ErrSyntax", err)
				}
				return
			}
			if !errors.As(err, &ve) {
				t.Fatalf("error %q (%T) is not a *ValidationError", err, err)
			}
			if !strings.Contains(ve.Path, tt.path) {
				t.Errorf("Path %q does not contain %q", ve.Path, tt.path)
			}
		})
	}
}

func TestMarshalRejectsInvalid(t *testing.T) {
	if _, err := Marshal(nil); err == nil {
		t.Error("Marshal(nil) succeeded")
	}
	bad := &IMSSubscription{PrivateID: "x@example.org", ServiceProfiles: []ServiceProfile{{
		PublicIdentities:      []PublicIdentity{{Identity: "sip:x@example.org"}},
		InitialFilterCriteria: []InitialFilterCriteria{{ApplicationServer: ApplicationServer{ServerName: "sip:as.example.org", DefaultHandling: ptr(DefaultHandling(7))}}},
	}}}
	_, err := Marshal(bad)
	var ve *ValidationError
	if !errors.As(err, &ve) || !strings.HasSuffix(ve.Path, "DefaultHandling") {
		t.Errorf("Marshal(bad) error = %v", err)
	}
}

func TestHelpers(t *testing.T) {
	doc := `<IMSSubscription><PrivateID>f@example.org</PrivateID>
<ServiceProfile>
 <PublicIdentity><BarringIndication>1</BarringIndication><Identity>sip:f-barred@example.org</Identity></PublicIdentity>
 <PublicIdentity><Identity>sip:f@example.org</Identity></PublicIdentity>
 <PublicIdentity><Identity>tel:+15550100002</Identity></PublicIdentity>
 <InitialFilterCriteria><Priority>30</Priority><ApplicationServer><ServerName>sip:c.example.org</ServerName></ApplicationServer></InitialFilterCriteria>
 <InitialFilterCriteria><Priority>-1</Priority><ApplicationServer><ServerName>sip:a.example.org</ServerName></ApplicationServer></InitialFilterCriteria>
 <InitialFilterCriteria><Priority>2</Priority><ApplicationServer><ServerName>sip:b.example.org</ServerName></ApplicationServer></InitialFilterCriteria>
</ServiceProfile>
<ServiceProfile>
 <PublicIdentity><Identity>sip:chat-1@example.org</Identity><Extension><IdentityType>2</IdentityType><WildcardedPSI>sip:chat-!.*!@example.org</WildcardedPSI></Extension></PublicIdentity>
</ServiceProfile></IMSSubscription>`
	sub, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, pi := range sub.PublicIdentities() {
		ids = append(ids, pi.Identity)
	}
	if want := []string{"sip:f-barred@example.org", "sip:f@example.org", "tel:+15550100002", "sip:chat-1@example.org"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("PublicIdentities = %v", ids)
	}
	ids = ids[:0]
	for _, pi := range sub.NonBarred() {
		ids = append(ids, pi.Identity)
	}
	if want := []string{"sip:f@example.org", "tel:+15550100002", "sip:chat-1@example.org"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("NonBarred = %v", ids)
	}

	first, second := &sub.ServiceProfiles[0], &sub.ServiceProfiles[1]
	for _, tt := range []struct {
		impu    string
		profile *ServiceProfile
		id      string
	}{
		{"sip:f@example.org", first, "sip:f@example.org"},
		{"<sip:f@EXAMPLE.ORG>", first, "sip:f@example.org"},
		{"SIP:f-barred@example.org", first, "sip:f-barred@example.org"},
		{"tel:+1-555-010-0002", first, "tel:+15550100002"},
		{"sip:chat-1@example.org", second, "sip:chat-1@example.org"},
		{"sip:chat-42@example.org", second, "sip:chat-1@example.org"},
		{"sip:F@example.org", nil, ""},           // user part is case-sensitive
		{"sip:chat-1@example.org.evil", nil, ""}, // wildcard is anchored
		{"sip:xchat-1@example.org", nil, ""},     // at both ends
		{"", nil, ""},
	} {
		sp, pi := sub.ProfileFor(tt.impu)
		if sp != tt.profile {
			t.Errorf("ProfileFor(%q) profile = %p, want %p", tt.impu, sp, tt.profile)
		}
		if got := ""; pi != nil {
			got = pi.Identity
			if got != tt.id {
				t.Errorf("ProfileFor(%q) identity = %q, want %q", tt.impu, got, tt.id)
			}
		} else if tt.id != "" {
			t.Errorf("ProfileFor(%q) = nil, want %q", tt.impu, tt.id)
		}
	}

	var prios []int
	var servers []string
	for _, f := range first.SortedIFCs() {
		prios = append(prios, f.Priority)
		servers = append(servers, f.ApplicationServer.ServerName)
	}
	if !reflect.DeepEqual(prios, []int{-1, 2, 30}) || servers[0] != "sip:a.example.org" {
		t.Errorf("SortedIFCs priorities %v servers %v", prios, servers)
	}
	if first.InitialFilterCriteria[0].Priority != 30 {
		t.Error("SortedIFCs reordered the profile itself")
	}
	if got := second.SortedIFCs(); len(got) != 0 {
		t.Errorf("SortedIFCs of a profile without iFCs = %v", got)
	}
	var nilSub *IMSSubscription
	if sp, pi := nilSub.ProfileFor("sip:f@example.org"); sp != nil || pi != nil || nilSub.NonBarred() != nil {
		t.Error("nil subscription helpers returned data")
	}
}

func FuzzParse(f *testing.F) {
	f.Add(readAlice(f))
	f.Add([]byte(ifcWith(`<SPT><Group>0</Group><SessionCase>4</SessionCase></SPT>`)))
	f.Add([]byte(ifcWith(`<SPT><ConditionNegated>true</ConditionNegated><Group>1</Group><SIPHeader><Header>Event</Header><Content>reg</Content></SIPHeader></SPT>`)))
	f.Add([]byte(okHead + `<PublicIdentity><Identity>sip:a!.*!@example.org</Identity><Extension><IdentityType>3</IdentityType><Extension><Extension><WildcardedIMPU>sip:a!.*!@example.org</WildcardedIMPU></Extension></Extension></Extension></PublicIdentity>` + okTail))
	f.Add([]byte(`<Sh-Data/>`))
	f.Add([]byte(`<?xml version="1.0" encoding="ISO-8859-1"?><IMSSubscription/>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		sub, err := Parse(data)
		if err != nil {
			if sub != nil {
				t.Fatal("non-nil result with error")
			}
			return
		}
		out, err := Marshal(sub)
		if err != nil {
			t.Fatalf("Marshal of a parsed document failed: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Marshal) failed: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(sub, again) {
			t.Fatalf("round trip differs:\n%+v\n%+v\n%s", sub, again, out)
		}
		for _, pi := range sub.PublicIdentities() {
			sub.ProfileFor(pi.Identity)
		}
		for i := range sub.ServiceProfiles {
			sub.ServiceProfiles[i].SortedIFCs()
		}
	})
}
