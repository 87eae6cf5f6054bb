package imsue

import (
	"slices"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// answerOnly is the server transaction of a NOTIFY handled in a test:
// onNotify only answers it.
type answerOnly struct {
	sip.ServerTransaction
	codes []int
}

func (a *answerOnly) Respond(r *sip.Response) error {
	a.codes = append(a.codes, r.StatusCode)
	return nil
}

// A reg-event NOTIFY ending the UE's registration is network-initiated
// only while the UE holds that registration: the NOTIFY of the UE's own
// de-registration handled after Deregister has had its 200 (e2e's
// TestIMSUEThroughLab saw it 0.3 ms after) is not.
func TestRegNotifyAfterOwnDeregistration(t *testing.T) {
	const impu = "sip:bob@ims.example.org"
	body := []byte(`<?xml version="1.0"?>
<reginfo xmlns="urn:ietf:params:xml:ns:reginfo" version="1" state="partial">
 <registration aor="` + impu + `" id="r1" state="terminated"/>
</reginfo>`)
	for _, tc := range []struct {
		name       string
		registered bool
		want       bool // network-deregistered
	}{
		{"after the UE's own de-registration", false, false},
		{"while the UE is registered", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var steps []string
			u := &UE{cfg: Config{IMPU: impu, OnEvent: func(e Event) { steps = append(steps, e.Step) }}}
			u.sub = &regSubscription{callID: "c1", notifys: make(chan RegNotify, 16), ended: make(chan struct{})}
			u.regState.registered = tc.registered
			req := sip.NewRequest(sip.NOTIFY, sip.Uri{User: "bob", Host: "127.0.0.1", Port: 5060})
			req.AppendHeader(sip.NewHeader("Call-ID", "c1"))
			req.AppendHeader(sip.NewHeader("Subscription-State", "terminated;reason=noresource"))
			req.SetBody(body)
			tx := &answerOnly{}
			u.onNotify(req, tx)
			if !slices.Equal(tx.codes, []int{200}) {
				t.Fatalf("answered %v, want [200]", tx.codes)
			}
			if got := slices.Contains(steps, "network-deregistered"); got != tc.want {
				t.Fatalf("network-deregistered %v, want %v (steps %v)", got, tc.want, steps)
			}
		})
	}
}
