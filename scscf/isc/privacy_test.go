package isc_test

import (
	"context"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/imscore/imscore/pkg/metrictest"
	"github.com/imscore/imscore/pkg/sipproxy"
	"github.com/imscore/imscore/pkg/userdata"
	"github.com/imscore/imscore/scscf"
)

// privacyCount reads scscf_privacy_total{type,outcome} from reg.
func privacyCount(t *testing.T, reg *prometheus.Registry, typ, outcome string) float64 {
	t.Helper()
	v, _ := metrictest.Value(t, reg, "scscf_privacy_total", map[string]string{"type": typ, "outcome": outcome})
	return v
}

// messageIFC is an originating iFC for MESSAGE to server
// (SESSION_TERMINATED).
func messageIFC(server string) userdata.InitialFilterCriteria {
	f := asIFC(10, server, userdata.SessionTerminated, userdata.SessionCaseOriginating)
	m := "MESSAGE"
	f.TriggerPoint.SPTs[0].Method = &m
	return f
}

// TestPrivacyCriticalAfterOriginatingIFCs: "critical" privacy is checked
// when the request leaves the S-CSCF after the originating iFCs (RFC 3323
// §5, TS 24.229 §5.4.3.2, TS 24.607): alice's privacy AS provides
// "header" privacy and takes it out of Privacy, so her
// Privacy: header;critical MESSAGE reaches bob; carol's AS does nothing
// for privacy, so hers is refused 500 Privacy Unavailable after her AS
// had it. Before, both were refused before the iFCs and no AS saw them.
func TestPrivacyCriticalAfterOriginatingIFCs(t *testing.T) {
	privacyAS := newElement(t, "privacy-as", func(e *sipElement, ctx context.Context, tx *sipproxy.Txn) {
		req := tx.Request()
		req.RemoveHeader("Organization")
		req.RemoveHeader("Privacy")
		req.AppendHeader(sip.NewHeader("Privacy", "id"))
		_, _ = tx.Forward(ctx, sipproxy.ForwardOptions{})
	})
	plainAS := newTestAS(t, "plain-as")
	l := newSessionLab(t, nil)
	l.addUser(t, "alice", newUAS(t, "alice", 0), messageIFC("sip:"+privacyAS.addr()))
	l.addUser(t, "carol", newUAS(t, "carol", 0), messageIFC("sip:"+plainAS.addr()))
	uasB := newUAS(t, "bob", 0)
	l.addUser(t, "bob", uasB)

	res, _ := l.send(t, sip.MESSAGE, bob(), alice(), sip.NewHeader("Privacy", "header;critical"), sip.NewHeader("Organization", "ACME"))
	if res.StatusCode != 200 {
		t.Errorf("Privacy: header;critical with a privacy AS: %d %s, want 200", res.StatusCode, res.Reason)
	}
	if n := len(privacyAS.requests(sip.MESSAGE)); n != 1 {
		t.Errorf("the privacy AS got %d MESSAGEs, want 1", n)
	}
	if got := uasB.requests(sip.MESSAGE); len(got) != 1 || hdr2(got[0], "Organization") != "" || hdr2(got[0], "Privacy") != "id" {
		t.Errorf("bob got %d MESSAGEs (want 1, without Organization, Privacy: id)", len(got))
	}

	carol := "sip:carol@" + strings.SplitN(bob(), "@", 2)[1]
	res, _ = l.send(t, sip.MESSAGE, bob(), carol, sip.NewHeader("Privacy", "header;critical"))
	if res.StatusCode != 500 || res.Reason != "Privacy Unavailable" || !strings.Contains(res.GetHeader("Warning").Value(), "header") {
		t.Errorf("Privacy: header;critical without a privacy service: %d %s, want 500 Privacy Unavailable with a Warning", res.StatusCode, res.Reason)
	}
	if n := len(plainAS.requests(sip.MESSAGE)); n != 1 {
		t.Errorf("carol's AS got %d MESSAGEs, want 1 (the iFCs run before the privacy check)", n)
	}
	if n := len(uasB.requests(sip.MESSAGE)); n != 1 {
		t.Errorf("bob got %d MESSAGEs in all, want 1", n)
	}
}

// TestSessionBreakoutHeaderPrivacy: at --breakout (the trust-domain
// boundary) the S-CSCF gives the stateless part of RFC 3323 privacy:
// "header" removes Call-Info, Organization, Subject, Reply-To,
// In-Reply-To, User-Agent and Warning; "user" sets From to
// "Anonymous" <sip:anonymous@anonymous.invalid> keeping the tag; each is
// counted in scscf_privacy_total. "session" is not given (counted, the
// request goes on; with critical 500). "user;critical" passes at breakout,
// "header;critical" does not (Via/Contact stay). Inside the network the
// request is not changed. Before, only P-Asserted-Identity was removed.
func TestSessionBreakoutHeaderPrivacy(t *testing.T) {
	bgcf := newUAS(t, "bgcf", 0)
	reg := prometheus.NewRegistry()
	l := newSessionLab(t, func(c *scscf.Config) { c.Breakout = "sip:" + bgcf.addr(); c.Registry = reg })
	l.addUser(t, "alice", newUAS(t, "alice", 0))
	uasB := newUAS(t, "bob", 0)
	l.addUser(t, "bob", uasB)
	revealing := []string{"Call-Info", "Organization", "Subject", "Reply-To", "In-Reply-To", "User-Agent", "Warning"}
	headers := func(privacy string) []sip.Header {
		hs := []sip.Header{sip.NewHeader("Privacy", privacy)}
		for _, h := range revealing {
			v := "x-" + h
			if h == "Warning" {
				v = `399 alice.example "x"`
			}
			hs = append(hs, sip.NewHeader(h, v))
		}
		return hs
	}

	res, sent := l.send(t, sip.MESSAGE, "sip:x@example.net", alice(), headers("header;user;id")...)
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE out: %d %s", res.StatusCode, res.Reason)
	}
	got := bgcf.requests(sip.MESSAGE)
	if len(got) != 1 {
		t.Fatalf("breakout got %d MESSAGEs", len(got))
	}
	out := got[0]
	for _, h := range append(revealing, "P-Asserted-Identity") {
		if v := hdr2(out, h); v != "" {
			t.Errorf("Privacy: header;user;id: %s left the network: %q", h, v)
		}
	}
	tag, _ := sent.From().Params.Get("tag")
	if f := out.From(); f == nil || f.DisplayName != "Anonymous" || f.Address.String() != "sip:anonymous@anonymous.invalid" || !f.Params.Has("tag") {
		t.Errorf("From at the breakout: %v, want \"Anonymous\" <sip:anonymous@anonymous.invalid>;tag=%s", out.From(), tag)
	} else if v, _ := f.Params.Get("tag"); v != tag {
		t.Errorf("From tag %q, want %q", v, tag)
	}
	for _, c := range []struct {
		typ, outcome string
	}{{"header", "partial"}, {"user", "provided"}, {"id", "provided"}} {
		if n := privacyCount(t, reg, c.typ, c.outcome); n != 1 {
			t.Errorf("scscf_privacy_total{type=%q,outcome=%q} = %v, want 1", c.typ, c.outcome, n)
		}
	}

	for _, c := range []struct {
		privacy string
		want    int
	}{{"session", 200}, {"session;critical", 500}, {"user;critical", 200}, {"header;critical", 500}} {
		res, _ = l.send(t, sip.MESSAGE, "sip:x@example.net", alice(), sip.NewHeader("Privacy", c.privacy))
		if res.StatusCode != c.want {
			t.Errorf("Privacy: %s at breakout: %d %s, want %d", c.privacy, res.StatusCode, res.Reason, c.want)
		}
	}
	for _, c := range []struct {
		typ, outcome string
		want         float64
	}{{"session", "not_provided", 1}, {"session", "refused", 1}, {"user", "provided", 2}, {"header", "refused", 1}} {
		if n := privacyCount(t, reg, c.typ, c.outcome); n != c.want {
			t.Errorf("scscf_privacy_total{type=%q,outcome=%q} = %v, want %v", c.typ, c.outcome, n, c.want)
		}
	}

	// Inside the trust domain nothing changes.
	res, _ = l.send(t, sip.MESSAGE, bob(), alice(), headers("header;user")...)
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE to bob: %d %s", res.StatusCode, res.Reason)
	}
	in := uasB.requests(sip.MESSAGE)
	if len(in) != 1 {
		t.Fatalf("bob got %d MESSAGEs", len(in))
	}
	if f := in[0].From(); f.Address.String() != alice() || hdr2(in[0], "Organization") == "" {
		t.Errorf("inside the network the request changed: From %s, Organization %q", f.Address.String(), hdr2(in[0], "Organization"))
	}
	if n := privacyCount(t, reg, "header", "not_provided"); n != 1 {
		t.Errorf("scscf_privacy_total{type=header,outcome=not_provided} = %v, want 1", n)
	}
}
