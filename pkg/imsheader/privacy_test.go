package imsheader

import (
	"testing"

	"github.com/emiago/sipgo/sip"
)

func TestPrivacyValues(t *testing.T) {
	cases := []struct {
		headers []string
		values  []string
		id      bool
	}{
		{nil, nil, false},
		{[]string{"id"}, []string{"id"}, true},
		{[]string{"header; ID ;critical"}, []string{"header", "id", "critical"}, true},
		{[]string{"user", "id"}, []string{"user", "id"}, true},
		{[]string{"none"}, []string{"none"}, false},
		{[]string{"id;none"}, []string{"id", "none"}, false},
		{[]string{"session"}, []string{"session"}, false},
	}
	for _, c := range cases {
		req := sip.NewRequest(sip.MESSAGE, sip.Uri{Scheme: "sip", User: "bob", Host: "ims.test"})
		for _, h := range c.headers {
			req.AppendHeader(sip.NewHeader("Privacy", h))
		}
		got := PrivacyValues(req)
		if len(got) != len(c.values) {
			t.Errorf("%q: values %q, want %q", c.headers, got, c.values)
			continue
		}
		for i := range got {
			if got[i] != c.values[i] {
				t.Errorf("%q: values %q, want %q", c.headers, got, c.values)
				break
			}
		}
		if WantsPrivacy(req, "id") != c.id {
			t.Errorf("%q: WantsPrivacy(id) = %v", c.headers, !c.id)
		}
	}
}
