package icscf

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/siptest"
)

// FuzzICSCFEntry sends fuzz inputs as UDP datagrams to an I-CSCF (its HSS
// unreachable): every answer is a SIP/2.0 response, no handler panics.
func FuzzICSCFEntry(f *testing.F) {
	e := siptest.NewEntryFuzzer(f, func(log *zap.Logger) string {
		sc, err := ParseSCSCF("sip:scscf." + testDomain + ":5080")
		if err != nil {
			panic(err)
		}
		s, err := New(Config{SIPListen: "127.0.0.1:0", Domain: testDomain, HSSAddr: "127.0.0.1:1",
			HSSHost: testHSSHost, CxTimeout: 100 * time.Millisecond, SIPTimeout: 500 * time.Millisecond,
			SCSCFs: []SCSCF{sc}, Logger: log})
		if err != nil {
			panic(err)
		}
		if err := s.Start(context.Background()); err != nil {
			panic(err)
		}
		return s.SIPAddr("udp").String()
	})
	f.Fuzz(e.Send)
}
