package diamtest

import (
	"encoding/xml"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	avpflag "github.com/fiorix/go-diameter/v4/diam/avp"
	"github.com/fiorix/go-diameter/v4/diam/dict"

	"github.com/imscore/imscore/pkg/diameter"
)

// dictFiles are the embedded dictionaries (pkg/diameter/dict/*.xml).
var dictFiles = []struct {
	name string
	app  diameter.App
}{{"base.xml", 0}, {"cx.xml", diameter.AppCx}, {"sh.xml", diameter.AppSh}, {"rx.xml", diameter.AppRx}}

func flagSet(list string) map[string]bool {
	out := map[string]bool{}
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f != "" && f != "-" {
			out[f] = true
		}
	}
	return out
}

// compareDictionary returns one complaint per disagreement between a
// dictionary XML (go-diameter's format) and the specification table: an
// AVP the table lacks, another name, vendor or data type, or a V/M rule the
// XML contradicts (a bit the table says must be set that the XML does not
// set, or one it must not set that the XML sets).
func compareDictionary(file string, b []byte) []string {
	var f dict.File
	if err := xml.Unmarshal(b, &f); err != nil {
		return []string{fmt.Sprintf("%s: %v", file, err)}
	}
	s := TheSpec()
	var out []string
	for _, app := range f.App {
		for _, a := range app.AVP {
			id := diameter.AVPOf(a.Code, a.VendorID)
			where := fmt.Sprintf("%s: %s (code %d, vendor-id %d)", file, a.Name, a.Code, a.VendorID)
			d, ok := s.AVPs[id]
			if !ok {
				var others []string
				for _, o := range s.AVPByCode(a.Code) {
					others = append(others, o.String())
				}
				if len(others) > 0 {
					out = append(out, fmt.Sprintf("%s: wrong vendor, the specification has %s", where, strings.Join(others, ", ")))
				} else {
					out = append(out, fmt.Sprintf("%s: not in the specification table (add it to diamtest.AVPs from its specification)", where))
				}
				continue
			}
			if a.Name != d.Name {
				out = append(out, fmt.Sprintf("%s: named %q in the specification (%s)", where, d.Name, d.Ref))
			}
			if DataType(a.Data.TypeName) != d.Type {
				out = append(out, fmt.Sprintf("%s: type %s, the specification says %s (%s)", where, a.Data.TypeName, d.Type, d.Ref))
			}
			must, mustNot := flagSet(a.Must), flagSet(a.MustNot)
			for _, bit := range []struct {
				name string
				rule FlagRule
			}{{"V", d.V}, {"M", d.M}} {
				switch {
				case bit.rule == Must && !must[bit.name]:
					out = append(out, fmt.Sprintf("%s: %s bit not in must=%q, the specification says it must be set (%s)", where, bit.name, a.Must, d.Ref))
				case bit.rule == MustNot && must[bit.name]:
					out = append(out, fmt.Sprintf("%s: %s bit in must=%q, the specification says it must not be set (%s)", where, bit.name, a.Must, d.Ref))
				case bit.rule == Must && mustNot[bit.name]:
					out = append(out, fmt.Sprintf("%s: %s bit in must-not=%q, the specification says it must be set (%s)", where, bit.name, a.MustNot, d.Ref))
				}
			}
			if (a.VendorID != 0) != must["V"] {
				out = append(out, fmt.Sprintf("%s: vendor-id %d with must=%q (V must be set exactly when there is a Vendor-Id)", where, a.VendorID, a.Must))
			}
			if must["P"] {
				out = append(out, fmt.Sprintf("%s: P bit in must=%q (RFC 6733 §4.1: reserved)", where, a.Must))
			}
		}
	}
	return out
}

// TestDictionariesAgreeWithSpec checks every AVP of the embedded XML
// dictionaries against the specification table: a wrong entry there
// (vendor, flag, type, name) fails here.
func TestDictionariesAgreeWithSpec(t *testing.T) {
	n := 0
	for _, f := range dictFiles {
		b, err := diameter.DictionaryXML(f.app)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range compareDictionary(f.name, b) {
			t.Error(c)
		}
		n++
	}
	if n != 4 {
		t.Fatalf("%d dictionaries", n)
	}
}

// TestDictionaryComparisonCatchesWrongEntries shows the comparison fails
// for each kind of wrong XML entry.
func TestDictionaryComparisonCatchesWrongEntries(t *testing.T) {
	b, err := diameter.DictionaryXML(diameter.AppCx)
	if err != nil {
		t.Fatal(err)
	}
	orig := string(b)
	pub := `<avp name="Public-Identity" code="601" must="M,V" may="-" must-not="-" may-encrypt="N" vendor-id="10415">`
	if !strings.Contains(orig, pub) {
		t.Fatalf("cx.xml no longer has %s", pub)
	}
	for _, c := range []struct{ name, repl, want string }{
		{"M dropped", `<avp name="Public-Identity" code="601" must="V" may="M" must-not="-" may-encrypt="N" vendor-id="10415">`, "M bit not in must"},
		{"M forbidden", `<avp name="Public-Identity" code="601" must="V" may="-" must-not="M" may-encrypt="N" vendor-id="10415">`, "M bit not in must"},
		{"vendor 0", `<avp name="Public-Identity" code="601" must="M" may="-" must-not="V" may-encrypt="N">`, "wrong vendor"},
		{"vendor ETSI", `<avp name="Public-Identity" code="601" must="M,V" may="-" must-not="-" may-encrypt="N" vendor-id="13019">`, "wrong vendor"},
		{"V without a vendor-id", `<avp name="Public-Identity" code="601" must="M,V" may="-" must-not="-" may-encrypt="N">`, "wrong vendor"},
		{"no V with a vendor-id", `<avp name="Public-Identity" code="601" must="M" may="-" must-not="-" may-encrypt="N" vendor-id="10415">`, "V bit not in must"},
		{"renamed", `<avp name="Public-Identiti" code="601" must="M,V" may="-" must-not="-" may-encrypt="N" vendor-id="10415">`, "named \"Public-Identity\""},
	} {
		got := compareDictionary("cx.xml", []byte(strings.Replace(orig, pub, c.repl, 1)))
		if !strings.Contains(strings.Join(got, "\n"), c.want) {
			t.Errorf("%s: want a complaint containing %q, got %v", c.name, c.want, got)
		}
	}
	uarFlags := `<avp name="UAR-Flags" code="637" must="V" may="-" must-not="M" may-encrypt="N" vendor-id="10415">`
	got := compareDictionary("cx.xml", []byte(strings.Replace(orig, uarFlags, `<avp name="UAR-Flags" code="637" must="M,V" may="-" must-not="-" may-encrypt="N" vendor-id="10415">`, 1)))
	if !strings.Contains(strings.Join(got, "\n"), "UAR-Flags (code 637, vendor-id 10415): M bit in must") {
		t.Errorf("UAR-Flags with M: %v", got)
	}
	typ := `<avp name="SIP-Number-Auth-Items" code="607" must="M,V" may="-" must-not="-" may-encrypt="N" vendor-id="10415">
      <data type="Unsigned32"/>`
	got = compareDictionary("cx.xml", []byte(strings.Replace(orig, typ, strings.Replace(typ, "Unsigned32", "Unsigned64", 1), 1)))
	if !strings.Contains(strings.Join(got, "\n"), "type Unsigned64, the specification says Unsigned32") {
		t.Errorf("type change: %v", got)
	}
}

// TestBuiltAVPFlagsAgreeWithSpec checks the flags pkg/diameter puts on
// every AVP it can build (AVPCode.Flags, from the dictionaries) against
// the table.
func TestBuiltAVPFlagsAgreeWithSpec(t *testing.T) {
	s := TheSpec()
	for _, id := range s.sortedIDs() {
		d := s.AVPs[id]
		if !id.Known() {
			t.Errorf("%s (%s) is in the specification table but no embedded dictionary defines it", d, d.Ref)
			continue
		}
		fl := id.Flags()
		check := func(bit string, set bool, rule FlagRule) {
			if rule == Must && !set || rule == MustNot && set {
				t.Errorf("diameter.NewAVP(%s) sets %s=%v; the specification says %s (%s)", d, bit, set, rule, d.Ref)
			}
		}
		check("V", fl&avpflag.Vbit != 0, d.V)
		check("M", fl&avpflag.Mbit != 0, d.M)
		if fl&avpflag.Pbit != 0 {
			t.Errorf("diameter.NewAVP(%s) sets P", d)
		}
	}
}

// avpConstants type-checks pkg/diameter/codes.go (with stand-ins for the
// two names it uses from other files) and returns every AVP* constant of
// type AVPCode with its value.
func avpConstants(t *testing.T) map[string]diameter.AVPCode {
	t.Helper()
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller")
	}
	path := filepath.Join(filepath.Dir(self), "..", "codes.go")
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	codes, err := parser.ParseFile(fset, path, src, 0)
	if err != nil {
		t.Fatal(err)
	}
	stub, err := parser.ParseFile(fset, "stub.go", fmt.Sprintf(`package diameter
type AVPCode uint64
const (
	Vendor3GPP uint32 = %d
	VendorETSI uint32 = %d
)`, diameter.Vendor3GPP, diameter.VendorETSI), 0)
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := (&types.Config{}).Check("diameter", fset, []*ast.File{codes, stub}, nil)
	if err != nil {
		t.Fatalf("type-checking codes.go alone (update the stand-ins in this test): %v", err)
	}
	out := map[string]diameter.AVPCode{}
	for _, name := range pkg.Scope().Names() {
		c, ok := pkg.Scope().Lookup(name).(*types.Const)
		if !ok || !strings.HasPrefix(name, "AVP") || c.Type().String() != "diameter.AVPCode" {
			continue
		}
		v, exact := constantUint64(c)
		if !exact {
			t.Fatalf("%s: not an exact unsigned constant", name)
		}
		out[name] = diameter.AVPCode(v)
	}
	return out
}

func constantUint64(c *types.Const) (uint64, bool) {
	var v uint64
	_, err := fmt.Sscan(c.Val().ExactString(), &v)
	return v, err == nil
}

// normName folds case and hyphens ("SessionID" and "Session-Id").
func normName(s string) string {
	s = strings.ToLower(strings.ReplaceAll(s, "-", ""))
	return s
}

// aliases are the constants whose Go name differs from the specification
// name by more than spelling.
var aliases = map[string]string{
	"AVPShUserData": "User-Data", // TS 29.329 §6.3.3 (702); Cx's User-Data (606) is AVPUserData
}

// TestSpecCoversEveryAVPConstant requires an entry, with the same name, for
// every AVP* constant of pkg/diameter/codes.go.
func TestSpecCoversEveryAVPConstant(t *testing.T) {
	s := TheSpec()
	consts := avpConstants(t)
	if len(consts) < 150 {
		t.Fatalf("found only %d AVP constants in codes.go", len(consts))
	}
	for name, id := range consts {
		d, ok := s.AVPs[id]
		if !ok {
			t.Errorf("%s = code %d vendor %d is not in the specification table", name, id.Code(), id.Vendor())
			continue
		}
		want := strings.TrimPrefix(name, "AVP")
		if a, ok := aliases[name]; ok {
			want = a
		}
		if normName(want) != normName(d.Name) {
			t.Errorf("%s = code %d vendor %d, which the specification names %s", name, id.Code(), id.Vendor(), d)
		}
	}
}

// TestSpecEntriesSane guards the table itself: vendor AVPs need V, IETF
// ones must not have it, and a May rule needs a reason.
func TestSpecEntriesSane(t *testing.T) {
	for _, a := range AVPs {
		switch {
		case a.Vendor != 0 && a.V != Must:
			t.Errorf("%s: vendor AVP without V must", a)
		case a.Vendor == 0 && a.V != MustNot:
			t.Errorf("%s: IETF AVP without V must-not", a)
		case a.M == May && a.Note == "" && a.Name != "Supported-Features":
			t.Errorf("%s: M rule May without a Note saying why", a)
		case a.Ref == "":
			t.Errorf("%s: no reference", a)
		}
	}
}

// ruleDeviations are the places where the embedded dictionaries' command
// rules (which drive pkg/diameter's 5005 DIAMETER_MISSING_AVP checks of
// received requests) knowingly differ from the specification ABNFs.
// Anything else that differs fails TestDictionaryCommandRulesAgreeWithSpec.
var ruleDeviations = map[string]string{
	// Deliberate (cx.xml and sh.xml say so): RFC 6733 deprecates the AVP,
	// TS 29.229 §6.1 NOTE keeps it { } only for backward compatibility,
	// and peers that omit it should not get 5005.
	"*/Vendor-Specific-Application-Id/required": "deliberate",
	// The dictionaries are more lenient than the ABNF (a request the
	// specification requires more of is accepted; the handlers check
	// what they need):
	"UDR/Data-Reference/required":  "TS 29.329 §6.1.1 has *{ Data-Reference } (the HSS's UDR handler answers 5005 itself)",
	"SNR/Data-Reference/required":  "TS 29.329 §6.1.5 has *{ Data-Reference }",
	"RAR/Specific-Action/required": "TS 29.214 §5.6.4 has *{ Specific-Action }",
	// Maximum counts the dictionaries state differently (go-diameter does
	// not enforce them):
	"RTA/Identity-with-Emergency-Registration/max": "TS 29.229 §6.1.10 has *[ ], cx.xml max 1",
	"AAA/AN-GW-Address/max":                        "TS 29.214 §5.6.3 has 0*2[ ], rx.xml unbounded",
	"AAA/Failed-AVP/max":                           "TS 29.214 §5.6.3 has [ ], rx.xml unbounded",
	"RAA/Failed-AVP/max":                           "TS 29.214 §5.6.5 has [ ], rx.xml unbounded",
	// Optional AVPs of the XML rules that the ABNF covers with *[ AVP ]
	// (or the other way round): harmless, an optional rule is not checked.
	"RAR/Re-Auth-Request-Type/listed":     "optional: TS 29.214 §5.6.4 has none (rx.xml required it, so the P-CSCF answered 5005 to a RAR written as the ABNF says)",
	"RAR/Session-Release-Cause/listed":    "optional, *[ AVP ]",
	"RAR/Event-Charging-TimeStamp/listed": "optional, *[ AVP ]",
	"RAR/AN-GW-Address/absent":            "optional",
	"RAR/AN-Trusted/absent":               "optional",
	"RAR/Class/absent":                    "optional",
	"AAA/3GPP-SGSN-MCC-MNC/absent":        "optional",
}

// TestDictionaryCommandRulesAgreeWithSpec compares the request and answer
// rules of every command in the embedded dictionaries with the command
// ABNFs: required or not, maximum count, AVPs listed on one side only
// (ruleDeviations lists the known differences).
func TestDictionaryCommandRulesAgreeWithSpec(t *testing.T) {
	s := TheSpec()
	used := map[string]bool{}
	deviation := func(cmd, avpName, what string) bool {
		for _, k := range []string{cmd + "/" + avpName + "/" + what, "*/" + avpName + "/" + what} {
			if _, ok := ruleDeviations[k]; ok {
				used[k] = true
				return true
			}
		}
		return false
	}
	for _, f := range dictFiles {
		b, err := diameter.DictionaryXML(f.app)
		if err != nil {
			t.Fatal(err)
		}
		var d dict.File
		if err := xml.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		for _, app := range d.App {
			for _, c := range app.Command {
				for _, side := range []struct {
					req  bool
					rule dict.CommandRule
				}{{true, c.Request}, {false, c.Answer}} {
					abnf, ok := s.CommandFor(app.ID, c.Code, side.req)
					if !ok {
						t.Errorf("%s: command %d (request %v) of application %d has no ABNF in the tables", f.name, c.Code, side.req, app.ID)
						continue
					}
					seen := map[diameter.AVPCode]bool{}
					for _, r := range side.rule.Rule {
						id, ok := s.lookup(r.AVP, app.ID)
						if !ok {
							t.Errorf("%s %s: rule for unknown AVP %q", f.name, abnf.Name, r.AVP)
							continue
						}
						seen[id] = true
						o, listed := abnf.Rule(id)
						switch {
						case !listed:
							if r.Required {
								t.Errorf("%s %s: %s is required, but the ABNF (%s) does not list it: conformant peers get 5005", f.name, abnf.Name, r.AVP, abnf.Ref)
							} else if !deviation(abnf.Name, r.AVP, "listed") {
								t.Errorf("%s %s: rule for %s, which the ABNF (%s) does not list", f.name, abnf.Name, r.AVP, abnf.Ref)
							}
							continue
						case r.Required != (o.Min > 0) && !deviation(abnf.Name, r.AVP, "required"):
							t.Errorf("%s %s: %s required=%v, the ABNF (%s) says min %d", f.name, abnf.Name, r.AVP, r.Required, abnf.Ref, o.Min)
						case r.Max != o.Max && !deviation(abnf.Name, r.AVP, "max"):
							t.Errorf("%s %s: %s max=%d, the ABNF (%s) says %d (0: unbounded)", f.name, abnf.Name, r.AVP, r.Max, abnf.Ref, o.Max)
						}
					}
					for _, o := range abnf.Rules {
						if !seen[o.AVP] && !deviation(abnf.Name, o.Name, "absent") {
							t.Errorf("%s %s: the ABNF (%s) lists %s, the dictionary has no rule for it", f.name, abnf.Name, abnf.Ref, o.Name)
						}
					}
				}
			}
		}
	}
	for k := range ruleDeviations {
		if !used[k] {
			t.Errorf("ruleDeviations[%q] no longer applies: remove it", k)
		}
	}
}
