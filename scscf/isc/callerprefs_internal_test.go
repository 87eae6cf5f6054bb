package isc

import (
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/scscf/binding"
)

// TestCallerPrefsMatching: RFC 3841 §7.4 with RFC 3840 §9 feature values
// on stored contacts: Reject-Contact drops matching contacts; quoted
// value lists are not split at their commas; values compare exactly
// (a token is not matched by a token that merely contains it); numeric
// ranges "#a:b" / "#>=n" match numbers inside them.
func TestCallerPrefsMatching(t *testing.T) {
	contacts := []binding.Contact{
		{URI: "sip:a@h", Value: `<sip:a@h>;+g.3gpp.smsip;+sip.methods="INVITE,MESSAGE";+sip.priority="#=5"`},
		{URI: "sip:b@h", Value: `<sip:b@h>;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel";+sip.priority="#=1"`},
		{URI: "sip:c@h", Value: `<sip:c@h>;+sip.methods="MESSAGE";+sip.mobility="fixedline"`},
	}
	for _, tc := range []struct {
		name, header, value string
		want                string
	}{
		{"reject boolean", "Reject-Contact", "*;+g.3gpp.smsip", "b c"},
		{"reject token", "Reject-Contact", `*;+sip.methods="MESSAGE"`, "b"},
		{"reject needs every feature", "Reject-Contact", `*;+sip.methods="MESSAGE";+g.3gpp.smsip`, "b c"},
		{"reject one of two values", "Reject-Contact", `*;+sip.methods="INVITE"`, "b c"},
		{"reject everything", "Reject-Contact", `*;+sip.priority="#0:10", *;+sip.methods="MESSAGE"`, ""},
		{"reject keeps contacts lacking the tag", "Reject-Contact", `*;+sip.mobility="mobile"`, "a b c"},
		{"accept list in quotes", "Accept-Contact", `*;+sip.methods="BYE,INVITE";require`, "a"},
		{"accept exact not substring", "Accept-Contact", `*;+sip.mobility="fixed";require`, ""},
		{"accept icsi exact", "Accept-Contact", `*;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi.mmtel";require;explicit`, "b"},
		{"accept icsi prefix is no match", "Accept-Contact", `*;+g.3gpp.icsi-ref="urn%3Aurn-7%3A3gpp-service.ims.icsi";require`, ""},
		{"accept numeric range", "Accept-Contact", `*;+sip.priority="#3:9";require`, "a"},
		{"accept numeric at least", "Accept-Contact", `*;+sip.priority="#>=1";require`, "a b"},
		{"accept negated token", "Accept-Contact", `*;+sip.methods="!INVITE";require`, "c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := sip.NewRequest(sip.MESSAGE, sip.Uri{Scheme: "sip", User: "erin", Host: "h"})
			req.AppendHeader(sip.NewHeader(tc.header, tc.value))
			var got []string
			for _, c := range preferredContacts(req, contacts) {
				got = append(got, strings.TrimPrefix(strings.TrimSuffix(c.URI, "@h"), "sip:"))
			}
			if g := strings.Join(got, " "); g != tc.want {
				t.Errorf("%s: %s → contacts %q, want %q", tc.header, tc.value, g, tc.want)
			}
		})
	}
}
