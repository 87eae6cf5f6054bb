package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestCall runs calls between sipp UAs through the real binaries:
// S-CSCF (originating) → I-CSCF (LIR) → S-CSCF (terminating) → contact.
// The UAs register with MD5 through the I-CSCF and send as if behind a
// P-CSCF: Route = the S-CSCF's Service-Route, P-Asserted-Identity set.
func TestCall(t *testing.T) {
	needSipp(t)
	l := newLab(t)
	for _, u := range []string{"alice", "bob", "carol", "dan"} {
		l.addMD5(u, "pw-"+u)
	}
	alicePort, bobPort := freePort(t), freePort(t)
	l.md5Register(t, "alice", "pw-alice", alicePort)
	l.md5Register(t, "bob", "pw-bob", bobPort)

	t.Run("INVITE 180 200 ACK BYE", func(t *testing.T) {
		uas := sippUAS(t, "call_uas.xml", bobPort, 1)
		ok, out := l.sippUAC(t, "call_uac.xml", "alice", "bob", alicePort)
		if !ok {
			t.Fatalf("caller:\n%s", tail(out, 6000))
		}
		uok, uout := uas.wait(10 * time.Second)
		if !uok {
			t.Fatalf("callee:\n%s", tail(uout, 6000))
		}
		// The callee saw the S-CSCF in Record-Route and the original target.
		for _, want := range []string{"Record-Route: <sip:127.0.0.1:", "P-Called-Party-ID: <sip:bob@" + domain + ">", "BYE sip:"} {
			if !strings.Contains(uout, want) {
				t.Errorf("callee trace lacks %q:\n%s", want, tail(uout, 4000))
			}
		}
		if strings.Contains(uout, "P-Served-User") {
			t.Error("P-Served-User reached the callee")
		}
	})
	t.Run("CANCEL before answer gives 487", func(t *testing.T) {
		uas := sippUAS(t, "call_uas_cancel.xml", bobPort, 1)
		ok, out := l.sippUAC(t, "call_uac_cancel.xml", "alice", "bob", alicePort)
		if !ok {
			t.Fatalf("caller:\n%s", tail(out, 6000))
		}
		if uok, uout := uas.wait(10 * time.Second); !uok {
			t.Fatalf("callee did not see the CANCEL:\n%s", tail(uout, 6000))
		}
	})
	t.Run("MESSAGE", func(t *testing.T) {
		uas := sippUAS(t, "call_uas_message.xml", bobPort, 1)
		ok, out := l.sippUAC(t, "call_uac_message.xml", "alice", "bob", alicePort)
		if !ok {
			_, uout := uas.wait(time.Second)
			t.Fatalf("caller:\n%s\ncallee:\n%s", tail(out, 3000), tail(uout, 3000))
		}
		uok, uout := uas.wait(10 * time.Second)
		if !uok {
			t.Fatalf("callee:\n%s", tail(uout, 6000))
		}
		if !strings.Contains(uout, "hello from sipp") {
			t.Errorf("callee got no body:\n%s", tail(uout, 3000))
		}
	})
	t.Run("unregistered callee without services gets 480", func(t *testing.T) {
		ok, out := l.sippUAC(t, "call_uac_expect.xml", "alice", "carol", alicePort, "%CODE%", "480")
		if !ok {
			t.Fatalf("%s", tail(out, 6000))
		}
	})
	t.Run("unknown callee gets 404", func(t *testing.T) {
		ok, out := l.sippUAC(t, "call_uac_expect.xml", "alice", "nobody", alicePort, "%CODE%", "404")
		if !ok {
			t.Fatalf("%s", tail(out, 6000))
		}
	})
	t.Run("unregistered caller gets 403", func(t *testing.T) {
		ok, out := l.sippUAC(t, "call_uac_expect.xml", "carol", "bob", alicePort, "%CODE%", "403")
		if !ok {
			t.Fatalf("%s", tail(out, 6000))
		}
	})
	t.Run("two contacts: fork, the loser gets CANCEL", func(t *testing.T) {
		p1, p2 := freePort(t), freePort(t)
		l.md5Register(t, "dan", "pw-dan", p1)
		l.md5Register(t, "dan", "pw-dan", p2)
		if n, ok := l.registrar().find("sip:dan@" + domain); !ok || n != 2 {
			t.Fatalf("dan has %d contacts", n)
		}
		winner := sippUAS(t, "call_uas.xml", p1, 1)
		loser := sippUAS(t, "call_uas_cancel.xml", p2, 1)
		ok, out := l.sippUAC(t, "call_uac.xml", "alice", "dan", alicePort)
		if !ok {
			t.Fatalf("caller:\n%s", tail(out, 6000))
		}
		if wok, wout := winner.wait(10 * time.Second); !wok {
			t.Fatalf("answering contact:\n%s", tail(wout, 6000))
		}
		if lok, lout := loser.wait(10 * time.Second); !lok {
			t.Fatalf("other contact did not get CANCEL:\n%s", tail(lout, 6000))
		}
	})
}

// silentUDP is an AS address that swallows everything.
func silentUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		b := make([]byte, 65535)
		for {
			if _, _, err := c.ReadFrom(b); err != nil {
				return
			}
		}
	}()
	return "sip:" + c.LocalAddr().String()
}

// TestCallAS provisions originating iFCs with imsctl (as add, ifc add,
// profile add) and checks the ISC chain of the real S-CSCF: two ASs in
// priority order, then default handling for a silent AS both ways.
func TestCallAS(t *testing.T) {
	needSipp(t)
	l := newLab(t, "--as-timeout", "1s")
	as1, as2 := newTestAS(t, "as1"), newTestAS(t, "as2")
	silent := silentUDP(t)
	l.imsctl("as", "add", "as1", "--server-name", as1.uri(), "--default-handling", "continue")
	l.imsctl("as", "add", "as2", "--server-name", as2.uri(), "--default-handling", "continue")
	l.imsctl("as", "add", "mute-continue", "--server-name", silent, "--default-handling", "continue")
	l.imsctl("as", "add", "mute-terminate", "--server-name", silent, "--default-handling", "terminate")
	for _, f := range []struct{ name, as string }{{"to-as1", "as1"}, {"to-as2", "as2"}, {"to-mute-c", "mute-continue"}, {"to-mute-t", "mute-terminate"}} {
		l.imsctl("ifc", "add", f.name, "--as", f.as, "--method", "INVITE", "--session-case", "orig")
	}
	l.imsctl("ifc", "add", "to-mute-t-msg", "--as", "mute-terminate", "--method", "MESSAGE", "--session-case", "orig")
	l.imsctl("profile", "add", "two-as", "--ifc", "to-as1:10", "--ifc", "to-as2:20")
	l.imsctl("profile", "add", "mute-then-as2", "--ifc", "to-mute-c:10", "--ifc", "to-as2:20")
	l.imsctl("profile", "add", "mute-terminates", "--ifc", "to-mute-t:10", "--ifc", "to-mute-t-msg:20")
	l.addMD5("alice", "pw", "--profile", "two-as")
	l.addMD5("erin", "pw", "--profile", "mute-then-as2")
	l.addMD5("frank", "pw", "--profile", "mute-terminates")
	l.addMD5("bob", "pw")
	ports := map[string]int{}
	for _, u := range []string{"alice", "erin", "frank", "bob"} {
		ports[u] = freePort(t)
		l.md5Register(t, u, "pw", ports[u])
	}

	t.Run("two ASs in priority order", func(t *testing.T) {
		uas := sippUAS(t, "call_uas.xml", ports["bob"], 1)
		ok, out := l.sippUAC(t, "call_uac.xml", "alice", "bob", ports["alice"])
		if !ok {
			t.Fatalf("caller:\n%s", tail(out, 6000))
		}
		if uok, uout := uas.wait(10 * time.Second); !uok {
			t.Fatalf("callee:\n%s", tail(uout, 6000))
		}
		i1, i2 := as1.invites(), as2.invites()
		if len(i1) != 1 || len(i2) != 1 {
			t.Fatalf("AS INVITEs: as1 %d, as2 %d", len(i1), len(i2))
		}
		want := "<sip:alice@" + domain + ">;sescase=orig;regstate=reg"
		for _, r := range []struct {
			name string
			v    string
		}{{"as1", hdrOf(i1[0], "P-Served-User")}, {"as2", hdrOf(i2[0], "P-Served-User")}} {
			if r.v != want {
				t.Errorf("%s P-Served-User %q, want %q", r.name, r.v, want)
			}
		}
		// as1 came first: its Record-Route is below as2's in what as2 got.
		rr := fmt.Sprint(i2[0].GetHeaders("Record-Route"))
		if !strings.Contains(rr, as1.p.Addr("udp").String()) {
			t.Errorf("as2 did not see as1 in Record-Route: %s", rr)
		}
	})
	t.Run("silent AS with SESSION_CONTINUED: call proceeds", func(t *testing.T) {
		before := len(as2.invites())
		uas := sippUAS(t, "call_uas.xml", ports["bob"], 1)
		ok, out := l.sippUAC(t, "call_uac.xml", "erin", "bob", ports["erin"])
		if !ok {
			t.Fatalf("caller:\n%s", tail(out, 6000))
		}
		if uok, uout := uas.wait(10 * time.Second); !uok {
			t.Fatalf("callee:\n%s", tail(uout, 6000))
		}
		if len(as2.invites()) != before+1 {
			t.Error("the next iFC's AS was not visited")
		}
	})
	t.Run("silent AS with SESSION_TERMINATED: 408 with Warning", func(t *testing.T) {
		ok, out := l.sippUAC(t, "call_uac_expect.xml", "frank", "bob", ports["frank"], "%CODE%", "408")
		if !ok {
			t.Fatalf("%s", tail(out, 6000))
		}
		if !strings.Contains(out, "Warning: 399") || !strings.Contains(out, strings.TrimPrefix(silent, "sip:")) {
			t.Errorf("408 without a Warning naming the AS:\n%s", tail(out, 3000))
		}
	})
	// RFC 4320 §4.1: no 408 to a non-INVITE; sipp judges the answer.
	t.Run("silent AS with SESSION_TERMINATED, MESSAGE: 504 with Warning", func(t *testing.T) {
		ok, out := l.sippUAC(t, "call_uac_message.xml", "frank", "bob", ports["frank"], `<recv response="200"/>`, `<recv response="504"/>`)
		if !ok {
			t.Fatalf("%s", tail(out, 6000))
		}
		if !strings.Contains(out, "Warning: 399") || !strings.Contains(out, strings.TrimPrefix(silent, "sip:")) {
			t.Errorf("504 without a Warning naming the AS:\n%s", tail(out, 3000))
		}
	})
}

func hdrOf(r *sip.Request, name string) string {
	if h := r.GetHeader(name); h != nil {
		return h.Value()
	}
	return ""
}

// TestCallPCSCF puts the P-CSCF in front: sipp UAs register with AKA
// through it (its Path marks the terminating leg) and call through it
// (it asserts the identity and routes along the Service-Route):
// UE-A → P-CSCF → S-CSCF (orig) → I-CSCF → S-CSCF (term) → P-CSCF → UE-B.
func TestCallPCSCF(t *testing.T) {
	needSipp(t)
	l := newPCSCFLab(t, freePort(t))
	l.addAKA("alice")
	l.addAKA("bob")
	alicePort, bobPort := freePort(t), freePort(t)
	l.sippAKAPCSCF(t, "alice", alicePort, 600)
	l.sippAKAPCSCF(t, "bob", bobPort, 600)

	t.Run("INVITE 180 200 ACK BYE", func(t *testing.T) {
		uas := sippUAS(t, "call_uas.xml", bobPort, 1)
		ok, out := sippUACTo(t, l.pcscf, "call_uac.xml", "alice", "bob", alicePort)
		if !ok {
			_, uout := uas.wait(time.Second)
			t.Fatalf("caller:\n%s\ncallee:\n%s", tail(out, 4000), tail(uout, 3000))
		}
		uok, uout := uas.wait(10 * time.Second)
		if !uok {
			t.Fatalf("callee:\n%s", tail(uout, 6000))
		}
		for _, want := range []string{fmt.Sprintf("Record-Route: <sip:127.0.0.1:%d;", l.pcscf), fmt.Sprintf("Record-Route: <sip:127.0.0.1:%d;", l.scscf),
			"P-Asserted-Identity: <sip:alice@" + domain + ">"} {
			if !strings.Contains(uout, want) {
				t.Errorf("callee trace lacks %q:\n%s", want, tail(uout, 4000))
			}
		}
	})
	t.Run("MESSAGE", func(t *testing.T) {
		uas := sippUAS(t, "call_uas_message.xml", bobPort, 1)
		ok, out := sippUACTo(t, l.pcscf, "call_uac_message.xml", "alice", "bob", alicePort)
		if !ok {
			_, uout := uas.wait(time.Second)
			t.Fatalf("caller:\n%s\ncallee:\n%s", tail(out, 4000), tail(uout, 3000))
		}
		if uok, uout := uas.wait(10 * time.Second); !uok {
			t.Fatalf("callee:\n%s", tail(uout, 6000))
		}
	})
}
