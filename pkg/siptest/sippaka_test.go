package siptest

import (
	"bytes"
	"encoding/hex"
	"testing"

	"github.com/imscore/imscore/pkg/aka"
	"github.com/imscore/imscore/pkg/digest"
)

// TestSippZeroByteRES: a 401 whose RES has a zero byte is found, one
// whose RES has none is not (TS 35.208 test set 1 keys, random RANDs).
func TestSippZeroByteRES(t *testing.T) {
	k, _ := hex.DecodeString("465b5ce8b199b49faa5f0a2ee238a6bc")
	op, _ := hex.DecodeString("cdc202d5123e20f62b6d676ac72cb318")
	amf := []byte{0x80, 0x00}
	var withZero, without string
	for sqn := uint64(1); (withZero == "" || without == "") && sqn < 10000; sqn++ {
		v, err := aka.GenerateVector(aka.Credentials{K: k, OP: op, AMF: amf}, sqn*32, nil)
		if err != nil {
			t.Fatal(err)
		}
		nonce, err := digest.JoinAKANonce(v.RAND, v.AUTN, nil)
		if err != nil {
			t.Fatal(err)
		}
		trace := "SIP/2.0 401 Unauthorized\r\nWWW-Authenticate: Digest realm=\"ims\", nonce=\"" + nonce + "\", algorithm=AKAv1-MD5\r\n\r\n"
		if bytes.IndexByte(v.XRES, 0) >= 0 {
			withZero = trace
			if got := SippZeroByteRES(k, op, trace); got != nonce {
				t.Fatalf("RES %x: got %q, want the nonce", v.XRES, got)
			}
		} else {
			without = trace
			if got := SippZeroByteRES(k, op, trace); got != "" {
				t.Fatalf("RES %x has no zero byte: got %q", v.XRES, got)
			}
		}
	}
	if withZero == "" || without == "" {
		t.Fatal("no vector of each kind in 10,000")
	}
}
