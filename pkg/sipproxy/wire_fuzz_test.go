package sipproxy

import (
	"bytes"
	"testing"

	"github.com/emiago/sipgo/sip"

	"github.com/imscore/imscore/pkg/sipproxy/rfc4475"
)

// FuzzWire checks the validating layer on arbitrary bytes, as a datagram
// and as a message framed from a stream: it never panics; what it passes,
// sipgo parses (so sipgo never has to log an unparsable message read from a
// listener), and passing it again gives the same bytes; what it refuses
// with an answer is answered with a SIP/2.0 response.
func FuzzWire(f *testing.F) {
	for _, c := range rfc4475.Cases() {
		f.Add(c.Message(), false)
	}
	f.Add([]byte("\r\n\r\n"), true)
	p := testProxyForWire(f)
	f.Fuzz(func(t *testing.T, data []byte, stream bool) {
		v := p.inspect(data, stream, testSrc)
		switch v.act {
		case actPass:
			if _, err := sip.ParseMessage(v.out); err != nil {
				t.Fatalf("passed, but sipgo cannot parse it: %v\n%q", err, v.out)
			}
			again := p.inspect(v.out, stream, testSrc)
			if again.act != actPass || !bytes.Equal(again.out, v.out) {
				t.Fatalf("not stable: %v %q\n%q\n%q", again.act, again.reason, v.out, again.out)
			}
		case actReject:
			if !bytes.HasPrefix(v.resp, []byte("SIP/2.0 ")) || !v.request {
				t.Fatalf("answer %q to %q", v.resp, data)
			}
		}
	})
}
