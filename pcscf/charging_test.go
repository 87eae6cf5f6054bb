package pcscf

import (
	"fmt"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// TestChargingHeadersNotToUE: P-Charging-Vector and
// P-Charging-Function-Addresses never reach the UE (TS 24.229 §5.2.6.3,
// §5.2.6.4, RFC 7315 §4.5-4.6): not in the 200 to its REGISTER, not in the
// answer to its MESSAGE, not in a request the core sends it. Before, the
// P-CSCF passed all three on.
func TestChargingHeadersNotToUE(t *testing.T) {
	core := newPeer(t, "")
	p := startPCSCF(t, core, nil)
	ue := newPeer(t, "")
	pc := p.addr()
	charging := []sip.Header{sip.NewHeader("P-Charging-Vector", "icid-value=abc;orig-ioi=ims.test;term-ioi=ims.test"),
		sip.NewHeader("P-Charging-Function-Addresses", `ccf="aaa://ccf.ims.test"`)}
	check := func(what string, m sip.Message) {
		t.Helper()
		for _, h := range []string{"P-Charging-Vector", "P-Charging-Function-Addresses"} {
			if v := hdr(m, h); v != "" {
				t.Errorf("%s: the UE got %s: %s", what, h, v)
			}
		}
	}
	register(ue, pc, "reg-ch", 1, 600, "")
	coreAnswerRegister(t, core, false, charging...)
	res := ue.nextResponse(5 * time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d", res.StatusCode)
	}
	check("200 to REGISTER", res)
	if sub := core.nextRequest(5 * time.Second); sub.Method == sip.SUBSCRIBE {
		core.respond(sub, 489, "Bad Event")
	}

	message(ue, pc, "m-ch", "")
	m := core.nextRequest(5 * time.Second)
	core.respond(m, 200, "OK", charging...)
	res = ue.nextResponse(5 * time.Second)
	if res.StatusCode != 200 {
		t.Fatalf("MESSAGE: %d", res.StatusCode)
	}
	check("200 to MESSAGE", res)

	core.send(pc, fmt.Sprintf(`
MESSAGE sip:alice@127.0.0.1:%[1]d SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:%[2]d;branch=z9hG4bKtermch
Max-Forwards: 70
Route: <sip:term@%[3]s;lr>
From: <sip:bob@ims.test>;tag=b1
To: <sip:alice@ims.test>
Call-ID: termch
CSeq: 1 MESSAGE
P-Asserted-Identity: <sip:bob@ims.test>
P-Charging-Vector: icid-value=def;orig-ioi=ims.test
P-Charging-Function-Addresses: ccf="aaa://ccf.ims.test"
Content-Length: 0

`, ue.port(), core.port(), pc))
	tm := ue.nextRequest(5 * time.Second)
	check("terminating MESSAGE", tm)
	ue.respond(tm, 200, "OK")
	if r := core.nextResponse(5 * time.Second); r.StatusCode != 200 {
		t.Fatalf("core got %d", r.StatusCode)
	}
}
