package pcscf

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/siptest"
)

// FuzzPCSCFEntry sends fuzz inputs as UDP datagrams to a P-CSCF (its I-CSCF
// a socket that never answers): every answer is a SIP/2.0 response, no
// handler panics.
func FuzzPCSCFEntry(f *testing.F) {
	e := siptest.NewEntryFuzzer(f, func(log *zap.Logger) string {
		icscf, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		p, err := New(Config{SIPListen: "127.0.0.1:0", Domain: testDomain,
			ICSCF: fmt.Sprintf("sip:%s", icscf.LocalAddr()), IPsec: IPsecOff,
			TimerInterval: time.Second, Logger: log})
		if err != nil {
			panic(err)
		}
		if err := p.Start(context.Background()); err != nil {
			panic(err)
		}
		return p.addr()
	})
	f.Fuzz(e.Send)
}
