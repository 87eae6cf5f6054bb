package pcscf

import (
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/admission"
)

// TestOverload503: beyond its admission limit the P-CSCF answers a new
// request from a UE 503 with Retry-After at once (the first element that
// cannot take it says so: no silence, no transaction left to time out);
// an INVITE holds its slot only until its first answer from the network
// (a 180), not while it rings; requests within a dialog are never
// refused. Before, the P-CSCF forwarded everything and, over capacity,
// UEs' transactions went unanswered.
func TestOverload503(t *testing.T) {
	core := newPeer(t, "")
	p := startPCSCF(t, core, func(c *Config) { c.MaxPending, c.Admission, c.OverloadRetryAfter = 1, admission.Fixed, 3 })
	pc := p.addr()
	ue := newPeer(t, "")
	register(ue, pc, "ovl-reg", 1, 600, "")
	coreAnswerRegister(t, core, false)
	if r := ue.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", r.StatusCode)
	}
	core.respond(waitRequest(t, core, sip.SUBSCRIBE), 489, "Bad Event")
	// The REGISTER holds its slot until its handler returns, just after
	// relaying the 200: on a busy host the UE's next request can come
	// first (CI failed once so). Wait for the slot.
	for deadline := time.Now().Add(5 * time.Second); p.limiter.Pending() != 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}

	invite(ue, pc, "ovl-1", "")
	first := waitRequest(t, core, sip.INVITE) // held by the network: the slot is taken
	invite(ue, pc, "ovl-2", "")
	r := waitFinal(t, ue, "ovl-2")
	if r.StatusCode != 503 || hdr(r, "Retry-After") != "3" || !strings.Contains(hdr(r, "Warning"), "overload") {
		t.Fatalf("INVITE over the limit: %d, Retry-After %q, Warning %q; want 503, 3, overload", r.StatusCode, hdr(r, "Retry-After"), hdr(r, "Warning"))
	}
	ackNon2xx(ue, pc, r)
	message(ue, pc, "ovl-msg", "")
	if r := waitFinal(t, ue, "ovl-msg"); r.StatusCode != 503 {
		t.Fatalf("MESSAGE over the limit: %d", r.StatusCode)
	}
	// The 180 of the first INVITE frees its slot, though it still rings.
	core.respond(first, 180, "Ringing")
	for r := ue.nextResponse(10 * time.Second); r.CallID().Value() != "ovl-1" || r.StatusCode != 180; r = ue.nextResponse(10 * time.Second) {
	}
	invite(ue, pc, "ovl-3", "")
	// (skipping retransmissions of the first INVITE sent before its 180)
	for third := waitRequest(t, core, sip.INVITE); third.CallID().Value() != "ovl-3"; third = waitRequest(t, core, sip.INVITE) {
	}
	if p.limiter.Pending() != 1 {
		t.Errorf("pending %d with one INVITE before its first answer", p.limiter.Pending())
	}
}
