package gruu_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/gruu"
)

func parse(t *testing.T, s string) sip.Uri {
	t.Helper()
	var u sip.Uri
	if err := sip.ParseUri(s, &u); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return u
}

// TestTempGRUURoundTrip: a temporary GRUU opens to what it was issued
// for with the same secret only; a changed token, another secret or a
// URI of another form are refused (ErrInvalid, ErrNotTemp); Of tells the
// registration it belongs to (RFC 5627 §3.2).
func TestTempGRUURoundTrip(t *testing.T) {
	if _, err := gruu.NewCodec([]byte("short")); err == nil {
		t.Error("a 5-byte secret was accepted")
	}
	c, err := gruu.NewCodec([]byte("0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	reg := time.Unix(1_800_000_000, 0)
	s := c.TempURI("sip:ann@ims.example.org", "<urn:uuid:1>", "call-1", 7, reg)
	if s != c.TempURI("sip:ann@ims.example.org", "<urn:uuid:1>", "call-1", 7, reg) {
		t.Error("same arguments, different GRUUs")
	}
	if s == c.TempURI("sip:ann@ims.example.org", "<urn:uuid:1>", "call-1", 8, reg) {
		t.Error("another CSeq, same GRUU")
	}
	if !strings.HasPrefix(s, "sip:"+gruu.TempPrefix) || !strings.HasSuffix(s, "@ims.example.org;gr") || strings.Contains(s, "ann") {
		t.Errorf("temp GRUU %q", s)
	}
	got, err := c.Parse(parse(t, s))
	if err != nil || got.IMPU != "sip:ann@ims.example.org" || got.Instance != "urn:uuid:1" || got.CSeq != 7 {
		t.Fatalf("Parse: %+v, %v", got, err)
	}
	if !got.Of("call-1", reg) || got.Of("call-2", reg) || got.Of("call-1", reg.Add(time.Second)) {
		t.Error("Of does not tell the registration")
	}
	u := parse(t, s)
	b := []byte(u.User)
	i := len(gruu.TempPrefix) + 10 // a character of the sealed token
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	u.User = string(b)
	if _, err := c.Parse(u); !errors.Is(err, gruu.ErrInvalid) {
		t.Errorf("changed token: %v, want ErrInvalid", err)
	}
	other, _ := gruu.NewCodec([]byte("fedcba9876543210"))
	if _, err := other.Parse(parse(t, s)); !errors.Is(err, gruu.ErrInvalid) {
		t.Errorf("other secret: %v, want ErrInvalid", err)
	}
	for _, s := range []string{"sip:ann@ims.example.org;gr=urn:uuid:1", "sip:tgruu.x@ims.example.org", "sip:ann@ims.example.org;gr"} {
		if _, err := c.Parse(parse(t, s)); !errors.Is(err, gruu.ErrNotTemp) {
			t.Errorf("%s: %v, want ErrNotTemp", s, err)
		}
	}
	if _, err := c.Parse(parse(t, "sip:tgruu.AAAA@ims.example.org;gr")); !errors.Is(err, gruu.ErrInvalid) {
		t.Errorf("short token: %v, want ErrInvalid", err)
	}
}
