package digest

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// AKA sizes (TS 33.102 §6.3).
const (
	RANDLen = 16
	AUTNLen = 16
	AUTSLen = 14
)

// decodeBase64 accepts standard base64 with or without padding.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	return base64.RawStdEncoding.DecodeString(s)
}

// SplitAKANonce decodes an AKA nonce, base64(RAND(16)‖AUTN(16)[‖server
// data]) (RFC 3310 §3.2), and returns RAND and AUTN (copies). Server data
// after the first 32 bytes is ignored. A nonce shorter than 32 bytes or
// not base64 is an error.
func SplitAKANonce(nonce string) (rand, autn []byte, err error) {
	b, err := decodeBase64(nonce)
	if err != nil {
		return nil, nil, fmt.Errorf("digest: AKA nonce is not base64: %w", err)
	}
	if len(b) < RANDLen+AUTNLen {
		return nil, nil, fmt.Errorf("digest: AKA nonce holds %d bytes, need at least %d", len(b), RANDLen+AUTNLen)
	}
	rand = append([]byte(nil), b[:RANDLen]...)
	autn = append([]byte(nil), b[RANDLen:RANDLen+AUTNLen]...)
	return rand, autn, nil
}

// JoinAKANonce returns base64(RAND‖AUTN‖serverData) (RFC 3310 §3.2), in
// standard base64 with padding. serverData may be nil.
func JoinAKANonce(rand, autn, serverData []byte) (string, error) {
	if len(rand) != RANDLen || len(autn) != AUTNLen {
		return "", fmt.Errorf("digest: RAND and AUTN must be %d and %d bytes, got %d and %d", RANDLen, AUTNLen, len(rand), len(autn))
	}
	b := make([]byte, 0, RANDLen+AUTNLen+len(serverData))
	b = append(append(append(b, rand...), autn...), serverData...)
	return base64.StdEncoding.EncodeToString(b), nil
}

// DecodeAUTS decodes the auts parameter: base64 of the 14-byte AUTS
// (SQNms⊕AK* ‖ MAC-S, RFC 3310 §3.4, TS 33.102 §6.3.3).
func DecodeAUTS(auts string) ([]byte, error) {
	b, err := decodeBase64(auts)
	if err != nil {
		return nil, fmt.Errorf("digest: auts is not base64: %w", err)
	}
	if len(b) != AUTSLen {
		return nil, fmt.Errorf("digest: auts holds %d bytes, want %d", len(b), AUTSLen)
	}
	return b, nil
}

// EncodeAUTS returns the auts parameter value for a 14-byte AUTS.
func EncodeAUTS(auts []byte) (string, error) {
	if len(auts) != AUTSLen {
		return "", fmt.Errorf("digest: AUTS must be %d bytes, got %d", AUTSLen, len(auts))
	}
	return base64.StdEncoding.EncodeToString(auts), nil
}
