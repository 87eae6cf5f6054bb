package siptest

import (
	"bytes"
	"regexp"

	"github.com/imscore/imscore/pkg/aka"
	"github.com/imscore/imscore/pkg/digest"
)

var akaNonceRE = regexp.MustCompile(`WWW-Authenticate: Digest [^\r\n]*nonce="([^"]+)"`)

// SippZeroByteRES returns the first AKA nonce of a 401 in a sipp message
// trace whose RES, for the subscriber keys k and op (TS 35.206 Milenage),
// holds a zero byte, or "" when there is none. sipp 3.6.1 computes a
// wrong response for such a RES (docs LIBRARIES.md), which a correct
// S-CSCF refuses with 403: tests retry a registration that failed for
// this reason only.
func SippZeroByteRES(k, op []byte, trace string) (nonce string) {
	opc, err := aka.ComputeOPc(k, op)
	if err != nil {
		return ""
	}
	for _, m := range akaNonceRE.FindAllStringSubmatch(trace, -1) {
		rnd, autn, err := digest.SplitAKANonce(m[1])
		if err != nil {
			continue
		}
		res, _, _, _, err := aka.CheckAUTN(k, opc, rnd, autn)
		if err == nil && bytes.IndexByte(res, 0) >= 0 {
			return m[1]
		}
	}
	return ""
}
