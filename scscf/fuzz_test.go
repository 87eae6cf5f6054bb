package scscf

import (
	"context"
	"testing"

	"go.uber.org/zap"

	"github.com/imscore/imscore/pkg/siptest"
)

// FuzzSCSCFEntry sends fuzz inputs as UDP datagrams to an S-CSCF (no
// database, its HSS unreachable): every answer is a SIP/2.0 response, no
// handler panics.
func FuzzSCSCFEntry(f *testing.F) {
	e := siptest.NewEntryFuzzer(f, func(log *zap.Logger) string {
		s, err := New(Config{SIPListen: "127.0.0.1:0", Domain: "ims.test", ServerName: "sip:scscf.ims.test:5080",
			HSSAddr: "127.0.0.1:1", Logger: log})
		if err != nil {
			panic(err)
		}
		if err := s.Start(context.Background()); err != nil {
			panic(err)
		}
		return s.SIPAddr().String()
	})
	f.Fuzz(e.Send)
}
