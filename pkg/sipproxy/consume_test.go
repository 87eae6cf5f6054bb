package sipproxy

import (
	"context"
	"errors"
	"testing"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// TestForwardConsume: with ForwardOptions.Consume an INVITE's working copy
// is sent itself (after Forward it carries the outgoing Via and
// Max-Forwards), the UAS gets it whole, and a second Forward answers 500
// (ErrConsumed) instead of sending an edited request again. With two
// targets, or for a REGISTER (edited in place, no working copy), it is
// copied as before.
func TestForwardConsume(t *testing.T) {
	uas := newUAS(t, func(s *sipgo.Server) {
		s.OnInvite(func(req *sip.Request, tx sip.ServerTransaction) {
			res := sip.NewResponseFromRequest(req, 486, "Busy Here", nil)
			res.AppendHeader(sip.NewHeader("X-Max-Forwards-Seen", req.MaxForwards().Value()))
			_ = tx.Respond(res)
		})
		s.OnRegister(func(req *sip.Request, tx sip.ServerTransaction) {
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
	})
	type seen struct {
		topVia, maxFwd string
		second         int
		secondErr      error
	}
	run := func(method sip.RequestMethod, targets int) seen {
		got := make(chan seen, 1)
		p := newTestProxy(t, func(ctx context.Context, tx *Txn) {
			tgs := []Target{uas.target("udp")}
			if targets == 2 {
				tgs = append(tgs, uas.target("udp"))
			}
			res, _ := tx.Forward(ctx, ForwardOptions{Consume: true}, tgs...)
			s := seen{topVia: tx.Request().Via().Host, maxFwd: tx.Request().MaxForwards().Value()}
			res2, err := tx.Forward(ctx, ForwardOptions{Consume: true}, uas.target("udp"))
			s.second, s.secondErr = res2.StatusCode, err
			got <- s
			_ = tx.Relay(res)
		})
		res := doReq(t, newClient(t), proxyReq(method, p, "udp", "bob"))
		if method == sip.INVITE && (res.StatusCode != 486 || res.GetHeader("X-Max-Forwards-Seen").Value() != "69") {
			t.Fatalf("%s: UAS answer %d, Max-Forwards it saw %v", method, res.StatusCode, res.GetHeader("X-Max-Forwards-Seen"))
		}
		return <-got
	}

	s := run(sip.INVITE, 1)
	if s.maxFwd != "69" {
		t.Errorf("INVITE, one target: request after Forward has Max-Forwards %s, want the outgoing 69 (sent itself)", s.maxFwd)
	}
	if s.second != 500 || !errors.Is(s.secondErr, ErrConsumed) {
		t.Errorf("INVITE, one target: second Forward = %d, %v; want 500, ErrConsumed", s.second, s.secondErr)
	}
	s = run(sip.INVITE, 2)
	if s.maxFwd != "70" || s.topVia == "" || s.second != 486 {
		t.Errorf("INVITE, two targets: Max-Forwards %s after Forward, second Forward %d; want 70 (copied), 486", s.maxFwd, s.second)
	}
	s = run(sip.REGISTER, 1)
	if s.maxFwd != "70" || s.second != 200 {
		t.Errorf("REGISTER: Max-Forwards %s after Forward, second Forward %d; want 70 (copied), 200", s.maxFwd, s.second)
	}
}

// TestDoConsume: DoConsume sends the request it is given (afterwards that
// request carries the outgoing Via, the branch the UAS received), where
// Do sends a copy and leaves the caller's request without a Via; both get
// the UAS's answer.
func TestDoConsume(t *testing.T) {
	branches := make(chan string, 2)
	uas := newUAS(t, func(s *sipgo.Server) {
		s.OnNotify(func(req *sip.Request, tx sip.ServerTransaction) {
			b, _ := req.Via().Params.Get("branch")
			branches <- b
			_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		})
	})
	p := newTestProxy(t, func(ctx context.Context, tx *Txn) { _ = tx.Respond(500, "Unused") })
	ctx := context.Background()
	for _, consume := range []bool{false, true} {
		req := regNotify(uas.udp.Port)
		do := p.Do
		if consume {
			do = p.DoConsume
		}
		res, err := do(ctx, req, uas.target("udp"))
		if err != nil || res.StatusCode != 200 {
			t.Fatalf("consume %v: %v, %v", consume, res, err)
		}
		sent := <-branches
		v := req.Via()
		switch {
		case !consume && v != nil:
			t.Errorf("Do: the caller's request got a Via (%s); want it unchanged, a copy sent", v.Value())
		case consume && v == nil:
			t.Errorf("DoConsume: the caller's request has no Via; want the request itself sent")
		case consume:
			if b, _ := v.Params.Get("branch"); b != sent {
				t.Errorf("DoConsume: request's branch %q, the UAS received %q", b, sent)
			}
		}
	}
}

// regNotify is a reg-event NOTIFY of a UAC (no Via, To, Call-ID or CSeq:
// Do adds them) to the UE at 127.0.0.1:port.
func regNotify(port int) *sip.Request {
	n := sip.NewRequest(sip.NOTIFY, sip.Uri{Scheme: "sip", User: "ue", Host: "127.0.0.1", Port: port})
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", Host: "scscf.ims.example.org"}, Params: sip.NewParams()}
	from.Params.Add("tag", "x1")
	n.AppendHeader(from)
	n.AppendHeader(sip.NewHeader("Event", "reg"))
	n.AppendHeader(sip.NewHeader("Subscription-State", "active;expires=600"))
	return n
}
