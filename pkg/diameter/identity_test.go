package diameter

import (
	"context"
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/fiorix/go-diameter/v4/diam"
	"github.com/fiorix/go-diameter/v4/diam/avp"
	"github.com/fiorix/go-diameter/v4/diam/datatype"
)

// TestAVPIdentityIsCodeAndVendor: look-ups and builders match the code and
// the vendor. Before, User-Name was looked up by code alone, so a
// User-Name sent with Vendor-Id 10415 (the HSS's bug that made every
// Kamailio registration fail) was accepted by our own CSCFs.
func TestAVPIdentityIsCodeAndVendor(t *testing.T) {
	un := NewAVP(AVPUserName, datatype.UTF8String(testIMPI))
	if un.Flags != avp.Mbit || un.VendorID != 0 {
		t.Errorf("User-Name built with flags %#x vendor %d, want M only, vendor 0 (RFC 6733 §8.14)", un.Flags, un.VendorID)
	}
	pi := NewAVP(AVPPublicIdentity, datatype.UTF8String(testIMPU))
	if pi.Flags != avp.Mbit|avp.Vbit || pi.VendorID != Vendor3GPP {
		t.Errorf("Public-Identity built with flags %#x vendor %d, want M|V, 10415 (TS 29.229 §6.3)", pi.Flags, pi.VendorID)
	}
	wrong := diam.NewAVP(1, avp.Mbit|avp.Vbit, Vendor3GPP, datatype.UTF8String("x@y"))
	m := diam.NewRequest(CmdMultimediaAuth, uint32(AppCx), nil)
	m.AddAVP(wrong)
	if Find(m, AVPUserName) != nil || String(m, AVPUserName) != "" {
		t.Error("a code-1 AVP with Vendor-Id 10415 was found as User-Name")
	}
	m.AddAVP(un)
	if String(m, AVPUserName) != testIMPI {
		t.Error("User-Name not found after the vendor-10415 impostor")
	}
	// Same code, two vendors: Abort-Cause (500/10415), Line-Identifier (500/13019).
	g := []*diam.AVP{NewAVP(AVPLineIdentifier, datatype.OctetString("line")), NewAVP(AVPAbortCause, datatype.Enumerated(1))}
	if f := FindIn(g, AVPAbortCause); len(f) != 1 || f[0].VendorID != Vendor3GPP {
		t.Errorf("Abort-Cause look-up found %v", f)
	}
	if AVPLineIdentifier.Code() != AVPAbortCause.Code() || AVPLineIdentifier == AVPAbortCause {
		t.Error("Line-Identifier and Abort-Cause must share the code and differ in identity")
	}
	if got := AVPPublicIdentity.String(); got != "Public-Identity(601, vendor 10415)" {
		t.Errorf("String() = %q", got)
	}
	if IdentityOf(wrong) != AVPOf(1, Vendor3GPP) || AVPOf(1, Vendor3GPP).Known() {
		t.Error("IdentityOf/Known of a vendor-10415 code 1")
	}
}

// TestEveryDeclaredAVPIsInTheDictionary: every AVP* identity used by the
// code has a dictionary entry, so NewAVP never falls back to guessed flags.
func TestEveryDeclaredAVPIsInTheDictionary(t *testing.T) {
	ids := declaredAVPs(t)
	if len(ids) < 150 {
		t.Fatalf("found only %d AVP constants in codes.go", len(ids))
	}
	for name, a := range ids {
		if !a.Known() {
			t.Errorf("%s = %d/%d has no dictionary entry", name, a.Code(), a.Vendor())
		}
	}
}

// declaredAVPs reads the AVP* constants of codes.go (name → identity).
func declaredAVPs(t *testing.T) map[string]AVPCode {
	t.Helper()
	b, err := os.ReadFile("codes.go")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^\t(AVP\w+)\s+AVPCode = (?:(v3GPP|vETSI) \| )?(\d+)`)
	out := map[string]AVPCode{}
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		code, _ := strconv.ParseUint(m[3], 10, 32)
		var vendor uint32
		switch m[2] {
		case "v3GPP":
			vendor = Vendor3GPP
		case "vETSI":
			vendor = VendorETSI
		}
		out[m[1]] = AVPOf(uint32(code), vendor)
	}
	return out
}

// TestUnknownMandatoryAVP: RFC 6733 §4.1 and §7.5. An AVP with the M bit
// that the receiver does not support is answered DIAMETER_AVP_UNSUPPORTED
// (5001) with the AVP in Failed-AVP — whether its code is unknown, or known
// with another vendor; an unknown AVP without the M bit is ignored.
func TestUnknownMandatoryAVP(t *testing.T) {
	hss := testNode(t, hssHost, nil)
	hss.Handle(CmdUserAuthorization, AppCx, uarHandler(hss))
	addr := listen(t, hss, "127.0.0.1:0")
	icscf := testNode(t, icscfHost, nil)
	connect(t, icscf, addr, hssHost)

	cases := []struct {
		name string
		avp  *diam.AVP
		want uint32 // Result-Code, or 0 for the handler's experimental answer
	}{
		{"unknown vendor AVP without M (Kamailio's 494/50 style)", diam.NewAVP(494, avp.Vbit, 50, datatype.OctetString("x")), 0},
		{"unknown base AVP without M", diam.NewAVP(60000, 0, 0, datatype.Unsigned32(1)), 0},
		{"unknown vendor AVP with M", diam.NewAVP(4242, avp.Mbit|avp.Vbit, 99999, datatype.Unsigned32(7)), DiameterAVPUnsupported},
		{"known code, wrong vendor, M", diam.NewAVP(AVPPublicIdentity.Code(), avp.Mbit|avp.Vbit, VendorETSI, datatype.UTF8String(testIMPU)), DiameterAVPUnsupported},
		{"unknown M AVP inside a known grouped AVP", Grouped(AVPSupportedFeatures, diam.NewAVP(4243, avp.Mbit, 0, datatype.Unsigned32(1))), DiameterAVPUnsupported},
	}
	for _, tc := range cases {
		req := newUAR(icscf, testIMPU)
		req.AddAVP(tc.avp)
		ctx, cancel := context.WithTimeout(context.Background(), 5e9)
		a, err := icscf.Send(ctx, req)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		code, exp, _ := Result(a)
		if tc.want == 0 {
			if code != DiameterFirstRegistration || !exp {
				t.Errorf("%s: answered %d (experimental %v), want the handler's 2001", tc.name, code, exp)
			}
			continue
		}
		if code != tc.want || exp {
			t.Errorf("%s: answered %d (experimental %v), want Result-Code %d", tc.name, code, exp, tc.want)
			continue
		}
		f := Children(Find(a, AVPFailedAVP))
		want := tc.avp
		if g, ok := tc.avp.Data.(*diam.GroupedAVP); ok && AVPSupportedFeatures.Is(tc.avp) {
			want = g.AVP[0]
		}
		if len(f) != 1 || f[0].Code != want.Code || f[0].VendorID != want.VendorID {
			t.Errorf("%s: Failed-AVP %v, want the offending AVP %d/%d", tc.name, f, want.Code, want.VendorID)
		}
	}
}
