package registrar_test

import (
	"testing"
	"time"

	"github.com/imscore/imscore/pkg/diameter"
	"github.com/imscore/imscore/scscf"
	"github.com/imscore/imscore/scscf/internal/scscftest"
)

// TestFailedAuthenticationThrottled: after --auth-failure-burst wrong
// digest responses in a row an IMPI is locked out: its next REGISTER,
// even with the right password, gets 403 with Retry-After and no
// challenge (no MAR); once a failure is forgiven (--auth-failure-every)
// the right password registers, and a success clears the failures. On
// the old code the 4th wrong password got a plain 403 and guessing went
// on at full speed.
func TestFailedAuthenticationThrottled(t *testing.T) {
	h := scscftest.NewHSS(t)
	h.Add(&scscftest.Sub{IMPI: "tom@" + scscftest.Domain, IMPUs: []string{"sip:tom@" + scscftest.Domain}, Scheme: "md5", Password: "right"})
	s := scscftest.NewServer(t, h, "", func(c *scscf.Config) {
		c.AuthFailureBurst = 3
		c.AuthFailureEvery = 1500 * time.Millisecond
	})
	u := scscftest.NewUE(t, "tom")
	u.Contact = "<sip:tom@127.0.0.1:6000>"
	try := func(password string) (challenge, answer int, retryAfter string) {
		res := u.Send(t, s, 600, "")
		if res.StatusCode != 401 {
			return res.StatusCode, 0, scscftest.Hdr(res, "Retry-After")
		}
		u.Password = password
		res = u.Send(t, s, 600, u.Answer(t, res, true))
		return 401, res.StatusCode, scscftest.Hdr(res, "Retry-After")
	}
	for i := 0; i < 3; i++ {
		if c, a, _ := try("guess"); c != 401 || a != 403 {
			t.Fatalf("wrong password %d: %d then %d, want 401 then 403", i+1, c, a)
		}
	}
	countMARs := func() int {
		n := 0
		for _, r := range h.Requests() {
			if r.Cmd == diameter.CmdMultimediaAuth {
				n++
			}
		}
		return n
	}
	mars := countMARs()
	c, _, ra := try("right")
	if c != 403 || ra == "" || ra == "0" {
		t.Fatalf("locked out IMPI: %d with Retry-After %q, want 403 with Retry-After", c, ra)
	}
	if n := countMARs(); n != mars {
		t.Errorf("%d MARs for a locked-out IMPI", n-mars)
	}
	time.Sleep(1600 * time.Millisecond)
	if c, a, _ := try("right"); c != 401 || a != 200 {
		t.Fatalf("after the lockout, right password: %d then %d", c, a)
	}
	// The success cleared the failures: three more wrong ones are allowed.
	for i := 0; i < 3; i++ {
		if c, a, _ := try("guess"); c != 401 || a != 403 {
			t.Fatalf("after success, wrong password %d: %d then %d", i+1, c, a)
		}
	}
	scscftest.WaitFor(t, "six SAR AUTHENTICATION_FAILURE", func() bool { return h.SARs(diameter.SATAuthenticationFailure) >= 6 })
}
