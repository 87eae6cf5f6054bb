package e2e

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// tpParts splits the body of a third-party REGISTER into its parts by
// content type (one part when it is not multipart/mixed).
func tpParts(t *testing.T, r *sip.Request) map[string]string {
	t.Helper()
	ct := r.ContentType()
	if ct == nil {
		t.Fatalf("third-party REGISTER without Content-Type:\n%s", r)
	}
	mt, params, err := mime.ParseMediaType(ct.Value())
	if err != nil {
		t.Fatalf("Content-Type %q: %v", ct.Value(), err)
	}
	out := map[string]string{}
	if mt != "multipart/mixed" {
		out[mt] = string(r.Body())
		return out
	}
	mr := multipart.NewReader(bytes.NewReader(r.Body()), params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("multipart body: %v\n%s", err, r.Body())
		}
		b, _ := io.ReadAll(p)
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		out[pt] = string(b)
	}
}

// TestThirdPartyRegister provisions a registrar AS with imsctl (as add
// with service info and --include-register-request, an iFC on REGISTER
// for initial/re/de registration, a profile) and checks the third-party
// REGISTERs the real S-CSCF sends it (TS 24.229 §5.4.1.7) when the user
// registers and de-registers through the I-CSCF.
func TestThirdPartyRegister(t *testing.T) {
	l := newLab(t)
	as := newSIPEndpoint(t)
	const serviceInfo = `tariff <gold> & "roaming"`
	l.imsctl("as", "add", "reg-as", "--server-name", as.uri(), "--default-handling", "continue",
		"--service-info", serviceInfo, "--include-register-request")
	l.imsctl("ifc", "add", "to-reg-as", "--as", "reg-as", "--method", "REGISTER", "--registration-type", "initial,re,de")
	l.imsctl("profile", "add", "with-reg-as", "--ifc", "to-reg-as:10")
	l.addMD5("alice", "pw", "--profile", "with-reg-as")
	l.addMD5("bob", "pw") // default profile: no AS
	alice := "sip:alice@" + domain
	ue := newSIPEndpoint(t)
	contactPort := freePort(t)

	check := func(t *testing.T, r *sip.Request, wantExpires func(int) bool, ueExpires string) {
		t.Helper()
		if r.Recipient.Host != "127.0.0.1" || r.Recipient.Port != as.port {
			t.Errorf("Request-URI %s, want %s", r.Recipient.String(), as.uri())
		}
		if to := r.To(); to == nil || to.Address.String() != alice {
			t.Errorf("To %v, want %s", r.To(), alice)
		}
		if c := hdrOf(r, "Contact"); !strings.Contains(c, l.scscfServerName()) {
			t.Errorf("Contact %q, want the S-CSCF's Server-Name %s", c, l.scscfServerName())
		}
		exp, err := strconv.Atoi(hdrOf(r, "Expires"))
		if err != nil || !wantExpires(exp) {
			t.Errorf("Expires %q", hdrOf(r, "Expires"))
		}
		if pcv := hdrOf(r, "P-Charging-Vector"); !strings.Contains(pcv, "icid-value=") || !strings.Contains(pcv, "orig-ioi="+domain) {
			t.Errorf("P-Charging-Vector %q", pcv)
		}
		parts := tpParts(t, r)
		si := parts["application/3gpp-ims+xml"]
		want := "<service-info>tariff &lt;gold&gt; &amp; "
		if !strings.Contains(si, "<ims-3gpp") || !strings.Contains(si, want) || !strings.Contains(si, "roaming") {
			t.Errorf("service info part %q, want the escaped %q", si, serviceInfo)
		}
		ms := parts["message/sip"]
		if !strings.HasPrefix(ms, "REGISTER sip:"+domain+" SIP/2.0") || !strings.Contains(ms, "Expires: "+ueExpires) ||
			!strings.Contains(ms, fmt.Sprintf("127.0.0.1:%d", contactPort)) {
			t.Errorf("message/sip part is not the UE's REGISTER (Expires %s):\n%s", ueExpires, ms)
		}
	}

	var callID string
	var cseq uint32
	t.Run("registration", func(t *testing.T) {
		if res := l.md5RegisterExpires(t, ue, "alice", "pw", contactPort, 600); res.StatusCode != 200 {
			t.Fatalf("registration: %d %s", res.StatusCode, res.Reason)
		}
		r := as.next(t, sip.REGISTER, 5*time.Second)
		check(t, r, func(e int) bool { return e > 0 && e <= 600 }, "600")
		callID, cseq = r.CallID().Value(), r.CSeq().SeqNo
	})
	t.Run("re-registration", func(t *testing.T) {
		if res := l.md5RegisterExpires(t, ue, "alice", "pw", contactPort, 300); res.StatusCode != 200 {
			t.Fatalf("re-registration: %d %s", res.StatusCode, res.Reason)
		}
		r := as.next(t, sip.REGISTER, 5*time.Second)
		check(t, r, func(e int) bool { return e > 0 && e <= 300 }, "300")
		if callID != "" && (r.CallID().Value() != callID || r.CSeq().SeqNo <= cseq) {
			t.Errorf("re-registration Call-ID/CSeq %s/%d after %s/%d: want the same Call-ID, higher CSeq", r.CallID().Value(), r.CSeq().SeqNo, callID, cseq)
		}
	})
	t.Run("de-registration", func(t *testing.T) {
		if res := l.md5RegisterExpires(t, ue, "alice", "pw", contactPort, 0); res.StatusCode != 200 {
			t.Fatalf("de-registration: %d %s", res.StatusCode, res.Reason)
		}
		r := as.next(t, sip.REGISTER, 5*time.Second)
		check(t, r, func(e int) bool { return e == 0 }, "0")
		if _, ok := l.registrar().find(alice); ok {
			t.Error("alice still registered")
		}
	})
	t.Run("user without the iFC: no third-party REGISTER", func(t *testing.T) {
		l.md5Register(t, "bob", "pw", freePort(t))
		as.none(t, sip.REGISTER, time.Second)
	})
}
