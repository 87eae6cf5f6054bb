package imsuri

import "testing"

func TestCanonical(t *testing.T) {
	for in, want := range map[string]string{
		"tel:+15550100":                     "tel:+15550100",
		"tel:+1-555-0100":                   "tel:+15550100",
		"TEL:+1 (555) 010.0":                "tel:+15550100",
		"sip:+15550100@ims.test;user=phone": "tel:+15550100",
		"sip:+1-555-0100@ims.test:5060;user=phone;transport=udp": "tel:+15550100",
		"sips:+15550100@ims.test;USER=Phone":                     "tel:+15550100",
		"sip:5550100;phone-context=IMS.Test@ims.test;user=phone": "tel:5550100;phone-context=ims.test",
		"tel:5550100;Phone-Context=+1555":                        "tel:5550100;phone-context=+1555",
		"sip:+15550100@ims.test":                                 "sip:+15550100@ims.test", // no user=phone: a user name
		"sip:alice@ims.test;user=phone":                          "sip:alice@ims.test;user=phone",
		"sip:alice@ims.test":                                     "sip:alice@ims.test",
		"tel:":                                                   "tel:",
		"urn:service:sos":                                        "urn:service:sos",
		"alice":                                                  "alice",
	} {
		if got := Canonical(in); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzCanonical(f *testing.F) {
	f.Add("sip:+1-555-0100@ims.test;user=phone")
	f.Add("tel:5550100;phone-context=ims.test")
	f.Fuzz(func(t *testing.T, s string) {
		c := Canonical(s)
		if Canonical(c) != c {
			t.Errorf("not idempotent: %q → %q → %q", s, c, Canonical(c))
		}
	})
}
