package binding

import "testing"

// TestCanonURI: the comparison form of IMPUs and contacts, whether the
// input is already canonical (returned as is) or not.
func TestCanonURI(t *testing.T) {
	for in, want := range map[string]string{
		"sip:alice@ims.example.org":                      "sip:alice@ims.example.org",
		" <sip:alice@ims.example.org>;tag=1 ":            "sip:alice@ims.example.org",
		"SIP:Alice@IMS.Example.ORG;transport=udp":        "sip:Alice@ims.example.org",
		"sips:alice@ims.example.org?subject=x":           "sips:alice@ims.example.org",
		"sip:alice@10.0.0.1:5060;ob":                     "sip:alice@10.0.0.1:5060",
		"sip:a@b@Host":                                   "sip:a@b@host",
		"tel:+15551234567;phone-context=ims.example.org": "tel:+15551234567",
		"TEL:+15551234567":                               "tel:+15551234567",
		"sip:ims.example.org":                            "sip:ims.example.org",
		"Alice":                                          "alice",
		"sip:+1-555-0100@IMS.example.org;user=phone":     "tel:+15550100",
		"tel:+1-555-0100":                                "tel:+15550100",
		"sip:+15550100@ims.example.org":                  "sip:+15550100@ims.example.org",
	} {
		if got := CanonURI(in); got != want {
			t.Errorf("CanonURI(%q) = %q, want %q", in, got, want)
		}
	}
	// The REGISTER hot path: an already canonical SIP URI costs nothing.
	if n := testing.AllocsPerRun(100, func() { CanonURI("sip:alice@ims.example.org;transport=udp") }); n != 0 {
		t.Errorf("CanonURI allocated %v times for a canonical SIP URI", n)
	}
}
